"""The chart's jobs and diarization, rendered by a real helm binary: the diarization service
and the workers only when switched on, the job store's URL from its Secret in the router and
the workers, the embedded SQLite store beside one router, the opt-in PostgreSQL, the
workers' autoscaling on the job backlog, and the refusals (values and templates)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict

from services.jobs.worker.settings import WorkerSettings
from tests.chart_support import (
    CHART,
    CI_VALUES,
    NAMESPACE,
    PREFIX,
    assert_schema_rejects,
    component,
    container,
    env,
    helm,
    of_kind,
    one,
    routes_file,
    secret_refs,
    template,
    values_args,
)

ROUTER = f"{PREFIX}-router"
WORKER = f"{PREFIX}-worker"
DIARIZATION = f"{PREFIX}-diarization"
POSTGRESQL = f"{PREFIX}-postgresql"
WORKER_KINDS = {"Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"}
POSTGRESQL_KINDS = {"StatefulSet", "Service", "Secret"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: template(*values_args(name)) for name in ["default", *CI_VALUES]}


def named(objects: list[dict], name: str) -> set[str]:
    """The kinds of the objects with this name."""
    return {o["kind"] for o in objects if o["metadata"]["name"] == name}


def pod(objects: list[dict], kind: str, name: str) -> dict:
    return one(objects, kind, name)["spec"]["template"]["spec"]


def secret_value(objects: list[dict], name: str, key: str) -> str:
    return base64.b64decode(one(objects, "Secret", name)["data"][key]).decode()


def test_diarization_is_a_model_server_only_when_enabled(rendered):
    default = rendered["default"]
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= named(default, DIARIZATION)
    service = container(one(default, "Deployment", DIARIZATION))
    assert service["args"] == ["serve", "diarization"]
    assert env(service)["DIARIZATION_DEVICE"] == "cpu"
    assert env(service)["DIARIZATION_MAX_CONCURRENCY"] == "2"
    assert one(default, "Service", DIARIZATION)["spec"]["clusterIP"] == "None"
    # Switched off: no object, no route to it, no target for the workers.
    one_language = rendered["one-language"]
    assert DIARIZATION not in yaml.safe_dump_all(one_language)
    assert not [o for o in one_language if component(o) == "diarization"]
    # The workers reach it the one way the router does: they diarize through the router.
    everything = rendered["everything"]
    worker = container(one(everything, "Deployment", WORKER))
    assert "WORKER_DIARIZATION_TARGET" not in env(worker)
    target = f"dns:///{DIARIZATION}.{NAMESPACE}.svc.cluster.local:50051"
    assert yaml.safe_load(routes_file(everything))["diarization"] == target


def test_diarization_on_a_gpu_pod(rendered):
    everything = rendered["everything"]
    spec = pod(everything, "Deployment", DIARIZATION)
    service = container(one(everything, "Deployment", DIARIZATION))
    assert service["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert service["image"].endswith("-cuda")
    assert env(service)["DIARIZATION_DEVICE"] == "cuda"
    assert env(service)["DIARIZATION_MAX_SPEAKERS"] == "10"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    # Its callers: the router and the workers.
    policy = one(everything, "NetworkPolicy", DIARIZATION)["spec"]["ingress"][0]["from"]
    callers = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policy}
    assert callers == {"router", "worker"}


def test_no_job_objects_unless_jobs_are_on(rendered):
    for values in ("default", "one-language"):
        objects = rendered[values]
        assert not named(objects, WORKER)
        assert not named(objects, POSTGRESQL)
        assert not of_kind(objects, "Secret")
        router = container(one(objects, "Deployment", ROUTER))
        assert not [k for k in env(router) if "DATA_DIR" in k or "RESULT_TTL" in k]
        assert not secret_refs(router)


@pytest.mark.parametrize(
    ("values", "secret", "key"),
    [
        ("cpu-only", f"{PREFIX}-database", "url"),  # made by the chart from jobs.database.url
        ("gpu-pool", "stt-jobs-database", "postgres-url"),  # an existing Secret
        ("everything", POSTGRESQL, "url"),  # the release's own PostgreSQL
    ],
)
def test_the_database_url_comes_from_its_secret(rendered, values, secret, key):
    objects = rendered[values]
    router = container(one(objects, "Deployment", ROUTER))
    worker = container(one(objects, "Deployment", WORKER))
    assert secret_refs(router) == {"ROUTER_DATABASE_URL": (secret, key)}
    assert secret_refs(worker) == {"WORKER_DATABASE_URL": (secret, key)}
    # No SQLite where there is a database: no data directory, no volume for it.
    assert "ROUTER_DATA_DIR" not in env(router) and "WORKER_DATA_DIR" not in env(worker)
    assert {m["name"] for m in router["volumeMounts"]} == {"routes", "tmp"}
    assert {m["name"] for m in worker["volumeMounts"]} == {"tmp"}
    assert not named(objects, f"{PREFIX}-jobs")
    if values == "gpu-pool":
        assert secret not in of_kind(objects, "Secret")  # the chart leaves it alone
    if values == "cpu-only":
        url = "postgresql://stt:change-me@postgres.databases.svc.cluster.local:5432/stt"
        assert secret_value(objects, secret, key) == url
        assert one(objects, "Deployment", WORKER)["spec"]["replicas"] == 2


def test_a_new_url_rolls_the_router_and_the_workers():
    base = ["--set", "jobs.enabled=true"]
    first = template(*base, "--set", "jobs.database.url=postgresql://a@h/one")
    second = template(*base, "--set", "jobs.database.url=postgresql://a@h/two")
    for name in (ROUTER, WORKER):
        before = one(first, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        after = one(second, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
        assert before["checksum/database"] != after["checksum/database"]


def test_the_release_s_postgresql(rendered):
    objects = rendered["everything"]
    assert named(objects, POSTGRESQL) == POSTGRESQL_KINDS | {"NetworkPolicy"}
    url = conninfo_to_dict(secret_value(objects, POSTGRESQL, "url"))
    password = secret_value(objects, POSTGRESQL, "password")
    assert len(password) == 32 and password.isalnum()
    assert url == {
        "user": "stt",
        "password": password,
        "host": f"{POSTGRESQL}.{NAMESPACE}.svc.cluster.local",
        "port": "5432",
        "dbname": "stt",
    }
    secret = one(objects, "Secret", POSTGRESQL)
    # Kept on uninstall, as the data claim is, so that a new install finds the two matching.
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    service = one(objects, "Service", POSTGRESQL)
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["ports"][0]["port"] == 5432
    statefulset = one(objects, "StatefulSet", POSTGRESQL)
    assert statefulset["spec"]["serviceName"] == POSTGRESQL
    assert statefulset["spec"]["replicas"] == 1
    spec = statefulset["spec"]["template"]["spec"]
    database = container(statefulset)
    image = database["image"]
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert image == f"postgres:{values['postgresql']['image']['tag']}"
    assert not image.endswith(":latest") and any(ch.isdigit() for ch in image.split(":")[1])
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 999
    assert database["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in database["volumeMounts"]}
    assert mounts["/var/lib/postgresql/data"] == "data"
    assert {"/var/run/postgresql", "/tmp"} <= set(mounts)
    assert env(database)["PGDATA"].startswith("/var/lib/postgresql/data/")
    assert secret_refs(database) == {"POSTGRES_PASSWORD": (POSTGRESQL, "password")}
    assert database["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["storageClassName"] == "premium-rwo"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    policy = one(objects, "NetworkPolicy", POSTGRESQL)["spec"]["ingress"][0]
    callers = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in policy["from"]
    }
    assert callers == {"router", "worker"}


def test_the_password_given_is_the_one_used():
    objects = template("--set", "jobs.enabled=true,postgresql.enabled=true")
    again = template("--set", "jobs.enabled=true,postgresql.enabled=true")
    # Generated (here at each render: no cluster to read the Secret back from), never a
    # constant of the chart.
    assert secret_value(objects, POSTGRESQL, "password") != secret_value(
        again, POSTGRESQL, "password"
    )
    given = template(
        "--set", "jobs.enabled=true,postgresql.enabled=true,postgresql.auth.password=S3cret"
    )
    assert secret_value(given, POSTGRESQL, "password") == "S3cret"
    assert conninfo_to_dict(secret_value(given, POSTGRESQL, "url"))["password"] == "S3cret"


def test_the_embedded_store_runs_one_worker_beside_the_router(rendered, monkeypatch):
    objects = rendered["embedded-jobs"]
    assert named(objects, WORKER) == {"Service"}  # no Deployment, autoscaler or budget
    router = one(objects, "Deployment", ROUTER)
    assert router["spec"]["replicas"] == 1
    # The claim attaches to one node: the old pod lets go of it before the new one starts.
    assert router["spec"]["strategy"] == {"type": "Recreate"}
    spec = router["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["router", "worker"]
    routing, worker = spec["containers"]
    assert env(routing)["ROUTER_DATA_DIR"] == env(worker)["WORKER_DATA_DIR"] == "/data"
    for c in (routing, worker):
        assert {"name": "jobs-data", "mountPath": "/data"} in c["volumeMounts"]
        assert not secret_refs(c)
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["jobs-data"]["persistentVolumeClaim"]["claimName"] == f"{PREFIX}-jobs"
    claim = one(objects, "PersistentVolumeClaim", f"{PREFIX}-jobs")
    assert claim["spec"]["storageClassName"] == "standard-rwo"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # The worker calls the router beside it, and serves HTTP on a port of its own.
    variables = env(worker)
    assert variables["WORKER_TARGET"] == "localhost:50051"
    assert variables["WORKER_MAX_ATTEMPTS"] == "5"
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    assert ports == {"worker-http": 9095}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "worker-http"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "worker-http"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = WorkerSettings()
    assert settings.store.enabled and settings.http_port == 9095
    # Prometheus scrapes it through the workers' Service, which selects the router's pod.
    service = one(objects, "Service", WORKER)["spec"]
    assert service["selector"]["app.kubernetes.io/component"] == "router"
    assert service["ports"][0]["targetPort"] == "worker-http"
    rule = one(objects, "PrometheusRule", PREFIX)
    alerts = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert f'job="{WORKER}"' in alerts["SttJobLeaseExpiries"]
    policy = one(objects, "NetworkPolicy", ROUTER)["spec"]["ingress"][1]
    assert {p["port"] for p in policy["ports"]} == {"http", "worker-http"}


def test_the_workers_deployment(rendered):
    objects = rendered["everything"]
    assert named(objects, WORKER) >= WORKER_KINDS
    worker = one(objects, "Deployment", WORKER)
    assert "replicas" not in worker["spec"]  # the HPA's
    spec = worker["spec"]["template"]["spec"]
    main = container(worker)
    assert main["args"] == ["worker"]
    assert not main["image"].endswith("-cuda")  # on the GPU pool, asking for no GPU
    assert "nvidia.com/gpu" not in json.dumps(main["resources"])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec[
        "tolerations"
    ]
    variables = env(main)
    assert variables["WORKER_TARGET"] == f"dns:///{ROUTER}.{NAMESPACE}.svc.cluster.local:50051"
    assert variables["WORKER_RESULT_TTL_S"] == "259200"
    assert env(container(one(objects, "Deployment", ROUTER)))["ROUTER_RESULT_TTL_S"] == "259200"
    assert variables["WORKER_CHUNK_SECONDS"] == "45"
    assert {p["name"]: p["containerPort"] for p in main["ports"]} == {"http": 9090}
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz")):
        assert main[probe]["httpGet"] == {"path": path, "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    gpu_pool = pod(rendered["gpu-pool"], "Deployment", WORKER)
    assert gpu_pool["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert "runtimeClassName" not in gpu_pool  # no GPU container in it
    assert "nodeSelector" not in pod(rendered["cpu-only"], "Deployment", WORKER)
    budget = one(objects, "PodDisruptionBudget", WORKER)["spec"]
    assert budget["maxUnavailable"] == 1
    assert budget["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"


def test_workers_scale_on_the_job_backlog(rendered):
    objects = rendered["gpu-pool"]
    hpa = one(objects, "HorizontalPodAutoscaler", WORKER)["spec"]
    assert hpa["scaleTargetRef"]["name"] == WORKER
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    (metric,) = hpa["metrics"]
    assert metric["type"] == "External"
    # The router's gauges, through the Service Prometheus scrapes it by (its `job` label).
    assert metric["external"]["metric"]["selector"] == {"matchLabels": {"job": ROUTER}}
    assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "2"}
    adapter = yaml.safe_load(
        one(objects, "ConfigMap", f"{PREFIX}-adapter-rules")["data"]["config.yaml"]
    )
    (rule,) = adapter["externalRules"]
    assert rule["name"]["as"] == metric["external"]["metric"]["name"] == "stt_jobs_backlog"
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}
    assert adapter["rules"][0]["name"]["as"] == "stt_inflight_plus_queued"  # the services' own
    assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_job_alerts(rendered):
    rule = one(rendered["everything"], "PrometheusRule", PREFIX)
    alerts = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    backlog = alerts["SttJobQueueBacklog"]
    assert f'job="{ROUTER}"' in backlog["expr"] and "> 20" in backlog["expr"]
    assert backlog["for"] == "30m"
    assert backlog["labels"] == {"severity": "warning", "team": "speech"}
    expiries = alerts["SttJobLeaseExpiries"]
    assert f'job="{WORKER}"' in expiries["expr"] and "[1h]" in expiries["expr"]
    # Each can be switched off; with jobs off there is neither.
    off = template(
        "-f",
        str(CI_VALUES["everything"]),
        "--set",
        "prometheusRule.jobQueueBacklog.enabled=false",
    )
    names = [r["alert"] for r in one(off, "PrometheusRule", PREFIX)["spec"]["groups"][0]["rules"]]
    assert "SttJobQueueBacklog" not in names and "SttJobLeaseExpiries" in names
    no_jobs = template("--set", "prometheusRule.enabled=true")
    text = json.dumps(one(no_jobs, "PrometheusRule", PREFIX))
    assert "SttJob" not in text and WORKER not in text


def test_dashboard_has_a_jobs_row_and_diarization(rendered):
    dashboard = json.loads(
        one(rendered["default"], "ConfigMap", f"{PREFIX}-dashboard")["data"]["stt-suite.json"]
    )
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows[-2:] == ["Jobs", "Diarization"]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for needed in (
        "queued",
        "running",
        "finished by status",
        "job latency",
        "audio",
        "lease",
        "heartbeats",
        "diarize",
    ):
        assert needed in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_notes_tell_about_jobs():
    done = helm(
        "install",
        "stt",
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--dry-run=client",
        "--set",
        "jobs.enabled=true,postgresql.enabled=true,worker.autoscaling.enabled=true",
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "LongRunningRecognize" in notes
    assert f"Secret {POSTGRESQL}" in notes
    assert "scaled on stt_jobs_backlog" in notes
    assert f"served by dns:///{DIARIZATION}" in notes


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        # The embedded SQLite store: one file, one router, one worker.
        ("jobs.enabled=true", "the embedded SQLite job store serves one router"),
        ("jobs.enabled=true,router.replicas=1,router.autoscaling.enabled=true", "one router"),
        ("jobs.enabled=true,router.replicas=1,worker.replicas=2", "serves one worker"),
        (
            "jobs.enabled=true,router.replicas=1,worker.autoscaling.enabled=true",
            "serves one worker",
        ),
        (
            "jobs.enabled=true,router.replicas=1,jobs.embedded.workerHttpPort=9090",
            "workerHttpPort must differ",
        ),
        # A database named twice, or one for jobs that are off.
        (
            "jobs.enabled=true,postgresql.enabled=true,jobs.database.url=postgresql://h/d",
            "set one",
        ),
        (
            "jobs.enabled=true,jobs.database.existingSecret=s,jobs.database.url=postgresql://h/d",
            "set one",
        ),
        ("postgresql.enabled=true", "postgresql.enabled needs jobs.enabled"),
    ],
)
def test_templates_refuse_stores_that_cannot_work(setting, complaint):
    done = helm("template", "stt", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert complaint in done.stderr, done.stderr


def test_sqlite_with_one_router_and_postgresql_with_many_are_fine():
    assert template("--set", "jobs.enabled=true,router.replicas=1")
    many = template(
        "--set",
        "jobs.enabled=true,jobs.database.url=postgresql://h/d,worker.replicas=5,"
        "router.autoscaling.enabled=true",
    )
    assert one(many, "Deployment", WORKER)["spec"]["replicas"] == 5


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("diarization.enabled=yes", "diarization/enabled"),
        ("diarization.computeType=int8", "'computeType' not allowed"),
        ("diarization.languages[0]=en", "'languages' not allowed"),
        ("diarization.gpus=-1", "minimum"),
        ("services.diarization.enabled=true", "diarization"),
        ("services.worker.enabled=true", "worker"),
        ("jobs.database.url=mysql://h/d", "jobs/database/url"),
        ("jobs.resultTtlSeconds=0", "jobs/resultTtlSeconds"),
        ("jobs.embedded.mountPath=data", "jobs/embedded/mountPath"),
        ("jobs.embedded.workerHttpPort=70000", "maximum"),
        ("jobs.sqlite=true", "'sqlite' not allowed"),
        ("worker.replicas=-1", "minimum"),
        ("worker.autoscaling.jobsPerWorker=lots", "worker/autoscaling/jobsPerWorker"),
        ("worker.autoscaling.jobsPerWorker=0", "worker/autoscaling/jobsPerWorker"),
        ("worker.gpus=1", "'gpus' not allowed"),
        ("worker.onGpuPool=maybe", "worker/onGpuPool"),
        ("postgresql.image.tag=latest", "postgresql/image/tag"),
        ("postgresql.auth.password=p@ss", "postgresql/auth/password"),
        ("postgresql.auth.username=Bad-User", "postgresql/auth/username"),
        ("prometheusRule.jobQueueBacklog.jobs=-1", "minimum"),
        ("prometheusRule.jobLeaseExpiries.for=soon", "prometheusRule/jobLeaseExpiries/for"),
        ("metricsAdapter.jobsMetricName=Jobs-Backlog", "metricsAdapter/jobsMetricName"),
    ],
)
def test_schema_rejects_bad_job_and_diarization_values(setting, complaint):
    assert_schema_rejects(setting, complaint)
