"""What node-exporter reports for every node: CPU time per mode and memory.

CPUs are busy in proportion to the load (pre- and post-processing run on the CPU),
memory use rises mildly with it. CPU counters start at a random uptime, like a real
node that was not booted when the history begins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfguard.synthetic.arrays import FloatArray
from perfguard.synthetic.randomness import ar1, stream
from perfguard.synthetic.scenario import Scenario
from perfguard.synthetic.timeline import Timeline
from perfguard.synthetic.traffic import TrafficModel

CPU_MODES: tuple[str, ...] = ("idle", "user", "system")
CPU_BUSY_IDLE = 0.08
CPU_BUSY_PER_LOAD = 0.25
CPU_USER_SHARE_OF_BUSY = 0.8
CPU_NOISE_SD = 0.03
CPU_JITTER_SD = 0.02
CPU_NOISE_CORRELATION_S = 5 * 60.0
MAX_UPTIME_S = 30 * 86400.0

MEMORY_TOTAL_BYTES = 512 * 2**30
MEMORY_USED_SHARE_IDLE = 0.30
MEMORY_USED_SHARE_PER_LOAD = 0.08
MEMORY_NOISE_SD = 0.01
MEMORY_NOISE_CORRELATION_S = 30 * 60.0


@dataclass(frozen=True)
class NodeFleetModel:
    nodes: tuple[str, ...]
    cpu_busy: FloatArray  # (nodes, cpus, steps): share of each step a CPU was not idle
    # (nodes, cpus, modes, steps) node_cpu_seconds_total, modes ordered as CPU_MODES
    cpu_seconds: FloatArray
    memory_total_bytes: int
    memory_available_bytes: FloatArray  # (nodes, steps)


def build_node_fleet(
    scenario: Scenario, timeline: Timeline, traffic: TrafficModel
) -> NodeFleetModel:
    relative_load = traffic.served_rps / scenario.base_rps
    cpus = scenario.cpus_per_node
    busy = np.empty((scenario.nodes, cpus, timeline.size))
    available = np.empty((scenario.nodes, timeline.size))
    uptime = stream(scenario.seed, "node", "uptime").uniform(
        86400.0, MAX_UPTIME_S, (scenario.nodes, 1, 1)
    )
    for n, node in enumerate(scenario.node_names):
        jitter = stream(scenario.seed, "node", node, "cpu-jitter").normal(
            0.0, CPU_JITTER_SD, (cpus, timeline.size)
        )
        for cpu in range(cpus):
            wander = ar1(
                stream(scenario.seed, "node", node, "cpu", cpu),
                timeline.size,
                sd=CPU_NOISE_SD,
                correlation_time_s=CPU_NOISE_CORRELATION_S,
                step_s=timeline.step_s,
            )
            busy[n, cpu] = CPU_BUSY_IDLE + CPU_BUSY_PER_LOAD * relative_load + wander
        busy[n] += jitter
        memory_wander = ar1(
            stream(scenario.seed, "node", node, "memory"),
            timeline.size,
            sd=MEMORY_NOISE_SD,
            correlation_time_s=MEMORY_NOISE_CORRELATION_S,
            step_s=timeline.step_s,
        )
        used = MEMORY_USED_SHARE_IDLE + MEMORY_USED_SHARE_PER_LOAD * relative_load + memory_wander
        available[n] = np.rint(MEMORY_TOTAL_BYTES * (1.0 - np.clip(used, 0.0, 1.0)))
    busy = np.clip(busy, 0.01, 1.0)

    shares = np.stack(
        [
            1.0 - busy,
            busy * CPU_USER_SHARE_OF_BUSY,
            busy * (1.0 - CPU_USER_SHARE_OF_BUSY),
        ],
        axis=2,
    )
    # Idle dominates a node's life before the history starts, as on a lightly used box.
    initial = uptime[..., np.newaxis] * np.array([0.7, 0.24, 0.06])[:, np.newaxis]
    cpu_seconds = initial + np.cumsum(shares * timeline.step_s, axis=3)
    return NodeFleetModel(
        nodes=scenario.node_names,
        cpu_busy=busy,
        cpu_seconds=np.round(cpu_seconds, 2),
        memory_total_bytes=MEMORY_TOTAL_BYTES,
        memory_available_bytes=available,
    )
