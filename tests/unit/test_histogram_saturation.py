"""A quantile above a histogram's highest finite bucket is a floor: judged where a floor
settles the verdict, NoData (HistogramSaturated) elsewhere.

histogram_quantile answers the highest finite bucket's bound when the quantile lies in the
+Inf bucket. Judged as the quantile, a canary at p95 3 s against a stable at 0.85 s, with
buckets up to 1 s, read 1.0 s against 0.75 s and passed `maxIncreasePercent: 50`; a canary
at 20 s against a stable at 2 s read +0 ms and passed `maxIncrease: 50ms`. Refusing every
floor over-corrected: a canary whose floor already breached the limit went from Fail to
Inconclusive, and one saturated baseline step in 77 left a healthy workload Inconclusive at
that time of day for a week. The rule (perfguard.analysis.histogram) and the judge's use of
it, on hand-made samples; the integration test tests/integration/test_histogram_saturation.py
has real Prometheus.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from perfguard.analysis.histogram import floor_ruling, limit_stands, saturated, saturation
from perfguard.analysis.judgement import MetricJudgement, MetricVerdict
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources.perfbaseline_queries import OVERFLOW
from perfguard.status import merge, parse_conditions, to_wire
from tests.unit.specs import made

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


# -- what a floor settles (floor_ruling) ----------------------------------------------

PASS, REGRESSED = MetricVerdict.PASS, MetricVerdict.REGRESSED
IMPROVED, INCONCLUSIVE = MetricVerdict.IMPROVED, MetricVerdict.INCONCLUSIVE


CAND, REF, BOTH = (True, False), (False, True), (True, True)


@pytest.mark.parametrize(
    ("floors", "judgement", "stands"),
    [
        # The candidate's floor: the change read is at most the true one.
        (CAND, made(REGRESSED, ("maxIncrease", REGRESSED)), True),
        (CAND, made(REGRESSED, ("maxIncreasePercent", REGRESSED)), True),
        (CAND, made(PASS, ("maxIncrease", PASS)), False),
        (CAND, made(IMPROVED, ("maxIncrease", PASS)), False),
        (CAND, made(INCONCLUSIVE, ("maxIncreasePercent", INCONCLUSIVE)), False),
        # The reference's floor: the change read is at least the true one.
        (REF, made(PASS, ("maxIncrease", PASS)), True),
        (REF, made(PASS, ("maxIncreasePercent", PASS)), True),
        (REF, made(IMPROVED, ("maxIncrease", PASS)), True),
        (REF, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        (REF, made(REGRESSED, ("maxIncreasePercent", REGRESSED)), False),
        (REF, made(INCONCLUSIVE, ("maxIncrease", INCONCLUSIVE)), False),
        # Both sides: no bound.
        (BOTH, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        (BOTH, made(PASS, ("maxIncreasePercent", PASS)), False),
        # `max` bounds the candidate alone.
        (CAND, made(REGRESSED, ("max", REGRESSED)), True),
        (CAND, made(PASS, ("max", PASS)), False),
        (CAND, made(INCONCLUSIVE, ("max", INCONCLUSIVE)), False),
        (REF, made(PASS, ("max", PASS)), True),
        (REF, made(INCONCLUSIVE, ("max", INCONCLUSIVE)), True),
        (REF, made(REGRESSED, ("max", REGRESSED)), True),
        (BOTH, made(REGRESSED, ("max", REGRESSED)), True),
        (BOTH, made(PASS, ("max", PASS)), False),
        # A decrease limit is never judged on a floor ...
        (CAND, made(PASS, ("maxDecrease", PASS)), False),
        (REF, made(PASS, ("maxDecreasePercent", PASS)), False),
        (REF, made(REGRESSED, ("maxDecrease", REGRESSED)), False),
        (REF, made(PASS, ("maxIncrease", PASS), ("maxDecrease", PASS)), False),
        # ... but a sound breach of another limit is a breach.
        (CAND, made(REGRESSED, ("maxIncrease", REGRESSED), ("maxDecrease", PASS)), True),
        # One sound breach is enough, an unsound one is not.
        (REF, made(REGRESSED, ("maxIncrease", REGRESSED), ("max", REGRESSED)), True),
        (REF, made(REGRESSED, ("maxIncrease", REGRESSED), ("max", PASS)), False),
        # A mixed Pass: every limit must hold.
        (CAND, made(PASS, ("maxIncrease", PASS), ("max", PASS)), False),
        (REF, made(PASS, ("maxIncrease", PASS), ("max", PASS)), True),
    ],
)
def test_what_a_floor_settles(
    floors: tuple[bool, bool], judgement: MetricJudgement, stands: bool
) -> None:
    candidate, reference = floors
    ruling = floor_ruling(judgement, candidate=candidate, reference=reference)
    assert ruling.stands is stands
    if stands and judgement.verdict is REGRESSED:
        assert ruling.on and all(
            limit_stands(rule, REGRESSED, candidate=candidate, reference=reference)
            for rule in ruling.on
        )


def test_no_floor_and_no_limit_result_leave_a_judgement_as_it_is() -> None:
    assert floor_ruling(made(PASS, ("maxIncrease", PASS)), candidate=False, reference=False).stands
    # Too few samples, no interval: not about the figure.
    assert floor_ruling(made(INCONCLUSIVE), candidate=True, reference=True).stands


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


def historical_case(
    saturated_hour: float, level: float = 0.500
) -> tuple[PerfBaselineSpec, MetricSamples]:
    """A workload watched against 3 days of its own history (every 30 s) at 0.5 s, whose p95
    was above the top bucket on earlier days for the hour that ends `saturated_hour` hours
    before the window ends; its p95 now is `level`, inside the buckets."""
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
    data.window[("workload", "p95")] = series(t, level, 0.005, 1)
    data.window[("workload", OVERFLOW)] = constant(t, 0.001)
    values = 0.500 + np.random.default_rng(2).normal(0, 0.005, tb.size)
    shares = np.full(tb.size, 0.001)
    hours_before_end = ((AT.timestamp() - tb) / 3600.0) % 24.0
    hit = (hours_before_end >= saturated_hour - 1) & (hours_before_end < saturated_hour)
    values[hit], shares[hit] = 1.0, 0.2
    data.baseline["p95"] = TimedSamples(tb, values)
    data.baseline[OVERFLOW] = TimedSamples(tb, shares)
    return spec, data


def test_a_baseline_floor_at_the_window_time_of_day_settles_an_improvement() -> None:
    """Every baseline step at the window's time of day read the 1 s bound (a p95 of at least
    1 s); the workload is at 0.5 s now: at least 500 ms faster, whatever the true baseline."""
    spec, data = historical_case(saturated_hour=0.5)  # covers the window's time of day
    out = run(spec, data)
    p95 = metric(out, "p95", "Historical")
    assert (p95["verdict"], p95["reason"]) == ("Improved", "ImprovementSignificant"), p95["message"]
    message = p95["message"]
    assert message.startswith("at most: the baseline's p95 is a floor, so the change is at most")
    assert "the baseline at the window's time of day at 63 of 63 steps" in message
    assert "workload at" not in message
    assert out.fields["summary"]["deltaP95"].startswith("<=-")
    assert not out.fields["summary"]["p95"].startswith(">=")  # the workload's own p95
    assert out.fields["verdict"] == "Pass"
    assert p95["samples"]["baseline"] == 63
    established = next(c for c in out.conditions if c.type == "BaselineEstablished")
    assert established.status.value == "True", established.message


def test_a_baseline_floor_does_not_settle_a_regression() -> None:
    """Half the baseline's steps at the window's time of day read the 1 s bound, the others
    0.5 s; the workload is at 0.95 s: +190 ms read, but the true baseline may be above it."""
    spec, data = historical_case(saturated_hour=1.08, level=0.95)
    out = run(spec, data)
    p95 = metric(out, "p95", "Historical")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert re.search(r"the baseline at the window's time of day at \d+ of 63 steps", p95["message"])
    assert "that settles a Pass, not the Regressed read" in p95["message"]
    assert out.fields["verdict"] == "Inconclusive"
    # Withheld like a stale candidate: the baseline keeps its count and is established.
    assert p95["samples"] == {"candidate": 0, "baseline": 63}
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


# -- a floor that settles the verdict ---------------------------------------------------


def evaluate(
    spec: PerfBaselineSpec, data: MetricSamples, status: dict[str, Any], at: datetime
) -> tuple[dict[str, Any], Outcome]:
    """One evaluation at `at`, merged into the status as the operator merges it."""
    out = judge(spec, plan_tracks(spec, None), windows(spec, at), {"latency": data}, status, at)
    conditions = merge(parse_conditions(status.get("conditions")), out.conditions, generation=1)
    return {**status, **out.fields, "conditions": to_wire(conditions)}, out


def canary_over_stable(
    spec: PerfBaselineSpec,
    at: datetime,
    canary: float,
    canary_share: float,
    stable: float = 0.30,
    seed: int = 1,
) -> MetricSamples:
    """The window ending `at`: a canary p95 at `canary` with `canary_share` of its requests
    above the top bucket (1 s), a stable one at `stable` inside the buckets."""
    w = windows(spec, at)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    data = MetricSamples()
    # Above the top bucket every step reads its bound.
    above = canary_share > 0.05
    data.window[("candidate", "p95")] = (
        constant(t, canary) if above else series(t, canary, 0.002, seed)
    )
    data.window[("stable", "p95")] = series(t, stable, 0.005, seed + 1)
    data.window[("candidate", OVERFLOW)] = constant(t, canary_share)
    data.window[("stable", OVERFLOW)] = constant(t, 0.0)
    return data


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def test_a_canary_floor_that_breaks_the_limit_fails() -> None:
    """The reviewer's floor_regression: the canary's p95 reads the 1 s bound (20 % of its
    requests above it), the stable's is 0.3 s. The canary is at least +233 %, beyond
    `maxIncreasePercent: 50` whatever its true p95: Fail, as before the floors were refused,
    with the RegressionDetected Event; the status says the figures are floors."""
    spec = make_spec({"p95": {"maxIncreasePercent": 50}})
    status: dict[str, Any] = {}
    reasons: list[str] = []
    for at in (AT - timedelta(minutes=4), AT):
        status, out = evaluate(spec, canary_over_stable(spec, at, 1.0, 0.20), status, at)
        reasons += [e.reason for e in out.events]
    p95 = metric(out, "p95")
    assert (p95["verdict"], p95["reason"]) == ("Regressed", "RegressionSignificant"), p95["message"]
    assert status["verdict"] == "Fail", status["message"]
    assert condition(status, "Regressed") == ("True", "RegressionDetected")
    assert "RegressionDetected" in reasons
    message = p95["message"]
    assert message.startswith("at least: the candidate's p95 is a floor, so it and the change are")
    assert "Regressed on maxIncreasePercent holds whatever the true p95" in message
    assert "the candidate at 21 of 21 steps" in message
    assert "at least: the candidate's p95 is a floor" in status["message"]
    assert p95["deltaPercent"] > 200
    assert status["summary"]["p95"].startswith(">=")
    assert status["summary"]["deltaP95"].startswith(">=+")


def test_a_failing_canary_that_gets_slower_stays_failed() -> None:
    """The reviewer's floor_transition: a canary at 0.9 s against 0.3 s fails; from 12:05
    its p95 leaves the buckets (30 % of its requests above 1 s). Evaluated every minute to
    12:20 it stays Fail on the same breach: no Fail -> Inconclusive as the incident gets
    worse, one RegressionDetected and no RegressionCleared."""
    spec = make_spec({"p95": {"maxIncreasePercent": 50}})
    worse = AT + timedelta(minutes=5)
    start = windows(spec, AT).start.timestamp()
    t = np.arange(start, (AT + timedelta(minutes=20)).timestamp() + 1e-6, 30.0)
    later = t >= worse.timestamp()
    data = MetricSamples()
    canary = np.where(later, 1.0, 0.9 + np.random.default_rng(1).normal(0, 0.002, t.size))
    data.window[("candidate", "p95")] = TimedSamples(t, canary)
    data.window[("candidate", OVERFLOW)] = TimedSamples(t, np.where(later, 0.30, 0.01))
    data.window[("stable", "p95")] = series(t, 0.30, 0.005, 2)
    data.window[("stable", OVERFLOW)] = constant(t, 0.0)
    status: dict[str, Any] = {}
    seen: list[tuple[str, str, str]] = []
    events: list[str] = []
    for minute in range(21):
        at = AT + timedelta(minutes=minute)
        window = windows(spec, at)
        now = MetricSamples()
        for key, whole in data.window.items():
            keep = (whole.timestamps >= window.start.timestamp()) & (
                whole.timestamps <= window.end.timestamp()
            )
            now.window[key] = TimedSamples(whole.timestamps[keep], whole.values[keep])
        status, out = evaluate(spec, now, status, at)
        seen.append(
            (status["verdict"], metric(out, "p95")["verdict"], condition(status, "Regressed")[1])
        )
        events += [e.reason for e in out.events]
    assert seen == [("Fail", "Regressed", "RegressionDetected")] * 21, seen
    assert events.count("RegressionDetected") == 1 and "RegressionCleared" not in events, events
    # One breach, since the first window's start; the last windows are all floors.
    assert metric(out, "p95")["breachSince"] == status["metrics"][0]["breachSince"]
    assert metric(out, "p95")["breachSince"] <= "2026-12-01T11:50:00Z"
    assert metric(out, "p95")["message"].startswith("at least: the candidate's p95 is a floor")


def test_one_saturated_baseline_step_leaves_a_healthy_workload_pass() -> None:
    """The reviewer's one_baseline_step: a continuous watch against 7 days of history every
    30 s; the workload's p99 (0.5 s) is as it always was; one baseline step 3 days ago at
    the window's time of day had 2 % of its requests above 1 s. Its floor makes the
    baseline larger, so the change read is at most the true one: the Pass stands."""
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "comparison": "Historical",
            "baseline": {"window": "7d", "minSamples": 50},
            "analysis": ANALYSIS,
            "metrics": [
                {
                    "name": "latency",
                    "type": "Latency",
                    "histogram": "req_seconds",
                    "thresholds": {"p99": {"maxIncrease": "50ms"}},
                    "critical": True,
                }
            ],
        }
    )
    w = windows(spec, AT)
    t = window_times(spec)
    tb = np.arange(
        w.baseline_start.timestamp(),
        w.baseline_end.timestamp() - 1e-6,
        w.baseline_step.total_seconds(),
    )
    rng = np.random.default_rng(7)
    data = MetricSamples()
    data.window[("workload", "p99")] = TimedSamples(t, 0.5 + rng.normal(0, 0.005, t.size))
    data.window[("workload", OVERFLOW)] = constant(t, 0.001)
    values = 0.5 + rng.normal(0, 0.005, tb.size)
    shares = np.full(tb.size, 0.001)
    blip = np.argmin(np.abs(tb - (t[5] - 3 * 86400)))
    values[blip], shares[blip] = 1.0, 0.02
    data.baseline["p99"] = TimedSamples(tb, values)
    data.baseline[OVERFLOW] = TimedSamples(tb, shares)
    out = run(spec, data)
    p99 = metric(out, "p99", "Historical")
    assert (p99["verdict"], p99["reason"]) == ("Pass", "WithinThreshold"), p99["message"]
    assert out.fields["verdict"] == "Pass", out.fields["message"]
    assert p99["message"].startswith("at most: the baseline's p99 is a floor")
    assert "the baseline at the window's time of day at 1 of 77 steps" in p99["message"]


def test_a_stable_floor_at_a_few_steps_leaves_a_healthy_canary_pass() -> None:
    """Concurrent: the stable's p95 read the 1 s bound at 2 of 21 steps; the canary is as
    fast as the stable elsewhere. The change read is at most the true one: Pass stands,
    and the printer column's change says it is a ceiling."""
    spec = make_spec({"p95": {"maxIncrease": "50ms"}})
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = series(t, 0.50, 0.005, 1)
    data.window[("candidate", OVERFLOW)] = constant(t, 0.001)
    stable = series(t, 0.50, 0.005, 2).values
    shares = np.full(t.size, 0.001)
    stable[[6, 13]], shares[[6, 13]] = 1.0, 0.07
    data.window[("stable", "p95")] = TimedSamples(t, stable)
    data.window[("stable", OVERFLOW)] = TimedSamples(t, shares)
    out = run(spec, data)
    p95 = metric(out, "p95")
    assert p95["verdict"] in ("Pass", "Improved"), p95["message"]
    assert p95["message"].startswith("at most: the stable track's p95 is a floor")
    assert "the stable track at 2 of 21 steps (up to 7.0 %" in p95["message"]
    assert out.fields["verdict"] == "Pass"
    assert out.fields["summary"]["deltaP95"].startswith("<=")


