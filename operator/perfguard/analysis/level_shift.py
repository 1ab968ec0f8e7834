"""Where, inside one judged window, a series changed level: one change point, tested.

A canary window that holds the old level and then the new one is not a sample from one
population. Averaged as a whole it hides the regression (half a window of +8 ms reads as
+4 ms), and the autocorrelation fit sees the step as a near random walk, so its interval
either balloons or, after winsorising clips the new level, becomes too narrow. PerfBaseline
therefore asks first whether the paired difference (candidate - stable, step by step) moved
to a new level inside the window, and if it did, judges only the samples since then: the
state the canary is in now, and how long it has been in it.

The test is the standardised two-sample statistic of "mean after k - mean before k" at every
split, with the noise scale from the two-segment fit widened for lag-1 autocorrelation, and
a Bonferroni bound over the splits tried (conservative: a window without a shift is declared
shifted in about ``alpha`` of cases when the noise is independent; strong autocorrelation
in a short window raises that, see tests/unit/test_level_shift.py). Values are first clipped
to 3 robust SDs around the median of their 5 neighbours, so a one- or two-sample spike is
not read as a new level while a new level that fills most of the window is kept. Pure:
arrays in, a frozen result out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from perfguard.analysis.statistics import finite_values

FloatArray = npt.NDArray[np.float64]

__all__ = ["LevelShift", "find_level_shift"]

# Family-wise false-alarm bound of the test over all splits of one window.
DEFAULT_ALPHA: Final = 0.01

# Fewest samples on either side of a split: fewer cannot tell a new level from a spike.
MIN_SEGMENT: Final = 3

# Clip at the median +/- this many robust SDs before testing (as the judge's winsorising).
_CLIP_ROBUST_SDS: Final = 3.0

# Samples in the local median that spikes are clipped towards.
_LOCAL_WIDTH: Final = 5

# An AR(1) fit on a short residual series is noisy; beyond this it would excuse any step.
_RHO_MAX: Final = 0.9


@dataclass(frozen=True, slots=True)
class LevelShift:
    """A change of level at sample ``index`` (the first sample of the new level).

    ``shift`` is mean(after) - mean(before) of the values as given (the test itself runs on
    the clipped series), ``statistic`` the
    autocorrelation-adjusted standardised shift and ``p_value`` its Bonferroni-bounded
    two-sided p-value over the ``splits`` tried. ``clipped_shift`` is the shift the test
    measured (on the clipped series; one outlier moves ``shift`` but not it),
    ``standard_error`` its autocorrelation-widened standard error and ``dof`` the degrees of
    freedom of its Student t (``statistic`` = ``clipped_shift / standard_error``).
    """

    index: int
    before: int
    after: int
    shift: float
    statistic: float
    p_value: float
    splits: int
    clipped_shift: float
    standard_error: float
    dof: float


def _clip(x: FloatArray) -> FloatArray:
    """Pull spikes back to a local level: the median of the 5 samples around each one
    (the window kept inside the series), +/- 3 robust SDs of the noise.

    The noise scale comes from first differences (a single change of level moves only one
    of them), and the centre is local, so a new level that fills most of the window is kept
    while one or two extreme samples are clipped.
    """
    n = int(x.size)
    width = min(_LOCAL_WIDTH, n)
    spread = 1.4826 * float(np.median(np.abs(np.diff(x)))) / math.sqrt(2.0)
    if not spread > 0.0:
        spread = 1.4826 * float(np.median(np.abs(x - np.median(x))))
    if not spread > 0.0:
        return x
    starts = np.clip(np.arange(n) - width // 2, 0, n - width)
    local = np.median(x[starts[:, None] + np.arange(width)[None, :]], axis=1)
    bound = _CLIP_ROBUST_SDS * spread
    return np.asarray(np.clip(x, local - bound, local + bound), dtype=np.float64)


def find_level_shift(
    values: npt.ArrayLike, *, alpha: float = DEFAULT_ALPHA, min_segment: int = MIN_SEGMENT
) -> LevelShift | None:
    """The most significant single change of level in ``values``, or None if none is.

    Non-finite values are dropped (the caller keeps timestamps aligned). Needs at least
    ``2 * min_segment + 2`` values; a constant series has no shift.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if min_segment < 2:
        raise ValueError(f"min_segment must be at least 2, got {min_segment}")
    x = finite_values(values)
    n = int(x.size)
    if n < 2 * min_segment + 2:
        return None
    raw, x = x, _clip(x)
    splits = np.arange(min_segment, n - min_segment + 1)
    prefix = np.concatenate([[0.0], np.cumsum(x)])
    prefix_sq = np.concatenate([[0.0], np.cumsum(x * x)])
    k = splits.astype(np.float64)
    sum_before, sum_after = prefix[splits], prefix[n] - prefix[splits]
    sq_before, sq_after = prefix_sq[splits], prefix_sq[n] - prefix_sq[splits]
    mean_before, mean_after = sum_before / k, sum_after / (n - k)
    # Residual sum of squares of the two-segment fit at each split.
    rss = (sq_before - k * mean_before**2) + (sq_after - (n - k) * mean_after**2)
    rss = np.maximum(rss, 0.0)
    if not float(rss.max()) > 0.0:
        return None
    scale = np.sqrt(rss / (n - 2) * (1.0 / k + 1.0 / (n - k)))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(scale > 0.0, (mean_after - mean_before) / scale, 0.0)
    best = int(np.argmax(np.abs(t)))
    index = int(splits[best])
    # Widen for autocorrelation of what the two-segment fit leaves over.
    residuals = np.concatenate([x[:index] - mean_before[best], x[index:] - mean_after[best]])
    denominator = float(residuals @ residuals)
    rho = float(residuals[1:] @ residuals[:-1]) / denominator if denominator > 0 else 0.0
    # The lag-1 estimate is biased low on short series (by about (1 + 3 rho) / n, with two
    # fitted means); undo it as statistics._bias_corrected_rho does, then bound it.
    rho = min(max((n * rho + 2.0) / max(n - 4, 1), 0.0), _RHO_MAX)
    inflation = (1.0 + rho) / (1.0 - rho)
    statistic = float(t[best]) / math.sqrt(inflation)
    dof = max(n / inflation - 2.0, 1.0)
    p_value = min(1.0, 2.0 * float(special.stdtr(dof, -abs(statistic))) * int(splits.size))
    if p_value >= alpha:
        return None
    return LevelShift(
        index=index,
        before=index,
        after=n - index,
        shift=float(raw[index:].mean() - raw[:index].mean()),
        statistic=statistic,
        p_value=p_value,
        splits=int(splits.size),
        clipped_shift=float(mean_after[best] - mean_before[best]),
        standard_error=float(scale[best]) * math.sqrt(inflation),
        dof=dof,
    )
