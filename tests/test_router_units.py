"""The router's decisions, without servers: routing, its configuration, the stack's table, and
what a client gets when every backend refused."""

import grpc
import pytest

from services import registry, stack
from services.core.errors import Overloaded, Relayed, to_grpc_status
from services.core.retry import RefusedAttempt, exhausted
from services.router import config
from services.router.routing import RoutingTable
from services.router.settings import RouterSettings

TABLE = config.RoutingConfig(
    backends={"whisper_en": "dns:///w:1", "hausa_stt": "dns:///h:1", "en_gb": "dns:///g:1"},
    routes=config.parse_routes("en*=whisper_en;en-GB=en_gb,whisper_en;ha=hausa_stt,whisper_en"),
)


@pytest.mark.parametrize(
    ("code", "pattern"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN_us", "en"),
        ("en-GB", "en-gb"),
        ("en-gb-oxendict", "en-gb"),
        ("ha-NG", "ha"),
        (" Ha ", "ha"),
    ],
)
def test_the_most_specific_prefix_wins_whatever_the_case(code, pattern):
    assert RoutingTable(TABLE).route(code).pattern == pattern


@pytest.mark.parametrize("code", ["eng", "hau", "fr", "e"])
def test_an_unserved_code_is_invalid_argument_naming_the_languages_served(code):
    with pytest.raises(Exception) as refused:
        RoutingTable(TABLE).route(code)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.endswith("it serves: en, en-gb, ha")


def test_star_matches_every_code_but_loses_to_a_specific_route():
    table = RoutingTable(config.RoutingConfig({"w": "x", "h": "y"}, {"*": ("w",), "ha": ("h",)}))
    assert table.route("fr-CA").backends == ("w",)
    assert table.route("ha").backends == ("h",)


def test_compact_settings_lie_over_the_routes_file(tmp_path, monkeypatch):
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(
        "backends:\n  whisper_en: dns:///whisper-en:50051\n  hausa_stt: dns:///hausa:50051\n"
        "routes:\n  en*: whisper_en\n  ha: [hausa_stt, whisper_en]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTER_ROUTES_FILE", str(routes_file))
    monkeypatch.setenv("ROUTER_BACKENDS", "whisper_en=ipv4:127.0.0.1:1,127.0.0.1:2")
    monkeypatch.setenv("ROUTER_ROUTES", "EN=hausa_stt")
    table = RoutingTable(RouterSettings().routing.table())
    assert table.backends["whisper_en"] == "ipv4:127.0.0.1:1,127.0.0.1:2"
    assert table.backends["hausa_stt"] == "dns:///hausa:50051"
    assert table.route("en-US").backends == ("hausa_stt",)
    assert table.route("ha").backends == ("hausa_stt", "whisper_en")
    assert table.detector == "whisper_en"
    assert table.diarization == ""


