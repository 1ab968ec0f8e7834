"""CapacityPlan evaluation: aligned history in, status fields, conditions and Events out.

`analyse` and `judge` are pure; `evaluate` adds the fetch. Four resources are judged:
GPU utilisation and GPU memory per GPU (DCGM), CPU and memory per node (node-exporter).
For each: the current fleet average and the top units, whether it has stayed above
`thresholds.sustained.above` for `thresholds.sustained.for`, a Theil–Sen line of the fleet's
total load (the sum of its units' utilisation) against traffic projected to each scenario's
peak traffic and spread over the units reporting now (or refused when it cannot be
trusted: `capacity_fit.why_not_projected`), the traffic headroom, and when the fleet
average, from its current figure, reaches the threshold at the load's trend.

The verdict is the worst of: current utilisation (Insufficient at or above the threshold,
NearLimit within 5 points or when sustained above `sustained.above`) and each scenario's
projection (OverCapacity → Insufficient, NearLimit → NearLimit). With no data, or no fit
where scenarios ask for one, the verdict is Unverified: never Sufficient by default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from perfguard.analysis import capacity_anomalies as detectors
from perfguard.analysis.capacity_fit import (
    MIN_FIT_POINTS,
    LinearFit,
    assess,
    headroom_traffic,
    misses_the_load_now,
    peak_traffic,
    reaches,
    sustained_since,
    theil_sen,
    time_to_threshold,
    units_to_add,
    why_not_projected,
)
from perfguard.analysis.dcgm import valid_samples
from perfguard.api.capacityplan import Assessment, CapacityPlanSpec, CapacityVerdict
from perfguard.api.conditions import ConditionStatus
from perfguard.api.quantities import format_duration
from perfguard.engine.capacityplan_fetch import (
    MAX_POINTS,
    CapacityData,
    fetch_capacity,
    history_start,
    points,
)
from perfguard.engine.capacityplan_readings import add_peak_readings
from perfguard.outcome import EventSpec, Outcome
from perfguard.sources.capacityplan_queries import Signal
from perfguard.sources.prometheus import PrometheusClient, PrometheusError
from perfguard.status import READY, ConditionUpdate, false, parse_conditions, true, unknown
from perfguard.times import format_timestamp, parse_time_or_none

FloatArray = npt.NDArray[np.float64]

NEAR_MARGIN: Final = 5.0
CURRENT_WINDOW: Final = timedelta(minutes=15)
MAX_ANOMALIES: Final = 20
TOP: Final = 5
# An anomaly that ended less than this long ago still counts as detected.
ACTIVE_FOR: Final = timedelta(hours=1)
SUFFICIENT: Final = "CapacitySufficient"
ANOMALY: Final = "AnomalyDetected"

RESOURCES: Final = ("gpu", "gpuMemory", "cpu", "memory")
_LABELS: Final = {"gpu": "GPU", "gpuMemory": "GPU memory", "cpu": "CPU", "memory": "memory"}


@dataclass
class ResourceSeries:
    """One resource: a (units, steps) matrix and who the units are."""

    name: str
    units: list[tuple[str, str | None]]  # (node, gpu)
    matrix: FloatArray
    threshold: float

    @property
    def fleet(self) -> FloatArray:
        with np.errstate(all="ignore"):
            present = np.isfinite(self.matrix).any(axis=0)
            mean = np.nanmean(np.where(present, self.matrix, 0.0), axis=0)
        return np.where(present, mean, np.nan)

    @property
    def total(self) -> FloatArray:
        """The fleet's load per step: the sum of the reporting units' utilisation (U·n for n
        units at average U), NaN where none reports. Unlike the average, it does not move
        when units join or leave: the same work over more units is the same total."""
        with np.errstate(all="ignore"):
            present = np.isfinite(self.matrix).any(axis=0)
            total = np.nansum(self.matrix, axis=0)
        return np.where(present, total, np.nan)


@dataclass
class ResourceResult:
    series: ResourceSeries
    current: float | None
    per_unit: list[tuple[tuple[str, str | None], float]]
    sustained_since: float | None
    fit: LinearFit | None
    fit_points: int
    headroom: float | None
    time_to_threshold: float | None
    state: CapacityVerdict
    # Units that reported earlier but not in the current window: their load may have moved
    # to the others, so no trend of the fleet's load can be read (time to threshold).
    silent_units: int = 0


@dataclass
class ProjectionResult:
    scenario: str
    growth_percent: float
    resource: str
    traffic: float | None
    projected: float | None
    threshold: float
    assessment: Assessment
    recommendation: str
    add_nodes: int | None = None
    add_gpus: int | None = None


@dataclass
class Analysis:
    resources: list[ResourceResult]
    projections: list[ProjectionResult]
    anomalies: list[tuple[str, str | None, detectors.AnomalyFinding]]
    peak_traffic: float | None
    gpus_per_node: int
    nodes: int
    verdict: CapacityVerdict
    reason: str
    message: str
    notes: list[str] = field(default_factory=list)
    # The (node, GPU) of every GPU series fetched: where anomalies were looked for.
    units: frozenset[tuple[str, str]] = frozenset()


def _gpu_matrix(
    data: CapacityData, signal: Signal
) -> tuple[list[tuple[str, str | None]], FloatArray]:
    units: list[tuple[str, str | None]] = []
    rows = []
    for (node, gpu), signals in sorted(data.gpus.items()):
        if signal in signals:
            units.append((node, gpu))
            rows.append(valid_samples(signals[signal]))
    return units, np.vstack(rows) if rows else np.empty((0, data.times.size))


def resource_series(spec: CapacityPlanSpec, data: CapacityData) -> list[ResourceSeries]:
    thresholds = spec.thresholds
    out = []
    units, util = _gpu_matrix(data, Signal.GPU_UTIL)
    out.append(ResourceSeries("gpu", units, util, thresholds.gpu))
    used_units, used = _gpu_matrix(data, Signal.GPU_MEMORY_USED)
    free_units, free = _gpu_matrix(data, Signal.GPU_MEMORY_FREE)
    common = [u for u in used_units if u in set(free_units)]
    if common:
        u_rows = used[[used_units.index(u) for u in common]]
        f_rows = free[[free_units.index(u) for u in common]]
        with np.errstate(all="ignore"):
            share = 100.0 * u_rows / (u_rows + f_rows)
    else:
        share = np.empty((0, data.times.size))
    out.append(ResourceSeries("gpuMemory", common, share, thresholds.gpu_memory))
    for name, signal, threshold in (
        ("cpu", Signal.CPU, thresholds.cpu),
        ("memory", Signal.MEMORY, thresholds.memory),
    ):
        nodes = sorted(n for n, s in data.nodes.items() if signal in s)
        matrix = (
            np.vstack([data.nodes[n][signal] for n in nodes])
            if nodes
            else np.empty((0, data.times.size))
        )
        out.append(ResourceSeries(name, [(n, None) for n in nodes], matrix, threshold))
    return out


def _recent_mean(values: FloatArray, times: FloatArray, since: float) -> float | None:
    window = values[times >= since]
    window = window[np.isfinite(window)]
    return float(window.mean()) if window.size else None


def _state(current: float | None, threshold: float, sustained: bool) -> CapacityVerdict:
    if current is None:
        return CapacityVerdict.UNVERIFIED
    if reaches(current, threshold):
        return CapacityVerdict.INSUFFICIENT
    if current >= threshold - NEAR_MARGIN or sustained:
        return CapacityVerdict.NEAR_LIMIT
    return CapacityVerdict.SUFFICIENT


_ORDER: Final = {
    CapacityVerdict.SUFFICIENT: 0,
    CapacityVerdict.UNVERIFIED: 1,
    CapacityVerdict.NEAR_LIMIT: 2,
    CapacityVerdict.INSUFFICIENT: 3,
}
_FROM_ASSESSMENT: Final = {
    Assessment.WITHIN_CAPACITY: CapacityVerdict.SUFFICIENT,
    Assessment.NEAR_LIMIT: CapacityVerdict.NEAR_LIMIT,
    Assessment.OVER_CAPACITY: CapacityVerdict.INSUFFICIENT,
    Assessment.UNVERIFIED: CapacityVerdict.UNVERIFIED,
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _recommend(
    resource: str, projected: float, threshold: float, units: int, gpus_per_node: int
) -> tuple[str, int | None, int | None]:
    if not reaches(projected, threshold):
        gap = threshold - projected
        text = (
            "no scaling needed"
            if gap > NEAR_MARGIN
            else f"no scaling needed yet ({gap:.1f} points below the threshold)"
        )
        return text, 0, 0 if resource.startswith("gpu") else None
    add = units_to_add(projected, threshold, units)
    if resource.startswith("gpu"):
        nodes = math.ceil(add / max(gpus_per_node, 1))
        text = f"add {_plural(add, 'GPU')} ({_plural(nodes, 'node')} of {gpus_per_node} GPUs)"
        return text, nodes, add
    return f"add {_plural(add, 'node')}", add, None


def _load_line(
    series: ResourceSeries, traffic: FloatArray, recent: npt.NDArray[np.bool_], units: int
) -> tuple[LinearFit | None, FloatArray, int]:
    """The line of load against traffic, the load it was fitted on, and the units the load
    is spread over (a predicted load divided by them is the average per unit).

    Work that requests bring is shared: the same traffic over more units is the same total
    (U·n), so the total is fitted. Some load is each unit's own, though: a model's weights
    take the same GPU memory on every GPU, whatever the traffic and the fleet's size, and
    after a scale-out the total of such a resource jumps with no change in traffic. When
    the number of reporting units changed within the history and the shared line misses
    the load measured now while the per-unit line (the fleet average against traffic)
    matches it, the per-unit line is used. With a fleet of one size all along the two are
    the same line. When neither matches, the shared line is kept, and the projection is
    refused for not matching the load now.
    """
    total = series.total
    shared = theil_sen(traffic, total)
    reporting = np.isfinite(series.matrix).sum(axis=0)
    sizes = np.unique(reporting[reporting > 0])
    if shared is None or sizes.size <= 1:
        return shared, total, units
    if misses_the_load_now(shared, traffic[recent], total[recent]) is None:
        return shared, total, units
    fleet = series.fleet
    own = theil_sen(traffic, fleet)
    if own is not None and misses_the_load_now(own, traffic[recent], fleet[recent]) is None:
        return own, fleet, 1
    return shared, total, units


def analyse(
    spec: CapacityPlanSpec,
    data: CapacityData,
    at: datetime,
    advertised_gpus: Mapping[str, int] | None = None,
) -> Analysis:
    """`advertised_gpus`: node -> GPUs its Node object advertises (None offline, where
    there are no Node objects); a node that advertises GPUs but has no GPU series at all
    makes the plan Unverified, since its GPUs are missing from every fleet figure."""
    times = data.times
    traffic = data.traffic if data.traffic is not None else np.full(times.size, np.nan)
    peak = peak_traffic(traffic)
    history_s = spec.history.total_seconds()
    gpus_per_node = max((data.gpu_count(n) for n, _ in data.gpus), default=0)
    node_names = {n for n, _ in data.gpus} | set(data.nodes)
    results: list[ResourceResult] = []
    projections: list[ProjectionResult] = []
    # "Current" ends at the grid's last point (the fetch floors it to a multiple of the step),
    # not at the clock: otherwise a 10m step puts one or two points in the window depending
    # on the minute the evaluation ran, and the figure jumps between evaluations.
    last = float(times[-1]) if times.size else at.timestamp()
    since = last - CURRENT_WINDOW.total_seconds()
    window = times >= since
    sustained_for = spec.thresholds.sustained.for_.total_seconds()
    for series in resource_series(spec, data):
        if series.matrix.shape[0] == 0:
            results.append(
                ResourceResult(
                    series, None, [], None, None, 0, None, None, CapacityVerdict.UNVERIFIED
                )
            )
            continue
        fleet = series.fleet
        current = _recent_mean(fleet, times, since)
        per_unit = [
            (unit, value)
            for unit, row in zip(series.units, series.matrix, strict=True)
            if (value := _recent_mean(row, times, since)) is not None
        ]
        per_unit.sort(key=lambda item: -item[1])
        sustained = sustained_since(times, fleet, spec.thresholds.sustained.above, sustained_for)
        # The line is fitted to the fleet's total load (U·n), not its average: after a node
        # joined or left, a week of averages over another fleet size would set the slope.
        # The total is carried by the units that report now (those the current figure
        # averages), so the fleet's capacity at the threshold is threshold · units. With
        # units gone silent (DataMissing) nobody knows whether their load moved to the
        # others: the total is spread over every unit that reported in the history, the
        # most favourable reading, so a shortfall found holds either way.
        gone_quiet = _silent(series, per_unit, times, since)
        units = len(series.units) if gone_quiet or not per_unit else len(per_unit)
        recent = window if not gone_quiet else np.zeros(times.size, dtype=bool)
        reporting_units = units
        fit, total, units = _load_line(series, traffic, recent, units)
        fit_points = int((np.isfinite(traffic) & np.isfinite(total)).sum())
        # Units gone silent explain a gap between the line and the load now by themselves
        # (DataMissing): that check is left out then.

        refusal = functools.partial(
            why_not_projected,
            traffic=traffic[np.isfinite(total)],
            recent_traffic=traffic[recent],
            recent_load=total[recent],
            units=units,
        )
        headroom = (
            headroom_traffic(fit, series.threshold * units, peak)
            if fit is not None and peak
            else None
        )
        # The headroom reads the line where it reaches the threshold, usually well past the
        # peak: it must be trusted as far as that, not only at the peak (where a line that
        # explains little moves least). A line refused there names no headroom.
        if (
            fit is not None
            and headroom is not None
            and peak
            and refusal(fit, target=peak + headroom) is not None
        ):
            headroom = None
        # From the figure shown now, at the trend of the load spread over those units. With
        # units gone silent the trend is unknown: spread over every unit it is too slow if
        # they were removed (their load now on the others), and over the reporting ones too
        # fast if they still run. Only "already at the threshold" can still be said.
        if current is None:
            crossing = None
        elif gone_quiet:
            crossing = 0.0 if reaches(current, series.threshold) else None
        else:
            crossing = time_to_threshold(
                times, total / units, series.threshold, history_s, current=current
            )
        state = _state(current, series.threshold, sustained is not None)
        results.append(
            ResourceResult(
                series,
                current,
                per_unit,
                sustained,
                fit,
                fit_points,
                headroom,
                crossing,
                state,
                len(gone_quiet),
            )
        )
        for scenario in spec.scenarios:
            target = None if peak is None else peak * (1.0 + scenario.growth_percent / 100.0)
            if fit is None or target is None:
                why: str | None = (
                    f"too little history for a fit ({fit_points} points with traffic; "
                    f"need {MIN_FIT_POINTS})"
                )
            else:
                refused = refusal(fit, target=target)
                why = None if refused is None else f"{_LABELS[series.name]}: {refused}"
            if why is not None:
                projections.append(
                    ProjectionResult(
                        scenario.name,
                        scenario.growth_percent,
                        series.name,
                        target,
                        None,
                        series.threshold,
                        Assessment.UNVERIFIED,
                        why,
                    )
                )
                continue
            assert fit is not None and target is not None  # else `why` says why not
            # The projected total spread over the units reporting now: their average.
            projected = fit.predict(target) / units
            text, add_nodes, add_gpus = _recommend(
                series.name, projected, series.threshold, reporting_units, gpus_per_node
            )
            projections.append(
                ProjectionResult(
                    scenario.name,
                    scenario.growth_percent,
                    series.name,
                    target,
                    projected,
                    series.threshold,
                    assess(projected, series.threshold, NEAR_MARGIN),
                    text,
                    add_nodes,
                    add_gpus,
                )
            )

    anomalies = find_anomalies(spec, data)
    reporting = {node for node, _ in data.gpus}
    dark = sorted(
        n for n, count in (advertised_gpus or {}).items() if count > 0 and n not in reporting
    )
    silent = {r.series.name: _silent_units(r, times, since) for r in results}
    missing = _coverage(results, data, advertised_gpus, dark) + _conflicts(data)
    verdict, reason, message = _verdict(
        results, projections, spec, dark, advertised_gpus or {}, silent, missing
    )
    return Analysis(
        results,
        projections,
        anomalies,
        peak,
        gpus_per_node,
        len(node_names),
        verdict,
        reason,
        message,
        units=frozenset(data.gpus),
    )


def find_anomalies(
    spec: CapacityPlanSpec, data: CapacityData
) -> list[tuple[str, str | None, detectors.AnomalyFinding]]:
    found: list[tuple[str, str | None, detectors.AnomalyFinding]] = []
    times = data.times
    settings = spec.anomalies
    for (node, gpu), signals in sorted(data.gpus.items()):
        util = signals.get(Signal.GPU_UTIL)
        if util is not None:
            for f in detectors.detect_spikes(times, util, settings.spike_percent):
                found.append((node, gpu, f))
        used = signals.get(Signal.GPU_MEMORY_USED)
        free = signals.get(Signal.GPU_MEMORY_FREE)
        if used is not None and free is not None:
            used_v = valid_samples(used)
            total = used_v + valid_samples(free)
            for f in detectors.detect_memory_growth(
                times, used_v, total, settings.gpu_memory_growth_percent_per_hour
            ):
                found.append((node, gpu, f))
        clocks = signals.get(Signal.CLOCK_EVENTS)
        if settings.throttling and clocks is not None:
            for f in detectors.detect_throttling(times, clocks):
                found.append((node, gpu, f))
        xid = signals.get(Signal.XID_ERRORS)
        if settings.xid_errors and xid is not None:
            for f in detectors.detect_xid(times, xid):
                found.append((node, gpu, f))
    found.sort(key=lambda item: (-item[2].start_s, item[0], item[1] or ""))
    return found


def _silent_units(
    result: ResourceResult, times: FloatArray, since: float
) -> list[tuple[str, str | None]]:
    """Units that reported before the current window but nothing in it (a unit that never
    reported a usable value, e.g. only DCGM blanks, is not silent: it has no figure)."""
    return _silent(result.series, result.per_unit, times, since)


def _silent(
    series: ResourceSeries,
    per_unit: Sequence[tuple[tuple[str, str | None], float]],
    times: FloatArray,
    since: float,
) -> list[tuple[str, str | None]]:
    reporting = {unit for unit, _ in per_unit}
    earlier = times < since
    return [
        unit
        for unit, row in zip(series.units, series.matrix, strict=True)
        if unit not in reporting and bool(np.isfinite(row[earlier]).any())
    ]


def _reported(result: ResourceResult) -> list[tuple[str, str | None]]:
    """The units with at least one usable value anywhere in the history."""
    return [
        unit
        for unit, row in zip(result.series.units, result.series.matrix, strict=True)
        if bool(np.isfinite(row).any())
    ]


def _coverage(
    results: Sequence[ResourceResult],
    data: CapacityData,
    advertised: Mapping[str, int] | None,
    dark: Sequence[str],
) -> list[tuple[str, str]]:
    """(reason, message) for each resource that lacks data from part of the fleet.

    Every resource has a threshold, so each must be judged over the whole fleet: CPU and
    memory over every selected node (offline: every host any series names), GPU and GPU
    memory over every GPU unit, as many per node as its Node object advertises (the device
    plugin's nvidia.com/gpu) or, if more, as its DCGM series name. A unit with no usable
    value in the history (only DCGM blanks, or no series) is missing. Nodes in `dark`
    (GPUs advertised, no DCGM series at all) are reported on their own.
    """
    # Resources missing the same units share one line: {what is missing: resource labels}.
    gaps: dict[str, list[str]] = {}
    nodes = (
        set(advertised) if advertised is not None else {n for n, _ in data.gpus} | set(data.nodes)
    )
    expected_gpus = {n: max((advertised or {}).get(n, 0), data.gpu_count(n)) for n in sorted(nodes)}
    expected_gpus = {n: c for n, c in expected_gpus.items() if c > 0 and n not in dark}
    for r in results:
        name = r.series.name
        reported = _reported(r)
        if name in ("cpu", "memory"):
            absent = sorted(nodes - {n for n, _ in reported})
            if absent:
                where = _unit_names([(n, None) for n in absent])
                gap = (
                    f"no data in the history from {len(absent)} of "
                    f"{_plural(len(nodes), 'node')} ({where}); check node-exporter runs there "
                    "and that its instance label is the node name (or name:port)"
                )
                gaps.setdefault(gap, []).append(_LABELS[name])
            continue
        if not expected_gpus:
            continue  # no GPU anywhere (a CPU-only fleet): nothing to miss
        per_node: dict[str, int] = {}
        for n, _ in reported:
            per_node[n] = per_node.get(n, 0) + 1
        short = [(n, per_node.get(n, 0), want) for n, want in expected_gpus.items()]
        short = [(n, got, want) for n, got, want in short if got < want]
        if short:
            total = sum(expected_gpus.values())
            lacking = sum(want - got for _, got, want in short)
            shown = ", ".join(f"{n}: {got} of {want}" for n, got, want in short[:3])
            more = f" and {len(short) - 3} more nodes" if len(short) > 3 else ""
            gap = (
                f"no data in the history from {lacking} of {_plural(total, 'GPU')} "
                f"({shown}{more} report)"
            )
            gaps.setdefault(gap, []).append(_LABELS[name])
    return [("DataMissing", f"{' and '.join(labels)}: {gap}") for gap, labels in gaps.items()]


def _conflicts(data: CapacityData) -> list[tuple[str, str]]:
    """Series that collide on one unit with different values: which one is the unit's is
    not for the analysis to guess (the first one was kept; the figures may be wrong)."""
    if not data.conflicts:
        return []
    units = sorted({unit for unit, _, _ in data.conflicts}, key=lambda u: (u[0], u[1] or ""))
    signals = sorted({str(signal) for _, signal, _ in data.conflicts})
    return [
        (
            "AmbiguousData",
            f"several series with different values for one unit ({_unit_names(units)}; "
            f"{', '.join(signals)}): check the query keeps the gpu, UUID and GPU_I_ID labels "
            "and that two exporters do not report one host",
        )
    ]


def _unit_word(resource: str) -> str:
    return "GPU" if resource.startswith("gpu") else "node"


def _unit_names(units: Sequence[tuple[str, str | None]], shown: int = 3) -> str:
    names = [node if gpu is None else f"{node} GPU {gpu}" for node, gpu in units[:shown]]
    more = f" and {len(units) - shown} more" if len(units) > shown else ""
    return ", ".join(names) + more


def _verdict(
    results: Sequence[ResourceResult],
    projections: Sequence[ProjectionResult],
    spec: CapacityPlanSpec,
    dark: Sequence[str] = (),
    advertised: Mapping[str, int] | None = None,
    silent: Mapping[str, Sequence[tuple[str, str | None]]] | None = None,
    missing: Sequence[tuple[str, str]] = (),
) -> tuple[CapacityVerdict, str, str]:
    """`dark`: nodes that advertise GPUs but sent no GPU series; `silent`: per resource,
    the units that reported earlier but not in the current window; `missing`: (reason,
    message) for data absent from part of the fleet (`_coverage`, `_conflicts`)."""
    judged = [r for r in results if r.current is not None]
    if not judged:
        return (
            CapacityVerdict.UNVERIFIED,
            "NoData",
            "no utilisation data for the selected nodes (DCGM and node-exporter queries "
            "returned nothing)",
        )
    worst_state = CapacityVerdict.SUFFICIENT
    reasons: list[tuple[int, str, str]] = []
    for r in judged:
        label = _LABELS[r.series.name]
        assert r.current is not None
        if r.state is not CapacityVerdict.SUFFICIENT:
            what = (
                f"{label} at {r.current:.1f}% now (threshold {r.series.threshold:g}%)"
                if r.sustained_since is None or r.state is CapacityVerdict.INSUFFICIENT
                else f"{label} above {spec.thresholds.sustained.above:g}% for "
                f"{format_duration(spec.thresholds.sustained.for_)} or longer"
            )
            reasons.append((_ORDER[r.state], "Current" + r.state.value, what))
        worst_state = max(worst_state, r.state, key=_ORDER.__getitem__)
    for r in results:
        gone = (silent or {}).get(r.series.name, ())
        if gone:
            # The fleet figure is an average over the units that still report: with some
            # silent (an exporter down, a GPU fallen off the bus) it is not the fleet's.
            worst_state = max(worst_state, CapacityVerdict.UNVERIFIED, key=_ORDER.__getitem__)
            reasons.append(
                (
                    _ORDER[CapacityVerdict.UNVERIFIED],
                    "DataMissing",
                    f"{_LABELS[r.series.name]}: no data in the last "
                    f"{format_duration(CURRENT_WINDOW)} from {len(gone)} of "
                    f"{_plural(len(r.series.units), _unit_word(r.series.name))} that reported "
                    f"earlier ({_unit_names(gone)})",
                )
            )
    if dark:
        worst_state = max(worst_state, CapacityVerdict.UNVERIFIED, key=_ORDER.__getitem__)
        gpu_nodes = sum(1 for count in (advertised or {}).values() if count > 0)
        shown = _unit_names([(node, None) for node in dark])
        reasons.append(
            (
                _ORDER[CapacityVerdict.UNVERIFIED],
                "DataMissing",
                f"GPU: no DCGM series in the history for {len(dark)} of "
                f"{_plural(gpu_nodes, 'node')} that advertise nvidia.com/gpu ({shown}); "
                "check the exporter runs there and that its Hostname label is the node name",
            )
        )
    for reason, text in missing:
        worst_state = max(worst_state, CapacityVerdict.UNVERIFIED, key=_ORDER.__getitem__)
        reasons.append((_ORDER[CapacityVerdict.UNVERIFIED], reason, text))
    for p in projections:
        if p.resource not in {r.series.name for r in judged}:
            continue
        state = _FROM_ASSESSMENT[p.assessment]
        worst_state = max(worst_state, state, key=_ORDER.__getitem__)
        label = _LABELS[p.resource]
        if p.assessment is Assessment.UNVERIFIED:
            reasons.append(
                (_ORDER[state], "ProjectionUnverified", f"{p.scenario}: {p.recommendation}")
            )
        elif state is not CapacityVerdict.SUFFICIENT:
            assert p.projected is not None and p.traffic is not None
            reasons.append(
                (
                    _ORDER[state],
                    "Projected" + p.assessment.value,
                    f"{p.scenario} (+{p.growth_percent:g}% traffic, {p.traffic:,.1f}/s at peak): "
                    f"{label} projected {p.projected:.1f}% (threshold {p.threshold:g}%); "
                    f"{p.recommendation}",
                )
            )
    if worst_state is CapacityVerdict.SUFFICIENT:
        parts = [f"{_LABELS[r.series.name]} {r.current:.1f}%" for r in judged]
        scenarios = f"; {len(spec.scenarios)} scenario(s) within capacity" if spec.scenarios else ""
        return CapacityVerdict.SUFFICIENT, "WithinCapacity", "now " + ", ".join(parts) + scenarios
    reasons.sort(key=lambda item: -item[0])
    top = [r for r in reasons if r[0] == _ORDER[worst_state]]
    message = "; ".join(r[2] for r in top[:3]) + (
        f" (+{len(top) - 3} more)" if len(top) > 3 else ""
    )
    return worst_state, top[0][1], message


# -- status ----------------------------------------------------------------------------


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _about(seconds: float) -> str:
    """A duration rounded to whole hours (at least one), e.g. 3d4h."""
    return format_duration(timedelta(hours=max(round(seconds / 3600), 1)))


def _anomaly_status(node: str, gpu: str | None, f: detectors.AnomalyFinding) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": f.kind.value,
        "node": node,
        "start": format_timestamp(f.start_s),
        "severity": f.severity,
        "value": _round(f.value, 3),
        "message": f.message,
    }
    if gpu is not None:
        item["gpu"] = gpu
    if f.end_s is not None:
        item["end"] = format_timestamp(f.end_s)
    return {k: v for k, v in item.items() if v is not None}


def status_fields(spec: CapacityPlanSpec, analysis: Analysis, at: datetime) -> dict[str, Any]:
    current = []
    headroom = []
    crossing = []
    by_name = {r.series.name: r for r in analysis.resources}
    for r in analysis.resources:
        if r.current is None:
            continue
        top = [
            {k: v for k, v in {"node": n, "gpu": g, "value": _round(v, 1)}.items() if v is not None}
            for (n, g), v in r.per_unit[:TOP]
        ]
        current.append(
            {
                "resource": r.series.name,
                "fleet": _round(r.current, 1),
                "threshold": r.series.threshold,
                "aboveThreshold": reaches(r.current, r.series.threshold),
                "sustained": r.sustained_since is not None,
                "top": top,
            }
        )
        if r.headroom is not None and analysis.peak_traffic:
            headroom.append(
                {
                    "resource": r.series.name,
                    "traffic": _round(r.headroom, 2),
                    "percent": _round(100.0 * r.headroom / analysis.peak_traffic, 1),
                }
            )
        if r.time_to_threshold is None and r.silent_units:
            crossing.append(
                {
                    "resource": r.series.name,
                    "message": f"unknown: {r.silent_units} of "
                    f"{_plural(len(r.series.units), _unit_word(r.series.name))} reported "
                    "earlier but not in the last "
                    f"{format_duration(CURRENT_WINDOW)}, so the fleet's load trend "
                    "cannot be read",
                }
            )
        elif r.time_to_threshold is None:
            crossing.append(
                {
                    "resource": r.series.name,
                    "message": "not within the history's horizon "
                    f"({format_duration(spec.history)}) at the current trend",
                }
            )
        else:
            when = at + timedelta(seconds=r.time_to_threshold)
            crossing.append(
                {
                    "resource": r.series.name,
                    "at": format_timestamp(when.timestamp()),
                    "message": f"already at or above the threshold (now {r.current:.1f}%)"
                    if r.time_to_threshold == 0
                    else f"from {r.current:.1f}% now, the fleet's load trend reaches "
                    f"{r.series.threshold:g}% in about {_about(r.time_to_threshold)}",
                }
            )
    projections = [
        {
            k: v
            for k, v in {
                "scenario": p.scenario,
                "growthPercent": p.growth_percent,
                "resource": p.resource,
                "traffic": _round(p.traffic, 2),
                "projected": _round(p.projected, 1),
                "threshold": p.threshold,
                "assessment": p.assessment.value,
                "recommendation": p.recommendation,
                "addNodes": p.add_nodes,
                "addGpus": p.add_gpus,
            }.items()
            if v is not None
        }
        for p in analysis.projections
        if by_name[p.resource].current is not None
    ]

    def summary(name: str) -> str | None:
        r = by_name.get(name)
        return None if r is None or r.current is None else f"{r.current:.0f}%"

    return {
        "verdict": analysis.verdict.value,
        "reason": analysis.reason,
        "message": analysis.message,
        "summary": {
            k: v
            for k, v in {
                "gpu": summary("gpu"),
                "cpu": summary("cpu"),
                "memory": summary("memory"),
            }.items()
            if v is not None
        },
        "current": current,
        "projections": projections[:64],
        "headroom": headroom,
        "timeToThreshold": crossing,
    }


# Kinds whose start is the sample where the detector saw the gauge change, never an
# estimate or the history's first sample: such a start does not move between evaluations,
# so a later start (XID 79, 0, 79) or another code (13, then 48) is a new anomaly.
_EXACT_STARTS: Final = frozenset({detectors.AnomalyKind.XID_ERROR.value})


def _same_unit(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    same = (new.get("type"), new.get("node"), new.get("gpu")) == (
        old.get("type"),
        old.get("node"),
        old.get("gpu"),
    )
    if same and new.get("type") in _EXACT_STARTS:
        return new.get("value") == old.get("value")
    return same


def _starts(new: Mapping[str, Any], old: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    new_start = parse_time_or_none(new.get("start"))
    old_start = parse_time_or_none(old.get("start"))
    return None if new_start is None or old_start is None else (new_start, old_start)


def _same_anomaly(
    new: Mapping[str, Any], old: Mapping[str, Any], tolerance_s: float
) -> float | None:
    """Seconds between the starts when `new` is the episode of `old` by its start, else
    None: an exact start for the kinds whose start is exact (XID 79 at 10:00 and again at
    10:10 are two errors); for an entry that had ended, only if the spans also share a
    sample. A start within the tolerance is a re-estimate of the same onset, but a spike at
    10:10 after one that ended at 10:00 is a new episode, and taking the old entry cost it
    its Event."""
    starts = _starts(new, old) if _same_unit(new, old) else None
    if starts is None:
        return None
    apart = abs((starts[0] - starts[1]).total_seconds())
    if new.get("type") in _EXACT_STARTS:
        return apart if apart == 0 else None
    if apart > tolerance_s:
        return None
    return apart if "end" not in old or _overlaps(new, old, None) else None


def _span(item: Mapping[str, Any]) -> tuple[float, float] | None:
    """An entry's first and last sample (unix seconds; an ongoing one's end is open)."""
    start = parse_time_or_none(item.get("start"))
    end = parse_time_or_none(item.get("end"))
    if start is None or ("end" in item and end is None):
        return None
    return start.timestamp(), math.inf if end is None else end.timestamp()


def _overlaps(new: Mapping[str, Any], old: Mapping[str, Any], old_end: float | None) -> bool:
    """The same episode by its span: the same type and unit, and a sample in common (an
    ongoing `old` ends at `old_end` if known now, else its end is open). Not for kinds whose
    start is exact: another start is another episode."""
    if new.get("type") in _EXACT_STARTS or not _same_unit(new, old):
        return False
    new_span, old_span = _span(new), _span(old)
    if new_span is None or old_span is None:
        return False
    old_last = old_span[1] if old_end is None or "end" in old else old_end
    return new_span[0] <= old_last and old_span[0] <= new_span[1]


def _match(
    items: Sequence[Mapping[str, Any]], seen: Sequence[Mapping[str, Any]], tolerance_s: float
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(the items that no entry of `seen` stands for, the entries of `seen` that stand for
    no item).

    First every item at an entry's start takes that entry, one each, the closest starts
    first (items come newest first: in that order a new spike at 10:08 took the entry of one
    ongoing from 10:00, found again now ended at 10:03, and got no Event). Then, oldest
    first, an item left is the episode of any entry whose span it overlaps. An ongoing
    entry, once an item takes it, ends where that item does: so when an episode ongoing at
    the last evaluation has ended (found again at its start, or re-estimated, now with an
    end) and another begins on the same GPU, the new one overlaps nothing and is new.
    """
    free = list(range(len(seen)))
    ends: dict[int, float] = {}  # where a taken ongoing entry ended, as its item says
    pairs = sorted(
        (apart, str(item.get("start")), i, k)
        for i, item in enumerate(items)
        for k in free
        if (apart := _same_anomaly(item, seen[k], tolerance_s)) is not None
    )
    taken: set[int] = set()
    for _, _, i, k in pairs:
        if i in taken or k not in free:
            continue
        taken.add(i)
        free.remove(k)
        if (span := _span(items[i])) is not None:
            ends[k] = span[1]
    left = [item for i, item in enumerate(items) if i not in taken]
    fresh = []
    for item in sorted(left, key=lambda i: str(i.get("start"))):
        same = [k for k in range(len(seen)) if _overlaps(item, seen[k], ends.get(k))]
        if not same:
            fresh.append(item)
        for k in same:
            if k in free:
                free.remove(k)
                if (span := _span(item)) is not None:
                    ends[k] = span[1]
    unmatched = [
        seen[k] for k in free if not any(_overlaps(item, seen[k], ends.get(k)) for item in items)
    ]
    return [item for item in items if any(item is f for f in fresh)], unmatched


