"""perfguard report: the verdict rule table and what each section shows."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perfguard.report import AT_RISK, NEEDS_FIX, STABLE, as_json, build, markdown


def obj(name: str, verdict: str | None, ready: str = "True", **status: Any) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": "Evaluated"}]
    conditions += status.pop("conditions", [])
    body: dict[str, Any] = {"conditions": conditions, **status}
    if verdict is not None:
        body["verdict"] = verdict
    return {"metadata": {"name": name, "namespace": "prod"}, "status": body}


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
