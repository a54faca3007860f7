"""Every metric the chart's dashboard, HPAs, adapter rules and alerts use is one a real
whisper_en service, router, job worker and diarization service export: a renamed metric
breaks this test, not a production dashboard."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from stt.v1 import stt_pb2

from services.diarization.embedded import EmbeddedBackend
from tests.chart_support import CI_VALUES, PREFIX, of_kind, one, template
from tests.jobs_support import (
    jobs_router,
    response_of,
    running_worker,
    submit,
    wait_done,
    worker_settings,
)
from tests.support import espeak, http_get, request, running_diarization
from tests.test_diarization import settings as diarization_settings

METRIC = re.compile(r"\b(stt_[a-z0-9_]+)\b")
# A selector `name{label="value", ...}`: the labels a query filters on.
SELECTOR = re.compile(r"\b(stt_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
# Labels Prometheus adds to every scraped series (the target's), and a histogram's bucket bound.
TARGET_LABELS = {"namespace", "job", "pod", "instance", "service", "container", "endpoint"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}


@pytest.fixture(scope="module")
def diarization():
    made = diarization_settings()
    with running_diarization(made, EmbeddedBackend(made)) as server:
        assert server.wait_loaded(), "the diarization service failed to load"
        yield server


@pytest.fixture(scope="module")
def scraped(whisper_server, diarization, tmp_path_factory) -> dict[str, set[str]]:
    """Series names (with each type's suffixes) and their label names, from a real whisper_en
    service, a real router with a job store in front of it, a job worker and the diarization
    service, after one request went through the router and one job with speakers through
    all four."""
    store = tmp_path_factory.mktemp("jobs")
    with jobs_router(whisper_server.target, data_dir=store) as router:
        response = router.stub.Recognize(
            request(espeak("the router sends this to whisper"), language_code="en"), timeout=120
        )
        assert response.results, "the request through the router heard nothing"
        worker = worker_settings(
            router.target, data_dir=store, diarization_target=diarization.target
        )
        with running_worker(worker) as running:
            speakers = stt_pb2.SpeakerDiarizationConfig(enable_speaker_diarization=True)
            job = submit(
                router,
                espeak("a worker transcribes this job in chunks"),
                language_code="en",
                diarization_config=speakers,
            )
            assert response_of(wait_done(router, job.name, 120)).results, "the job heard nothing"
            names: dict[str, set[str]] = {}
            for server in (whisper_server, router, running, diarization):
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
        for r in adapter["rules"] + adapter["externalRules"]
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
    hpas = of_kind(objects, "HorizontalPodAutoscaler")
    for kind, rules in (("Pods", adapter["rules"]), ("External", adapter["externalRules"])):
        served = {rule["name"]["as"] for rule in rules}
        used = {
            m[kind.lower()]["metric"]["name"]
            for hpa in hpas.values()
            for m in hpa["spec"]["metrics"]
            if m["type"] == kind
        }
        assert used and used <= served, f"{kind} metrics the adapter does not serve"
    # The adapter's queries add the gauges each load signal is made of: in-flight and queued
    # requests for the services, queued and running jobs for the workers.
    used = set(METRIC.findall(" ".join(chart_queries["adapter"])))
    assert {"stt_inflight_requests", "stt_queued_requests"} <= used
    assert {"stt_jobs_queued", "stt_jobs_running"} <= used
