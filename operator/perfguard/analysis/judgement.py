"""PerfBaseline verdict rules: thresholds, significance, sustain, overall verdict, stages.

Shaped like cert-manager's certificate policy checks: data in, (verdict, reason, message) out.
Nothing here reads the clock, the cluster or Prometheus; ``now`` and the previous
``breachSince`` are passed in, so an operator restart that reloads ``breachSince`` from status
resumes the same sustain window.

Metric rule table (``judge_metric``), evaluated top to bottom, first match wins:

    #  condition                                           verdict       reason
    -  --------------------------------------------------  ------------  --------------------------
    1  either side has 0 samples                           NoData        NoData
    2  either side has fewer than its minimum              Inconclusive  TooFewSamples
    3  point, a bound or a value is not finite             Inconclusive  IntervalUndefined
    -  the threshold sets no limit at all                  Inconclusive  NoThreshold

Then each configured limit is checked on its own. Write the change in the limit's bad direction
(+delta for maxIncrease*, -delta for maxDecrease*), its interval [L, H], and the allowed change
t (the absolute limit, or percent / 100 * |baseline|). For ``max``, [L, H] is the interval of
the candidate's own value, the point is the candidate's value and t is the bound.

    4  percent limit and |baseline| ~ 0, and L > 0         Regressed     RegressionSignificant
       percent limit and |baseline| ~ 0, otherwise         Inconclusive  BaselineNearZero
    5  L > 0 and point > t   (significant, beyond limit)   Regressed     RegressionSignificant
    6  H <= t and point <= t (interval within the limit)   Pass          WithinThreshold
    7  otherwise                                           Inconclusive  IntervalStraddlesThreshold

(|baseline| ~ 0: at most 1e-12 of the larger of |baseline| and |candidate|. A percent of 0
allows no change, so a change significant in the bad direction breaks it.)

(In rows 5-7 t is widened by a relative 1e-9: beyond the limit by rounding is not beyond it.)

Row 5 is DESIGN's significance rule word for word: (a) the interval of the change excludes
zero in the bad direction and (b) the point estimate breaks the limit. Row 6 needs the whole
interval within the limit, so an interval that straddles the limit is never a Pass (DESIGN's
verdict rule); it is Inconclusive (row 7) unless row 5 holds. Rows 5-7 are exclusive
(row 5 needs point > t, row 6 point <= t) and exhaustive. For ``max`` the rule is stricter,
as there is no "zero" for an absolute bound: Regressed needs the candidate's whole interval
above the bound (L > t and point > t).

(An earlier version demanded L > t for row 5 too. On the accuracy corpus of issue #7 that
kept false positives at 0/480 but detected 44 % of regressions at or above the limit;
DESIGN's rule detects more at the same 0/480, see docs/benchmarks.md.)

The metric combines its limits: any Regressed -> Regressed (reason of the first); else any
Inconclusive -> Inconclusive; else Pass, upgraded by

    8  every limit is bad in the same direction, the       Improved      ImprovementSignificant
       change interval lies wholly on the good side of 0,
       and the improvement >= improvement_min_reduction
       (when given)
    9  as 8 but the improvement is below that minimum      Pass          WithinThreshold (+ note)

Sustain (``apply_sustain``): a Regressed metric is a breach. The first breach stamps
``breach_since``: the first sample of the judged data that shows it (``held_since``: the
window start, or the level shift the engine found inside the window) when the caller knows
it, else ``now``; later breaches keep it. A Pass or Improved metric clears it (the breach is
refuted); an Inconclusive or NoData one keeps it without extending anything (not refuted:
one unanswered query or straddling interval does not restart the clock), and stamps
``unconfirmed_since`` at the first such evaluation. A breach left unconfirmed for longer
than ``lapse_after`` (the engine gives the larger of sustainFor and the evaluation interval,
plus a slack for a late evaluation: half an interval, at most 30 s) lapses: it is dropped,
and a later breach starts its own clock, so two Regressed evaluations an outage apart do not
count as one sustained breach. The breach is sustained once ``now - breach_since >=
sustain_for`` *and* the metric is Regressed now. So "held for sustainFor" is read from the
data the verdict rests on, not only from how many evaluations happened to see it. A
Regressed metric that is not yet sustained keeps the metric verdict Regressed (with
``breachSince``) so the evidence is visible, while the overall verdict becomes Inconclusive
with reason BreachNotSustained: never Pass while a regression is pending, never Fail before
it has held.

Overall verdict (``overall_verdict``), first match wins. Non-critical metrics do not fail it,
but their regressions are named in the message:

    1  no metrics at all                                   Inconclusive  NoMetrics
    2  a critical metric Regressed and sustained           Fail          RegressionDetected
    3  a critical metric Regressed, not yet sustained      Inconclusive  BreachNotSustained
    4  a critical metric NoData                            Inconclusive  NoData
    5  a critical metric Inconclusive                      Inconclusive  MetricInconclusive
    6  none is critical and none concluded (all NoData     Inconclusive  NoData or
       or Inconclusive): no data is never a Pass                         MetricInconclusive
    7  otherwise: every critical metric Pass or Improved   Pass          WithinThresholds
       (when none is critical, on the non-critical
       ones that concluded; the message says so)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt

from perfguard.analysis.statistics import DifferenceInterval, relative_change

# The verdicts are the API's own values (the models are plain data, not I/O).
from perfguard.api.perfbaseline import MetricVerdict, Verdict
from perfguard.times import format_time

__all__ = [
    "MetricJudgement",
    "MetricVerdict",
    "OverallVerdict",
    "RuleCheck",
    "StageBreakdown",
    "StageStats",
    "SustainState",
    "SustainedJudgement",
    "Threshold",
    "Verdict",
    "apply_sustain",
    "decision_points",
    "decompose_stages",
    "judge_metric",
    "overall_verdict",
    "with_sustain",
]

# DESIGN: the share of latency not attributed to any stage is flagged above 10 %.
UNATTRIBUTED_FLAG_SHARE: Final = 0.10

# A baseline this close to zero, relative to the values compared, gives no meaningful
# percentage (0 -> 1e-15 is not "+inf %"; see _near_zero).
_ZERO_TOLERANCE: Final = 1e-12
# Relative slack on a change limit: a change beyond the limit by no more than this is
# rounding, not a breach (see _check_change_rule).
_ROUNDING: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Threshold:
    """Limits for one statistic of one metric, in the metric's base unit (seconds for latency).

    ``max_increase*`` and ``max`` make an increase bad; ``max_decrease*`` make a decrease bad.
    Percent limits are relative to the baseline value. Limits must be finite and non-negative.
    """

    max_increase: float | None = None
    max_increase_percent: float | None = None
    max_decrease: float | None = None
    max_decrease_percent: float | None = None
    max: float | None = None

    def __post_init__(self) -> None:
        for name, value in self._limits():
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
            # Change limits are magnitudes and the direction is in the name; a negative bound on
            # a ratio or rate can only be a mistake.
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    @property
    def configured(self) -> bool:
        return bool(self._limits())

    def _limits(self) -> list[tuple[str, float]]:
        pairs = [
            ("maxIncrease", self.max_increase),
            ("maxIncreasePercent", self.max_increase_percent),
            ("maxDecrease", self.max_decrease),
            ("maxDecreasePercent", self.max_decrease_percent),
            ("max", self.max),
        ]
        return [(name, value) for name, value in pairs if value is not None]


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """The outcome of one limit of a ``Threshold`` (rows 4-7 of the rule table)."""

    rule: str
    verdict: MetricVerdict
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class MetricJudgement:
    """Verdict of one metric statistic, before sustain.

    ``breached`` is True exactly when the verdict is Regressed: the input to ``apply_sustain``.
    ``delta`` is candidate - baseline; ``delta_percent`` relative to |baseline| (None near 0).
    """

    verdict: MetricVerdict
    reason: str
    message: str
    breached: bool
    delta: float
    delta_percent: float | None
    ci_low: float
    ci_high: float
    confidence: float
    baseline_value: float
    candidate_value: float
    n_candidate: int
    n_baseline: int
    checks: tuple[RuleCheck, ...] = ()


def _v(value: float, unit: str) -> str:
    return f"{value:.4g}{unit}"


def _d(value: float, unit: str) -> str:
    return f"{value:+.4g}{unit}"


def _percent(value: float | None) -> str:
    return "" if value is None else f" ({value:+.1f} %)"


def _estimate_note(point: float, plain: float, unit: str) -> str:
    """Says so when the change judged is not the plain difference of the two means shown
    beside it: it is estimated on paired samples with spikes clipped (or on the newer
    level, or per day), and a reader comparing the numbers should not think it a typo."""
    if abs(point - plain) <= 0.1 * max(abs(point), abs(plain)):
        return ""
    return f" (robust estimate; the plain means differ by {_d(plain, unit)})"


def _check_change_rule(
    rule: str,
    direction: float,
    allowed: float,
    point: float,
    lo: float,
    hi: float,
    unit: str,
    percent: float | None = None,
) -> RuleCheck:
    """Rows 5-7 for a limit on the change; ``direction`` +1 if an increase is bad, else -1;
    ``percent``: the configured limit of a percent rule, of which ``allowed`` is the value."""
    bad_point = direction * point
    bad_lo, bad_hi = sorted((direction * lo, direction * hi))
    word = "increase" if direction > 0 else "decrease"
    limit = f"{rule} {_v(allowed, unit)}"
    if percent is not None:
        limit = f"{rule} {percent:g} % (of the baseline: {_v(allowed, unit)})"
    # "Breaks" means beyond the limit by more than rounding: the change is a difference of
    # means in floating point, and a canary exactly 5 ms slower read 5.00000000000003 ms.
    allowed += _ROUNDING * allowed
    if bad_lo > 0.0 and bad_point > allowed:
        return RuleCheck(
            rule,
            MetricVerdict.REGRESSED,
            "RegressionSignificant",
            f"{word} {_v(bad_point, unit)} breaks {limit} and is significant: its interval "
            f"[{_v(bad_lo, unit)}, {_v(bad_hi, unit)}] excludes 0",
        )
    if bad_hi <= allowed and bad_point <= allowed:
        return RuleCheck(
            rule,
            MetricVerdict.PASS,
            "WithinThreshold",
            f"the whole interval of the {word} [{_v(bad_lo, unit)}, {_v(bad_hi, unit)}] is "
            f"within {limit}",
        )
    detail = (
        "breaks it but the change is not significant"
        if bad_point > allowed
        else "is within it but the interval reaches beyond it"
    )
    return RuleCheck(
        rule,
        MetricVerdict.INCONCLUSIVE,
        "IntervalStraddlesThreshold",
        f"{word} {_v(bad_point, unit)} {detail}: interval [{_v(bad_lo, unit)}, "
        f"{_v(bad_hi, unit)}] contains {limit}",
    )


def _check_from_zero(
    rule: str,
    direction: float,
    limit: float,
    baseline_value: float,
    lo: float,
    hi: float,
    unit: str,
) -> RuleCheck:
    """Row 4: a percent limit against a baseline of 0 allows no change at all, so a change
    significant in the bad direction breaks it (from 0 errors to 20 % is beyond any
    percentage); anything else cannot be told from a percentage of 0."""
    bad_lo, bad_hi = sorted((direction * lo, direction * hi))
    word = "increase" if direction > 0 else "decrease"
    if bad_lo > 0.0:
        return RuleCheck(
            rule,
            MetricVerdict.REGRESSED,
            "RegressionSignificant",
            f"the baseline is 0 ({_v(baseline_value, unit)}), so any significant {word} "
            f"breaks {rule} {limit:g}: the {word}'s interval [{_v(bad_lo, unit)}, "
            f"{_v(bad_hi, unit)}] excludes 0",
        )
    return RuleCheck(
        rule,
        MetricVerdict.INCONCLUSIVE,
        "BaselineNearZero",
        f"{rule} {limit:g} needs a baseline away from 0, got {_v(baseline_value, unit)}",
    )


def _check_bound_rule(
    bound: float, value: float, lo: float, hi: float, unit: str, borrowed: bool
) -> RuleCheck:
    """Rows 5-7 for ``max``: the candidate's own interval against the absolute bound."""
    which = "baseline + change interval" if borrowed else "interval"
    limit = f"max {_v(bound, unit)}"
    if lo > bound and value > bound:
        return RuleCheck(
            "max",
            MetricVerdict.REGRESSED,
            "RegressionSignificant",
            f"candidate {_v(value, unit)} exceeds {limit} and its whole {which} "
            f"[{_v(lo, unit)}, {_v(hi, unit)}] lies above it",
        )
    if hi <= bound and value <= bound:
        return RuleCheck(
            "max",
            MetricVerdict.PASS,
            "WithinThreshold",
            f"candidate's whole {which} [{_v(lo, unit)}, {_v(hi, unit)}] is within {limit}",
        )
    return RuleCheck(
        "max",
        MetricVerdict.INCONCLUSIVE,
        "IntervalStraddlesThreshold",
        f"candidate {_v(value, unit)}: its {which} [{_v(lo, unit)}, {_v(hi, unit)}] contains "
        f"{limit}",
    )


