"""The three custom resources: names, models and printer columns in one table."""

from __future__ import annotations

from dataclasses import dataclass, field

from perfguard import GROUP, VERSION
from perfguard.api.base import ApiModel
from perfguard.api.capacityplan import CapacityPlanSpec, CapacityPlanStatus
from perfguard.api.envparity import EnvParitySpec, EnvParityStatus
from perfguard.api.perfbaseline import PerfBaselineSpec, PerfBaselineStatus

CATEGORY = "perfguard"


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0


def _ready_columns() -> list[PrinterColumn]:
    return [
        PrinterColumn(
            "Ready",
            '.status.conditions[?(@.type=="Ready")].status',
            priority=1,
            description="Whether the resource is being evaluated successfully.",
        ),
        PrinterColumn(
            "Reason",
            '.status.conditions[?(@.type=="Ready")].reason',
            priority=1,
            description="Why Ready has its status.",
        ),
    ]


AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class Resource:
    kind: str
    plural: str
    short_name: str
    spec: type[ApiModel]
    status: type[ApiModel]
    description: str
    columns: list[PrinterColumn] = field(default_factory=list)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{VERSION}"


PERF_BASELINE = Resource(
    kind="PerfBaseline",
    plural="perfbaselines",
    short_name="pb",
    spec=PerfBaselineSpec,
    status=PerfBaselineStatus,
    description="A workload's rolling performance baseline; judges a canary against it and "
    "blocks promotion when it regresses.",
    columns=[
        PrinterColumn("Verdict", ".status.verdict", description="Pass, Fail or Inconclusive."),
        PrinterColumn("Candidate", ".status.candidate.identity", description="Judged candidate."),
        PrinterColumn("P95", ".status.summary.p95", description="Candidate p95 latency."),
        PrinterColumn("ΔP95", ".status.summary.deltaP95", description="p95 change vs baseline."),
        *_ready_columns(),
        AGE,
    ],
)

ENV_PARITY = Resource(
    kind="EnvParity",
    plural="envparities",
    short_name="envp",
    spec=EnvParitySpec,
    status=EnvParityStatus,
    description="Compares image digests, configuration and model/dataset versions across "
    "namespaces and reports drift.",
    columns=[
        PrinterColumn("Verdict", ".status.verdict", description="InSync, Drifted or Unverified."),
        PrinterColumn("Drift", ".status.driftPercent", "number", "Differing items, percent."),
        PrinterColumn("Differences", ".status.totalDifferences", "integer", "Differences."),
        *_ready_columns(),
        AGE,
    ],
)

CAPACITY_PLAN = Resource(
    kind="CapacityPlan",
    plural="capacityplans",
    short_name="cplan",
    spec=CapacityPlanSpec,
    status=CapacityPlanStatus,
    description="GPU-aware utilisation, growth projections, scaling recommendations and "
    "hardware anomalies for a fleet of nodes.",
    columns=[
        PrinterColumn(
            "Verdict", ".status.verdict", description="Sufficient, NearLimit or Insufficient."
        ),
        PrinterColumn("GPU", ".status.summary.gpu", description="Fleet GPU utilisation."),
        PrinterColumn("CPU", ".status.summary.cpu", description="Fleet CPU utilisation."),
        PrinterColumn("Memory", ".status.summary.memory", description="Fleet memory use."),
        PrinterColumn("Anomalies", ".status.totalAnomalies", "integer", "Anomalies found."),
        *_ready_columns(),
        AGE,
    ],
)

RESOURCES: tuple[Resource, ...] = (PERF_BASELINE, ENV_PARITY, CAPACITY_PLAN)
BY_KIND = {r.kind: r for r in RESOURCES}
