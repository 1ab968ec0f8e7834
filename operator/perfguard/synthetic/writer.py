"""Writing a scenario's history as OpenMetrics text, ready for promtool's backfill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from perfguard.synthetic.arrays import FloatArray, IntArray
from perfguard.synthetic.model import ScenarioModel
from perfguard.synthetic.node import CPU_MODES
from perfguard.synthetic.openmetrics_text import (
    OpenMetricsWriter,
    float_strings,
    format_float,
    integer_strings,
    series_prefix,
    timestamp_suffixes,
)
from perfguard.synthetic.sampling import (
    code_counters,
    histogram_counters,
    request_counts,
)
from perfguard.synthetic.scenario import (
    HISTOGRAM_STAGES,
    POD_TEMPLATE_HASHES,
    TRACKS,
    Scenario,
    SeriesFamily,
    node_exporter_instance,
)

LATENCY_HISTOGRAM = "inference_request_duration_seconds"
REQUESTS_COUNTER = "inference_requests"  # samples carry the OpenMetrics `_total` suffix
DCGM_GPU_UTIL = "DCGM_FI_DEV_GPU_UTIL"
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_GPU_TEMP = "DCGM_FI_DEV_GPU_TEMP"
DCGM_POWER_USAGE = "DCGM_FI_DEV_POWER_USAGE"
DCGM_XID_ERRORS = "DCGM_FI_DEV_XID_ERRORS"
DCGM_CLOCKS_EVENT_REASONS = "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
NODE_CPU_COUNTER = "node_cpu_seconds"
NODE_MEMORY_TOTAL = "node_memory_MemTotal_bytes"
NODE_MEMORY_AVAILABLE = "node_memory_MemAvailable_bytes"


@dataclass(frozen=True)
class GenerationSummary:
    start: datetime
    end: datetime
    step: timedelta
    families: int
    series: int
    samples: int


def write_openmetrics(scenario: Scenario, out: TextIO | Path) -> GenerationSummary:
    """Write the scenario's whole history to `out` (a path is created or overwritten)."""
    if isinstance(out, Path):
        with out.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as handle:
            return _write(scenario, handle)
    return _write(scenario, out)


def generate_file(scenario: Scenario, path: Path | str) -> GenerationSummary:
    """Like write_openmetrics, for callers holding a path as text (a command line)."""
    return write_openmetrics(scenario, Path(path))


def _write(scenario: Scenario, out: TextIO) -> GenerationSummary:
    model = ScenarioModel(scenario)
    writer = OpenMetricsWriter(out, timestamp_suffixes(model.timeline.unix_ms))
    # Arrivals are drawn even when only one of the two families that use them is written,
    # so that leaving a family out never changes the other.
    arrivals = {track: request_counts(model, track) for track in TRACKS}
    if SeriesFamily.LATENCY in scenario.include:
        _write_latency(model, writer, arrivals)
    if SeriesFamily.REQUESTS in scenario.include:
        _write_requests(model, writer, arrivals)
    if SeriesFamily.DCGM in scenario.include:
        _write_dcgm(model, writer)
    if SeriesFamily.NODE in scenario.include:
        _write_node(model, writer)
    writer.end()
    return GenerationSummary(
        start=model.timeline.start,
        end=model.timeline.end,
        step=model.timeline.step,
        families=writer.families,
        series=writer.series,
        samples=writer.samples,
    )


class _Columns:
    """Arrays to be formatted lazily, one window of steps at a time."""

    def __init__(self, arrays: Sequence[IntArray | FloatArray], *, integer: Sequence[bool] | bool):
        self._arrays = arrays
        flags = [integer] * len(arrays) if isinstance(integer, bool) else list(integer)
        self._integer = flags

    def __call__(self, window: slice) -> list[list[str]]:
        return [
            integer_strings(a[window]) if integer else float_strings(a[window])
            for a, integer in zip(self._arrays, self._integer, strict=True)
        ]


def _ints(values: IntArray | FloatArray) -> _Columns:
    return _Columns([values], integer=True)


