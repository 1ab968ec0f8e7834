"""Where, inside one judged window, a series changed level: one change point, tested.

A canary window that holds the old level and then the new one is not a sample from one
population. Averaged as a whole it hides the regression (half a window of +8 ms reads as
+4 ms), and the autocorrelation fit sees the step as a near random walk, so its interval
either balloons or, after winsorising clips the new level, becomes too narrow. PerfBaseline
therefore asks first whether the paired difference (candidate - stable, step by step) moved
to a new level inside the window, and if it did, judges only the samples since then: the
state the canary is in now, and how long it has been in it.

Two tests share ``alpha`` (half each, see find_level_shift). The mean-shift test is the
standardised two-sample statistic of "mean after k - mean before k" at every split, with the
noise scale from the two-segment fit widened for lag-1 autocorrelation, and a Bonferroni
bound over the splits tried (conservative: a window without a shift is declared shifted in
about ``alpha`` of cases when the noise is independent; strong autocorrelation in a short
window raises that, see tests/unit/test_level_shift.py). Its values are first clipped to 3
robust SDs around the median of their 5 neighbours, so a one- or two-sample spike is not
read as a new level while a new level that fills most of the window is kept. The onset test
(`_onset_test`) looks for a change that arrives within three steps in the prewhitened
series, where strong autocorrelation costs it little; bursts of up to 4 samples are clipped
before it. Pure: arrays in, a frozen result out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from perfguard.analysis.statistics import bias_corrected_rho, finite_values

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

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

# Samples in the local median the onset test clips towards: bursts of up to 4 samples (a
# spike of two steps seen through a rate window of two more) are pulled back, so that the
# test, which weighs a sharp start heavily, does not read a burst as a new level. A new
# level needs 5 samples to be seen by it.
_ONSET_LOCAL_WIDTH: Final = 9

# Steps over which the onset test lets a new level arrive: at once, or ramping over two or
# three steps (a quantile over a rate window longer than the step ramps up like this).
_RAMPS: Final = (1, 2, 3)


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


def _clip(x: FloatArray, local_width: int = _LOCAL_WIDTH) -> FloatArray:
    """Pull spikes back to a local level: the median of the `local_width` (5) samples around
    each one (the window kept inside the series), +/- 3 robust SDs of the noise.

    The noise scale comes from first differences (a single change of level moves only one
    of them), and the centre is local, so a new level that fills most of the window is kept
    while one or two extreme samples are clipped.
    """
    n = int(x.size)
    width = min(local_width, n)
    spread = 1.4826 * float(np.median(np.abs(np.diff(x)))) / math.sqrt(2.0)
    if not spread > 0.0:
        spread = 1.4826 * float(np.median(np.abs(x - np.median(x))))
    if not spread > 0.0:
        return x
    starts = np.clip(np.arange(n) - width // 2, 0, n - width)
    local = np.median(x[starts[:, None] + np.arange(width)[None, :]], axis=1)
    bound = _CLIP_ROBUST_SDS * spread
    return np.asarray(np.clip(x, local - bound, local + bound), dtype=np.float64)


def _widening(x: FloatArray, index: int, before: float, after: float) -> tuple[float, float]:
    """AR(1) variance inflation and degrees of freedom for the two-segment fit split at
    ``index`` with segment means ``before`` and ``after``: from the lag-1 autocorrelation
    of what the fit leaves over."""
    n = int(x.size)
    residuals = np.concatenate([x[:index] - before, x[index:] - after])
    denominator = float(residuals @ residuals)
    rho = float(residuals[1:] @ residuals[:-1]) / denominator if denominator > 0 else 0.0
    # The lag-1 estimate is biased low on short series (by about (1 + 3 rho) / n, with two
    # fitted means); undo it as statistics.bias_corrected_rho does, then bound it.
    rho = min(max((n * rho + 2.0) / max(n - 4, 1), 0.0), _RHO_MAX)
    inflation = (1.0 + rho) / (1.0 - rho)
    return inflation, max(n / inflation - 2.0, 1.0)


@dataclass(frozen=True, slots=True)
class _Onset:
    p_value: float  # Bonferroni-bounded over every start and ramp tried
    split: int
    change: float  # the change of level the regression estimates
    standard_error: float
    dof: float


def _onset_test(x: FloatArray, splits: IntArray) -> _Onset:
    """The sharpest change of level, tested: the onset test.

    The series is prewhitened with the AR(1) coefficient of the stationary model (one mean,
    ``statistics.bias_corrected_rho``, floored at 0; Prais-Winsten, so the first value is
    kept) and regressed on an intercept and one change of level that arrives over 1, 2 or 3
    steps (`_RAMPS`) from each start. In the prewhitened series such a change is a pulse of
    one to three values followed by (1 - rho) of the change, so a new level that arrives
    within a few steps stands out against the innovations, however strongly the levels
    wander; a slow drift does not. The coefficient comes from the model without a change,
    so that in stationary noise it is not underestimated (the best split's residuals
    would absorb part of the wander); a real change only raises it, which costs this test
    little. The statistic is the change's Student t with n - 2 degrees of freedom; the
    p-value is bounded over every start and ramp tried. The split is the first sample at
    least half way up the ramp; the change and its standard error are the regression's.
    """
    n = int(x.size)
    rho = max(float(bias_corrected_rho(x)), 0.0)
    head = math.sqrt(1.0 - rho * rho)
    whitened = np.empty(n)
    whitened[0] = head * x[0]
    whitened[1:] = x[1:] - rho * x[:-1]
    intercept = np.full(n, 1.0 - rho)
    intercept[0] = head
    norm = float(intercept @ intercept)
    residual = whitened - intercept * float(intercept @ whitened) / norm
    total = float(residual @ residual)
    if not total > 0.0:
        return _Onset(1.0, int(splits[0]), 0.0, math.inf, float(n - 2))
    # tail[j]: the sum of the residual series from j on.
    tail = np.concatenate([np.cumsum(residual[::-1])[::-1], [0.0]])
    best_z, best_split, best_change, best_se, tried = 0.0, int(splits[0]), 0.0, math.inf, 0
    for ramp in _RAMPS:
        level = np.arange(1, ramp + 1, dtype=np.float64) / ramp
        pulse = level - rho * np.concatenate([[0.0], level[:-1]])
        halfway = (ramp - 1) // 2
        starts = splits - halfway
        starts = starts[starts + ramp <= n]
        if not starts.size:
            continue
        tried += int(starts.size)
        rest = (n - starts - ramp).astype(np.float64)
        fit = residual[starts[:, None] + np.arange(ramp)[None, :]] @ pulse
        fit += (1.0 - rho) * tail[starts + ramp]
        # The change's regressor with the intercept projected out: its squared norm.
        crossed = (1.0 - rho) * float(pulse.sum()) + rest * (1.0 - rho) ** 2
        energy = float(pulse @ pulse) + rest * (1.0 - rho) ** 2 - crossed**2 / norm
        rss = np.maximum(total - fit**2 / energy, total * 1e-12)
        se = np.sqrt(rss / (n - 2) / energy)
        z = fit / energy / se
        top = int(np.argmax(np.abs(z)))
        if abs(float(z[top])) > abs(best_z):
            best_z, best_split = float(z[top]), int(starts[top] + halfway)
            best_change, best_se = float(fit[top] / energy[top]), float(se[top])
    p_value = min(1.0, 2.0 * float(special.stdtr(n - 2, -abs(best_z))) * max(tried, 1))
    return _Onset(p_value, best_split, best_change, best_se, float(n - 2))


def find_level_shift(
    values: npt.ArrayLike, *, alpha: float = DEFAULT_ALPHA, min_segment: int = MIN_SEGMENT
) -> LevelShift | None:
    """The most significant single change of level in ``values``, or None if none is.

    Two tests, each at ``alpha / 2`` (so the pair keeps ``alpha``): the mean-shift test
    (difference of segment means, widened for lag-1 autocorrelation of the two-segment
    fit's residuals) and the onset test (`_onset_test`: a change arriving within three
    steps, in the prewhitened series). The first holds for gradual and ragged changes, the
    second for sharp ones in strongly autocorrelated noise, where the widening leaves the
    first little power. The split is the one of the test with the smaller p-value.

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
    inflation, dof = _widening(x, int(splits[best]), mean_before[best], mean_after[best])
    mean_shift_p = min(
        1.0,
        2.0
        * float(special.stdtr(dof, -abs(float(t[best]) / math.sqrt(inflation))))
        * int(splits.size),
    )
    onset = _onset_test(_clip(raw, _ONSET_LOCAL_WIDTH), splits)
    p_value = min(1.0, 2.0 * min(mean_shift_p, onset.p_value))
    if p_value >= alpha:
        return None
    if onset.p_value < mean_shift_p:
        index = onset.split
        clipped_shift, standard_error, dof = onset.change, onset.standard_error, onset.dof
    else:
        index = int(splits[best])
        standard_error = float(scale[best]) * math.sqrt(inflation)
        clipped_shift = float(mean_after[best] - mean_before[best])
    return LevelShift(
        index=index,
        before=index,
        after=n - index,
        shift=float(raw[index:].mean() - raw[:index].mean()),
        statistic=clipped_shift / standard_error if standard_error > 0.0 else math.inf,
        p_value=p_value,
        splits=int(splits.size),
        clipped_shift=clipped_shift,
        standard_error=standard_error,
        dof=dof,
    )
