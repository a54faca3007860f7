"""Every metric the chart's dashboard, HPA, adapter rule and alerts use is one a real
whisper_en service and a real router export: a renamed metric breaks this test, not a
production dashboard."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.router.settings import RouterSettings
from tests.chart_support import CI_VALUES, PREFIX, of_kind, one, template
from tests.support import espeak, http_get, request, running_router

METRIC = re.compile(r"\b(stt_[a-z0-9_]+)\b")
# A selector `name{label="value", ...}`: the labels a query filters on.
SELECTOR = re.compile(r"\b(stt_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
# Labels Prometheus adds to every scraped series (the target's), and a histogram's bucket bound.
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "container", "endpoint"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}


@pytest.fixture(scope="module")
def scraped(whisper_server) -> dict[str, set[str]]:
    """Series names (with each type's suffixes) and their label names, from a real whisper_en
    service and a real router in front of it, after one request went through both."""
    settings = RouterSettings(
        grpc_port=0,
        http_port=0,
        backends={"whisper_en": f"dns:///{whisper_server.target}"},
        routes="en=whisper_en",
    )
    with running_router(settings) as router:
        response = router.stub.Recognize(
            request(espeak("the router sends this to whisper"), language_code="en"), timeout=120
        )
        assert response.results, "the request through the router heard nothing"
        names: dict[str, set[str]] = {}
        for server in (whisper_server, router):
            status, body = http_get(server, "/metrics")
            assert status == 200
            for family in text_string_to_metric_families(body):
                for name in (
                    family.name,
                    *(family.name + s for s in SUFFIXES.get(family.type, ())),
                ):
                    names.setdefault(name, set())
                for sample in family.samples:
                    names.setdefault(sample.name, set()).update(sample.labels)
    return names


@pytest.fixture(scope="module")
def chart_queries() -> dict[str, list[str]]:
    """Every PromQL text in the chart, by where it is: rendered with every switch on."""
    objects = template("-f", str(CI_VALUES["everything"]))
    rule = one(objects, "PrometheusRule", PREFIX)
    alerts = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    adapter = yaml.safe_load(
        one(objects, "ConfigMap", f"{PREFIX}-adapter-rules")["data"]["config.yaml"]
    )
    adapter_queries = [
        text
        for r in adapter["rules"]
        for text in (r["seriesQuery"], r["metricsQuery"], r["name"]["matches"])
    ]
    dashboard = json.loads(
        one(objects, "ConfigMap", f"{PREFIX}-dashboard")["data"]["stt-suite.json"]
    )
    panels = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    variables = [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return {"alerts": alerts, "adapter": adapter_queries, "dashboard": panels + variables}


@pytest.mark.parametrize("where", ["alerts", "adapter", "dashboard"])
def test_every_metric_the_chart_uses_is_exported(scraped, chart_queries, where):
    used = {name for query in chart_queries[where] for name in METRIC.findall(query)}
    assert used, f"no stt_ metric found in the {where}"
    assert used <= set(scraped), f"{where} use metrics no server exports: {used - set(scraped)}"


@pytest.mark.parametrize("where", ["alerts", "adapter", "dashboard"])
def test_every_label_the_chart_filters_on_is_exported(scraped, chart_queries, where):
    for query in chart_queries[where]:
        for name, matchers in SELECTOR.findall(query):
            labels = set(MATCHER.findall(matchers)) - TARGET_LABELS
            if scraped.get(name):  # series with samples: their label names are known
                assert labels <= scraped[name], f"{name} has no label {labels - scraped[name]}"


def test_the_hpa_metric_is_the_one_the_adapter_serves(chart_queries):
    objects = template("-f", str(CI_VALUES["everything"]))
    adapter = yaml.safe_load(
        one(objects, "ConfigMap", f"{PREFIX}-adapter-rules")["data"]["config.yaml"]
    )
    served = {rule["name"]["as"] for rule in adapter["rules"]}
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    pods_metrics = {
        m["pods"]["metric"]["name"]
        for hpa in hpas.values()
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Pods"
    }
    assert pods_metrics and pods_metrics <= served
    # The adapter's query adds the two gauges the load signal is made of.
    assert {"stt_inflight_requests", "stt_queued_requests"} <= set(
        METRIC.findall(" ".join(chart_queries["adapter"]))
    )
