"""The documentation keeps up with the code: every setting and every metric is described."""

import re

from services.core.metrics import ServiceMetrics
from tests.support import REPO
from tools.settings_doc import render


def test_configuration_page_is_generated_from_the_settings():
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == render(), "docs/configuration.md is stale: run `make docs`"


def test_every_metric_is_documented():
    page = (REPO / "docs" / "metrics.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(stt_[a-z_]+)`", page, flags=re.MULTILINE))
    defined = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in ServiceMetrics("any").registry.collect()
    }
    assert defined == documented
