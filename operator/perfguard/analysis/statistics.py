"""Pure numerics for PerfBaseline: sample summaries, change intervals and a rank test.

Every function takes plain arrays and returns frozen dataclasses; nothing here knows about
Prometheus, Kubernetes or the clock, so the verdict logic can be tested to the last digit.

Samples are per-step values of one metric (e.g. the p95 of each 30 s slice). Consecutive steps
share load, caches and queueing, so the series are autocorrelated: a lag-1 autocorrelation of
0.5-0.8 is ordinary. Treating them as independent makes every interval too narrow and turns
noise into "regressions". Two mechanisms keep the intervals honest here:

* ``summarize`` scales the classical t-interval by the variance inflation of an AR(1) process
  fitted to the series (effective sample size from the bias-corrected lag-1 autocorrelation).
* ``difference_interval`` uses a prewhitened ("post-blackened", Davison & Hinkley 1997, §8.2.3)
  circular block bootstrap with a second stage for the uncertainty of rho and a studentised
  (bootstrap-t) interval; see its docstring for why a plain moving-block bootstrap is not
  enough at canary window sizes. Sides longer than 1024 samples use batch means instead.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
Statistic = Literal["mean", "median"]

__all__ = [
    "DifferenceInterval",
    "RankTestResult",
    "SampleSummary",
    "Statistic",
    "bias_corrected_rho",
    "block_length",
    "difference_interval",
    "finite_values",
    "mann_whitney_hodges_lehmann",
    "mean_interval",
    "relative_change",
    "summarize",
]

# A fitted |rho| close to 1 makes the AR(1) variance inflation explode (it is 39x at 0.95 and
# unbounded at 1); beyond 0.95 the window is too short to tell a trend from a random walk anyway,
# and the wide interval that 0.95 already produces says exactly that.
_RHO_CAP: Final = 0.95

# Bootstrap replicates are generated in chunks of at most this many float64 values (8 MB) per
# temporary array.
_MAX_CHUNK_ELEMENTS: Final = 1_000_000

# Sides longer than this are not bootstrapped but batched (see _batch_side), in this many batches.
_LONG_SERIES: Final = 1024
_BATCHES: Final = 16

# Below this many samples on a side the AR(1) fit behind the interval is meaningless (its bias
# correction divides by n - 4), so no interval is given.
_MIN_INTERVAL_SAMPLES: Final = 8

# Up to this many pairwise differences are materialised for Hodges-Lehmann; above it the order
# statistics are found by bisection on the value with O(n_candidate + n_baseline) memory.
_MAX_MATERIALISED_PAIRS: Final = 4_000_000

# Exact null distribution of U for the Moses interval below this size (R's wilcox.test uses the
# same cut-off); above it, or with ties, the normal approximation is accurate and cheap.
_EXACT_RANK_MAX_N: Final = 50

# Relative changes against a baseline this close to zero, relative to the values compared,
# are meaningless (0 -> 1e-15 is not "+infinity percent"); a series that lives around 1e-12
# (a Query in seconds per byte) still has percentages.
_ZERO_TOLERANCE: Final = 1e-12


@dataclass(frozen=True, slots=True)
class SampleSummary:
    """Descriptive statistics of one sample series, non-finite values removed.

    ``ci95_low``/``ci95_high`` bound the *mean*, widened for autocorrelation: the t-interval
    with the AR(1) variance inflation and ``effective_n`` (see ``summarize``). Quantiles use
    linear interpolation (Hyndman-Fan type 7, numpy's default). Undefined values (``n`` < 2 for
    variance and CI, ``n`` == 0 for everything) are NaN; callers must check ``n`` first.
    """

    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    variance: float
    ci95_low: float
    ci95_high: float
    lag1_autocorrelation: float
    effective_n: float


@dataclass(frozen=True, slots=True)
class DifferenceInterval:
    """Interval for ``stat(candidate) - stat(baseline)``.

    ``block_length`` is the block length of the circular block bootstrap applied to the AR(1)
    residuals (the largest one when the two series are resampled independently).
    ``lo``/``hi`` are NaN when a side has fewer than 3 samples.
    """

    point: float
    lo: float
    hi: float
    confidence: float
    statistic: Statistic
    paired: bool
    method: str
    n_candidate: int
    n_baseline: int
    block_length: int
    n_boot: int


@dataclass(frozen=True, slots=True)
class RankTestResult:
    """Mann-Whitney U test with the Hodges-Lehmann shift and its Moses confidence interval.

    ``u_statistic`` is U for the candidate (pairs with candidate > baseline, ties counted
    half). ``shift`` estimates candidate - baseline. ``achieved_confidence`` is the actual
    coverage of the order-statistic interval, which is discrete and so at least ``confidence``
    (exactly, or approximately for ``ci_method == "normal"``). ``pairwise`` says whether all
    pairwise differences were materialised or the order statistics were selected by bisection.
    """

    u_statistic: float
    p_value: float
    shift: float
    shift_ci_low: float
    shift_ci_high: float
    confidence: float
    achieved_confidence: float
    ci_method: Literal["exact", "normal"]
    pairwise: Literal["materialised", "selection"]
    n_candidate: int
    n_baseline: int


def finite_values(samples: npt.ArrayLike) -> FloatArray:
    """The samples as a flat float array without NaN or infinities (missing steps)."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    return x[np.isfinite(x)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _lag1_autocorrelation(x: FloatArray) -> FloatArray:
    """Lag-1 sample autocorrelation along the last axis (0 for constant rows)."""
    centred = x - x.mean(axis=-1, keepdims=True)
    denominator = np.einsum("...i,...i->...", centred, centred)
    numerator = np.einsum("...i,...i->...", centred[..., 1:], centred[..., :-1])
    safe = np.where(denominator > 0.0, denominator, 1.0)
    return np.where(denominator > 0.0, numerator / safe, 0.0)


