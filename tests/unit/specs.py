"""Builders the judge's unit tests share: specs of one canary against one stable track, and
judgements for the rules that rule on them."""

from __future__ import annotations

from typing import Any

from perfguard.analysis.judgement import MetricJudgement, MetricVerdict, RuleCheck
from perfguard.api.perfbaseline import PerfBaselineSpec


def p95_latency(histogram: str = "req_seconds", **p95: Any) -> dict[str, Any]:
    """A Latency metric judged on its p95 alone (by default: at most 5 ms slower)."""
    return {
        "name": "latency",
        "type": "Latency",
        "histogram": histogram,
        "thresholds": {"p95": p95 or {"maxIncrease": "5ms"}},
    }


def concurrent_spec(
    metrics: list[dict[str, Any]],
    *,
    service: str = "api",
    analysis: dict[str, Any] | None = None,
) -> PerfBaselineSpec:
    """`track=canary` against `track=stable` of `service`, side by side (Concurrent), every
    minute over a 10-minute window at a 30 s step, breaches sustained for 15 minutes;
    `analysis` replaces any of those."""
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": service},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Concurrent",
            "analysis": {
                "interval": "1m",
                "window": "10m",
                "step": "30s",
                "sustainFor": "15m",
                **(analysis or {}),
            },
            "metrics": metrics,
        }
    )


def made(verdict: MetricVerdict, *checks: tuple[str, MetricVerdict]) -> MetricJudgement:
    """A judgement with these limits' results (the numbers do not enter the ruling)."""
    return MetricJudgement(
        verdict=verdict,
        reason="",
        message="",
        breached=verdict is MetricVerdict.REGRESSED,
        delta=0.0,
        delta_percent=None,
        ci_low=0.0,
        ci_high=0.0,
        confidence=0.95,
        baseline_value=1.0,
        candidate_value=1.0,
        n_candidate=21,
        n_baseline=21,
        checks=tuple(RuleCheck(rule, v, "", "") for rule, v in checks),
    )
