"""PerfBaseline evaluation: samples in, status fields, conditions and Events out.

`evaluate` is what the operator and `perfguard evaluate` both run. `judge` is pure: it
takes the fetched samples and the previous status, so its decisions (significance,
thresholds, sustain, transitions) are tested without any server.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import special

from perfguard.analysis import histogram, infinities, judgement, seasonal, statistics
from perfguard.analysis.level_shift import MIN_SEGMENT, LevelShift, find_level_shift
from perfguard.api.perfbaseline import (
    Comparison,
    MetricSpec,
    MetricType,
    MetricVerdict,
    PerfBaselineSpec,
    ThresholdRule,
    Verdict,
)
from perfguard.api.quantities import format_duration
from perfguard.engine.perfbaseline_fetch import (
    WORKLOAD,
    MetricSamples,
    SameTimeCapacity,
    TimedSamples,
    Windows,
    baseline_history,
    baseline_too_short,
    fetch_all,
    judged_on_workload,
    paired_timed,
    same_time_capacity,
    same_time_slices,
)
from perfguard.engine.tracks import TrackPlan, rate_window
from perfguard.outcome import EventSpec, Outcome
from perfguard.render import format_quantity
from perfguard.sources.perfbaseline_queries import OVERFLOW, QUANTILES, statistics_for
from perfguard.sources.prometheus import FailureKind, PrometheusClient
from perfguard.status import READY, ConditionUpdate, false, parse_conditions, true, unknown
from perfguard.times import format_time, parse_time_or_none

# Fewest candidate samples (or concurrent pairs) for a verdict: below this no interval
# means much, whatever the baseline holds. A 10-minute window at 30 s gives 21.
MIN_CANDIDATE_SAMPLES = 10
LOCATION: statistics.Statistic = "mean"
MIN_SEASONAL_DAYS = 3
SEED = 20_240_601


@dataclass
class Judged:
    """One (metric, statistic, comparison) after significance, thresholds and sustain."""

    metric: MetricSpec
    statistic: str
    comparison: Comparison
    status: dict[str, Any]
    sustained: judgement.SustainedJudgement
    # What `delta` is when a quantile judged was a floor at some step and the judgement
    # stands (see _Floors): ">=" (the candidate's side), "<=" (the reference's), "?" (both:
    # a breach of `max` stands, the change means nothing); None when no side was a floor.
    delta_bound: str | None = None

    @property
    def verdict(self) -> MetricVerdict:
        return self.sustained.judgement.verdict


@dataclass(frozen=True)
class Unit:
    name: str  # the base unit of status numbers, as render.format_quantity knows it
    factor: float  # base unit -> the unit judged in, so messages carry readable numbers
    display: str


UNITS = {
    MetricType.LATENCY: Unit("seconds", 1000.0, "ms"),
    MetricType.THROUGHPUT: Unit("requests/s", 1.0, "/s"),
    MetricType.ERROR_RATE: Unit("ratio", 100.0, "%"),
    MetricType.QUERY: Unit("value", 1.0, ""),
}


def format_value(value: float | None, metric: MetricSpec, *, signed: bool = False) -> str:
    return format_quantity(value, UNITS[metric.type].name, signed=signed)


def describe_rule(rule: ThresholdRule, metric: MetricSpec) -> str:
    parts = []
    if rule.max_increase is not None:
        parts.append(f"maxIncrease {format_value(rule.max_increase, metric)}")
    if rule.max_increase_percent is not None:
        parts.append(f"maxIncreasePercent {rule.max_increase_percent:g}")
    if rule.max_decrease is not None:
        parts.append(f"maxDecrease {format_value(rule.max_decrease, metric)}")
    if rule.max_decrease_percent is not None:
        parts.append(f"maxDecreasePercent {rule.max_decrease_percent:g}")
    if rule.max is not None:
        parts.append(f"max {format_value(rule.max, metric)}")
    return ", ".join(parts)


def _threshold(rule: ThresholdRule, factor: float) -> judgement.Threshold:
    def scaled(value: float | None) -> float | None:
        return None if value is None else value * factor

    return judgement.Threshold(
        max_increase=scaled(rule.max_increase),
        max_increase_percent=rule.max_increase_percent,
        max_decrease=scaled(rule.max_decrease),
        max_decrease_percent=rule.max_decrease_percent,
        max=scaled(rule.max),
    )


# A breach read back from status: (breachSince, breachUnconfirmedSince).
PreviousBreach = tuple[datetime, datetime | None]


def _previous_breaches(
    previous: Mapping[str, Any],
) -> dict[tuple[str, str, str], PreviousBreach]:
    found: dict[tuple[str, str, str], PreviousBreach] = {}
    for item in previous.get("metrics") or []:
        at = parse_time_or_none(item.get("breachSince"))
        if at is None:
            continue
        key = (item.get("name", ""), item.get("statistic", ""), item.get("comparison", ""))
        found[key] = (at, parse_time_or_none(item.get("breachUnconfirmedSince")))
    return found


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def _after_shift(
    verdict_of: judgement.MetricJudgement,
    shift: Mapping[str, Any],
    unit: str,
    factor: float,
    *,
    how: str | None = None,
) -> judgement.MetricJudgement:
    """Say in the message that the window changed level, and how the newer level was
    judged: on the samples since (`how` None), or from the whole window and the shift
    (`how` says why that was enough)."""
    judged = (
        f"judged on the {shift['samplesAfter']} samples since"
        if how is None
        else f"the newer level judged from the whole window and the shift ({how})"
    )
    note = (
        f"the candidate-baseline difference changed level by "
        f"{shift['change'] * factor:+.4g}{unit} at {shift['at']}; {judged}"
    )
    return dataclasses.replace(verdict_of, message=f"{verdict_of.message} ({note})")


def _shift_status(shift: LevelShift, timestamps: np.ndarray, factor: float) -> dict[str, Any]:
    return {
        "at": format_time(_utc(float(timestamps[shift.index]))),
        "change": shift.shift / factor,
        "samplesBefore": shift.before,
        "samplesAfter": shift.after,
        "pValue": shift.p_value,
    }


def shift_margin(shift: LevelShift, confidence: float) -> float:
    """Half-width of the shift's own two-sided interval at `confidence` (Student t with the
    test's degrees of freedom)."""
    return float(special.stdtrit(shift.dof, 0.5 + confidence / 2.0)) * shift.standard_error


@dataclass(frozen=True)
class NewerLevel:
    """The interval of and the verdict on the level a window moved to, judged from the whole
    window and the shift (see newer_level); `onset` when the breach begins at the shift."""

    interval: statistics.DifferenceInterval
    verdict: judgement.MetricJudgement
    how: str
    onset: bool


def _moved(
    steady: statistics.DifferenceInterval,
    steady_judgement: judgement.MetricJudgement,
    change: float,
    margin: float,
    threshold: judgement.Threshold,
    improvement: float | None,
    unit: str,
) -> tuple[statistics.DifferenceInterval, judgement.MetricJudgement]:
    """`steady` moved by `change` and widened on both sides by `margin`, and its verdict."""
    newer = dataclasses.replace(
        steady,
        point=steady.point + change,
        lo=steady.lo + change - margin,
        hi=steady.hi + change + margin,
    )
    verdict = judgement.judge_metric(
        newer,
        baseline_value=steady_judgement.baseline_value,
        candidate_value=steady_judgement.candidate_value + change,
        threshold=threshold,
        improvement_min_reduction=improvement,
        unit=unit,
    )
    return newer, verdict


# How late an evaluation may come after its interval and still count as on time in
# lapse_after: evaluations are an interval apart plus the wait for an evaluation slot and
# the evaluation's own start-up, seconds rather than minutes.
LAPSE_SLACK = timedelta(seconds=30)


def lapse_after(spec: PerfBaselineSpec) -> timedelta:
    """How long a breach may go unconfirmed before it lapses: sustainFor, or the interval
    when that is longer, plus a slack of half an interval, at most LAPSE_SLACK.

    One Inconclusive evaluation leaves a breach unconfirmed for a whole interval; with an
    interval of 5m and sustainFor 3m it lapsed at every such evaluation, so a regression
    read Regressed, Inconclusive, Regressed, ... never failed. The slack: the next
    evaluation comes an interval *plus* the wait for a slot later, so without it one
    Inconclusive evaluation still lapsed the breach when it came 5 ms late. Half an interval
    at most, so two missed evaluations in a row still lapse it."""
    interval = spec.analysis.interval
    return max(spec.analysis.sustain_for, interval) + min(interval / 2, LAPSE_SLACK)


def onset_min_samples(spec: PerfBaselineSpec) -> int:
    """Samples since a shift before it may count as the onset of a regression (see
    newer_level): longer than a burst of two steps seen through the rate window, which
    spreads it over rateWindow / step more samples. 5 with DESIGN's example (30 s steps, a
    1m rate window), 7 at 15 s steps."""
    spread = math.ceil(rate_window(spec) / spec.analysis.step)
    return MIN_SEGMENT + spread


