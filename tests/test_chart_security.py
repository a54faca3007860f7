"""The chart's security values, rendered by a real helm: TLS on every server (the certificate
Secret mounted, the variables pointing at its files, mutual TLS with a client CA), the router's
and the workers' TLS to the servers they call, the probes on the plain-text health port that
no Service exposes, the keys file and the workers' key from Secrets, the job URI policy, the
ServiceMonitor and the test pod over TLS, and the values refused. ci/security-values.yaml is
also linted and validated with every other values set in test_chart.py."""

from __future__ import annotations

import pytest

from services import registry
from services.jobs.worker.settings import WorkerSettings
from services.router.settings import RouterSettings
from tests.chart_support import (
    CI_VALUES,
    PREFIX,
    assert_schema_rejects,
    container,
    env,
    helm,
    of_kind,
    one,
    server_container,
    template,
)

TLS_DIR = "/var/run/secrets/stt-suite/tls"
CA_DIR = "/var/run/secrets/stt-suite/client-ca"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


@pytest.fixture(scope="module")
def secure() -> list[dict]:
    return template("-f", str(CI_VALUES["security"]))


@pytest.fixture(scope="module")
def embedded() -> list[dict]:
    """TLS without a client CA, and jobs on the embedded store (the worker in the router's pod)."""
    return template(
        "--set",
        "tls.enabled=true",
        "--set",
        "tls.secretName=stt-tls",
        "--set",
        "jobs.enabled=true",
        "--set",
        "router.replicas=1",
    )


