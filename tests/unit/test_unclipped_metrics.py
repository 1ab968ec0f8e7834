"""Only latency samples are clipped before the interval: elsewhere the extremes are the news.

A latency spike is noise by design and is winsorised at 3 robust SDs
(test_error_rate_bursts.py::test_latency_spikes_still_are). A workload that serves nothing
for 3 minutes is a throughput regression, and a Query means what its author says: clipped,
both passed. Hand-made samples through engine.perfbaseline.judge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import (
    MetricSamples,
    TimedSamples,
    same_time_slices,
    windows,
)
from perfguard.engine.tracks import plan_tracks

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ANALYSIS = {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "0s"}


def ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    x = np.zeros(n)
    x[0] = rng.normal(0, sd)
    noise = rng.normal(0, sd * np.sqrt(1 - rho**2), n)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + noise[i]
    return x


def judged(spec: PerfBaselineSpec, data: dict[str, MetricSamples]) -> dict[str, Any]:
    plan = plan_tracks(spec, None)
    out = judge(spec, plan, windows(spec, AT), data, {}, AT)
    metric: dict[str, Any] = out.fields["metrics"][0]
    return metric


@pytest.mark.parametrize("seed", [1, 2])
def test_a_workload_serving_nothing_for_3_minutes_does_not_pass(seed: int) -> None:
    """100 requests/s against a 6-hour baseline (fewer than 3 days: one series, clipped
    each on its own), then 0 for 6 of 21 steps: -28.5/s against maxDecrease 10. Clipped,
    the zeros were pulled up to about 95/s and the change read -1.6/s: Pass."""
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "comparison": "Historical",
            "baseline": {"window": "2d", "minSamples": 20},
            "analysis": ANALYSIS,
            "metrics": [
                {
                    "name": "tput",
                    "type": "Throughput",
                    "counter": "req_total",
                    "thresholds": {"rate": {"maxDecrease": 10}},
                }
            ],
        }
    )
    w = windows(spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    step = w.baseline_step.total_seconds()
    tb = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() - 1e-6, step)
    rng = np.random.default_rng(seed)
    current = 100 + ar1(rng, t.size, 0.5, 2)
    baseline = 100 + ar1(rng, tb.size, 0.5, 2)
    current[5:11] = 0.0
    data = MetricSamples()
    data.window[("workload", "rate")] = TimedSamples(t, current)
    data.baseline["rate"] = TimedSamples(tb, baseline)

    metric = judged(spec, {"tput": data})

    assert metric["verdict"] != "Pass", metric["message"]
    # The baseline judged is the samples at the window's time of day (2 days x 21).
    same_time = np.concatenate(same_time_slices(data.baseline["rate"], w.start, w.end))
    plain = float(current.mean() - same_time.mean())
    assert metric["delta"] == pytest.approx(plain, rel=0.05), metric["message"]


def test_a_query_that_bursts_is_judged_on_its_plain_mean() -> None:
    """A timeout ratio from another exporter, as a Query: 0.1 % on both tracks, the canary
    5.1 % in 3 of 21 steps (+0.71 points) against maxIncrease 0.005. Clipped, the change
    read +0.02 points and passed."""
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Concurrent",
            "analysis": ANALYSIS,
            "metrics": [
                {
                    "name": "timeouts",
                    "type": "Query",
                    "query": "sum(rate(timeouts_total{ {{selector}} }[1m]))"
                    " / sum(rate(requests_total{ {{selector}} }[1m]))",
                    "thresholds": {"value": {"maxIncrease": 0.005}},
                }
            ],
        }
    )
    w = windows(spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    rng = np.random.default_rng(7)
    stable = 0.001 + rng.normal(0, 0.0002, t.size)
    canary = 0.001 + rng.normal(0, 0.0002, t.size)
    canary[[5, 11, 17]] += 0.05
    data = MetricSamples()
    data.window[("stable", "value")] = TimedSamples(t, stable)
    data.window[("candidate", "value")] = TimedSamples(t, canary)

    metric = judged(spec, {"timeouts": data})

    assert metric["verdict"] == "Regressed", metric["message"]
    assert metric["delta"] == pytest.approx(0.05 * 3 / 21, rel=0.05)