def newer_level(
    steady: statistics.DifferenceInterval,
    steady_judgement: judgement.MetricJudgement,
    shift: LevelShift,
    margin: float,
    threshold: judgement.Threshold,
    improvement: float | None,
    unit: str,
    recent_change: float,
    *,
    onset_after: int,
) -> NewerLevel | None:
    """The newer level's interval and verdict from the whole window, when that is enough to
    conclude; None when only the samples since the shift can tell.

    `steady` is the interval of the window with the shift taken out (the samples since it
    moved back by the shift the test measured, `clipped_shift`): the older level. The newer
    level is that plus the shift, widened on both sides by `margin`, the shift's own
    interval (see shift_margin). Adding the two widths is conservative: the newer level's
    uncertainty is that of the samples since the shift, which the shift's interval already
    covers.

    Three cases conclude:

    * Both levels pass (Pass or Improved): waiting for 10 samples after the shift (the
      split's minimum) would only make a healthy canary Inconclusive, since shifts of a few
      tenths of a millisecond against a 5 ms limit are common (`python -m
      bench.healthy_shifts`).
    * Both levels regressed (each interval excludes 0 and its point breaks the limit): a
      small step inside a regression (the canary 10 ms slower, then 10.8 ms) would
      otherwise hide it for 10 more samples.
    * The onset of a regression: the older level passes, the newer one is Regressed, it
      has lasted `onset_after` samples (longer than a burst, see onset_min_samples), and
      it still holds at the window's end: the older level moved by `recent_change` (the
      median of the last three differences less the mean before the shift) is Regressed
      too. The breach then begins at the shift (`onset`). Without this case a
      regression waited for 10 samples of its own: 270 s at a 30 s step, more than
      sustainFor + 2 x interval with DESIGN's example analysis (`python -m
      bench.ttd_replays --config design`). The end check keeps a burst that has already
      ended (a new level for 150 s, then the old one) from being taken for a level that
      holds: the one change point cannot see a return in its last samples.

    Anything else (a recovery from a regression above all, or an Inconclusive level) is
    judged on the samples since.
    """
    passing = (judgement.MetricVerdict.PASS, judgement.MetricVerdict.IMPROVED)
    regressed = judgement.MetricVerdict.REGRESSED
    change = shift.clipped_shift
    if steady_judgement.verdict not in (*passing, regressed) or not all(
        math.isfinite(v) for v in (steady.lo, steady.hi, change, margin)
    ):
        return None
    newer, verdict = _moved(steady, steady_judgement, change, margin, threshold, improvement, unit)
    if steady_judgement.verdict in passing and verdict.verdict in passing:
        return NewerLevel(newer, verdict, "both levels agree", onset=False)
    if steady_judgement.verdict == regressed and verdict.verdict == regressed:
        return NewerLevel(newer, verdict, "both levels agree", onset=False)
    if steady_judgement.verdict in passing and verdict.verdict == regressed:
        if shift.after < onset_after or not math.isfinite(recent_change):
            return None
        _, at_end = _moved(
            steady, steady_judgement, recent_change, margin, threshold, improvement, unit
        )
        if at_end.verdict == regressed:
            return NewerLevel(newer, verdict, "it still holds at the window's end", onset=True)
    return None


def _judge_one(
    spec: PerfBaselineSpec,
    metric: MetricSpec,
    statistic: str,
    comparison: Comparison,
    candidate: np.ndarray,
    baseline: np.ndarray,
    *,
    paired_samples: bool,
    previous_breach: PreviousBreach | None,
    at: datetime,
    seed: int,
    segments: Sequence[np.ndarray] = (),
    timestamps: np.ndarray | None = None,
    unavailable: tuple[str, str] | None = None,
    floors: _Floors | None = None,
    infinite: _Infinite | None = None,
) -> Judged:
    """Judge one metric statistic; ``timestamps`` (paired samples only) enable the level-shift
    split and let the sustain window start where the judged data begins. ``unavailable``
    (reason, message): the samples were withheld (empty arrays) and why, for a NoData
    verdict that says so.

    ``floors``: the quantile judged is only the histogram's highest finite bound at some
    steps of a side. The judgement stands where the floors cannot have made it
    (histogram.floor_ruling: a breach on the candidate's floors, a Pass on the reference's),
    its message saying which side was a floor and what the figure is then (at least, at
    most); otherwise the statistic is judged again with its samples withheld, NoData
    `HistogramSaturated`, as a stale candidate is (a Historical baseline keeps its count).

    ``infinite``: some steps of a side were ±Inf, which the finite ``candidate`` and
    ``baseline`` leave out. A Regressed they can only make worse stands, and so does what
    `max` alone decides with the reference's infinities only (an Improved as a Pass), its
    message naming them (infinities.infinity_ruling); anything else is withheld the same way,
    NoData `NonFiniteValues`."""

    def withheld(why: tuple[str, str]) -> Judged:
        """Judged again with the samples withheld (NoData `why`), as a stale candidate is: a
        Historical baseline keeps its count, so BaselineEstablished does not read "0
        baseline samples" beside a full baseline."""
        return _judge_one(
            spec,
            metric,
            statistic,
            comparison,
            candidate[:0],
            baseline[:0] if paired_samples else baseline,
            paired_samples=paired_samples,
            previous_breach=previous_breach,
            at=at,
            seed=seed,
            segments=segments,
            unavailable=why,
        )

    rule = getattr(metric.thresholds, statistic)
    assert isinstance(rule, ThresholdRule)
    unit_of = UNITS[metric.type]
    factor, unit = unit_of.factor, unit_of.display
    cand, base = candidate * factor, baseline * factor
    improvement = None
    if (
        spec.improvement is not None
        and spec.improvement.min_p95_reduction is not None
        and metric.type == MetricType.LATENCY
        and statistic == "p95"
    ):
        improvement = spec.improvement.min_p95_reduction * factor
    threshold = _threshold(rule, factor)

    # Only latency spikes are clipped before the interval (seasonal.winsorize_*): a slow
    # minute is noise by design there. Elsewhere the extremes are the regression itself:
    # errors in bursts (5 % of requests in 3 of 21 steps, clipped to +0.01 points), a
    # workload serving nothing for 3 minutes (clipped to -1.6/s against a 10/s limit), and a
    # Query means what its author says, so its plain mean is judged.
    clip_sds = seasonal.WINSOR_ROBUST_SDS if metric.type == MetricType.LATENCY else math.inf

    def assess(
        cand: np.ndarray, base: np.ndarray, settle_also: Sequence[float] = ()
    ) -> tuple[statistics.DifferenceInterval, judgement.MetricJudgement]:
        base_value = float(np.mean(base)) if base.size else float("nan")
        cand_value = float(np.mean(cand)) if cand.size else float("nan")
        if len(segments) >= MIN_SEASONAL_DAYS and cand.size >= 2:
            # Days are the unit of replication for a historical comparison (see
            # seasonal_difference_interval); within a day the block bootstrap below is right.
            interval = seasonal.seasonal_difference_interval(
                cand,
                [np.asarray(seg) * factor for seg in segments],
                confidence=spec.analysis.confidence,
            )
        else:
            robust = seasonal.winsorize_difference if paired_samples else seasonal.winsorize_each
            interval = statistics.difference_interval(
                *robust(cand, base, k=clip_sds),
                statistic=LOCATION,
                confidence=spec.analysis.confidence,
                paired=paired_samples,
                rng=np.random.default_rng(seed),
                settle_at=(*judgement.decision_points(threshold, base_value), *settle_also),
            )
        # `max` bounds the candidate's own level, so it is judged on the candidate's own
        # interval at the spec's confidence. The change interval moved by the baseline's
        # mean is no substitute: a paired difference cancels the load both tracks share,
        # and with it the uncertainty of the level itself (a canary at 246 ms whose own
        # interval reached past `max: 250ms` passed at confidence 0.96 on [245.7, 246.1]).
        candidate_interval = None
        if rule.max is not None and cand.size >= 2:
            candidate_interval = statistics.mean_interval(cand, spec.analysis.confidence)
        return interval, judgement.judge_metric(
            interval,
            baseline_value=base_value,
            candidate_value=cand_value,
            threshold=threshold,
            min_candidate_samples=MIN_CANDIDATE_SAMPLES,
            # Concurrent pairs are as many as the candidate window holds; minSamples is
            # about the historical baseline.
            min_baseline_samples=(
                MIN_CANDIDATE_SAMPLES if paired_samples else spec.baseline.min_samples
            ),
            improvement_min_reduction=improvement,
            candidate_interval=candidate_interval,
            unit=unit,
        )

    held_since: datetime | None = None
    shift_status: dict[str, Any] | None = None
    newer: NewerLevel | None = None
    if paired_samples and timestamps is not None and timestamps.size == cand.size and cand.size:
        # A window that holds two levels is judged on the newer one: the state the canary is
        # in now, and since when (see perfguard.analysis.level_shift); from the whole window
        # when that is enough to conclude (see newer_level).
        shift = find_level_shift(cand - base)
        first = 0
        if shift is not None and rule.max is None and shift.after < MIN_CANDIDATE_SAMPLES:
            # Too few samples since the shift to judge them alone: from the whole window,
            # if that is enough to conclude (see newer_level).
            margin = shift_margin(shift, spec.analysis.confidence)
            moved_back = cand.copy()
            moved_back[shift.index :] -= shift.clipped_shift
            difference = cand - base
            recent_change = float(
                np.median(difference[-MIN_SEGMENT:]) - np.mean(difference[: shift.index])
            )
            onset_after = onset_min_samples(spec)
            # The newer level's verdict (and the end check's, when an onset may be taken)
            # changes where the steady interval's ends cross the decision points moved back
            # by the change and its margin.
            changes = [shift.clipped_shift]
            if shift.after >= onset_after:
                changes.append(recent_change)
            moved_points = [
                point - change + sign * margin
                for point in judgement.decision_points(threshold, float(np.mean(base)))
                for change in changes
                for sign in (-1.0, 1.0)
            ]
            steady = assess(moved_back, base, [p for p in moved_points if math.isfinite(p)])
            newer = newer_level(
                *steady,
                shift,
                margin,
                threshold,
                improvement,
                unit,
                recent_change,
                onset_after=onset_after,
            )
        if shift is not None:
            shift_status = _shift_status(shift, timestamps, factor)
            if newer is None or newer.onset:
                first = shift.index
            if newer is None:
                cand, base = cand[first:], base[first:]
        held_since = _utc(float(timestamps[first]))
    base_value = float(np.mean(base)) if base.size else float("nan")
    cand_value = float(np.mean(cand)) if cand.size else float("nan")
    if newer is not None:
        interval, verdict_of = newer.interval, newer.verdict
        cand_value = verdict_of.candidate_value  # the newer level
    else:
        interval, verdict_of = assess(cand, base)
    label = f"{metric.name} {statistic} ({comparison.value.lower()})"
    if shift_status is not None:
        verdict_of = _after_shift(
            verdict_of,
            shift_status,
            unit_of.display,
            factor,
            how=None if newer is None else newer.how,
        )
    if infinite is not None and unavailable is None:
        ruling_inf = infinities.infinity_ruling(
            verdict_of,
            candidate=None if infinite.candidate is None else infinite.candidate.found,
            reference=None if infinite.reference is None else infinite.reference.found,
        )
        if not ruling_inf.stands:
            return withheld(_infinities_refused(infinite, verdict_of))
        verdict_of = dataclasses.replace(
            verdict_of,
            message=f"{_infinities_note(infinite, ruling_inf, verdict_of)}: {verdict_of.message}",
        )
        if ruling_inf.as_pass:
            verdict_of = dataclasses.replace(
                verdict_of,
                verdict=MetricVerdict.PASS,
                reason="WithinThreshold",
                message=f"{verdict_of.message}; {_improvement_dropped(infinite)}",
            )
    delta_bound: str | None = None
    if floors is not None and unavailable is None:
        ruling = histogram.floor_ruling(
            verdict_of,
            candidate=floors.candidate is not None,
            reference=floors.reference is not None,
        )
        if not ruling.stands:
            return withheld(_floors_refused(floors, verdict_of, interval.point / factor))
        note, delta_bound = _floors_note(floors, ruling, verdict_of, interval.point / factor)
        verdict_of = dataclasses.replace(verdict_of, message=f"{note}: {verdict_of.message}")
    if unavailable is not None:
        verdict_of = dataclasses.replace(verdict_of, reason=unavailable[0], message=unavailable[1])
    breach_before, unconfirmed_before = previous_breach or (None, None)
    sustained = judgement.with_sustain(
        label,
        verdict_of,
        breach_before,
        at,
        spec.analysis.sustain_for,
        held_since=held_since,
        previous_unconfirmed_since=unconfirmed_before,
        metric=metric.name,
        lapse_after=lapse_after(spec),
    )
    status: dict[str, Any] = {
        "name": metric.name,
        "statistic": statistic,
        "comparison": comparison.value,
        "unit": unit_of.name,
        "threshold": describe_rule(rule, metric),
        "critical": metric.critical,
        "samples": {"candidate": int(cand.size), "baseline": int(base.size)},
        "verdict": verdict_of.verdict.value,
        "reason": verdict_of.reason,
        "message": verdict_of.message,
    }

    def finite(value: float) -> float | None:
        return value / factor if np.isfinite(value) else None

    for key, value in (
        ("baseline", base_value),
        ("current", cand_value),
        ("delta", interval.point),
    ):
        number = finite(value)
        if number is not None:
            status[key] = number
    lo, hi = finite(interval.lo), finite(interval.hi)
    if lo is not None and hi is not None:
        status["ci95"] = [lo, hi]
    percent = statistics.relative_change(interval.point, base_value)
    if percent is not None:
        status["deltaPercent"] = percent
    if cand.size >= 2 and base.size >= 2:
        rank = statistics.mann_whitney_hodges_lehmann(
            cand, base, confidence=spec.analysis.confidence
        )
        status["secondOpinion"] = {
            "method": "MannWhitneyU/HodgesLehmann",
            "pValue": rank.p_value,
            "shift": rank.shift / factor,
            "ci95": [rank.shift_ci_low / factor, rank.shift_ci_high / factor],
        }
    if shift_status is not None:
        status["levelShift"] = shift_status
    breach_since = sustained.sustain.breach_since
    if breach_since is not None:
        status["breachSince"] = format_time(breach_since)
    unconfirmed = sustained.sustain.unconfirmed_since
    if unconfirmed is not None and breach_since is not None:
        status["breachUnconfirmedSince"] = format_time(unconfirmed)
        status["message"] = (
            f"{status['message']} (breach since {format_time(breach_since)} not confirmed "
            f"since {format_time(unconfirmed)}; dropped if still unconfirmed after "
            f"{format_duration(lapse_after(spec))})"
        )
    if sustained.pending and breach_since is not None:
        status["message"] = (
            f"{status['message']} (breach held {format_duration(at - breach_since)} of "
            f"{format_duration(spec.analysis.sustain_for)})"
        )
    return Judged(metric, statistic, comparison, status, sustained, delta_bound)