def _near_zero(baseline_value: float, candidate_value: float) -> bool:
    """Whether a percentage of the baseline means nothing: the baseline is 0 at the data's
    own scale (the larger of the two values), so a Query whose values live around 1e-12
    (seconds per byte) still gets its percentages."""
    scale = max(abs(baseline_value), abs(candidate_value))
    return abs(baseline_value) <= _ZERO_TOLERANCE * scale


def _change_limits(
    threshold: Threshold, baseline_value: float, candidate_value: float = 0.0
) -> list[tuple[str, float, float, float | None]]:
    """(rule, bad direction, configured limit, allowed change in the base unit) per change
    limit; the allowed change is None for a percent limit against a baseline near 0 (at the
    scale of the two values; the baseline alone, i.e. exactly 0, without a candidate)."""
    base_is_zero = _near_zero(baseline_value, candidate_value)
    out: list[tuple[str, float, float, float | None]] = []
    for rule, direction, limit, relative in (
        ("maxIncrease", 1.0, threshold.max_increase, False),
        ("maxIncreasePercent", 1.0, threshold.max_increase_percent, True),
        ("maxDecrease", -1.0, threshold.max_decrease, False),
        ("maxDecreasePercent", -1.0, threshold.max_decrease_percent, True),
    ):
        if limit is None:
            continue
        if relative and base_is_zero:
            out.append((rule, direction, limit, None))
        else:
            out.append(
                (rule, direction, limit, limit / 100.0 * abs(baseline_value) if relative else limit)
            )
    return out