def bias_corrected_rho(x: FloatArray) -> FloatArray:
    """Lag-1 autocorrelation along the last axis around one estimated mean, corrected for
    its small-sample bias and clipped to [-0.95, 0.95]."""
    # With an estimated mean the lag-1 (Yule-Walker) estimator has E[rho_hat] = rho - (1 + 4 rho)/n
    # + O(n^-2) (least squares: 1 + 3 rho; Shaman & Stine 1988). At n = 20, rho = 0.7 that is
    # 0.19: the difference between an honest interval and a false alarm. Solving the bias
    # equation for rho removes more of it than adding the bias evaluated at rho_hat.
    n = x.shape[-1]
    rho = _lag1_autocorrelation(x)
    corrected = np.clip((n * rho + 1.0) / max(n - 4, 1), -_RHO_CAP, _RHO_CAP)
    return np.asarray(corrected, dtype=np.float64)


def _ar1_inflation(rho: FloatArray, n: int) -> FloatArray:
    """n * Var(mean) / Var(x) for a stationary AR(1) with finite n.

    Closed form of 1 + 2 * sum_{k=1}^{n-1} (1 - k/n) rho^k; rho is capped below 1.
    """
    one_minus = 1.0 - rho
    tail = rho / one_minus - rho * (1.0 - rho**n) / (n * one_minus**2)
    return 1.0 + 2.0 * tail


def _variance_of_mean(
    x: FloatArray, *, allow_negative_rho: bool = False
) -> tuple[FloatArray, FloatArray]:
    """AR(1) variance of the mean along the last axis, and the variance inflation.

    For a reported interval (``summarize``), negative autocorrelation would shrink the interval
    below the i.i.d. one; on short windows that is more often estimation noise than physics, so
    rho is floored at zero (conservative). The bootstrap studentisation must use the very same
    rho as the bootstrap world it calibrates, which may be negative, so it opts out.
    """
    n = x.shape[-1]
    rho = bias_corrected_rho(x)
    if not allow_negative_rho:
        rho = np.maximum(rho, 0.0)
    inflation = _ar1_inflation(rho, n)
    # The sample variance itself is biased low under positive autocorrelation:
    # E[s^2] = gamma0 * (n - inflation) / (n - 1). Undo that with the same fitted rho.
    gamma0 = x.var(axis=-1, ddof=1) * (n - 1) / (n - inflation)
    return gamma0 * inflation / n, inflation


def _mean_half_width(x: FloatArray, confidence: float) -> tuple[float, float]:
    """Half-width of the AR(1)-widened t-interval of the mean at `confidence`, and the
    effective sample size (x finite, at least 2 values)."""
    var_mean, inflation = _variance_of_mean(x)
    effective_n = x.size / float(inflation)
    # special.stdtrit is what stats.t.ppf evaluates, without its per-call argument checks.
    t_quantile = float(special.stdtrit(max(effective_n - 1.0, 1.0), 0.5 + confidence / 2.0))
    return t_quantile * math.sqrt(float(var_mean)), effective_n


