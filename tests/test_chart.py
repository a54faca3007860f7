"""The Helm chart, rendered by a real helm binary: lint, Kubernetes schemas, and what each
object must say (probes, GPUs, drain, security, the routing table, autoscaling, the schema).
The jobs and the diarization service are tested in test_chart_jobs.py.

Each values set (the defaults and every `ci/*-values.yaml`) is rendered once per module.
"""

from __future__ import annotations

import copy
import json

import kubernetes_validate
import pytest
import yaml

from services import registry, stack
from services.jobs.worker.settings import WorkerSettings
from services.router.config import load_file
from services.router.routing import RoutingTable
from services.router.settings import RouterSettings
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
    server_container,
    template,
    values_args,
)

VALUE_SETS = ["default", *CI_VALUES]
# The oldest Kubernetes the chart supports, and the newest the helm binary knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.35.0")
# Custom resources of the Prometheus Operator: no Kubernetes schema to check them against.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
LANGUAGE_SERVICES = {m.service for m in registry.MEMBERS if not m.diarization}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: template(*values_args(name)) for name in VALUE_SETS}


def deployments(objects: list[dict]) -> dict[str, dict]:
    """Model server Deployments (language services, diarization) by name (the router's and the
    workers' left out)."""
    found = of_kind(objects, "Deployment")
    return {
        name.removeprefix(f"{PREFIX}-").replace("-", "_"): d
        for name, d in found.items()
        if name not in (f"{PREFIX}-router", f"{PREFIX}-worker")
    }


def language_deployments(objects: list[dict]) -> dict[str, dict]:
    return {name: d for name, d in deployments(objects).items() if name != "diarization"}


