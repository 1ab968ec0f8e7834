"""The chart's ServiceMonitor, turned into the scrape job prometheus-operator would generate, run
by a real Prometheus against the operator's real /metrics endpoint.

Every per-resource series carries `namespace=<the resource's namespace>`, and
prometheus-operator gives each target `namespace=<the operator's namespace>`. Unless the
ServiceMonitor honours the scraped labels, Prometheus renames ours to `exported_namespace`
and every alert, recording rule, Argo query, dashboard variable and runbook query that
selects on `namespace` sees the operator's namespace instead of the resource's.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from perfguard.config import OperatorConfig
from perfguard.handlers.runtime import Runtime
from perfguard.local.prometheus import LocalPrometheus
from perfguard.observability import OperatorMetrics
from perfguard.webserver import build_app
from tests.e2e.cluster import wait_for
from tests.e2e.test_chart import REPO, one, render
from tests.e2e.test_gates import serve

pytestmark = pytest.mark.e2e

RELEASE = "perfguard"
RELEASE_NAMESPACE = "perfguard-system"
VALUES: dict[str, Any] = {
    "serviceMonitor": {"enabled": True},
    # `for: 0s`: the alert fires on the first evaluation instead of after two minutes.
    "prometheusRule": {"enabled": True, "regression": {"for": "0s", "severity": "warning"}},
    "argoRollouts": {"analysisTemplates": {"enabled": True}},
}
PB = ("Pass", "Fail", "Inconclusive")


def scrape_job(monitor: dict[str, Any], service: dict[str, Any], target: str) -> dict[str, Any]:
    """The scrape job prometheus-operator generates for the ServiceMonitor's endpoint.

    As its generateServiceMonitorConfig does: job name serviceMonitor/<ns>/<name>/<i>,
    `honor_labels` from the endpoint's honorLabels (false when absent), the endpoint's path.
    Kubernetes service discovery is replaced by one static target carrying the target labels
    its relabelling sets (namespace, service, pod, container, endpoint, and job: the Service's
    name, as no jobLabel is set); a static label and a relabelled one conflict with a scraped
    label the same way. The interval is shortened so that the test does not wait 30 s.
    """
    (endpoint,) = monitor["spec"]["endpoints"]
    assert "jobLabel" not in monitor["spec"] and "targetLabels" not in monitor["spec"]
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    meta = monitor["metadata"]
    return {
        "job_name": f"serviceMonitor/{meta['namespace']}/{meta['name']}/0",
        "honor_labels": endpoint.get("honorLabels", False),
        "metrics_path": endpoint["path"],
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [
            {
                "targets": [target],
                "labels": {
                    "namespace": service["metadata"]["namespace"],
                    "service": service["metadata"]["name"],
                    "pod": f"{service['metadata']['name']}-7d9f8b6c5-x2x4z",
                    "container": "perfguard",
                    "endpoint": endpoint["port"],
                    "job": service["metadata"]["name"],
                },
            }
        ],
    }


@pytest.fixture(scope="module")
def metrics_url() -> Iterator[str]:
    """The operator's web server with the metrics of three evaluated resources."""
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    runtime.started = True
    metrics = runtime.metrics
    for namespace, name, verdict in (("ml-prod", "resnet", "Pass"), ("ml-prod", "bert", "Fail")):
        metrics.set_verdict("PerfBaseline", namespace, name, verdict, PB)
        metrics.ready.labels("PerfBaseline", namespace, name).set(1)
        metrics.last_evaluation.labels("PerfBaseline", namespace, name).set(time.time())
    metrics.set_verdict("EnvParity", "ml-staging", "inference", "InSync", ("InSync", "Drifted"))
    metrics.last_evaluation.labels("EnvParity", "ml-staging", "inference").set(time.time())
    metrics.evaluations.labels("PerfBaseline", "ok").inc()
    with serve(build_app(runtime)) as url:
        yield url


@pytest.fixture(scope="module")
def chart() -> list[dict[str, Any]]:
    return render(VALUES, release=RELEASE, namespace=RELEASE_NAMESPACE)