def mean_interval(samples: npt.ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided interval of the mean at `confidence`, widened for autocorrelation as in
    ``summarize`` (whose ``ci95_low``/``ci95_high`` it equals at 0.95); NaN below 2 finite
    samples."""
    _check_confidence(confidence)
    x = finite_values(samples)
    if x.size < 2:
        return math.nan, math.nan
    mean = float(x.mean())
    half_width, _ = _mean_half_width(x, confidence)
    return mean - half_width, mean + half_width


def summarize(samples: npt.ArrayLike) -> SampleSummary:
    """Summarise a sample series (non-finite values dropped).

    The CI of the mean is a t-interval whose standard error and degrees of freedom come from an
    AR(1) fit: rho is the lag-1 autocorrelation, bias-corrected and clipped to [0, 0.95];
    ``effective_n = n / inflation`` with the exact finite-n AR(1) inflation, and the t
    quantile uses ``effective_n - 1`` degrees of freedom (at least 1). On independent data this
    reduces to the classical t-interval. Below 8 samples the AR(1) fit is crude and errs wide.
    """
    x = finite_values(samples)
    n = int(x.size)
    nan = math.nan
    if n == 0:
        return SampleSummary(0, nan, nan, nan, nan, nan, nan, nan, nan, 0.0)
    mean = float(x.mean())
    p50, p95, p99 = (float(v) for v in np.percentile(x, [50.0, 95.0, 99.0]))
    if n < 2:
        return SampleSummary(n, mean, p50, p95, p99, nan, nan, nan, nan, float(n))
    variance = float(x.var(ddof=1))
    rho = float(_lag1_autocorrelation(x))
    half_width, effective_n = _mean_half_width(x, 0.95)
    return SampleSummary(
        n=n,
        mean=mean,
        p50=p50,
        p95=p95,
        p99=p99,
        variance=variance,
        ci95_low=mean - half_width,
        ci95_high=mean + half_width,
        lag1_autocorrelation=rho,
        effective_n=effective_n,
    )


def _autocovariances(x: FloatArray, max_lag: int) -> FloatArray:
    n = x.size
    centred = x - x.mean()
    n_fft = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, n_fft)
    acov: FloatArray = np.fft.irfft(spectrum * np.conj(spectrum), n_fft)[: max_lag + 1] / n
    return acov


def block_length(x: npt.ArrayLike) -> int:
    """Automatic block length for the circular block bootstrap of the mean (non-finite dropped).

    Politis & White (2004) with the correction of Patton, Politis & White (2009): the flat-top
    lag-window estimate of b_opt = (2 G^2 / D_CB)^(1/3) n^(1/3), which minimises the MSE of the
    bootstrap variance of the mean. It adapts to the dependence actually present (1 for white
    noise, long for slowly decaying correlation), unlike a fixed n^(1/3). The result is rounded
    up and clipped to [1, n // 2] so that a replicate always mixes at least two blocks.
    ``difference_interval`` applies it to AR(1) residuals, where it is usually 1-3: it only
    has to keep the dependence that the AR(1) prewhitening leaves behind.
    """
    data = finite_values(x)
    n = int(data.size)
    upper = max(1, n // 2)
    if n < 4:
        return 1
    kn = max(5, math.ceil(math.sqrt(math.log10(n))))
    m_max = min(math.ceil(math.sqrt(n)) + kn, n - 1)
    acov = _autocovariances(data, m_max)
    if acov[0] <= 0.0:
        return 1
    acorr = acov / acov[0]
    critical = 2.0 * math.sqrt(math.log10(n) / n)
    insignificant = np.abs(acorr[1:]) < critical
    if insignificant.size >= kn:
        runs = np.lib.stride_tricks.sliding_window_view(insignificant, kn).all(axis=1)
        first = np.flatnonzero(runs)
        m_hat = int(first[0]) if first.size else m_max
    else:
        m_hat = m_max
    bandwidth = min(2 * max(m_hat, 1), m_max)
    lags = np.arange(1, bandwidth + 1, dtype=np.float64)
    ratio = lags / bandwidth
    window = np.where(ratio <= 0.5, 1.0, 2.0 * (1.0 - ratio))
    # Autocorrelations rather than autocovariances: b_opt is scale-free, and tiny variances
    # would otherwise underflow when squared.
    g_hat = 2.0 * float(np.sum(window * lags * acorr[1 : bandwidth + 1]))
    long_run = 1.0 + 2.0 * float(np.sum(window * acorr[1 : bandwidth + 1]))
    if not long_run > 0.0:
        # The flat-top estimate can go negative on short, strongly anti-correlated series;
        # there is then no dependence worth keeping in blocks.
        return 1
    d_cb = 4.0 / 3.0 * long_run**2
    b_opt = (2.0 * g_hat**2 / d_cb) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    if not math.isfinite(b_opt):
        return upper
    return int(min(max(math.ceil(b_opt), 1), upper))


@dataclass(frozen=True, slots=True)
class _Prewhitened:
    mean: float
    rho: float
    centred: FloatArray
    residuals: FloatArray
    block: int


def _prewhiten(x: FloatArray) -> _Prewhitened:
    mean = float(x.mean())
    centred = x - mean
    rho = float(bias_corrected_rho(x))
    residuals = centred[1:] - rho * centred[:-1]
    residuals = residuals - residuals.mean()
    return _Prewhitened(mean, rho, centred, residuals, block_length(residuals))


def _circular_block_indices(rng: np.random.Generator, n: int, block: int, n_rep: int) -> IntArray:
    """Time-major index matrix (n x n_rep) of a circular block bootstrap, built in one go.

    Indices run up to n + block - 2: they index ``_circular(x, block)``, which is cheaper than
    a modulo over the whole matrix. Time-major, because the AR(1) recursion walks time.
    """
    if block == 1:
        return rng.integers(0, n, size=(n, n_rep))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(n_blocks, 1, n_rep))
    idx = starts + np.arange(block)[None, :, None]
    out: IntArray = idx.reshape(n_blocks * block, n_rep)[:n]
    return out


def _circular(x: FloatArray, block: int) -> FloatArray:
    """``x`` followed by its first block - 1 values, so that blocks wrap around the end."""
    return np.concatenate([x, x[: block - 1]]) if block > 1 else x


def _ar1_recursion(start: FloatArray, innovations: FloatArray, rho: FloatArray) -> FloatArray:
    """y_0 = start, y_t = rho * y_{t-1} + innovations_t, one replicate per column of the
    time-major ``innovations``, each with its own rho; returns replicates as rows.

    The loop runs over time steps (at most ``_LONG_SERIES``), each vectorised over all
    replicates: for series this short it is several times faster than a log-depth scan, which
    allocates a whole matrix per step.
    """
    steps = innovations.shape[0]
    by_time = np.empty((steps + 1, start.size), dtype=np.float64)
    by_time[0] = start
    for t in range(steps):
        np.multiply(by_time[t], rho, out=by_time[t + 1])
        by_time[t + 1] += innovations[t]
    return by_time.T


def _draw(
    rng: np.random.Generator, parts: Sequence[_Prewhitened], shared: bool, size: int
) -> list[tuple[FloatArray, IntArray]]:
    """(time-major resampled residuals, start index) per part; aligned parts share one draw."""
    if shared:
        block = max(p.block for p in parts)
        idx = _circular_block_indices(rng, parts[0].residuals.size, block, size)
        start = rng.integers(0, parts[0].centred.size, size=size)
        return [(_circular(p.residuals, block)[idx], start) for p in parts]
    draws = []
    for p in parts:
        idx = _circular_block_indices(rng, p.residuals.size, p.block, size)
        start = rng.integers(0, p.centred.size, size=size)
        draws.append((_circular(p.residuals, p.block)[idx], start))
    return draws


def _replicates(
    parts: Sequence[_Prewhitened], shared: bool, size: int, rng: np.random.Generator
) -> list[FloatArray]:
    """Post-blackened replicates of each part, with the uncertainty of rho carried along.

    Stage 1 rebuilds series from resampled residual blocks with the fitted rho. Stage 2
    rebuilds fresh series with the rho re-estimated on each stage-1 replicate (the device of
    Pascual, Romo & Ruiz 2004 for AR forecast intervals), so the bootstrap world spreads over
    the values of rho that a window of this length cannot rule out. On a 20-sample window that
    uncertainty (sd ~0.2 at rho = 0.7) is the dominant error; stage 1 alone undercovers.
    """
    stage1 = [
        _ar1_recursion(p.centred[start], innovations, np.full(size, p.rho))
        for p, (innovations, start) in zip(parts, _draw(rng, parts, shared, size), strict=True)
    ]
    return [
        p.mean + _ar1_recursion(p.centred[start], innovations, bias_corrected_rho(y))
        for p, y, (innovations, start) in zip(
            parts, stage1, _draw(rng, parts, shared, size), strict=True
        )
    ]


def _statistic(values: FloatArray, statistic: Statistic) -> FloatArray:
    if statistic == "mean":
        return np.asarray(values.mean(axis=-1), dtype=np.float64)
    return np.asarray(np.median(values, axis=-1), dtype=np.float64)


def _studentising_variance(values: FloatArray) -> FloatArray:
    return _variance_of_mean(values, allow_negative_rho=True)[0]


# Replicate generator of one side: (rng, number of replicates) -> (statistic, variance) rows.
_Replicator = Callable[[np.random.Generator, int], tuple[FloatArray, FloatArray]]


@dataclass(frozen=True, slots=True)
class _Side:
    """One independently resampled unit: a single series, or an aligned (paired) couple.

    ``statistic`` is its observed statistic (for a couple: stat(candidate) - stat(baseline)),
    ``variance`` the studentising variance, ``block`` the residual block or batch length.
    """

    statistic: float
    variance: float
    replicate: _Replicator
    block: int
    bootstrapped: bool


def _bootstrap_side(arrays: Sequence[FloatArray], statistic: Statistic, *, shared: bool) -> _Side:
    parts = [_prewhiten(a) for a in arrays]
    # Keep a replicate chunk within the memory budget; several temporaries of this size live
    # at once (two stages, the gathered innovations).
    chunk = max(1, _MAX_CHUNK_ELEMENTS // (arrays[0].size * len(arrays)))

    def combine(series: Sequence[FloatArray]) -> tuple[FloatArray, FloatArray]:
        if len(series) == 1:
            return _statistic(series[0], statistic), _studentising_variance(series[0])
        stat = _statistic(series[0], statistic) - _statistic(series[1], statistic)
        return stat, _studentising_variance(series[0] - series[1])

    def replicate(rng: np.random.Generator, size: int) -> tuple[FloatArray, FloatArray]:
        stats_out = np.empty(size, dtype=np.float64)
        var_out = np.empty(size, dtype=np.float64)
        for begin in range(0, size, chunk):
            count = min(chunk, size - begin)
            stat, var = combine(_replicates(parts, shared, count, rng))
            stats_out[begin : begin + count] = stat
            var_out[begin : begin + count] = var
        return stats_out, var_out

    observed_stat, observed_var = combine([a[None, :] for a in arrays])
    return _Side(
        statistic=float(observed_stat[0]),
        variance=float(observed_var[0]),
        replicate=replicate,
        block=max(p.block for p in parts),
        bootstrapped=True,
    )


def _batch_side(arrays: Sequence[FloatArray], statistic: Statistic) -> _Side:
    """Batch-means side for a long series (or aligned couple).

    Bootstrapping a 7-day baseline (20 160 samples at 30 s) 2000 times would make the cost of an
    evaluation grow with the history length, for a side whose sampling error is a small part of
    the total. Its statistic is instead evaluated on 16 contiguous batches: batches hundreds of
    samples long are nearly independent whatever the correlation, so sd(batch values)/sqrt(16)
    estimates the standard error (Schmeiser 1982), and replicates are drawn as
    statistic + se * t_15. The estimate also widens honestly when the history is not stationary
    (diurnal cycles make the batches disagree).
    """
    n = arrays[0].size
    length = n // _BATCHES
    trimmed = [a[: length * _BATCHES].reshape(_BATCHES, length) for a in arrays]
    if len(arrays) == 1:
        batch_values = _statistic(trimmed[0], statistic)
        observed = float(_statistic(arrays[0], statistic))
    else:
        batch_values = _statistic(trimmed[0], statistic) - _statistic(trimmed[1], statistic)
        observed = float(_statistic(arrays[0], statistic) - _statistic(arrays[1], statistic))
    variance = float(batch_values.var(ddof=1)) / _BATCHES

    def replicate(rng: np.random.Generator, size: int) -> tuple[FloatArray, FloatArray]:
        draws = observed + math.sqrt(variance) * rng.standard_t(_BATCHES - 1, size=size)
        return np.asarray(draws, dtype=np.float64), np.full(size, variance)

    return _Side(observed, variance, replicate, length, bootstrapped=False)


def _side(arrays: Sequence[FloatArray], statistic: Statistic, *, shared: bool) -> _Side:
    if arrays[0].size > _LONG_SERIES:
        return _batch_side(arrays, statistic)
    return _bootstrap_side(arrays, statistic, shared=shared)


def _nan_interval(
    point: float,
    confidence: float,
    statistic: Statistic,
    paired: bool,
    n_candidate: int,
    n_baseline: int,
    n_boot: int,
) -> DifferenceInterval:
    return DifferenceInterval(
        point=point,
        lo=math.nan,
        hi=math.nan,
        confidence=confidence,
        statistic=statistic,
        paired=paired,
        method="insufficient-samples",
        n_candidate=n_candidate,
        n_baseline=n_baseline,
        block_length=0,
        n_boot=n_boot,
    )


def difference_interval(
    candidate: npt.ArrayLike,
    baseline: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    paired: bool = False,
    statistic: Statistic = "mean",
    n_boot: int = 2000,
    rng: np.random.Generator,
    settle_at: Sequence[float] = (),
) -> DifferenceInterval:
    """Confidence interval for ``stat(candidate) - stat(baseline)`` under autocorrelation.

    Method: prewhitened circular block bootstrap-t ("post-blackening", Davison & Hinkley 1997,
    §8.2.3), vectorised with index matrices:

    1. Each series is prewhitened with an AR(1) fit (bias-corrected lag-1 rho).
    2. Its residuals are resampled in circular blocks (``block_length`` of the residuals, so
       dependence the AR(1) misses is kept too) and re-coloured through the AR(1) recursion
       from a resampled start value. A second stage repeats this with rho re-estimated on each
       first-stage replicate, which carries the uncertainty of rho into the interval.
    3. Each replicate is studentised by the AR(1) standard error recomputed on the replicate;
       the interval is [point - q_hi * se, point - q_lo * se] from the quantiles of that
       t-statistic. For the median the same standard error serves as the scale: the bootstrap
       calibrates the ratio, and any scale proportional to the statistic's spread is a valid
       studentisation.

    Why not a plain moving-block bootstrap of the raw series: at the canary window (n = 20,
    rho = 0.7) the mean is worth about 4 independent values and no block spans the correlation
    length, so block bootstraps of the raw series covered the true shift in only ~70 %
    (percentile) to ~88 % (studentised) of simulations, and a naive i.i.d. bootstrap in ~55 %.

    ``paired=True`` (concurrent comparison, aligned timestamps; pairs with a NaN on either side
    are dropped): for the mean the difference series is bootstrapped, so load shared by both
    tracks cancels; for the median both series are resampled with the same blocks and start
    points. Unpaired: each series is resampled independently.

    A side longer than 1024 samples (e.g. a 7-day historical baseline) is not bootstrapped; its
    sampling error comes from 16 batch statistics instead (see ``_batch_side``), which keeps the
    cost independent of the history length; ``block_length`` then reports the batch length if
    no side was bootstrapped. Fewer than 8 samples on a side give NaN bounds.

    ``settle_at``: values of the change where the caller's decision turns (for the verdict
    rules, ``judgement.decision_points``). With them the bootstrap runs in two halves and stops
    after the first when none of these values lies within the Monte Carlo uncertainty of
    either end: the band of t-quantiles an n_boot/2 run could have given, ±3 binomial standard
    deviations of the order statistic around each quantile. A decision then rests on the same
    side of every such value as with n_boot replicates (unless the bootstrap quantile itself
    is 3 standard deviations off) at half the cost; an end near a decision value gets all
    n_boot. ``n_boot`` of the result says how many were used.

    The returned interval always contains ``point`` (a bootstrap-t interval almost always does;
    the guard makes it a guarantee for the verdict rules). Deterministic for a given ``rng``
    state.
    """
    _check_confidence(confidence)
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100, got {n_boot}")
    if statistic not in ("mean", "median"):
        raise ValueError(f"statistic must be 'mean' or 'median', got {statistic!r}")

    if paired:
        c_raw = np.asarray(candidate, dtype=np.float64).ravel()
        b_raw = np.asarray(baseline, dtype=np.float64).ravel()
        if c_raw.shape != b_raw.shape:
            raise ValueError(
                f"paired series must have the same length, got {c_raw.size} and {b_raw.size}"
            )
        keep = ~(np.isnan(c_raw) | np.isnan(b_raw))
        c, b = c_raw[keep], b_raw[keep]
    else:
        c, b = finite_values(candidate), finite_values(baseline)

    n_c, n_b = int(c.size), int(b.size)
    point = float(_statistic(c, statistic) - _statistic(b, statistic)) if n_c and n_b else math.nan
    if min(n_c, n_b) < _MIN_INTERVAL_SAMPLES or not (
        np.all(np.isfinite(c)) and np.all(np.isfinite(b))
    ):
        return _nan_interval(point, confidence, statistic, paired, n_c, n_b, n_boot)

    sides: list[tuple[float, _Side]]
    if paired and statistic == "mean":
        # mean(c) - mean(b) == mean(c - b) exactly: one difference series.
        sides = [(1.0, _side([c - b], "mean", shared=False))]
    elif paired:
        sides = [(1.0, _side([c, b], statistic, shared=True))]
    else:
        sides = [
            (1.0, _side([c], statistic, shared=False)),
            (-1.0, _side([b], statistic, shared=False)),
        ]

    se = math.sqrt(sum(side.variance for _, side in sides))
    bootstrapped = [side for _, side in sides if side.bootstrapped]
    block = max(side.block for side in (bootstrapped or [s for _, s in sides]))
    method = (
        "prewhitened-block-bootstrap-t"
        if len(bootstrapped) == len(sides)
        else "batch-means-t"
        if not bootstrapped
        else "prewhitened-block-bootstrap-t+batch-means"
    )
    if se == 0.0:
        # Every series constant: no sampling variability to speak of.
        return DifferenceInterval(
            point, point, point, confidence, statistic, paired, method, n_c, n_b, block, n_boot
        )

    def t_statistics(size: int) -> FloatArray:
        replicate_stat = np.zeros(size, dtype=np.float64)
        replicate_var = np.zeros(size, dtype=np.float64)
        for sign, side in sides:
            stat, var = side.replicate(rng, size)
            replicate_stat += sign * stat
            replicate_var += var
        # A replicate whose series came out constant has zero spread; flooring its standard
        # error keeps its t-statistic finite (and very large, which is what it is).
        replicate_se = np.maximum(np.sqrt(np.maximum(replicate_var, 0.0)), se * 1e-9)
        return np.asarray((replicate_stat - point) / replicate_se, dtype=np.float64)

    alpha = 1.0 - confidence
    levels = (alpha / 2.0, 1.0 - alpha / 2.0)
    used = n_boot // 2 if settle_at else n_boot
    t_stats = t_statistics(used)
    if used < n_boot and not _settled(t_stats, levels, point, se, settle_at):
        t_stats = np.concatenate([t_stats, t_statistics(n_boot - used)])
        used = n_boot
    q_lo, q_hi = (float(q) for q in np.quantile(t_stats, levels))
    lo = min(point - q_hi * se, point)
    hi = max(point - q_lo * se, point)
    return DifferenceInterval(
        point, lo, hi, confidence, statistic, paired, method, n_c, n_b, block, used
    )


# Half-width, in binomial standard deviations, of the Monte Carlo band around a bootstrap
# quantile within which a decision value makes difference_interval run all its replicates.
_SETTLE_SDS: Final = 3.0


def _settled(
    t_stats: FloatArray,
    levels: tuple[float, float],
    point: float,
    se: float,
    decision_values: Sequence[float],
) -> bool:
    """Whether no decision value lies within the Monte Carlo band of either interval end.

    The q-quantile of B replicates is near the order statistic of rank q * B, which varies
    from run to run with sd sqrt(B q (1 - q)) ranks; the band spans the order statistics
    _SETTLE_SDS of those sds either side. An end is point - t * se for the other end's t.
    A band reaching past the smallest or largest replicate never settles (at confidence
    0.95 and 1,000 replicates it spans ranks 10-40 and 959-989).
    """
    size = t_stats.size
    ordered = np.sort(t_stats)
    for level, clamp in ((levels[0], max), (levels[1], min)):
        # The low t-quantile gives the upper end (clamped to at least the point, as the
        # reported interval is), the high one the lower end (at most the point).
        spread = _SETTLE_SDS * math.sqrt(size * level * (1.0 - level))
        low = math.floor(level * (size - 1) - spread)
        high = math.ceil(level * (size - 1) + spread)
        if low < 0 or high > size - 1:
            # The band does not fit in these replicates (a confidence close to 1): the
            # extreme replicate says nothing about how far the quantile may be.
            return False
        first = clamp(point - float(ordered[high]) * se, point)
        last = clamp(point - float(ordered[low]) * se, point)
        if any(first <= value <= last for value in decision_values):
            return False
    return True


def _u_null_distribution(m: int, n: int) -> FloatArray:
    """P(U = u), u = 0..m*n, for Mann-Whitney U without ties (Gaussian binomial coefficients).

    The counts are the coefficients of prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i); multiplying by
    (1 - q^k) is a shifted subtraction and dividing by (1 - q^i) a strided cumulative sum.
    """
    m, n = min(m, n), max(m, n)
    size = m * n + 1
    counts = np.zeros(size, dtype=np.float64)
    counts[0] = 1.0
    for i in range(1, m + 1):
        shift = n + i
        if shift < size:
            counts[shift:] = counts[shift:] - counts[: size - shift].copy()
        for residue in range(i):
            counts[residue::i] = np.cumsum(counts[residue::i])
    counts = np.maximum(counts, 0.0)
    total = float(counts.sum())
    return np.asarray(counts / total, dtype=np.float64)


def _u_null_cdf(m: int, n: int) -> FloatArray:
    """P(U <= u), u = 0..m*n. The same few window sizes come back every evaluation, so up
    to 50 x 50 it is built once per (m, n) and kept (at most 20 kB each)."""
    if max(m, n) <= _EXACT_RANK_MAX_N:
        return _u_null_cdf_kept(min(m, n), max(m, n))
    return np.cumsum(_u_null_distribution(m, n))


@functools.lru_cache(maxsize=256)
def _u_null_cdf_kept(m: int, n: int) -> FloatArray:
    cdf = np.cumsum(_u_null_distribution(m, n))
    cdf.setflags(write=False)
    return cdf


def _average_ranks(pooled: FloatArray) -> tuple[FloatArray, IntArray]:
    """Ranks 1..N with ties given their average rank, and the size of every tie group."""
    order = np.argsort(pooled, kind="mergesort")
    ordered = pooled[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    sizes = np.diff(np.append(starts, ordered.size))
    # A group covering sorted positions s..s+k-1 has ranks s+1..s+k, averaging s + (k+1)/2.
    averaged = np.repeat(starts + (sizes + 1) / 2.0, sizes)
    ranks = np.empty(pooled.size, dtype=np.float64)
    ranks[order] = averaged
    return ranks, sizes


def _mann_whitney_u(c: FloatArray, b: FloatArray) -> tuple[float, float, IntArray]:
    """U of `c` and the two-sided p-value, as ``scipy.stats.mannwhitneyu(c, b)`` computes them
    (method "auto": exact when a side has at most 8 samples and nothing is tied, else the
    normal approximation with tie and continuity corrections), without its array-API and
    axis machinery, which cost more than the test at these sizes. Also the tie-group sizes."""
    n_c, n_b = int(c.size), int(b.size)
    ranks, ties = _average_ranks(np.concatenate([c, b]))
    u_c = float(ranks[:n_c].sum()) - n_c * (n_c + 1) / 2.0
    u = max(u_c, n_c * n_b - u_c)
    if (n_c <= 8 or n_b <= 8) and ties.max() == 1:
        # P(U >= u) = P(U <= mn - u) by symmetry: a small tail sum, no cancellation.
        p = 2.0 * float(_u_null_cdf(n_c, n_b)[round(n_c * n_b - u)])
    else:
        n = n_c + n_b
        tie_term = float(np.sum(ties.astype(np.float64) ** 3 - ties))
        s = math.sqrt(n_c * n_b / 12.0 * ((n + 1) - tie_term / (n * (n - 1))))
        p = 2.0 * float(special.ndtr(-(u - n_c * n_b / 2.0 - 0.5) / s)) if s > 0.0 else 1.0
    return u_c, min(max(p, 0.0), 1.0), ties


def _count_pairs_at_most(c: FloatArray, b_sorted: FloatArray, t: float) -> int:
    """#{(i, j): c_i - b_j <= t}, i.e. #{b_j >= c_i - t} per i, in O(n_c log n_b)."""
    return int(np.sum(b_sorted.size - np.searchsorted(b_sorted, c - t, side="left")))


