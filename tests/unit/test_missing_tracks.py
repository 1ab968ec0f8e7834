"""PerfBaseline verdicts that must not pass on the data that is left: a candidate without a
stable track.
Hand-made samples through engine.perfbaseline.judge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources.workloads import rollout_hashes

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
ANALYSIS = {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "3m"}
LATENCY = {
    "name": "latency",
    "type": "Latency",
    "histogram": "req_seconds",
    "thresholds": {"p95": {"maxIncrease": "5ms"}},
}
THROUGHPUT = {
    "name": "throughput",
    "type": "Throughput",
    "counter": "req_total",
    "thresholds": {"rate": {"maxDecrease": 10}},
}


def make_spec(metrics: list[dict[str, Any]], **fields: Any) -> PerfBaselineSpec:
    return PerfBaselineSpec.model_validate(
        {"selector": {"service": "api"}, "analysis": ANALYSIS, "metrics": metrics, **fields}
    )


def window_times(spec: PerfBaselineSpec, at: datetime = AT) -> np.ndarray:
    w = windows(spec, at)
    return np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)


def baseline_times(spec: PerfBaselineSpec, at: datetime = AT) -> np.ndarray:
    w = windows(spec, at)
    step = w.baseline_step.total_seconds()
    return np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() - 1e-6, step)


def metric(out: Outcome, name: str, comparison: str) -> dict[str, Any]:
    return next(
        m for m in out.fields["metrics"] if m["name"] == name and m["comparison"] == comparison
    )


# -- a candidate without a stable track -------------------------------------------------


@pytest.mark.parametrize("comparison", ["Concurrent", "Both"])
def test_a_rollout_without_stable_rs_is_not_passed_on_throughput_alone(comparison: str) -> None:
    """A Rollout with currentPodHash and no stableRS: the Concurrent latency comparison
    was left out without a word, throughput (judged on the workload) passed, and so did
    the verdict, for a canary 400 ms slower than the service's history."""
    spec = make_spec(
        [LATENCY, THROUGHPUT],
        workloadRef={"kind": "Rollout", "name": "api"},
        comparison=comparison,
        baseline={"window": "6h", "minSamples": 20},
    )
    plan = plan_tracks(spec, rollout_hashes({"status": {"currentPodHash": "abc123"}}))
    rng = np.random.default_rng(0)
    t, tb = window_times(spec), baseline_times(spec)
    latency = MetricSamples()
    latency.window[("candidate", "p95")] = TimedSamples(t, 0.500 + rng.normal(0, 0.001, t.size))
    latency.baseline["p95"] = TimedSamples(tb, 0.100 + rng.normal(0, 0.001, tb.size))
    throughput = MetricSamples()
    throughput.window[("workload", "rate")] = TimedSamples(t, 100 + rng.normal(0, 1, t.size))
    throughput.baseline["rate"] = TimedSamples(tb, 100 + rng.normal(0, 1, tb.size))
    data = {"latency": latency, "throughput": throughput}

    out = judge(spec, plan, windows(spec, AT), data, {}, AT)

    assert out.fields["verdict"] != "Pass", out.fields["message"]
    concurrent = metric(out, "latency", "Concurrent")
    assert (concurrent["verdict"], concurrent["reason"]) == ("NoData", "NoStableTrack")
    assert "Rollout api" in concurrent["message"]
    assert "status.stableRS is empty" in concurrent["message"]
    regressed = next(c for c in out.conditions if c.type == "Regressed")
    assert regressed.status.value == "Unknown"
    if comparison == "Concurrent":  # (Both: the historical comparison's breach is news first)
        assert "stableRS" in regressed.message  # the condition says why the verdict is open
    assert metric(out, "throughput", "Historical")["verdict"] == "Pass"


def test_a_historical_spec_needs_no_stable_track() -> None:
    spec = make_spec(
        [LATENCY],
        workloadRef={"kind": "Rollout", "name": "api"},
        comparison="Historical",
    )
    plan = plan_tracks(spec, rollout_hashes({"status": {"currentPodHash": "abc123"}}))
    assert plan.no_stable is None