def test_a_canary_floor_that_reads_improved_is_not_judged() -> None:
    """The canary reads the 1 s bound, a stable with more buckets 1.3 s: -300 ms read, but
    the canary's true p95 may be anywhere above 1 s."""
    spec = make_spec({"p95": {"maxIncrease": "50ms"}})
    data = canary_over_stable(spec, AT, canary=1.0, canary_share=0.2, stable=1.3)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert "that settles a breach, not the Improved read" in p95["message"]


def test_floors_on_both_sides_at_different_steps_are_not_judged() -> None:
    """The candidate a floor at one step, the stable at another: the change read is at most
    the true one at the first and at least it at the second, so no bound of it."""
    spec = make_spec({"p95": {"maxIncrease": "50ms"}})
    t = window_times(spec)
    data = MetricSamples()
    for i, (track, step) in enumerate((("candidate", 4), ("stable", 12))):
        values = series(t, 0.5, 0.005, i).values
        shares = np.full(t.size, 0.001)
        values[step], shares[step] = 1.0, 0.1
        data.window[(track, "p95")] = TimedSamples(t, values)
        data.window[(track, OVERFLOW)] = TimedSamples(t, shares)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert "the candidate at 1 of 21 steps" in p95["message"]
    assert "the stable track at 1 of 21 steps" in p95["message"]
    assert "with floors on both sides the change read" in p95["message"]


