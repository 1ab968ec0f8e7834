"""Fetch a PerfBaseline's samples: two range queries per metric, shaped into arrays."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from perfguard.api.perfbaseline import MetricSpec, MetricType, PerfBaselineSpec
from perfguard.engine.tracks import TrackPlan, baseline_step, rate_window
from perfguard.sources.perfbaseline_queries import STAT_LABEL, TRACK_LABEL, Track, window_query
from perfguard.sources.prometheus import PrometheusClient, PrometheusError, Series
from perfguard.sources.promql import UnsafeQueryError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TimedSamples:
    timestamps: FloatArray
    values: FloatArray

    @classmethod
    def empty(cls) -> TimedSamples:
        return cls(np.empty(0), np.empty(0))

    def finite(self) -> TimedSamples:
        keep = np.isfinite(self.values)
        return TimedSamples(self.timestamps[keep], self.values[keep])

    def present(self) -> TimedSamples:
        """The steps with a value: NaN is none, ±Inf is one (see analysis/infinities.py)."""
        keep = ~np.isnan(self.values)
        return TimedSamples(self.timestamps[keep], self.values[keep])

    def __len__(self) -> int:
        return int(self.values.size)


WORKLOAD = Track("workload", {})


def judged_on_workload(metric: MetricSpec) -> bool:
    """Throughput is a volume: a canary taking 10 % of the traffic serves 10 % of the
    requests. Comparing volumes between tracks says nothing about the candidate, so
    throughput is judged for the whole workload against its own history."""
    return metric.type == MetricType.THROUGHPUT


@dataclass
class MetricSamples:
    """Everything one metric's queries returned, keyed by (track, statistic)."""

    window: dict[tuple[str, str], TimedSamples] = field(default_factory=dict)
    stages: dict[tuple[str, str], TimedSamples] = field(default_factory=dict)
    baseline: dict[str, TimedSamples] = field(default_factory=dict)
    error: PrometheusError | None = None
    problem: str | None = None  # e.g. a Query that returned several series


@dataclass(frozen=True)
class Windows:
    start: datetime
    end: datetime
    step: timedelta
    baseline_start: datetime
    baseline_end: datetime
    baseline_step: timedelta
    rate_window: timedelta


def windows(spec: PerfBaselineSpec, at: datetime) -> Windows:
    start = at - spec.analysis.window
    return Windows(
        start=start,
        end=at,
        step=spec.analysis.step,
        baseline_start=start - spec.baseline.window,
        baseline_end=start,
        baseline_step=baseline_step(spec),
        rate_window=rate_window(spec),
    )


def _shape(
    series: Sequence[Series], stage_label: str | None
) -> tuple[dict[tuple[str, str], TimedSamples], dict[tuple[str, str], TimedSamples], str | None]:
    main: dict[tuple[str, str], TimedSamples] = {}
    stages: dict[tuple[str, str], TimedSamples] = {}
    problem = None
    for item in series:
        track = item.labels.get(TRACK_LABEL, "")
        stat = item.labels.get(STAT_LABEL, "")
        samples = TimedSamples(item.timestamps, item.values)
        if stat.startswith("stage:"):
            stage = item.labels.get(stage_label or "", "")
            stages[(stage, stat.removeprefix("stage:"))] = samples
            continue
        key = (track, stat)
        if key in main:
            problem = (
                f"the query for {stat} of {track} returned several series; aggregate it to "
                "one (e.g. with sum() or avg())"
            )
        main[key] = samples
    return main, stages, problem


async def fetch_metric(
    client: PrometheusClient,
    spec: PerfBaselineSpec,
    metric: MetricSpec,
    plan: TrackPlan,
    w: Windows,
) -> MetricSamples:
    result = MetricSamples()
    if judged_on_workload(metric):
        tracks: list[Track] = [WORKLOAD]
        baseline_track = Track("baseline", {})
        historical = True
    else:
        tracks = [plan.current]
        if plan.concurrent and plan.stable is not None:
            tracks.append(plan.stable)
        baseline_track = plan.baseline
        historical = plan.historical
    try:
        window_q = window_query(
            metric, spec.selector, tracks, w.rate_window, stages_for=tracks[0].name
        )
        baseline_q = window_query(metric, spec.selector, [baseline_track], w.rate_window)
    except UnsafeQueryError as error:
        result.problem = str(error)
        return result
    requests = [client.query_range(window_q, w.start, w.end, w.step)]
    if historical:
        requests.append(
            client.query_range(baseline_q, w.baseline_start, w.baseline_end, w.baseline_step)
        )
    answers = await asyncio.gather(*requests, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, PrometheusError):
            result.error = answer
            return result
        if isinstance(answer, BaseException):
            raise answer
    window_series = answers[0]
    assert not isinstance(window_series, BaseException)
    result.window, result.stages, result.problem = _shape(window_series, metric.stage_label)
    if historical:
        baseline_series = answers[1]
        assert not isinstance(baseline_series, BaseException)
        base, _, problem = _shape(baseline_series, None)
        result.baseline = {stat: s for (_, stat), s in base.items()}
        result.problem = result.problem or problem
    return result


