"""A Historical comparison is made only at the window's time of day on earlier days
(engine.perfbaseline_fetch.same_time_slices): a baseline with less than a day of history
is not compared (BaselineTooShort), and a spec whose baseline can never hold
baseline.minSamples at that time of day says so. Hand-made samples through judge."""

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
from perfguard.sources.workloads import WorkloadHashes

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
LATENCY = {
    "name": "latency",
    "type": "Latency",
    "histogram": "req_seconds",
    "thresholds": {"p95": {"maxIncrease": "5ms"}},
}


def make_spec(
    comparison: str = "Historical",
    baseline: dict[str, Any] | None = None,
    window: str = "10m",
) -> PerfBaselineSpec:
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": comparison,
            "baseline": baseline or {"window": "7d", "minSamples": 50},
            "analysis": {"interval": "1m", "window": window, "step": "30s", "sustainFor": "0s"},
            "improvement": {"minP95Reduction": "2ms"},
            "metrics": [LATENCY],
        }
    )


def stable_p95(t: np.ndarray, window_start: float, trough: bool) -> np.ndarray:
    """A daily cycle: 70 ms at the trough, 130 ms at the peak 12 hours away; the window sits
    at the trough or at the peak."""
    hours = ((t - window_start) % 86400) / 3600.0
    phase = 0.0 if trough else np.pi
    return 0.100 - 0.030 * np.cos(2 * np.pi * hours / 24 + phase)


def cycle_samples(
    spec: PerfBaselineSpec, history: timedelta, trough: bool, candidate_above: float
) -> MetricSamples:
    """The stable track with `history` of baseline (its hash rolled out then), the candidate
    `candidate_above` seconds above the stable's level at the window's time of day; the
    stable track in the window too, at its level there."""
    w = windows(spec, AT)
    rng = np.random.default_rng(7)
    s = w.start.timestamp()
    step = w.baseline_step.total_seconds()
    tb = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() - 1e-6, step)
    tb = tb[tb >= s - history.total_seconds()]
    t = np.arange(s, w.end.timestamp() + 1e-6, 30.0)
    here = float(stable_p95(np.array([s]), s, trough)[0])
    data = MetricSamples()
    data.baseline["p95"] = TimedSamples(
        tb, stable_p95(tb, s, trough) + rng.normal(0, 2e-3, tb.size)
    )
    data.window[("candidate", "p95")] = TimedSamples(
        t, here + candidate_above + rng.normal(0, 2e-3, t.size)
    )
    data.window[("stable", "p95")] = TimedSamples(t, here + rng.normal(0, 2e-3, t.size))
    return data


def run(spec: PerfBaselineSpec, data: MetricSamples) -> Outcome:
    return judge(spec, plan_tracks(spec, None), windows(spec, AT), {"latency": data}, {}, AT)


def entry(out: Outcome, comparison: str) -> dict[str, Any]:
    return next(m for m in out.fields["metrics"] if m["comparison"] == comparison)


def condition(out: Outcome, kind: str) -> Any:
    return next(c for c in out.conditions if c.type == kind)


@pytest.mark.parametrize(
    ("trough", "candidate_above"),
    [(True, 0.015), (False, 0.0)],
    ids=["regressed-at-the-trough", "healthy-at-the-peak"],
)
def test_a_stable_track_younger_than_a_day_is_not_compared(
    trough: bool, candidate_above: float
) -> None:
    """The stable hash rolled out 20 hours ago: no earlier day holds the window's time of
    day. Compared with the whole 20 hours, a canary 15 ms slower at the trough passed as
    Improved (about -20 ms, ImprovementConfirmed, BaselineEstablished), and a healthy one
    failed at the peak."""
    spec = make_spec()
    out = run(spec, cycle_samples(spec, timedelta(hours=20), trough, candidate_above))
    historical = entry(out, "Historical")
    assert historical["verdict"] == "NoData", historical["message"]
    assert historical["reason"] == "BaselineTooShort"
    assert "the stable track has 20h of history" in historical["message"]
    assert out.fields["verdict"] == "Inconclusive"
    established = condition(out, "BaselineEstablished")
    assert (established.status.value, established.reason) == ("False", "BaselineTooShort")
    assert [e.reason for e in out.events] == []  # no BaselineEstablished, no improvement
    assert out.fields["baseline"]["samplesAtTimeOfDay"] == 0


def test_with_a_week_of_history_the_same_canary_fails() -> None:
    """The control: with 7 days the window is compared with the trough on earlier days."""
    spec = make_spec()
    out = run(spec, cycle_samples(spec, timedelta(days=7), True, 0.015))
    historical = entry(out, "Historical")
    assert historical["verdict"] == "Regressed", historical["message"]
    assert historical["delta"] == pytest.approx(0.015, abs=0.003)
    assert condition(out, "BaselineEstablished").status.value == "True"