def new_anomalies(
    items: Sequence[Mapping[str, Any]], seen: Sequence[Mapping[str, Any]], tolerance_s: float
) -> list[Mapping[str, Any]]:
    """The items of this evaluation that the last one (`seen`, its status) did not list.

    An item at an earlier entry's start, or whose span overlaps an earlier entry's, is that
    episode (see _match): a start re-estimated farther than `tolerance_s` (a spike whose
    first samples lost the hour of level before them at the history's start) is no new
    episode. An ongoing entry ends where the item that took it does, so an episode
    beginning after that on the same GPU is new and gets its Event.
    """
    return _match(items, seen, tolerance_s)[0]


def _looked_for(spec: CapacityPlanSpec) -> frozenset[str]:
    kinds = {detectors.AnomalyKind.UTILIZATION_SPIKE, detectors.AnomalyKind.GPU_MEMORY_GROWTH}
    if spec.anomalies.throttling:
        kinds |= {detectors.AnomalyKind.THERMAL_THROTTLING, detectors.AnomalyKind.POWER_CAPPING}
    if spec.anomalies.xid_errors:
        kinds.add(detectors.AnomalyKind.XID_ERROR)
    return frozenset(kind.value for kind in kinds)


def listed_by_this_spec(previous: Mapping[str, Any], generation: int | None) -> bool:
    """Whether the last status's anomalies were listed by the spec judged now (its
    `generation`): the status's observedGeneration is that generation, and AnomalyDetected,
    which every judgement sets True or False with the list, is not Unknown. An evaluation
    that judged nothing (Prometheus unreachable, no Node selected, a refused spec) makes it
    Unknown and moves observedGeneration on, yet leaves the list, which may then be an
    earlier spec's. None for both generations: a caller that tracks none (tests, replays).
    """
    if previous.get("observedGeneration") != generation:
        return False
    anomaly = next(
        (c for c in parse_conditions(previous.get("conditions")) if c.type == ANOMALY), None
    )
    return anomaly is None or anomaly.status is not ConditionStatus.UNKNOWN