def test_the_diarization_target_comes_from_the_file_or_the_setting(tmp_path, monkeypatch):
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(
        "backends:\n  w: dns:///w:1\nroutes:\n  en: w\ndiarization: dns:///diarization:50051\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("ROUTER_ROUTES_FILE", str(routes_file))
    table = RoutingTable(RouterSettings().routing.table())
    assert table.diarization == "dns:///diarization:50051"
    assert table.pool_targets == {"w": "dns:///w:1", "diarization": "dns:///diarization:50051"}
    monkeypatch.setenv("ROUTER_DIARIZATION", "dns:///other:1")
    assert RoutingTable(RouterSettings().routing.table()).diarization == "dns:///other:1"


def test_a_language_backend_may_not_take_the_diarization_name():
    settings = RouterSettings(routes="en=diarization", backends="diarization=x", diarization="y")
    with pytest.raises(ValueError, match="may not be named 'diarization'"):
        RoutingTable(settings.routing.table())


@pytest.mark.parametrize(
    ("routes", "backends", "message"),
    [
        ("", "w=x", "no routes"),
        ("en=w;en*=w", "w=x", "repeats"),
        ("e n=w", "w=x", "not a BCP-47 language range"),
        ("en=w,missing", "w=x", "no target: missing"),
        ("en", "w=x", "key=value"),
    ],
)
def test_a_bad_table_is_refused_with_a_reason(routes, backends, message):
    with pytest.raises(ValueError, match=message):
        RoutingTable(RouterSettings(routes=routes, backends=backends).routing.table())


def test_the_stack_routes_each_language_to_its_service_then_whisper():
    members = stack.shifted(registry.MEMBERS, 100)
    running, skipped = stack.runnable(members, environ={"HAUSA_STT_MODEL": "/models/ha"})
    assert [m.service for m in running] == ["whisper_en", "hausa_stt", "diarization"]
    assert set(skipped) == {"arabic_words"}  # no model configured for it
    table = stack.routing(members, running)
    assert table.backends == {
        "whisper_en": "dns:///127.0.0.1:50152",
        "hausa_stt": "dns:///127.0.0.1:50153",
    }
    assert table.diarization == "dns:///127.0.0.1:50155"
    assert table.routes == {
        "en": ("whisper_en",),
        "*": ("whisper_en",),  # every other language Whisper knows
        "ha": ("hausa_stt", "whisper_en"),
        "ar": ("whisper_en",),
    }
    both = [registry.MEMBERS[0], registry.MEMBERS[1]]
    assert stack.routing(registry.MEMBERS, both).routes["ha"] == ("hausa_stt", "whisper_en")


def test_stack_ports_are_all_different():
    ports = [stack.ROUTER_GRPC_PORT, stack.ROUTER_HTTP_PORT]
    ports += [p for m in registry.MEMBERS for p in (m.grpc_port, m.http_port)]
    assert len(set(ports)) == len(ports)


def test_every_backend_full_gives_the_shortest_retry_hint():
    full = grpc.StatusCode.RESOURCE_EXHAUSTED
    error = exhausted(
        "en",
        [
            RefusedAttempt("a", full, "busy", 2.5),
            RefusedAttempt("b", grpc.StatusCode.UNAVAILABLE, "down", None),
            RefusedAttempt("c", full, "busy", 0.4),
        ],
    )
    status = to_grpc_status(error, "req-1")
    assert status.code is full
    assert ("grpc-retry-pushback-ms", "400") in status.trailing_metadata
    assert "a: RESOURCE_EXHAUSTED (busy); b: UNAVAILABLE (down)" in status.details


def test_every_backend_down_is_unavailable():
    error = exhausted("en", [RefusedAttempt("a", grpc.StatusCode.UNAVAILABLE, "down", None)])
    assert to_grpc_status(error, "req-1").code is grpc.StatusCode.UNAVAILABLE


def test_a_relayed_status_is_the_backends_own_with_one_request_id():
    backend = to_grpc_status(Overloaded("full", 0.7), "id-1")
    relayed = to_grpc_status(
        Relayed(backend.code, backend.details, tuple(backend.trailing_metadata)), "id-1"
    )
    assert relayed.code is backend.code and relayed.details == backend.details
    details = "grpc-status-details-bin"
    assert dict(relayed.trailing_metadata)[details] == dict(backend.trailing_metadata)[details]
    assert [k for k, _ in relayed.trailing_metadata].count("x-request-id") == 1


def test_a_benchmark_rewrites_only_its_own_section(tmp_path):
    from bench.docs import write_section

    page = tmp_path / "benchmarks.md"
    write_section("router", "## Router overhead\n\nold", page)
    write_section("ctc", "## CTC\n\nfast", page)
    write_section("router", "## Router overhead\n\nnew", page)
    text = page.read_text()
    assert "new" in text and "old" not in text and "## CTC\n\nfast" in text
    assert text.index("Router overhead") < text.index("## CTC")  # it stays where it was
