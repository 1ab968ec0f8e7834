"""ImprovementConfirmed is announced once per candidate and metric, not on every return to
Improved (perfguard.engine.perfbaseline._improvements), through the pure judge: each
evaluation sees the status the one before wrote, merged as the operator merges it.

sustainFor is 15 minutes: a regression over the whole 10-minute window is a breach dated
from the window's start, pending for five more evaluations before it fails the verdict."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import TrackPlan, plan_tracks
from perfguard.sources.prometheus import FailureKind, PrometheusError
from tests.unit.specs import concurrent_spec

SPEC = concurrent_spec(
    [
        {
            "name": "gpu",
            "type": "Query",
            "query": "avg(gpu_util{ {{selector}} })",
            "thresholds": {"value": {"maxIncreasePercent": 10}},
        }
    ]
)
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _samples(at: datetime, change: float, seed: int) -> dict[str, MetricSamples]:
    """Stable at 50 with small independent noise; the canary ``change`` (relative) away."""
    rng = np.random.default_rng(seed)
    w = windows(SPEC, at)
    ts = np.arange(w.start.timestamp(), w.end.timestamp() + 1, 30.0)
    stable = 50.0 + rng.normal(0.0, 0.2, ts.size)
    canary = 50.0 * (1.0 + change) + rng.normal(0.0, 0.2, ts.size)
    data = MetricSamples()
    data.window[("candidate", "value")] = TimedSamples(ts, canary)
    data.window[("stable", "value")] = TimedSamples(ts, stable)
    return {"gpu": data}


class Run:
    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.at = START
        self.plan: TrackPlan = plan_tracks(SPEC, None)

    def evaluate(self, change: float | None) -> tuple[str, list[str], str | None]:
        """(metric verdict, Event reasons, improvedSince) of one evaluation; ``change`` None:
        Prometheus unreachable (the status keeps the metrics the evaluation before wrote)."""
        self.at += timedelta(minutes=1)
        if change is None:
            samples = {"gpu": MetricSamples(error=PrometheusError(FailureKind.UNREACHABLE, "down"))}
        else:
            samples = _samples(self.at, change, seed=int(self.at.timestamp()))
        outcome = judge(SPEC, self.plan, windows(SPEC, self.at), samples, self.status, self.at)
        self.status = {**self.status, **outcome.fields}
        (metric,) = self.status["metrics"]
        events = [e.reason for e in outcome.events]
        return metric["verdict"], events, metric.get("improvedSince")


def _unannounced(run: Run, change: float, verdict: str, since: str | None) -> None:
    """One evaluation with this metric verdict and stamp, and no ImprovementConfirmed."""
    got_verdict, events, got_since = run.evaluate(change)
    assert (got_verdict, got_since) == (verdict, since)
    assert "ImprovementConfirmed" not in events


def test_a_candidate_improving_on_and_off_is_announced_once() -> None:
    run = Run()
    verdict, events, since = run.evaluate(-0.2)
    assert verdict == "Improved"
    assert events.count("ImprovementConfirmed") == 1
    first = since
    assert first == "2026-12-03T12:01:00Z"
    # Slightly worse but within the limit (Pass), then improved again: the same
    # candidate, no new Event.
    _unannounced(run, 0.02, "Pass", first)
    _unannounced(run, -0.2, "Improved", first)


def test_a_pending_breach_and_an_outage_keep_the_stamp() -> None:
    run = Run()
    first = run.evaluate(-0.2)[2]
    verdict, _, since = run.evaluate(0.5)
    assert verdict == "Regressed"  # a breach, held 10 of the 15 minutes: not failed yet
    assert run.status["verdict"] == "Inconclusive"
    assert since == first
    assert run.evaluate(None)[1:] == (["PrometheusUnreachable"], first)
    _unannounced(run, -0.2, "Improved", first)


def test_a_sustained_regression_or_a_new_candidate_rearms_the_announcement() -> None:
    run = Run()
    assert "ImprovementConfirmed" in run.evaluate(-0.2)[1]
    for _ in range(6):  # the breach dated from the window's start: 10, 11, ... 15 minutes
        verdict, _, since = run.evaluate(0.5)
    assert verdict == "Regressed"
    assert run.status["verdict"] == "Fail"
    assert since is None
    verdict, events, since = run.evaluate(-0.2)
    assert verdict == "Improved"
    assert "ImprovementConfirmed" in events
    assert since == "2026-12-03T12:08:00Z"
    # A new candidate (another pod-template hash) is a new claim.
    run.plan = replace(run.plan, identity="another-candidate")
    verdict, events, since = run.evaluate(-0.2)
    assert "ImprovementConfirmed" in events
    assert since == "2026-12-03T12:09:00Z"


def test_a_status_written_before_the_stamp_is_not_announced_again() -> None:
    run = Run()
    run.evaluate(-0.2)
    for metric in run.status["metrics"]:
        del metric["improvedSince"]  # as an older operator wrote it: verdict Improved only
    verdict, events, since = run.evaluate(-0.2)
    assert verdict == "Improved"
    assert "ImprovementConfirmed" not in events
    assert since == "2026-12-03T12:01:00Z"  # the evaluation that announced it
