"""CapacityPlan: how close the GPU/CPU/memory fleet is to its limits, and what growth needs."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from perfguard.api.base import ApiModel, LabelSelector
from perfguard.api.cel import CelRule, unique, validations
from perfguard.api.conditions import ResourceStatus
from perfguard.api.perfbaseline import PrometheusRef
from perfguard.api.quantities import Duration, Interval, cel_comparing_durations, cel_duration

# A utilisation limit in percent. 0 is refused: nothing can be brought down to it, so
# every evaluation's recommendation would fail.
Limit = Annotated[float, Field(gt=0, le=100)]


class NodesSpec(ApiModel):
    selector: LabelSelector | None = Field(
        default=None,
        description="Selects Node objects by label; unset or empty: every Node. Their names "
        "pick the DCGM and node-exporter series.",
    )


class TrafficSpec(ApiModel):
    query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL giving the service's traffic in requests per second; several "
        "series are summed.",
    )


class SustainedSpec(ApiModel):
    above: Limit = Field(
        default=85.0,
        description="Utilisation, in percent, that a resource's fleet average must stay above; "
        "default 85.",
    )
    for_: Duration = Field(
        default=timedelta(minutes=15),
        alias="for",
        description="How long it must stay above, up to now; default 15m.",
    )


class CapacityThresholds(ApiModel):
    cpu: Limit = Field(
        default=80.0, description="CPU limit: percent busy, fleet average; default 80."
    )
    memory: Limit = Field(
        default=85.0,
        description="Memory limit: percent used (1 - available / total), fleet average; "
        "default 85.",
    )
    gpu: Limit = Field(
        default=90.0, description="GPU utilisation limit, percent, fleet average; default 90."
    )
    gpu_memory: Limit = Field(
        default=90.0,
        description="GPU memory limit: percent of the framebuffer used, fleet average; default 90.",
    )
    sustained: SustainedSpec = Field(
        default_factory=SustainedSpec,
        description="A resource whose fleet average has stayed above `above` for `for` is "
        "NearLimit, even below its own limit.",
    )


class Scenario(ApiModel):
    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Unique within the resource (a DNS label).",
    )
    growth_percent: float = Field(
        gt=-100,
        le=10_000,
        description="Traffic growth over the history's p95 traffic, in percent, e.g. 20; "
        "negative for a decline (above -100).",
    )


class AnomalySpec(ApiModel):
    spike_percent: float = Field(
        default=20.0,
        gt=0,
        le=10_000,
        description="A GPU utilisation sample more than this percent above the median of the "
        "preceding hour (and by more than a noise floor of at least 5 points) is a "
        "UtilizationSpike; default 20.",
    )
    gpu_memory_growth_percent_per_hour: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="GPU memory use growing faster than this, in percent of the framebuffer "
        "per hour, measured over an hour and held for another, is GpuMemoryGrowth; default 5.",
    )
    throttling: bool = Field(
        default=True,
        description="Report ThermalThrottling and PowerCapping episodes, decoded from the "
        "clock-event reasons; default true.",
    )
    xid_errors: bool = Field(
        default=True,
        description="Report each change of a GPU's XID error code to a non-zero one; default true.",
    )


class QueryOverrides(ApiModel):
    """Replace a default query; `{{nodes}}` expands to the selected hosts' regex."""

    gpu_util: str | None = Field(
        default=None,
        max_length=4096,
        description="GPU utilisation, percent, per GPU; default DCGM_FI_DEV_GPU_UTIL.",
    )
    gpu_memory_used: str | None = Field(
        default=None,
        max_length=4096,
        description="GPU memory used, per GPU, in gpuMemoryFree's unit; default "
        "DCGM_FI_DEV_FB_USED (MiB).",
    )
    gpu_memory_free: str | None = Field(
        default=None,
        max_length=4096,
        description="GPU memory free, per GPU, in gpuMemoryUsed's unit; default "
        "DCGM_FI_DEV_FB_FREE (MiB).",
    )
    gpu_temp: str | None = Field(
        default=None,
        max_length=4096,
        description="GPU temperature, read only for thermal throttling episodes; default "
        "DCGM_FI_DEV_GPU_TEMP (°C).",
    )
    gpu_power: str | None = Field(
        default=None,
        max_length=4096,
        description="GPU power draw, read only for power capping episodes; default "
        "DCGM_FI_DEV_POWER_USAGE (W).",
    )
    xid_errors: str | None = Field(
        default=None,
        max_length=4096,
        description="The last XID error code, per GPU; default DCGM_FI_DEV_XID_ERRORS.",
    )
    clock_events: str | None = Field(
        default=None,
        max_length=4096,
        description="The clock-event reasons bitmask, per GPU; default "
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS or DCGM_FI_DEV_CLOCK_THROTTLE_REASONS.",
    )
    cpu: str | None = Field(
        default=None,
        max_length=4096,
        description="CPU busy, percent, per node; default from node-exporter's "
        "node_cpu_seconds_total (idle mode).",
    )
    memory: str | None = Field(
        default=None,
        max_length=4096,
        description="Memory used, percent, per node; default 100 * (1 - "
        "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes).",
    )