def decision_points(threshold: Threshold, baseline_value: float) -> tuple[float, ...]:
    """The values of the change at which ``judge_metric``'s verdict can change when an end of
    the change interval crosses them (point, samples and candidate interval held fixed): 0,
    each change limit with its sign, and ``max`` minus the baseline (the borrowed interval).

    Between two of them an end of the interval may move without changing the verdict (a test
    checks it for every kind of limit), so a bootstrap whose ends are far from all of them
    already has its verdict (see ``statistics.difference_interval``'s ``settle_at``).
    """
    points = {0.0}
    for _, direction, _, allowed in _change_limits(threshold, baseline_value):
        if allowed is not None:
            points.add(direction * allowed)
    if threshold.max is not None and math.isfinite(baseline_value):
        points.add(threshold.max - baseline_value)
    return tuple(sorted(points))


def judge_metric(
    interval: DifferenceInterval,
    baseline_value: float,
    candidate_value: float,
    threshold: Threshold,
    *,
    min_samples: int | None = None,
    min_candidate_samples: int | None = None,
    min_baseline_samples: int | None = None,
    improvement_min_reduction: float | None = None,
    candidate_interval: tuple[float, float] | None = None,
    unit: str = "",
) -> MetricJudgement:
    """Judge one metric statistic against its threshold (see the module's rule table).

    ``min_samples`` applies to both sides; ``min_candidate_samples``/``min_baseline_samples``
    override it per side (a 7-day baseline and a 10-minute canary need different minimums).
    Without any, only the empty case is caught here (``difference_interval`` has no bounds
    below 8 samples, which row 3 turns into Inconclusive).

    For ``max``, ``candidate_interval`` should be the candidate's own interval at the same
    confidence (the engine gives ``statistics.mean_interval`` of the candidate at the spec's
    confidence). Without it the change interval shifted by the baseline value is used, which
    is NOT a safe stand-in: a paired (Concurrent) difference cancels the load both tracks
    share, and with it the uncertainty of the candidate's level, so that interval can be far
    narrower than the candidate's own and pass a candidate whose level may be above the bound.

    ``improvement_min_reduction`` (a positive magnitude in the base unit, e.g. DESIGN's
    ``improvement.minP95Reduction``) is the smallest improvement reported as Improved.
    """
    n_c, n_b = interval.n_candidate, interval.n_baseline
    point = interval.point
    lo, hi = (
        (interval.lo, interval.hi) if interval.lo <= interval.hi else (interval.hi, interval.lo)
    )
    percent = relative_change(point, baseline_value)
    conf = f"{interval.confidence * 100:g} %"

    def result(
        verdict: MetricVerdict, reason: str, message: str, checks: tuple[RuleCheck, ...] = ()
    ) -> MetricJudgement:
        return MetricJudgement(
            verdict=verdict,
            reason=reason,
            message=message,
            breached=verdict is MetricVerdict.REGRESSED,
            delta=point,
            delta_percent=percent,
            ci_low=lo,
            ci_high=hi,
            confidence=interval.confidence,
            baseline_value=baseline_value,
            candidate_value=candidate_value,
            n_candidate=n_c,
            n_baseline=n_b,
            checks=checks,
        )

    # Rows 1-3.
    if n_c == 0 or n_b == 0:
        return result(
            MetricVerdict.NO_DATA,
            "NoData",
            f"no samples: candidate {n_c}, baseline {n_b}",
        )
    need_c = min_candidate_samples if min_candidate_samples is not None else (min_samples or 0)
    need_b = min_baseline_samples if min_baseline_samples is not None else (min_samples or 0)
    if n_c < need_c or n_b < need_b:
        return result(
            MetricVerdict.INCONCLUSIVE,
            "TooFewSamples",
            f"too few samples: candidate {n_c} (need {need_c}), baseline {n_b} (need {need_b})",
        )
    values_finite = math.isfinite(baseline_value) and math.isfinite(candidate_value)
    if not (math.isfinite(point) and math.isfinite(lo) and math.isfinite(hi) and values_finite):
        return result(
            MetricVerdict.INCONCLUSIVE,
            "IntervalUndefined",
            f"no {conf} interval of the change from candidate {n_c} and baseline {n_b} samples",
        )

    if not threshold.configured:
        return result(MetricVerdict.INCONCLUSIVE, "NoThreshold", "the threshold sets no limit")

    # Rows 4-7, one check per configured limit.
    checks: list[RuleCheck] = []
    directions: set[float] = set()
    for rule, direction, limit, allowed in _change_limits(
        threshold, baseline_value, candidate_value
    ):
        directions.add(direction)
        if allowed is None:
            checks.append(_check_from_zero(rule, direction, limit, baseline_value, lo, hi, unit))
            continue
        of_baseline = limit if rule.endswith("Percent") else None
        checks.append(
            _check_change_rule(rule, direction, allowed, point, lo, hi, unit, percent=of_baseline)
        )
    if threshold.max is not None:
        directions.add(1.0)
        borrowed = candidate_interval is None
        c_lo, c_hi = (
            sorted(candidate_interval)
            if candidate_interval is not None
            else (baseline_value + lo, baseline_value + hi)
        )
        if math.isfinite(c_lo) and math.isfinite(c_hi):
            checks.append(
                _check_bound_rule(threshold.max, candidate_value, c_lo, c_hi, unit, borrowed)
            )
        else:
            checks.append(
                RuleCheck(
                    "max",
                    MetricVerdict.INCONCLUSIVE,
                    "IntervalUndefined",
                    "no interval of the candidate's value",
                )
            )

    note = _estimate_note(point, candidate_value - baseline_value, unit)
    summary = (
        f"candidate {_v(candidate_value, unit)} vs baseline {_v(baseline_value, unit)}: "
        f"change {_d(point, unit)}{_percent(percent)}{note}, {conf} CI [{_d(lo, unit)}, "
        f"{_d(hi, unit)}], samples {n_c}/{n_b}"
    )
    frozen = tuple(checks)
    for wanted in (MetricVerdict.REGRESSED, MetricVerdict.INCONCLUSIVE):
        hits = [c for c in checks if c.verdict is wanted]
        if hits:
            details = "; ".join(c.message for c in hits)
            return result(wanted, hits[0].reason, f"{summary}; {details}", frozen)

    # Rows 8-9: only a metric with one bad direction has a meaningful "better".
    passed = "; ".join(c.message for c in checks)
    if len(directions) == 1:
        bad = directions.pop()
        improvement = -bad * point
        significant = max(bad * lo, bad * hi) < 0.0
        if significant and (
            improvement_min_reduction is None or improvement >= improvement_min_reduction
        ):
            return result(
                MetricVerdict.IMPROVED,
                "ImprovementSignificant",
                f"{summary}; improved by {_v(improvement, unit)} and the interval excludes 0",
                frozen,
            )
        if significant and improvement_min_reduction is not None:
            passed += (
                f"; improvement {_v(improvement, unit)} is significant but below the minimum "
                f"{_v(improvement_min_reduction, unit)}"
            )
    return result(MetricVerdict.PASS, "WithinThreshold", f"{summary}; {passed}", frozen)


