"""A quantile above a histogram's highest finite bucket is not judged (HistogramSaturated).

histogram_quantile answers the highest finite bucket's bound when the quantile lies in the
+Inf bucket. Judged as the quantile, a canary at p95 3 s against a stable at 0.85 s, with
buckets up to 1 s, read 1.0 s against 0.75 s and passed `maxIncreasePercent: 50`; a canary
at 20 s against a stable at 2 s read +0 ms and passed `maxIncrease: 50ms`. The rule
(perfguard.analysis.histogram) and the judge's use of it, on hand-made samples; the
integration test tests/integration/test_histogram_saturation.py has real Prometheus.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from perfguard.analysis.histogram import saturated, saturation
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources.perfbaseline_queries import OVERFLOW

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ANALYSIS = {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "3m"}


# -- the rule ---------------------------------------------------------------------------


def test_a_step_is_saturated_when_more_than_1_minus_q_is_above_the_top_bucket() -> None:
    shares = [0.0, 0.04, 0.05, 0.0501, 0.3, np.nan]
    assert saturated(shares, 0.95).tolist() == [False, False, False, True, True, False]
    # p99 allows 1 %: 4 % above the top bucket is too much for it, not for a p95.
    assert saturated(shares, 0.99).tolist() == [False, True, True, True, True, False]
    assert saturated(shares, 0.5).tolist() == [False] * 6


def test_saturation_names_the_bound_the_steps_and_the_worst_share() -> None:
    shares = np.array([0.01, 0.08, 0.12, np.nan, 0.02])
    values = np.array([0.93, 1.0, 1.0, np.nan, 0.97])
    found = saturation(shares, values, 0.95)
    assert found is not None
    assert (found.steps, found.of, found.bound) == (2, 4, 1.0)
    assert found.worst_share == pytest.approx(0.12)
    assert saturation(shares, values, 0.5) is None
    with pytest.raises(ValueError, match="aligned"):
        saturation(shares, values[:3], 0.95)


# -- the judge ----------------------------------------------------------------------------


def make_spec(
    thresholds: dict[str, Any], stage_label: str | None = None, **fields: Any
) -> PerfBaselineSpec:
    raw: dict[str, Any] = {
        "selector": {"service": "api"},
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
        "comparison": "Concurrent",
        "analysis": ANALYSIS,
        "metrics": [
            {
                "name": "latency",
                "type": "Latency",
                "histogram": "req_seconds",
                "thresholds": thresholds,
                **({"stageLabel": stage_label} if stage_label else {}),
            }
        ],
        **fields,
    }
    return PerfBaselineSpec.model_validate(raw)


def window_times(spec: PerfBaselineSpec) -> np.ndarray:
    w = windows(spec, AT)
    return np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)


def series(t: np.ndarray, level: float, sd: float, seed: int) -> TimedSamples:
    return TimedSamples(t, level + np.random.default_rng(seed).normal(0, sd, t.size))


def constant(t: np.ndarray, value: float) -> TimedSamples:
    return TimedSamples(t, np.full(t.size, value))


def reviewers_case(spec: PerfBaselineSpec, *, canary_share_above: float) -> MetricSamples:
    """The reviewer's first service: buckets up to 1 s, a stable p95 of ~0.75 s as
    histogram_quantile interpolates it, and a canary whose p95 (3 s) is in +Inf."""
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = constant(t, 1.0)  # the bound, every step
    data.window[("stable", "p95")] = series(t, 0.75, 0.005, 1)
    data.window[("candidate", OVERFLOW)] = series(t, canary_share_above, 0.005, 2)
    data.window[("stable", OVERFLOW)] = series(t, 0.02, 0.002, 3)
    return data


def metric(out: Outcome, statistic: str, comparison: str = "Concurrent") -> dict[str, Any]:
    return next(
        m
        for m in out.fields["metrics"]
        if m["statistic"] == statistic and m["comparison"] == comparison
    )


def run(spec: PerfBaselineSpec, data: MetricSamples) -> Outcome:
    return judge(spec, plan_tracks(spec, None), windows(spec, AT), {"latency": data}, {}, AT)


def test_a_candidate_p95_above_the_top_bucket_is_not_passed() -> None:
    spec = make_spec({"p95": {"maxIncreasePercent": 50}})
    out = run(spec, reviewers_case(spec, canary_share_above=0.10))
    p95 = metric(out, "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert out.fields["verdict"] == "Inconclusive"
    assert out.fields["reason"] == "NoData"
    assert "latency p95 (concurrent): not judged" in out.fields["message"]
    message = p95["message"]
    assert "above the highest finite bucket of req_seconds (le=1, 1000.00ms)" in message
    assert re.search(r"the candidate at 21 of 21 steps \(up to 1\d\.\d % of the requests", message)
    assert "stable" not in message  # its 2 % is within the 5 % a p95 allows
    assert "5 %" in message
    # The printer column's p95 is a floor, and says so.
    assert out.fields["summary"]["p95"].startswith(">=")


def test_the_same_tracks_inside_the_buckets_are_judged_as_before() -> None:
    """The control: the same numbers with at most 5 % of the canary's requests above the top
    bucket (its p95 is then really inside the buckets) are judged: +33 % within 50 %."""
    spec = make_spec({"p95": {"maxIncreasePercent": 50}})
    data = reviewers_case(spec, canary_share_above=0.03)
    out = run(spec, data)
    assert metric(out, "p95")["verdict"] == "Pass", metric(out, "p95")["message"]
    assert out.fields["verdict"] == "Pass"
    assert not out.fields["summary"]["p95"].startswith(">=")


def test_both_tracks_above_the_top_bucket_are_not_an_equal_pass() -> None:
    """The reviewer's second service: true p95 2 s and 20 s both read 1 s: +0 ms, [0, 0]."""
    spec = make_spec({"p95": {"maxIncrease": "50ms"}})
    t = window_times(spec)
    data = MetricSamples()
    for track, share in (("candidate", 0.08), ("stable", 0.08)):
        data.window[(track, "p95")] = constant(t, 1.0)
        data.window[(track, OVERFLOW)] = constant(t, share)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated")
    assert "the candidate at 21 of 21" in p95["message"]
    assert "the stable track at 21 of 21" in p95["message"]