def _write_latency(
    model: ScenarioModel, writer: OpenMetricsWriter, arrivals: dict[str, IntArray]
) -> None:
    writer.family(
        LATENCY_HISTOGRAM,
        "histogram",
        "Time to serve an inference request, per stage; stage total is the whole request.",
    )
    bounds = [format_float(b) for b in model.latency.buckets] + ["+Inf"]
    for track in TRACKS:
        for stage in HISTOGRAM_STAGES:
            labels = {
                "service": model.scenario.service,
                "track": track,
                "stage": stage,
                "rollouts_pod_template_hash": POD_TEMPLATE_HASHES[track],
            }
            prefixes = [
                series_prefix(f"{LATENCY_HISTOGRAM}_bucket", {**labels, "le": le}) for le in bounds
            ]
            prefixes.append(series_prefix(f"{LATENCY_HISTOGRAM}_count", labels))
            prefixes.append(series_prefix(f"{LATENCY_HISTOGRAM}_sum", labels))
            counters = histogram_counters(model, track, stage, arrivals[track])
            arrays = [*counters.buckets.T, counters.count, counters.sum]
            writer.block(prefixes, _Columns(arrays, integer=[True] * (len(arrays) - 1) + [False]))


def _write_requests(
    model: ScenarioModel, writer: OpenMetricsWriter, arrivals: dict[str, IntArray]
) -> None:
    writer.family(REQUESTS_COUNTER, "counter", "Inference requests served, by response code.")
    for track in TRACKS:
        for code, totals in code_counters(model, track, arrivals[track]).items():
            labels = {
                "service": model.scenario.service,
                "track": track,
                "code": str(code),
                "rollouts_pod_template_hash": POD_TEMPLATE_HASHES[track],
            }
            writer.block([series_prefix(f"{REQUESTS_COUNTER}_total", labels)], _ints(totals))


def _write_dcgm(model: ScenarioModel, writer: OpenMetricsWriter) -> None:
    gpus = model.gpus
    scenario = model.scenario
    families: list[tuple[str, str, FloatArray | IntArray, bool]] = [
        (DCGM_GPU_UTIL, "GPU utilization (in %).", gpus.util, True),
        (DCGM_FB_USED, "Framebuffer memory used (in MiB).", gpus.fb_used_mib, True),
        (DCGM_FB_FREE, "Framebuffer memory free (in MiB).", gpus.fb_free_mib, True),
        (DCGM_GPU_TEMP, "GPU temperature (in C).", gpus.temperature_c, True),
        (DCGM_POWER_USAGE, "Power draw (in W).", gpus.power_w, False),
        (DCGM_XID_ERRORS, "Value of the last XID error encountered.", gpus.xid, True),
        (
            DCGM_CLOCKS_EVENT_REASONS,
            "Current clock event reasons (bitmask).",
            gpus.clock_event_reasons,
            True,
        ),
    ]
    for name, help_text, values, integer in families:
        writer.family(name, "gauge", help_text)
        for n, node in enumerate(gpus.nodes):
            for gpu in range(gpus.gpus_per_node):
                labels = {
                    "gpu": str(gpu),
                    "UUID": gpus.uuids[n][gpu],
                    "modelName": scenario.gpu_model,
                    scenario.host_label: node,
                }
                writer.block(
                    [series_prefix(name, labels)], _Columns([values[n, gpu]], integer=integer)
                )


def _write_node(model: ScenarioModel, writer: OpenMetricsWriter) -> None:
    nodes = model.nodes
    writer.family(NODE_CPU_COUNTER, "counter", "Seconds the CPUs spent in each mode.")
    for n, node in enumerate(nodes.nodes):
        instance = node_exporter_instance(node)
        for cpu in range(nodes.cpu_seconds.shape[1]):
            for m, mode in enumerate(CPU_MODES):
                labels = {"cpu": str(cpu), "instance": instance, "mode": mode}
                writer.block(
                    [series_prefix(f"{NODE_CPU_COUNTER}_total", labels)],
                    _Columns([nodes.cpu_seconds[n, cpu, m]], integer=False),
                )
    writer.family(NODE_MEMORY_TOTAL, "gauge", "Memory information field MemTotal_bytes.")
    for node in nodes.nodes:
        writer.block(
            [series_prefix(NODE_MEMORY_TOTAL, {"instance": node_exporter_instance(node)})],
            lambda window: [[str(nodes.memory_total_bytes)] * (window.stop - window.start)],
        )
    writer.family(NODE_MEMORY_AVAILABLE, "gauge", "Memory information field MemAvailable_bytes.")
    for n, node in enumerate(nodes.nodes):
        writer.block(
            [series_prefix(NODE_MEMORY_AVAILABLE, {"instance": node_exporter_instance(node)})],
            _ints(nodes.memory_available_bytes[n]),
        )