@dataclass(frozen=True, slots=True)
class SustainState:
    breach_since: datetime | None
    sustained: bool
    # The first evaluation since the breach was last seen that neither showed nor refuted it.
    unconfirmed_since: datetime | None = None


def apply_sustain(
    previous_breach_since: datetime | None,
    breached: bool,
    now: datetime,
    sustain_for: timedelta,
    *,
    held_since: datetime | None = None,
    refuted: bool = True,
    previous_unconfirmed_since: datetime | None = None,
    lapse_after: timedelta | None = None,
) -> SustainState:
    """Advance the sustain window by one evaluation.

    ``previous_breach_since`` comes from status (``breachSince``), so a restart resumes the
    window. ``held_since`` is when the judged data began to show the breach (the first sample
    the verdict rests on); a new breach starts there instead of at ``now``. An evaluation
    without a breach clears the window only when it ``refuted`` the breach (Pass, Improved);
    otherwise the window is kept, not sustained, and ``unconfirmed_since`` says since when
    (``previous_unconfirmed_since``, from status, or ``now``). A breach unconfirmed for longer
    than ``lapse_after`` (default ``sustain_for``) has lapsed: it is dropped, and a breach seen
    after it starts anew.
    A breach stamped in the future (clock skew between replicas, or data stamped ahead) is
    pulled back to ``now``. Datetimes must be timezone-aware and comparable.
    """
    if sustain_for < timedelta(0):
        raise ValueError(f"sustain_for must not be negative, got {sustain_for}")
    limit = sustain_for if lapse_after is None else lapse_after
    lapsed = previous_unconfirmed_since is not None and now - previous_unconfirmed_since > limit
    previous = None if lapsed else previous_breach_since
    if not breached:
        if refuted or previous is None:
            return SustainState(breach_since=None, sustained=False)
        unconfirmed = (
            now if previous_unconfirmed_since is None else min(previous_unconfirmed_since, now)
        )
        return SustainState(
            breach_since=min(previous, now), sustained=False, unconfirmed_since=unconfirmed
        )
    start = previous if previous is not None else held_since
    since = now if start is None else min(start, now)
    return SustainState(breach_since=since, sustained=now - since >= sustain_for)