def servers(objects: list[dict]) -> list[tuple[dict, dict]]:
    """Every (Deployment, container) that serves."""
    return [
        (d, c)
        for d in of_kind(objects, "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def prefix_of(deployment: dict, main: dict) -> str:
    if main["args"] == ["router"]:
        return "ROUTER_"
    if main["args"] == ["worker"]:
        return "WORKER_"
    return main["args"][1].upper() + "_"


def volumes(deployment: dict) -> dict[str, dict]:
    return {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}


def test_every_server_serves_mutual_tls_from_the_secret(secure):
    found = servers(secure)
    assert {prefix_of(d, c) for d, c in found} >= {"ROUTER_", "WORKER_", "WHISPER_EN_"}
    for deployment, main in found:
        prefix, variables = prefix_of(deployment, main), env(main)
        assert variables[f"{prefix}TLS_CERT_FILE"] == f"{TLS_DIR}/tls.crt"
        assert variables[f"{prefix}TLS_KEY_FILE"] == f"{TLS_DIR}/tls.key"
        assert variables[f"{prefix}TLS_CLIENT_CA_FILE"] == f"{CA_DIR}/ca.crt"
        mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
        assert mounts[TLS_DIR]["readOnly"] and mounts[CA_DIR]["readOnly"]
        # The whole Secret, not a subPath: a renewed Secret reaches the running pod.
        assert all("subPath" not in m for m in mounts.values())
        pod_volumes = volumes(deployment)
        assert pod_volumes["tls"]["secret"]["secretName"] == "stt-suite-tls"
        assert pod_volumes["client-ca"]["secret"]["secretName"] == "stt-suite-client-ca"


def test_the_servers_settings_read_what_the_chart_sets(secure, monkeypatch):
    for deployment, main in servers(secure):
        prefix = prefix_of(deployment, main)
        if prefix == "ROUTER_":
            settings_class = RouterSettings
        elif prefix == "WORKER_":
            settings_class = WorkerSettings
        else:
            settings_class = registry.load(main["args"][1]).Settings
        for name, value in env(main).items():
            monkeypatch.setenv(name, value)
        settings = settings_class()
        assert str(settings.tls.cert_file) == f"{TLS_DIR}/tls.crt"
        assert (
            settings.health_port == {p["name"]: p["containerPort"] for p in main["ports"]}["health"]
        )
        if prefix == "ROUTER_":
            assert str(settings.backend_tls.ca_file) == f"{TLS_DIR}/ca.crt"
            assert str(settings.backend_tls.cert_file) == f"{TLS_DIR}/tls.crt"
            assert str(settings.api_keys_file) == "/var/run/secrets/stt-suite/keys/keys"
        if prefix in ("ROUTER_", "WORKER_"):
            uris = settings.job_uris
            assert [str(p) for p in uris.file_roots] == ["/recordings"]
            assert uris.allowed_private_hosts == ["minio.storage.svc:9000"]
            assert uris.allowed_hosts == ["minio.storage.svc", "*.s3.example.com"]
        if prefix == "WORKER_":
            assert str(settings.target_tls.ca_file) == f"{TLS_DIR}/ca.crt"
            assert str(settings.target_tls.key_file) == f"{TLS_DIR}/tls.key"
            assert str(settings.api_key_file) == "/var/run/secrets/stt-suite/api-key/key"
        for name in env(main):
            monkeypatch.delenv(name)


def test_probes_ask_the_plain_text_health_port_which_no_service_exposes(secure, embedded):
    for objects in (secure, embedded):
        for _, main in servers(objects):
            ports = {p["name"]: p["containerPort"] for p in main["ports"]}
            health = "worker-health" if "worker-health" in ports else "health"
            for probe in PROBES:
                assert "grpc" not in main[probe]
                assert main[probe]["httpGet"]["port"] == health
            assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
        for service in of_kind(objects, "Service").values():
            names = {p.get("targetPort", p.get("name")) for p in service["spec"]["ports"]}
            assert not names & {"health", "worker-health", 8081, 9096}


def test_the_worker_beside_the_router_has_ports_of_its_own(embedded):
    router = one(embedded, "Deployment", f"{PREFIX}-router")
    worker = container(router, "worker")
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    router_ports = {p["containerPort"] for p in server_container(router)["ports"]}
    assert ports == {"worker-http": 9095, "worker-health": 9096}
    assert not set(ports.values()) & router_ports
    variables = env(worker)
    assert variables["WORKER_HEALTH_PORT"] == "9096"
    assert variables["WORKER_TARGET_TLS_CA_FILE"] == f"{TLS_DIR}/ca.crt"
    assert "WORKER_TARGET_TLS_CERT_FILE" not in variables  # no client CA: no client cert
    assert "ROUTER_TLS_CLIENT_CA_FILE" not in env(server_container(router))


def test_tls_off_by_default_changes_nothing():
    for _, main in servers(template()):
        assert not [k for k in env(main) if "TLS" in k or k.endswith("HEALTH_PORT")]
        assert "health" not in {p["name"] for p in main["ports"]}
        assert all(m["name"] not in ("tls", "client-ca") for m in main["volumeMounts"])


def test_monitoring_and_the_test_pod_speak_tls_with_a_key(secure):
    monitor = next(iter(of_kind(secure, "ServiceMonitor").values()))
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    tls = endpoint["tlsConfig"]
    assert tls["ca"]["secret"] == {"name": "stt-suite-tls", "key": "ca.crt"}
    assert tls["keySecret"] == {"name": "stt-suite-tls", "key": "tls.key"}
    assert tls["serverName"] == f"{PREFIX}-router.speech.svc.cluster.local"
    pod = one(secure, "Pod", f"{PREFIX}-router-test")
    args = pod["spec"]["containers"][0]["args"]
    assert args[:3] == ["check", "--target", f"{PREFIX}-router.speech.svc.cluster.local:50051"]
    flags = dict(zip(args[3::2], args[4::2], strict=False))
    assert flags["--tls-ca"] == f"{TLS_DIR}/ca.crt"
    assert flags["--tls-cert"] == f"{TLS_DIR}/tls.crt"
    assert flags["--api-key-file"] == "/var/run/secrets/stt-suite/api-key/key"
    assert {v["name"] for v in pod["spec"]["volumes"]} >= {"tls", "api-key"}


def test_the_keys_file_and_the_workers_key_come_from_their_secrets(secure):
    router = one(secure, "Deployment", f"{PREFIX}-router")
    keys = volumes(router)["api-keys"]["secret"]
    assert keys == {
        "secretName": "stt-suite-api-keys",
        "items": [{"key": "keys", "path": "keys"}],
        "defaultMode": 0o440,
    }
    worker = one(secure, "Deployment", f"{PREFIX}-worker")
    key = volumes(worker)["api-key"]["secret"]
    assert key["secretName"] == "stt-suite-worker-key"
    assert key["items"] == [{"key": "key", "path": "key"}]
    assert "api-keys" not in volumes(worker), "the workers never see the keys file"


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (["tls.enabled=true"], "tls.enabled needs tls.secretName"),
        (["tls.clientCASecret=ca"], "tls.clientCASecret needs tls.enabled"),
        (["apiKeys.secretName=keys"], "needs apiKeys.clientSecretName"),
        (["apiKeys.clientSecretName=key"], "needs apiKeys.secretName"),
    ],
)
def test_values_that_cannot_work_are_refused(settings, complaint):
    args = [arg for setting in settings for arg in ("--set", setting)]
    done = helm("template", "stt", str(CI_VALUES["security"].parents[1]), *args)
    assert done.returncode != 0
    assert complaint in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("tls.secret=x", "'secret' not allowed"),
        ("ports.health=0", "minimum"),
        ("jobs.uriPolicy.fileRoots={relative}", "does not match"),
        ("apiKeys.secretKey=", "minLength"),
    ],
)
def test_schema_rejects_bad_security_values(setting, complaint):
    assert_schema_rejects(setting, complaint)
