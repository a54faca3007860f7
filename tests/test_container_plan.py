"""How the container check turns the rendered chart into podman arguments (tools/containers),
without running anything: what each field becomes, the names that must resolve, and the
fields it refuses rather than leave out. `make container-check` runs the result."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from tests.chart_support import CI_VALUES
from tools.containers import envvars, pipconf, render, units
from tools.containers.podspec import plan_pod
from tools.containers.render import PodTemplate, RenderError

ROUTER_POD = "stt-stt-suite-router-0"


@pytest.fixture(scope="module")
def rendered() -> render.Rendered:
    return render.render()


@pytest.fixture(scope="module")
def plans(rendered, tmp_path_factory):
    pods = [*rendered.workloads(), *rendered.test_pods()]
    ips = {p.name: f"10.88.0.{10 + i}" for i, p in enumerate(pods)}
    hosts = rendered.hosts(ips)
    root = tmp_path_factory.mktemp("volumes")
    return {p.name: plan_pod(p, rendered, "net", ips[p.name], hosts, root) for p in pods}


def flags(args: list[str]) -> list[tuple[str, str]]:
    """(flag, value) pairs of podman arguments, up to the image."""
    pairs, index = [], 0
    while index < len(args) and args[index].startswith("--"):
        flag = args[index]
        if "=" in flag:
            pairs.append(tuple(flag.split("=", 1)))
            index += 1
        else:
            pairs.append((flag, args[index + 1]))
            index += 2
    return pairs


def test_the_check_starts_the_embedded_set(plans):
    containers = {c.name for p in plans.values() for c in p.containers}
    assert containers == {"router", "worker", "whisper-en", "diarization", "check"}
    inits = {p.name: [c.args[-2:] for c in p.init_containers] for p in plans.values()}
    assert inits["stt-stt-suite-whisper-en-0"] == [["fetch", "whisper_en"]]
    assert inits["stt-stt-suite-diarization-0"] == [["fetch", "diarization"]]


def test_each_container_runs_locked_down_as_rendered(plans):
    for plan in plans.values():
        for container in [*plan.init_containers, *plan.containers]:
            given = flags(container.args)
            assert ("--user", "10001:10001") in given
            assert ("--group-add", "10001") in given  # fsGroup
            assert ("--read-only-tmpfs", "false") in given  # only the pod's mounts write
            assert ("--security-opt", "no-new-privileges") in given
            assert ("--cap-drop", "ALL") in given
            assert ("--pull", "never") in given
            assert ("--read-only", "true") in given
            image_at = container.args.index("stt-suite:0.1.0")
            assert container.args[image_at + 1 :] == container.spec["args"]


def test_variables_are_resolved_as_the_kubelet_does(plans):
    router = next(c for c in plans[ROUTER_POD].containers if c.name == "router")
    assert router.env["K8S_POD_NAME"] == ROUTER_POD
    assert router.env["K8S_NAMESPACE"] == render.NAMESPACE
    assert router.env["OTEL_RESOURCE_ATTRIBUTES"] == (
        f"k8s.pod.name={ROUTER_POD},k8s.namespace.name={render.NAMESPACE},"
        "k8s.node.name=container-check"
    )
    assert ("--env", f"ROUTER_DATA_DIR={router.env['ROUTER_DATA_DIR']}") in flags(router.args)


def test_volumes_are_bind_mounted_with_the_kubelet_s_modes(plans):
    pod = plans[ROUTER_POD]
    volumes = {v.name: v for v in pod.volumes}
    assert volumes["routes"].kind == "configMap"
    assert "routes.yaml" in volumes["routes"].files
    assert volumes["tmp"].mode == 0o2777 and volumes["tmp"].gid == 10001
    assert volumes["jobs-data"].mode == 0o2775  # a claim: root's, fsGroup may write
    router = next(c for c in pod.containers if c.name == "router")
    mounts = [value for flag, value in flags(router.args) if flag == "--mount"]
    assert f"type=bind,source={volumes['routes'].source},destination=/etc/stt-suite,ro=true" in (
        mounts
    )
    worker = next(c for c in pod.containers if c.name == "worker")
    claim = [m for m in flags(worker.args) if m[0] == "--mount" and "destination=/data" in m[1]]
    assert claim == [
        ("--mount", f"type=bind,source={volumes['jobs-data'].source},destination=/data")
    ]


def test_every_name_a_container_calls_is_a_rendered_service(rendered, plans):
    """The targets in variables and in the routing table resolve through the host entries
    made from the rendered Services, and from nothing else."""
    hosts = {h for p in plans.values() for flag, h in flags(p.create_args) if flag == "--add-host"}
    names = {h.rsplit(":", 1)[0] for h in hosts}
    routes = rendered.config_data("ConfigMap", "stt-stt-suite-router")["routes.yaml"]
    values = [v for p in plans.values() for c in p.containers for v in c.env.values()]
    called = set(re.findall(r"dns:///([\w.-]+):\d+", routes + " ".join(values)))
    called |= {re.sub(r":\d+$", "", a) for a in re.findall(r"--target\s+(\S+)", _test_args(plans))}
    assert called and called <= names, called - names
    assert {name for name in names if "." not in name} == set(rendered.of_kind("Service"))


def _test_args(plans) -> str:
    check = next(c for p in plans.values() for c in p.containers if c.name == "check")
    return " ".join(check.spec["args"])


def test_a_pod_publishes_its_ports_on_loopback_only(plans):
    published = [v for flag, v in flags(plans[ROUTER_POD].create_args) if flag == "--publish"]
    assert published == ["127.0.0.1::9090", "127.0.0.1::9095", "127.0.0.1::50051"]


def test_fields_the_check_cannot_apply_stop_it(rendered, tmp_path):
    pod = rendered.workloads()[0]
    spec = copy.deepcopy(pod.spec)
    spec["hostNetwork"] = True
    with pytest.raises(RenderError, match="hostNetwork"):
        plan_pod(
            PodTemplate(pod.name, pod.owner, pod.labels, spec), rendered, "n", "", [], tmp_path
        )
    spec = copy.deepcopy(pod.spec)
    spec["containers"][0]["envFrom"] = [{"secretRef": {"name": "x"}}]
    with pytest.raises(RenderError, match="envFrom"):
        plan_pod(
            PodTemplate(pod.name, pod.owner, pod.labels, spec), rendered, "n", "", [], tmp_path
        )


def test_a_gpu_pod_is_refused_not_run_on_cpu(tmp_path):
    gpu = render.render(render.CHECK_VALUES, "--set", "services.whisper_en.gpus=1")
    whisper = next(p for p in gpu.workloads() if "whisper-en" in p.name)
    with pytest.raises(RenderError, match=r"resources .*nvidia\.com/gpu"):
        plan_pod(whisper, gpu, "n", "10.88.0.10", [], tmp_path)
    pool = render.render(CI_VALUES["gpu-pool"])
    whisper = next(p for p in pool.workloads() if "whisper-en" in p.name)
    with pytest.raises(RenderError, match="runtimeClassName"):
        plan_pod(whisper, pool, "n", "10.88.0.10", [], tmp_path)


def test_a_service_that_moves_a_port_is_refused(rendered):
    moved = copy.deepcopy(rendered)
    service = moved.of_kind("Service")["stt-stt-suite-router"]
    service["spec"]["ports"][0]["port"] = 443
    with pytest.raises(RenderError, match="cannot move a port"):
        moved.hosts({p.name: "10.88.0.10" for p in moved.workloads()})


def test_kubernetes_variable_expansion():
    defined = {"A": "1", "B": "two"}
    assert envvars.expand("$(A)-$(B)", defined) == "1-two"
    assert envvars.expand("$(C) stays", defined) == "$(C) stays"
    assert envvars.expand("$$(A) is escaped", defined) == "$(A) is escaped"
    pod = envvars.PodFields("p", "ns", "node", "10.0.0.1", "sa", {"app": "x"})
    env = [
        {"name": "A", "value": "a"},
        {"name": "B", "value": "$(A)b$(C)"},
        {"name": "C", "value": "c"},
        {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
    ]
    found = envvars.resolve(env, pod, lambda kind, name: {})
    assert found == {"A": "a", "B": "ab$(C)", "C": "c", "L": "x"}  # only earlier ones expand
    with pytest.raises(envvars.EnvError, match="has no key"):
        ref = {"secretKeyRef": {"name": "s", "key": "url"}}
        envvars.resolve([{"name": "U", "valueFrom": ref}], pod, lambda kind, name: {})


def test_quantities():
    assert units.memory_bytes("8Gi") == 8 * 2**30
    assert units.memory_bytes("512Mi") == 512 * 2**20
    assert units.memory_bytes("1G") == 10**9
    assert units.cpu_shares("250m") == 256
    assert units.cpu_shares("2") == 2048
    assert units.cpus("1500m") == 1.5
    with pytest.raises(ValueError):
        units.memory_bytes("lots")


def test_the_host_pip_configuration_becomes_mounts(tmp_path):
    wheels = tmp_path / "wheels"
    index = tmp_path / "mirror" / "simple"
    index.mkdir(parents=True)
    wheels.mkdir()
    listed = "\n".join(
        [
            f"global.find-links='{wheels}'",
            f"global.extra-index-url='file://{index} https://example.invalid/simple'",
            "install.no-binary=':none:'",
            ":env:.default-timeout='180'",
        ]
    )
    sections = pipconf.parse_config_list(listed)
    assert sections["global"]["default-timeout"] == "180"
    assert sections["install"] == {"no-binary": ":none:", "default-timeout": "180"}
    # A file:// index's pages link next to it: its parent folder is mounted.
    assert pipconf.local_paths(sections) == sorted([index.parent, wheels])
    written = pipconf.write_config(sections, tmp_path / "out" / "pip.conf").read_text()
    assert f"find-links = {wheels}" in written
    assert Path(pipconf.CONTAINER_CONFIG) == Path("/etc/pip.conf")


def test_transcripts_are_held_to_what_was_said():
    from tools.containers.audio import SENTENCE, Clip
    from tools.containers.clients import matches

    jfk = Clip("jfk", b"", "And so my fellow Americans, ask not.")
    assert matches(jfk, "And so my fellow Americans, ask not.")
    assert not matches(jfk, "and so my fellow americans ask not")  # exact, as the manifest has it
    spoken = Clip("espeak", b"", SENTENCE)  # nine words: one may differ
    assert matches(spoken, SENTENCE.upper().replace(".", ""))
    assert matches(spoken, SENTENCE.replace("service", "server"))
    assert not matches(spoken, SENTENCE.replace("router sends", "rooter sent"))
    assert not matches(spoken, "")


def test_a_write_no_cache_variable_explains_is_found(plans):
    from types import SimpleNamespace

    from tools.containers.pods import RunningPod
    from tools.containers.writes import written

    plan = plans["stt-stt-suite-diarization-0"]
    folders = {v.name: Path(v.source) for v in plan.volumes}
    known = [
        folders["tmp"] / ".ses",  # HOME: onnxruntime's
        folders["model-cache"] / "numba" / "f.nbi",  # NUMBA_CACHE_DIR
        folders["model-cache"] / "huggingface" / "hub" / "x.bin",  # HF_HOME
    ]
    stray = folders["tmp"] / ".cache" / "somelib" / "state.db"  # a cache nobody pointed
    for path in [*known, stray]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = written(SimpleNamespace(pods={plan.name: RunningPod(plan, {})}))[plan.name]
    assert found["unnamed"] == ["/tmp/.cache/somelib/state.db"]
    assert "/models/numba/f.nbi (1 bytes)" in found["files"]