@dataclass(frozen=True, slots=True)
class SustainedJudgement:
    """A metric's judgement together with its sustain state, ready for ``overall_verdict``."""

    name: str
    judgement: MetricJudgement
    sustain: SustainState
    # The metric judged (several statistics and comparisons of one metric share it); the
    # name stands in when not given.
    metric: str = ""

    @property
    def failed(self) -> bool:
        return self.judgement.verdict is MetricVerdict.REGRESSED and self.sustain.sustained

    @property
    def pending(self) -> bool:
        return self.judgement.verdict is MetricVerdict.REGRESSED and not self.sustain.sustained


def with_sustain(
    name: str,
    judgement: MetricJudgement,
    previous_breach_since: datetime | None,
    now: datetime,
    sustain_for: timedelta,
    *,
    held_since: datetime | None = None,
    previous_unconfirmed_since: datetime | None = None,
    metric: str = "",
    lapse_after: timedelta | None = None,
) -> SustainedJudgement:
    refuted = judgement.verdict in (MetricVerdict.PASS, MetricVerdict.IMPROVED)
    sustain = apply_sustain(
        previous_breach_since,
        judgement.breached,
        now,
        sustain_for,
        held_since=held_since,
        refuted=refuted,
        previous_unconfirmed_since=previous_unconfirmed_since,
        lapse_after=lapse_after,
    )
    return SustainedJudgement(name, judgement, sustain, metric)