def kept_anomalies(
    spec: CapacityPlanSpec,
    found: Sequence[Mapping[str, Any]],
    seen: Sequence[Mapping[str, Any]],
    at: datetime,
    units: Collection[tuple[str, str]],
) -> list[dict[str, Any]]:
    """The entries of the last status (`seen`, listed by this spec: see
    listed_by_this_spec) that stay listed though nothing found now (`found`, listed or not)
    stands for them, at their start or by an overlapping span: episodes that had ended,
    started inside the history, of a kind the spec still looks for and on a GPU whose series
    were fetched (`units`), unchanged. An entry whose span a finding overlaps is that
    finding's episode, listed as found now, not twice. A GPU no longer fetched (its node no
    longer selected, or gone) has no episodes left to show.

    A past sample's spike threshold follows the scatter of the whole window, which moves as
    the window slides, so a borderline episode can be missed by one evaluation and found by
    the next: kept, it is neither dropped from the status meanwhile nor announced twice. An
    ongoing episode that vanished was retracted (its onset or the episode itself was a guess
    on the data so far) and goes.
    """
    since = history_start(spec, at)
    kinds = _looked_for(spec)
    _, free = _match(found, seen, _tolerance(spec))
    return [
        dict(old)
        for old in free
        if "end" in old
        and old.get("type") in kinds
        and (old.get("node"), old.get("gpu")) in units
        and (start := parse_time_or_none(old.get("start"))) is not None
        and start >= since
    ]