HISTORY_LONGER_THAN_STEP = CelRule(
    "!has(self.history) || !has(self.step) || "
    + cel_comparing_durations(
        cel_duration("self.history") + " > " + cel_duration("self.step"),
        "self.history",
        "self.step",
    ),
    "history must be longer than step",
    ".history",
)


class CapacityPlanSpec(ApiModel):
    """Which Nodes to assess, the traffic they carry, their limits, growth scenarios and checks."""

    model_config = ConfigDict(json_schema_extra=validations(HISTORY_LONGER_THAN_STEP))

    prometheus: PrometheusRef | None = None
    nodes: NodesSpec = Field(
        default_factory=NodesSpec, description="The Nodes whose GPUs, CPU and memory are assessed."
    )
    traffic: TrafficSpec = Field(
        description="The traffic that utilisation is fitted against and projected with."
    )
    history: Duration = Field(
        default=timedelta(days=7),
        description="How far back utilisation and traffic are read, a duration such as 36h or "
        "7d; default 7d. Longer than step, and at most 11,000 points (history / step + 1).",
    )
    step: Interval = Field(
        default=timedelta(minutes=5),
        description="Resolution of the history: one sample per step; default 5m, at least 1s.",
    )
    thresholds: CapacityThresholds = Field(
        default_factory=CapacityThresholds,
        description="Utilisation limits in percent, for the fleet average now and as projected: "
        "Insufficient at or above one, NearLimit within 5 points below it.",
    )
    scenarios: Annotated[list[Scenario], unique(lambda s: s.name, "scenario name")] = Field(
        default_factory=list,
        max_length=16,
        description="Traffic growth to project each resource's utilisation to (at most 16).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    anomalies: AnomalySpec = Field(
        default_factory=AnomalySpec, description="Which GPU anomalies are looked for, and how."
    )
    queries: QueryOverrides | None = Field(
        default=None,
        description="Replacements for the default queries; `{{nodes}}` expands to a regex of "
        "the selected Node names. Series need a host label (Hostname, hostname, node, "
        "nodename or instance).",
    )
    interval: Interval = Field(
        default=timedelta(minutes=5), description="How often to evaluate; default 5m, at least 1s."
    )

    @model_validator(mode="after")
    def _history_longer_than_step(self) -> CapacityPlanSpec:
        # The twin of the CEL rule (the CRD defaults both, so it always applies).
        if self.history <= self.step:
            raise HISTORY_LONGER_THAN_STEP.error()
        return self


class CapacityVerdict(StrEnum):
    SUFFICIENT = "Sufficient"
    NEAR_LIMIT = "NearLimit"
    INSUFFICIENT = "Insufficient"
    # No data, or too little history for a projection: never reported as Sufficient.
    UNVERIFIED = "Unverified"


class Assessment(StrEnum):
    WITHIN_CAPACITY = "WithinCapacity"
    NEAR_LIMIT = "NearLimit"
    OVER_CAPACITY = "OverCapacity"
    UNVERIFIED = "Unverified"


RESOURCE = "gpu, gpuMemory, cpu or memory."


class TopItem(ApiModel):
    node: str = Field(description="The node.")
    gpu: str | None = Field(
        default=None, description="The GPU's gpu (or UUID) label; unset for cpu and memory."
    )
    value: float = Field(description="Its utilisation over the last 15 minutes, percent.")


class ResourceUtilization(ApiModel):
    resource: str = Field(description=RESOURCE)
    fleet: float | None = Field(
        default=None, description="Fleet average over the last 15 minutes, percent."
    )
    threshold: float | None = Field(default=None, description="The spec's limit, percent.")
    above_threshold: bool = Field(default=False, description="fleet is at or above threshold.")
    sustained: bool = Field(
        default=False,
        description="The fleet average has stayed above thresholds.sustained.above for "
        "thresholds.sustained.for, up to now.",
    )
    top: list[TopItem] | None = Field(
        default=None, max_length=5, description="The 5 busiest GPUs or nodes."
    )


