"""PerfBaseline verdicts that must not pass on the data that is left: a candidate without a
stable track, a stable track that went silent, a throughput window with steps missing.
Hand-made samples through engine.perfbaseline.judge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources.workloads import rollout_hashes
from perfguard.status import next_status

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
        baseline={"window": "2d", "minSamples": 20},
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


# -- a stable track that went silent ----------------------------------------------------

CONCURRENT = make_spec(
    [LATENCY],
    candidate={"matchLabels": {"track": "canary"}},
    stable={"matchLabels": {"track": "stable"}},
    comparison="Concurrent",
)
PLAN = plan_tracks(CONCURRENT, None)
SWITCH = AT  # Argo setWeight 100: the stable track gets no traffic from here on
NOISE = np.random.default_rng(1).normal(0, 0.001, 400_000)


def weight_100(at: datetime) -> dict[str, MetricSamples]:
    """Stable and candidate at 100 ms until SWITCH; then the stable's p95 is NaN (no
    traffic: histogram_quantile of zero rates) and the candidate is 40 ms slower."""
    t = window_times(CONCURRENT, at)
    i = (t.astype(int) // 30) % NOISE.size
    before = t < SWITCH.timestamp()
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, np.where(before, 0.100 + NOISE[i], np.nan))
    candidate = 0.100 + NOISE[i] + 0.5 * NOISE[(i + 7) % NOISE.size]
    data.window[("candidate", "p95")] = TimedSamples(t, candidate + np.where(before, 0, 0.040))
    return {"latency": data}


def test_a_silent_stable_track_is_not_paired_with_the_candidate() -> None:
    """Pairs need both tracks: the verdict rested on pairs from before the switch and
    passed a canary 40 ms slower for 6 evaluations. Past the staleness allowance (2 steps
    plus the rate window, as for the candidate) the comparison is NoData, StableDataStale,
    and stays so once the window holds no stable value at all (from 10 minutes after the
    switch): it turned into a generic NoData, "no samples: candidate 0, baseline 0",
    though the canary had 21 samples."""
    status: dict[str, Any] = {}
    seen = []
    messages = {}
    for minute in range(-1, 14):
        at = SWITCH + timedelta(minutes=minute)
        out = judge(CONCURRENT, PLAN, windows(CONCURRENT, at), weight_100(at), status, at)
        status = next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)
        seen.append((minute, out.fields["verdict"], out.fields["metrics"][0]["reason"]))
        messages[minute] = status["metrics"][0]["message"]
    # Before the switch, and within the allowance after it, the pairs are current.
    assert all(verdict == "Pass" for minute, verdict, _ in seen if minute < 0), seen
    stale = [(verdict, reason) for minute, verdict, reason in seen if minute >= 2]
    assert stale == [("Inconclusive", "StableDataStale")] * len(stale), seen
    assert "the stable track's newest sample is" in messages[7]
    # The window (10m) holds no stable value from minute 10 on.
    assert messages[13] == (
        "the stable track has no sample in the whole window (10m): its series is there "
        "without a value, so it stopped reporting or had no traffic; the candidate's 21 "
        "samples have no stable samples to be paired with"
    )
    assert "candidate 0" not in messages[13]


def test_tracks_without_a_common_step_are_not_called_empty() -> None:
    """Both tracks report, but never at the same step: NoData that says so, not
    "candidate 0, baseline 0"."""
    data = weight_100(SWITCH - timedelta(minutes=1))["latency"]
    stable = data.window[("stable", "p95")]
    data.window[("stable", "p95")] = TimedSamples(stable.timestamps + 15.0, stable.values)
    at = SWITCH - timedelta(minutes=1)
    item = judge(CONCURRENT, PLAN, windows(CONCURRENT, at), {"latency": data}, {}, at)
    metric = item.fields["metrics"][0]
    assert (metric["verdict"], metric["reason"]) == ("NoData", "NoData")
    assert metric["message"] == (
        "no pairs: candidate 21 and stable 21 samples, but none at the same step; pairs "
        "need both tracks at one timestamp"
    )


def test_a_stable_track_that_stopped_reporting_is_named() -> None:
    data = weight_100(AT + timedelta(minutes=5))["latency"]
    at = AT + timedelta(minutes=5)
    out = judge(CONCURRENT, PLAN, windows(CONCURRENT, at), {"latency": data}, {}, at)
    item = out.fields["metrics"][0]
    assert (item["verdict"], item["reason"]) == ("NoData", "StableDataStale")
    assert "newest sample is 5m30s old" in item["message"]
    assert out.fields["verdict"] == "Inconclusive"


# -- throughput with steps missing ------------------------------------------------------

# 2 days: 42 baseline samples at the window's time of day.
HISTORY = make_spec(
    [THROUGHPUT], comparison="Historical", baseline={"window": "2d", "minSamples": 40}
)


def throughput_without(steps: slice) -> dict[str, MetricSamples]:
    """100 requests/s now and in the baseline; the window's `steps` have no series (no pod
    scraped: an outage since recovered, or a Prometheus gap)."""
    rng = np.random.default_rng(0)
    t, tb = window_times(HISTORY), baseline_times(HISTORY)
    keep = np.ones(t.size, bool)
    keep[steps] = False
    data = MetricSamples()
    data.window[("workload", "rate")] = TimedSamples(t[keep], 100 + rng.normal(0, 0.5, keep.sum()))
    data.baseline["rate"] = TimedSamples(tb, 100 + rng.normal(0, 0.5, tb.size))
    return {"throughput": data}


@pytest.mark.parametrize(
    ("missing", "verdict", "reason"),
    [
        (slice(0, 0), "Pass", "WithinThreshold"),
        (slice(4, 6), "Pass", "WithinThreshold"),  # 2 of 21: tolerated
        (slice(4, 7), "NoData", "IncompleteWindow"),  # 3 of 21
        (slice(4, 14), "NoData", "IncompleteWindow"),  # a 5-minute outage
    ],
)
def test_a_throughput_window_with_steps_missing_is_not_judged(
    missing: slice, verdict: str, reason: str
) -> None:
    """The mean of the steps left hid an outage: 10 of 21 steps without a series (no
    requests served) and the 11 left at 100/s passed a 10/s maxDecrease."""
    data = throughput_without(missing)
    out = judge(HISTORY, plan_tracks(HISTORY, None), windows(HISTORY, AT), data, {}, AT)
    item = out.fields["metrics"][0]
    assert (item["verdict"], item["reason"]) == (verdict, reason), item["message"]
    if reason == "IncompleteWindow":
        gone = missing.stop - missing.start
        assert f"{gone} of the window's 21 steps had no series" in item["message"]
        assert out.fields["verdict"] == "Inconclusive"


def test_missing_latency_steps_are_still_judged() -> None:
    """A canary with little traffic has steps without a p95 (NaN) as a matter of course:
    the window rule is for throughput only."""
    rng = np.random.default_rng(2)
    t = window_times(CONCURRENT)
    values = 0.100 + rng.normal(0, 0.001, t.size)
    keep = np.ones(t.size, bool)
    keep[[2, 5, 8, 11]] = False
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, values + rng.normal(0, 0.0005, t.size))
    data.window[("candidate", "p95")] = TimedSamples(t[keep], values[keep])
    out = judge(CONCURRENT, PLAN, windows(CONCURRENT, AT), {"latency": data}, {}, AT)
    assert out.fields["verdict"] == "Pass", out.fields["metrics"][0]["message"]