def _select_pairwise(c: FloatArray, b_sorted: FloatArray, rank: int) -> float:
    """The rank-th smallest (1-indexed) of all c_i - b_j with O(n_c + n_b) memory.

    Bisection on the value narrows (lo, hi] until few differences fall inside, which are then
    materialised and sorted.
    """
    limit = max(65_536, 4 * (c.size + b_sorted.size))
    lo = float(c.min() - b_sorted[-1])
    hi = float(c.max() - b_sorted[0])
    lo = lo - max(abs(lo), 1.0) * 1e-12
    count_lo = _count_pairs_at_most(c, b_sorted, lo)
    count_hi = _count_pairs_at_most(c, b_sorted, hi)
    while count_hi - count_lo > limit:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            # Values in (lo, hi] are identical to machine precision (ties).
            return hi
        count_mid = _count_pairs_at_most(c, b_sorted, mid)
        if count_mid >= rank:
            hi, count_hi = mid, count_mid
        else:
            lo, count_lo = mid, count_mid
    first = np.searchsorted(b_sorted, c - hi, side="left")
    stop = np.searchsorted(b_sorted, c - lo, side="left")
    lengths = np.maximum(stop - first, 0)
    total = int(lengths.sum())
    if total == 0:
        return hi
    rows = np.repeat(np.arange(c.size), lengths)
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    values = np.sort(c[rows] - b_sorted[np.repeat(first, lengths) + offsets])
    # Rounding can make the searchsorted counts and the subtracted values disagree by one.
    position = min(max(rank - count_lo - 1, 0), total - 1)
    return float(values[position])


