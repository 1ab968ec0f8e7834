"""EnvParity: do staging and production run the same bits?"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from perfguard.api.base import ApiModel, LabelSelector
from perfguard.api.cel import CelRule, unique, validations
from perfguard.api.conditions import ResourceStatus
from perfguard.api.quantities import Interval

NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE)]


class NamespaceRef(ApiModel):
    namespace: Namespace


class WorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    ROLLOUT = "Rollout"


class WorkloadsSpec(ApiModel):
    kinds: Annotated[list[WorkloadKind], unique(str, "kind")] = Field(
        default_factory=lambda: [
            WorkloadKind.DEPLOYMENT,
            WorkloadKind.STATEFUL_SET,
            WorkloadKind.DAEMON_SET,
        ],
        min_length=1,
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    selector: LabelSelector | None = None
    match_by: str = Field(
        default="name",
        max_length=317,
        description="`name`, or a label key whose value pairs workloads across namespaces.",
    )


class CompareSpec(ApiModel):
    images: bool = True
    config: bool = True
    env: bool = True
    annotations: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=32,
        description="Annotation (or label) keys compared, e.g. model and dataset versions.",
    )


class IgnoreSpec(ApiModel):
    env: list[Annotated[str, Field(max_length=256)]] = Field(default_factory=list, max_length=256)
    containers: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=list, max_length=64
    )


TARGETS_OR_SELECTOR = CelRule(
    "has(self.targets) != has(self.namespaceSelector)",
    "give exactly one of targets and namespaceSelector",
    ".targets",
)
# `self` read inside a comprehension defeats the cost estimator; membership in a mapped
# list is the same check, cheaply bounded.
TARGET_IS_NOT_REFERENCE = CelRule(
    "!has(self.targets) || !(self.reference.namespace in self.targets.map(t, t.namespace))",
    "a target namespace must differ from the reference namespace",
    ".targets",
)


class EnvParitySpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(TARGETS_OR_SELECTOR, TARGET_IS_NOT_REFERENCE)
    )

    reference: NamespaceRef
    targets: (
        Annotated[list[NamespaceRef], unique(lambda t: t.namespace, "target namespace")] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=64,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["namespace"],
        },
    )
    namespace_selector: LabelSelector | None = None
    workloads: WorkloadsSpec = Field(default_factory=WorkloadsSpec)
    compare: CompareSpec = Field(default_factory=CompareSpec)
    ignore: IgnoreSpec = Field(default_factory=IgnoreSpec)
    max_drift_percent: float = Field(default=0.0, ge=0, le=100)
    interval: Interval = Field(default=timedelta(minutes=5))

    @model_validator(mode="after")
    def _targets(self) -> EnvParitySpec:
        # The twins of the CEL rules above.
        if (self.targets is None) == (self.namespace_selector is None):
            raise TARGETS_OR_SELECTOR.error()
        if self.targets and self.reference.namespace in {t.namespace for t in self.targets}:
            raise TARGET_IS_NOT_REFERENCE.error()
        return self


class ParityVerdict(StrEnum):
    IN_SYNC = "InSync"
    DRIFTED = "Drifted"
    UNVERIFIED = "Unverified"


class Fingerprint(ApiModel):
    namespace: str
    fingerprint: str
    items: int = 0


class Difference(ApiModel):
    namespace: str = Field(description="The target namespace.")
    workload: str
    kind: str | None = None
    container: str | None = None
    field: str = Field(
        description="image, env/NAME, configmap/NAME, secret/NAME, annotation/KEY, workload …"
    )
    reference: str | None = Field(default=None, description="Reference value (hash for config).")
    target: str | None = Field(default=None, description="Target value (hash for config).")
    note: str | None = Field(default=None, description="e.g. mid-rollout: 2 digests running")


class EnvParityStatus(ResourceStatus):
    verdict: ParityVerdict | None = None
    drift_percent: float | None = None
    compared: int | None = None
    differing: int | None = None
    unverified: int | None = None
    fingerprints: list[Fingerprint] | None = Field(default=None, max_length=65)
    differences: list[Difference] | None = Field(default=None, max_length=50)
    total_differences: int | None = None