@dataclass(frozen=True, slots=True)
class OverallVerdict:
    verdict: Verdict
    reason: str
    message: str


def _names(items: Sequence[SustainedJudgement]) -> str:
    return ", ".join(item.name for item in items)


_OPEN: Final = frozenset({MetricVerdict.NO_DATA, MetricVerdict.INCONCLUSIVE})


def overall_verdict(metrics: Sequence[tuple[SustainedJudgement, bool]]) -> OverallVerdict:
    """Combine metric verdicts; the bool is ``critical`` (see the module's overall table)."""
    if not metrics:
        return OverallVerdict(Verdict.INCONCLUSIVE, "NoMetrics", "no metric was judged")
    critical = [m for m, is_critical in metrics if is_critical]
    others = [m for m, is_critical in metrics if not is_critical]

    notes: list[str] = []
    other_failed = [m for m in others if m.failed]
    other_pending = [m for m in others if m.pending]
    if other_failed:
        notes.append(f"non-critical regressions (not gating): {_names(other_failed)}")
    if other_pending:
        notes.append(f"non-critical breaches not yet sustained: {_names(other_pending)}")
    tail = "".join(f"; {note}" for note in notes)

    def first_message(items: Sequence[SustainedJudgement]) -> str:
        head = items[0]
        more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
        return f"{head.name}: {head.judgement.message}{more}"

    failed = [m for m in critical if m.failed]
    if failed:
        return OverallVerdict(
            Verdict.FAIL,
            "RegressionDetected",
            f"regressed for at least sustainFor: {first_message(failed)}{tail}",
        )
    pending = [m for m in critical if m.pending]
    if pending:
        held = [
            f"{m.name} since {format_time(m.sustain.breach_since)}"
            for m in pending
            if m.sustain.breach_since is not None
        ]
        return OverallVerdict(
            Verdict.INCONCLUSIVE,
            "BreachNotSustained",
            f"breach not yet held for sustainFor ({', '.join(held)}): "
            f"{first_message(pending)}{tail}",
        )
    no_data = [m for m in critical if m.judgement.verdict is MetricVerdict.NO_DATA]
    if no_data:
        return OverallVerdict(Verdict.INCONCLUSIVE, "NoData", f"{first_message(no_data)}{tail}")
    open_ = [m for m in critical if m.judgement.verdict is MetricVerdict.INCONCLUSIVE]
    if open_:
        return OverallVerdict(
            Verdict.INCONCLUSIVE, "MetricInconclusive", f"{first_message(open_)}{tail}"
        )
    concluded = [m for m in others if m.judgement.verdict not in _OPEN]
    if not critical and not concluded:
        no_data = [m for m in others if m.judgement.verdict is MetricVerdict.NO_DATA]
        open_ = no_data or others
        return OverallVerdict(
            Verdict.INCONCLUSIVE,
            "NoData" if no_data else "MetricInconclusive",
            f"no metric is critical and none concluded: {first_message(open_)}{tail}",
        )
    improved = [m for m in critical if m.judgement.verdict is MetricVerdict.IMPROVED]
    # Metrics, not judgements: one latency judged on p95 and mean, or under comparison Both,
    # is one metric.
    if critical:
        count = len({m.metric or m.name for m in critical})
        message = (
            f"all {count} critical metrics within thresholds"
            if count > 1
            else "the critical metric is within thresholds"
        )
    else:
        count = len({m.metric or m.name for m in others})
        message = f"no metric is critical; {count} non-critical reported"
    if improved:
        message += f"; improved: {_names(improved)}"
    return OverallVerdict(Verdict.PASS, "WithinThresholds", message + tail)


