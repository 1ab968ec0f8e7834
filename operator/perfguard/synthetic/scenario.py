"""What a synthetic history contains: the scenario, its injections and the fixed names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import Literal

TRACKS: tuple[str, ...] = ("stable", "canary")
STAGES: tuple[str, ...] = ("preprocess", "inference", "postprocess")
# The whole request, including time spent between stages (see the package docstring).
TOTAL_STAGE = "total"
HISTOGRAM_STAGES: tuple[str, ...] = (*STAGES, TOTAL_STAGE)

STABLE_POD_TEMPLATE_HASH = "6d4f9c7b8"
CANARY_POD_TEMPLATE_HASH = "7f9b6c5d4"
POD_TEMPLATE_HASHES: dict[str, str] = {
    "stable": STABLE_POD_TEMPLATE_HASH,
    "canary": CANARY_POD_TEMPLATE_HASH,
}

NODE_EXPORTER_PORT = 9100
DEFAULT_XID = 79  # "GPU has fallen off the bus": the XID every on-call engineer knows


class InjectionKind(StrEnum):
    """What an injection changes; the unit of `Injection.magnitude` depends on it.

    - latency_shift: milliseconds added to every request of a stage (a distribution shift)
    - latency_scale: percent added to a stage's latency (+10 scales it by 1.10)
    - throughput_drop: requests/s removed from a track's traffic
    - error_burst: share (0..1) of a track's requests answered with `code` (default 500)
    - util_spike: percentage points added to GPU utilisation
    - thermal_throttling: degrees Celsius added to GPU temperature; sets the thermal bits
    - power_capping: the power cap in watts; sets the power-cap bit while demand exceeds it
    - xid_error: unused; `code` is the XID reported (default 79)
    - gpu_memory_growth: percent of the GPU's framebuffer leaked per hour
    """

    LATENCY_SHIFT = "latency_shift"
    LATENCY_SCALE = "latency_scale"
    THROUGHPUT_DROP = "throughput_drop"
    ERROR_BURST = "error_burst"
    UTIL_SPIKE = "util_spike"
    THERMAL_THROTTLING = "thermal_throttling"
    POWER_CAPPING = "power_capping"
    XID_ERROR = "xid_error"
    GPU_MEMORY_GROWTH = "gpu_memory_growth"


LATENCY_KINDS = frozenset({InjectionKind.LATENCY_SHIFT, InjectionKind.LATENCY_SCALE})
TRAFFIC_KINDS = frozenset({InjectionKind.THROUGHPUT_DROP, InjectionKind.ERROR_BURST})
GPU_KINDS = frozenset(
    {
        InjectionKind.UTIL_SPIKE,
        InjectionKind.THERMAL_THROTTLING,
        InjectionKind.POWER_CAPPING,
        InjectionKind.XID_ERROR,
        InjectionKind.GPU_MEMORY_GROWTH,
    }
)


class SeriesFamily(StrEnum):
    LATENCY = "latency"  # inference_request_duration_seconds
    REQUESTS = "requests"  # inference_requests_total
    DCGM = "dcgm"  # DCGM_FI_DEV_* per node and GPU
    NODE = "node"  # node-exporter CPU and memory


@dataclass(frozen=True)
class Injection:
    """A fault or change applied from `start` (offset from the history start).

    Latency and traffic injections target `track` (and `stage`); GPU injections target
    `node` (None: every node) and `gpu` (None: every GPU of the targeted nodes). A latency
    injection on the `total` stage changes only the time spent between stages, which no
    stage accounts for.
    """

    kind: InjectionKind
    start: timedelta
    duration: timedelta | None = None
    magnitude: float = 0.0
    track: str = "canary"
    stage: str = "inference"
    node: str | None = None
    gpu: int | None = None
    code: int | None = None

    def __post_init__(self) -> None:
        # Accept the plain string too, so scenarios can come from YAML or a command line.
        object.__setattr__(self, "kind", InjectionKind(self.kind))
        if self.start < timedelta(0):
            raise ValueError(f"injection start must not be negative, got {self.start}")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError(f"injection duration must be positive, got {self.duration}")
        if self.track not in TRACKS:
            raise ValueError(f"injection track must be one of {TRACKS}, got {self.track!r}")
        if self.stage not in HISTOGRAM_STAGES:
            raise ValueError(
                f"injection stage must be one of {HISTOGRAM_STAGES}, got {self.stage!r}"
            )
        if self.gpu is not None and self.gpu < 0:
            raise ValueError(f"injection gpu must not be negative, got {self.gpu}")
        if self.kind is InjectionKind.ERROR_BURST and not 0.0 <= self.magnitude <= 1.0:
            raise ValueError(f"error_burst magnitude is a share in [0, 1], got {self.magnitude}")
        if self.kind is InjectionKind.POWER_CAPPING and self.magnitude <= 0:
            raise ValueError(f"power_capping magnitude is a cap in W, got {self.magnitude}")

    @property
    def end(self) -> timedelta | None:
        return None if self.duration is None else self.start + self.duration


def _utc_now() -> datetime:
    return datetime.now(UTC)


def floor_to_step(moment: datetime, step: timedelta) -> datetime:
    """Round down to a multiple of `step` since the Unix epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + step * ((moment - epoch) // step)


@dataclass(frozen=True)
class Scenario:
    """One synthetic history: a GPU inference service, its fleet and what goes wrong.

    `end` is rounded down to a multiple of `step` since the epoch, so every sample sits on
    a regular grid that PromQL range queries can align with. The history holds
    `days * 86400 / step + 1` samples per series, the last one at `end`.
    """

    service: str = "resnet"
    days: float = 7.0
    step: timedelta = timedelta(seconds=30)
    end: datetime = field(default_factory=_utc_now)
    seed: int = 0
    canary_share: float = 0.1
    base_rps: float = 200.0
    nodes: int = 4
    gpus_per_node: int = 8
    cpus_per_node: int = 8
    host_label: Literal["Hostname", "hostname"] = "Hostname"
    injections: tuple[Injection, ...] = ()
    include: frozenset[SeriesFamily] = frozenset(SeriesFamily)
    gpu_model: str = "NVIDIA A100-SXM4-80GB"
    gpu_memory_mib: int = 81920
    # Mean GPU utilisation (%) when the service receives exactly `base_rps`.
    gpu_util_at_base: float = 55.0
    # Time a request spends outside every stage (queueing, serialisation, network).
    unattributed_latency: timedelta = timedelta(milliseconds=1)
    # None: DEFAULT_LATENCY_BUCKETS (seconds, ascending, without +Inf).
    latency_buckets: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("scenario end must be timezone-aware (UTC)")
        if self.step <= timedelta(0):
            raise ValueError(f"step must be positive, got {self.step}")
        if self.days <= 0:
            raise ValueError(f"days must be positive, got {self.days}")
        if self.steps < 1:
            raise ValueError(f"{self.days} days hold no {self.step} step")
        object.__setattr__(self, "end", floor_to_step(self.end.astimezone(UTC), self.step))
        object.__setattr__(self, "include", frozenset(SeriesFamily(f) for f in self.include))
        if not 0.0 <= self.canary_share <= 1.0:
            raise ValueError(f"canary_share must be in [0, 1], got {self.canary_share}")
        if self.base_rps <= 0:
            raise ValueError(f"base_rps must be positive, got {self.base_rps}")
        if min(self.nodes, self.gpus_per_node, self.cpus_per_node) < 1:
            raise ValueError("nodes, gpus_per_node and cpus_per_node must be at least 1")
        if self.host_label not in ("Hostname", "hostname"):
            raise ValueError(f"host_label must be Hostname or hostname, got {self.host_label!r}")
        if not 0.0 < self.gpu_util_at_base <= 100.0:
            raise ValueError(f"gpu_util_at_base must be in (0, 100], got {self.gpu_util_at_base}")
        if self.latency_buckets is not None:
            buckets = self.latency_buckets
            if not buckets or any(b <= a for a, b in pairwise(buckets)):
                raise ValueError("latency_buckets must be non-empty and strictly ascending")
        for injection in self.injections:
            self._check_target(injection)

    def _check_target(self, injection: Injection) -> None:
        if injection.kind not in GPU_KINDS:
            return
        if injection.node is not None and injection.node not in self.node_names:
            raise ValueError(f"injection node {injection.node!r} is not one of {self.node_names}")
        if injection.gpu is not None and injection.gpu >= self.gpus_per_node:
            raise ValueError(
                f"injection gpu {injection.gpu} does not exist: nodes have "
                f"{self.gpus_per_node} GPUs"
            )

    @property
    def steps(self) -> int:
        """Number of steps between the first and the last sample."""
        return round(timedelta(days=self.days) / self.step)

    @property
    def start(self) -> datetime:
        return self.end - self.step * self.steps

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(node_name(i) for i in range(self.nodes))


def node_name(index: int) -> str:
    """The host name of the `index`-th node (0-based): DCGM's host label value.

    node-exporter's `instance` is this name plus `:9100`.
    """
    return f"gpu-node-{index + 1}"


def node_exporter_instance(node: str) -> str:
    return f"{node}:{NODE_EXPORTER_PORT}"
