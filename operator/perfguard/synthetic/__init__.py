"""Synthetic telemetry of a GPU inference service, as OpenMetrics text for backfilling.

Deterministic for a seed: the same `Scenario` always yields the same file. Used by the
demo, the integration tests (through `promtool tsdb create-blocks-from openmetrics`)
and the benchmarks. `Expected` gives the true values the file was generated from.

Series (all samples carry timestamps in seconds, one sample per `step`):

- `inference_request_duration_seconds` histogram (`_bucket{le}`, `_sum`, `_count`)
  with `service`, `track` (stable|canary), `rollouts_pod_template_hash`
  (STABLE_POD_TEMPLATE_HASH / CANARY_POD_TEMPLATE_HASH) and `stage`: preprocess,
  inference, postprocess, and `total`, the whole request. Quantiles do not add up, so the
  whole request needs its own histogram; it lives under the same name so one selector
  reaches every stage, and `stage!="total"` excludes it wherever stages are summed. The
  total's mean is the stages' means plus `Scenario.unattributed_latency`, time no stage
  accounts for. Buckets: DEFAULT_LATENCY_BUCKETS, 1 ms apart up to 40 ms.
- `inference_requests_total` counter with `service`, `track`, `code` (200, 500, 503 and
  any code an error burst uses) and `rollouts_pod_template_hash`. Each stage's `_count`
  equals the track's requests summed over codes.
- DCGM exporter gauges per node and GPU: DCGM_FI_DEV_GPU_UTIL, _FB_USED, _FB_FREE,
  _GPU_TEMP, _POWER_USAGE, _XID_ERRORS, _CLOCKS_EVENT_REASONS, labelled `gpu`, `UUID`,
  `modelName` and the host label `Hostname` (older exporters) or `hostname` (newer),
  chosen by `Scenario.host_label`.
- node-exporter: `node_cpu_seconds_total{cpu, mode, instance}` (idle, user, system),
  `node_memory_MemTotal_bytes` and `node_memory_MemAvailable_bytes` by `instance`.

Hosts are named `gpu-node-1` .. `gpu-node-N`. DCGM's host label holds that name;
node-exporter's `instance` is the name plus `:9100`, so the host part of `instance`
equals the DCGM host label.
"""

from perfguard.synthetic.expected import Expected
from perfguard.synthetic.gpu import (
    CLOCKS_EVENT_GPU_IDLE,
    CLOCKS_EVENT_HW_POWER_BRAKE,
    CLOCKS_EVENT_HW_SLOWDOWN,
    CLOCKS_EVENT_HW_THERMAL,
    CLOCKS_EVENT_SW_POWER_CAP,
    CLOCKS_EVENT_SW_THERMAL,
)
from perfguard.synthetic.latency import DEFAULT_LATENCY_BUCKETS
from perfguard.synthetic.scenario import (
    CANARY_POD_TEMPLATE_HASH,
    HISTOGRAM_STAGES,
    POD_TEMPLATE_HASHES,
    STABLE_POD_TEMPLATE_HASH,
    STAGES,
    TOTAL_STAGE,
    TRACKS,
    Injection,
    InjectionKind,
    Scenario,
    SeriesFamily,
    node_exporter_instance,
    node_name,
)
from perfguard.synthetic.writer import GenerationSummary, generate_file, write_openmetrics

__all__ = [
    "CANARY_POD_TEMPLATE_HASH",
    "CLOCKS_EVENT_GPU_IDLE",
    "CLOCKS_EVENT_HW_POWER_BRAKE",
    "CLOCKS_EVENT_HW_SLOWDOWN",
    "CLOCKS_EVENT_HW_THERMAL",
    "CLOCKS_EVENT_SW_POWER_CAP",
    "CLOCKS_EVENT_SW_THERMAL",
    "DEFAULT_LATENCY_BUCKETS",
    "HISTOGRAM_STAGES",
    "POD_TEMPLATE_HASHES",
    "STABLE_POD_TEMPLATE_HASH",
    "STAGES",
    "TOTAL_STAGE",
    "TRACKS",
    "Expected",
    "GenerationSummary",
    "Injection",
    "InjectionKind",
    "Scenario",
    "SeriesFamily",
    "generate_file",
    "node_exporter_instance",
    "node_name",
    "write_openmetrics",
]