class Projection(ApiModel):
    scenario: str = Field(description="The scenario's name.")
    growth_percent: float = Field(description="The scenario's traffic growth, percent.")
    resource: str = Field(description=RESOURCE)
    traffic: float | None = Field(
        default=None,
        description="The scenario's traffic: the history's p95 traffic grown by growthPercent.",
    )
    projected: float | None = Field(
        default=None,
        description="Fleet utilisation at that traffic on a Theil-Sen line of utilisation "
        "against traffic, percent.",
    )
    threshold: float | None = Field(default=None, description="The spec's limit, percent.")
    assessment: Assessment = Field(
        description="OverCapacity at or above threshold, NearLimit within 5 points below, "
        "WithinCapacity, or Unverified when the line cannot be trusted: fewer than 12 points "
        "with both traffic and utilisation, traffic that varied under 10 % of its median "
        "(p5 to p95), robust R² under 0.5 while the line moves the projection, or a line "
        "that misses the load measured now."
    )
    recommendation: str | None = Field(default=None, description="What to add, in words.")
    add_nodes: int | None = Field(
        default=None,
        description="Nodes to add (for GPU resources, nodes of the observed GPU count); 0: none.",
    )
    add_gpus: int | None = Field(
        default=None, description="GPUs to add (GPU resources only); 0: none."
    )


class Headroom(ApiModel):
    resource: str = Field(description=RESOURCE)
    traffic: float | None = Field(
        default=None,
        description="Extra traffic above the history's p95 at which the fitted line reaches "
        "the threshold (negative: already past it).",
    )
    percent: float | None = Field(
        default=None, description="traffic in percent of the history's p95 traffic."
    )


class TimeToThreshold(ApiModel):
    resource: str = Field(description=RESOURCE)
    at: datetime | None = Field(
        default=None,
        description="When utilisation, from its current figure and rising at the trend of the "
        "fleet's load, reaches the threshold: now if the current figure is at or above it; "
        "unset when that is further ahead than history is long, or the trend does not rise.",
    )
    message: str | None = Field(default=None, description="The same, in words.")


class Anomaly(ApiModel):
    type: str = Field(
        description="UtilizationSpike, GpuMemoryGrowth, ThermalThrottling, PowerCapping or "
        "XidError."
    )
    node: str | None = Field(default=None, description="The node.")
    gpu: str | None = Field(
        default=None,
        description="The GPU's gpu (or UUID) label; a MIG instance as `0 MIG 1` (the GPU, then "
        "its GPU_I_ID).",
    )
    start: datetime | None = Field(default=None, description="When the episode started.")
    end: datetime | None = Field(default=None, description="Unset while ongoing.")
    severity: str = Field(default="Warning", description="Warning or Critical.")
    value: float | None = Field(
        default=None,
        description="The peak sample (UtilizationSpike), growth in %/h (GpuMemoryGrowth), the "
        "clock-event bits seen (throttling) or the XID code.",
    )
    message: str | None = Field(default=None, description="The anomaly, with its numbers.")


class CapacitySummary(ApiModel):
    """Preformatted headline numbers, for printer columns."""

    gpu: str | None = Field(
        default=None, description="Fleet GPU utilisation over the last 15 minutes, e.g. 64%."
    )
    cpu: str | None = Field(
        default=None, description="Fleet CPU utilisation over the last 15 minutes, e.g. 37%."
    )
    memory: str | None = Field(
        default=None, description="Fleet memory use over the last 15 minutes, e.g. 40%."
    )


class CapacityPlanStatus(ResourceStatus):
    """Utilisation, projections, headroom and anomalies of the fleet; written by the operator."""

    verdict: CapacityVerdict | None = Field(
        default=None,
        description="The worst of utilisation now and every projection: Sufficient, NearLimit, "
        "Insufficient, or Unverified (data missing); never Sufficient by default.",
    )
    summary: CapacitySummary | None = None
    current: list[ResourceUtilization] | None = Field(
        default=None, max_length=8, description="Utilisation now, per resource with data."
    )
    projections: list[Projection] | None = Field(
        default=None, max_length=64, description="Each scenario's projection, per resource."
    )
    headroom: list[Headroom] | None = Field(
        default=None,
        max_length=8,
        description="Per resource whose utilisation grows with traffic: the traffic it has room "
        "for.",
    )
    time_to_threshold: list[TimeToThreshold] | None = Field(
        default=None, max_length=8, description="Per resource: when the trend crosses its limit."
    )
    anomalies: list[Anomaly] | None = Field(
        default=None,
        max_length=20,
        description="The newest 20 anomalies in the history, one entry per episode (entries "
        "of one type and GPU whose spans overlap are one; an XidError is one per code and "
        "start). An episode that has ended stays listed, unchanged, even when a later "
        "evaluation does not find it again, until its start leaves the history, its GPU is no "
        "longer in the data fetched, the spec changes (a new generation), an evaluation judges "
        "nothing (AnomalyDetected Unknown), or newer entries push it past the 20 listed.",
    )
    total_anomalies: int | None = Field(
        default=None,
        description="Every anomaly in the history, listed or not: those found by this "
        "evaluation and the ended ones kept from earlier ones.",
    )
