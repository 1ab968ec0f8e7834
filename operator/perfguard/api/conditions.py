"""The standard condition type shared by every perfguard resource (API conventions)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import Field

from perfguard.api.base import ApiModel

# The longest condition message the CRDs accept (the API conventions' metav1.Condition).
MAX_MESSAGE: Final = 32768


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """One observation of the resource's state, keyed by `type`."""

    type: str = Field(description="CamelCase type of the condition, e.g. Ready.", max_length=316)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        description="One CamelCase word saying why the condition has its status.",
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
    )
    message: str = Field(default="", description="Human-readable details.", max_length=MAX_MESSAGE)
    last_transition_time: datetime = Field(
        description="When status last changed (not when the condition was last written)."
    )
    observed_generation: int = Field(
        default=0, ge=0, description="The .metadata.generation this condition was computed for."
    )


class ResourceStatus(ApiModel):
    """What every perfguard status holds besides its findings."""

    reason: str | None = Field(default=None, description="Why the verdict is what it is.")
    message: str | None = Field(default=None, description="The verdict, for humans.")
    last_evaluation_time: datetime | None = Field(
        default=None,
        description="When the evaluation behind the numbers shown ran; status is rewritten on "
        "news, and otherwise every statusRefresh (default 5m).",
    )
    conditions: list[Condition] | None = Field(
        default=None,
        max_length=16,
        description="Ready, plus BaselineEstablished and Regressed (PerfBaseline), InSync "
        "(EnvParity) or CapacitySufficient and AnomalyDetected (CapacityPlan).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status was written for."
    )
