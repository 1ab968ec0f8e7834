"""The operator under KopfRunner against a real API server sets conditions on every kind."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster, condition, wait_for
from tests.spec_cases import sample

pytestmark = pytest.mark.e2e

KINDS = {
    "perfbaseline": ("pb", "resnet", ("Regressed",)),
    "envparity": ("envp", "inference", ("InSync",)),
    "capacityplan": ("cplan", "gpu-fleet", ("CapacitySufficient", "AnomalyDetected")),
}


def _ready(cluster: Cluster, kind: str, name: str, namespace: str, generation: int) -> Any:
    """The object once `generation` was evaluated (Ready=Unknown, Pending, comes first)."""
    obj = cluster.get(kind, name, namespace)
    ready = condition(obj, "Ready")
    evaluated = (obj.get("status") or {}).get("observedGeneration") == generation
    if evaluated and ready and ready.get("observedGeneration") == generation:
        return obj
    return None


def test_operator_sets_ready_and_observed_generation(
    cluster: Cluster, namespace: str, run_operator: object, operator_env: dict[str, str]
) -> None:
    for name in KINDS:
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(sample(name, namespace)))

    for short, obj_name, kind_conditions in KINDS.values():
        obj = wait_for(
            lambda s=short, n=obj_name: _ready(cluster, s, n, namespace, 1),
            timeout=30,
            what=f"{short}/{obj_name} Ready",
        )
        status = obj["status"]
        assert status["observedGeneration"] == 1
        ready = condition(obj, "Ready")
        assert ready is not None
        assert ready["lastTransitionTime"]
        if short == "pb":
            # The sample names prometheus.monitoring:9090, which does not resolve here:
            # evaluated, and honestly not Ready, with an Inconclusive verdict.
            assert ready["status"] == "False"
            assert ready["reason"] == "PrometheusUnreachable"
            assert status["verdict"] == "Inconclusive"
            regressed = condition(obj, "Regressed")
            assert regressed is not None and regressed["status"] == "Unknown"
            continue
        # The samples name namespaces, Nodes and a Prometheus that do not exist here: the
        # operator says so (Ready False with the cause) and never reports a good verdict.
        assert ready["status"] == "False", ready
        assert status["verdict"] == "Unverified"
        if short == "envp":
            assert ready["reason"] == "NamespaceNotFound"
        else:
            assert ready["reason"] in {"NoNodes", "PrometheusUnreachable"}, ready
        for type_ in kind_conditions:
            found = condition(obj, type_)
            assert found is not None and found["status"] == "Unknown", (type_, status)

    events = wait_for(
        lambda: [
            e for e in cluster.events(namespace, "resnet") if e["reason"] == "PrometheusUnreachable"
        ],
        timeout=15,
        what="PrometheusUnreachable event",
    )
    assert events[0]["type"] == "Warning"

    # A spec change is picked up without waiting for the interval, and the condition's
    # lastTransitionTime stays put because its status did not change.
    before = condition(cluster.get("pb", "resnet", namespace), "Ready")
    assert before is not None
    cluster.kubectl(
        "patch",
        "pb",
        "resnet",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"analysis": {"interval": "30m"}}}),
    )
    obj = wait_for(
        lambda: _ready(cluster, "pb", "resnet", namespace, 2),
        timeout=15,
        what="observedGeneration 2",
    )
    after = condition(obj, "Ready")
    assert after is not None
    assert after["lastTransitionTime"] == before["lastTransitionTime"]
    assert obj["status"]["observedGeneration"] == 2

    # Health and the operator's own metrics are served.
    port = operator_env["PERFGUARD_HTTP_PORT"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'perfguard_evaluations_total{kind="PerfBaseline",outcome="ok"}' in text
    verdict = f'perfguard_verdict{{kind="PerfBaseline",name="resnet",namespace="{namespace}",'
    assert f'{verdict}verdict="Inconclusive"}} 1.0' in text
    assert f'{verdict}verdict="Pass"}} 0.0' in text
    assert (
        f'perfguard_ready{{kind="EnvParity",name="inference",namespace="{namespace}"}} 0.0' in text
    )