def _pairwise_order_statistics(
    c: FloatArray, b: FloatArray, ranks: Sequence[int]
) -> tuple[FloatArray, Literal["materialised", "selection"]]:
    """Order statistics (1-indexed ranks) of all pairwise differences c_i - b_j."""
    wanted = np.asarray(ranks, dtype=np.intp) - 1
    if c.size * b.size <= _MAX_MATERIALISED_PAIRS:
        diffs = (c[:, None] - b[None, :]).ravel()
        partitioned = np.partition(diffs, np.unique(wanted))
        return np.asarray(partitioned[wanted], dtype=np.float64), "materialised"
    b_sorted = np.sort(b)
    selected = [_select_pairwise(c, b_sorted, int(r) + 1) for r in wanted]
    return np.asarray(selected, dtype=np.float64), "selection"


def mann_whitney_hodges_lehmann(
    candidate: npt.ArrayLike, baseline: npt.ArrayLike, *, confidence: float = 0.95
) -> RankTestResult:
    """Mann-Whitney U test, Hodges-Lehmann shift and its distribution-free (Moses) interval.

    The second opinion, as in Netflix's Kayenta judge: robust to outliers and skew, but it
    ASSUMES INDEPENDENT SAMPLES. Per-step metric samples are autocorrelated, so its p-value and
    interval are too optimistic; the verdict is driven by ``difference_interval`` and this result
    is reported alongside, never used alone.

    * U and the two-sided p-value are ``scipy.stats.mannwhitneyu``'s (same method, same
      numbers: tests/unit/test_statistics.py compares them).
    * The shift is the median of all n_c * n_b differences candidate_i - baseline_j.
    * The interval is [D_(k), D_(N-k+1)] of the sorted differences, k the alpha/2 quantile of
      the null distribution of U (Moses 1953; Bauer 1972): exact when both sides have at most
      50 samples and there are no ties, normal approximation with tie correction otherwise.
    * Up to 4 million pairs the differences are materialised; beyond that (e.g. a 7-day
      baseline) the needed order statistics are selected exactly by bisection on the value
      with memory linear in the sample sizes. No subsampling, so the result is deterministic.

    NaNs are dropped. With an empty side every number is NaN.
    """
    _check_confidence(confidence)
    c, b = finite_values(candidate), finite_values(baseline)
    n_c, n_b = int(c.size), int(b.size)
    if n_c == 0 or n_b == 0:
        nan = math.nan
        return RankTestResult(
            nan, nan, nan, nan, nan, confidence, nan, "normal", "materialised", n_c, n_b
        )
    u_statistic, p_value, tie_counts = _mann_whitney_u(c, b)
    n_pairs = n_c * n_b
    alpha = 1.0 - confidence
    has_ties = bool(tie_counts.max() > 1)
    ci_method: Literal["exact", "normal"]
    if max(n_c, n_b) <= _EXACT_RANK_MAX_N and not has_ties:
        ci_method = "exact"
        cdf = _u_null_cdf(n_c, n_b)
        # Smallest k with P(U <= k) >= alpha/2 (R's qwilcox), then P(U <= k-1) < alpha/2.
        k = max(int(np.searchsorted(cdf, alpha / 2.0 - 1e-12, side="left")), 1)
        achieved = 1.0 - 2.0 * float(cdf[k - 1])
    else:
        ci_method = "normal"
        n_total = n_c + n_b
        ties = tie_counts.astype(np.float64)
        tie_term = float(np.sum(ties**3 - ties)) / (n_total * (n_total - 1))
        sigma = math.sqrt(n_c * n_b / 12.0 * ((n_total + 1) - tie_term))
        z = float(special.ndtri(1.0 - alpha / 2.0))
        k = max(math.ceil(n_pairs / 2.0 - 0.5 - z * sigma), 1)
        achieved = (
            1.0 - 2.0 * float(special.ndtr((k - 1 + 0.5 - n_pairs / 2.0) / sigma))
            if sigma > 0.0
            else 0.0
        )
    k = min(k, (n_pairs + 1) // 2)
    # The median of an even number of differences is the mean of the middle two.
    median_ranks = [(n_pairs + 1) // 2] if n_pairs % 2 else [n_pairs // 2, n_pairs // 2 + 1]
    ranks = [*median_ranks, k, n_pairs - k + 1]
    values, pairwise = _pairwise_order_statistics(c, b, ranks)
    shift = float(values[: len(median_ranks)].mean())
    return RankTestResult(
        u_statistic=u_statistic,
        p_value=p_value,
        shift=shift,
        shift_ci_low=float(values[-2]),
        shift_ci_high=float(values[-1]),
        confidence=confidence,
        achieved_confidence=achieved,
        ci_method=ci_method,
        pairwise=pairwise,
        n_candidate=n_c,
        n_baseline=n_b,
    )


def relative_change(point: float, base: float) -> float | None:
    """``point`` (a change) as a percentage of ``|base|``; None when base is ~0 (at most 1e-12
    of the larger of ``|base|`` and ``|base + point|``) or not finite.

    The absolute value keeps the sign meaning "up" vs "down" even for negative baselines.
    """
    if not (math.isfinite(point) and math.isfinite(base)):
        return None
    if abs(base) <= _ZERO_TOLERANCE * max(abs(base), abs(base + point)):
        return None
    return 100.0 * point / abs(base)