@dataclass(frozen=True, slots=True)
class StageStats:
    """One stage's latency; None where there are no samples (or no step to share over).

    ``n``, ``mean``, ``p95`` and ``p99`` are over the stage's own steps; ``share`` is over the
    breakdown's ``steps`` (see StageBreakdown); ``missing`` counts the total's steps at which
    this stage has no value.
    """

    name: str
    n: int
    mean: float | None
    p95: float | None
    p99: float | None
    share: float | None
    missing: int = 0


@dataclass(frozen=True, slots=True)
class StageBreakdown:
    """Per-stage decomposition of a latency.

    Shares are paired by step: over the ``steps`` steps at which the total and every stage
    with any sample have a value (out of the total's ``total_steps``), each stage's mean over
    the total's mean. A stage reported in only part of the window (say only while it was
    slow) is thus compared with the total at the same steps, not with the whole window's.
    ``attributed_share`` is the sum of the shares (above 1 when stages overlap, e.g. run in
    parallel); ``unattributed_share`` is ``1 - attributed_share`` clipped at 0, and
    ``unattributed_flag`` is set above 10 %. Without a shared step with a positive total
    mean the shares and the unattributed share are None and nothing is flagged.
    """

    stages: Mapping[str, StageStats] = field(default_factory=dict)
    total_mean: float | None = None
    total_p95: float | None = None
    total_p99: float | None = None
    attributed_share: float | None = None
    unattributed_share: float | None = None
    unattributed_flag: bool = False
    steps: int = 0
    total_steps: int = 0


