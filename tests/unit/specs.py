"""Spec builders the judge's unit tests share: one canary against one stable track."""

from __future__ import annotations

from typing import Any

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
