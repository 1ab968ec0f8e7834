"""Robust and seasonal comparisons built on the statistics module.

Two facts of production telemetry the plain bootstrap does not handle on its own:
transient spikes (a handful of extreme per-step values) and day-to-day variation when a
window is compared with the same time of day on earlier days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special

from perfguard.analysis.statistics import DifferenceInterval, finite_values, summarize

FloatArray = npt.NDArray[np.float64]


# Samples further than this many robust standard deviations (1.4826 * MAD) from their
# series' median (or the paired difference's) are pulled back to that bound before the
# means are compared.
WINSOR_ROBUST_SDS: Final = 3.0


def _robust_bounds(x: FloatArray, k: float) -> tuple[float, float] | None:
    """median(x) +/- k robust SDs (1.4826 * MAD); None when x is empty or has no spread."""
    if x.size == 0:
        return None
    centre = float(np.median(x))
    spread = 1.4826 * float(np.median(np.abs(x - centre)))
    if not spread > 0:
        return None
    return centre - k * spread, centre + k * spread


def winsorize_each(
    candidate: npt.ArrayLike, baseline: npt.ArrayLike, *, k: float = WINSOR_ROBUST_SDS
) -> tuple[FloatArray, FloatArray]:
    """For unpaired samples: clip each series to its own median +/- k robust SDs (each
    group winsorised on its own, as in Yuen's test).

    A one-minute latency spike is a handful of extreme per-step values; left alone it
    dominates the mean and the bootstrap's variance, so a window that is fine apart from a
    transient reads as "cannot tell". Each series is clipped around its own centre, so a
    regression (the candidate's whole level moved) is never pulled towards the baseline:
    clipping both around their pooled median did exactly that when the baseline held far
    more samples than the candidate (a day at 30 s against a 10-minute window), and turned
    a +100 ms regression into +3 ms. With no spread (MAD 0, e.g. an error ratio that is
    zero most of the time) a series is left as it is.
    """
    c, b = finite_values(candidate), finite_values(baseline)
    return _clip_to(c, _robust_bounds(c, k)), _clip_to(b, _robust_bounds(b, k))


def _clip_to(x: FloatArray, bounds: tuple[float, float] | None) -> FloatArray:
    return x if bounds is None else np.clip(x, *bounds)


def winsorize_difference(
    candidate: npt.ArrayLike, baseline: npt.ArrayLike, *, k: float = WINSOR_ROBUST_SDS
) -> tuple[FloatArray, FloatArray]:
    """For paired samples: clip the difference ``candidate - baseline`` at its own median
    +/- k robust SDs, and return ``(baseline + clipped difference, baseline)``.

    A regression moves every difference, so the median moves with it and nothing real is
    clipped; a spike on one track is an outlier of the difference and is pulled in, and load
    both tracks share cancels before any clipping (``winsorize_each``, for unpaired
    samples, cannot cancel it). Pairs with a non-finite value on either side are dropped.
    """
    c = np.asarray(candidate, dtype=np.float64).ravel()
    b = np.asarray(baseline, dtype=np.float64).ravel()
    if c.shape != b.shape:
        raise ValueError(f"paired series must have the same length, got {c.size} and {b.size}")
    keep = np.isfinite(c) & np.isfinite(b)
    c, b = c[keep], b[keep]
    bounds = _robust_bounds(c - b, k)
    if bounds is None:
        return c, b
    return b + np.clip(c - b, *bounds), b


def seasonal_difference_interval(
    candidate: npt.ArrayLike,
    segments: Sequence[npt.ArrayLike],
    *,
    confidence: float = 0.95,
) -> DifferenceInterval:
    """Candidate mean minus the typical level of earlier days at the same time of day.

    Each earlier day's slice is one observation of "the level at this time of day": the
    samples inside a slice are autocorrelated and the slices differ by whole-day effects
    (weekday, events), so the honest unit of replication is the day. The interval is a
    prediction-style t interval with ``days - 1`` degrees of freedom: it carries the
    day-to-day spread (``var(day means) * (1 + 1/days)``) plus the candidate mean's own
    autocorrelation-aware variance. Needs at least 3 days; Non-finite values are dropped.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    c = finite_values(candidate)
    days_clean = [x for x in (finite_values(seg) for seg in segments) if x.size]
    means = np.array([float(np.mean(x)) for x in days_clean], dtype=np.float64)
    days = int(means.size)
    n_base = int(sum(x.size for x in days_clean))
    if days < 3 or c.size < 2:
        raise ValueError("seasonal_difference_interval needs >= 3 days and >= 2 candidate samples")
    own = summarize(c)
    candidate_var = own.variance / max(own.effective_n, 1.0)
    spread = float(np.var(means, ddof=1)) * (1.0 + 1.0 / days)
    scale = math.sqrt(spread + candidate_var)
    point = own.mean - float(np.mean(means))
    half = float(special.stdtrit(days - 1, 0.5 + confidence / 2.0)) * scale
    return DifferenceInterval(
        point=point,
        lo=point - half,
        hi=point + half,
        confidence=confidence,
        statistic="mean",
        paired=False,
        method=f"seasonal t ({days} days)",
        n_candidate=int(c.size),
        n_baseline=n_base,
        block_length=0,
        n_boot=0,
    )
