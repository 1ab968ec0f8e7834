"""CapacityPlan projection: how utilisation follows traffic, and what growth will need.

A robust line (Theil-Sen) of load against traffic over the history is projected to each
scenario's peak traffic, unless `why_not_projected` finds it cannot be trusted; the
projection is assessed against the threshold and turned into "add k nodes/GPUs". A line
fitted against time gives the time until a threshold is crossed from the current value.
Everything is pure: plain arrays in, numbers or frozen dataclasses out.

Why Theil-Sen and not least squares: utilisation histories hold outliers that have nothing
to do with traffic (a batch job, a stuck kernel, a node draining, a scrape of a sentinel
value). Least squares lets one such hour tilt the line; Theil-Sen (the median of pairwise
slopes) ignores up to 29 % of arbitrary outliers and is ~90 % as efficient as least squares
on clean Gaussian data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from perfguard.api.capacityplan import Assessment

FloatArray: TypeAlias = npt.NDArray[np.float64]

__all__ = [
    "MAX_CURRENT_DEVIATION",
    "MAX_PAIRS",
    "MIN_FIT_POINTS",
    "MIN_ROBUST_R2",
    "MIN_TRAFFIC_SPREAD",
    "LinearFit",
    "assess",
    "headroom_traffic",
    "misses_the_load_now",
    "peak_traffic",
    "project",
    "reaches",
    "sustained_since",
    "theil_sen",
    "time_to_threshold",
    "traffic_spread",
    "units_to_add",
    "why_not_projected",
]

# Fewer finite (x, y) pairs than this give no fit: with 12 points the median of 66 pairwise
# slopes is still noisy, below it a single odd hour decides the slope.
MIN_FIT_POINTS: Final = 12

# A line is projected only if traffic moved enough to show how utilisation follows it:
# its p5-to-p95 range over the history at least this share of its median. Traffic held at
# 100 +- 0.3 req/s (a 1 % range) leaves the slope to the noise of utilisation; projecting
# it to +20 % multiplied that noise into "add 2 GPUs" or "no scaling needed" by seed.
MIN_TRAFFIC_SPREAD: Final = 0.10

# Below this robust R^2, traffic explains too little of utilisation to project it, unless
# the line barely moves over the projection (it then says "utilisation does not follow
# traffic, it stays near its level": node memory, a resident model's GPU memory).
MIN_ROBUST_R2: Final = 0.5

# The line must describe the load now: the measured load of the current window may differ
# from the line's at the same traffic by at most this share (and 3 residual scales), or
# the history holds another state than the present (units added or removed whose series
# are gone from the data, a new model version) and the line projects the wrong one.
MAX_CURRENT_DEVIATION: Final = 0.10

# At most this many pairwise slopes are computed. 7 days at 5 m are 2016 points, i.e. 2.0 M
# pairs (16 MB of float64 per temporary); a uniform sample of 200 k pairs estimates their
# median with a standard error of about 0.2 % of the slopes' interquartile range, far below
# the slope's own sampling error, at a tenth of the cost. The sample comes from a fixed-seed
# generator, so the same data always give the same line.
MAX_PAIRS: Final = 200_000
_PAIR_SEED: Final = 20_240_611

# 1.4826 * MAD estimates the standard deviation of Gaussian residuals.
_MAD_TO_SD: Final = 1.4826


@dataclass(frozen=True, slots=True)
class LinearFit:
    """``y ~ intercept + slope * x`` from Theil-Sen.

    ``residual_scale`` is 1.4826 * MAD of the residuals (a robust standard deviation of the
    scatter around the line). ``robust_r2`` is ``1 - (residual_scale / y_scale)^2`` with
    ``y_scale`` the same robust scale of y itself: near 1 when x explains y, near 0 (or
    negative) when it does not; None when y has no spread. ``pairs`` is the number of
    pairwise slopes the median was taken over (subsampled above ``MAX_PAIRS``).
    """

    slope: float
    intercept: float
    n: int
    residual_scale: float
    robust_r2: float | None
    pairs: int

    def predict(self, x: float) -> float:
        return self.intercept + self.slope * x


def _finite_pairs(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    keep = np.isfinite(xa) & np.isfinite(ya)
    return xa[keep], ya[keep]


def _pair_indices(n: int, max_pairs: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Index pairs i < j: all of them, or a deterministic uniform sample of ``max_pairs``."""
    if n * (n - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(n, k=1)
        return i, j
    rng = np.random.default_rng(_PAIR_SEED)
    a = rng.integers(0, n, size=max_pairs)
    b = rng.integers(0, n - 1, size=max_pairs)
    b = b + (b >= a)  # uniform over j != i
    return np.minimum(a, b), np.maximum(a, b)


def theil_sen(
    x: npt.ArrayLike, y: npt.ArrayLike, *, max_pairs: int = MAX_PAIRS
) -> LinearFit | None:
    """Theil-Sen line of y against x; None without ``MIN_FIT_POINTS`` pairs or x spread.

    slope = median of (y_j - y_i) / (x_j - x_i) over pairs with x_i != x_j; intercept =
    median(y - slope * x) (Sen 1968; ``scipy.stats.theilslopes(method="joint")``).
    Pairs with a NaN or infinity on either side are dropped first. Above ``max_pairs``
    pairs a fixed-seed uniform sample of pairs is used (see ``MAX_PAIRS``).
    """
    xs, ys = _finite_pairs(x, y)
    n = int(xs.size)
    if n < MIN_FIT_POINTS or float(np.ptp(xs)) == 0.0:
        return None
    i, j = _pair_indices(n, max_pairs)
    dx = xs[j] - xs[i]
    distinct = dx != 0.0
    slopes = (ys[j][distinct] - ys[i][distinct]) / dx[distinct]
    if slopes.size == 0:
        return None
    slope = float(np.median(slopes))
    intercept = float(np.median(ys - slope * xs))
    residuals = ys - (intercept + slope * xs)
    residual_scale = _MAD_TO_SD * float(np.median(np.abs(residuals - np.median(residuals))))
    y_scale = _MAD_TO_SD * float(np.median(np.abs(ys - np.median(ys))))
    robust_r2 = 1.0 - (residual_scale / y_scale) ** 2 if y_scale > 0.0 else None
    return LinearFit(slope, intercept, n, residual_scale, robust_r2, int(slopes.size))


def traffic_spread(traffic: npt.ArrayLike) -> float | None:
    """(p95 - p5) / p50 of the finite samples; None without any or with a median <= 0."""
    t = np.asarray(traffic, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if t.size == 0:
        return None
    p5, p50, p95 = (float(v) for v in np.quantile(t, [0.05, 0.5, 0.95]))
    return (p95 - p5) / p50 if p50 > 0.0 else None


def why_not_projected(
    fit: LinearFit,
    traffic: npt.ArrayLike,
    target: float,
    *,
    recent_traffic: npt.ArrayLike,
    recent_load: npt.ArrayLike,
    units: int,
) -> str | None:
    """Why the line of load against ``traffic`` must not be projected to ``target``, or None.

    ``traffic`` is the history the line was fitted on; ``recent_*`` the current window's
    traffic and load (empty to skip that check); ``units`` turns the load (a total over
    units) into the per-unit figures of the message. Refused: traffic that hardly varied
    (``MIN_TRAFFIC_SPREAD``), a line that explains little (``MIN_ROBUST_R2``) yet moves
    the projection by more than its scatter, and a line that does not match the load now
    (``MAX_CURRENT_DEVIATION``).
    """
    spread = traffic_spread(traffic)
    if spread is None or spread < MIN_TRAFFIC_SPREAD:
        shown = "no" if spread is None else f"only {100.0 * spread:.1f} %"
        return (
            f"traffic varied by {shown} of its median over the history (p5 to p95; a "
            f"projection needs {100.0 * MIN_TRAFFIC_SPREAD:g} %): too little to tell how "
            "utilisation follows it"
        )
    centre = float(np.nanmedian(np.asarray(traffic, dtype=np.float64)))
    move = abs(fit.slope * (target - centre))
    if fit.robust_r2 is not None and fit.robust_r2 < MIN_ROBUST_R2 and move > fit.residual_scale:
        return (
            f"traffic explains too little of utilisation (robust R² {fit.robust_r2:.2f}, "
            f"need {MIN_ROBUST_R2:g}) to move it {move / units:.1f} points along the line"
        )
    missed = misses_the_load_now(fit, recent_traffic, recent_load)
    if missed is not None:
        measured, expected = missed
        return (
            f"the line does not match the load now ({measured / units:.1f} % per unit "
            f"measured, {expected / units:.1f} % on the line at this traffic): units "
            "added or removed, or the work per request changed, within the history; "
            "projections resume once the history holds mostly the new state"
        )
    return None


def misses_the_load_now(
    fit: LinearFit, recent_traffic: npt.ArrayLike, recent_load: npt.ArrayLike
) -> tuple[float, float] | None:
    """(measured, on the line) for the current window when the line misses the load
    measured now by more than 3 residual SDs and ``MAX_CURRENT_DEVIATION``; None when it
    matches or the window is empty."""
    xs, ys = _finite_pairs(recent_traffic, recent_load)
    if not xs.size:
        return None
    measured = float(ys.mean())
    expected = float(np.mean(fit.intercept + fit.slope * xs))
    gap = abs(measured - expected)
    if gap > 3.0 * fit.residual_scale and gap > MAX_CURRENT_DEVIATION * abs(expected):
        return measured, expected
    return None


def project(fit: LinearFit, traffic: float) -> float:
    """Utilisation the fitted line predicts at ``traffic``."""
    return fit.predict(traffic)


def peak_traffic(traffic_series: npt.ArrayLike, q: float = 0.95) -> float | None:
    """The q-quantile of the traffic history (non-finite samples ignored); None if empty.

    Not the maximum: the maximum of a week of 5-minute rates is one sample, i.e. mostly
    noise (a retry storm, a scrape hiccup). The 95th percentile of a week is the level the
    service holds for about 8 hours in total, which on a daily cycle is the daily peak.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")
    t = np.asarray(traffic_series, dtype=np.float64).ravel()
    t = t[np.isfinite(t)]
    if t.size == 0:
        return None
    return float(np.quantile(t, q))


def reaches(utilisation: float, threshold: float) -> bool:
    """The one rule for "over the threshold": at or above it.

    Current utilisation (Insufficient, ``aboveThreshold``), projections (OverCapacity),
    recommendations (add units until the average is below the threshold) and the time to
    threshold all use it, so a figure exactly at the threshold cannot be over capacity in
    one field and "no scaling needed" in another.
    """
    return utilisation >= threshold


def assess(projected: float, threshold: float, near_margin: float = 5.0) -> Assessment:
    """OverCapacity at or above the threshold, NearLimit within ``near_margin`` points below
    it, WithinCapacity further below; Unverified when the projection is not a number."""
    if not (math.isfinite(projected) and math.isfinite(threshold)):
        return Assessment.UNVERIFIED
    if reaches(projected, threshold):
        return Assessment.OVER_CAPACITY
    if projected >= threshold - near_margin:
        return Assessment.NEAR_LIMIT
    return Assessment.WITHIN_CAPACITY


def units_to_add(projected_fleet_util: float, threshold: float, units: int) -> int:
    """How many identical units (nodes or GPUs) bring the fleet average below the threshold.

    ``units`` units at average utilisation U carry work U * units; spread over ``units + k``
    units the average is U * units / (units + k). The answer is the smallest k >= 0 for
    which that average no longer ``reaches`` the threshold: 0 when U is below it, at least
    1 when U is at or above it (exactly at the threshold is over capacity, as in
    ``assess``). It assumes the load balances evenly over the new units and that
    utilisation scales with the share of load each carries, the same assumption as the
    linear projection itself.
    """
    if threshold <= 0.0 or not math.isfinite(threshold):
        raise ValueError(f"threshold must be positive, got {threshold}")
    if units < 1:
        raise ValueError(f"units must be at least 1, got {units}")
    if not math.isfinite(projected_fleet_util):
        raise ValueError(f"projected utilisation must be finite, got {projected_fleet_util}")

    def over(k: int) -> bool:
        return reaches(projected_fleet_util * units / (units + k), threshold)

    # The closed form (smallest integer n + k above U * n / threshold), then corrected by
    # the rule itself: a quotient's last bit must not decide differently from `reaches`.
    k = max(math.floor(projected_fleet_util * units / threshold) + 1 - units, 0)
    while over(k):
        k += 1
    while k > 0 and not over(k - 1):
        k -= 1
    return k


def headroom_traffic(fit: LinearFit, threshold: float, current_peak: float) -> float | None:
    """Extra traffic (above ``current_peak``) at which the fitted line reaches ``threshold``.

    Negative when the current peak is already past it. None when the slope is not positive:
    then utilisation does not grow with traffic in the history (traffic is not what limits
    this resource, or the history never varied enough to tell), and no traffic level can be
    named.
    """
    if not fit.slope > 0.0:
        return None
    return (threshold - fit.intercept) / fit.slope - current_peak


def time_to_threshold(
    times_s: npt.ArrayLike,
    values: npt.ArrayLike,
    threshold: float,
    horizon_s: float,
    *,
    current: float,
) -> float | None:
    """Seconds until ``current`` reaches ``threshold`` rising at the Theil-Sen trend of
    ``values`` over time.

    0 when ``current`` (the figure the status shows) already ``reaches`` the threshold, and
    only then: the trend line's own value at the last timestamp is not what was measured
    (after a ramp and a scale-out it can sit above the threshold while the fleet runs at
    half of it). None when there is no fit, the trend is flat or falling, or the crossing
    lies more than ``horizon_s`` ahead: a trend fitted on a week says nothing honest about
    the week after next, so the caller passes the history's length. The trend is that of
    the series given: pass daily peaks to ask when the peaks cross, the raw series to ask
    when the average does.
    """
    if not math.isfinite(current):
        return None
    if reaches(current, threshold):
        return 0.0
    fit = theil_sen(times_s, values)
    if fit is None or not fit.slope > 0.0:
        return None
    seconds = (threshold - current) / fit.slope
    return seconds if seconds <= horizon_s else None


def sustained_since(
    times_s: npt.ArrayLike, values: npt.ArrayLike, above: float, for_s: float
) -> float | None:
    """Start of the current run of samples above ``above``, if it has lasted ``for_s``.

    The run must reach the end of the series and be strictly above ``above`` throughout;
    its duration is last timestamp - start. Missing data (a NaN or a timestamp gap) is
    bridged when at most one step is missing (two consecutive run samples at most 2 steps
    apart): one lost scrape must not reset a 15-minute alarm, but a longer outage ends what
    can be claimed about the run. The run must also reach the last timestamp the same way
    (at most one trailing missing step). The step is the median spacing of the timestamps.
    """
    t_all = np.asarray(times_s, dtype=np.float64).ravel()
    v_all = np.asarray(values, dtype=np.float64).ravel()
    if t_all.shape != v_all.shape:
        raise ValueError(f"times and values differ in length: {t_all.size} and {v_all.size}")
    if t_all.size == 0 or not np.isfinite(t_all[-1]):
        return None
    keep = np.isfinite(v_all) & np.isfinite(t_all)
    t, v = t_all[keep], v_all[keep]
    if t.size == 0:
        return None
    step = float(np.median(np.diff(t_all))) if t_all.size > 1 else 0.0
    tolerance = step * 1e-6
    end = float(t_all[-1])
    if end - float(t[-1]) > step + tolerance or not v[-1] > above:
        return None
    start_index = t.size - 1
    while start_index > 0:
        previous = start_index - 1
        bridged = t[start_index] - t[previous] <= 2.0 * step + tolerance
        if not (bridged and v[previous] > above):
            break
        start_index = previous
    start = float(t[start_index])
    return start if end - start >= for_s else None
