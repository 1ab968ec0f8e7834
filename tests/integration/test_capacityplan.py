"""CapacityPlan against a real Prometheus holding generated DCGM and node-exporter history.

The module's own history uses the newer exporter's `hostname` label and holds every
anomaly kind on gpu-node-1/2; gpu-node-3 stays clean. The session fixture's history
(older `Hostname` label) covers the other label variant.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.engine.capacityplan import evaluate
from perfguard.outcome import Outcome
from perfguard.sources.prometheus import PrometheusClient
from perfguard.synthetic import (
    Expected,
    Injection,
    InjectionKind,
    Scenario,
    SeriesFamily,
)
from tests.integration.conftest import THERMAL, XID, BackfilledPrometheus, prometheus_with

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
STEP = timedelta(minutes=5)

SPIKE = Injection(
    InjectionKind.UTIL_SPIKE,
    start=2 * DAY + 3 * HOUR,
    duration=40 * MINUTE,
    magnitude=35,
    node="gpu-node-1",
    gpu=2,
)
POWER = Injection(
    InjectionKind.POWER_CAPPING,
    start=DAY + 5 * HOUR,
    duration=HOUR,
    magnitude=150,
    node="gpu-node-2",
    gpu=0,
)
HOT = Injection(
    InjectionKind.THERMAL_THROTTLING,
    start=2 * DAY + 10 * HOUR,
    duration=90 * MINUTE,
    magnitude=25,
    node="gpu-node-2",
    gpu=3,
)
ECC = Injection(
    InjectionKind.XID_ERROR,
    start=DAY + 20 * HOUR,
    duration=20 * MINUTE,
    node="gpu-node-1",
    gpu=1,
    code=48,
)
LEAK = Injection(
    InjectionKind.GPU_MEMORY_GROWTH,
    start=2 * DAY + 18 * HOUR,
    magnitude=8,
    node="gpu-node-1",
    gpu=0,
)


def fleet_scenario(**overrides: Any) -> Scenario:
    """A 3-day history of 3 nodes × 4 GPUs; its GPU load is such that +20 % traffic at peak
    projects to within 5 points of the 90 % threshold and +5 % stays well below."""
    body: dict[str, Any] = {
        "service": "resnet",
        "days": 3,
        "end": END,
        "step": MINUTE,
        "seed": 3,
        "nodes": 3,
        "gpus_per_node": 4,
        "cpus_per_node": 4,
        "host_label": "hostname",
        "gpu_util_at_base": 53.0,
        "include": frozenset({SeriesFamily.DCGM, SeriesFamily.NODE, SeriesFamily.REQUESTS}),
        "injections": (SPIKE, POWER, HOT, ECC, LEAK),
    }
    body.update(overrides)
    return Scenario(**body)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus_with(
        tmp_path_factory.mktemp("capacity"), {"history": fleet_scenario()}
    ) as server:
        yield server.url


def plan(**spec: Any) -> CapacityPlanSpec:
    body: dict[str, Any] = {
        "traffic": {"query": 'sum(rate(inference_requests_total{service="resnet"}[5m]))'},
        "history": "3d",
        "step": "5m",
        "scenarios": [
            {"name": "plus5", "growthPercent": 5},
            {"name": "plus20", "growthPercent": 20},
        ],
    }
    body.update(spec)
    return CapacityPlanSpec.model_validate(body)


def run(
    url: str,
    spec: CapacityPlanSpec,
    hosts: list[str] | None,
    at: datetime = END,
    previous: dict[str, Any] | None = None,
) -> Outcome:
    async def go() -> Outcome:
        async with PrometheusClient(url) as client:
            return await evaluate(spec, hosts, previous or {}, at, client)

    return asyncio.run(go())


def starts(outcome: Outcome) -> dict[tuple[str, str, str], datetime]:
    return {
        (a["type"], a["node"], a.get("gpu", "")): datetime.fromisoformat(
            a["start"].replace("Z", "+00:00")
        )
        for a in outcome.fields["anomalies"]
    }


def injected_at(scenario: Scenario, injection: Injection) -> datetime:
    return scenario.start + injection.start


@pytest.mark.parametrize(
    ("kind", "injection"),
    [
        ("UtilizationSpike", SPIKE),
        ("PowerCapping", POWER),
        ("ThermalThrottling", HOT),
        ("XidError", ECC),
    ],
)
def test_each_anomaly_is_found_on_its_gpu_at_its_time(
    fleet: str, kind: str, injection: Injection
) -> None:
    outcome = run(fleet, plan(), None)
    found = starts(outcome)
    key = (kind, str(injection.node), str(injection.gpu))
    assert key in found, sorted(found)
    assert abs(found[key] - injected_at(fleet_scenario(), injection)) <= STEP
    assert sum(1 for k in found if k[0] == kind) == 1, "found on another GPU too"


def test_gpu_memory_growth_is_found_with_its_onset(fleet: str) -> None:
    outcome = run(fleet, plan(), None)
    found = starts(outcome)
    key = ("GpuMemoryGrowth", "gpu-node-1", "0")
    assert key in found, sorted(found)
    # The onset is estimated from the run that gave the leak away (see
    # capacity_anomalies.detect_memory_growth). On this history it lands within a step;
    # across 32 seeds it was within -2..+3 steps (22 of 32 within one), see
    # docs/capacityplan.md: the first steps of a leak hide in the noise.
    assert abs(found[key] - injected_at(fleet_scenario(), LEAK)) <= STEP
    growth = next(a for a in outcome.fields["anomalies"] if a["type"] == "GpuMemoryGrowth")
    assert "end" not in growth, "the leak is ongoing"
    assert growth["value"] > 5


def test_xid_reports_code_and_critical_severity(fleet: str) -> None:
    outcome = run(fleet, plan(), None)
    xid = next(a for a in outcome.fields["anomalies"] if a["type"] == "XidError")
    assert xid["value"] == 48 and xid["severity"] == "Critical"
    assert "Double-bit ECC" in xid["message"]


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_throttling_says_how_hot_and_how_much_power(fleet: str) -> None:
    """The episode's peak temperature / power draw, read for that GPU and time only, is the
    generator's own peak over the episode's samples."""
    outcome = run(fleet, plan(), None)
    found = {(a["type"], a["node"], a.get("gpu")): a for a in outcome.fields["anomalies"]}
    truth = Expected(fleet_scenario())
    hot = found[("ThermalThrottling", str(HOT.node), str(HOT.gpu))]
    start, end = _at(hot["start"]), _at(hot["end"])
    samples = [start + k * STEP for k in range(int((end - start) / STEP) + 1)]
    peak = max(truth.gpu_temperature_c(str(HOT.node), int(HOT.gpu or 0), t) for t in samples)
    before = truth.gpu_temperature_c(str(HOT.node), int(HOT.gpu or 0), start - HOUR)
    assert peak >= before + 15, "the injection heats the GPU by 25 °C"
    assert hot["message"].endswith(f"; temperature up to {peak:.0f} °C"), hot["message"]
    capped = found[("PowerCapping", str(POWER.node), str(POWER.gpu))]
    # Capped at POWER.magnitude (150 W): the draw sits at the cap while the bit is set.
    assert capped["message"].endswith("; power draw up to 150 W"), capped["message"]
    xid = found[("XidError", str(ECC.node), str(ECC.gpu))]
    assert " up to " not in xid["message"], "readings belong to throttling only"


def test_an_unreadable_reading_is_said_and_changes_nothing_else(fleet: str) -> None:
    normal = run(fleet, plan(), None)
    broken = run(fleet, plan(queries={"gpuTemp": "sum(("}), None)
    hot = next(a for a in broken.fields["anomalies"] if a["type"] == "ThermalThrottling")
    assert hot["message"].endswith("; temperature not read (InvalidQuery)"), hot["message"]
    assert broken.verdict == normal.verdict
    assert [
        (a["type"], a["node"], a.get("gpu"), a["start"]) for a in broken.fields["anomalies"]
    ] == [(a["type"], a["node"], a.get("gpu"), a["start"]) for a in normal.fields["anomalies"]]


def test_events_once_per_anomaly_not_per_evaluation(fleet: str) -> None:
    first = run(fleet, plan(), None)
    reasons = sorted(e.reason for e in first.events)
    assert reasons.count("XidError") == 1 and reasons.count("ThermalThrottling") == 1
    previous = {**first.fields, "conditions": []}
    later = run(fleet, plan(), None, at=END, previous=previous)
    anomaly_events = [e for e in later.events if e.reason in {"XidError", "ThermalThrottling"}]
    assert anomaly_events == []


def test_clean_node_has_no_anomaly(fleet: str) -> None:
    outcome = run(fleet, plan(), ["gpu-node-3"])
    assert outcome.fields["anomalies"] == [] and outcome.fields["totalAnomalies"] == 0
    conditions = {c.type: c for c in outcome.conditions}
    assert conditions["AnomalyDetected"].status.value == "False"


def test_growth_scenarios_within_and_near_the_limit(fleet: str) -> None:
    outcome = run(fleet, plan(), ["gpu-node-3"])
    gpu = {p["scenario"]: p for p in outcome.fields["projections"] if p["resource"] == "gpu"}
    assert gpu["plus5"]["assessment"] == "WithinCapacity", gpu
    assert gpu["plus20"]["assessment"] == "NearLimit", gpu
    assert 85 <= gpu["plus20"]["projected"] < 90
    assert outcome.verdict == "NearLimit"
    assert outcome.fields["reason"] == "ProjectedNearLimit"
    assert [e.reason for e in outcome.events] == ["CapacityNearLimit"]
    # The projection follows the generator's truth: utilisation is linear in traffic.
    headroom = {h["resource"]: h for h in outcome.fields["headroom"]}
    assert 0 < headroom["gpu"]["percent"] < 30


def test_insufficient_capacity_recommends_gpus(fleet: str) -> None:
    spec = plan(scenarios=[{"name": "double", "growthPercent": 100}])
    outcome = run(fleet, spec, ["gpu-node-3"])
    gpu = next(p for p in outcome.fields["projections"] if p["resource"] == "gpu")
    assert gpu["assessment"] == "OverCapacity"
    # The projection is the generator's own line at the projected traffic: each GPU carries
    # its idle level plus util_per_rps x its share (1/12) of the requests.
    truth = Expected(fleet_scenario())
    t0 = END - DAY
    share = truth.gpu_util_per_rps / 12
    idle = sum(truth.gpu_util("gpu-node-3", g, t0) for g in range(4)) / 4 - share * (
        truth.request_rate(None, t0)
    )
    assert gpu["projected"] == pytest.approx(idle + share * gpu["traffic"], abs=2.0), (
        idle,
        share,
        gpu,
    )
    # Fleet utilisation U over 4 GPUs needs ceil(U * 4 / 90) GPUs in all.
    import math

    needed = math.ceil(gpu["projected"] * 4 / 90) - 4
    assert gpu["addGpus"] == needed and needed >= 1
    assert gpu["addNodes"] == math.ceil(needed / 4)
    assert outcome.verdict == "Insufficient"


def test_too_little_history_is_unverified_never_fine(fleet: str) -> None:
    spec = plan(history="30m", step="5m")
    outcome = run(fleet, spec, ["gpu-node-3"])
    assert {p["assessment"] for p in outcome.fields["projections"]} == {"Unverified"}
    assert outcome.verdict == "Unverified"
    conditions = {c.type: c for c in outcome.conditions}
    assert conditions["CapacitySufficient"].status.value == "Unknown"


def test_no_data_for_the_selected_nodes_is_unverified(fleet: str) -> None:
    outcome = run(fleet, plan(), ["some-other-node"])
    assert outcome.verdict == "Unverified"
    assert outcome.fields["reason"] == "NoData"


def test_unreachable_prometheus_is_unverified() -> None:
    outcome = run("http://127.0.0.1:9", plan(), None)
    assert outcome.verdict == "Unverified"
    ready = next(c for c in outcome.conditions if c.type == "Ready")
    assert ready.status.value == "False" and ready.reason == "PrometheusUnreachable"


def test_query_overrides_replace_defaults(fleet: str) -> None:
    # Halve what the GPU query reports: the fleet figure must follow.
    override = '0.5 * DCGM_FI_DEV_GPU_UTIL{hostname=~"{{nodes}}"}'
    normal = run(fleet, plan(), ["gpu-node-3"])
    halved = run(fleet, plan(queries={"gpuUtil": override}), ["gpu-node-3"])
    fleet_of = lambda o: next(c["fleet"] for c in o.fields["current"] if c["resource"] == "gpu")  # noqa: E731
    assert halved.fields["current"] and abs(fleet_of(halved) - fleet_of(normal) / 2) < 0.2


def test_older_hostname_label_works(backfilled_prometheus: BackfilledPrometheus) -> None:
    scenario = backfilled_prometheus.scenario
    assert scenario.host_label == "Hostname"
    spec = plan(history="7d", step="10m")
    outcome = run(backfilled_prometheus.url, spec, list(scenario.node_names), at=scenario.end)
    found = starts(outcome)
    for kind, injection in (("ThermalThrottling", THERMAL), ("XidError", XID)):
        key = (kind, str(injection.node), str(injection.gpu))
        assert key in found, sorted(found)
        assert abs(found[key] - (scenario.start + injection.start)) <= timedelta(minutes=10)
    # The fleet figure is the exported utilisation of every GPU over the last 15 minutes.
    expected = backfilled_prometheus.expected
    last = datetime.fromtimestamp(scenario.end.timestamp() // 600 * 600, UTC)  # on the grid
    samples = [
        expected.gpu_util(node, gpu, last - timedelta(minutes=m), noise=True)
        for node in scenario.node_names
        for gpu in range(scenario.gpus_per_node)
        for m in (0, 10)
    ]
    gpu = next(c for c in outcome.fields["current"] if c["resource"] == "gpu")
    assert abs(gpu["fleet"] - sum(samples) / len(samples)) < 1.0, gpu


def test_perfguard_evaluate_works_offline(fleet: str, tmp_path: Path) -> None:
    manifest = tmp_path / "plan.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "perfguard.dev/v1alpha1",
                "kind": "CapacityPlan",
                "metadata": {"name": "gpu-fleet", "namespace": "ml-prod"},
                "spec": plan().model_dump(mode="json", by_alias=True, exclude_none=True),
            }
        )
    )
    command = [sys.executable, "-m", "perfguard.cli", "evaluate", "-f", str(manifest)]
    at = ["--prometheus", fleet, "--at", END.isoformat(), "--nodes", "gpu-node-3"]
    result = subprocess.run([*command, *at], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr  # NearLimit
    assert "CapacityPlan ml-prod/gpu-fleet: NearLimit" in result.stdout
    assert "plus20" in result.stdout and "NearLimit" in result.stdout
    as_json = subprocess.run(
        [*command, *at, "-o", "json"], capture_output=True, text=True, timeout=120
    )
    status = json.loads(as_json.stdout)
    assert status["verdict"] == "NearLimit"
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "CapacitySufficient",
        "AnomalyDetected",
    }
    unreachable = subprocess.run(
        [*command, "--prometheus", "http://127.0.0.1:9", "--at", END.isoformat()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unreachable.returncode == 4, unreachable.stderr
