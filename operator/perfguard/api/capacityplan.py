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
from perfguard.api.quantities import Duration, Interval, cel_duration

# A utilisation limit in percent. 0 is refused: nothing can be brought down to it, so
# every evaluation's recommendation would fail.
Limit = Annotated[float, Field(gt=0, le=100)]


class NodesSpec(ApiModel):
    selector: LabelSelector | None = None


class TrafficSpec(ApiModel):
    query: str = Field(min_length=1, max_length=4096, description="PromQL: requests per second.")


class SustainedSpec(ApiModel):
    above: Limit = 85.0
    for_: Duration = Field(default=timedelta(minutes=15), alias="for")


class CapacityThresholds(ApiModel):
    cpu: Limit = 80.0
    memory: Limit = 85.0
    gpu: Limit = 90.0
    gpu_memory: Limit = 90.0
    sustained: SustainedSpec = Field(default_factory=SustainedSpec)


class Scenario(ApiModel):
    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    growth_percent: float = Field(gt=-100, le=10_000)


class AnomalySpec(ApiModel):
    spike_percent: float = Field(default=20.0, gt=0, le=10_000)
    gpu_memory_growth_percent_per_hour: float = Field(default=5.0, gt=0, le=100)
    throttling: bool = True
    xid_errors: bool = True


class QueryOverrides(ApiModel):
    """Replace a default query; `{{nodes}}` expands to the selected hosts' regex."""

    gpu_util: str | None = Field(default=None, max_length=4096)
    gpu_memory_used: str | None = Field(default=None, max_length=4096)
    gpu_memory_free: str | None = Field(default=None, max_length=4096)
    gpu_temp: str | None = Field(default=None, max_length=4096)
    gpu_power: str | None = Field(default=None, max_length=4096)
    xid_errors: str | None = Field(default=None, max_length=4096)
    clock_events: str | None = Field(default=None, max_length=4096)
    cpu: str | None = Field(default=None, max_length=4096)
    memory: str | None = Field(default=None, max_length=4096)


HISTORY_LONGER_THAN_STEP = CelRule(
    "!has(self.history) || !has(self.step) || "
    + cel_duration("self.history")
    + " > "
    + cel_duration("self.step"),
    "history must be longer than step",
    ".history",
)


class CapacityPlanSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra=validations(HISTORY_LONGER_THAN_STEP))

    prometheus: PrometheusRef | None = None
    nodes: NodesSpec = Field(default_factory=NodesSpec)
    traffic: TrafficSpec
    history: Duration = Field(default=timedelta(days=7))
    step: Interval = Field(default=timedelta(minutes=5))
    thresholds: CapacityThresholds = Field(default_factory=CapacityThresholds)
    scenarios: Annotated[list[Scenario], unique(lambda s: s.name, "scenario name")] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    anomalies: AnomalySpec = Field(default_factory=AnomalySpec)
    queries: QueryOverrides | None = None
    interval: Interval = Field(default=timedelta(minutes=5))

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


class TopItem(ApiModel):
    node: str
    gpu: str | None = None
    value: float


class ResourceUtilization(ApiModel):
    resource: str
    fleet: float | None = None
    threshold: float | None = None
    above_threshold: bool = False
    sustained: bool = False
    top: list[TopItem] | None = Field(default=None, max_length=5)


class Projection(ApiModel):
    scenario: str
    growth_percent: float
    resource: str
    traffic: float | None = None
    projected: float | None = None
    threshold: float | None = None
    assessment: Assessment
    recommendation: str | None = None
    add_nodes: int | None = None
    add_gpus: int | None = None


class Headroom(ApiModel):
    resource: str
    traffic: float | None = Field(default=None, description="Extra req/s before the threshold.")
    percent: float | None = None


class TimeToThreshold(ApiModel):
    resource: str
    at: datetime | None = None
    message: str | None = None


class Anomaly(ApiModel):
    type: str
    node: str | None = None
    gpu: str | None = None
    start: datetime | None = None
    end: datetime | None = Field(default=None, description="Unset while ongoing.")
    severity: str = "Warning"
    value: float | None = None
    message: str | None = None


class CapacitySummary(ApiModel):
    """Preformatted headline numbers, for printer columns."""

    gpu: str | None = None
    cpu: str | None = None
    memory: str | None = None


class CapacityPlanStatus(ResourceStatus):
    verdict: CapacityVerdict | None = None
    summary: CapacitySummary | None = None
    current: list[ResourceUtilization] | None = Field(default=None, max_length=8)
    projections: list[Projection] | None = Field(default=None, max_length=64)
    headroom: list[Headroom] | None = Field(default=None, max_length=8)
    time_to_threshold: list[TimeToThreshold] | None = Field(default=None, max_length=8)
    anomalies: list[Anomaly] | None = Field(default=None, max_length=20)
    total_anomalies: int | None = None
