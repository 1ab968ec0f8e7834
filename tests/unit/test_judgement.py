"""perfguard.analysis.judgement: every row of the rule, sustain and overall tables."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perfguard.analysis.judgement import (
    MetricJudgement,
    MetricVerdict,
    SustainedJudgement,
    SustainState,
    Threshold,
    Verdict,
    apply_sustain,
    decision_points,
    decompose_stages,
    judge_metric,
    overall_verdict,
    with_sustain,
)
from perfguard.analysis.statistics import DifferenceInterval, difference_interval

MS = 1e-3
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SUSTAIN = timedelta(minutes=3)


def interval(
    point: float, lo: float, hi: float, *, n_c: int = 20, n_b: int = 20
) -> DifferenceInterval:
    return DifferenceInterval(
        point=point,
        lo=lo,
        hi=hi,
        confidence=0.95,
        statistic="mean",
        paired=False,
        method="test",
        n_candidate=n_c,
        n_baseline=n_b,
        block_length=1,
        n_boot=2000,
    )


# ---------------------------------------------------------------------------------------------
# judge_metric: the rule table, row by row

LATENCY = Threshold(max_increase=5 * MS)
BASE = 50 * MS

RULE_ROWS = [
    # (id, interval, threshold, baseline, min_samples, verdict, reason)
    ("1 no candidate samples", interval(0, 0, 0, n_c=0), LATENCY, BASE, 1, "NoData", "NoData"),
    ("1 no baseline samples", interval(0, 0, 0, n_b=0), LATENCY, BASE, 1, "NoData", "NoData"),
    (
        "2 too few samples",
        interval(8 * MS, 6 * MS, 10 * MS, n_c=10),
        LATENCY,
        BASE,
        20,
        "Inconclusive",
        "TooFewSamples",
    ),
    (
        "3 undefined interval",
        interval(8 * MS, math.nan, math.nan),
        LATENCY,
        BASE,
        1,
        "Inconclusive",
        "IntervalUndefined",
    ),
    (
        "4 percent limit on a zero baseline, the interval reaches 0",
        interval(1.0, -0.5, 1.5),
        Threshold(max_increase_percent=10),
        0.0,
        1,
        "Inconclusive",
        "BaselineNearZero",
    ),
    (
        "4 significant increase from a zero baseline breaks any percent",
        interval(1.0, 0.5, 1.5),
        Threshold(max_increase_percent=10),
        0.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "4 significant decrease from a zero baseline breaks any percent",
        interval(-1.0, -1.5, -0.5),
        Threshold(max_decrease_percent=10),
        0.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "4 significant improvement from a zero baseline cannot be told",
        interval(-1.0, -1.5, -0.5),
        Threshold(max_increase_percent=10),
        0.0,
        1,
        "Inconclusive",
        "BaselineNearZero",
    ),
    (
        "5 whole interval beyond the limit",
        interval(8 * MS, 6 * MS, 10 * MS),
        LATENCY,
        BASE,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "6 whole interval within the limit",
        interval(2 * MS, -1 * MS, 4 * MS),
        LATENCY,
        BASE,
        1,
        "Pass",
        "WithinThreshold",
    ),
    (
        "6 upper bound exactly on the limit",
        interval(2 * MS, -1 * MS, 5 * MS),
        LATENCY,
        BASE,
        1,
        "Pass",
        "WithinThreshold",
    ),
    (
        "7 point breaks the limit, interval contains 0",
        interval(8 * MS, -1 * MS, 12 * MS),
        LATENCY,
        BASE,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "5 significant and point breaks the limit, interval reaches below it",
        interval(8 * MS, 3 * MS, 12 * MS),
        LATENCY,
        BASE,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "7 point breaks the limit, lower bound exactly 0",
        interval(8 * MS, 0.0, 12 * MS),
        LATENCY,
        BASE,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "7 point within the limit, interval reaches beyond it",
        interval(3 * MS, 1 * MS, 7 * MS),
        LATENCY,
        BASE,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "5 lower bound exactly on the limit",
        interval(8 * MS, 5 * MS, 10 * MS),
        LATENCY,
        BASE,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "5 percent limit, relative to the baseline",
        interval(15.0, 12.0, 18.0),
        Threshold(max_increase_percent=10),
        100.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "7 percent limit: point beyond it, not significant",
        interval(15.0, -1.0, 18.0),
        Threshold(max_increase_percent=10),
        100.0,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "5 throughput dropped beyond maxDecrease",
        interval(-30.0, -40.0, -25.0),
        Threshold(max_decrease=20),
        200.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "7 throughput drop beyond maxDecrease, not significant",
        interval(-30.0, -40.0, 5.0),
        Threshold(max_decrease=20),
        200.0,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "6 throughput unchanged",
        interval(5.0, -3.0, 12.0),
        Threshold(max_decrease=20),
        200.0,
        1,
        "Pass",
        "WithinThreshold",
    ),
    (
        "5 maxDecreasePercent",
        interval(-30.0, -40.0, -25.0),
        Threshold(max_decrease_percent=10),
        200.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "8 throughput rose significantly",
        interval(10.0, 5.0, 15.0),
        Threshold(max_decrease=20),
        200.0,
        1,
        "Improved",
        "ImprovementSignificant",
    ),
    (
        "any Regressed limit wins over a passing one",
        interval(15.0, 12.0, 18.0),
        Threshold(max_increase=100, max_increase_percent=10),
        100.0,
        1,
        "Regressed",
        "RegressionSignificant",
    ),
    (
        "Inconclusive wins over Pass",
        interval(15.0, -1.0, 18.0),
        Threshold(max_increase=100, max_increase_percent=10),
        100.0,
        1,
        "Inconclusive",
        "IntervalStraddlesThreshold",
    ),
    (
        "two directions: a significant decrease within both limits is not Improved",
        interval(-10.0, -15.0, -5.0),
        Threshold(max_increase=20, max_decrease=20),
        200.0,
        1,
        "Pass",
        "WithinThreshold",
    ),
    (
        "no limit at all",
        interval(1.0, 0.5, 1.5),
        Threshold(),
        10.0,
        1,
        "Inconclusive",
        "NoThreshold",
    ),
]


@pytest.mark.parametrize(
    ("iv", "threshold", "baseline", "min_samples", "verdict", "reason"),
    [row[1:] for row in RULE_ROWS],
    ids=[row[0] for row in RULE_ROWS],
)
def test_rule_table(
    iv: DifferenceInterval,
    threshold: Threshold,
    baseline: float,
    min_samples: int,
    verdict: str,
    reason: str,
) -> None:
    judged = judge_metric(
        iv, baseline, baseline + iv.point, threshold, min_samples=min_samples, unit="s"
    )
    assert (judged.verdict.value, judged.reason) == (verdict, reason), judged.message
    assert judged.breached is (judged.verdict is MetricVerdict.REGRESSED)
    assert judged.message


def test_message_carries_the_numbers() -> None:
    judged = judge_metric(interval(8 * MS, 6 * MS, 10 * MS), BASE, BASE + 8 * MS, LATENCY, unit="s")
    for number in ("0.058s", "0.05s", "+0.008s", "+0.006s", "+0.01s", "0.005s", "+16.0 %", "95 %"):
        assert number in judged.message, judged.message
    assert judged.delta_percent == pytest.approx(16.0)
    assert (judged.ci_low, judged.ci_high) == (6 * MS, 10 * MS)


def test_per_side_minimum_samples_override_the_shared_one() -> None:
    iv = interval(8 * MS, 6 * MS, 10 * MS, n_c=20, n_b=40)
    ok = judge_metric(
        iv, BASE, BASE, LATENCY, min_samples=100, min_candidate_samples=20, min_baseline_samples=40
    )
    assert ok.verdict is MetricVerdict.REGRESSED
    few = judge_metric(iv, BASE, BASE, LATENCY, min_candidate_samples=20, min_baseline_samples=50)
    assert (few.verdict, few.reason) == (MetricVerdict.INCONCLUSIVE, "TooFewSamples")
    assert "baseline 40 (need 50)" in few.message


IMPROVEMENT_ROWS = [
    # (id, interval, minimum reduction, verdict, message fragment)
    ("significant and large enough", interval(-3 * MS, -5 * MS, -1 * MS), 2 * MS, "Improved", ""),
    ("no minimum given", interval(-1 * MS, -2 * MS, -0.5 * MS), None, "Improved", ""),
    (
        "significant but below the minimum",
        interval(-1.5 * MS, -2.5 * MS, -0.5 * MS),
        2 * MS,
        "Pass",
        "below the minimum",
    ),
    ("large but not significant", interval(-3 * MS, -6 * MS, 1 * MS), 2 * MS, "Pass", ""),
]


@pytest.mark.parametrize(
    ("iv", "minimum", "verdict", "fragment"),
    [row[1:] for row in IMPROVEMENT_ROWS],
    ids=[row[0] for row in IMPROVEMENT_ROWS],
)
def test_improvement_rows(
    iv: DifferenceInterval, minimum: float | None, verdict: str, fragment: str
) -> None:
    judged = judge_metric(
        iv, BASE, BASE + iv.point, LATENCY, improvement_min_reduction=minimum, unit="s"
    )
    assert judged.verdict.value == verdict, judged.message
    assert fragment in judged.message
    assert not judged.breached


MAX_ROWS = [
    # (id, candidate value, candidate interval, verdict, reason)
    ("above the bound", 0.02, (0.015, 0.025), "Regressed", "RegressionSignificant"),
    ("below the bound", 0.005, (0.002, 0.008), "Pass", "WithinThreshold"),
    ("straddles the bound", 0.012, (0.008, 0.016), "Inconclusive", "IntervalStraddlesThreshold"),
    ("interval on the bound", 0.008, (0.004, 0.01), "Pass", "WithinThreshold"),
]


@pytest.mark.parametrize(
    ("value", "bounds", "verdict", "reason"),
    [row[1:] for row in MAX_ROWS],
    ids=[row[0] for row in MAX_ROWS],
)
def test_max_uses_the_candidates_own_interval(
    value: float, bounds: tuple[float, float], verdict: str, reason: str
) -> None:
    # The change interval says nothing here: only the candidate's own interval counts.
    judged = judge_metric(
        interval(0.0, -0.001, 0.001),
        value,
        value,
        Threshold(max=0.01),
        candidate_interval=bounds,
    )
    assert (judged.verdict.value, judged.reason) == (verdict, reason), judged.message


def test_max_without_a_candidate_interval_borrows_the_change_interval() -> None:
    judged = judge_metric(interval(0.002, 0.001, 0.003), 0.004, 0.006, Threshold(max=0.01))
    assert judged.verdict is MetricVerdict.PASS
    assert "baseline + change interval [0.005, 0.007]" in judged.message
    above = judge_metric(interval(0.012, 0.011, 0.013), 0.004, 0.016, Threshold(max=0.01))
    assert above.verdict is MetricVerdict.REGRESSED


def test_threshold_rejects_negative_and_infinite_limits() -> None:
    with pytest.raises(ValueError, match="negative"):
        Threshold(max_increase=-1.0)
    with pytest.raises(ValueError, match="finite"):
        Threshold(max=math.inf)


bounded = st.floats(min_value=-100, max_value=100, allow_nan=False)


limit_values = st.floats(min_value=0, max_value=50, allow_nan=False)
thresholds = st.builds(
    Threshold,
    max_increase=st.none() | limit_values,
    max_increase_percent=st.none() | limit_values,
    max_decrease=st.none() | limit_values,
    max_decrease_percent=st.none() | limit_values,
    max=st.none() | st.floats(min_value=0, max_value=200, allow_nan=False),
).filter(lambda t: t.configured)


def _same_cell(
    data: st.DataObject, end: float, points: tuple[float, ...], low: float, high: float
) -> float:
    """Another end between the decision points around ``end`` (and within [low, high]).

    Both ends keep a hair's breadth from every point: the rules compare baseline + end with a
    bound, and the rounding of that sum may put an end one ulp from a point on either side.
    """
    margins = [1e-9 * (1.0 + abs(p)) for p in points]
    assume(all(abs(end - p) > m for p, m in zip(points, margins, strict=True)))
    below = max((p + m for p, m in zip(points, margins, strict=True) if p < end), default=-math.inf)
    above = min((p - m for p, m in zip(points, margins, strict=True) if p > end), default=math.inf)
    return data.draw(
        st.floats(min_value=max(below, low), max_value=min(above, high), allow_nan=False)
    )


@settings(max_examples=400)
@given(data=st.data(), threshold=thresholds, baseline=bounded, a=bounded, b=bounded, c=bounded)
def test_interval_ends_moving_between_decision_points_keep_the_verdict(
    data: st.DataObject, threshold: Threshold, baseline: float, a: float, b: float, c: float
) -> None:
    """decision_points is complete: the bootstrap may stop early when its ends are far from all
    of them (statistics.difference_interval's settle_at), which is only sound if nothing else
    about the ends matters to the verdict."""
    lo, point, hi = sorted((a, b, c))
    points = decision_points(threshold, baseline)
    other_lo = _same_cell(data, lo, points, -100.0, point)
    other_hi = _same_cell(data, hi, points, point, 100.0)
    before = judge_metric(interval(point, lo, hi), baseline, baseline + point, threshold)
    after = judge_metric(interval(point, other_lo, other_hi), baseline, baseline + point, threshold)
    assert (after.verdict, after.reason) == (before.verdict, before.reason)


def test_a_zero_baseline_says_why_a_percent_limit_is_broken() -> None:
    judged = judge_metric(interval(0.2, 0.2, 0.2), 0.0, 0.2, Threshold(max_increase_percent=50))
    assert judged.verdict is MetricVerdict.REGRESSED
    assert "the baseline is 0" in judged.message
    assert "any significant increase breaks maxIncreasePercent 50" in judged.message


def test_near_zero_is_relative_to_the_values_compared() -> None:
    """A Query in seconds per byte lives around 1e-12: +1 % is within maxIncreasePercent 10,
    not "needs a baseline away from 0" (the absolute 1e-12 tolerance said that for ever)."""
    base, change = 8e-13, 8e-15
    judged = judge_metric(
        interval(change, 0.5 * change, 1.5 * change),
        base,
        base + change,
        Threshold(max_increase_percent=10),
    )
    assert (judged.verdict, judged.reason) == (MetricVerdict.PASS, "WithinThreshold")
    assert judged.delta_percent == pytest.approx(1.0)
    # A baseline that is rounding next to the candidate is still 0.
    tiny = judge_metric(
        interval(1e-3, 1e-3, 1e-3), 1e-17, 1e-3 + 1e-17, Threshold(max_increase_percent=10)
    )
    assert "the baseline is 0" in tiny.message
    assert tiny.delta_percent is None


def test_decision_points_are_zero_the_signed_limits_and_the_bound() -> None:
    threshold = Threshold(
        max_increase=5.0, max_decrease_percent=10.0, max=120.0, max_increase_percent=1.0
    )
    assert decision_points(threshold, 100.0) == (-10.0, 0.0, 1.0, 5.0, 20.0)
    # A percent limit against a baseline of 0 allows no change: its verdict turns at 0 only.
    assert decision_points(Threshold(max_increase_percent=5.0), 0.0) == (0.0,)


@given(a=bounded, b=bounded, c=bounded, limit=st.floats(min_value=0, max_value=50))
def test_rows_5_to_7_are_exhaustive_and_consistent(
    a: float, b: float, c: float, limit: float
) -> None:
    lo, point, hi = sorted((a, b, c))
    judged = judge_metric(
        interval(point, lo, hi), 100.0, 100.0 + point, Threshold(max_increase=limit)
    )
    # Beyond the limit by rounding (a relative 1e-9) is not beyond it.
    slack = limit * (1 + 1e-9)
    if judged.verdict is MetricVerdict.REGRESSED:
        # DESIGN's (a) and (b), both implied.
        assert lo > 0.0 and point > slack
    elif judged.verdict in (MetricVerdict.PASS, MetricVerdict.IMPROVED):
        assert hi <= slack
    else:
        assert judged.verdict is MetricVerdict.INCONCLUSIVE
        assert lo <= slack < hi
    # The same facts seen as a decrease give the same verdict.
    mirrored = judge_metric(
        interval(-point, -hi, -lo), 100.0, 100.0 - point, Threshold(max_decrease=limit)
    )
    assert mirrored.verdict is judged.verdict


@pytest.mark.parametrize("baseline", [0.1, 0.2, 0.25])
def test_a_change_of_exactly_the_limit_does_not_break_it_by_rounding(baseline: float) -> None:
    """Means of samples 5 ms apart differ by 5.00000000000003 ms: that is the limit, not
    beyond it (it was Regressed: "increase 5ms breaks maxIncrease 5ms")."""
    rng = np.random.default_rng(0)
    stable = baseline + rng.normal(0, 1 * MS, 21)
    canary = stable + 5 * MS
    # The engine judges in milliseconds.
    change = float(np.mean(canary * 1000) - np.mean(stable * 1000))
    diffs = canary * 1000 - stable * 1000
    iv = interval(change, float(diffs.min()), float(diffs.max()))
    for limit, expected in ((5.0, MetricVerdict.PASS), (4.999, MetricVerdict.REGRESSED)):
        judged = judge_metric(
            iv,
            float(np.mean(stable * 1000)),
            float(np.mean(canary * 1000)),
            Threshold(max_increase=limit),
            unit="ms",
        )
        assert judged.verdict is expected, judged.message
    # The same facts seen as a decrease of exactly the limit.
    down = interval(-change, -float(diffs.max()), -float(diffs.min()))
    mirrored = judge_metric(down, 100.0, 100.0 - change, Threshold(max_decrease=5.0))
    assert mirrored.verdict is MetricVerdict.PASS, mirrored.message


def test_end_to_end_with_simulated_samples() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1 * MS, size=(3, 60))
    baseline = 50 * MS + noise[0]
    slower = 60 * MS + noise[1]
    same = 50 * MS + noise[2]
    for candidate, expected in ((slower, MetricVerdict.REGRESSED), (same, MetricVerdict.PASS)):
        iv = difference_interval(candidate, baseline, rng=np.random.default_rng(1))
        judged = judge_metric(
            iv, float(baseline.mean()), float(candidate.mean()), LATENCY, min_samples=20
        )
        assert judged.verdict is expected, judged.message


def test_a_percent_limit_is_quoted_as_a_percent_and_as_its_value() -> None:
    """Not 'breaks maxIncreasePercent 0.0025s', which reads as a percent of seconds."""
    judged = judge_metric(
        interval(8 * MS, 6 * MS, 10 * MS),
        BASE,
        BASE + 8 * MS,
        Threshold(max_increase_percent=5.0),
        unit="s",
    )
    assert "breaks maxIncreasePercent 5 % (of the baseline: 0.0025s)" in judged.message


def test_a_change_other_than_the_plain_difference_of_the_means_says_so() -> None:
    plain = judge_metric(interval(8 * MS, 6 * MS, 10 * MS), BASE, BASE + 8 * MS, LATENCY, unit="s")
    assert "robust estimate" not in plain.message
    # Spikes clipped: the means shown differ by 20 ms, the change judged is 8 ms.
    clipped = judge_metric(
        interval(8 * MS, 6 * MS, 10 * MS), BASE, BASE + 20 * MS, LATENCY, unit="s"
    )
    assert "change +0.008s (+16.0 %) (robust estimate; the plain means differ by +0.02s)" in (
        clipped.message
    ), clipped.message


# ---------------------------------------------------------------------------------------------
# apply_sustain

SUSTAIN_ROWS = [
    # (id, previous breach_since, breached now, expected breach_since, sustained)
    ("no breach", None, False, None, False),
    ("breach clears and resets", NOW - timedelta(minutes=2), False, None, False),
    ("first breach stamps now", None, True, NOW, False),
    ("breach held 2m of 3m", NOW - timedelta(minutes=2), True, NOW - timedelta(minutes=2), False),
    ("breach held exactly 3m", NOW - SUSTAIN, True, NOW - SUSTAIN, True),
    ("breach held 10m", NOW - timedelta(minutes=10), True, NOW - timedelta(minutes=10), True),
    ("breach stamped in the future", NOW + timedelta(minutes=5), True, NOW, False),
]


@pytest.mark.parametrize(
    ("previous", "breached", "since", "sustained"),
    [row[1:] for row in SUSTAIN_ROWS],
    ids=[row[0] for row in SUSTAIN_ROWS],
)
def test_sustain_table(
    previous: datetime | None, breached: bool, since: datetime | None, sustained: bool
) -> None:
    assert apply_sustain(previous, breached, NOW, SUSTAIN) == SustainState(since, sustained)


def test_zero_sustain_fails_at_once_and_negative_is_rejected() -> None:
    assert apply_sustain(None, True, NOW, timedelta(0)) == SustainState(NOW, True)
    with pytest.raises(ValueError):
        apply_sustain(None, True, NOW, timedelta(seconds=-1))


def test_breach_since_survives_a_restart_because_it_is_passed_in() -> None:
    """Evaluations every minute; the operator restarts between 12:01 and 12:02."""
    status_breach_since: datetime | None = None
    outcomes = []
    for minute in range(4):
        state = apply_sustain(status_breach_since, True, NOW + timedelta(minutes=minute), SUSTAIN)
        # What the operator writes to status and, after a restart, reads back.
        status_breach_since = state.breach_since
        outcomes.append(state.sustained)
    assert outcomes == [False, False, False, True]
    assert status_breach_since == NOW
    # Had the restart lost breachSince, the window would start over.
    assert not apply_sustain(None, True, NOW + timedelta(minutes=3), SUSTAIN).sustained


def test_an_unconfirmed_breach_is_kept_for_sustain_for_then_lapses() -> None:
    began = NOW - timedelta(minutes=2)
    # The first evaluation that neither shows nor refutes the breach stamps it.
    first = apply_sustain(began, False, NOW, SUSTAIN, refuted=False)
    assert first == SustainState(began, False, unconfirmed_since=NOW)
    # Later ones keep that stamp, up to sustainFor after it ...
    edge = NOW + SUSTAIN
    kept = apply_sustain(began, False, edge, SUSTAIN, refuted=False, previous_unconfirmed_since=NOW)
    assert kept == SustainState(began, False, unconfirmed_since=NOW)
    # ... and the breach seen again then is the same breach, confirmed (no stamp).
    seen = apply_sustain(began, True, edge, SUSTAIN, previous_unconfirmed_since=NOW)
    assert seen == SustainState(began, True)
    # One second later it has lapsed: dropped, or a new breach from the data shown now.
    later = edge + timedelta(seconds=1)
    dropped = apply_sustain(
        began, False, later, SUSTAIN, refuted=False, previous_unconfirmed_since=NOW
    )
    assert dropped == SustainState(None, False)
    anew = apply_sustain(
        began,
        True,
        later,
        SUSTAIN,
        held_since=later - timedelta(minutes=1),
        previous_unconfirmed_since=NOW,
    )
    assert anew == SustainState(later - timedelta(minutes=1), False)
    # A refutation clears both, whatever the stamp.
    assert apply_sustain(began, False, NOW, SUSTAIN, previous_unconfirmed_since=NOW) == (
        SustainState(None, False)
    )


# ---------------------------------------------------------------------------------------------
# overall_verdict


def metric(
    verdict: MetricVerdict, *, sustained: bool = True, name: str = "m"
) -> SustainedJudgement:
    judgement = MetricJudgement(
        verdict=verdict,
        reason=verdict.value,
        message=f"{name} is {verdict.value}",
        breached=verdict is MetricVerdict.REGRESSED,
        delta=0.0,
        delta_percent=None,
        ci_low=0.0,
        ci_high=0.0,
        confidence=0.95,
        baseline_value=1.0,
        candidate_value=1.0,
        n_candidate=20,
        n_baseline=20,
    )
    previous = NOW - (SUSTAIN if sustained else timedelta(minutes=1))
    return with_sustain(name, judgement, previous, NOW, SUSTAIN)


P, R, INC, NO, IMP = (
    MetricVerdict.PASS,
    MetricVerdict.REGRESSED,
    MetricVerdict.INCONCLUSIVE,
    MetricVerdict.NO_DATA,
    MetricVerdict.IMPROVED,
)

OVERALL_ROWS = [
    # (id, [(verdict, sustained, critical)], overall verdict, reason)
    ("1 no metrics", [], Verdict.INCONCLUSIVE, "NoMetrics"),
    ("7 critical pass", [(P, True, True)], Verdict.PASS, "WithinThresholds"),
    ("7 critical improved", [(IMP, True, True)], Verdict.PASS, "WithinThresholds"),
    ("2 critical regressed, sustained", [(R, True, True)], Verdict.FAIL, "RegressionDetected"),
    (
        "3 critical regressed, pending",
        [(R, False, True)],
        Verdict.INCONCLUSIVE,
        "BreachNotSustained",
    ),
    ("4 critical no data", [(NO, True, True)], Verdict.INCONCLUSIVE, "NoData"),
    ("5 critical inconclusive", [(INC, True, True)], Verdict.INCONCLUSIVE, "MetricInconclusive"),
    (
        "non-critical regression does not fail",
        [(P, True, True), (R, True, False)],
        Verdict.PASS,
        "WithinThresholds",
    ),
    (
        "non-critical no data does not block",
        [(P, True, True), (NO, True, False)],
        Verdict.PASS,
        "WithinThresholds",
    ),
    ("7 nothing critical, one concluded", [(P, True, False)], Verdict.PASS, "WithinThresholds"),
    (
        "7 nothing critical, a pass among no data",
        [(NO, True, False), (P, True, False)],
        Verdict.PASS,
        "WithinThresholds",
    ),
    ("6 nothing critical, no data", [(NO, True, False)], Verdict.INCONCLUSIVE, "NoData"),
    (
        "6 nothing critical, inconclusive",
        [(INC, True, False)],
        Verdict.INCONCLUSIVE,
        "MetricInconclusive",
    ),
    ("2 before 3", [(R, False, True), (R, True, True)], Verdict.FAIL, "RegressionDetected"),
    (
        "3 before 4",
        [(NO, True, True), (R, False, True)],
        Verdict.INCONCLUSIVE,
        "BreachNotSustained",
    ),
    ("4 before 5", [(INC, True, True), (NO, True, True)], Verdict.INCONCLUSIVE, "NoData"),
    ("2 before 5", [(INC, True, True), (R, True, True)], Verdict.FAIL, "RegressionDetected"),
    (
        "5 blocks a pass",
        [(P, True, True), (INC, True, True)],
        Verdict.INCONCLUSIVE,
        "MetricInconclusive",
    ),
]


@pytest.mark.parametrize(
    ("rows", "verdict", "reason"),
    [row[1:] for row in OVERALL_ROWS],
    ids=[row[0] for row in OVERALL_ROWS],
)
def test_overall_table(
    rows: list[tuple[MetricVerdict, bool, bool]], verdict: Verdict, reason: str
) -> None:
    metrics = [
        (metric(v, sustained=s, name=f"metric{i}"), critical)
        for i, (v, s, critical) in enumerate(rows)
    ]
    result = overall_verdict(metrics)
    assert (result.verdict, result.reason) == (verdict, reason), result.message
    assert result.message


def test_overall_messages_name_non_critical_regressions_and_improvements() -> None:
    result = overall_verdict(
        [
            (metric(IMP, name="latency"), True),
            (metric(R, name="gpu-util"), False),
            (metric(R, sustained=False, name="errors"), False),
        ]
    )
    assert result.verdict is Verdict.PASS
    assert "improved: latency" in result.message
    assert "non-critical regressions (not gating): gpu-util" in result.message
    assert "not yet sustained: errors" in result.message
    failed = overall_verdict([(metric(R, name="latency"), True), (metric(R, name="gpu"), False)])
    assert failed.message.startswith("regressed for at least sustainFor: latency: latency is")
    assert "gpu" in failed.message
    vacuous = overall_verdict([(metric(P), False)])
    assert "no metric is critical" in vacuous.message


def test_the_pass_message_counts_metrics_not_judgements() -> None:
    """A latency judged on p95 and mean (or under comparison Both) is one metric."""

    def of(metric_name: str, statistic: str) -> SustainedJudgement:
        judged = metric(P, name=f"{metric_name} {statistic} (concurrent)")
        return with_sustain(judged.name, judged.judgement, None, NOW, SUSTAIN, metric=metric_name)

    one = overall_verdict([(of("latency", "p95"), True), (of("latency", "mean"), True)])
    assert one.message == "the critical metric is within thresholds"
    two = overall_verdict(
        [(of("latency", "p95"), True), (of("latency", "mean"), True), (of("errors", "ratio"), True)]
    )
    assert two.message == "all 2 critical metrics within thresholds"
    none = overall_verdict([(of("gpu", "value"), False), (of("gpu", "p95"), False)])
    assert none.message == "no metric is critical; 1 non-critical reported"


def test_pending_metric_keeps_regressed_and_breach_since() -> None:
    pending = metric(R, sustained=False)
    assert pending.judgement.verdict is MetricVerdict.REGRESSED
    assert pending.pending and not pending.failed
    assert pending.sustain.breach_since == NOW - timedelta(minutes=1)


# ---------------------------------------------------------------------------------------------
# decompose_stages


def test_stage_shares_and_unattributed_flag() -> None:
    rng = np.random.default_rng(0)
    queue = rng.normal(10 * MS, 1 * MS, 200)
    compute = rng.normal(30 * MS, 2 * MS, 200)
    total = queue + compute + 10 * MS  # 10 of 50 ms unaccounted for: 20 %
    breakdown = decompose_stages({"queue": queue, "compute": compute}, total)
    assert set(breakdown.stages) == {"queue", "compute"}
    stage = breakdown.stages["compute"]
    assert stage.mean == pytest.approx(float(compute.mean()))
    assert stage.p95 == pytest.approx(float(np.percentile(compute, 95)))
    assert stage.p99 == pytest.approx(float(np.percentile(compute, 99)))
    assert stage.share == pytest.approx(float(compute.mean() / total.mean()))
    assert breakdown.attributed_share == pytest.approx(0.8, abs=0.01)
    assert breakdown.unattributed_share == pytest.approx(0.2, abs=0.01)
    assert breakdown.unattributed_flag


@pytest.mark.parametrize(
    ("stage_total", "unattributed", "flag"),
    [(0.95, 0.05, False), (0.90, 0.10, False), (0.85, 0.15, True), (1.2, 0.0, False)],
)
def test_unattributed_share_is_clipped_and_flagged_above_ten_percent(
    stage_total: float, unattributed: float, flag: bool
) -> None:
    breakdown = decompose_stages({"all": [stage_total]}, [1.0])
    assert breakdown.attributed_share == pytest.approx(stage_total)
    assert breakdown.unattributed_share == pytest.approx(unattributed)
    assert breakdown.unattributed_flag is flag


def test_stages_with_missing_data() -> None:
    breakdown = decompose_stages({"empty": [np.nan], "ok": [1.0, np.nan, 3.0]}, [4.0, np.nan])
    assert breakdown.stages["empty"].n == 0
    assert breakdown.stages["empty"].mean is None and breakdown.stages["empty"].share is None
    # The mean is over the stage's own steps; the share only over step 0, where the total
    # has a value too.
    assert breakdown.stages["ok"].mean == 2.0 and breakdown.stages["ok"].share == 0.25
    assert (breakdown.steps, breakdown.total_steps) == (1, 1)
    no_total = decompose_stages({"ok": [1.0]}, [0.0, 0.0])
    assert no_total.stages["ok"].share is None
    assert (no_total.unattributed_share, no_total.unattributed_flag) == (None, False)


def test_a_stage_reported_in_part_of_the_window_is_shared_over_those_steps() -> None:
    # The reviewer's case: `infer` reports only in the slow second half (100 ms of a
    # 140 ms total); in the first half the total is 60 ms. Against the whole window's total
    # it claimed 98 % and, with `pre`, 137 %, and the unattributed share read 0.
    pre = np.full(21, 40 * MS)
    infer = np.r_[np.full(10, np.nan), np.full(11, 100 * MS)]
    total = np.r_[np.full(10, 60 * MS), np.full(11, 140 * MS)]
    breakdown = decompose_stages({"pre": pre, "infer": infer}, total)
    assert breakdown.stages["infer"].share == pytest.approx(100 / 140)
    assert breakdown.stages["pre"].share == pytest.approx(40 / 140)
    assert breakdown.attributed_share == pytest.approx(1.0)
    assert breakdown.stages["infer"].mean == pytest.approx(100 * MS), "own steps"
    assert (breakdown.stages["infer"].missing, breakdown.stages["pre"].missing) == (10, 0)
    assert (breakdown.steps, breakdown.total_steps) == (11, 21)


def test_stage_shares_pair_by_timestamp_and_flag_an_honest_gap() -> None:
    # 30 s steps; `infer` misses its first 10. Where all three report, 25 ms of 100 ms is
    # in no stage: 25 % unattributed, flagged. Unpaired, infer's 60 ms over the whole
    # window's ~76 ms made the shares sum to 98 % and hid it (1.6 %, not flagged).
    t = 1_000_000.0 + 30.0 * np.arange(21)
    total = np.r_[np.full(10, 50 * MS), np.full(11, 100 * MS)]
    breakdown = decompose_stages(
        {"pre": np.full(21, 15 * MS), "infer": np.full(11, 60 * MS)},
        total,
        stage_steps={"pre": t, "infer": t[10:]},
        total_steps=t,
    )
    assert breakdown.attributed_share == pytest.approx(0.75)
    assert breakdown.unattributed_share == pytest.approx(0.25)
    assert breakdown.unattributed_flag
    assert breakdown.stages["infer"].missing == 10
    with pytest.raises(ValueError, match="steps"):
        decompose_stages({"pre": [1.0]}, [2.0], stage_steps={"pre": [0.0]})
