"""The chart's object-store values (`jobs.objectStore`): the buckets job audio may be read
from reach the router and the workers as JOBS_URI_ALLOWED_BUCKETS (read back by their
settings), and the credentials Secret is mounted read-only in the workers only, named by the
variables google-cloud-storage and boto3 read; the schema refuses a bucket entry of another
form."""

from __future__ import annotations

import pytest

from services.jobs.worker.settings import WorkerSettings
from services.router.settings import RouterSettings
from tests.chart_support import PREFIX, container, env, helm, one, server_container, template
from tests.support import REPO

CHART = REPO / "helm" / "stt-suite"
OBJECTS = [
    "--set",
    "jobs.enabled=true",
    "--set",
    "jobs.objectStore.allowedBuckets={gs://calls,s3://archive}",
    "--set",
    "jobs.objectStore.credentialsSecret=bucket-reader",
    "--set",
    "jobs.objectStore.googleCredentialsKey=key.json",
    "--set",
    "jobs.objectStore.awsCredentialsKey=aws-credentials",
]
SECRET_DIR = "/var/run/secrets/stt-suite/object-store"


def volumes(deployment: dict) -> dict[str, dict]:
    return {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}


def mounts(found: dict) -> dict[str, dict]:
    return {m["name"]: m for m in found.get("volumeMounts", [])}


@pytest.mark.parametrize("store", ["postgresql", "embedded"])
def test_buckets_and_credentials_reach_the_router_and_the_workers(store, monkeypatch):
    database = (
        ["--set", "jobs.database.url=postgresql://u:p@db/jobs"] if store != "embedded" else []
    )
    embedded = ["--set", "router.replicas=1"] if store == "embedded" else []
    objects = template(*OBJECTS, *database, *embedded)
    router_pod = one(objects, "Deployment", f"{PREFIX}-router")
    worker_pod = (
        router_pod if store == "embedded" else one(objects, "Deployment", f"{PREFIX}-worker")
    )
    router, worker = server_container(router_pod), container(worker_pod, "worker")
    assert env(router)["JOBS_URI_ALLOWED_BUCKETS"] == "gs://calls,s3://archive"
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in env(router)  # the router reads no object
    assert "object-store-credentials" not in mounts(router)
    variables = env(worker)
    assert variables["GOOGLE_APPLICATION_CREDENTIALS"] == f"{SECRET_DIR}/key.json"
    assert variables["AWS_SHARED_CREDENTIALS_FILE"] == f"{SECRET_DIR}/aws-credentials"
    mount = mounts(worker)["object-store-credentials"]
    assert mount["mountPath"] == SECRET_DIR and mount["readOnly"] is True
    assert volumes(worker_pod)["object-store-credentials"]["secret"]["secretName"] == (
        "bucket-reader"
    )
    monkeypatch.setenv("JOBS_URI_ALLOWED_BUCKETS", variables["JOBS_URI_ALLOWED_BUCKETS"])
    for settings in (RouterSettings(), WorkerSettings()):
        assert settings.buckets.allowed_buckets == ["gs://calls", "s3://archive"]


def test_without_object_store_values_nothing_is_added():
    objects = template("--set", "jobs.enabled=true", "--set", "router.replicas=1")
    router_pod = one(objects, "Deployment", f"{PREFIX}-router")
    for found in router_pod["spec"]["template"]["spec"]["containers"]:
        assert "JOBS_URI_ALLOWED_BUCKETS" not in env(found)
        assert "object-store-credentials" not in mounts(found)
    assert "object-store-credentials" not in volumes(router_pod)


def test_the_schema_refuses_a_bucket_entry_of_another_form():
    done = helm("template", "stt", str(CHART), "--set", "jobs.objectStore.allowedBuckets={calls}")
    assert done.returncode != 0
    assert "allowedBuckets" in done.stderr