async def fetch_all(
    client: PrometheusClient, spec: PerfBaselineSpec, plan: TrackPlan, at: datetime
) -> tuple[Windows, dict[str, MetricSamples]]:
    w = windows(spec, at)
    fetched = await asyncio.gather(*(fetch_metric(client, spec, m, plan, w) for m in spec.metrics))
    return w, {m.name: f for m, f in zip(spec.metrics, fetched, strict=True)}


def paired_timed(
    a: TimedSamples, b: TimedSamples, *, infinite: bool = False
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Timestamps and values of `a` and `b` where both have a finite value (with `infinite`:
    a value, ±Inf included), in time order."""
    common, ia, ib = np.intersect1d(a.timestamps, b.timestamps, return_indices=True)
    va, vb = a.values[ia], b.values[ib]
    keep = ~np.isnan(va) & ~np.isnan(vb) if infinite else np.isfinite(va) & np.isfinite(vb)
    return common[keep], va[keep], vb[keep]


def paired(a: TimedSamples, b: TimedSamples) -> tuple[FloatArray, FloatArray]:
    """Values of `a` and `b` at the timestamps both have (finite in both)."""
    _, va, vb = paired_timed(a, b)
    return va, vb


DAY = 86400.0


def same_time_slices(
    baseline: TimedSamples, start: datetime, end: datetime, *, infinite: bool = False
) -> list[FloatArray]:
    """Baseline samples at the candidate window's time of day, one slice per earlier day;
    finite ones, or with `infinite` every one with a value (±Inf included).

    Load (and with it latency) follows the clock; comparing a peak-hour window with a
    whole week's average would read the daily cycle as a regression. Only samples that a
    whole number of days (at least one) moves into the window count, however short the
    baseline: with less than a day of it there are none (see baseline_too_short). Before,
    a baseline shorter than a day was one slice, the whole series: a canary 15 ms slower
    at the daily trough, against a stable track 20 hours old, read as 20 ms faster.
    """
    kept = baseline.present() if infinite else baseline.finite()
    if kept.timestamps.size == 0:
        return []
    s, e = start.timestamp(), end.timestamp()
    offset = np.ceil((s - kept.timestamps) / DAY)  # whole days to move each sample forward
    shifted = kept.timestamps + offset * DAY
    keep = (shifted >= s) & (shifted <= e) & (offset >= 1)
    return [kept.values[keep & (offset == k)] for k in np.unique(offset[keep])]


def baseline_history(baseline: TimedSamples, start: datetime) -> timedelta | None:
    """How far back the baseline's finite samples reach before `start`; None without any."""
    finite = baseline.finite()
    if finite.timestamps.size == 0:
        return None
    return timedelta(seconds=start.timestamp() - float(finite.timestamps.min()))


def baseline_too_short(baseline: TimedSamples, start: datetime, end: datetime) -> bool:
    """Whether the baseline has samples, but none a day or more before the window's end: no
    earlier day holds the window's time of day, so nothing can be compared with it."""
    finite = baseline.finite()
    return finite.timestamps.size > 0 and float(finite.timestamps.min()) > end.timestamp() - DAY


@dataclass(frozen=True)
class SameTimeCapacity:
    """The most same-time samples a full baseline can hold (`samples`), on how many earlier
    days, at which baseline step. baseline.minSamples above `samples` is never reached."""

    samples: int
    days: int
    step: timedelta


def same_time_capacity(w: Windows) -> SameTimeCapacity:
    """A full baseline on a grid of the baseline step from its start, as a range query
    answers, matched to the window's time of day."""
    step = w.baseline_step.total_seconds()
    grid = np.arange(w.baseline_start.timestamp(), w.baseline_end.timestamp() + 1e-6, step)
    slices = same_time_slices(TimedSamples(grid, np.zeros(grid.size)), w.start, w.end)
    return SameTimeCapacity(sum(int(s.size) for s in slices), len(slices), w.baseline_step)
