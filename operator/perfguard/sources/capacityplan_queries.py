"""PromQL for CapacityPlan: DCGM per GPU, node-exporter per node, and the traffic query.

Every default can be replaced per resource (`spec.queries`); `{{nodes}}` in a query
expands to a regex alternation of the selected hosts, e.g. `gpu-node-1|gpu-node-2`,
for use inside a label matcher (`Hostname=~"{{nodes}}"`). Host names come from Node
objects (DNS-1123 names) and are regex-escaped, so they cannot alter a query.

The DCGM exporter calls the host label `Hostname` in older releases and `hostname` in
newer ones; default queries ask for both with `or` and the reader takes whichever is set.
The clock-event bitmask was renamed too (CLOCK_THROTTLE_REASONS → CLOCKS_EVENT_REASONS).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Final

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.quantities import format_duration

HOST_LABELS: Final = ("Hostname", "hostname")
# dcgm-exporter labels the series of a MIG instance with its GPU instance (GPU_I_ID, and the
# profile in GPU_I_PROFILE) besides the parent GPU's `gpu` index and UUID.
MIG_INSTANCE_LABEL: Final = "GPU_I_ID"
MIG_SEPARATOR: Final = " MIG "
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
ANY_HOST: Final = ".+"


class Signal(StrEnum):
    """What each query returns; names match `spec.queries` fields."""

    GPU_UTIL = "gpuUtil"
    GPU_MEMORY_USED = "gpuMemoryUsed"
    GPU_MEMORY_FREE = "gpuMemoryFree"
    GPU_TEMP = "gpuTemp"
    GPU_POWER = "gpuPower"
    XID_ERRORS = "xidErrors"
    CLOCK_EVENTS = "clockEvents"
    CPU = "cpu"
    MEMORY = "memory"
    TRAFFIC = "traffic"


GPU_SIGNALS: Final = (
    Signal.GPU_UTIL,
    Signal.GPU_MEMORY_USED,
    Signal.GPU_MEMORY_FREE,
    Signal.XID_ERRORS,
    Signal.CLOCK_EVENTS,
)
NODE_SIGNALS: Final = (Signal.CPU, Signal.MEMORY)
# Read only for the GPUs and times of a throttling episode, to say how hot or how much power
# (see perfguard.engine.capacityplan_readings), not over the whole fleet and history.
READING_SIGNALS: Final = (Signal.GPU_TEMP, Signal.GPU_POWER)

_DCGM: Final = {
    Signal.GPU_UTIL: ("DCGM_FI_DEV_GPU_UTIL",),
    Signal.GPU_MEMORY_USED: ("DCGM_FI_DEV_FB_USED",),
    Signal.GPU_MEMORY_FREE: ("DCGM_FI_DEV_FB_FREE",),
    Signal.GPU_TEMP: ("DCGM_FI_DEV_GPU_TEMP",),
    Signal.GPU_POWER: ("DCGM_FI_DEV_POWER_USAGE",),
    Signal.XID_ERRORS: ("DCGM_FI_DEV_XID_ERRORS",),
    Signal.CLOCK_EVENTS: (
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
        "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
    ),
}
_OVERRIDE_FIELD: Final = {
    Signal.GPU_UTIL: "gpu_util",
    Signal.GPU_MEMORY_USED: "gpu_memory_used",
    Signal.GPU_MEMORY_FREE: "gpu_memory_free",
    Signal.GPU_TEMP: "gpu_temp",
    Signal.GPU_POWER: "gpu_power",
    Signal.XID_ERRORS: "xid_errors",
    Signal.CLOCK_EVENTS: "clock_events",
    Signal.CPU: "cpu",
    Signal.MEMORY: "memory",
}


def host_regex(hosts: Sequence[str] | None) -> str:
    """An RE2 alternation matching exactly these hosts (None: any host)."""
    if hosts is None:
        return ANY_HOST
    safe = sorted({h for h in hosts if _DNS_NAME.match(h)})
    if not safe:
        return "$^"  # matches nothing: no host selected
    # DNS names hold only [a-z0-9.-]; of those only "." means something to a regex. The
    # backslash is doubled because the regex sits inside a PromQL string literal.
    return "|".join(h.replace(".", "\\\\.") for h in safe)


def _dcgm(names: Sequence[str], nodes: str) -> str:
    parts = [f'{name}{{{label}=~"{nodes}"}}' for name in names for label in HOST_LABELS]
    return " or ".join(parts)


def rate_window(step: timedelta) -> str:
    """The CPU rate window: the step, but at least a minute (four 15 s scrapes)."""
    return format_duration(max(step, timedelta(minutes=1)))


def default_query(signal: Signal, nodes: str, step: timedelta) -> str:
    if signal in _DCGM:
        return _dcgm(_DCGM[signal], nodes)
    instance = f'instance=~"({nodes})(:[0-9]+)?"'
    if signal is Signal.CPU:
        return (
            f'100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle",{instance}}}'
            f"[{rate_window(step)}])))"
        )
    if signal is Signal.MEMORY:
        return (
            f"100 * (1 - node_memory_MemAvailable_bytes{{{instance}}}"
            f" / node_memory_MemTotal_bytes{{{instance}}})"
        )
    raise ValueError(f"no default query for {signal}")


@dataclass(frozen=True)
class PlannedQuery:
    signal: Signal
    query: str
    overridden: bool


def plan_query(spec: CapacityPlanSpec, signal: Signal, hosts: Sequence[str] | None) -> PlannedQuery:
    """The query of one signal for these hosts: the spec's override with `{{nodes}}`
    expanded, or the default."""
    nodes = host_regex(hosts)
    override = getattr(spec.queries, _OVERRIDE_FIELD[signal], None) if spec.queries else None
    if override:
        text = re.sub(r"\{\{\s*nodes\s*\}\}", lambda _: nodes, override)
        return PlannedQuery(signal, text, True)
    return PlannedQuery(signal, default_query(signal, nodes, spec.step), False)


def plan_queries(spec: CapacityPlanSpec, hosts: Sequence[str] | None) -> list[PlannedQuery]:
    """One range query per fleet signal (not the readings), then the traffic query."""
    planned = [plan_query(spec, signal, hosts) for signal in (*GPU_SIGNALS, *NODE_SIGNALS)]
    planned.append(PlannedQuery(Signal.TRAFFIC, spec.traffic.query, True))
    return planned


def host_of(labels: dict[str, str]) -> str | None:
    """The node a series belongs to: DCGM's host label, or node-exporter's instance."""
    for label in (*HOST_LABELS, "node", "nodename"):
        if labels.get(label):
            return labels[label]
    instance = labels.get("instance")
    if instance:
        return instance.rsplit(":", 1)[0] if re.search(r":\d+$", instance) else instance
    return None


def unit_of(labels: dict[str, str]) -> str:
    """The GPU a DCGM series belongs to: its `gpu` index (or UUID), and on a MIG-enabled GPU
    its GPU instance, e.g. "0 MIG 1": MIG instances of one GPU are separate units."""
    gpu = labels.get("gpu") or labels.get("UUID") or "?"
    instance = labels.get(MIG_INSTANCE_LABEL)
    return f"{gpu}{MIG_SEPARATOR}{instance}" if instance else gpu


def parent_gpu(unit: str) -> str:
    """The physical GPU of a unit ("0 MIG 1" -> "0"; a whole GPU is its own parent)."""
    return unit.split(MIG_SEPARATOR, 1)[0]