def _no_series(
    data: MetricSamples, metric: MetricSpec, statistic: str, tracks: Sequence[str]
) -> tuple[str, str] | None:
    """NoData's message when a query matched no series at all, which a misspelt metric name
    or label gives as surely as an idle service: say so, instead of "no samples"."""
    absent = [
        name
        for name in tracks
        if (
            statistic not in data.baseline
            if name == "baseline"
            else (name, statistic) not in data.window
        )
    ]
    if not absent:
        return None
    what = metric.histogram or metric.counter or "the query"
    return (
        "NoData",
        f"no samples: the query for {statistic} returned no series for {' and '.join(absent)}; "
        f"check that {what} exists with the selector's labels, and that those pods run",
    )


def _no_same_time(
    spec: PerfBaselineSpec, w: Windows, baseline: TimedSamples, whole_workload: bool
) -> tuple[str, str]:
    """(reason, message) when the baseline has samples but none at the window's time of day.

    With less than a day of them (a stable pod-template hash rolled out 20 hours ago, or a
    baseline.window under 1d) no earlier day holds that time of day: `BaselineTooShort`.
    Comparing with the whole series instead read the daily cycle as a change: a canary
    15 ms slower at the trough passed as 20 ms faster, a healthy one failed at the peak."""
    track = "the workload" if whole_workload else "the stable track"
    history = baseline_history(baseline, w.start) or timedelta(0)
    if baseline_too_short(baseline, w.start, w.end):
        held = format_duration(timedelta(minutes=max(1, round(history.total_seconds() / 60))))
        fix = ""
        if spec.baseline.window < timedelta(days=1):
            fix = (
                f"; baseline.window is {format_duration(spec.baseline.window)}, so it never "
                "will: set it to at least 1d"
            )
        elif spec.workload_ref is not None and not whole_workload:
            fix = (
                "; with workloadRef the stable track is the stable pod-template hash, new at "
                "every release: with releases less than a day apart, `comparison: Concurrent` "
                "judges the canary against the stable pods alone"
            )
        return (
            "BaselineTooShort",
            f"not judged: {track} has {held} of history before the window; a historical "
            "comparison needs at least a day of it, to compare the window with the same time "
            f"of day on an earlier day (the daily load cycle would read as a change){fix}",
        )
    start, end = w.start.strftime("%H:%M"), w.end.strftime("%H:%M")
    return (
        "NoData",
        f"no samples: {track} has no baseline samples at the window's time of day "
        f"({start}-{end} UTC) on any earlier day of the baseline",
    )


def _too_few_note(spec: PerfBaselineSpec, got: int, capacity: SameTimeCapacity) -> str:
    """What a Historical comparison short of baseline.minSamples lacks, and, when no baseline
    can ever hold that many at the window's time of day, the fix."""
    need = spec.baseline.min_samples
    note = f"{got} baseline samples at the window's time of day, need baseline.minSamples {need}"
    if capacity.samples < need:
        note += (
            f"; this spec never reaches it: a full {format_duration(spec.baseline.window)} "
            f"baseline holds at most {capacity.samples} at the window's time of day "
            f"({capacity.days} earlier days of the {format_duration(spec.analysis.window)} "
            f"window at the baseline's {format_duration(capacity.step)} step; a longer "
            "baseline.window coarsens the step as much): lengthen analysis.window, or lower "
            f"baseline.minSamples to {capacity.samples} or less"
        )
    return note


