"""When a judged window holds ±Inf: a value no mean, interval or limit can take.

A `Query` metric is the user's PromQL, and `a / b` answers +Inf at a step where b is 0 and
a is above it (-Inf below). NaN is "no value at this step" and is left out of a window as it
always was; an infinity is a value, and leaving it out judged the steps left: a canary whose
query read +Inf at 7 of 21 steps passed `maxIncrease` on the other 14.

An infinity is still a direction, and a direction settles one verdict (`infinity_ruling`):
with infinities on the candidate's side only, all of one sign, and that sign the bad one for
a limit the finite steps already breach (+Inf for `maxIncrease`, `maxIncreasePercent` and
`max`; -Inf for `maxDecrease` and `maxDecreasePercent`), the breach stands: counting those
steps could only take the candidate further past the limit. On the reference's side (stable
track or baseline) they leave no reference to compare with, so every limit judged on a change
from it is unsettled. `max` is not one: it bounds the candidate's own level, which the
reference does not enter, so the reference's infinities leave its result as it is (a Pass
stands on it only when it is the statistic's only limit: a Pass needs every limit judged).
Nothing else is settled: a Pass on the finite steps says nothing of a window whose mean is
infinite, and infinities of both signs say nothing. The engine makes what is not settled
NoData, reason `NonFiniteValues`; the histogram's floors follow the same shape
(analysis/histogram.py).

Pure: arrays in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perfguard.analysis.judgement import MetricJudgement, MetricVerdict, RuleCheck

# The sign of an infinity that takes the candidate further past each limit: every limit's
# breach points one way (judgement.Threshold: `max*Increase*` and `max` up, `max*Decrease*`
# down).
BAD_SIGN = {
    "maxIncrease": 1.0,
    "maxIncreasePercent": 1.0,
    "max": 1.0,
    "maxDecrease": -1.0,
    "maxDecreasePercent": -1.0,
}

# The limits judged on the candidate's own level (its own interval), not on a change from the
# reference: the reference's infinities do not enter them (judgement.judge_metric).
CANDIDATE_ONLY = frozenset({"max"})


@dataclass(frozen=True)
class Infinities:
    """The steps of one side whose value is ±Inf, among those with a value (NaN is none)."""

    positive: int  # steps at +Inf
    negative: int  # steps at -Inf
    of: int  # steps with a value, finite or not

    @property
    def steps(self) -> int:
        return self.positive + self.negative

    @property
    def sign(self) -> float | None:
        """+1.0 when every infinity is +Inf, -1.0 when every one is -Inf, None when both."""
        if self.negative == 0:
            return 1.0
        if self.positive == 0:
            return -1.0
        return None

    def describe(self) -> str:
        """Which infinities, at how many of the steps: `+Inf at 7 of 21 steps`,
        `+Inf at 2 and -Inf at 1 of 21 steps`."""
        parts = [
            f"{sign} at {count}"
            for sign, count in (("+Inf", self.positive), ("-Inf", self.negative))
            if count
        ]
        return f"{' and '.join(parts)} of {self.of} steps"


def infinities(values: npt.ArrayLike) -> Infinities | None:
    """The ±Inf steps among `values` (NaN steps, without a value, are not counted in `of`);
    None when none is infinite."""
    v = np.asarray(values, dtype=float)
    present = ~np.isnan(v)
    positive = int(np.count_nonzero(np.isposinf(v)))
    negative = int(np.count_nonzero(np.isneginf(v)))
    if positive + negative == 0:
        return None
    return Infinities(positive, negative, int(np.count_nonzero(present)))


@dataclass(frozen=True)
class InfinityRuling:
    """Whether a judgement made on the finite steps stands though some steps were ±Inf
    (`stands`), and on which limits (`on`: a Regressed's breached ones that hold, or every
    limit of another verdict; empty when it does not stand). `as_pass`: an Improved stands as
    a Pass only (an improvement is a change from the reference, which the infinities on its
    side leave without a level)."""

    stands: bool
    on: tuple[str, ...] = ()
    as_pass: bool = False


def limit_stands(
    rule: str,
    verdict: MetricVerdict,
    *,
    candidate: Infinities | None,
    reference: Infinities | None,
) -> bool:
    """Whether one limit's result, read on the finite steps, holds with the ±Inf steps of the
    `candidate`'s side, the `reference`'s (stable track or baseline), or both, counted.

    - No infinities: it holds.
    - `max` (CANDIDATE_ONLY) is judged on the candidate's own level: the reference's
      infinities do not enter it, so with none on the candidate's side its result (Pass,
      Regressed or Inconclusive) holds.
    - Any other limit, with infinities on the reference's side: nothing holds (no reference
      value to compare with).
    - The candidate's infinities: a breach holds when every one has the sign that takes the
      candidate further past that limit (BAD_SIGN); a Pass, an Inconclusive, or a breach the
      infinities pull against, does not.
    """
    if rule in CANDIDATE_ONLY:
        reference = None
    if candidate is None and reference is None:
        return True
    if reference is not None or candidate is None:
        return False
    bad = BAD_SIGN.get(rule)
    return verdict is MetricVerdict.REGRESSED and bad is not None and candidate.sign == bad


def infinity_ruling(
    judgement: MetricJudgement,
    *,
    candidate: Infinities | None,
    reference: Infinities | None,
) -> InfinityRuling:
    """Whether a statistic's `judgement`, made on the finite steps, stands with the ±Inf
    steps of the `candidate`'s side and the `reference`'s (see `limit_stands` for one limit).

    - A Regressed stands on its breached limits that hold (one sound breach is a breach,
      whatever the others read).
    - A Pass, Improved or Inconclusive stands when every limit's result holds: with the
      reference's infinities only, a statistic whose only limit is `max`. An Improved then
      stands as a Pass (`as_pass`): its improvement is a change from the reference.
    - A judgement without limit results (too few finite steps, no interval) does not: the
      infinite steps were values, and the window with them is not what was judged.
    """
    if candidate is None and reference is None:
        return InfinityRuling(True, tuple(c.rule for c in judgement.checks))
    if not judgement.checks:
        return InfinityRuling(False)

    def holds(c: RuleCheck) -> bool:
        return limit_stands(c.rule, c.verdict, candidate=candidate, reference=reference)

    if judgement.verdict is MetricVerdict.REGRESSED:
        on = tuple(
            c.rule for c in judgement.checks if c.verdict is MetricVerdict.REGRESSED and holds(c)
        )
        return InfinityRuling(bool(on), on)
    if all(holds(c) for c in judgement.checks):
        return InfinityRuling(
            True,
            tuple(c.rule for c in judgement.checks),
            as_pass=judgement.verdict is MetricVerdict.IMPROVED,
        )
    return InfinityRuling(False)
