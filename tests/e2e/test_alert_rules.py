"""The chart's alerts, runbooks, dashboard and Prometheus AnalysisTemplate query, checked with
the real promtool (Debian's prometheus package) on rules rendered by the real helm.

`promtool test rules` replays synthetic series through the rules: each alert fires when it
should (after its `for`), stays silent when it should not, and ignores a stale standby
replica's verdicts. No cluster is needed; helm comes from the test servers.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.local.prometheus import promtool_binary
from tests.e2e.test_chart import REPO, one, render

pytestmark = pytest.mark.e2e

RUNBOOKS = REPO / "docs" / "runbooks"
ALERTS = {
    "PerfguardRegressionDetected",
    "PerfguardDriftDetected",
    "PerfguardCapacityInsufficient",
    "PerfguardCapacityNearLimit",
    "PerfguardGpuAnomaly",
    "PerfguardOperatorDown",
    "PerfguardEvaluationsFailing",
    "PerfguardEvaluationLag",
}


@pytest.fixture(scope="module")
def rules() -> dict[str, Any]:
    docs = render({"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}})
    return {"groups": one(docs, "PrometheusRule")["spec"]["groups"]}


def alert_rules(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool_binary()), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ----------------------------------------------------------------- static checks


def test_rules_pass_promtool_check(rules: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(alert_rules(rules)) == ALERTS


def _documented_severities() -> dict[str, str]:
    """docs/runbooks/README.md's table: alert -> default severity (what on-call reads)."""
    rows = re.findall(
        r"^\| (Perfguard\w+) \| (\w+) \|", (RUNBOOKS / "README.md").read_text(), re.MULTILINE
    )
    return dict(rows)


def test_every_alert_links_an_on_call_runbook(rules: dict[str, Any]) -> None:
    severities = _documented_severities()
    assert set(severities) == ALERTS
    for name, rule in alert_rules(rules).items():
        url = rule["annotations"]["runbook_url"]
        assert url == f"https://github.com/perfguard/perfguard/blob/main/docs/runbooks/{name}.md"
        runbook = (RUNBOOKS / f"{name}.md").read_text()
        assert runbook.startswith(f"# {name}\n"), name
        for section in ("## Meaning", "## Confirm", "## Mitigate", "## Roll back"):
            assert section in runbook, f"{name}.md lacks {section}"
        assert "kubectl" in runbook, name
        assert rule["labels"]["severity"] == severities[name], name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert sorted(p.stem for p in RUNBOOKS.glob("Perfguard*.md")) == sorted(ALERTS)


# ----------------------------------------------------------------- promtool test rules


def _expand(text: str, labels: dict[str, str]) -> str:
    def label(match: re.Match[str]) -> str:
        # Prometheus would expand a label the alert lacks to "", and so would a lenient
        # expectation: the annotation would read "CapacityPlan / reports" on both sides.
        assert match.group(1) in labels, f"{text!r} reads a label the alert lacks"
        return labels[match.group(1)]

    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", label, text)


def fires(
    rules: dict[str, Any], alert: str, *, summary: str | None = None, **labels: str
) -> dict[str, Any]:
    """An expected alert: its labels, and its annotations as Prometheus expands them.

    ``summary``: the expected summary, written out, for templates with conditionals (which
    ``_expand`` does not evaluate) and to pin what on-call reads.
    """
    rule = alert_rules(rules)[alert]
    all_labels = {**labels, **rule["labels"]}
    annotations = {
        k: summary if k == "summary" and summary is not None else _expand(v, all_labels)
        for k, v in rule["annotations"].items()
    }
    return {"exp_labels": all_labels, "exp_annotations": annotations}


def series(metric: str, values: str, **labels: str) -> dict[str, str]:
    inner = ", ".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{metric}{{{inner}}}", "values": values}


def verdicts(kind: str, name: str, current: str, choices: list[str], **labels: str) -> list[Any]:
    """One replica's verdict gauges (1 for the current verdict) and its last evaluation time
    (fresh unless `evaluated` says otherwise)."""
    evaluated = labels.pop("evaluated", "0+60x60")
    out = [
        series(
            "perfguard_verdict",
            "1x60" if v == current else "0x60",
            kind=kind,
            namespace="ml-prod",
            name=name,
            verdict=v,
            **labels,
        )
        for v in choices
    ]
    out.append(
        series(
            "perfguard_last_evaluation_timestamp_seconds",
            evaluated,
            kind=kind,
            namespace="ml-prod",
            name=name,
            **labels,
        )
    )
    return out