def _explain_too_few(spec: PerfBaselineSpec, j: Judged, capacity: SameTimeCapacity) -> None:
    """Say, in a Historical TooFewSamples message, that the baseline samples counted are those
    at the window's time of day, and whether minSamples can ever be reached."""
    got = int(j.status["samples"]["baseline"])
    if j.sustained.judgement.reason != "TooFewSamples" or got >= spec.baseline.min_samples:
        return
    before = j.sustained.judgement.message
    message = f"{before} ({_too_few_note(spec, got, capacity)})"
    j.sustained = dataclasses.replace(
        j.sustained, judgement=dataclasses.replace(j.sustained.judgement, message=message)
    )
    j.status["message"] = str(j.status["message"]).replace(before, message, 1)


def _pending_gating(previous: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    """The breaches `previous` shows as pending on a critical metric while the verdict is not
    Fail: each one's confirmation after breachSince + sustainFor would have made the verdict
    Fail, which is news and written at once (engine/status_news.py)."""
    if previous.get("verdict") == Verdict.FAIL.value:
        return set()
    return {
        (item.get("name", ""), item.get("statistic", ""), item.get("comparison", ""))
        for item in previous.get("metrics") or []
        if isinstance(item, Mapping)
        and item.get("critical") is True
        and item.get("verdict") == MetricVerdict.REGRESSED.value
        and item.get("breachSince")
        and not item.get("breachUnconfirmedSince")
    }


def _missed_evaluations(
    breaches: Mapping[tuple[str, str, str], PreviousBreach],
    spec: PerfBaselineSpec,
    previous: Mapping[str, Any],
    at: datetime,
    status_refresh: timedelta,
) -> dict[tuple[str, str, str], PreviousBreach]:
    """The breaches with the evaluations that did not happen counted as unconfirmed time.

    An operator that was down (or a resource that was not evaluated) confirmed nothing:
    the breach is unconfirmed from when the next evaluation was due, the last one
    (`lastEvaluationTime`, up to `status_refresh` older than it really was) plus an
    interval, as an Inconclusive evaluation then would have stamped it. Without this a
    breach from before a 30-minute stop and a new regression after it added up to a
    sustained one.

    A breach `previous` shows pending on a critical metric (not yet sustained, the verdict
    not Fail) is bounded sooner. Its stamps and the verdict are news, written at once, so an
    evaluation after `lastEvaluationTime` that was not written changed none of them: it
    read the breach Regressed and still pending, which it cannot be from breachSince +
    sustainFor on (it would have been a Fail, written). So the last evaluation that can
    have confirmed it came before max(lastEvaluationTime, breachSince + sustainFor), and
    the breach is unconfirmed from an interval after that. Without this a statusRefresh of
    5m hid 5 minutes of a stop: a breach pending at 11:57, the operator down from 11:57:30
    to 12:06:30, and a new regression from 12:04:30 failed at 12:07 on the breach "since
    11:55" (sustainFor 5m), though no evaluation after 12:00 can have confirmed it."""
    last = parse_time_or_none(previous.get("lastEvaluationTime"))
    if last is None or not breaches:
        return dict(breaches)
    interval = spec.analysis.interval
    due = last + interval + status_refresh
    pending = _pending_gating(previous)
    adjusted: dict[tuple[str, str, str], PreviousBreach] = {}
    for key, (since, unconfirmed) in breaches.items():
        bound = due
        if unconfirmed is None and key in pending:
            bound = min(due, max(last, since + spec.analysis.sustain_for) + interval)
        if at > bound:
            unconfirmed = bound if unconfirmed is None else min(unconfirmed, bound)
        adjusted[key] = (since, unconfirmed)
    return adjusted


def _new_candidate(previous: Mapping[str, Any], identity: str) -> bool:
    """Whether the previous status judged another candidate (not: no previous status)."""
    before = previous.get("candidate")
    if not isinstance(before, Mapping) or not before.get("identity"):
        return False
    return str(before.get("identity")) != identity


def _gone(
    current: TimedSamples,
    at: datetime,
    allowance: timedelta,
    track: str,
    *,
    reason: str = "CurrentDataStale",
    then: str = "",
) -> tuple[str, str] | None:
    """(reason, message) when a track's newest sample is older than `allowance`: a
    candidate that stopped reporting (its pods gone, or no traffic) would otherwise be
    judged on its last minutes as if they were now. The stable track of a Concurrent
    comparison is checked too (StableDataStale): pairs need both tracks, so a silent stable
    (no traffic at an Argo setWeight of 100) left the verdict on pairs from before. A ±Inf
    value is a sample: a track reporting +Inf is reporting (NonFiniteValues says what)."""
    present = current.present()
    if len(present) == 0:
        return None  # NoData says it already
    age = at.timestamp() - float(present.timestamps.max())
    if age <= allowance.total_seconds():
        return None
    return (
        reason,
        f"the {track} track's newest sample is {format_duration(timedelta(seconds=round(age)))} "
        f"old (allowed {format_duration(allowance)}): it stopped reporting, or had no traffic "
        f"since{then}",
    )


def _stable_silent(
    stable: TimedSamples, current: TimedSamples, present: bool, spec: PerfBaselineSpec
) -> tuple[str, str] | None:
    """StableDataStale when the stable series is there but holds no value in the whole
    window while the candidate has some: at an Argo setWeight of 100 the stable gets no
    traffic and its quantiles are NaN. `_gone` cannot date its last sample once the window
    has moved past it, and the comparison read as a generic "no samples: candidate 0"."""
    if not present or len(stable.present()) or not len(current.present()):
        return None
    return (
        "StableDataStale",
        f"the stable track has no sample in the whole window "
        f"({format_duration(spec.analysis.window)}): its series is there without a value, "
        f"so it stopped reporting or had no traffic; the candidate's "
        f"{len(current.present())} samples have no stable samples to be paired with",
    )


def _unpaired(current: TimedSamples, stable: TimedSamples) -> tuple[str, str] | None:
    """NoData's message when both tracks have samples (values, ±Inf included) but never at
    the same step."""
    n_current, n_stable = len(current.present()), len(stable.present())
    if not n_current or not n_stable:
        return None
    return (
        "NoData",
        f"no pairs: candidate {n_current} and stable {n_stable} samples, but none at the "
        "same step; pairs need both tracks at one timestamp",
    )


def _saturation(
    data: MetricSamples,
    track: str | None,
    values: TimedSamples,
    quantile: float,
    *,
    steps: np.ndarray | None = None,
    same_time: tuple[datetime, datetime] | None = None,
) -> histogram.Saturation | None:
    """Where `values`, a quantile's series of `track` (None: the historical baseline), is
    only the histogram's highest finite bound: at the steps where the track's share above
    that bucket is too large for `quantile`, limited to `steps` (the judged pairs) or to
    the baseline's samples at the window's time of day (`same_time`: the window's start
    and end)."""
    overflow = data.baseline.get(OVERFLOW) if track is None else data.window.get((track, OVERFLOW))
    return _floors(overflow, values, quantile, steps=steps, same_time=same_time)


def _floors(
    overflow: TimedSamples | None,
    values: TimedSamples,
    quantile: float,
    *,
    steps: np.ndarray | None = None,
    same_time: tuple[datetime, datetime] | None = None,
) -> histogram.Saturation | None:
    """_saturation with the share above the highest finite bucket given (`overflow`)."""
    if overflow is None:
        return None
    times, shares, read = paired_timed(overflow, values)
    if steps is not None:
        keep = np.isin(times, steps)
        times, shares, read = times[keep], shares[keep], read[keep]
    if same_time is not None:
        shares_slices = same_time_slices(TimedSamples(times, shares), *same_time)
        read_slices = same_time_slices(TimedSamples(times, read), *same_time)
        shares = np.concatenate(shares_slices) if shares_slices else np.empty(0)
        read = np.concatenate(read_slices) if read_slices else np.empty(0)
    return histogram.saturation(shares, read, quantile)


@dataclass(frozen=True)
class _Side:
    """One side of a comparison whose quantile is a floor at some judged steps."""

    who: str  # "the candidate", "the stable track", "the baseline at the window's time of day"
    owner: str  # whose figure it is: "candidate", "stable track", "baseline"
    saturation: histogram.Saturation


@dataclass(frozen=True)
class _Floors:
    """Where a quantile statistic judged is only the highest finite bucket's bound: the
    candidate's (or workload's) side, the reference's (stable track or baseline), or both."""

    metric: MetricSpec
    statistic: str
    quantile: float
    candidate: _Side | None
    reference: _Side | None

    @property
    def sides(self) -> list[_Side]:
        return [side for side in (self.candidate, self.reference) if side is not None]

    def where(self) -> str:
        """Which sides, the bucket, how many steps, the share above it."""
        bound = max(side.saturation.bound for side in self.sides)
        at = " and ".join(
            f"{side.who} at {side.saturation.steps} of {side.saturation.of} steps (up to "
            f"{100 * side.saturation.worst_share:.1f} % of the requests above it)"
            for side in self.sides
        )
        return (
            f"above the highest finite bucket of {self.metric.histogram} (le={bound:g}, "
            f"{format_value(bound, self.metric)}) for {at}, where a {self.statistic} allows "
            f"at most {100 * (1 - self.quantile):.3g} % above it"
        )

    def readable_bound(self) -> str:
        return format_value(max(side.saturation.bound for side in self.sides), self.metric)


def _floor_sides(
    metric: MetricSpec,
    statistic: str,
    quantile: float,
    candidate: tuple[str, str, histogram.Saturation | None],
    reference: tuple[str, str, histogram.Saturation | None],
) -> _Floors | None:
    """The sides (who, owner, saturation at the judged steps) whose quantile is a floor at
    some judged step; None when neither is."""

    def side(found: tuple[str, str, histogram.Saturation | None]) -> _Side | None:
        who, owner, saturation = found
        return None if saturation is None else _Side(who, owner, saturation)

    floors = _Floors(metric, statistic, quantile, side(candidate), side(reference))
    return floors if floors.sides else None


def _floors_refused(
    floors: _Floors, made: judgement.MetricJudgement, delta: float
) -> tuple[str, str]:
    """NoData's (reason, message) for a judgement the floors may have made (see
    histogram.floor_ruling): judged as the quantile, a canary whose p95 went from 0.85 s
    to 3 s, with buckets up to 1 s, read +33 % and passed `maxIncreasePercent: 50`, and one
    at 20 s against a stable at 2 s read +0 ms."""
    statistic = floors.statistic
    change = format_value(delta, floors.metric, signed=True)
    unsettled = [
        check.rule
        for check in made.checks
        if not histogram.limit_stands(
            check.rule,
            check.verdict,
            candidate=floors.candidate is not None,
            reference=floors.reference is not None,
        )
    ]
    decrease = [rule for rule in unsettled if rule not in histogram.INCREASE_LIMITS | {"max"}]
    if floors.candidate is not None and floors.reference is not None:
        why = f"with floors on both sides the change read ({change}) is no bound of the true one"
    elif decrease:
        why = f"{' and '.join(decrease)} is never judged on a floor"
    elif floors.candidate is not None:
        why = (
            f"the {floors.candidate.owner}'s {statistic} is at least what it reads, so the "
            f"change is at least the {change} read: that settles a breach, not the "
            f"{made.verdict.value} read"
        )
    else:
        assert floors.reference is not None
        why = (
            f"the {floors.reference.owner}'s {statistic} is at least what it reads, so the "
            f"change is at most the {change} read: that settles a Pass, not the "
            f"{made.verdict.value} read"
        )
    return (
        "HistogramSaturated",
        f"not judged: the {statistic} is {floors.where()}; histogram_quantile then answers "
        f"the bucket's bound, a floor under the {statistic}, and {why}; add buckets above "
        f"{floors.readable_bound()}",
    )


def _floors_note(
    floors: _Floors,
    ruling: histogram.FloorRuling,
    made: judgement.MetricJudgement,
    delta: float,
) -> tuple[str, str]:
    """(the note that starts the message, the bound `delta` is) for a judgement that stands
    though a side's quantile was a floor: the status says what the figures are."""
    statistic = floors.statistic
    change = ""  # none without an interval (too few samples, say)
    if math.isfinite(delta):
        change = f", {format_value(delta, floors.metric, signed=True)}"
        if made.delta_percent is not None:
            change += f" ({made.delta_percent:+.1f} %)"
    if floors.candidate is not None and floors.reference is not None:
        lead = (
            f"at least: the {floors.candidate.owner}'s and the {floors.reference.owner}'s "
            f"{statistic} are floors, so the {floors.candidate.owner}'s is at least what it "
            "reads and the change read means nothing"
        )
        bound = "?"
    elif floors.candidate is not None:
        lead = (
            f"at least: the {floors.candidate.owner}'s {statistic} is a floor, so it and the "
            f"change are at least what they read{change}"
        )
        bound = ">="
    else:
        assert floors.reference is not None
        lead = (
            f"at most: the {floors.reference.owner}'s {statistic} is a floor, so the change "
            f"is at most what it reads{change}"
        )
        bound = "<="
    holds = (
        f"; {made.verdict.value} on {' and '.join(ruling.on)} holds whatever the true {statistic}"
        if ruling.on
        else ""
    )
    return f"{lead} (the {statistic} read is {floors.where()}){holds}", bound


@dataclass(frozen=True)
class _InfiniteSide:
    """One side of a comparison with ±Inf values at some of its steps."""

    who: str  # "the candidate", "the stable track", "the baseline at the window's time of day"
    owner: str  # whose figure it is: "candidate", "stable track", "baseline"
    found: infinities.Infinities


@dataclass(frozen=True)
class _Infinite:
    """Where a statistic judged had ±Inf values, which its finite samples leave out: the
    candidate's (or workload's) window, the reference's (the stable track at the paired
    steps, or the baseline at the window's time of day), or both."""

    candidate: _InfiniteSide | None
    reference: _InfiniteSide | None
    current: str  # the candidate's side's owner, with or without infinities: "candidate"

    @property
    def sides(self) -> list[_InfiniteSide]:
        return [side for side in (self.candidate, self.reference) if side is not None]

    def where(self) -> str:
        """Which sides, which infinities, at how many of how many steps, the likely cause."""
        at = " and ".join(f"{side.who} read {side.found.describe()}" for side in self.sides)
        return f"{at} (a division by zero in the query?)"


def _infinite_sides(
    candidate: tuple[str, str, np.ndarray], reference: tuple[str, str, np.ndarray]
) -> _Infinite | None:
    """The sides (who, owner, values with a value at the steps that can be judged) with ±Inf
    values; None when neither has one."""

    def side(found: tuple[str, str, np.ndarray]) -> _InfiniteSide | None:
        who, owner, values = found
        counted = infinities.infinities(values)
        return None if counted is None else _InfiniteSide(who, owner, counted)

    infinite = _Infinite(side(candidate), side(reference), candidate[1])
    return infinite if infinite.sides else None


def _sign(found: infinities.Infinities) -> str:
    return {1.0: "+Inf", -1.0: "-Inf"}.get(found.sign or 0.0, "undefined (+Inf and -Inf)")


def _infinities_refused(infinite: _Infinite, made: judgement.MetricJudgement) -> tuple[str, str]:
    """NoData's (reason, message) for a judgement the ±Inf steps left out may have made (see
    infinities.infinity_ruling): judged on the steps left, a canary whose query read +Inf at
    7 of 21 steps (`a / b` with b = 0) passed `maxIncrease` on the other 14."""
    candidate, reference = infinite.candidate, infinite.reference
    lead = "±Inf is no number to judge, and the steps left would not show them"
    if not made.checks and made.reason in ("NoData", "TooFewSamples"):
        # Nothing was read on the finite steps: no verdict to say the infinities may change.
        held = " and ".join(
            f"the {side.owner} held {_held(side.found)} ±Inf steps" for side in infinite.sides
        )
        lead = "±Inf is no number to judge"
        why = f"{held}, and the finite steps left reach no verdict ({made.message})"
    elif reference is not None and (
        candidate is None or any(c.rule not in infinities.CANDIDATE_ONLY for c in made.checks)
    ):
        # `max` alone never reads the reference: with the candidate's infinities too, they
        # are what refuses it (the branch below).
        why = f"with them the {reference.owner} has no finite level to compare with"
        own = [c.rule for c in made.checks if c.rule in infinities.CANDIDATE_ONLY]
        others = [c.rule for c in made.checks if c.rule not in infinities.CANDIDATE_ONLY]
        if own and others and candidate is None:
            why = (
                f"{why}, which {' and '.join(others)} "
                f"{'needs' if len(others) == 1 else 'need'}; {' and '.join(own)}, on the "
                f"{infinite.current}'s own level, is judged, but the {made.verdict.value} "
                "the steps left read needs every limit judged"
            )
            if made.verdict is MetricVerdict.REGRESSED:
                why = (
                    f"with them the {reference.owner} has no finite level to compare with, "
                    f"which the {' and '.join(_breached(made))} breach the rest read needs; "
                    f"{' and '.join(own)}, on the {infinite.current}'s own level, is not "
                    "breached"
                )
    else:
        assert candidate is not None
        mean = f"with them the {candidate.owner}'s mean is {_sign(candidate.found)}"
        if candidate.found.sign is None:
            why = mean
        elif made.verdict is MetricVerdict.REGRESSED:
            why = (
                f"{mean}, the other way from the {' and '.join(_breached(made))} breach the "
                "rest read"
            )
        else:
            why = (
                f"{mean}: the {made.verdict.value} the other steps read is not the window's, "
                "and only a breach they make worse stands"
            )
    return (
        "NonFiniteValues",
        f"not judged: {infinite.where()}; {lead}: {why}; make the query leave such steps "
        "without a value (divide by `(b > 0)`, not `b`) or fix what it divides by",
    )


def _breached(made: judgement.MetricJudgement) -> list[str]:
    return [c.rule for c in made.checks if c.verdict is MetricVerdict.REGRESSED]


def _held(found: infinities.Infinities) -> str:
    """How much of a side's steps with a value were ±Inf: "only", "mostly", "some"."""
    if found.steps == found.of:
        return "only"
    return "mostly" if 2 * found.steps > found.of else "some"


def _infinities_note(
    infinite: _Infinite, ruling: infinities.InfinityRuling, made: judgement.MetricJudgement
) -> str:
    """The note that starts the message of a judgement that stands though some steps were
    ±Inf: they are not in the figures, and cannot change it. The candidate's only make a
    breach worse ("worse still"); the reference's do not enter `max`, the candidate's own
    level."""
    on = " and ".join(ruling.on)
    why = []
    if infinite.candidate is not None:
        why.append(f"they only take the {infinite.candidate.owner} further past it")
    if infinite.reference is not None:
        why.append(
            f"{on} bounds the {infinite.current}'s own level, which the "
            f"{infinite.reference.owner} does not enter"
        )
    lead = (
        f"worse still: {infinite.where()}, left out of the figures"
        if infinite.candidate is not None
        else f"left out of the figures: {infinite.where()}"
    )
    verdict = MetricVerdict.PASS if ruling.as_pass else made.verdict
    return f"{lead}; {verdict.value} on {on} holds whatever they are ({'; '.join(why)})"


def _improvement_dropped(infinite: _Infinite) -> str:
    """Why an Improved the reference's infinities leave standing is a Pass only."""
    assert infinite.reference is not None
    return (
        f"counted as Pass, not Improved: an improvement is a change from the "
        f"{infinite.reference.owner}, which has no finite level with its ±Inf steps"
    )


# At most max(1, 10 %) of a throughput window's steps may have no series (2 of 21 with a 10m
# window at 30 s); with more it is not judged (IncompleteWindow). A step without a series is a
# step no pod was scraped in (all down: zero requests served) or a gap in Prometheus; the
# mean of the steps left reads neither.
INCOMPLETE_SHARE = 0.10


def _incomplete(current: TimedSamples, w: Windows) -> tuple[str, str] | None:
    """(reason, message) when more of the window's steps than tolerated have no value (±Inf
    is one: NonFiniteValues)."""
    present = current.present()
    if len(present) == 0:
        return None  # NoData says it already
    expected = (w.end - w.start) // w.step + 1
    allowed = max(1, int(INCOMPLETE_SHARE * expected))
    missing = expected - len(present)
    if missing <= allowed:
        return None
    return (
        "IncompleteWindow",
        f"not judged: {missing} of the window's {expected} steps had no series (at most "
        f"{allowed} allowed): no pod was scraped then, or Prometheus has a gap; the steps "
        "left would not show requests that were not served",
    )


def _regressed_without_verdict(
    previous: Mapping[str, Any], reason: str, now: str, unknown_message: str
) -> ConditionUpdate:
    """Regressed when an evaluation reached no verdict: a failure already reported stays
    reported (RecoveryUnconfirmed, saying what holds `now`), so recovery does not announce
    it a second time and a Pass after it is a real transition; otherwise Unknown."""
    conditions = parse_conditions(previous.get("conditions"))
    was = next((c for c in conditions if c.type == "Regressed"), None)
    if was is not None and was.status.value == "True":
        return true(
            "Regressed", "RecoveryUnconfirmed", f"the last conclusive verdict was Fail; now {now}"
        )
    return unknown("Regressed", reason, unknown_message)


def invalid_spec_conditions(
    reason: str, message: str, previous: Mapping[str, Any]
) -> list[ConditionUpdate]:
    """PerfBaseline's conditions besides Ready for a spec the operator refuses: neither a
    baseline nor a verdict is known for it, so BaselineEstablished and Regressed are
    Unknown (a regression already reported stays, as in `unavailable`), not what an
    earlier spec gave."""
    return [
        unknown(
            "BaselineEstablished", reason, f"no baseline for a spec that is refused: {message}"
        ),
        _regressed_without_verdict(
            previous, reason, f"the spec is refused: {message}", "no verdict for a refused spec"
        ),
    ]


def unavailable(
    reason: str,
    message: str,
    previous: Mapping[str, Any],
    *,
    at: datetime,
    spec: PerfBaselineSpec,
    status_refresh: timedelta,
) -> Outcome:
    """No verdict this time (the data source failed, or the workload could not be read):
    Inconclusive, never Pass; an Event per distinct cause. A regression already reported
    stays reported (RecoveryUnconfirmed), so recovery does not announce it a second time
    and a Pass after it is a real transition.

    A pending or sustained breach is not confirmed by an evaluation without data, whatever
    the cause: each metric with a `breachSince` gets `breachUnconfirmedSince` (kept if it has
    one), so an outage longer than sustainFor lapses the breach as NoData evaluations do.
    Before, a breach from 11:57, 30 minutes of unreachable Prometheus, and a new 3.5-minute
    shift at 12:31 failed at once, on a breach "since 11:57".

    The stamp counts the evaluations missed before this one as a data evaluation does
    (_missed_evaluations, from `spec`'s interval and `status_refresh`): it is the earlier of
    the existing stamp and when the breach went unconfirmed, `at` only when nothing was
    missed. Stamped `at`, an outage right after a restart erased the stop before it (this
    evaluation's `lastEvaluationTime` is new): a breach pending at 11:57, the operator down
    until 12:30, Prometheus unreachable at 12:30 and a new shift from 12:29:30 failed at
    12:32 on the breach "since 11:55"."""
    conditions = parse_conditions(previous.get("conditions"))
    was_ready = next((c for c in conditions if c.type == READY), None)
    # The Event names the cause, as the Ready condition does: unreachable, timeout,
    # unauthorised, TLS and bad answers need different fixes.
    events = (
        [EventSpec("Warning", reason, message)]
        if was_ready is None or was_ready.reason != reason
        else []
    )
    regressed = _regressed_without_verdict(
        previous, reason, f"no data: {message}", "no verdict while the data cannot be read"
    )
    fields: dict[str, Any] = {
        "verdict": Verdict.INCONCLUSIVE.value,
        "reason": reason,
        "message": message,
    }
    metrics = previous.get("metrics")
    if isinstance(metrics, list) and any(
        isinstance(item, Mapping) and item.get("breachSince") for item in metrics
    ):
        breaches = _missed_evaluations(
            _previous_breaches(previous), spec, previous, at, status_refresh
        )
        stamped = []
        for item in metrics:
            if isinstance(item, Mapping) and item.get("breachSince"):
                key = (item.get("name", ""), item.get("statistic", ""), item.get("comparison", ""))
                missed = breaches.get(key, (None, None))[1]
                existing = parse_time_or_none(item.get("breachUnconfirmedSince"))
                stamp = at if missed is None else min(missed, at)
                if existing is None or stamp < existing:
                    item = {**item, "breachUnconfirmedSince": format_time(stamp)}
            stamped.append(item)
        fields["metrics"] = stamped
    return Outcome(
        fields=fields,
        conditions=[false(READY, reason, message), regressed],
        events=events,
        verdict=Verdict.INCONCLUSIVE.value,
    )


def judge(
    spec: PerfBaselineSpec,
    plan: TrackPlan,
    w: Windows,
    samples: Mapping[str, MetricSamples],
    previous: Mapping[str, Any],
    at: datetime,
    *,
    seed: int = SEED,
    status_refresh: timedelta = timedelta(0),
) -> Outcome:
    """Decide from fetched samples. Pure: no I/O, deterministic for a seed.

    `status_refresh`: how much older than the last evaluation `previous`'s
    `lastEvaluationTime` may be (the operator writes a status without news only that often),
    so a gap in the evaluations is not read where there was none (see _missed_evaluations).
    """
    # A breach belongs to the candidate it was seen on: a new one starts its own sustain.
    new_candidate = _new_candidate(previous, plan.identity)
    breaches = {} if new_candidate else _previous_breaches(previous)
    breaches = _missed_evaluations(breaches, spec, previous, at, status_refresh)

    # A data source that failed makes every verdict Inconclusive, never Pass.
    failures = [s.error for s in samples.values() if s.error is not None]
    if failures:
        failure = failures[0]
        reason = failure.kind.value
        if failure.kind == FailureKind.INVALID_QUERY:
            message = f"Prometheus rejected a query: {failure.message}"
        else:
            message = failure.message
        return unavailable(
            reason, message, previous, at=at, spec=spec, status_refresh=status_refresh
        )

    judged: list[Judged] = []
    problems: list[str] = []
    gone_after = 2 * spec.analysis.step + rate_window(spec)
    capacity = same_time_capacity(w)
    for metric in spec.metrics:
        data = samples[metric.name]
        withheld: tuple[str, str] | None = None
        if data.problem:
            problems.append(f"{metric.name}: {data.problem}")
            # Not judged on part of an answer (which of several series came last is
            # Prometheus' order): NoData, with the problem as the reason.
            withheld = ("QueryProblem", f"not judged: {data.problem}")
            data = MetricSamples()
        for statistic in statistics_for(metric):
            if getattr(metric.thresholds, statistic) is None:
                continue  # reported in the summary, not judged
            on_workload = judged_on_workload(metric)
            current_name = WORKLOAD.name if on_workload else plan.current.name
            quantile = QUANTILES.get(statistic) if metric.type == MetricType.LATENCY else None
            current = data.window.get((current_name, statistic), TimedSamples.empty())
            why = withheld or _gone(current, at, gone_after, current_name)
            if why is None and metric.type == MetricType.THROUGHPUT:
                why = _incomplete(current, w)
            if why is not None:
                current = TimedSamples.empty()
            seed_here = seed + len(judged)
            if (plan.concurrent or plan.no_stable is not None) and not on_workload:
                stable = data.window.get(("stable", statistic), TimedSamples.empty())
                no_stable = None if plan.no_stable is None else ("NoStableTrack", plan.no_stable)
                pair_why = (
                    withheld
                    or no_stable
                    or why
                    or _gone(
                        stable,
                        at,
                        gone_after,
                        "stable",
                        reason="StableDataStale",
                        then="; the candidate has no current stable samples to be paired with",
                    )
                    or _stable_silent(stable, current, ("stable", statistic) in data.window, spec)
                )
                if pair_why is not None:
                    stable = TimedSamples.empty()
                # The steps where both tracks have a value, ±Inf included (a track at +Inf
                # reports): "no series" and "no pairs" are read on these first. They are the
                # steps pairs are made at, so their infinities are the ones the finite pairs
                # leave out; the candidate's ±Inf where the stable has no value is never
                # paired, as a finite value there is not.
                steps, cand_present, stable_present = paired_timed(current, stable, infinite=True)
                finite = np.isfinite(cand_present) & np.isfinite(stable_present)
                times, cand, base = steps[finite], cand_present[finite], stable_present[finite]
                if pair_why is None and cand_present.size == 0:
                    pair_why = _no_series(
                        data, metric, statistic, [current_name, "stable"]
                    ) or _unpaired(current, stable)
                infinite = None
                if pair_why is None:
                    infinite = _infinite_sides(
                        (f"the {current_name}", current_name, cand_present),
                        ("the stable track at the paired steps", "stable track", stable_present),
                    )
                floors = None
                if pair_why is None and quantile is not None:
                    floors = _floor_sides(
                        metric,
                        statistic,
                        quantile,
                        (
                            f"the {current_name}",
                            current_name,
                            _saturation(data, current_name, current, quantile, steps=times),
                        ),
                        (
                            "the stable track",
                            "stable track",
                            _saturation(data, "stable", stable, quantile, steps=times),
                        ),
                    )
                judged.append(
                    _judge_one(
                        spec,
                        metric,
                        statistic,
                        Comparison.CONCURRENT,
                        cand,
                        base,
                        paired_samples=True,
                        at=at,
                        seed=seed_here,
                        previous_breach=breaches.get((metric.name, statistic, "Concurrent")),
                        timestamps=times,
                        unavailable=pair_why,
                        floors=floors,
                        infinite=infinite,
                    )
                )
            if plan.historical or on_workload:
                base_all = data.baseline.get(statistic, TimedSamples.empty())
                # With the ±Inf values: NaN is no value, an infinity is one (NonFiniteValues);
                # the finite ones are judged, one slice per earlier day that has any.
                present = same_time_slices(base_all, w.start, w.end, infinite=True)
                base_present = np.concatenate(present) if present else np.empty(0)
                slices = [f for day in present if (f := day[np.isfinite(day)]).size]
                base_values = np.concatenate(slices) if slices else np.empty(0)
                current_present = current.present().values
                if why is None and (current_present.size == 0 or base_present.size == 0):
                    why = _no_series(data, metric, statistic, [current_name, "baseline"])
                if why is None and base_present.size == 0:
                    why = _no_same_time(spec, w, base_all, on_workload or plan.stable is None)
                infinite = None
                if why is None:
                    infinite = _infinite_sides(
                        (f"the {current_name}", current_name, current_present),
                        ("the baseline at the window's time of day", "baseline", base_present),
                    )
                floors = None
                if why is None and quantile is not None:
                    floors = _floor_sides(
                        metric,
                        statistic,
                        quantile,
                        (
                            f"the {current_name}",
                            current_name,
                            _saturation(data, current_name, current, quantile),
                        ),
                        (
                            "the baseline at the window's time of day",
                            "baseline",
                            _saturation(data, None, base_all, quantile, same_time=(w.start, w.end)),
                        ),
                    )
                judged.append(
                    _judge_one(
                        spec,
                        metric,
                        statistic,
                        Comparison.HISTORICAL,
                        current.finite().values,
                        base_values,
                        paired_samples=False,
                        at=at,
                        seed=seed_here + 1,
                        previous_breach=breaches.get((metric.name, statistic, "Historical")),
                        segments=slices,
                        unavailable=why,
                        floors=floors,
                        infinite=infinite,
                    )
                )
                _explain_too_few(spec, judged[-1], capacity)

    _improved_only_with_p95(spec, judged)
    verdict, reason, message = _overall(judged)
    fields: dict[str, Any] = {
        "verdict": verdict.value,
        "reason": reason,
        "message": message,
        "metrics": [j.status for j in judged],
        "baseline": _baseline_status(w, samples, judged),
        "candidate": _candidate_status(plan, previous, at),
        "lastEvaluationTime": format_time(at),
    }
    # None removes a summary an earlier evaluation left (no latency p95 in this window).
    fields["summary"] = _summary(spec, samples, plan, judged) or None
    stages, stages_summary = _stages(spec, samples, plan.current.name)
    fields["stages"] = stages or None
    fields["stagesSummary"] = stages_summary

    conditions, events = _conditions_and_events(
        spec,
        verdict,
        reason,
        message,
        judged,
        previous,
        problems,
        new_candidate=new_candidate,
        capacity=capacity,
    )
    events.extend(_improvements(judged, previous, plan.identity, at))
    return Outcome(fields, conditions, events, verdict=verdict.value)


def _improved_only_with_p95(spec: PerfBaselineSpec, judged: Sequence[Judged]) -> None:
    """With `improvement.minP95Reduction` set, a latency's other statistics are Improved only
    when its p95 (in the same comparison) is: DESIGN's "an optimisation counts only if CI95
    excludes 0 and p95 drops this much". A mean 0.3 ms faster beside a p95 2 ms slower
    announced an improvement. The others stay Pass, with a note; without `improvement`
    every statistic that got significantly better is Improved, as before."""
    if spec.improvement is None or spec.improvement.min_p95_reduction is None:
        return
    for j in judged:
        if (
            j.metric.type != MetricType.LATENCY
            or j.statistic == "p95"
            or j.verdict != MetricVerdict.IMPROVED
        ):
            continue
        p95 = next(
            (
                k
                for k in judged
                if k.metric is j.metric and k.statistic == "p95" and k.comparison == j.comparison
            ),
            None,
        )
        if p95 is not None and p95.verdict == MetricVerdict.IMPROVED:
            continue
        least = format_value(spec.improvement.min_p95_reduction, j.metric)
        why = "did not improve by" if p95 is not None else "has no threshold, so no drop of"
        note = (
            f"counted as Pass, not Improved: its p95 ({j.comparison.value.lower()}) {why} "
            f"improvement.minP95Reduction {least}"
        )
        downgraded = dataclasses.replace(
            j.sustained.judgement,
            verdict=MetricVerdict.PASS,
            reason="WithinThreshold",
            message=f"{j.sustained.judgement.message}; {note}",
        )
        j.sustained = dataclasses.replace(j.sustained, judgement=downgraded)
        j.status.update(
            verdict=MetricVerdict.PASS.value,
            reason="WithinThreshold",
            message=f"{j.status['message']}; {note}",
        )


def _improvements(
    judged: Sequence[Judged], previous: Mapping[str, Any], identity: str, at: datetime
) -> list[EventSpec]:
    """Stamp ``improvedSince`` on each metric this candidate improved, and announce each once.

    A metric at the edge of significance goes Improved, Pass, Improved... from one
    evaluation to the next. Announcing every return put 2,025 ImprovementConfirmed Events on
    1,000 unchanged PerfBaselines in fewer than three evaluations each (bench/operator_scale:
    1,000 first evaluations and 1,665 in the window; canary and stable wander apart by a
    percent or two). The stamp is kept through Pass,
    Inconclusive, NoData and a breach not yet held for sustainFor, for the same candidate;
    a sustained regression (the metric fails the verdict) or a new candidate drops it: the
    Event says "this candidate is better on this metric", once. A metric that leaves the
    spec loses its stamp with its status entry.
    """
    same_candidate = (previous.get("candidate") or {}).get("identity") == identity
    stamped: dict[tuple[str, str, str], str] = {}
    for item in previous.get("metrics") or [] if same_candidate else []:
        key = (item.get("name", ""), item.get("statistic", ""), item.get("comparison", ""))
        since = item.get("improvedSince")
        if since is None and item.get("verdict") == MetricVerdict.IMPROVED.value:
            # A status written before the stamp existed: the improvement was announced then.
            since = previous.get("lastEvaluationTime") or format_time(at)
        if since is not None:
            stamped[key] = str(since)
    events: list[EventSpec] = []
    for j in judged:
        since = stamped.get((j.metric.name, j.statistic, j.comparison.value))
        if j.sustained.failed:
            since = None
        elif j.verdict == MetricVerdict.IMPROVED and since is None:
            since = format_time(at)
            events.append(
                EventSpec(
                    "Normal",
                    "ImprovementConfirmed",
                    f"{j.metric.name} {j.statistic}: {j.status.get('message')}",
                )
            )
        if since is not None:
            j.status["improvedSince"] = since
    return events


def _overall(judged: Sequence[Judged]) -> tuple[Verdict, str, str]:
    if not judged:
        return Verdict.INCONCLUSIVE, "NothingToJudge", "no metric has a threshold to judge"
    result = judgement.overall_verdict([(j.sustained, j.metric.critical) for j in judged])
    return result.verdict, result.reason, result.message


def _baseline_status(
    w: Windows, samples: Mapping[str, MetricSamples], judged: Sequence[Judged]
) -> dict[str, Any]:
    count = 0
    for data in samples.values():
        for series in data.baseline.values():
            count = max(count, len(series.finite()))
    result: dict[str, Any] = {
        "from": format_time(w.baseline_start),
        "to": format_time(w.baseline_end),
        "samples": count,
    }
    # What a Historical comparison is judged on (and minSamples counts): the samples at the
    # window's time of day. `samples` alone read 10,080 while BaselineEstablished said 42.
    historical = [j for j in judged if j.comparison == Comparison.HISTORICAL]
    counted = [j for j in historical if j.metric.critical] or historical
    if counted:
        result["samplesAtTimeOfDay"] = min(int(j.status["samples"]["baseline"]) for j in counted)
    return result


def _candidate_status(plan: TrackPlan, previous: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    before = previous.get("candidate") or {}
    since = before.get("since") if before.get("identity") == plan.identity else None
    return {"identity": plan.identity, "source": plan.source, "since": since or format_time(at)}


def _summary(
    spec: PerfBaselineSpec,
    samples: Mapping[str, MetricSamples],
    plan: TrackPlan,
    judged: Sequence[Judged],
) -> dict[str, Any] | None:
    latency = next((m for m in spec.metrics if m.type == MetricType.LATENCY), None)
    if latency is None:
        return None
    data = samples[latency.name]
    current = data.window.get((plan.current.name, "p95"))
    if current is None or len(current.finite()) == 0:
        return None
    p95 = format_value(float(np.mean(current.finite().values)), latency)
    if _saturation(data, plan.current.name, current, QUANTILES["p95"]) is not None:
        # Some steps read the highest finite bucket's bound: the mean is only a floor.
        p95 = f">={p95}"
    result = {"p95": p95}
    for comparison in (Comparison.CONCURRENT, Comparison.HISTORICAL):
        entry = next(
            (
                j
                for j in judged
                if j.metric is latency
                and j.statistic == "p95"
                and j.comparison == comparison
                and "delta" in j.status
                # Both sides floors: the change read is no bound of the true one.
                and j.delta_bound != "?"
            ),
            None,
        )
        if entry is not None:
            # A change judged on a floor is a bound: >= on the candidate's side, <= on the
            # reference's.
            delta = format_value(entry.status["delta"], latency, signed=True)
            result["deltaP95"] = f"{entry.delta_bound or ''}{delta}"
            break
    return result


def _stages(
    spec: PerfBaselineSpec, samples: Mapping[str, MetricSamples], current: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] | None = None
    for metric in spec.metrics:
        if metric.type != MetricType.LATENCY or not metric.stage_label:
            continue
        data = samples[metric.name]
        stage_means = {
            stage: s.finite() for (stage, stat), s in data.stages.items() if stat == "mean"
        }
        total = data.window.get((current, "mean"))
        if not stage_means or total is None or len(total.finite()) == 0:
            continue
        # Paired by timestamp: shares are over the steps where the total and every stage
        # have a value, so a stage reported only while slow does not take the whole
        # window's total as its denominator.
        breakdown = judgement.decompose_stages(
            {stage: s.values for stage, s in stage_means.items()},
            total.finite().values,
            stage_steps={stage: s.timestamps for stage, s in stage_means.items()},
            total_steps=total.finite().timestamps,
        )
        # decompose_stages reports per-stage p95/p99 of the per-step means; the rows below
        # use the stages' own quantile series instead.
        for stage in sorted(stage_means):
            row: dict[str, Any] = {"metric": metric.name, "stage": stage}
            info = breakdown.stages.get(stage)
            if info is not None:
                row.update(mean=info.mean, share=info.share)
                if info.missing:
                    row["message"] = (
                        f"no value at {info.missing} of the total's {breakdown.total_steps} "
                        f"steps; shares are over the {breakdown.steps} steps where the total "
                        "and every stage have one"
                    )
            floors: list[str] = []
            for stat in ("p95", "p99"):
                series = data.stages.get((stage, stat))
                if series is None or not len(series.finite()):
                    continue
                saturation = _floors(data.stages.get((stage, OVERFLOW)), series, QUANTILES[stat])
                if saturation is None:
                    row[stat] = float(np.mean(series.finite().values))
                else:
                    floors.append(
                        f"{stat} not reported: above the highest finite bucket "
                        f"({format_value(saturation.bound, metric)}) at {saturation.steps} of "
                        f"{saturation.of} steps"
                    )
            if floors:
                notes = [row["message"]] if "message" in row else []
                row["message"] = "; ".join([*notes, *floors])
            rows.append(row)
        summary = {
            "unattributedShare": breakdown.unattributed_share,
            "unattributedFlagged": breakdown.unattributed_flag,
            "steps": breakdown.steps,
            "totalSteps": breakdown.total_steps,
        }
    return rows, summary


def _conditions_and_events(
    spec: PerfBaselineSpec,
    verdict: Verdict,
    reason: str,
    message: str,
    judged: Sequence[Judged],
    previous: Mapping[str, Any],
    problems: Sequence[str],
    *,
    new_candidate: bool = False,
    capacity: SameTimeCapacity | None = None,
) -> tuple[list[ConditionUpdate], list[EventSpec]]:
    events: list[EventSpec] = []
    conditions = parse_conditions(previous.get("conditions"))
    was = {c.type: c for c in conditions}

    if problems:
        ready = false(READY, "InvalidSpec", "; ".join(problems))
    else:
        ready = true(READY, "Evaluated", "queries answered; see verdict for the outcome")

    historical = [j for j in judged if j.comparison == Comparison.HISTORICAL and j.metric.critical]
    if historical:
        short = [
            j
            for j in historical
            if j.status.get("samples", {}).get("baseline", 0) < spec.baseline.min_samples
        ]
        too_short = next((j for j in short if j.status.get("reason") == "BaselineTooShort"), None)
        if too_short is not None:
            # Not a count that more of the same will fix: no earlier day to match.
            baseline = false(
                "BaselineEstablished", "BaselineTooShort", str(too_short.status["message"])
            )
        elif short:
            got = min(j.status["samples"]["baseline"] for j in short)
            unreachable = capacity is not None and capacity.samples < spec.baseline.min_samples
            baseline = false(
                "BaselineEstablished",
                "MinSamplesUnreachable" if unreachable else "InsufficientBaseline",
                _too_few_note(spec, got, capacity)
                if capacity is not None
                else f"{got} baseline samples at the window's time of day; "
                f"minSamples is {spec.baseline.min_samples}",
            )
        else:
            baseline = true(
                "BaselineEstablished",
                "BaselineEstablished",
                f"at least {spec.baseline.min_samples} baseline samples at the window's time "
                "of day for every critical metric",
            )
    else:
        baseline = true(
            "BaselineEstablished",
            "ConcurrentOnly",
            "compared with the stable track over the same window",
        )

    # The Regressed condition remembers a failure across inconclusive evaluations (and
    # restarts): recovery counts only once a verdict passes, so the Events pair up.
    was_regressed = was.get("Regressed")
    regressed_before = was_regressed is not None and was_regressed.status.value == "True"
    # The failure remembered is this candidate's; a new candidate starts unknown.
    carried = regressed_before and not new_candidate
    if verdict == Verdict.FAIL:
        regressed = true("Regressed", "RegressionDetected", message)
    elif verdict == Verdict.PASS:
        regressed = false("Regressed", "NoRegression", message)
    elif carried:
        regressed = true(
            "Regressed",
            "RecoveryUnconfirmed",
            f"the last conclusive verdict was Fail; now inconclusive: {message}",
        )
    elif regressed_before:
        regressed = unknown(
            "Regressed", "NewCandidate", f"the regressed candidate was replaced; {message}"
        )
    else:
        regressed = unknown("Regressed", reason, message)

    if regressed_before and (regressed.status.value != "True" or new_candidate):
        # A pass, or the regressed candidate replaced by another (whose own failure, if
        # any, is announced next): every Detected gets its Cleared.
        cleared = (
            regressed.message
            if regressed.status.value != "True"
            else f"the regressed candidate was replaced; {message}"
        )
        events.append(EventSpec("Normal", "RegressionCleared", cleared))
    if verdict == Verdict.FAIL and not carried:
        events.append(EventSpec("Warning", "RegressionDetected", message))
    old_baseline = was.get("BaselineEstablished")
    if baseline.status.value == "True" and (
        old_baseline is None or old_baseline.status.value != "True"
    ):
        events.append(EventSpec("Normal", "BaselineEstablished", baseline.message))
    old_ready = was.get(READY)
    if ready.reason == "InvalidSpec" and (old_ready is None or old_ready.reason != "InvalidSpec"):
        events.append(EventSpec("Warning", "InvalidSpec", ready.message))
    return [ready, baseline, regressed], events


async def evaluate(
    spec: PerfBaselineSpec,
    plan: TrackPlan,
    previous: Mapping[str, Any],
    at: datetime,
    client: PrometheusClient,
    *,
    status_refresh: timedelta = timedelta(0),
) -> Outcome:
    w, samples = await fetch_all(client, spec, plan, at)
    return judge(spec, plan, w, samples, previous, at, status_refresh=status_refresh)
