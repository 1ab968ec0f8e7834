"""CapacityPlan anomaly detectors: spikes, GPU memory growth, throttling and XID errors.

Each detector reads ONE series (one GPU, or one node) and returns frozen findings with
times in the series' own unit (seconds; Unix seconds when fed from Prometheus). The caller
knows which node and GPU the series belongs to and attaches them. DCGM sentinels, NaN and
infinities are dropped through ``dcgm.valid_samples`` before anything else.

Spikes and memory growth work on a regular time grid: the step is the median spacing of
the timestamps, and missing timestamps become NaN slots, so a rolling window of k slots is
always k steps of time. The throttling and XID detectors work on the samples as they are.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from perfguard.analysis.capacity_fit import theil_sen
from perfguard.analysis.dcgm import (
    HW_SLOWDOWN,
    THERMAL_MASK,
    Severity,
    decode_clock_events,
    split_clock_events,
    valid_samples,
    xid_info,
)

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
Direction: TypeAlias = Literal["up", "down", "both"]

__all__ = [
    "DEFAULT_MIN_DELTA",
    "DEFAULT_NOISE_FLOOR",
    "AnomalyFinding",
    "AnomalyKind",
    "Direction",
    "detect_memory_growth",
    "detect_spikes",
    "detect_throttling",
    "detect_xid",
    "with_peak_reading",
]


class AnomalyKind(StrEnum):
    UTILIZATION_SPIKE = "UtilizationSpike"
    THERMAL_THROTTLING = "ThermalThrottling"
    POWER_CAPPING = "PowerCapping"
    XID_ERROR = "XidError"
    GPU_MEMORY_GROWTH = "GpuMemoryGrowth"


@dataclass(frozen=True, slots=True)
class AnomalyFinding:
    """One anomalous episode of one series.

    ``start_s`` is the first anomalous sample; ``end_s`` the last one, or None while the
    episode reaches the series' last sample (ongoing). ``value`` and ``reference`` depend on
    the kind:

    * UtilizationSpike: the most extreme sample of the episode; the recent level it was
      measured against (at the episode's start).
    * GpuMemoryGrowth: the measured growth in percent of the framebuffer per hour; the
      threshold in %/h.
    * ThermalThrottling / PowerCapping: the bitwise OR of the kind's clock-event bits seen
      during the episode (hardware slowdown 0x8 included where it went to this kind); None.
    * XidError: the XID code; None.

    ``message`` says the same in words, with the numbers, for status and Events.
    """

    kind: AnomalyKind
    start_s: float
    end_s: float | None
    severity: Severity
    value: float
    reference: float | None
    message: str


# An absolute floor for spikes of percent utilisation: at a level of 4 %, +20 % is 0.8 of a
# point, i.e. rounding noise of the integer DCGM gauge; a spike must also be at least this
# many points above the recent level.
DEFAULT_MIN_DELTA: Final = 5.0

# A spike must also stand this many robust standard deviations (1.4826 * MAD) of the
# series' own deviations from its trailing level away from that level. Utilisation is
# noisy: on the synthetic fleet (AR(1) noise, traffic wander, a daily cycle the trailing
# median lags) deviations of 11 points at a level of 55 % are a 1-in-1000 event, i.e. +20 %
# "spikes" every few GPU-days. At 5 robust SDs 2240 clean GPU-days gave no alarm, while a
# +30-point spike is still caught every time (+20 points: about two in three).
DEFAULT_NOISE_FLOOR: Final = 5.0

# A trailing window holds at least this many slots, whatever baseline_s / step says.
_MIN_WINDOW_SLOTS: Final = 3

# Memory-growth windows must be at least two thirds present to be judged.
_MIN_PRESENT_SHARE: Final = 2.0 / 3.0

# Throttling episodes this close (seconds between the last flagged sample of one and the
# first of the next) are one episode: a GPU hovering at its power cap sets and clears the
# bit from one scrape to the next, and that is one problem, not twenty.
_DEFAULT_MERGE_GAP_S: Final = 600.0

_MAD_TO_SD: Final = 1.4826

# A series with no sample in this long (or one step, if longer) before the end of the
# evaluated span has stopped reporting (the same 15 minutes CapacityPlan calls "now"): an
# episode running up to its last sample is then not ongoing but of unknown state.
STOPPED_AFTER_S: Final = 900.0


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class _Grid:
    times: FloatArray  # the sample's own timestamp where one landed, else the slot's time
    values: FloatArray  # NaN where nothing (valid) landed
    step: float


def _on_grid(times_s: npt.ArrayLike, values: npt.ArrayLike) -> _Grid | None:
    t = np.asarray(times_s, dtype=np.float64).ravel()
    x = valid_samples(np.asarray(values, dtype=np.float64).ravel())
    if t.shape != x.shape:
        raise ValueError(f"times and values differ in length: {t.size} and {x.size}")
    keep = np.isfinite(t)
    t, x = t[keep], x[keep]
    if t.size < 2:
        return None
    order = np.argsort(t, kind="stable")
    t, x = t[order], x[order]
    gaps = np.diff(t)
    positive = gaps[gaps > 0.0]
    if positive.size == 0:
        return None
    step = float(np.median(positive))
    slots = np.rint((t - t[0]) / step).astype(np.intp)
    size = int(slots[-1]) + 1
    grid_t = t[0] + step * np.arange(size, dtype=np.float64)
    grid_x = np.full(size, np.nan)
    grid_t[slots] = t
    grid_x[slots] = x
    # Nothing to judge without a finite value (FB_FREE all DCGM blanks, used and free never
    # present together): no grid, so no detector has to handle an all-NaN series.
    if not np.isfinite(grid_x).any():
        return None
    return _Grid(grid_t, grid_x, step)


def _nan_median_rows(rows: FloatArray, min_count: int) -> FloatArray:
    """Median of each row ignoring NaN; NaN where fewer than ``min_count`` values remain.

    Sorting puts NaN last, so the median of the k finite values sits at (k-1)//2 and k//2.
    For the short rows used here (tens of values) this is much faster than np.nanmedian.
    """
    if rows.shape[0] == 0:
        return np.empty(0)
    ordered = np.sort(rows, axis=1)
    counts = np.sum(np.isfinite(rows), axis=1)
    lo = np.maximum(counts - 1, 0) // 2
    hi = np.maximum(counts, 1) // 2
    hi = np.minimum(hi, rows.shape[1] - 1)
    low = np.take_along_axis(ordered, lo[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, hi[:, None], axis=1)[:, 0]
    median = 0.5 * (low + high)
    return np.where(counts >= max(min_count, 1), median, np.nan)


def _window_rows(x: FloatArray, offset: int, length: int) -> FloatArray:
    """Row i holds x[i + offset : i + offset + length]; slots outside the series are NaN.

    A strided view over a padded copy: no per-row copies until the caller reduces it.
    """
    n = x.size
    pad_left = max(-offset, 0)
    pad_right = max(offset + length - 1, 0)
    padded = np.concatenate([np.full(pad_left, np.nan), x, np.full(pad_right, np.nan)])
    windows = sliding_window_view(padded, length)
    first = offset + pad_left
    return windows[first : first + n]


def _window_medians(x: FloatArray, offset: int, length: int, min_count: int) -> FloatArray:
    """For every slot i, the NaN-aware median of x[i + offset : i + offset + length].

    O(n * length); ``length`` is a few tens.
    """
    return _nan_median_rows(_window_rows(x, offset, length), min_count)


def _window_extremes(
    x: FloatArray, offset: int, length: int, min_count: int
) -> tuple[FloatArray, FloatArray]:
    """For every slot i, the NaN-aware min and max of x[i + offset : i + offset + length]."""
    rows = _window_rows(x, offset, length)
    counts = np.sum(np.isfinite(rows), axis=1)
    enough = counts >= max(min_count, 1)
    low = np.where(np.isfinite(rows), rows, np.inf).min(axis=1, initial=np.inf)
    high = np.where(np.isfinite(rows), rows, -np.inf).max(axis=1, initial=-np.inf)
    return np.where(enough, low, np.nan), np.where(enough, high, np.nan)


def _robust_spread(residuals: FloatArray) -> float:
    """1.4826 * MAD of the finite residuals (0 when there are none)."""
    r = residuals[np.isfinite(residuals)]
    if r.size == 0:
        return 0.0
    return _MAD_TO_SD * float(np.median(np.abs(r - np.median(r))))


def _expanding_spread(residuals: FloatArray, every: int) -> FloatArray:
    """For every slot, ``_robust_spread`` of the residuals strictly before it.

    Recomputed at every ``every``-th slot and held in between (the spread of hundreds of
    past deviations hardly moves within an hour), which keeps the cost at O(n^2 / every).
    NaN (no floor from noise) until ``every`` finite residuals exist.
    """
    spread = np.full(residuals.size, np.nan)
    finite_before = np.concatenate([[0], np.cumsum(np.isfinite(residuals))])
    for block in range(0, residuals.size, every):
        if finite_before[block] >= every:
            spread[block : block + every] = _robust_spread(residuals[:block])
    return spread


def _runs(flags: BoolArray) -> list[tuple[int, int]]:
    """(first, last) index pairs of the runs of True, last inclusive."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1) - 1
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _merge_runs(runs: list[tuple[int, int]], max_gap: int) -> list[tuple[int, int]]:
    """Join runs separated by at most ``max_gap`` slots."""
    merged: list[tuple[int, int]] = []
    for first, last in runs:
        if merged and first - merged[-1][1] - 1 <= max_gap:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged


def _stopped_for(last_sample_s: float, span_end_s: float, step_s: float) -> float | None:
    """How long the series has been silent at the end of the span, if it has stopped."""
    gap = span_end_s - last_sample_s
    return gap if gap > max(STOPPED_AFTER_S, step_s) else None


def _span(times_s: npt.ArrayLike) -> tuple[float, float]:
    """The end of the evaluated span (the last timestamp given, with or without a value)
    and its step (the median spacing)."""
    t = np.asarray(times_s, dtype=np.float64).ravel()
    t = np.sort(t[np.isfinite(t)])
    if t.size == 0:
        return math.nan, math.nan
    gaps = np.diff(t)
    positive = gaps[gaps > 0.0]
    return float(t[-1]), float(np.median(positive)) if positive.size else 0.0


def _stopped_note(silent_s: float) -> str:
    return (
        f"; its series stopped reporting {silent_s / 3600.0:.1f} h before the end of the "
        "history: ended at its last sample, current state unknown"
    )


def _end(
    last: int, last_present: int, times: FloatArray, silent_s: float | None
) -> tuple[float | None, str]:
    """An episode's end (None: ongoing) and the note for its message: one that reaches the
    series' last sample (index ``last_present`` in ``times``) is ongoing unless the series
    has stopped since; it then ends at that sample."""
    if last < last_present:
        return float(times[last]), ""
    if silent_s is None:
        return None, ""
    return float(times[last_present]), _stopped_note(silent_s)


def _format_duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# --------------------------------------------------------------------------- spikes


def detect_spikes(
    times_s: npt.ArrayLike,
    values: npt.ArrayLike,
    spike_percent: float,
    *,
    baseline_s: float = 3600.0,
    min_delta: float = DEFAULT_MIN_DELTA,
    noise_floor: float | None = DEFAULT_NOISE_FLOOR,
    direction: Direction = "up",
    season_s: float | None = None,
    causal: bool = False,
) -> list[AnomalyFinding]:
    """Samples that jump more than ``spike_percent`` % away from the recent level.

    The recent level at slot i is the median of the slots in the preceding ``baseline_s``
    (i excluded; at least half of them present, otherwise no judgement). A sample is
    anomalous when its distance from that level exceeds BOTH

    * ``spike_percent`` % of |level| (the spec's relative threshold), and
    * a floor: ``min_delta`` in the series' unit (5 points suits percent utilisation; 0
      for a series of unknown unit), raised to ``noise_floor`` robust standard deviations
      of the series' deviations from its trailing level (1.4826 * MAD over the whole
      series) when ``noise_floor`` is not None. The noise term keeps a noisy series from
      alarming on its everyday jitter (see ``DEFAULT_NOISE_FLOOR``) and lets the same
      detector run on series of any unit (NAB's bytes and request counts) without a
      per-series constant. It looks at the whole series, which suits the batch evaluation
      CapacityPlan runs over its history.

    ``direction`` picks upward, downward or both kinds of jump (CapacityPlan looks up only).
    ``season_s`` (e.g. 86400) adds a seasonal check: the sample must also stand out, in
    the same direction and by the same criteria, from everything in the same-length window
    centred one season earlier (above its maximum, or below its minimum). A daily ramp or
    square wave then no longer reads as a jump every morning, even when today's ramp comes
    half a window earlier or later than yesterday's; where the history does not reach back
    a season, the check is skipped.

    ``causal=True`` makes every decision from the past alone, as a streaming detector must
    (the rules of the Numenta Anomaly Benchmark): the noise floor at a sample then comes
    from the deviations before it (refreshed every w slots; no noise floor before w of them
    exist). Everything else is causal anyway.

    Consecutive anomalous samples (an isolated missing sample does not interrupt them) form
    one finding starting at the first. A level shift is reported the same way: its first
    sample stands out, and the finding lasts until the trailing median has moved to the new
    level (about ``baseline_s`` / 2 later), so ``end_s`` of a lasting shift marks when it
    became the new normal, not when it went away.

    Cost: O(n * w) with w = baseline_s / step slots (12 at a 5-minute step), all in numpy;
    512 GPUs * 2016 samples take well under a second. The grid assumes roughly regular
    timestamps (Prometheus range queries): the step is their median spacing.
    """
    if spike_percent <= 0.0:
        raise ValueError(f"spike_percent must be positive, got {spike_percent}")
    if baseline_s <= 0.0:
        raise ValueError(f"baseline_s must be positive, got {baseline_s}")
    if direction not in ("up", "down", "both"):
        raise ValueError(f"direction must be up, down or both, got {direction!r}")
    grid = _on_grid(times_s, values)
    if grid is None:
        return []
    x = grid.values
    w = max(_MIN_WINDOW_SLOTS, round(baseline_s / grid.step))
    min_count = math.ceil(w / 2)
    level = _window_medians(x, -w, w, min_count)
    floor: float | FloatArray = max(min_delta, 0.0)
    if noise_floor is not None:
        spread = _expanding_spread(x - level, w) if causal else _robust_spread(x - level)
        floor = np.fmax(floor, noise_floor * spread)
    share = spike_percent / 100.0

    def beyond(reference: FloatArray) -> tuple[BoolArray, BoolArray]:
        delta = x - reference
        margin = np.maximum(share * np.abs(reference), floor)
        with np.errstate(invalid="ignore"):
            return delta > margin, -delta > margin

    up, down = beyond(level)
    if season_s is not None:
        lag = round(season_s / grid.step)
        low, high = _window_extremes(x, -lag - w // 2, w, min_count)
        up &= beyond(high)[0] | np.isnan(high)
        down &= beyond(low)[1] | np.isnan(low)
    flags = {"up": up, "down": down, "both": up | down}[direction]
    missing = np.isnan(x)
    bridged = flags.copy()
    bridged[1:-1] |= missing[1:-1] & flags[:-2] & flags[2:]

    findings: list[AnomalyFinding] = []
    last_slot = int(np.flatnonzero(~missing)[-1]) if np.any(~missing) else -1
    silent = _stopped_for(float(grid.times[last_slot]), float(grid.times[-1]), grid.step)
    for first, last in _runs(bridged):
        episode = slice(first, last + 1)
        deviation = np.abs(np.nan_to_num(x[episode] - level[episode], nan=0.0))
        peak = first + int(np.argmax(deviation))
        reference = float(level[first])
        value = float(x[peak])
        change = (
            f"{100.0 * (value - reference) / abs(reference):+.0f} %"
            if reference != 0.0
            else f"{value - reference:+.4g}"
        )
        end_s, note = _end(last, last_slot, grid.times, silent)
        findings.append(
            AnomalyFinding(
                kind=AnomalyKind.UTILIZATION_SPIKE,
                start_s=float(grid.times[first]),
                end_s=end_s,
                severity="Warning",
                value=value,
                reference=reference,
                message=(
                    f"{value:.4g} is {change} against the recent level {reference:.4g} "
                    f"(median of the preceding {_format_duration(baseline_s)}; "
                    f"threshold {spike_percent:g} %)" + note
                ),
            )
        )
    return findings


# --------------------------------------------------------------------------- memory growth


def _pairwise_slope_medians(
    windows: FloatArray, columns: range, step_h: float, min_present: int
) -> FloatArray:
    """Theil-Sen slope (per hour) of each row of ``windows`` over the given columns."""
    cols = np.asarray(columns, dtype=np.intp)
    i, j = np.triu_indices(cols.size, k=1)
    sub = windows[:, cols]
    slopes = (sub[:, j] - sub[:, i]) / ((cols[j] - cols[i]) * step_h)
    present = np.sum(np.isfinite(sub), axis=1)
    medians = _nan_median_rows(slopes, 1)
    return np.where(present >= min_present, medians, np.nan)


def _growth_onset(
    t_h: FloatArray, x: FloatArray, candidates: range, fit_lo: int, fit_hi: int
) -> int:
    """Slot where a hinge line (level + pre-slope, then extra growth) fits x[fit_lo..fit_hi]
    best, among ``candidates``.

    Least squares of y = a + c*t + b*max(0, t - t_s) with b > 0. The pre-slope c absorbs
    load-following drift (memory that follows traffic through the day), so the onset found
    is where growth ACCELERATES, which is what a leak starting looks like.
    """
    segment = slice(fit_lo, fit_hi + 1)
    t = t_h[segment] - t_h[fit_lo]
    y = x[segment]
    present = np.isfinite(y)
    t, y = t[present], y[present]
    best, best_sse = candidates[-1], math.inf
    for s in candidates:
        hinge = np.maximum(t - (t_h[s] - t_h[fit_lo]), 0.0)
        design = np.column_stack([np.ones_like(t), t, hinge])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        if coef[2] <= 0.0:
            continue
        sse = float(np.sum((design @ coef - y) ** 2))
        if sse < best_sse:
            best, best_sse = s, sse
    return best


def _merge_episodes(
    episodes: list[tuple[int, int, int]], max_gap: int
) -> list[tuple[int, int, int, int]]:
    """Join growth episodes (weak first, strong first, weak last) less than ``max_gap``
    slots apart; each result also says how many episodes it joined."""
    merged: list[tuple[int, int, int, int]] = []
    for weak_first, first, last in episodes:
        if merged and weak_first - merged[-1][2] - 1 <= max_gap:
            previous = merged[-1]
            merged[-1] = (previous[0], previous[1], last, previous[3] + 1)
        else:
            merged.append((weak_first, first, last, 1))
    return merged


def detect_memory_growth(
    times_s: npt.ArrayLike,
    used_mib: npt.ArrayLike,
    total_mib: npt.ArrayLike | float,
    percent_per_hour: float,
    *,
    min_duration_s: float = 3600.0,
) -> list[AnomalyFinding]:
    """GPU framebuffer use (percent of total) growing faster than ``percent_per_hour``.

    Test: the Theil-Sen slope of used/total*100 over the trailing ``min_duration_s`` (a
    window of w+1 slots, at least two thirds present) exceeds ``percent_per_hour`` at every
    slot for another ``min_duration_s`` (w+1 consecutive window ends). So the growth is
    measured over an hour and has to hold for an hour, which is what tells a leak from
    the rest:

    * Memory that follows traffic through the day grows at 1-2 %/h at most.
    * Correlated noise and traffic wander do reach 5 %/h over single hours: on the
      synthetic fleet the one-hour slope alone passed 5 %/h about once every 30 GPU-days;
      held for an hour, never in 2240 GPU-days (and 6 times at a 4 %/h threshold).
    * A step (load jumps, memory follows at once) tilts only the windows around it, fewer
      than w of them: 144 simulated utilisation spikes and level shifts gave no finding.
    * A steep but real load ramp IS memory growing that fast, and is reported; the
      detector does not know the load.

    Once found, the finding extends while the one-hour slope stays above half the
    threshold (hysteresis), so a leak partly masked by falling load is one finding, and
    findings less than a window apart are merged. A merged finding must still grow: when
    its Theil-Sen rate from onset to end is at or below the threshold, memory rose, was
    released and rose again without net growth (a caching allocator's sawtooth, a job
    restarting), and it is dropped. Growth whose troughs rise faster than the threshold
    under such a sawtooth stays one finding at the net rate.

    Detection delay: the window slope passes the threshold when the window is mostly inside
    the growth and must then hold for ``min_duration_s``. For an 8 %/h leak at a 5-minute
    step that was 85-120 minutes after onset in 30 of 32 runs (median 100), 170 and 240 in
    the two where falling load hid part of the leak. ``start_s`` is not the detection time but the
    estimated onset: the break point of a hinge line (level + slope, then extra growth)
    fitted around the first detection (``_growth_onset``). On the synthetic fleet an
    8 %/h leak (0.67 points per step against ~0.7 points of correlated noise) was placed
    within -2..+3 steps of the true onset in 32 of 32 runs, within one step in 22: the
    first steps of a slow leak are indistinguishable from noise, and no method can place
    them more precisely. ``value`` is the Theil-Sen growth rate from the onset to the end
    of the finding; leaks slower than ~1.3x the threshold may go unreported while the
    daily load is falling.
    """
    if percent_per_hour <= 0.0:
        raise ValueError(f"percent_per_hour must be positive, got {percent_per_hour}")
    used = valid_samples(used_mib)
    total = valid_samples(np.broadcast_to(np.asarray(total_mib, dtype=np.float64), used.shape))
    with np.errstate(invalid="ignore", divide="ignore"):
        percent = np.where(total > 0.0, 100.0 * used / total, np.nan)
    grid = _on_grid(times_s, percent)
    if grid is None:
        return []
    x = grid.values
    w = max(_MIN_WINDOW_SLOTS + 1, round(min_duration_s / grid.step))
    if x.size < w + 1:
        return []
    step_h = grid.step / 3600.0
    windows = sliding_window_view(x, w + 1)
    need = math.ceil(_MIN_PRESENT_SHARE * (w + 1))
    full = _pairwise_slope_medians(windows, range(w + 1), step_h, need)
    # Row r of the windows ends at slot r + w.
    strong = np.zeros(x.size, dtype=np.bool_)
    weak = np.zeros(x.size, dtype=np.bool_)
    with np.errstate(invalid="ignore"):
        strong[w:] = full > percent_per_hour
        weak[w:] = full > percent_per_hour / 2.0
    t_h = (grid.times - grid.times[0]) / 3600.0
    last_slot = int(np.flatnonzero(np.isfinite(x))[-1])
    silent = _stopped_for(float(grid.times[last_slot]), float(grid.times[-1]), grid.step)
    # Episodes: runs of weak growth that hold a sustained run of strong growth.
    sustained = [(a, b) for a, b in _runs(strong) if b - a >= w]
    episodes: list[tuple[int, int, int]] = []  # weak first, strong first, weak last
    for weak_first, weak_last in _runs(weak):
        inside = [a for a, b in sustained if weak_first <= a and b <= weak_last]
        if inside:
            episodes.append((weak_first, inside[0], weak_last))

    findings: list[AnomalyFinding] = []
    for weak_first, first, last, parts in _merge_episodes(episodes, w):
        # The onset lies before the first strongly growing window's end, at most a window
        # before weak growth became visible; bounded to 3 windows before detection.
        lo = max(weak_first - w, first - 3 * w, 3)
        candidates = range(min(lo, first), first + 1)
        onset = _growth_onset(
            t_h, x, candidates, max(candidates[0] - w, 0), min(first + w, x.size - 1)
        )
        fit = theil_sen(t_h[onset : last + 1], x[onset : last + 1])
        rate = fit.slope if fit is not None else float(full[first - w])
        if parts > 1 and rate <= percent_per_hour:
            # Growth, release, growth again without net growth: memory cycling (a caching
            # allocator filling and releasing, a job restarting), not a leak.
            continue
        now = float(x[last]) if np.isfinite(x[last]) else float(np.nanmax(x[onset : last + 1]))
        to_full = (100.0 - now) / rate if rate > 0.0 else math.inf
        end_s, note = _end(last, last_slot, grid.times, silent)
        if note:
            tail = note  # how soon it fills needs the memory still growing now
        elif to_full >= 0.05:
            tail = f", full in about {to_full:.1f} h at this rate"
        else:
            tail = ", full"
        findings.append(
            AnomalyFinding(
                kind=AnomalyKind.GPU_MEMORY_GROWTH,
                start_s=float(grid.times[onset]),
                end_s=end_s,
                severity="Warning",
                value=rate,
                reference=percent_per_hour,
                message=(
                    f"GPU memory grows {rate:.1f} %/h (threshold {percent_per_hour:g} %/h); "
                    f"{now:.0f} % used{tail}"
                ),
            )
        )
    return findings


# --------------------------------------------------------------------------- throttling, XID


def _present(times_s: npt.ArrayLike, values: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    t = np.asarray(times_s, dtype=np.float64).ravel()
    x = valid_samples(np.asarray(values, dtype=np.float64).ravel())
    if t.shape != x.shape:
        raise ValueError(f"times and values differ in length: {t.size} and {x.size}")
    keep = np.isfinite(t) & np.isfinite(x) & (x >= 0.0)
    t, x = t[keep], x[keep]
    order = np.argsort(t, kind="stable")
    return t[order], x[order]


def _throttle_what(kind: AnomalyKind, seen: int) -> str:
    if kind is AnomalyKind.POWER_CAPPING:
        return "Power capping"
    if seen & THERMAL_MASK:
        return "Thermal throttling"
    return "Hardware slowdown without a thermal or power reason, counted as thermal"


def _throttle_episodes(
    t: FloatArray,
    masks: npt.NDArray[np.int64],
    critical_bits: int,
    kind: AnomalyKind,
    merge_gap_s: float,
    silent_s: float | None,
) -> list[AnomalyFinding]:
    """Episodes of the samples with any bit of ``masks`` (this kind's bits only)."""
    flags = masks != 0
    runs: list[tuple[int, int]] = []
    for first, last in _runs(flags):
        if runs and t[first] - t[runs[-1][1]] <= merge_gap_s:
            runs[-1] = (runs[-1][0], last)
        else:
            runs.append((first, last))
    findings = []
    for first, last in runs:
        seen = int(np.bitwise_or.reduce(masks[first : last + 1]))
        reasons = ", ".join(sorted(str(e) for e in decode_clock_events(seen)))
        share = float(np.mean(flags[first : last + 1]))
        end_s, note = _end(last, t.size - 1, t, silent_s)
        findings.append(
            AnomalyFinding(
                kind=kind,
                start_s=float(t[first]),
                end_s=end_s,
                severity="Critical" if seen & critical_bits else "Warning",
                value=float(seen),
                reference=None,
                message=(
                    f"{_throttle_what(kind, seen)} ({reasons}, mask {seen:#x}) in "
                    f"{100.0 * share:.0f} % of "
                    f"{last - first + 1} samples{note}"
                ),
            )
        )
    return findings


def detect_throttling(
    times_s: npt.ArrayLike,
    masks: npt.ArrayLike,
    *,
    merge_gap_s: float = _DEFAULT_MERGE_GAP_S,
) -> list[AnomalyFinding]:
    """Thermal-throttling and power-capping episodes from a clock-event-reasons series.

    ThermalThrottling: bits 0x20 (software thermal) or 0x40 (hardware thermal).
    PowerCapping: bits 0x4 (software power cap) or 0x80 (hardware power brake). Hardware
    slowdown (0x8) joins PowerCapping in a sample with a power bit and ThermalThrottling
    otherwise, also alone (``dcgm.split_clock_events``). An episode starts at the first
    sample with a bit of its kind; episodes less than ``merge_gap_s`` apart (10 min by
    default) are one.

    Severity: Critical when a HARDWARE bit of the kind (0x40 or 0x8; 0x80 or 0x8) was
    seen. Software slowdown is the driver keeping the GPU inside its limits, which costs
    throughput and deserves a Warning; hardware slowdown means the limit was hit anyway
    (cooling failure, a power-supply or chassis signal), clocks drop hard, and the hardware
    needs a look. Findings are thermal first, then power, each in time order.
    """
    t, x = _present(times_s, masks)
    if t.size == 0:
        return []
    silent = _stopped_for(float(t[-1]), *_span(times_s))
    thermal_bits, power_bits = split_clock_events(x.astype(np.int64))
    thermal = _throttle_episodes(
        t, thermal_bits, 0x40 | HW_SLOWDOWN, AnomalyKind.THERMAL_THROTTLING, merge_gap_s, silent
    )
    power = _throttle_episodes(
        t, power_bits, 0x80 | HW_SLOWDOWN, AnomalyKind.POWER_CAPPING, merge_gap_s, silent
    )
    return thermal + power


# A series whose first reading comes this long after the history begins is a new one.
XID_NEW_SERIES_S: Final = 3600.0


def detect_xid(times_s: npt.ArrayLike, codes: npt.ArrayLike) -> list[AnomalyFinding]:
    """One finding per new non-zero XID in a ``DCGM_FI_DEV_XID_ERRORS`` series.

    The gauge holds the last XID the GPU reported until the exporter restarts; a finding
    starts wherever it changes to a non-zero code (from 0 or from another code) and lasts
    while the code stays. A code already there when the history begins (or within an hour
    of it: a scrape gap) is not a finding: it may be months old, and reporting it would
    keep an anomaly ongoing for as long as the gauge holds it, with a start that moves
    with the series' first sample. Missing and
    sentinel samples are skipped without resetting anything: 79, (gap), 79 is one
    episode, 79, 0, 79 are two. Severity and description come from the XID table.
    """
    grid = np.asarray(times_s, dtype=np.float64)
    t, x = _present(times_s, codes)
    if t.size == 0:
        return []
    code = np.rint(x).astype(np.int64)
    silent = _stopped_for(float(t[-1]), *_span(times_s))
    # A series that begins well after the history's first slot (a new node, an exporter
    # started since: not a scrape gap) begins at a reading the gauge took then: news.
    began_later = bool(grid.size) and t[0] - float(np.nanmin(grid)) > XID_NEW_SERIES_S
    changed = np.concatenate([[began_later], code[1:] != code[:-1]])
    starts = np.flatnonzero(changed & (code != 0))
    boundaries = np.flatnonzero(changed)
    findings = []
    for first in starts:
        later = boundaries[boundaries > first]
        last = int(later[0]) - 1 if later.size else t.size - 1
        info = xid_info(int(code[first]))
        described = (
            f"XID {info.code}"
            if info.description == f"XID {info.code}"
            else f"XID {info.code}: {info.description}"
        )
        end_s, note = _end(last, t.size - 1, t, silent)
        findings.append(
            AnomalyFinding(
                kind=AnomalyKind.XID_ERROR,
                start_s=float(t[first]),
                end_s=end_s,
                severity=info.severity,
                value=float(info.code),
                reference=None,
                message=f"{described} ({info.severity}){note}",
            )
        )
    return findings


# What a throttling episode's message adds from the GPU's own readings (DCGM): how hot it ran
# while throttled for temperature, how much power it drew while capped.
PEAK_READINGS: Final = {
    AnomalyKind.THERMAL_THROTTLING: ("temperature", "°C"),
    AnomalyKind.POWER_CAPPING: ("power draw", "W"),
}


def with_peak_reading(
    finding: AnomalyFinding, times_s: npt.ArrayLike, values: npt.ArrayLike
) -> AnomalyFinding:
    """``finding`` with the highest reading during its episode added to its message, e.g.
    "...; temperature up to 91 °C" (kinds in ``PEAK_READINGS`` only).

    The episode runs from ``start_s`` to ``end_s`` (to the last sample while ongoing). With
    no valid reading inside it (none fetched, only DCGM sentinels), the finding is returned
    unchanged: the episode itself stands on the clock-event bits, the reading only explains.
    """
    described = PEAK_READINGS.get(finding.kind)
    if described is None:
        return finding
    t, x = _present(times_s, values)
    end = math.inf if finding.end_s is None else finding.end_s
    inside = (t >= finding.start_s) & (t <= end)
    if not inside.any():
        return finding
    what, unit = described
    peak = float(x[inside].max())
    return dataclasses.replace(
        finding, message=f"{finding.message}; {what} up to {peak:.0f} {unit}"
    )
