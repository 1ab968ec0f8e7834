"""One latency metric judged on several statistics: an improvement needs its p95 to drop by
improvement.minP95Reduction (DESIGN), and the overall message counts it as one metric.
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

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def make_spec(improvement: bool) -> PerfBaselineSpec:
    body: dict[str, Any] = {
        "selector": {"service": "api"},
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
        "comparison": "Concurrent",
        "analysis": {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "0s"},
        "metrics": [
            {
                "name": "lat",
                "type": "Latency",
                "histogram": "req_seconds",
                "thresholds": {"p95": {"maxIncrease": "5ms"}, "mean": {"maxIncreasePercent": 10}},
            }
        ],
    }
    if improvement:
        body["improvement"] = {"minP95Reduction": "2ms"}
    return PerfBaselineSpec.model_validate(body)


def evaluate(spec: PerfBaselineSpec, p95_change: float, mean_change: float) -> Outcome:
    """Stable p95 100 ms and mean 40 ms; the canary's moved by the changes (seconds)."""
    w = windows(spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    rng = np.random.default_rng(3)
    p95 = 0.100 + rng.normal(0, 0.0005, t.size)
    mean = 0.040 + rng.normal(0, 0.0001, t.size)
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, p95)
    data.window[("candidate", "p95")] = TimedSamples(
        t, p95 + p95_change + rng.normal(0, 0.0003, t.size)
    )
    data.window[("stable", "mean")] = TimedSamples(t, mean)
    data.window[("candidate", "mean")] = TimedSamples(
        t, mean + mean_change + rng.normal(0, 0.00003, t.size)
    )
    return judge(spec, plan_tracks(spec, None), windows(spec, AT), {"lat": data}, {}, AT)


def verdicts(outcome: Outcome) -> dict[str, str]:
    return {m["statistic"]: m["verdict"] for m in outcome.fields["metrics"]}


def announced(outcome: Outcome) -> list[str]:
    return [e.message for e in outcome.events if e.reason == "ImprovementConfirmed"]


def test_a_faster_mean_beside_a_slower_p95_is_no_improvement() -> None:
    """p95 2 ms slower, mean 0.3 ms faster, minP95Reduction 2ms: the mean was Improved and an
    ImprovementConfirmed Event announced it."""
    outcome = evaluate(make_spec(improvement=True), p95_change=0.002, mean_change=-0.0003)
    assert verdicts(outcome) == {"p95": "Pass", "mean": "Pass"}
    mean = next(m for m in outcome.fields["metrics"] if m["statistic"] == "mean")
    assert "not Improved: its p95 (concurrent) did not improve by" in mean["message"]
    assert "minP95Reduction 2" in mean["message"]
    assert announced(outcome) == []
    assert "improved:" not in outcome.fields["message"]


def test_with_the_p95_dropping_enough_every_better_statistic_is_improved() -> None:
    outcome = evaluate(make_spec(improvement=True), p95_change=-0.003, mean_change=-0.0003)
    assert verdicts(outcome) == {"p95": "Improved", "mean": "Improved"}
    assert len(announced(outcome)) == 2


@pytest.mark.parametrize("p95_change", [0.002, -0.003])
def test_without_improvement_any_significantly_better_statistic_is_improved(
    p95_change: float,
) -> None:
    outcome = evaluate(make_spec(improvement=False), p95_change=p95_change, mean_change=-0.0003)
    assert verdicts(outcome)["mean"] == "Improved"


def test_one_metric_judged_on_two_statistics_is_one_critical_metric() -> None:
    """It read "all 2 critical metrics within thresholds"."""
    outcome = evaluate(make_spec(improvement=False), p95_change=0.0, mean_change=0.0)
    assert len(outcome.fields["metrics"]) == 2
    assert outcome.fields["verdict"] == "Pass", outcome.fields["message"]
    assert outcome.fields["message"].startswith("the critical metric is within thresholds")
