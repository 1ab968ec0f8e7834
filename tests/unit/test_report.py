"""perfguard report: the verdict rule table and what each section shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from perfguard.report import AT_RISK, NEEDS_FIX, STABLE, as_json, build, markdown
from perfguard.times import format_time

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def obj(name: str, verdict: str | None, ready: str = "True", **status: Any) -> dict[str, Any]:
    """A resource at generation 1, evaluated for it just now (unless `status` says else)."""
    conditions = [{"type": "Ready", "status": ready, "reason": "Evaluated"}]
    conditions += status.pop("conditions", [])
    body: dict[str, Any] = {
        "conditions": conditions,
        "observedGeneration": 1,
        "lastEvaluationTime": format_time(datetime.now(UTC)),
        **status,
    }
    if verdict is not None:
        body["verdict"] = verdict
    return {"metadata": {"name": name, "namespace": "prod", "generation": 1}, "status": body}


@pytest.mark.parametrize(
    ("pb", "envp", "cplan", "expected"),
    [
        ("Pass", "InSync", "Sufficient", STABLE),
        ("Fail", "InSync", "Sufficient", NEEDS_FIX),
        ("Pass", "Drifted", "Sufficient", NEEDS_FIX),
        ("Pass", "InSync", "Insufficient", NEEDS_FIX),
        ("Inconclusive", "InSync", "Sufficient", AT_RISK),
        ("Pass", "Unverified", "Sufficient", AT_RISK),
        ("Pass", "InSync", "NearLimit", AT_RISK),
        ("Pass", "InSync", "Unverified", AT_RISK),
        ("Fail", "Unverified", "NearLimit", NEEDS_FIX),  # NEEDS FIX wins
        (None, "InSync", "Sufficient", AT_RISK),  # not evaluated yet
    ],
)
def test_verdict_rule_table(pb: str | None, envp: str, cplan: str, expected: str) -> None:
    report = build([obj("a", pb)], [obj("b", envp)], [obj("c", cplan)])
    assert report.verdict == expected, report.findings


def test_not_ready_or_active_anomaly_is_at_risk() -> None:
    assert build([obj("a", "Pass", ready="False")], [], []).verdict == AT_RISK
    anomaly = {"type": "AnomalyDetected", "status": "True", "message": "XID 79"}
    report = build([], [], [obj("c", "Sufficient", conditions=[anomaly])])
    assert report.verdict == AT_RISK
    assert "XID 79" in report.findings[0].reason


def test_nothing_to_report_is_not_stable() -> None:
    report = build([], [], [])
    assert report.verdict == AT_RISK and "nothing is verified" in report.rule


def test_the_report_names_the_namespace_it_read() -> None:
    """A typo in -n reads an empty namespace: the report must say which one it read."""
    empty = build([], [], [], namespace="ml-prd")
    assert "Read from namespace ml-prd." in markdown(empty)
    assert json.loads(as_json(empty))["namespace"] == "ml-prd"
    every = build([], [], [])
    assert "Read from all namespaces." in markdown(every)
    assert json.loads(as_json(every))["namespace"] is None


def test_sections_actions_and_json() -> None:
    pb = obj(
        "canary",
        "Fail",
        candidate={"identity": "7f9b6c5d4"},
        metrics=[
            {
                "name": "latency",
                "statistic": "p95",
                "comparison": "Concurrent",
                "unit": "seconds",
                "baseline": 0.045,
                "current": 0.053,
                "delta": 0.008,
                "ci95": [0.007, 0.009],
                "verdict": "Regressed",
            }
        ],
        stages=[
            {"metric": "latency", "stage": "inference", "p95": 0.044, "share": 0.81},
            {"metric": "latency", "stage": "preprocess", "p95": 0.006, "share": 0.09},
        ],
    )
    envp = obj(
        "parity",
        "Drifted",
        driftPercent=12.5,
        totalDifferences=1,
        differences=[
            {
                "kind": "Deployment",
                "workload": "server",
                "field": "image",
                "reference": "sha256:a",
                "target": "sha256:b",
            }
        ],
    )
    cplan = obj(
        "fleet",
        "NearLimit",
        current=[{"resource": "gpu", "fleet": 70.5, "threshold": 90, "top": []}],
        projections=[
            {
                "scenario": "plus20",
                "resource": "gpu",
                "projected": 87.8,
                "threshold": 90,
                "assessment": "NearLimit",
                "recommendation": "no scaling needed yet",
            }
        ],
        anomalies=[
            {
                "type": "XidError",
                "node": "n1",
                "gpu": "0",
                "severity": "Critical",
                "message": "XID 79",
            }
        ],
    )
    report = build([pb], [envp], [cplan])
    text = markdown(report)
    assert text.startswith("# perfguard report: **NEEDS FIX**")
    assert "+8.00ms" in text and "[+7.00ms, +9.00ms]" in text  # delta with CI95
    assert "stage inference takes 81%" in text  # bottleneck
    assert "gpu is closest to its limit" in text
    assert "Hold or roll back 7f9b6c5d4" in text
    assert "Drain and inspect n1 GPU 0" in text
    assert "Deployment/server image: sha256:a → sha256:b" in text
    data = json.loads(as_json(report))
    assert data["verdict"] == NEEDS_FIX
    assert {f["kind"] for f in data["findings"]} == {"PerfBaseline", "EnvParity", "CapacityPlan"}


def test_a_verdict_for_an_earlier_spec_is_at_risk() -> None:
    pb = obj("a", "Pass")
    pb["metadata"]["generation"] = 3
    report = build([pb], [], [])
    assert report.verdict == AT_RISK
    assert report.findings[0].reason.startswith("spec not evaluated yet")
    assert "generation 1" in report.findings[0].reason
    assert "generation 3" in report.findings[0].reason
    del pb["status"]["observedGeneration"]
    assert build([pb], [], []).verdict == AT_RISK


@pytest.mark.parametrize(
    ("kind", "interval", "limit"),
    [
        # 3 × interval + statusRefresh (5m by default)
        ("PerfBaseline", None, timedelta(minutes=8)),  # interval 1m by default
        ("PerfBaseline", "30s", timedelta(minutes=6, seconds=30)),
        ("EnvParity", None, timedelta(minutes=20)),
        ("CapacityPlan", "1h", timedelta(hours=3, minutes=5)),
    ],
)
def test_a_stale_evaluation_is_at_risk(kind: str, interval: str | None, limit: timedelta) -> None:
    verdict = {"PerfBaseline": "Pass", "EnvParity": "InSync", "CapacityPlan": "Sufficient"}[kind]

    def report_at(age: timedelta, status_refresh: timedelta = timedelta(minutes=5)) -> Any:
        resource = obj("a", verdict, lastEvaluationTime=format_time(NOW - age))
        if interval:
            spec = {"interval": interval}
            resource["spec"] = {"analysis": spec} if kind == "PerfBaseline" else spec
        lists: dict[str, list[Any]] = {"PerfBaseline": [], "EnvParity": [], "CapacityPlan": []}
        lists[kind].append(resource)
        return build(*lists.values(), now=NOW, status_refresh=status_refresh)

    assert report_at(limit).verdict == STABLE
    stale = report_at(limit + timedelta(seconds=1))
    assert stale.verdict == AT_RISK
    assert stale.findings[0].reason.startswith("stale: last evaluated")
    # An operator that writes unchanged statuses less often allows older ones.
    assert report_at(limit + timedelta(minutes=5), timedelta(minutes=10)).verdict == STABLE


def test_a_verdict_without_an_evaluation_time_is_at_risk() -> None:
    pb = obj("a", "Pass")
    del pb["status"]["lastEvaluationTime"]
    report = build([pb], [], [])
    assert report.verdict == AT_RISK and "lastEvaluationTime" in report.findings[0].reason


def test_markdown_shows_missing_numbers_as_a_dash_and_keeps_rows_whole() -> None:
    cp = obj(
        "cp",
        "Unverified",
        ready="False",
        message="no data\nsecond line | pipe",
        current=[{"resource": "gpu", "fleet": None, "threshold": 90, "top": [{"node": "n1"}]}],
        projections=[
            {
                "scenario": "plus5",
                "resource": "gpu",
                "projected": None,
                "threshold": None,
                "assessment": "Unverified",
                "recommendation": "look\nagain",
            }
        ],
        anomalies=[{"type": "XidError", "node": "n1", "severity": "Warning", "message": "a\nb"}],
    )
    envp = obj("ep", "Unverified")  # no driftPercent
    text = markdown(build([], [envp], [cp]))
    assert "None" not in text and "-%" not in text, text
    assert "| gpu | - | 90% |" in text
    assert "n1 -" in text  # a top entry without a value
    assert "Unverified: no data second line \\| pipe |" in text
    # Every table row is one line: a line that starts a row also ends it.
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|"), line
    assert "look again" in text and "| a b |" in text


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [("PerfBaseline", "Passed"), ("EnvParity", "Synced"), ("CapacityPlan", "Enough")],
)
def test_an_unknown_verdict_is_at_risk(kind: str, verdict: str) -> None:
    """A verdict this version does not write (by hand, another version) promotes at no gate
    (409 UnknownVerdict): the report must not call it STABLE."""
    lists: dict[str, list[Any]] = {"PerfBaseline": [], "EnvParity": [], "CapacityPlan": []}
    lists[kind].append(obj("a", verdict, lastEvaluationTime=format_time(NOW)))
    report = build(*lists.values(), now=NOW)
    assert report.verdict == AT_RISK, report.findings
    assert [f.reason for f in report.findings] == [f"unknown verdict {verdict!r}"]


def test_an_evaluation_time_in_the_future_is_at_risk() -> None:
    """A stamp ahead of the reader's clock makes any age look fresh: more than 60 s ahead it
    is not trusted; a few seconds of clock skew are."""

    def report_at(lead: timedelta) -> Any:
        return build(
            [obj("a", "Pass", lastEvaluationTime=format_time(NOW + lead))], [], [], now=NOW
        )

    assert report_at(timedelta(seconds=60)).verdict == STABLE
    future = report_at(timedelta(days=1))
    assert future.verdict == AT_RISK
    (finding,) = future.findings
    assert finding.reason.startswith("lastEvaluationTime in the future: 1d ahead (2026-11-29T12")