@pytest.fixture(scope="module")
def prometheus(
    chart: list[dict[str, Any]], metrics_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalPrometheus]:
    work = tmp_path_factory.mktemp("scrape")
    rules = {"groups": one(chart, "PrometheusRule")["spec"]["groups"]}
    (work / "rules.yaml").write_text(yaml.safe_dump(rules))
    job = scrape_job(
        one(chart, "ServiceMonitor"), one(chart, "Service"), metrics_url.removeprefix("http://")
    )
    config = {
        "global": {"evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yaml")],
        "scrape_configs": [job],
    }
    # LocalPrometheus starts with a configuration that scrapes nothing: load ours.
    server = LocalPrometheus(work / "data", extra_args=("--web.enable-lifecycle",))
    server.start()
    try:
        server.config_path.write_text(yaml.safe_dump(config))
        request = urllib.request.Request(f"{server.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        yield server
    finally:
        server.stop()


def query(server: LocalPrometheus, promql: str) -> list[dict[str, Any]]:
    url = f"{server.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=30) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scraped(server: LocalPrometheus) -> None:
    """Wait until the operator's series have been scraped and the rules evaluated over them.

    The alert rules are evaluated once before the first scrape as well (PerfguardOperatorDown
    goes pending then): wait for an alert that only scraped series can raise.
    """
    wait_for(
        lambda: query(server, 'ALERTS{alertname="PerfguardRegressionDetected"}'),
        timeout=60,
        what="a scrape of the operator and a rule evaluation",
    )


def test_service_monitor_honours_the_operators_labels(chart: list[dict[str, Any]]) -> None:
    (endpoint,) = one(chart, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True


def test_argo_prometheus_template_finds_the_resources_namespace(
    chart: list[dict[str, Any]], prometheus: LocalPrometheus
) -> None:
    """The Argo AnalysisTemplate's query, args substituted with the PerfBaseline's namespace,
    over what Prometheus scraped through the ServiceMonitor: 1 for Pass, -1 for Fail."""
    scraped(prometheus)
    template = one(chart, "ClusterAnalysisTemplate", "perfguard-perfbaseline-prometheus")
    argo_query = template["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    for name, expected in (("resnet", "1"), ("bert", "-1")):
        promql = argo_query.replace("{{args.namespace}}", "ml-prod").replace("{{args.name}}", name)
        result = query(prometheus, promql)
        assert [r["value"][1] for r in result] == [expected], (name, result)


def test_alerts_rules_and_dashboard_see_the_resources_namespace(
    prometheus: LocalPrometheus, metrics_url: str
) -> None:
    scraped(prometheus)
    # No scraped label was renamed: the target's namespace did not overwrite the resource's.
    series = query(prometheus, '{__name__=~"perfguard_.*"}')
    assert series
    renamed = {k for s in series for k in s["metric"] if k.startswith("exported_")}
    assert not renamed, f"labels renamed by the scrape: {sorted(renamed)}"
    # Honouring the operator's labels costs no target label: it exports none of them, so the
    # recording rules' `on (instance, ...)` still tells replicas apart.
    for s in series:
        assert s["metric"]["instance"] == metrics_url.removeprefix("http://"), s
        assert s["metric"]["job"] == RELEASE and s["metric"]["pod"].startswith(RELEASE), s
    # Recording rule and alert (PrometheusRule rendered by the chart).
    current = query(prometheus, 'perfguard:verdict:current{kind="PerfBaseline"} == 1')
    assert {
        (r["metric"]["namespace"], r["metric"]["name"], r["metric"]["verdict"]) for r in current
    } == {
        ("ml-prod", "resnet", "Pass"),
        ("ml-prod", "bert", "Fail"),
    }
    alerts = query(prometheus, 'ALERTS{alertname="PerfguardRegressionDetected"}')
    assert [(a["metric"]["namespace"], a["metric"]["name"]) for a in alerts] == [
        ("ml-prod", "bert")
    ]
    # The dashboard's namespace variable: label_values(<metric>, namespace).
    dashboard = json.loads((REPO / "charts/perfguard/dashboards/perfguard.json").read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "namespace")
    assert variable["definition"] == "label_values(perfguard_verdict, namespace)"
    url = f"{prometheus.url}/api/v1/label/namespace/values?match[]=perfguard_verdict"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert json.load(response)["data"] == ["ml-prod", "ml-staging"]
    # A series without a namespace of its own keeps the target's: the operator's namespace.
    evaluations = query(prometheus, "perfguard_evaluations_total")
    assert [e["metric"]["namespace"] for e in evaluations] == [RELEASE_NAMESPACE]


def test_operator_down_selects_the_scraped_target(
    chart: list[dict[str, Any]], prometheus: LocalPrometheus
) -> None:
    """`up` keeps the target's labels whatever honor_labels says: PerfguardOperatorDown's
    selector (job = the Service's name, namespace = the release's) finds the scraped operator,
    so the alert stays silent while it is up."""
    scraped(prometheus)
    rules = [r for g in one(chart, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    down = next(r for r in rules if r.get("alert") == "PerfguardOperatorDown")
    assert down["expr"] == f'absent(up{{job="{RELEASE}", namespace="{RELEASE_NAMESPACE}"}} == 1)'
    up = query(prometheus, f'up{{job="{RELEASE}", namespace="{RELEASE_NAMESPACE}"}}')
    assert [u["value"][1] for u in up] == ["1"]
    assert query(prometheus, down["expr"]) == []
    assert query(prometheus, 'ALERTS{alertname="PerfguardOperatorDown"}') == []