PB = ["Pass", "Fail", "Inconclusive"]
ENVP = ["InSync", "Drifted", "Unverified"]
CPLAN = ["Sufficient", "NearLimit", "Insufficient"]


def test_alerts_fire_when_they_should_and_stay_silent_otherwise(
    rules: dict[str, Any], tmp_path: Path
) -> None:
    a = {"instance": "10.0.0.1:8080", "job": "perfguard"}
    b = {"instance": "10.0.0.2:8080", "job": "perfguard"}
    stale = {"evaluated": "0x60"}  # last evaluated at time 0, never since
    tests: list[dict[str, Any]] = [
        {
            "name": "regression, with a stale standby replica",
            "interval": "1m",
            "input_series": [
                *verdicts("PerfBaseline", "resnet", "Fail", PB, **a),
                # The standby (b) evaluated resnet long ago and still exports Pass: ignored.
                *verdicts("PerfBaseline", "resnet", "Pass", PB, **b, **stale),
                # bert: the active replica (b) says Pass, a stale replica (a) still says Fail.
                *verdicts("PerfBaseline", "bert", "Fail", PB, **a, **stale),
                *verdicts("PerfBaseline", "bert", "Pass", PB, **b),
                *verdicts("PerfBaseline", "ok", "Pass", PB, **a),
            ],
            "alert_rule_test": [
                {"eval_time": "1m", "alertname": "PerfguardRegressionDetected", "exp_alerts": []},
                {
                    "eval_time": "5m",
                    "alertname": "PerfguardRegressionDetected",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardRegressionDetected",
                            kind="PerfBaseline",
                            namespace="ml-prod",
                            name="resnet",
                            verdict="Fail",
                        )
                    ],
                },
            ],
            "promql_expr_test": [
                {
                    "expr": 'perfguard:verdict:current{name="bert"} == 1',
                    "eval_time": "5m",
                    "exp_samples": [
                        {
                            "labels": 'perfguard:verdict:current{kind="PerfBaseline", '
                            'name="bert", namespace="ml-prod", verdict="Pass"}',
                            "value": 1,
                        }
                    ],
                }
            ],
        },
        {
            "name": "drift and capacity",
            "interval": "1m",
            "input_series": [
                *verdicts("EnvParity", "inference", "Drifted", ENVP, **a),
                *verdicts("EnvParity", "synced", "InSync", ENVP, **a),
                *verdicts("CapacityPlan", "gpu-fleet", "Insufficient", CPLAN, **a),
                *verdicts("CapacityPlan", "cpu-fleet", "NearLimit", CPLAN, **a),
                *verdicts("CapacityPlan", "spare", "Sufficient", CPLAN, **a),
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "PerfguardDriftDetected", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "PerfguardDriftDetected",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardDriftDetected",
                            kind="EnvParity",
                            namespace="ml-prod",
                            name="inference",
                            verdict="Drifted",
                        )
                    ],
                },
                {"eval_time": "5m", "alertname": "PerfguardCapacityInsufficient", "exp_alerts": []},
                {
                    "eval_time": "15m",
                    "alertname": "PerfguardCapacityInsufficient",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardCapacityInsufficient",
                            kind="CapacityPlan",
                            namespace="ml-prod",
                            name="gpu-fleet",
                            verdict="Insufficient",
                        )
                    ],
                },
                {"eval_time": "20m", "alertname": "PerfguardCapacityNearLimit", "exp_alerts": []},
                {
                    "eval_time": "35m",
                    "alertname": "PerfguardCapacityNearLimit",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardCapacityNearLimit",
                            kind="CapacityPlan",
                            namespace="ml-prod",
                            name="cpu-fleet",
                            verdict="NearLimit",
                        )
                    ],
                },
            ],
        },
        {
            "name": "GPU anomaly",
            "interval": "1m",
            "input_series": [
                series(
                    "perfguard_capacity_anomalies",
                    "0 0 0 1x30",
                    namespace="ml-prod",
                    name="gpu-fleet",
                    type="ThermalThrottling",
                    **a,
                ),
                series(
                    "perfguard_capacity_anomalies",
                    "0x30",
                    namespace="ml-prod",
                    name="gpu-fleet",
                    type="XidError",
                    **a,
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "PerfguardGpuAnomaly", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "PerfguardGpuAnomaly",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardGpuAnomaly",
                            namespace="ml-prod",
                            name="gpu-fleet",
                            type="ThermalThrottling",
                        )
                    ],
                },
            ],
        },
        {
            "name": "operator down: one replica of two is enough",
            "interval": "1m",
            "input_series": [
                series(
                    "up",
                    "1x5 0x30",
                    job="perfguard",
                    namespace="perfguard-system",
                    instance="10.0.0.1:8080",
                ),
                series(
                    "up",
                    "1x30",
                    job="perfguard",
                    namespace="perfguard-system",
                    instance="10.0.0.2:8080",
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "PerfguardOperatorDown", "exp_alerts": []},
            ],
        },
        {
            "name": "operator down: every replica down, then none scraped at all",
            "interval": "1m",
            "input_series": [
                series(
                    "up",
                    "1x5 0x10",
                    job="perfguard",
                    namespace="perfguard-system",
                    instance="10.0.0.1:8080",
                ),
                # Another release's operator does not count.
                series(
                    "up", "1x40", job="perfguard", namespace="elsewhere", instance="10.0.0.9:8080"
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "PerfguardOperatorDown", "exp_alerts": []},
                {
                    "eval_time": "14m",
                    "alertname": "PerfguardOperatorDown",
                    "exp_alerts": [fires(rules, "PerfguardOperatorDown")],
                },
                {
                    "eval_time": "35m",
                    "alertname": "PerfguardOperatorDown",
                    "exp_alerts": [fires(rules, "PerfguardOperatorDown")],
                },
            ],
        },
        {
            "name": "evaluations failing: not Ready, or errors",
            "interval": "1m",
            "input_series": [
                series(
                    "perfguard_ready",
                    "0x40",
                    kind="PerfBaseline",
                    namespace="ml-prod",
                    name="resnet",
                    **a,
                ),
                series(
                    "perfguard_last_evaluation_timestamp_seconds",
                    "0+60x40",
                    kind="PerfBaseline",
                    namespace="ml-prod",
                    name="resnet",
                    **a,
                ),
                series(
                    "perfguard_ready",
                    "1x40",
                    kind="PerfBaseline",
                    namespace="ml-prod",
                    name="fine",
                    **a,
                ),
                series(
                    "perfguard_last_evaluation_timestamp_seconds",
                    "0+60x40",
                    kind="PerfBaseline",
                    namespace="ml-prod",
                    name="fine",
                    **a,
                ),
                series(
                    "perfguard_evaluations_total", "0+1x40", kind="EnvParity", outcome="error", **a
                ),
                series(
                    "perfguard_evaluations_total", "0+5x40", kind="PerfBaseline", outcome="ok", **a
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "PerfguardEvaluationsFailing", "exp_alerts": []},
                {
                    "eval_time": "20m",
                    "alertname": "PerfguardEvaluationsFailing",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardEvaluationsFailing",
                            summary="perfguard cannot evaluate PerfBaseline ml-prod/resnet",
                            kind="PerfBaseline",
                            namespace="ml-prod",
                            name="resnet",
                        ),
                        fires(
                            rules,
                            "PerfguardEvaluationsFailing",
                            summary="perfguard cannot evaluate EnvParity resources: "
                            "evaluations end in errors or invalid specs",
                            kind="EnvParity",
                        ),
                    ],
                },
            ],
        },
        {
            "name": "evaluation lag",
            "interval": "1m",
            "input_series": [
                series(
                    "perfguard_last_evaluation_timestamp_seconds",
                    "0+60x5 300x40",
                    kind="EnvParity",
                    namespace="ml-prod",
                    name="stuck",
                    **a,
                ),
                series(
                    "perfguard_last_evaluation_timestamp_seconds",
                    "0+60x45",
                    kind="EnvParity",
                    namespace="ml-prod",
                    name="fresh",
                    **a,
                ),
            ],
            "alert_rule_test": [
                {"eval_time": "15m", "alertname": "PerfguardEvaluationLag", "exp_alerts": []},
                {
                    "eval_time": "30m",
                    "alertname": "PerfguardEvaluationLag",
                    "exp_alerts": [
                        fires(
                            rules,
                            "PerfguardEvaluationLag",
                            kind="EnvParity",
                            namespace="ml-prod",
                            name="stuck",
                        )
                    ],
                },
            ],
        },
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