@pytest.mark.parametrize(
    ("bound", "verdict", "reason"),
    [
        ("800ms", "Regressed", "RegressionSignificant"),  # a floor above the bound: sound
        ("2s", "NoData", "HistogramSaturated"),  # a floor below it: the p95 may be above
    ],
)
def test_max_on_a_canary_floor(bound: str, verdict: str, reason: str) -> None:
    spec = make_spec({"p95": {"max": bound}})
    data = canary_over_stable(spec, AT, canary=1.0, canary_share=0.2)
    out = run(spec, data)
    p95 = metric(out, "p95")
    assert (p95["verdict"], p95["reason"]) == (verdict, reason), p95["message"]
    if verdict == "Regressed":
        assert "Regressed on max holds whatever the true p95" in p95["message"]
        assert out.fields["verdict"] == "Fail"
    else:
        assert "that settles a breach, not the Pass read" in p95["message"]
        assert out.fields["verdict"] == "Inconclusive"


def test_max_on_the_candidate_does_not_care_for_the_stable_floor() -> None:
    """`max` bounds the candidate's own p95, inside the buckets here; the stable's floor is
    not part of it."""
    spec = make_spec({"p95": {"max": "2s"}})
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = series(t, 1.4, 0.01, 1)
    data.window[("candidate", OVERFLOW)] = constant(t, 0.001)
    data.window[("stable", "p95")] = constant(t, 1.0)
    data.window[("stable", OVERFLOW)] = constant(t, 0.2)
    p95 = metric(run(spec, data), "p95")
    assert p95["verdict"] == "Pass", p95["message"]
    assert p95["message"].startswith("at most: the stable track's p95 is a floor")


def test_a_decrease_limit_is_never_judged_on_a_floor() -> None:
    spec = make_spec({"p95": {"maxIncrease": "50ms", "maxDecrease": "50ms"}})
    t = window_times(spec)
    data = MetricSamples()
    data.window[("candidate", "p95")] = series(t, 0.50, 0.005, 1)
    data.window[("candidate", OVERFLOW)] = constant(t, 0.001)
    stable = series(t, 0.50, 0.005, 2).values
    shares = np.full(t.size, 0.001)
    stable[6], shares[6] = 1.0, 0.07
    data.window[("stable", "p95")] = TimedSamples(t, stable)
    data.window[("stable", OVERFLOW)] = TimedSamples(t, shares)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert "maxDecrease is never judged on a floor" in p95["message"]
    # A breach the canary's floor settles is a breach, whatever the decrease limit reads.
    data = canary_over_stable(spec, AT, canary=1.0, canary_share=0.2)
    p95 = metric(run(spec, data), "p95")
    assert (p95["verdict"], p95["reason"]) == ("Regressed", "RegressionSignificant"), p95["message"]
    assert "Regressed on maxIncrease holds" in p95["message"]
