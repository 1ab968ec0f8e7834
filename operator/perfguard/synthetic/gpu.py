"""What the DCGM exporter reports for every GPU of the fleet, step by step.

Utilisation is linear in the traffic each GPU carries (the fleet shares the load
evenly) plus a per-GPU offset and noise, so a robust fit of utilisation against
`sum(rate(inference_requests_total))` recovers `util_per_rps`. Memory, temperature and
power follow utilisation. Arrays are shaped (nodes, gpus, steps).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

import numpy as np

from perfguard.synthetic.arrays import BoolArray, FloatArray, IntArray
from perfguard.synthetic.randomness import ar1, stream
from perfguard.synthetic.scenario import DEFAULT_XID, Injection, InjectionKind, Scenario
from perfguard.synthetic.timeline import Timeline
from perfguard.synthetic.traffic import TrafficModel

# DCGM_FI_DEV_CLOCKS_EVENT_REASONS bits (nvml's clocks event reasons).
CLOCKS_EVENT_GPU_IDLE = 0x1
CLOCKS_EVENT_SW_POWER_CAP = 0x4
CLOCKS_EVENT_HW_SLOWDOWN = 0x8
CLOCKS_EVENT_SW_THERMAL = 0x20
CLOCKS_EVENT_HW_THERMAL = 0x40
CLOCKS_EVENT_HW_POWER_BRAKE = 0x80

IDLE_UTIL = 3.0
UTIL_OFFSET_SD = 1.5
UTIL_NOISE_SD = 2.0
UTIL_NOISE_CORRELATION_S = 10 * 60.0
UTIL_JITTER_SD = 1.0

MODEL_MEMORY_SHARE = 0.35  # weights resident whatever the load
WORKING_MEMORY_SHARE_AT_FULL_UTIL = 0.25  # activations and caches, growing with load
MEMORY_NOISE_SHARE = 0.005

TEMP_IDLE_C = 32.0
TEMP_PER_UTIL_C = 0.35
TEMP_OFFSET_SD = 2.0
TEMP_NOISE_SD = 0.8

POWER_IDLE_W = 65.0
POWER_PER_UTIL_W = 2.9
POWER_NOISE_SD = 4.0

NOISE_CORRELATION_S = 10 * 60.0


def gpu_uuid(seed: int, node: str, gpu: int) -> str:
    digest = hashlib.sha256(f"{seed}/{node}/{gpu}".encode()).digest()
    return f"GPU-{uuid.UUID(bytes=digest[:16])}"


@dataclass(frozen=True)
class GpuFleetModel:
    nodes: tuple[str, ...]
    gpus_per_node: int
    uuids: tuple[tuple[str, ...], ...]  # [node][gpu]
    util_idle: float  # % with no traffic
    util_per_rps: float  # % per request/s carried by one GPU
    util_signal: FloatArray  # utilisation without noise, injections included
    util: FloatArray  # as exported: whole percent
    fb_used_mib: FloatArray
    fb_free_mib: FloatArray
    temperature_c: FloatArray
    power_w: FloatArray
    xid: IntArray
    clock_event_reasons: IntArray

    def index(self, node: str, gpu: int) -> tuple[int, int]:
        if node not in self.nodes or not 0 <= gpu < self.gpus_per_node:
            raise KeyError(f"no GPU {gpu} on node {node!r}")
        return self.nodes.index(node), gpu


def _targets(scenario: Scenario, injection: Injection) -> BoolArray:
    """(nodes, gpus) mask of the GPUs an injection acts on."""
    mask = np.zeros((scenario.nodes, scenario.gpus_per_node), dtype=np.bool_)
    node_rows = (
        [scenario.node_names.index(injection.node)]
        if injection.node is not None
        else list(range(scenario.nodes))
    )
    gpu_cols = [injection.gpu] if injection.gpu is not None else list(range(scenario.gpus_per_node))
    mask[np.ix_(node_rows, gpu_cols)] = True
    return mask


def _noise(
    scenario: Scenario, timeline: Timeline, what: str, sd: float, correlation_s: float
) -> FloatArray:
    paths = [
        ar1(
            stream(scenario.seed, "dcgm", what, node, gpu),
            timeline.size,
            sd=sd,
            correlation_time_s=correlation_s,
            step_s=timeline.step_s,
        )
        for node in scenario.node_names
        for gpu in range(scenario.gpus_per_node)
    ]
    shape = (scenario.nodes, scenario.gpus_per_node, timeline.size)
    return np.asarray(paths, dtype=np.float64).reshape(shape)


def _offsets(scenario: Scenario, what: str, sd: float) -> FloatArray:
    rng = stream(scenario.seed, "dcgm-offset", what)
    offsets: FloatArray = rng.normal(0.0, sd, (scenario.nodes, scenario.gpus_per_node, 1))
    return offsets


def build_gpu_fleet(scenario: Scenario, timeline: Timeline, traffic: TrafficModel) -> GpuFleetModel:
    shape = (scenario.nodes, scenario.gpus_per_node, timeline.size)
    gpu_count = scenario.nodes * scenario.gpus_per_node
    util_per_rps = (scenario.gpu_util_at_base - IDLE_UTIL) / (scenario.base_rps / gpu_count)
    per_gpu_rps = traffic.served_rps / gpu_count

    util_signal = (
        IDLE_UTIL + _offsets(scenario, "util", UTIL_OFFSET_SD) + util_per_rps * per_gpu_rps
    )
    util_signal = np.broadcast_to(util_signal, shape).copy()
    temperature_shift = np.zeros(shape)
    memory_growth_share = np.zeros(shape)
    power_cap = np.full(shape, np.inf)
    xid = np.zeros(shape, dtype=np.int64)
    reasons = np.zeros(shape, dtype=np.int64)

    for injection in scenario.injections:
        where = _targets(scenario, injection)[:, :, np.newaxis] & timeline.active(injection)
        if injection.kind is InjectionKind.UTIL_SPIKE:
            util_signal += np.where(where, injection.magnitude, 0.0)
        elif injection.kind is InjectionKind.THERMAL_THROTTLING:
            temperature_shift += np.where(where, injection.magnitude, 0.0)
            reasons |= np.where(where, CLOCKS_EVENT_SW_THERMAL | CLOCKS_EVENT_HW_THERMAL, 0)
        elif injection.kind is InjectionKind.POWER_CAPPING:
            power_cap = np.where(where, np.minimum(power_cap, injection.magnitude), power_cap)
        elif injection.kind is InjectionKind.XID_ERROR:
            xid = np.where(where, injection.code or DEFAULT_XID, xid)
        elif injection.kind is InjectionKind.GPU_MEMORY_GROWTH:
            leaked = injection.magnitude / 100.0 * timeline.hours_active(injection)
            memory_growth_share += np.where(where, leaked, 0.0)

    jitter = stream(scenario.seed, "dcgm", "util-jitter").normal(0.0, UTIL_JITTER_SD, shape)
    util_noise = _noise(scenario, timeline, "util", UTIL_NOISE_SD, UTIL_NOISE_CORRELATION_S)
    util = np.clip(np.rint(util_signal + util_noise + jitter), 0.0, 100.0)
    reasons |= np.where(util == 0.0, CLOCKS_EVENT_GPU_IDLE, 0)

    total_mib = float(scenario.gpu_memory_mib)
    memory_noise = _noise(scenario, timeline, "fb", MEMORY_NOISE_SHARE, NOISE_CORRELATION_S)
    used_share = (
        MODEL_MEMORY_SHARE
        + WORKING_MEMORY_SHARE_AT_FULL_UTIL * util / 100.0
        + memory_noise
        + memory_growth_share
    )
    fb_used = np.rint(np.clip(used_share, 0.0, 1.0) * total_mib)

    temperature = np.rint(
        TEMP_IDLE_C
        + TEMP_PER_UTIL_C * util
        + _offsets(scenario, "temperature", TEMP_OFFSET_SD)
        + _noise(scenario, timeline, "temperature", TEMP_NOISE_SD, NOISE_CORRELATION_S)
        + temperature_shift
    )
    power_demand = (
        POWER_IDLE_W
        + POWER_PER_UTIL_W * util
        + _noise(scenario, timeline, "power", POWER_NOISE_SD, NOISE_CORRELATION_S)
    )
    reasons |= np.where(power_demand > power_cap, CLOCKS_EVENT_SW_POWER_CAP, 0)
    power = np.round(np.maximum(np.minimum(power_demand, power_cap), 0.0), 3)

    return GpuFleetModel(
        nodes=scenario.node_names,
        gpus_per_node=scenario.gpus_per_node,
        uuids=tuple(
            tuple(gpu_uuid(scenario.seed, node, gpu) for gpu in range(scenario.gpus_per_node))
            for node in scenario.node_names
        ),
        util_idle=IDLE_UTIL,
        util_per_rps=util_per_rps,
        util_signal=util_signal,
        util=util,
        fb_used_mib=fb_used,
        fb_free_mib=total_mib - fb_used,
        temperature_c=temperature,
        power_w=power,
        xid=xid,
        clock_event_reasons=reasons,
    )