# ----------------------------------------------------------------- Argo prometheus template


def _pb(name: str) -> dict[str, str]:
    return {"kind": "PerfBaseline", "namespace": "ml-prod", "name": name}


def test_prometheus_analysis_query_encodes_the_verdict(tmp_path: Path) -> None:
    """The prometheus-provider AnalysisTemplate's query, args substituted, through PromQL:
    1 Pass, -1 Fail, 0 Inconclusive or replicas disagreeing, nothing when stale, and nothing
    for a Pass whose latest evaluation raised (perfguard_ready 0): the verdict gauge keeps
    the last verdict, which may be an earlier spec's, as the web template and Flagger hold."""
    docs = render({"argoRollouts": {"analysisTemplates": {"enabled": True}}})
    template = one(docs, "ClusterAnalysisTemplate", "perfguard-perfbaseline-prometheus")
    metric = template["spec"]["metrics"][0]
    assert metric["successCondition"] == "len(result) == 1 && result[0] == 1"
    assert metric["failureCondition"] == "len(result) == 1 && result[0] == -1"
    query = metric["provider"]["prometheus"]["query"]
    a = {"instance": "10.0.0.1:8080", "job": "perfguard"}
    b = {"instance": "10.0.0.2:8080", "job": "perfguard"}
    expected = {
        "passing": 1,
        "failing": -1,
        "unsure": 0,
        "split": 0,
        "stale": None,
        "erroring": None,
        "failing-erroring": -1,
    }
    tests = [
        {
            "interval": "1m",
            "input_series": [
                *verdicts("PerfBaseline", "passing", "Pass", PB, **a),
                *verdicts("PerfBaseline", "failing", "Fail", PB, **a),
                *verdicts("PerfBaseline", "unsure", "Inconclusive", PB, **a),
                *verdicts("PerfBaseline", "split", "Pass", PB, **a),
                *verdicts("PerfBaseline", "split", "Fail", PB, **b),
                *verdicts("PerfBaseline", "stale", "Pass", PB, evaluated="0x60", **a),
                *verdicts("PerfBaseline", "erroring", "Pass", PB, **a),
                *verdicts("PerfBaseline", "failing-erroring", "Fail", PB, **a),
                *[
                    series("perfguard_ready", "1x60" if ok else "0x60", **_pb(name), **a)
                    for name, ok in [
                        ("passing", True),
                        ("failing", True),
                        ("unsure", True),
                        ("split", True),
                        ("stale", True),
                        ("erroring", False),
                        ("failing-erroring", False),
                    ]
                ],
            ],
            "promql_expr_test": [
                {
                    "expr": query.replace("{{args.namespace}}", "ml-prod").replace(
                        "{{args.name}}", name
                    ),
                    "eval_time": "20m",
                    "exp_samples": [] if value is None else [{"labels": "{}", "value": value}],
                }
                for name, value in expected.items()
            ],
        }
    ]
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump({"groups": []}))
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["empty.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ----------------------------------------------------------------- dashboard


def _exported_metrics() -> set[str]:
    from perfguard.config import OperatorConfig
    from perfguard.handlers.runtime import Runtime
    from perfguard.observability import OperatorMetrics
    from perfguard.webserver import build_app

    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    build_app(runtime)  # registers the gate counter
    names = set()
    for family in runtime.metrics.registry.collect():
        names.add(family.name)
        names.update({f"{family.name}_total", f"{family.name}_bucket"})
    return names


def test_dashboard_queries_are_valid_promql_over_known_metrics(tmp_path: Path) -> None:
    dashboard = json.loads((REPO / "charts/perfguard/dashboards/perfguard.json").read_text())
    assert dashboard["uid"] == "perfguard-overview"
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert titles == {
        "Verdicts",
        "PerfBaseline: candidate minus baseline",
        "EnvParity: drift",
        "CapacityPlan: utilisation and projections",
        "Operator",
    }
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 15
    # promtool validates PromQL through a rules file: one recording rule per panel query.
    records = [
        {
            "record": f"dashboard:query:{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$namespace", ".*"),
        }
        for i, e in enumerate(exprs)
    ]
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]})
    )
    result = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    used = set(re.findall(r"\b(perfguard_[a-z0-9_]+)", " ".join(exprs)))
    unknown = used - _exported_metrics()
    assert not unknown, f"the dashboard reads series nobody exports: {sorted(unknown)}"


def test_dashboard_json_is_the_generators_output() -> None:
    generator = REPO / "charts/perfguard/dashboards/generate.py"
    result = subprocess.run(
        [sys.executable, str(generator)], capture_output=True, text=True, check=True, timeout=60
    )
    committed = (REPO / "charts/perfguard/dashboards/perfguard.json").read_text()
    assert json.loads(committed) == json.loads(result.stdout), (
        "charts/perfguard/dashboards/perfguard.json is stale: run "
        "`python charts/perfguard/dashboards/generate.py > …/perfguard.json`"
    )