def _tolerance(spec: CapacityPlanSpec) -> float:
    """How far apart two starts of one episode may be (its onset re-estimated)."""
    return max(2 * spec.step.total_seconds(), 600.0)


def _newest_first(item: Mapping[str, Any]) -> tuple[float, str, str]:
    """`find_anomalies`' order, for status entries: newest start first, then node and GPU."""
    start = parse_time_or_none(item.get("start"))
    return (
        math.inf if start is None else -start.timestamp(),
        str(item.get("node") or ""),
        str(item.get("gpu") or ""),
    )


def judge(
    spec: CapacityPlanSpec,
    data: CapacityData,
    previous: Mapping[str, Any],
    at: datetime,
    advertised_gpus: Mapping[str, int] | None = None,
    *,
    generation: int | None = None,
) -> Outcome:
    """The outcome of one evaluation on fetched data (without the throttling readings,
    which `evaluate` fetches between the analysis and the outcome)."""
    analysis = analyse(spec, data, at, advertised_gpus)
    return conclude(spec, analysis, previous, at, generation=generation)


def conclude(
    spec: CapacityPlanSpec,
    analysis: Analysis,
    previous: Mapping[str, Any],
    at: datetime,
    *,
    generation: int | None = None,
) -> Outcome:
    """Status fields, conditions and Events from an analysis. `generation`: the
    metadata.generation of the spec judged (see listed_by_this_spec)."""
    seen = [a for a in previous.get("anomalies") or [] if isinstance(a, Mapping)]
    found = [_anomaly_status(n, g, f) for n, g, f in analysis.anomalies]
    kept = (
        kept_anomalies(spec, found, seen, at, analysis.units)
        if listed_by_this_spec(previous, generation)
        else []
    )
    # Sorted is stable: a kept entry at the same start, node and GPU follows the found ones.
    listed = sorted([*found, *kept], key=_newest_first)[:MAX_ANOMALIES]
    total = len(found) + len(kept)
    fields = {**status_fields(spec, analysis, at), "anomalies": listed, "totalAnomalies": total}
    conditions = {c.type: c for c in parse_conditions(previous.get("conditions"))}
    events: list[EventSpec] = []

    # CapacitySufficient remembers the last conclusive state across Unverified evaluations.
    was = conditions.get(SUFFICIENT)
    was_reason = was.reason if was is not None and was.status.value == "False" else None
    was_state: CapacityVerdict | None = None
    if was_reason is not None:
        worse = "Insufficient" in was_reason or "OverCapacity" in was_reason
        was_state = CapacityVerdict.INSUFFICIENT if worse else CapacityVerdict.NEAR_LIMIT
    sufficient: ConditionUpdate
    verdict = analysis.verdict
    if verdict is CapacityVerdict.SUFFICIENT:
        sufficient = true(SUFFICIENT, analysis.reason, analysis.message)
        if was_state is not None:
            events.append(EventSpec("Normal", "CapacitySufficient", analysis.message))
    elif verdict is CapacityVerdict.UNVERIFIED:
        if was is not None and was.status.value == "False":
            sufficient = false(
                SUFFICIENT, was.reason, f"now unverified ({analysis.message}); last: {was.message}"
            )
        else:
            sufficient = unknown(SUFFICIENT, analysis.reason, analysis.message)
    else:
        sufficient = false(SUFFICIENT, analysis.reason, analysis.message)
        if was_state is not verdict:
            events.append(EventSpec("Warning", f"Capacity{verdict.value}", analysis.message))

    active_since = (at - ACTIVE_FOR).timestamp()
    active = [
        (n, g, f) for n, g, f in analysis.anomalies if f.end_s is None or f.end_s >= active_since
    ]
    if active:
        n, g, f = active[0]
        where = f"{n}" + (f" GPU {g}" if g is not None else "")
        anomaly = true(
            ANOMALY,
            f.kind.value,
            f"{len(active)} active anomaly(ies); newest: {where}: {f.message}",
        )
    elif total:
        # Kept entries count here, or the reason would flip with a missed episode.
        anomaly = false(
            ANOMALY,
            "NoActiveAnomaly",
            f"{total} anomaly(ies) in the history, none in the last {format_duration(ACTIVE_FOR)}",
        )
    else:
        anomaly = false(ANOMALY, "NoAnomaly", "no anomaly in the history")

    # A kept entry was announced when first listed; only what was found now may be new.
    shown = [item for item in listed if not any(item is k for k in kept)]
    for item in new_anomalies(shown, seen, _tolerance(spec)):
        where = f"{item['node']}" + (f" GPU {item['gpu']}" if "gpu" in item else "")
        kind = "Warning" if item["severity"] in ("Warning", "Critical") else "Normal"
        events.append(
            EventSpec(kind, item["type"], f"{where} since {item['start']}: {item['message']}")
        )

    ready = true(READY, "Evaluated", "queries answered; see verdict for the outcome")
    if analysis.reason == "NoData":
        ready = false(READY, "NoData", analysis.message)
        old_ready = conditions.get(READY)
        if old_ready is None or old_ready.reason != "NoData":
            events.append(EventSpec("Warning", "NoData", analysis.message))
    return Outcome(
        fields=fields,
        conditions=[ready, sufficient, anomaly],
        events=events,
        verdict=verdict.value,
    )