def test_a_stable_track_above_the_top_bucket_is_not_judged_either() -> None:
    """A floor under the stable's p95 makes the change look larger: a release that added
    higher buckets would read as a regression against the old top bucket."""
    spec = make_spec({"p95": {"maxIncrease": "50ms"}})
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = series(t, 1.4, 0.01, 1)
    data.window[("candidate", OVERFLOW)] = constant(t, 0.001)
    data.window[("stable", "p95")] = constant(t, 1.0)
    data.window[("stable", OVERFLOW)] = constant(t, 0.2)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated")
    assert "the stable track at 21 of 21" in p95["message"]
    assert "candidate" not in p95["message"]


def test_one_saturated_step_is_enough_and_unpaired_steps_do_not_count() -> None:
    spec = make_spec({"p95": {"maxIncrease": "5ms"}})
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = series(t, 0.100, 0.001, 1)
    data.window[("stable", "p95")] = series(t[:-1], 0.100, 0.001, 2)  # no last step
    shares = np.full(t.size, 0.01)
    shares[-1] = 0.3  # only at the step the stable has no pair for
    data.window[("candidate", OVERFLOW)] = TimedSamples(t, shares)
    data.window[("stable", OVERFLOW)] = constant(t[:-1], 0.01)
    assert metric(run(spec, data), "p95")["verdict"] == "Pass"

    shares[5] = 0.06  # and one judged step
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated")
    assert "the candidate at 1 of 20 steps (up to 6.0 %" in p95["message"]


def test_each_quantile_has_its_own_limit_and_the_mean_is_judged_anyway() -> None:
    """2 % above the top bucket: the p99 (1 % allowed) is a floor, the p50 and the mean
    (from _sum/_count) are what they say."""
    spec = make_spec(
        {"p50": {"maxIncrease": "5ms"}, "p99": {"maxIncrease": "5ms"}, "mean": {"max": "1s"}}
    )
    t = window_times(spec)
    data = MetricSamples()
    for i, track in enumerate(("candidate", "stable")):
        data.window[(track, "p50")] = series(t, 0.100, 0.001, i)
        data.window[(track, "p95")] = series(t, 0.400, 0.002, 10 + i)
        data.window[(track, "p99")] = constant(t, 1.0)
        data.window[(track, "mean")] = series(t, 0.150, 0.001, 20 + i)
        data.window[(track, OVERFLOW)] = constant(t, 0.02)
    out = run(spec, data)
    assert metric(out, "p50")["verdict"] == "Pass"
    assert metric(out, "mean")["verdict"] == "Pass"
    p99 = metric(out, "p99")
    assert (p99["verdict"], p99["reason"]) == ("NoData", "HistogramSaturated")
    assert "1 % above it" in p99["message"]
    assert out.fields["verdict"] == "Inconclusive"


