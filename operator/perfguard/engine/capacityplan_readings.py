"""Readings for CapacityPlan's throttling episodes: how hot the GPU ran, how much it drew.

Temperature and power draw explain a throttling episode but judge nothing (the episode
itself comes from the clock-event bits), so they are not fetched for the whole fleet and
history: at 64 nodes x 8 GPUs x 7 days that would be one of the largest answers of an
evaluation, for a few episodes. After the analysis, one range query per reading (at most
two) fetches the nodes with such an episode among the anomalies the status lists, over
the span of those episodes; the highest reading of each episode's GPU joins its message
("...; temperature up to 91 °C"). A query that fails says so in the message instead; no
sample leaves the message as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from datetime import UTC, datetime
from typing import Final

import numpy as np

from perfguard.analysis import capacity_anomalies as detectors
from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.sources.capacityplan_queries import Signal, host_of, parent_gpu, plan_query, unit_of
from perfguard.sources.prometheus import PrometheusClient, PrometheusError, Series

READING_OF: Final = {
    detectors.AnomalyKind.THERMAL_THROTTLING: Signal.GPU_TEMP,
    detectors.AnomalyKind.POWER_CAPPING: Signal.GPU_POWER,
}

Found = list[tuple[str, str | None, detectors.AnomalyFinding]]


def _spans(anomalies: Found, at: datetime) -> dict[Signal, tuple[list[str], float, float]]:
    """reading -> (the nodes with such an episode, the span of those episodes)."""
    spans: dict[Signal, tuple[list[str], float, float]] = {}
    for node, gpu, finding in anomalies:
        signal = READING_OF.get(finding.kind)
        if signal is None or gpu is None:
            continue
        end = at.timestamp() if finding.end_s is None else finding.end_s
        nodes, first, last = spans.get(signal, ([], finding.start_s, end))
        spans[signal] = (
            nodes if node in nodes else [*nodes, node],
            min(first, finding.start_s),
            max(last, end),
        )
    return spans


async def add_peak_readings(
    client: PrometheusClient,
    spec: CapacityPlanSpec,
    anomalies: Found,
    at: datetime,
    *,
    shown: int,
) -> Found:
    """``anomalies`` with the peak reading in the message of each throttling episode among
    the first ``shown`` (those the status lists)."""
    spans = list(_spans(anomalies[:shown], at).items())
    if not spans:
        return anomalies

    async def fetch(signal: Signal, nodes: list[str], first: float, last: float) -> list[Series]:
        query = plan_query(spec, signal, nodes).query
        start = datetime.fromtimestamp(first, UTC)
        return await client.query_range(query, start, datetime.fromtimestamp(last, UTC), spec.step)

    answers = await asyncio.gather(
        *(fetch(signal, *span) for signal, span in spans), return_exceptions=True
    )
    readings: dict[tuple[Signal, str, str], list[Series]] = defaultdict(list)
    failed: dict[Signal, str] = {}
    for (signal, _), answer in zip(spans, answers, strict=True):
        if isinstance(answer, PrometheusError):
            failed[signal] = answer.kind.value
            continue
        if isinstance(answer, BaseException):
            raise answer
        for series in answer:
            host = host_of(series.labels)
            if host is None:
                continue
            readings[(signal, host, unit_of(series.labels))].append(series)

    amended: Found = []
    for index, (host, unit, finding) in enumerate(anomalies):
        reading = READING_OF.get(finding.kind)
        if index < shown and reading is not None and unit is not None:
            if reading in failed:
                what = detectors.PEAK_READINGS[finding.kind][0]
                message = f"{finding.message}; {what} not read ({failed[reading]})"
                finding = dataclasses.replace(finding, message=message)
            elif found := readings.get((reading, host, unit)) or readings.get(
                (reading, host, parent_gpu(unit))
            ):
                # A MIG instance's temperature or power is its GPU's when the exporter
                # reports the device-level reading without the instance label.
                times = np.concatenate([s.timestamps for s in found])
                values = np.concatenate([s.values for s in found])
                finding = detectors.with_peak_reading(finding, times, values)
        amended.append((host, unit, finding))
    return amended