def _describe(
    values: npt.NDArray[np.float64],
) -> tuple[float | None, float | None, float | None]:
    if values.size == 0:
        return None, None, None
    p95, p99 = (float(q) for q in np.percentile(values, [95.0, 99.0]))
    return float(values.mean()), p95, p99


def _by_step(samples: npt.ArrayLike, steps: npt.ArrayLike | None) -> dict[float, float]:
    """Finite samples keyed by their step (the sample's position when steps is None)."""
    values = np.asarray(samples, dtype=np.float64).ravel()
    keys = (
        np.arange(values.size, dtype=np.float64)
        if steps is None
        else np.asarray(steps, dtype=np.float64).ravel()
    )
    if keys.size != values.size:
        raise ValueError(f"{keys.size} steps for {values.size} samples")
    keep = np.isfinite(values)
    return dict(zip(keys[keep].tolist(), values[keep].tolist(), strict=True))


def decompose_stages(
    stage_samples: Mapping[str, npt.ArrayLike],
    total_samples: npt.ArrayLike,
    *,
    stage_steps: Mapping[str, npt.ArrayLike] | None = None,
    total_steps: npt.ArrayLike | None = None,
) -> StageBreakdown:
    """Decompose a latency into stages: mean, p95, p99 and share of the total mean per stage.

    Share is stage mean / total mean over the same steps (see StageBreakdown): means add up
    along a request path, quantiles do not, so only the means are compared with the total.
    ``stage_steps`` and ``total_steps`` give each sample's step (e.g. its timestamp); without
    them a sample's position is its step. Non-finite samples are dropped.
    """
    if (stage_steps is None) != (total_steps is None):
        raise ValueError("give the steps of both the stages and the total, or of neither")
    total = _by_step(total_samples, total_steps)
    total_mean, total_p95, total_p99 = _describe(np.fromiter(total.values(), np.float64))
    by_stage = {
        name: _by_step(values, None if stage_steps is None else stage_steps[name])
        for name, values in stage_samples.items()
    }
    shared = set(total).intersection(*(s for s in by_stage.values() if s))
    steps = sorted(shared)
    shared_total = float(np.mean([total[k] for k in steps])) if steps else 0.0
    usable = shared_total > 0.0
    stages: dict[str, StageStats] = {}
    shares: list[float] = []
    for name in sorted(by_stage):
        own = by_stage[name]
        mean, p95, p99 = _describe(np.fromiter(own.values(), np.float64))
        share = None
        if own and usable:
            share = float(np.mean([own[k] for k in steps])) / shared_total
            shares.append(share)
        missing = sum(1 for k in total if k not in own)
        stages[name] = StageStats(name, len(own), mean, p95, p99, share, missing)
    if not usable:
        return StageBreakdown(
            stages, total_mean, total_p95, total_p99, steps=len(steps), total_steps=len(total)
        )
    attributed = float(sum(shares))
    unattributed = max(0.0, 1.0 - attributed)
    return StageBreakdown(
        stages=stages,
        total_mean=total_mean,
        total_p95=total_p95,
        total_p99=total_p99,
        attributed_share=attributed,
        unattributed_share=unattributed,
        unattributed_flag=unattributed > UNATTRIBUTED_FLAG_SHARE,
        steps=len(steps),
        total_steps=len(total),
    )
