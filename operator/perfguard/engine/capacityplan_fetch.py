"""Fetch CapacityPlan's history: one range query per signal, aligned on one time grid.

Every series lands on the grid `start, start + step, …, end` (NaN where Prometheus had
no sample), so GPUs, nodes and traffic line up index by index for the fits and the
detectors. A failed query fails the whole fetch: a plan judged on part of its inputs
would look more certain than it is.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.sources.capacityplan_queries import (
    GPU_SIGNALS,
    NODE_SIGNALS,
    PlannedQuery,
    Signal,
    host_of,
    parent_gpu,
    plan_queries,
    unit_of,
)
from perfguard.sources.prometheus import PrometheusClient, Series

FloatArray = npt.NDArray[np.float64]

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS: Final = 11_000


@dataclass
class CapacityData:
    times: FloatArray  # unix seconds, the grid
    step_s: float
    gpus: dict[tuple[str, str], dict[Signal, FloatArray]] = field(default_factory=dict)
    nodes: dict[str, dict[Signal, FloatArray]] = field(default_factory=dict)
    traffic: FloatArray | None = None
    queries: list[PlannedQuery] = field(default_factory=list)
    # Series that collide on one unit and signal with different values at the same step
    # (unit, signal, steps in conflict): the data cannot say which is the unit's.
    conflicts: list[tuple[tuple[str, str | None], Signal, int]] = field(default_factory=list)

    def gpu_units(self, node: str) -> list[str]:
        """The node's GPU units: whole GPUs and MIG instances; a MIG-enabled GPU whose
        instances report is not a unit of its own (its device-level series, e.g. XID, may
        come without the instance label)."""
        keys = [g for n, g in self.gpus if n == node]
        split = {parent_gpu(g) for g in keys if parent_gpu(g) != g}
        return [g for g in keys if g not in split]

    def gpu_count(self, node: str) -> int:
        return len(self.gpu_units(node))


def grid(start: datetime, end: datetime, step_s: float) -> FloatArray:
    first = start.timestamp()
    count = int(np.floor((end.timestamp() - first) / step_s + 1e-9)) + 1
    times: FloatArray = first + step_s * np.arange(count, dtype=np.float64)
    return times


def align(series: Series, times: FloatArray, step_s: float) -> FloatArray:
    out = np.full(times.size, np.nan)
    if series.timestamps.size == 0:
        return out
    index = np.rint((series.timestamps - times[0]) / step_s).astype(np.int64)
    keep = (index >= 0) & (index < times.size)
    out[index[keep]] = series.values[keep]
    return out


def _fill(target: dict[Signal, FloatArray], signal: Signal, values: FloatArray) -> int:
    """Several series for one unit and signal (both host labels, both clock metric names,
    one GPU shared by several pods): they fill each other's gaps. Returns the steps where
    both hold different values: that is not one unit's series twice but two units under
    one key, which the caller reports instead of picking one."""
    if signal not in target:
        target[signal] = values
        return 0
    current = target[signal]
    both = np.isfinite(current) & np.isfinite(values)
    differ = int(np.count_nonzero(both & ~np.isclose(current, values, rtol=1e-9, atol=0.0)))
    missing = np.isnan(current)
    current[missing] = values[missing]
    return differ


def history_start(spec: CapacityPlanSpec, at: datetime) -> datetime:
    """The first sample of the history fetched at `at`. The grid sits on multiples of the
    step, so successive evaluations see the same sample times and report the same anomaly
    starts."""
    step_s = spec.step.total_seconds()
    end = datetime.fromtimestamp(step_s * math.floor(at.timestamp() / step_s), at.tzinfo)
    return end - spec.history


def points(spec: CapacityPlanSpec) -> int:
    return int(spec.history.total_seconds() // spec.step.total_seconds()) + 1


async def fetch_capacity(
    client: PrometheusClient,
    spec: CapacityPlanSpec,
    hosts: Sequence[str] | None,
    at: datetime,
) -> CapacityData:
    step_s = spec.step.total_seconds()
    start = history_start(spec, at)
    at = start + spec.history
    times = grid(start, at, step_s)
    planned = plan_queries(spec, hosts)
    wanted = None if hosts is None else frozenset(hosts)

    async def fetch(query: PlannedQuery) -> AlignedAnswer:
        found = await client.query_range(query.query, start, at, spec.step)
        # Each answer goes onto the grid as soon as it arrives, and its decoded series
        # (timestamps and values per series) are dropped: a fleet's nine answers decoded
        # at once were the evaluation's peak memory. Aligning hundreds of GPUs' series is
        # seconds of CPU at fleet size: off the event loop.
        return await asyncio.to_thread(align_answer, query, found, wanted, times, step_s)

    answers = await asyncio.gather(*(fetch(p) for p in planned))
    return merge(answers, times, step_s)


@dataclass
class AlignedAnswer:
    """One query's series on the grid, ready to merge (in the planned order)."""

    query: PlannedQuery
    gpus: list[tuple[tuple[str, str], FloatArray]] = field(default_factory=list)
    nodes: list[tuple[str, FloatArray]] = field(default_factory=list)
    traffic: FloatArray | None = None


def align_answer(
    query: PlannedQuery,
    found: Sequence[Series],
    wanted: frozenset[str] | None,
    times: FloatArray,
    step_s: float,
) -> AlignedAnswer:
    """One query's answer on the grid `times`, keyed by GPU or node (hosts not in `wanted`
    dropped); the traffic query's series summed."""
    answer = AlignedAnswer(query)
    if query.signal is Signal.TRAFFIC:
        # The traffic query should return one series; several are summed (a query left
        # `by (pod)` still measures the same service's load).
        if found:
            stacked = np.vstack([align(s, times, step_s) for s in found])
            present = np.isfinite(stacked).any(axis=0)
            answer.traffic = np.where(present, np.nansum(stacked, axis=0), np.nan)
        return answer
    for series in found:
        host = host_of(series.labels)
        if host is None or (wanted is not None and host not in wanted):
            continue
        values = align(series, times, step_s)
        if query.signal in GPU_SIGNALS:
            answer.gpus.append(((host, unit_of(series.labels)), values))
        elif query.signal in NODE_SIGNALS:
            answer.nodes.append((host, values))
    return answer


def merge(answers: Sequence[AlignedAnswer], times: FloatArray, step_s: float) -> CapacityData:
    """The answers in the planned order, per GPU, node and traffic (see `_fill`)."""
    data = CapacityData(times=times, step_s=step_s, queries=[a.query for a in answers])
    for answer in answers:
        signal = answer.query.signal
        if signal is Signal.TRAFFIC:
            if answer.traffic is not None:
                data.traffic = answer.traffic
            continue
        for key, values in answer.gpus:
            if clash := _fill(data.gpus.setdefault(key, {}), signal, values):
                data.conflicts.append((key, signal, clash))
        for host, values in answer.nodes:
            if clash := _fill(data.nodes.setdefault(host, {}), signal, values):
                data.conflicts.append(((host, None), signal, clash))
    return data
