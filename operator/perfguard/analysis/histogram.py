"""When a histogram cannot tell a quantile: observations above its highest finite bucket.

`histogram_quantile(q, ...)` finds the bucket holding the q-th observation. When that is
the +Inf bucket (more than 1 - q of the observations are above the highest finite bound),
Prometheus answers the highest finite bound: a number that looks like a latency, and is
only a floor under the quantile. A canary whose p95 went from 0.85 s to 3 s, with buckets
up to 1 s, read as 0.75 s against 1.0 s; both tracks above the top bucket read as equal.

A floor is still a bound, and a bound settles some verdicts (`floor_ruling`): with floors
on the candidate's side only, the change read (candidate - reference, and its percent) is
at most the true change, so a regression it shows is real and anything else is not known;
with floors on the reference's side only, the change read is at least the true one, so a
Pass or an improvement it shows is real and a regression is not known. Floors on both
sides, or a limit on a decrease, settle nothing. The engine makes what is not settled
NoData, reason `HistogramSaturated`.

Pure: arrays in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perfguard.analysis.judgement import MetricJudgement, MetricVerdict

# Shares come from rates, 1 - a / b in floating point: a share at exactly 1 - q is not a
# saturated step (Prometheus interpolates to the bound then, which is the quantile).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Saturation:
    """Steps whose quantile is the highest finite bucket's bound, not the quantile."""

    steps: int  # saturated steps
    of: int  # steps with both a share and a quantile
    worst_share: float  # the largest share above the bucket at a saturated step
    bound: float  # the highest finite bucket's bound: the quantile read at those steps


def saturated(shares: npt.ArrayLike, quantile: float) -> npt.NDArray[np.bool_]:
    """Per step: whether more than 1 - `quantile` of the observations are above the
    highest finite bucket (NaN shares, steps without traffic, are not)."""
    s = np.asarray(shares, dtype=float)
    with np.errstate(invalid="ignore"):
        above: npt.NDArray[np.bool_] = np.isfinite(s) & (s > (1.0 - quantile) + TOLERANCE)
    return above


def saturation(shares: npt.ArrayLike, values: npt.ArrayLike, quantile: float) -> Saturation | None:
    """The saturated steps among aligned (share, quantile value) pairs; None when none is.

    `values` are what histogram_quantile answered at the same steps: at a saturated step
    that is the highest finite bound, so the largest of them names the bucket."""
    s = np.asarray(shares, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.shape != v.shape:
        raise ValueError("shares and values must be aligned, step by step")
    present = np.isfinite(s) & np.isfinite(v)
    hit = saturated(s, quantile) & present
    if not hit.any():
        return None
    return Saturation(
        steps=int(hit.sum()),
        of=int(present.sum()),
        worst_share=float(s[hit].max()),
        bound=float(v[hit].max()),
    )


# The limits on a latency quantile, by what a floor does to their result (see floor_ruling).
INCREASE_LIMITS = frozenset({"maxIncrease", "maxIncreasePercent"})
BOUND_LIMIT = "max"


@dataclass(frozen=True)
class FloorRuling:
    """Whether a judgement made on floors stands (`stands`), and on which of its limits'
    results (`on`: the limits whose own result the floors cannot have changed, for a
    Regressed the breached ones only; empty when it does not stand)."""

    stands: bool
    on: tuple[str, ...] = ()


def limit_stands(rule: str, verdict: MetricVerdict, *, candidate: bool, reference: bool) -> bool:
    """Whether one limit's result holds though the quantile read is a floor at some judged
    steps of the `candidate`'s side, the `reference`'s (stable track or baseline), or both.

    - `maxIncrease`, `maxIncreasePercent`: floors on the candidate's side only make the
      change read a lower bound of the true one (the candidate is at least what it reads,
      the reference is what it reads; the percent too, the reference being the same), so a
      breach (Regressed) holds and nothing else does. Floors on the reference's side only
      make it an upper bound (the reference is at least what it reads; (c - s) / s falls as
      s rises), so a Pass holds and a breach does not. Floors on both sides: nothing holds.
    - `max` bounds the candidate's own value: with floors on the candidate's side a breach
      holds and nothing else does; the reference's floors do not enter it.
    - `maxDecrease`, `maxDecreasePercent`, and any other limit: nothing holds on a floor.
    """
    if not (candidate or reference):
        return True
    if rule == BOUND_LIMIT:
        return not candidate or verdict is MetricVerdict.REGRESSED
    if rule in INCREASE_LIMITS:
        if candidate and reference:
            return False
        if candidate:
            return verdict is MetricVerdict.REGRESSED
        return verdict is MetricVerdict.PASS
    return False


def floor_ruling(judgement: MetricJudgement, *, candidate: bool, reference: bool) -> FloorRuling:
    """Whether a statistic's `judgement`, made on quantiles that are floors at some judged
    steps of the `candidate`'s side, the `reference`'s, or both, stands (see
    `limit_stands` for one limit).

    - Regressed stands when one of its breached limits holds on the floors: one sound
      breach is a breach, whatever the other limits read.
    - Pass, Improved and Inconclusive stand when every limit's result holds: with floors on
      the reference's side only, a Pass on every increase limit (an Improved too: the true
      change is at most the one read, so further below 0).
    - A judgement without limit results (no samples, too few, no interval) is not about the
      figure: it stands.
    """
    if not (candidate or reference) or not judgement.checks:
        return FloorRuling(True, tuple(c.rule for c in judgement.checks))
    sound = [
        c.rule
        for c in judgement.checks
        if limit_stands(c.rule, c.verdict, candidate=candidate, reference=reference)
    ]
    if judgement.verdict is MetricVerdict.REGRESSED:
        breached = tuple(
            c.rule
            for c in judgement.checks
            if c.verdict is MetricVerdict.REGRESSED and c.rule in sound
        )
        return FloorRuling(bool(breached), breached)
    if len(sound) == len(judgement.checks):
        return FloorRuling(True, tuple(sound))
    return FloorRuling(False)
