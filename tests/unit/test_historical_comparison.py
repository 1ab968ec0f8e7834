"""PerfBaseline's Historical comparison (unpaired: the candidate window against the
baseline window before it), on hand-made samples through engine.perfbaseline.judge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perfguard.analysis.seasonal import winsorize_each
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def make_spec(**overrides: Any) -> PerfBaselineSpec:
    body: dict[str, Any] = {
        "selector": {"service": "api"},
        "comparison": "Historical",
        "baseline": {"window": "2d", "minSamples": 40},
        "analysis": {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "0s"},
        "metrics": [
            {
                "name": "latency",
                "type": "Latency",
                "histogram": "req_seconds",
                "thresholds": {"p95": {"maxIncrease": "5ms"}},
            }
        ],
    }
    body.update(overrides)
    return PerfBaselineSpec.model_validate(body)


def samples(spec: PerfBaselineSpec, level_s: float, seed: int = 1) -> MetricSamples:
    """2 days of baseline at 100 ms (1 ms noise), and a window at `level_s`."""
    w = windows(spec, AT)
    rng = np.random.default_rng(seed)
    base_t = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() + 1e-6, 30.0)
    window_t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    data = MetricSamples()
    data.baseline["p95"] = TimedSamples(base_t, 0.100 + rng.normal(0, 0.001, base_t.size))
    data.window[("workload", "p95")] = TimedSamples(
        window_t, level_s + rng.normal(0, 0.001, window_t.size)
    )
    return data


@pytest.mark.parametrize("jump_ms", [10.0, 20.0, 100.0])
def test_a_regression_far_beyond_the_limit_fails(jump_ms: float) -> None:
    """The baseline holds 42 samples at the window's time of day and the window 21:
    clipping both around their pooled median (the baseline's) pulled the whole window down
    (against a 12-hour baseline, once compared whole, to about +4 ms)."""
    spec = make_spec()
    outcome = judge(
        spec,
        plan_tracks(spec, None),
        windows(spec, AT),
        {"latency": samples(spec, 0.1 + jump_ms / 1e3)},
        {},
        AT,
    )
    metric = outcome.fields["metrics"][0]
    assert metric["verdict"] == "Regressed", metric["message"]
    assert metric["delta"] == pytest.approx(jump_ms / 1e3, rel=0.1)  # seconds
    assert outcome.fields["verdict"] == "Fail"


def test_an_unchanged_window_passes() -> None:
    spec = make_spec()
    outcome = judge(
        spec, plan_tracks(spec, None), windows(spec, AT), {"latency": samples(spec, 0.100)}, {}, AT
    )
    assert outcome.fields["verdict"] == "Pass", outcome.fields["metrics"][0]["message"]


def test_each_series_is_clipped_around_its_own_centre() -> None:
    rng = np.random.default_rng(3)
    baseline = 0.100 + rng.normal(0, 0.001, 1440)
    candidate = 0.200 + rng.normal(0, 0.001, 21)
    candidate[5] = 0.900  # a spike on the new level
    clipped_c, clipped_b = winsorize_each(candidate, baseline)
    assert np.median(clipped_c) == pytest.approx(0.200, abs=0.001), "the level is kept"
    assert clipped_c.max() < 0.21, "the spike is pulled in to the candidate's own spread"
    assert np.array_equal(clipped_b, np.clip(baseline, clipped_b.min(), clipped_b.max()))


def test_a_historical_breach_is_dated_from_the_first_evaluation_that_sees_it() -> None:
    """No level shift is searched for in unpaired samples, so the breach cannot be dated
    from inside the window (docs/perfbaseline.md, Sustain): it starts at the evaluation,
    and fails sustainFor (3m) later, even though the whole window was already beyond."""
    from datetime import timedelta

    from perfguard.status import next_status

    spec = make_spec(
        analysis={"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "3m"}
    )
    status: dict[str, Any] = {}
    verdicts = []
    for minute in range(4):
        at = AT + timedelta(minutes=minute)
        w = windows(spec, at)
        rng = np.random.default_rng(minute)
        data = MetricSamples()
        base_t = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() + 1e-6, 30.0)
        window_t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
        data.baseline["p95"] = TimedSamples(base_t, 0.100 + rng.normal(0, 0.001, base_t.size))
        data.window[("workload", "p95")] = TimedSamples(
            window_t, 0.120 + rng.normal(0, 0.001, window_t.size)
        )
        out = judge(spec, plan_tracks(spec, None), w, {"latency": data}, status, at)
        status = next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)
        verdicts.append(status["verdict"])
        assert status["metrics"][0]["breachSince"] == "2026-12-03T12:00:00Z"
    assert verdicts == ["Inconclusive", "Inconclusive", "Inconclusive", "Fail"]
