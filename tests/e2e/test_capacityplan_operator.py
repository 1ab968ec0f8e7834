"""CapacityPlan end to end: Node objects in a real kube-apiserver, history in a real
Prometheus, the operator under KopfRunner.

The history ends a little ahead of now, so the operator's "now" falls inside it. Only
gpu-node-1 and gpu-node-2 carry the GPU label; gpu-node-3's anomaly must not show.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily, generate_file
from tests.e2e.cluster import Cluster, condition, wait_for

pytestmark = pytest.mark.e2e

HOUR = timedelta(hours=1)
GPU_LABEL = "nvidia.com/gpu.present"


@pytest.fixture(scope="module")
def gpu_history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("capacity-live")
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=30)
    scenario = Scenario(
        service="resnet",
        days=1,
        end=end,
        step=timedelta(minutes=1),
        seed=11,
        # The history follows the real calendar (daily and weekly peaks), so the projection
        # depends on when the test runs: at the default 55 % it reached NearLimit's 85 on
        # Wednesday evenings (UTC). 45 % keeps the "plus5" projection near 70 all week.
        gpu_util_at_base=45.0,
        nodes=3,
        gpus_per_node=2,
        cpus_per_node=2,
        host_label="hostname",
        include=frozenset({SeriesFamily.DCGM, SeriesFamily.NODE, SeriesFamily.REQUESTS}),
        injections=(
            Injection(
                InjectionKind.THERMAL_THROTTLING,
                start=10 * HOUR,
                duration=HOUR,
                magnitude=20,
                node="gpu-node-2",
                gpu=1,
            ),
            Injection(
                InjectionKind.XID_ERROR,
                start=15 * HOUR,
                duration=timedelta(minutes=20),
                node="gpu-node-1",
                gpu=0,
                code=79,
            ),
            # On the node the selector leaves out: must not be reported.
            Injection(
                InjectionKind.XID_ERROR,
                start=16 * HOUR,
                duration=timedelta(minutes=20),
                node="gpu-node-3",
                gpu=1,
                code=48,
            ),
        ),
    )
    generate_file(scenario, work / "history.om")
    backfill(work / "history.om", work / "data")
    server = LocalPrometheus(work / "data")
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    yield server.url
    server.stop()


def node(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


@pytest.fixture
def gpu_nodes(cluster: Cluster) -> Iterator[list[str]]:
    names = ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
    for name in names:
        labels = {GPU_LABEL: "true"} if name != "gpu-node-3" else {}
        cluster.kubectl("apply", "-f", "-", input=json.dumps(node(name, labels)))
    yield names
    cluster.kubectl("delete", "node", *names, "--wait=false", check=False)


def verdict_of(cluster: Cluster, namespace: str) -> dict[str, Any]:
    """The status of the CapacityPlan "fleet", once it has a verdict."""
    result: dict[str, Any] = wait_for(
        lambda: (
            (s := cluster.get("cplan", "fleet", namespace).get("status") or {}).get("verdict") and s
        ),
        timeout=60,
        what="a CapacityPlan verdict",
    )
    return result


def capacityplan(namespace: str, url: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prometheus": {"url": url, "timeout": "10s"},
        "nodes": {"selector": {"matchLabels": {GPU_LABEL: "true"}}},
        "traffic": {"query": 'sum(rate(inference_requests_total{service="resnet"}[5m]))'},
        "history": "12h",
        "step": "5m",
        "scenarios": [{"name": "plus5", "growthPercent": 5}],
        "interval": "3s",
    }
    body.update(spec)
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "CapacityPlan",
        "metadata": {"name": "fleet", "namespace": namespace},
        "spec": body,
    }


def test_verdict_conditions_and_one_event_per_anomaly(
    cluster: Cluster,
    namespace: str,
    gpu_nodes: list[str],
    gpu_history: str,
    run_operator: object,
) -> None:
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps(capacityplan(namespace, gpu_history, history="24h"))
    )
    status = verdict_of(cluster, namespace)
    assert status["verdict"] == "Sufficient", status
    assert condition({"status": status}, "Ready")["status"] == "True"  # type: ignore[index]
    sufficient = condition({"status": status}, "CapacitySufficient")
    assert sufficient is not None and sufficient["status"] == "True"
    anomalies = {(a["type"], a["node"], a.get("gpu")) for a in status["anomalies"]}
    assert anomalies == {("ThermalThrottling", "gpu-node-2", "1"), ("XidError", "gpu-node-1", "0")}
    assert {t["node"] for c in status["current"] for t in c["top"]} <= {"gpu-node-1", "gpu-node-2"}
    assert condition({"status": status}, "AnomalyDetected") is not None

    # Several evaluations later (interval 3 s), still one Event per anomaly.
    time.sleep(10)
    events = cluster.events(namespace, "fleet")
    reasons = [e["reason"] for e in events]
    assert reasons.count("XidError") == 1, reasons
    assert reasons.count("ThermalThrottling") == 1, reasons
    xid = next(e for e in events if e["reason"] == "XidError")
    assert xid["type"] == "Warning" and "gpu-node-1 GPU 0" in xid["message"]
    assert "79" in xid["message"]

    table = cluster.kubectl("get", "cplan", "fleet", "-n", namespace).stdout
    assert "Sufficient" in table and "%" in table


def test_growth_beyond_capacity_is_insufficient_with_an_event(
    cluster: Cluster,
    namespace: str,
    gpu_nodes: list[str],
    gpu_history: str,
    run_operator: object,
) -> None:
    body = capacityplan(
        namespace, gpu_history, scenarios=[{"name": "triple", "growthPercent": 200}]
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    status = verdict_of(cluster, namespace)
    assert status["verdict"] == "Insufficient", status
    gpu = next(p for p in status["projections"] if p["resource"] == "gpu")
    assert gpu["assessment"] == "OverCapacity" and gpu["addGpus"] >= 1
    sufficient = condition({"status": status}, "CapacitySufficient")
    assert sufficient is not None and sufficient["status"] == "False"
    wait_for(
        lambda: any(
            e["reason"] == "CapacityInsufficient" for e in cluster.events(namespace, "fleet")
        ),
        timeout=15,
        what="CapacityInsufficient event",
    )


def test_no_matching_nodes_is_unverified(
    cluster: Cluster, namespace: str, gpu_history: str, run_operator: object
) -> None:
    body = capacityplan(
        namespace, gpu_history, nodes={"selector": {"matchLabels": {"pool": "none"}}}
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    status = verdict_of(cluster, namespace)
    assert status["verdict"] == "Unverified"
    ready = condition({"status": status}, "Ready")
    assert ready is not None and ready["status"] == "False" and ready["reason"] == "NoNodes"


def test_a_gpu_node_without_dcgm_data_makes_the_plan_unverified(
    cluster: Cluster,
    namespace: str,
    gpu_nodes: list[str],
    gpu_history: str,
    run_operator: object,
) -> None:
    """A selected Node advertises 8 GPUs (the device plugin's capacity) but the history
    holds no DCGM series for it: its GPUs are missing from every fleet figure."""
    dark = node("gpu-node-9", {GPU_LABEL: "true"})
    cluster.kubectl("apply", "-f", "-", input=json.dumps(dark))
    try:
        cluster.kubectl(
            "patch",
            "node",
            "gpu-node-9",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"capacity": {"nvidia.com/gpu": "8"}}}),
        )
        cluster.kubectl("apply", "-f", "-", input=json.dumps(capacityplan(namespace, gpu_history)))
        status = verdict_of(cluster, namespace)
        assert status["verdict"] == "Unverified", status
        sufficient = condition({"status": status}, "CapacitySufficient")
        assert sufficient is not None and sufficient["reason"] == "DataMissing", sufficient
        assert "gpu-node-9" in sufficient["message"]
    finally:
        cluster.kubectl("delete", "node", "gpu-node-9", "--wait=false", check=False)


def test_perfguard_evaluate_with_nodes_judges_a_silent_node_as_the_operator_does(
    cluster: Cluster,
    namespace: str,
    gpu_nodes: list[str],
    gpu_history: str,
    run_operator: object,
    tmp_path: Path,
) -> None:
    """A selected Node whose exporters send nothing: the operator says Unverified
    (DataMissing), and so must `perfguard evaluate --nodes` naming the same hosts, on the
    same data at the same time. It used to expect only the hosts present in the data and
    exit 0, Sufficient."""
    silent = node("gpu-node-8", {GPU_LABEL: "true"})  # no exporter reports gpu-node-8
    cluster.kubectl("apply", "-f", "-", input=json.dumps(silent))
    try:
        body = capacityplan(namespace, gpu_history)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
        status = verdict_of(cluster, namespace)
    finally:
        cluster.kubectl("delete", "node", "gpu-node-8", "--wait=false", check=False)
    assert status["verdict"] == "Unverified", status
    assert status["reason"] == "DataMissing", status
    assert "gpu-node-8" in status["message"]

    manifest = tmp_path / "fleet.yaml"
    manifest.write_text(yaml.safe_dump(body))
    hosts = "gpu-node-1,gpu-node-2,gpu-node-8"  # what the selector picks
    evaluate = [sys.executable, "-m", "perfguard.cli", "evaluate", "-f", str(manifest)]
    offline = subprocess.run(
        [*evaluate, "--nodes", hosts, "--at", status["lastEvaluationTime"], "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert offline.returncode == 2, offline.stderr  # Unverified
    judged = json.loads(offline.stdout)
    for field in ("verdict", "reason", "message"):
        assert judged[field] == status[field], field
    for type_ in ("Ready", "CapacitySufficient"):
        here, there = condition({"status": judged}, type_), condition({"status": status}, type_)
        assert here is not None and there is not None, type_
        assert [here[k] for k in ("status", "reason", "message")] == [
            there[k] for k in ("status", "reason", "message")
        ], type_
