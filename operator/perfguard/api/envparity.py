"""EnvParity: do staging and production run the same bits?"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, model_validator

from perfguard.api.base import ApiModel, LabelSelector
from perfguard.api.cel import CelRule, unique, validations
from perfguard.api.conditions import ResourceStatus
from perfguard.api.quantities import Interval

NAMESPACE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# Status lists' bounds (the CRD's maxItems): the engine cuts each list to its bound, as the
# API server refuses the whole status patch when one list is longer.
MAX_FINGERPRINTS: Final = 65  # the reference and 64 targets, as many as `targets` takes
MAX_DIFFERENCES: Final = 50
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE)]


class NamespaceRef(ApiModel):
    namespace: Namespace = Field(description="The namespace's name.")


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
        description="Workload kinds compared: Deployment, StatefulSet, DaemonSet, Rollout "
        "(Argo; none without its CRD). Default Deployment, StatefulSet and DaemonSet.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    selector: LabelSelector | None = Field(
        default=None,
        description="Selects the workloads by their own labels, in every compared namespace; "
        "unset or empty: every workload of those kinds.",
    )
    match_by: str = Field(
        default="name",
        max_length=317,
        description="How workloads pair across namespaces: `name` (default) pairs them by kind "
        "and name; a label key pairs them by kind and that label's value, and workloads "
        "without the label are not compared.",
    )


class CompareSpec(ApiModel):
    images: bool = Field(
        default=True,
        description="Compare each container's image by digest (running pods' imageID, else a "
        "digest pinned in the image reference); without one it is unverified. Default true.",
    )
    config: bool = Field(
        default=True,
        description="Compare the content of referenced ConfigMaps and Secrets by keyed hash; "
        "Secrets only when the operator has PERFGUARD_COMPARE_SECRETS=true. Default true.",
    )
    env: bool = Field(
        default=True,
        description="Compare containers' environment variables: the literal value, or what "
        "a valueFrom references; each envFrom source with its prefix and optional; and the "
        "order of envFrom sources known to give a name in common. Default true.",
    )
    annotations: list[Annotated[str, Field(max_length=317)]] = Field(
        default_factory=list,
        max_length=32,
        description="Annotation keys compared, e.g. model and dataset versions: the workload's "
        "annotation, else its label, else the pod template's annotation or label.",
    )


class IgnoreSpec(ApiModel):
    env: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list,
        max_length=256,
        description="Environment variables not compared: names or shell-style patterns (POD_*).",
    )
    containers: list[Annotated[str, Field(max_length=63)]] = Field(
        default_factory=list,
        max_length=64,
        description="Containers whose image and environment are not compared: names or "
        "shell-style patterns.",
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
    """Which namespaces to compare, which workloads in them, and what about those workloads."""

    model_config = ConfigDict(
        json_schema_extra=validations(TARGETS_OR_SELECTOR, TARGET_IS_NOT_REFERENCE)
    )

    reference: NamespaceRef = Field(
        description="The namespace the targets are compared with, e.g. staging."
    )
    targets: (
        Annotated[list[NamespaceRef], unique(lambda t: t.namespace, "target namespace")] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Namespaces compared with the reference (1 to 64, not the reference "
        "itself). Give exactly one of targets and namespaceSelector.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["namespace"],
        },
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Selects the target namespaces by label: every match the operator serves, "
        "except the reference (an empty selector matches all). Give exactly one of targets "
        "and namespaceSelector.",
    )
    workloads: WorkloadsSpec = Field(
        default_factory=WorkloadsSpec,
        description="Which workloads are compared, and how they pair across namespaces.",
    )
    compare: CompareSpec = Field(
        default_factory=CompareSpec, description="What is compared in each pair of workloads."
    )
    ignore: IgnoreSpec = Field(
        default_factory=IgnoreSpec, description="What is left out of the comparison."
    )
    max_drift_percent: float = Field(
        default=0.0,
        ge=0,
        le=100,
        description="Drifted when more than this percent of the compared items differ (over "
        "every target); default 0, any difference.",
    )
    interval: Interval = Field(
        default=timedelta(minutes=5),
        description="How often to compare; default 5m, at least 1s. A change to a workload or "
        "ConfigMap in a compared namespace the operator watches also triggers a comparison.",
    )

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
    namespace: str = Field(description="The namespace.")
    fingerprint: str = Field(
        description="sha256: and 16 hex digits of a hash over its sorted items; equal "
        "environments have equal fingerprints."
    )
    items: int = Field(default=0, description="Items in the namespace, unresolved ones included.")


class Difference(ApiModel):
    namespace: str = Field(description="The target namespace.")
    workload: str = Field(description="The workload's name (in the target, else the reference).")
    kind: str | None = Field(default=None, description="The workload's kind.")
    container: str | None = Field(default=None, description="The container, for image and env.")
    field: str = Field(
        description="image, env/NAME, envFrom/SOURCE, envFrom/order, configmap/NAME, "
        "secret/NAME, annotation/KEY, workload …"
    )
    reference: str | None = Field(default=None, description="Reference value (hash for config).")
    target: str | None = Field(default=None, description="Target value (hash for config).")
    note: str | None = Field(default=None, description="e.g. mid-rollout: 2 digests running")


class EnvParityStatus(ResourceStatus):
    """The comparison's verdict, counts and first differences; written by the operator."""

    verdict: ParityVerdict | None = Field(
        default=None,
        description="Drifted (driftPercent above maxDriftPercent), else Unverified (something "
        "unresolved or unreadable, or nothing compared), else InSync.",
    )
    drift_percent: float | None = Field(
        default=None, description="Differing items / compared items x 100, over every target."
    )
    compared: int | None = Field(default=None, description="Items compared, over every target.")
    differing: int | None = Field(default=None, description="Compared items that differ.")
    unverified: int | None = Field(
        default=None,
        description="Items unresolved on either side (e.g. an image without a digest), so not "
        "compared.",
    )
    fingerprints: list[Fingerprint] | None = Field(
        default=None,
        max_length=MAX_FINGERPRINTS,
        description="One per namespace, the reference first, then the targets in order (a "
        f"namespaceSelector's by name); at most {MAX_FINGERPRINTS}, see omittedFingerprints.",
    )
    omitted_fingerprints: int | None = Field(
        default=None,
        description=f"Targets compared but not in fingerprints (past the first "
        f"{MAX_FINGERPRINTS - 1}); unset when none.",
    )
    differences: list[Difference] | None = Field(
        default=None,
        max_length=MAX_DIFFERENCES,
        description=f"The first {MAX_DIFFERENCES} differences: workloads, then images, config, "
        "env, envFrom and annotations.",
    )
    total_differences: int | None = Field(
        default=None, description="Every difference found, listed or not."
    )