def unverified_conditions(
    reason: str, message: str, previous: Mapping[str, Any]
) -> list[ConditionUpdate]:
    """CapacityPlan's conditions besides Ready when nothing was judged (nothing could be
    read, the spec is invalid): AnomalyDetected Unknown; CapacitySufficient Unknown, or
    still False with its last reason, so a shortage is not forgotten meanwhile."""
    was = {c.type: c for c in parse_conditions(previous.get("conditions"))}.get(SUFFICIENT)
    sufficient = (
        false(SUFFICIENT, was.reason, f"now unverified ({message}); last: {was.message}")
        if was is not None and was.status.value == "False"
        else unknown(SUFFICIENT, reason, message)
    )
    return [sufficient, unknown(ANOMALY, reason, message)]


def failed(reason: str, message: str, previous: Mapping[str, Any]) -> Outcome:
    """Nothing could be read: Unverified, Ready=False, one Event per distinct cause."""
    conditions = {c.type: c for c in parse_conditions(previous.get("conditions"))}
    was_ready = conditions.get(READY)
    events = (
        []
        if was_ready is not None
        and was_ready.reason == reason
        and was_ready.status.value == "False"
        else [EventSpec("Warning", reason, message)]
    )
    return Outcome(
        fields={"verdict": CapacityVerdict.UNVERIFIED.value, "reason": reason, "message": message},
        conditions=[
            false(READY, reason, message),
            *unverified_conditions(reason, message, previous),
        ],
        events=events,
        verdict=CapacityVerdict.UNVERIFIED.value,
    )


