"""The documentation keeps up with the code: every setting and every metric is described."""

import re

from prometheus_client import CollectorRegistry

from services.core.metrics import ServiceMetrics
from services.diarization.metrics import DiarizationMetrics
from services.jobs.worker.metrics import WorkerMetrics
from services.router.metrics import RouterMetrics
from tests.support import REPO
from tools.settings_doc import render


def test_configuration_page_is_generated_from_the_settings():
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == render(), "docs/configuration.md is stale: run `make docs`"


def test_every_metric_is_documented():
    page = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    services, router = page.split("\n## Router\n", 1)
    router, rest = router.split("\n## Diarization\n", 1)
    diarization, worker = rest.split("\n## Job workers\n", 1)
    assert documented(services) == defined(ServiceMetrics("any").registry)
    assert documented(router) == defined(RouterMetrics("router").registry)
    own = defined(DiarizationMetrics("d").registry) - defined(ServiceMetrics("d").registry)
    assert documented(diarization) == own
    assert documented(worker.split("\n## ", 1)[0]) == defined(WorkerMetrics("worker").registry)


def documented(section: str) -> set[str]:
    return set(re.findall(r"^\| `(stt_[a-z_]+)`", section, flags=re.MULTILINE))


def defined(registry: CollectorRegistry) -> set[str]:
    return {
        family.name + ("_total" if family.type == "counter" else "")
        for family in registry.collect()
    }