def historical_case(saturated_hour: float) -> tuple[PerfBaselineSpec, MetricSamples]:
    """A workload watched against 3 days of its own history (every 30 s), whose p95 was
    above the top bucket on earlier days for an hour starting `saturated_hour` hours before
    the window ends."""
    spec = make_spec(
        {"p95": {"maxIncrease": "50ms"}},
        candidate=None,
        stable=None,
        comparison="Historical",
        baseline={"window": "3d", "minSamples": 20},
    )
    w = windows(spec, AT)
    t = window_times(spec)
    tb = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() - 1e-6, 30.0)
    data = MetricSamples()
    data.window[("workload", "p95")] = series(t, 0.500, 0.005, 1)
    data.window[("workload", OVERFLOW)] = constant(t, 0.001)
    values = 0.500 + np.random.default_rng(2).normal(0, 0.005, tb.size)
    shares = np.full(tb.size, 0.001)
    hours_before_end = ((AT.timestamp() - tb) / 3600.0) % 24.0
    hit = (hours_before_end >= saturated_hour - 1) & (hours_before_end < saturated_hour)
    values[hit], shares[hit] = 1.0, 0.2
    data.baseline["p95"] = TimedSamples(tb, values)
    data.baseline[OVERFLOW] = TimedSamples(tb, shares)
    return spec, data


def test_a_baseline_above_the_top_bucket_at_the_window_time_of_day_is_not_judged() -> None:
    spec, data = historical_case(saturated_hour=0.5)  # covers the window's time of day
    out = run(spec, data)
    p95 = metric(out, "p95", "Historical")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert "the baseline at the window's time of day at 63 of 63 steps" in p95["message"]
    assert "workload" not in p95["message"]
    assert out.fields["verdict"] == "Inconclusive"
    # The baseline has its samples: it is established, just not below the top bucket.
    assert p95["samples"]["baseline"] == 63
    established = next(c for c in out.conditions if c.type == "BaselineEstablished")
    assert established.status.value == "True", established.message


def test_a_baseline_above_the_top_bucket_at_other_hours_does_not_matter() -> None:
    spec, data = historical_case(saturated_hour=6.0)
    p95 = metric(run(spec, data), "p95", "Historical")
    assert p95["verdict"] == "Pass", p95["message"]


def test_a_stage_quantile_above_the_top_bucket_is_not_reported() -> None:
    spec = make_spec({"mean": {"maxIncrease": "5ms"}}, stage_label="stage")
    t = window_times(spec)
    data = MetricSamples()
    for i, track in enumerate(("candidate", "stable")):
        data.window[(track, "mean")] = series(t, 0.300, 0.001, i)
        data.window[(track, "p95")] = series(t, 0.400, 0.001, 10 + i)
        data.window[(track, OVERFLOW)] = constant(t, 0.001)
    for stage, mean, p95, p99, share in (
        ("decode", 0.05, 0.08, 0.09, 0.0),
        ("inference", 0.25, 1.0, 1.0, 0.03),  # p99 above the top bucket, p95 not
    ):
        data.stages[(stage, "mean")] = constant(t, mean)
        data.stages[(stage, "p95")] = constant(t, p95)
        data.stages[(stage, "p99")] = constant(t, p99)
        data.stages[(stage, OVERFLOW)] = constant(t, share)
    rows = {row["stage"]: row for row in run(spec, data).fields["stages"]}
    assert rows["decode"]["p99"] == pytest.approx(0.09)
    assert "message" not in rows["decode"]
    assert rows["inference"]["p95"] == pytest.approx(1.0)
    assert "p99" not in rows["inference"]
    assert (
        "p99 not reported: above the highest finite bucket (1000.00ms) at 21 of 21 steps"
        in (rows["inference"]["message"])
    )
