"""Errors are not spikes to look past: a canary that fails in bursts must not pass.

Latency and throughput samples are clipped at 3 robust SDs before the interval, so a
one-minute spike does not decide the verdict. An error ratio that bursts is the
regression itself (a crash loop, a bad shard): clipped, 5 % errors in 3 of 21 steps
became +0.01 points and passed a 0.5-point limit. Hand-made samples through
engine.perfbaseline.judge."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def spec(metric_type: str, ratio_rule: dict[str, Any] | None = None) -> PerfBaselineSpec:
    metric: dict[str, Any] = {"name": "m", "type": metric_type}
    if metric_type == "ErrorRate":
        metric |= {
            "counter": "req_total",
            "errorMatchers": {"code": "5.."},
            "thresholds": {"ratio": ratio_rule or {"maxIncrease": 0.005}},
        }
    else:
        metric |= {"histogram": "req_seconds", "thresholds": {"mean": {"maxIncrease": "5ms"}}}
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Concurrent",
            "analysis": {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "0s"},
            "metrics": [metric],
        }
    )


def bursts(
    the_spec: PerfBaselineSpec, statistic: str, level: float, noise: float, burst: float
) -> dict[str, MetricSamples]:
    """Both tracks at `level` with `noise`; the canary `burst` higher in 3 of 21 steps."""
    rng = np.random.default_rng(7)
    w = windows(the_spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    stable = level + rng.normal(0, noise, t.size)
    canary = level + rng.normal(0, noise, t.size)
    canary[[5, 11, 17]] += burst
    data = MetricSamples()
    data.window[("stable", statistic)] = TimedSamples(t, stable)
    data.window[("candidate", statistic)] = TimedSamples(t, canary)
    return {"m": data}


def verdict(the_spec: PerfBaselineSpec, data: dict[str, MetricSamples]) -> dict[str, Any]:
    plan = dataclasses.replace(plan_tracks(the_spec, None), identity="h", source="WorkloadRef")
    out = judge(the_spec, plan, windows(the_spec, AT), data, {}, AT)
    metric: dict[str, Any] = out.fields["metrics"][0]
    return metric


def test_error_bursts_are_not_clipped_away() -> None:
    the_spec = spec("ErrorRate")
    # 0.1 % errors on both tracks; the canary at 5.1 % in 3 of 21 steps: +0.71 points.
    metric = verdict(the_spec, bursts(the_spec, "ratio", 0.001, 0.0002, 0.05))
    assert metric["verdict"] != "Pass", metric["message"]
    assert metric["delta"] == pytest.approx(0.05 * 3 / 21, rel=0.05)


def test_latency_spikes_still_are() -> None:
    """The same shape on latency (a 50 ms spike in 3 steps of a 100 ms service) is a
    transient: clipped, within a 5 ms limit on the mean."""
    the_spec = spec("Latency")
    metric = verdict(the_spec, bursts(the_spec, "mean", 0.100, 0.001, 0.050))
    assert metric["verdict"] == "Pass", metric["message"]
    assert metric["delta"] < 0.050 * 3 / 21 / 3  # well under the raw +7.1 ms


def test_errors_from_a_stable_track_without_any_break_a_percent_limit() -> None:
    """The stable track at exactly 0 errors, the canary at 20 %: the increase's interval is
    [+20, +20] points, beyond any percentage of 0. It was Inconclusive (BaselineNearZero)
    for as long as the canary ran."""
    the_spec = spec("ErrorRate", {"maxIncreasePercent": 50})
    data = bursts(the_spec, "ratio", 0.0, 0.0, 0.0)
    stable = data["m"].window[("stable", "ratio")]
    data["m"].window[("candidate", "ratio")] = TimedSamples(
        stable.timestamps, np.full(stable.values.size, 0.2)
    )
    metric = verdict(the_spec, data)
    assert metric["verdict"] == "Regressed", metric["message"]
    assert "the baseline is 0" in metric["message"]
    # One step at 1 % errors: the interval reaches 0, so no breach can be told.
    data["m"].window[("candidate", "ratio")] = TimedSamples(
        stable.timestamps, np.where(np.arange(stable.values.size) == 5, 0.01, 0.0)
    )
    metric = verdict(the_spec, data)
    assert (metric["verdict"], metric["reason"]) == ("Inconclusive", "BaselineNearZero")