async def evaluate(
    spec: CapacityPlanSpec,
    hosts: Sequence[str] | None,
    previous: Mapping[str, Any],
    at: datetime,
    client: PrometheusClient,
    *,
    advertised_gpus: Mapping[str, int] | None = None,
    generation: int | None = None,
) -> Outcome:
    """One evaluation; `generation`: the metadata.generation of `spec` (see conclude)."""
    if points(spec) > MAX_POINTS:
        return failed(
            "InvalidSpec",
            f"history {format_duration(spec.history)} at step {format_duration(spec.step)} is "
            f"{points(spec):,} points per series; Prometheus answers at most {MAX_POINTS:,}: "
            "raise step or shorten history",
            previous,
        )
    if hosts is not None and not hosts:
        return failed("NoNodes", "spec.nodes.selector matches no Node", previous)
    try:
        data = await fetch_capacity(client, spec, hosts, at)
    except PrometheusError as error:
        return failed(error.kind.value, error.message, previous)
    # The analysis of a fleet is seconds of CPU (64 nodes x 8 GPUs: ~15 s, docs/benchmarks.md);
    # on a worker thread the event loop keeps serving the other resources and /metrics.
    analysis = await asyncio.to_thread(analyse, spec, data, at, advertised_gpus)
    anomalies = await add_peak_readings(client, spec, analysis.anomalies, at, shown=MAX_ANOMALIES)
    analysis = dataclasses.replace(analysis, anomalies=anomalies)
    return await asyncio.to_thread(conclude, spec, analysis, previous, at, generation=generation)