def served(deployment: dict) -> str:
    """The service `stt serve` runs in this Deployment."""
    args = container(deployment)["args"]
    assert args[0] == "serve"
    return args[1]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint(values):
    done = helm("lint", "--strict", str(CHART), "--namespace", NAMESPACE, *values_args(values))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_objects_are_valid_kubernetes(rendered, values):
    for obj in rendered[values]:
        if obj["kind"] in OPERATOR_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_rejects_a_wrong_object(rendered):
    """The check above can fail: an unknown field in a container is refused."""
    deployment = copy.deepcopy(one(rendered["default"], "Deployment", f"{PREFIX}-router"))
    container(deployment)["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_probes_use_grpc_health(rendered):
    objects = rendered["default"]
    router = container(one(objects, "Deployment", f"{PREFIX}-router"))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # The router's own entry: a backend that is down never restarts the router.
        assert router[probe]["grpc"] == {"port": 50051, "service": "router"}
    for name, deployment in deployments(objects).items():
        service = container(deployment)
        # A language service's whole server; the diarization service's own entry.
        entry = "stt.v1.Diarization" if name == "diarization" else ""
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert service[probe]["grpc"] == {"port": 50051, "service": entry}
        startup = service["startupProbe"]
        # Long enough for a model download and warm-up: the default is 30 minutes.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800


def test_probes_over_http_when_asked(rendered):
    for deployment in of_kind(rendered["cpu-only"], "Deployment").values():
        service = container(deployment)
        assert service["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert service["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert service["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert "grpc" not in service["readinessProbe"]


def test_gpu_resources_and_tolerations_land_where_asked(rendered):
    found = deployments(rendered["everything"])
    assert set(found) == {"whisper_en", "hausa_stt", "arabic_words", "yoruba", "diarization"}
    gpu_toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for name, deployment in found.items():
        pod = deployment["spec"]["template"]["spec"]
        service = container(deployment)
        prefix = served(deployment).upper() + "_"
        resources = service["resources"]
        if name in ("whisper_en", "hausa_stt", "diarization"):
            assert resources["limits"]["nvidia.com/gpu"] == 1
            assert resources["requests"]["nvidia.com/gpu"] == 1
            assert gpu_toleration in pod["tolerations"]
            assert service["image"].endswith(":0.1.0-cuda")
            assert pod["initContainers"][0]["image"] == service["image"]
            assert env(service)[f"{prefix}DEVICE"] == "cuda"
        else:
            assert "nvidia.com/gpu" not in resources.get("limits", {})
            assert gpu_toleration not in pod.get("tolerations", [])
            assert service["image"].endswith(":0.1.0")
            assert env(service)[f"{prefix}DEVICE"] == "cpu"
    hausa = found["hausa_stt"]["spec"]["template"]["spec"]["tolerations"]
    assert {"key": "dedicated", "operator": "Equal", "value": "speech", "effect": "NoSchedule"} in (
        hausa
    )
    gpu_pool = deployments(rendered["gpu-pool"])
    for deployment in gpu_pool.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
        assert pod["runtimeClassName"] == "nvidia"
    assert env(container(gpu_pool["hausa_stt"]))["HAUSA_STT_GPU_MEMORY_FRACTION"] == "0.8"


@pytest.mark.parametrize("disabled", sorted(LANGUAGE_SERVICES))
def test_disabling_a_service_removes_all_its_objects(disabled):
    everything = ["-f", str(CI_VALUES["everything"])]
    before = template(*everything)
    # The extra route to whisper_en goes too: a route to a disabled service is refused (below).
    after = template(
        *everything, "--set", f"services.{disabled}.enabled=false,router.extraRoutes.fr=null"
    )
    name = f"{PREFIX}-{disabled.replace('_', '-')}"
    owned = {(o["kind"], o["metadata"]["name"]) for o in before if name in json.dumps(o)}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= {
        kind for kind, _ in owned
    }
    text = yaml.safe_dump_all(after)
    assert name not in text  # no object, route, alert or policy names it any more
    assert disabled not in routes_file(after)
    assert not [o for o in after if component(o) == disabled.replace("_", "-")]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_router_routes_exactly_the_enabled_services(rendered, values, tmp_path):
    objects = rendered[values]
    enabled = set(language_deployments(objects))
    path = tmp_path / "routes.yaml"
    path.write_text(routes_file(objects), encoding="utf-8")
    table = load_file(path)  # the router's own reader
    RoutingTable(table)  # and its checks: every route's backends exist, the detector too
    extra = {"yoruba"} if values == "everything" else set()
    assert set(table.backends) == enabled
    assert {b for chain in table.routes.values() for b in chain} == enabled
    assert enabled - {"whisper_en"} <= LANGUAGE_SERVICES | extra
    services = of_kind(objects, "Service")
    for name, target in table.backends.items():
        headless = f"{PREFIX}-{name.replace('_', '-')}"
        assert target == f"dns:///{headless}.{NAMESPACE}.svc.cluster.local:50051"
        assert services[headless]["spec"]["clusterIP"] == "None"
    router = server_container(one(objects, "Deployment", f"{PREFIX}-router"))
    assert env(router)["ROUTER_ROUTES_FILE"] == "/etc/stt-suite/routes.yaml"
    # The diarization service's headless Service, when it runs, is the router's target.
    diarization = f"{PREFIX}-diarization"
    if diarization in services:
        assert services[diarization]["spec"]["clusterIP"] == "None"
        assert table.diarization == f"dns:///{diarization}.{NAMESPACE}.svc.cluster.local:50051"
    else:
        assert table.diarization == ""


def test_default_routes_are_those_of_stt_up(rendered, tmp_path):
    """The chart routes as the local stack does: each language to its service, then Whisper."""
    path = tmp_path / "routes.yaml"
    path.write_text(routes_file(rendered["default"]), encoding="utf-8")
    local = stack.routing(registry.MEMBERS, list(registry.MEMBERS))
    assert load_file(path).routes == local.routes
    assert load_file(path).detector == local.detector == "whisper_en"
    one_language = load_file(_written(tmp_path, routes_file(rendered["one-language"])))
    assert one_language.routes == {"en": ("whisper_en",), "*": ("whisper_en",)}


def test_the_charts_language_services_are_the_registry_s():
    """A new language service is one entry in services/registry.py: `stt serve`, `stt up` and
    the chart's defaults all follow it."""
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    members = [m for m in registry.MEMBERS if not m.diarization]
    assert set(values["services"]) == {m.service for m in members}
    for member in members:
        entry = values["services"][member.service]
        assert tuple(entry["languages"]) == member.languages, member.service
        default_model = registry.load(member.service).Settings.model_fields["model"].default
        assert entry["model"] == default_model, member.service
    assert values["diarization"]["enabled"] == any(m.diarization for m in registry.MEMBERS)


def _written(tmp_path, text: str):
    path = tmp_path / "other.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("values", VALUE_SETS)
def test_environment_is_what_the_settings_read(rendered, values, monkeypatch):
    """Every variable with a server's prefix is one of its settings, and they validate."""
    objects = rendered[values]
    servers = [(d, c) for d in of_kind(objects, "Deployment").values() for c in _containers(d)]
    for deployment, main in servers:
        variables = env(main)
        if main["args"] == ["router"]:
            prefix, settings_class = "ROUTER_", RouterSettings
        elif main["args"] == ["worker"]:
            prefix, settings_class = "WORKER_", WorkerSettings
        else:
            service = served(deployment)
            prefix, settings_class = service.upper() + "_", registry.load(service).Settings
            fetch = deployment["spec"]["template"]["spec"].get("initContainers", [])
            for init in fetch:  # the fetch reads the same settings as serve
                assert init["args"] == ["fetch", service]
                assert {k: v for k, v in env(init).items() if k.startswith(prefix)} == {
                    k: v for k, v in variables.items() if k.startswith(prefix)
                }
        ours = {k: v for k, v in variables.items() if k.startswith(prefix)}
        known = {variable for variable, _ in settings_class.variables()}
        assert set(ours) <= known, f"unknown settings in {ours}"
        for name in list(variables):
            monkeypatch.delenv(name, raising=False)
        for name, value in ours.items():
            monkeypatch.setenv(name, value)
        settings = settings_class()
        assert settings.host == "0.0.0.0"
        ports = {p["name"]: p["containerPort"] for p in main["ports"]}
        if settings_class is WorkerSettings:  # HTTP only; beside the router on a port of its own
            assert settings.http_port == ports.get("http", ports.get("worker-http"))
        else:
            assert (settings.grpc_port, settings.http_port) == (ports["grpc"], ports["http"])
        for name in ours:
            monkeypatch.delenv(name)


def _containers(deployment: dict) -> list[dict]:
    return deployment["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_drain_matches_the_servers_grace(rendered, values):
    for deployment in of_kind(rendered[values], "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        for main in _containers(deployment):
            grace = float(next(v for k, v in env(main).items() if k.endswith("_DRAIN_GRACE_S")))
            wait = 0.0
            if main["args"] != ["worker"]:  # a worker is behind no Service: nothing to wait for
                pre_stop = main["lifecycle"]["preStop"]["exec"]["command"]
                assert pre_stop[0] == "sleep"
                wait = float(pre_stop[1])
            # SIGTERM comes after the preStop wait; the drain must end before the kill (a
            # worker waits up to 5 s past its grace for its thread to let go of the job).
            extra = 5.0 if main["args"] == ["worker"] else 0.0
            assert pod["terminationGracePeriodSeconds"] > wait + grace + extra - 0.001


@pytest.mark.parametrize("values", VALUE_SETS)
def test_pods_run_locked_down(rendered, values):
    objects = rendered[values]
    for account in of_kind(objects, "ServiceAccount").values():
        assert account["automountServiceAccountToken"] is False
    pods = [d["spec"]["template"]["spec"] for d in of_kind(objects, "Deployment").values()]
    pods += [s["spec"]["template"]["spec"] for s in of_kind(objects, "StatefulSet").values()]
    pods += [p["spec"] for p in of_kind(objects, "Pod").values()]
    assert pods
    for pod in pods:
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for c in pod["containers"] + pod.get("initContainers", []):
            security = c["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            assert "/tmp" in mounts  # the one writable place besides the model cache


def test_hpa_scales_on_the_adapter_metric_with_a_cpu_fallback(rendered):
    objects = rendered["gpu-pool"]
    adapter = one(objects, "ConfigMap", f"{PREFIX}-adapter-rules")
    assert adapter["metadata"]["namespace"] == "monitoring"
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    served_name = rules[0]["name"]["as"]
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    model_servers = ("whisper-en", "hausa-stt", "arabic-words", "diarization")
    assert set(hpas) == {f"{PREFIX}-{n}" for n in model_servers} | {
        f"{PREFIX}-router",
        f"{PREFIX}-worker",
    }
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        assert "replicas" not in one(objects, "Deployment", name)["spec"]
        metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
        if name.endswith("-worker"):  # on the job backlog: test_chart_jobs.py
            assert set(metrics) == {"External"}
            continue
        assert metrics["Resource"]["resource"]["name"] == "cpu"
        if name.endswith("-router"):
            continue
        assert metrics["Pods"]["pods"]["metric"]["name"] == served_name
        assert metrics["Pods"]["pods"]["target"] == {"type": "AverageValue", "averageValue": "6"}
        behavior = hpa["spec"]["behavior"]
        assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
        assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    cpu_only = of_kind(rendered["cpu-only"], "HorizontalPodAutoscaler")
    for hpa in cpu_only.values():
        assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]


def test_monitoring_objects(rendered):
    objects = rendered["everything"]
    monitor = one(objects, "ServiceMonitor", PREFIX)
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "http" and endpoint["honorLabels"] is True
    selector = monitor["spec"]["selector"]
    (excluded,) = selector["matchExpressions"]
    assert (excluded["key"], excluded["operator"]) == ("app.kubernetes.io/component", "NotIn")
    scraped = {
        name
        for name, s in of_kind(objects, "Service").items()
        if selector["matchLabels"].items() <= s["metadata"]["labels"].items()
        and component(s) not in excluded["values"]
    }
    # The router, four language services, diarization and the workers; not PostgreSQL.
    assert len(scraped) == 7 and f"{PREFIX}-worker" in scraped
    assert f"{PREFIX}-postgresql" in of_kind(objects, "Service")
    assert f"{PREFIX}-postgresql" not in scraped
    rule = one(objects, "PrometheusRule", PREFIX)
    alerts = [r["alert"] for r in rule["spec"]["groups"][0]["rules"]]
    assert alerts.count("SttNoReadyReplica") == 7
    assert alerts.count("SttGpuMemoryNearLimit") == 2  # the two GPU language services
    assert {"SttHighRejectionRate", "SttHighLatency"} <= set(alerts)
    dashboard = one(objects, "ConfigMap", f"{PREFIX}-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Speech"}
    panels = json.loads(dashboard["data"]["stt-suite.json"])["panels"]
    titles = " ".join(p["title"] for p in panels).lower()
    for needed in ("latency", "real-time factor", "in flight", "rejections", "cache", "gpu"):
        assert needed in titles
    policies = of_kind(objects, "NetworkPolicy")
    # The router, four language services, diarization, the workers, PostgreSQL.
    assert len(policies) == 8
    router_policy = policies[f"{PREFIX}-router"]["spec"]["ingress"]
    assert router_policy[0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "stt-suite/client": "true"
    }
    # Clients reach the OpenAI audio API on the router's HTTP port too.
    assert [p["port"] for p in router_policy[0]["ports"]] == ["grpc", "http"]
    whisper = policies[f"{PREFIX}-whisper-en"]["spec"]["ingress"][0]["from"][0]
    assert whisper["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "router"


def test_otel_values_reach_every_server(rendered):
    for deployment in of_kind(rendered["everything"], "Deployment").values():
        variables = env(container(deployment))
        assert (
            variables["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4317"
        )
        attributes = variables["OTEL_RESOURCE_ATTRIBUTES"].split(",")
        assert "deployment.environment=production" in attributes
        assert "k8s.pod.name=$(K8S_POD_NAME)" in attributes
    for deployment in of_kind(rendered["default"], "Deployment").values():
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env(container(deployment))


def test_model_cache_and_fetch(rendered):
    gpu_pool = rendered["gpu-pool"]
    claims = of_kind(gpu_pool, "PersistentVolumeClaim")
    names = ("whisper-en", "hausa-stt", "arabic-words", "diarization")
    assert set(claims) == {f"{PREFIX}-{n}-models" for n in names}
    for claim in claims.values():
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    whisper = one(gpu_pool, "Deployment", f"{PREFIX}-whisper-en")
    pod = whisper["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim = volumes["model-cache"]["persistentVolumeClaim"]["claimName"]
    assert claim == f"{PREFIX}-whisper-en-models"
    variables = env(container(whisper))
    assert variables["WHISPER_EN_MODEL_CACHE_DIR"] == "/models/stt-suite"
    assert variables["HF_HOME"] == "/models/huggingface"
    assert variables["HF_HUB_OFFLINE"] == "1"  # the init container fetched it
    assert pod["initContainers"][0]["args"] == ["fetch", "whisper_en"]
    token = one(rendered["everything"], "Deployment", f"{PREFIX}-hausa-stt")
    fetch_env = token["spec"]["template"]["spec"]["initContainers"][0]["env"]
    assert "HF_TOKEN" in {e["name"] for e in fetch_env}  # the fetch is what needs it
    everything = rendered["everything"]
    arabic = one(everything, "Deployment", f"{PREFIX}-arabic-words")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in arabic["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "speech-models"
    assert f"{PREFIX}-arabic-words-models" not in of_kind(everything, "PersistentVolumeClaim")
    one_language = one(rendered["one-language"], "Deployment", f"{PREFIX}-whisper-en")
    assert "initContainers" not in one_language["spec"]["template"]["spec"]
    assert "HF_HUB_OFFLINE" not in env(container(one_language))
    assert env(container(one_language))["WHISPER_EN_LANGUAGES"] == "en"


def test_helm_test_pod_checks_the_router(rendered):
    pod = one(rendered["default"], "Pod", f"{PREFIX}-router-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    args = pod["spec"]["containers"][0]["args"]
    assert args[:3] == ["check", "--target", f"{PREFIX}-router:50051"]
    assert not of_kind(rendered["one-language"], "Pod")


def test_notes_tell_how_to_call_the_router():
    done = helm("install", "stt", str(CHART), "--namespace", NAMESPACE, "--dry-run=client")
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert f"{PREFIX}-router.{NAMESPACE}.svc.cluster.local:50051" in notes
    assert "ha: hausa_stt, whisper_en" in notes


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("replicaCount=3", "additional properties 'replicaCount' not allowed"),
        ("services.whisper_en.maxConcurrency=many", "want integer"),
        ("services.whisper_en.gpus=-1", "minimum"),
        ("services.whisper_en.maxConcurency=4", "'maxConcurency' not allowed"),
        ("probes.type=tcp", "probes/type"),
        ("router.service.grpcPort=70000", "maximum"),
        ("modelCache.type=hostPath", "modelCache/type"),
        ("services.Bad-Name.enabled=true", "Bad-Name"),
    ],
)
def test_schema_rejects_bad_values(setting, complaint):
    assert_schema_rejects(setting, complaint)


def test_a_router_without_routes_is_refused():
    off = [f"services.{name}.enabled=false" for name in sorted(LANGUAGE_SERVICES)]
    done = helm("template", "stt", str(CHART), "--set", ",".join(off))
    assert done.returncode != 0
    assert "the router would have no route" in done.stderr


def test_a_route_to_a_disabled_service_is_refused():
    done = helm(
        "template",
        "stt",
        str(CHART),
        "--set",
        "services.whisper_en.enabled=false",
        "--set",
        "router.extraRoutes.fr[0]=whisper_en",
    )
    assert done.returncode != 0
    assert 'route "fr" names backend "whisper_en", which is neither' in done.stderr


def test_the_chart_deploys_the_images_make_builds():
    """The default image tag (appVersion) is the version `make images` tags with."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text(encoding="utf-8"))
    pyproject = (CHART.parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{chart["appVersion"]}"' in pyproject
