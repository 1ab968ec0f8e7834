"""Two real `perfguard run` replicas peering through Kopf against a real API server: one
evaluates, the other stands by, and what each exports on /metrics follows who evaluates."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from perfguard.local.processes import free_port
from tests.e2e.cluster import Cluster, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PEERING_CRDS = REPO / "charts" / "perfguard" / "charts" / "kopf-peering" / "crds"


def series(port: int, name: str) -> set[str] | None:
    """The perfguard series a replica exports for PerfBaseline `name`; None while its
    /metrics does not answer yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("name") == name and sample.labels.get("kind") == "PerfBaseline"
    }


class Replicas:
    def __init__(self, cluster: Cluster, namespace: str, logs: Path) -> None:
        self.cluster, self.namespace, self.logs = cluster, namespace, logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, priority: int) -> int:
        port = free_port()
        self.running.append(
            subprocess.Popen(
                [
                    sys.executable, "-m", "perfguard.cli", "run",
                    "--namespace", self.namespace, "--peering", "perfguard",
                    "--priority", str(priority), "--http-port", str(port),
                ],
                env={
                    "PATH": "/usr/bin:/bin",
                    "KUBECONFIG": str(self.cluster.kubeconfig),
                    "PERFGUARD_HTTP_HOST": "127.0.0.1",
                    "PERFGUARD_LOG_JSON": "true",
                },
                stdout=(self.logs / f"{name}.log").open("ab"),
                stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        return port

    def stop(self) -> None:
        for process in self.running:
            process.send_signal(signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(25)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def replicas(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Replicas]:
    cluster.kubectl("apply", "-f", str(PEERING_CRDS))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "perfguard", "namespace": namespace},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(peering))
    running = Replicas(cluster, namespace, tmp_path)
    try:
        yield running
    finally:
        running.stop()
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")


def test_a_replica_that_hands_over_exports_nothing_for_what_it_no_longer_evaluates(
    cluster: Cluster, namespace: str, replicas: Replicas
) -> None:
    """Before, the paused replica kept each resource's evaluation stamp; deleted while it
    was paused, the resource's stamp stayed on its /metrics page alone and aged, and
    PerfguardEvaluationLag fired about a resource that no longer existed."""
    baseline = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {"name": "pb", "namespace": namespace},
        "spec": {
            "prometheus": {"url": "http://127.0.0.1:9", "timeout": "1s"},
            "selector": {"service": "x"},
            "comparison": "Historical",
            "analysis": {"interval": "2s"},
            "metrics": [
                {
                    "name": "latency",
                    "type": "Latency",
                    "histogram": "h_seconds",
                    "thresholds": {"p95": {"maxIncrease": "5ms"}},
                }
            ],
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(baseline))
    stamp = "perfguard_last_evaluation_timestamp_seconds"
    first = replicas.start("first", 100)
    wait_for(
        lambda: stamp in (series(first, "pb") or set()),
        timeout=90,
        what="the only replica evaluates",
    )
    second = replicas.start("second", 200)
    wait_for(
        lambda: stamp in (series(second, "pb") or set()),
        timeout=90,
        what="the higher-priority replica takes over",
    )
    wait_for(
        lambda: series(first, "pb") == set(),
        timeout=60,
        what="the paused replica drops every series of the resource",
    )
    cluster.kubectl("delete", "pb", "pb", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: series(second, "pb") == set(),
        timeout=30,
        what="the evaluating replica forgets the deleted resource",
    )
    assert series(first, "pb") == set(), "the paused replica exports the deleted resource"