@pytest.mark.parametrize(
    ("candidate_above", "concurrent", "verdict"),
    [(0.015, "Regressed", "Fail"), (0.0, "Pass", "Inconclusive")],
)
def test_both_keeps_its_concurrent_comparison_when_the_baseline_is_too_short(
    candidate_above: float, concurrent: str, verdict: str
) -> None:
    """In `Both` the Concurrent comparison is judged exactly as in a Concurrent spec; only the
    Historical one is NoData. A Concurrent regression still fails the canary; a healthy
    canary is Inconclusive, not Pass, while a comparison the spec asks for has no baseline
    (as with NoStableTrack)."""
    data = cycle_samples(make_spec(), timedelta(hours=20), True, candidate_above)
    both = run(make_spec("Both"), data)
    alone = run(make_spec("Concurrent"), data)
    assert entry(both, "Concurrent") == entry(alone, "Concurrent")
    assert entry(both, "Concurrent")["verdict"] == concurrent
    assert entry(both, "Historical")["reason"] == "BaselineTooShort"
    assert both.fields["verdict"] == verdict


def test_a_baseline_window_under_a_day_names_the_fix() -> None:
    spec = make_spec(baseline={"window": "12h", "minSamples": 50})
    out = run(spec, cycle_samples(spec, timedelta(days=7), True, 0.0))
    historical = entry(out, "Historical")
    assert historical["reason"] == "BaselineTooShort", historical["message"]
    fix = "baseline.window is 12h, so it never will: set it to at least 1d"
    assert fix in historical["message"]


def flat_samples(spec: PerfBaselineSpec, days: int, level: float) -> MetricSamples:
    """A flat stable track with `days` days of history, the candidate at `level`."""
    w = windows(spec, AT)
    rng = np.random.default_rng(3)
    step = w.baseline_step.total_seconds()
    tb = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() - 1e-6, step)
    tb = tb[tb >= w.start.timestamp() - days * 86400]
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    data = MetricSamples()
    data.baseline["p95"] = TimedSamples(tb, 0.100 + rng.normal(0, 1e-3, tb.size))
    data.window[("candidate", "p95")] = TimedSamples(t, level + rng.normal(0, 1e-3, t.size))
    return data


def test_min_samples_a_window_can_never_reach_is_named_with_its_fix() -> None:
    """A 5m window at 30 s against the default 7d baseline (step coarsened to 1m) has 7 x 6 =
    42 samples at its time of day, below the default minSamples 50: Inconclusive for ever,
    even 40 ms slower, while status.baseline.samples said 10,080."""
    spec = make_spec(window="5m")
    out = run(spec, flat_samples(spec, 7, 0.140))
    historical = entry(out, "Historical")
    assert historical["reason"] == "TooFewSamples"
    assert "42 baseline samples at the window's time of day" in historical["message"]
    assert "lower baseline.minSamples to 42 or less" in historical["message"]
    established = condition(out, "BaselineEstablished")
    assert (established.status.value, established.reason) == ("False", "MinSamplesUnreachable")
    assert "lengthen analysis.window" in established.message
    assert out.fields["baseline"]["samples"] == 10080
    assert out.fields["baseline"]["samplesAtTimeOfDay"] == 42


def test_a_short_history_is_insufficient_not_unreachable() -> None:
    """Three days of a 7-day baseline hold 3 x 11 = 33 samples at the window's time of day:
    more history will bring minSamples, so the condition says InsufficientBaseline."""
    spec = make_spec()
    out = run(spec, flat_samples(spec, 3, 0.100))
    established = condition(out, "BaselineEstablished")
    assert (established.status.value, established.reason) == ("False", "InsufficientBaseline")
    assert established.message == (
        "33 baseline samples at the window's time of day, need baseline.minSamples 50"
    )
    assert out.fields["baseline"]["samplesAtTimeOfDay"] == 33


def test_the_table_shows_the_samples_judged_beside_the_total() -> None:
    """`perfguard evaluate -o table` printed only "10080 samples" while the comparison was
    short of minSamples at the window's time of day."""
    from perfguard.render import perfbaseline

    spec = make_spec(window="5m")
    out = run(spec, flat_samples(spec, 7, 0.140))
    table = perfbaseline("pb", out.fields)
    assert "10080 samples, 42 at the window's time of day" in table


def test_the_report_shows_the_samples_judged_beside_the_total() -> None:
    from perfguard.report import build, markdown

    spec = make_spec(window="5m")
    out = run(spec, flat_samples(spec, 7, 0.140))
    pb = {"metadata": {"name": "pb", "namespace": "ns"}, "status": out.fields}
    text = markdown(build([pb], [], [], now=AT))
    assert "| samples | at the time of day | established |" in text
    assert "| 10080 | 42 |" in text


def test_with_workload_ref_a_too_short_baseline_names_the_concurrent_comparison() -> None:
    """With workloadRef the historical baseline is the stable pod-template hash, which is new
    at every release: the message says why it is short and which comparison needs no day
    of it."""
    body = make_spec("Both").model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in ("candidate", "stable"):
        body.pop(key)
    body["workloadRef"] = {"kind": "Rollout", "name": "api"}
    spec = PerfBaselineSpec.model_validate(body)
    data = cycle_samples(spec, timedelta(hours=20), True, 0.0)
    plan = plan_tracks(spec, WorkloadHashes("abc123", "def456"))
    out = judge(spec, plan, windows(spec, AT), {"latency": data}, {}, AT)
    historical = entry(out, "Historical")
    assert historical["reason"] == "BaselineTooShort", historical["message"]
    assert (
        "`comparison: Concurrent` judges the canary against the stable pods alone"
        in (historical["message"])
    )
