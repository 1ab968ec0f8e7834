"""The operator as the chart deploys it: under the chart's ServiceAccount and RBAC, and as
two replicas with Kopf peering. Real kube-apiserver with RBAC enforced; no kubelet, so the
operator runs here with the ServiceAccount's token instead of in a pod.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from perfguard.local.binaries import binary
from perfguard.local.processes import free_port
from tests.e2e.cluster import Cluster, condition, wait_for

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "perfguard"
DIGEST = "sha256:" + "c" * 64


def helm(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("helm")), *args],
        env=cluster.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def release(cluster: Cluster, tmp_path: Path) -> Iterator[dict[str, Any]]:
    name = f"rb-{uuid.uuid4().hex[:6]}"
    namespace = f"{name}-system"
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"crds": {"install": False}}))
    result = helm(
        cluster,
        "install",
        name,
        str(CHART),
        "-n",
        namespace,
        "--create-namespace",
        "-f",
        str(values),
    )
    assert result.returncode == 0, result.stderr
    account = f"{name}-perfguard"
    token = cluster.kubectl("create", "token", account, "-n", namespace).stdout.strip()
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    kubeconfig = tmp_path / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    yield {
        "name": name,
        "namespace": namespace,
        "kubeconfig": kubeconfig,
        "hash_key": f"{namespace}/{name}-perfguard-hash-key",
    }
    helm(cluster, "uninstall", name, "-n", namespace)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"r.example/app@{DIGEST}"}]},
            },
        },
    }


def test_operator_works_with_exactly_the_charts_rbac(
    cluster: Cluster, release: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kopf.testing import KopfRunner

    work = f"{release['name']}-work"
    stg, prd = f"{release['name']}-stg", f"{release['name']}-prd"
    for namespace in (work, stg, prd):
        cluster.kubectl("create", "namespace", namespace)
    for namespace in (stg, prd):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(deployment("api")))
        cluster.kubectl(
            "create", "secret", "generic", "creds", "-n", namespace, "--from-literal=k=v"
        )
    resources = [
        {
            "apiVersion": "perfguard.dev/v1alpha1",
            "kind": "PerfBaseline",
            "metadata": {"name": "pb", "namespace": work},
            "spec": {
                "prometheus": {"url": "http://127.0.0.1:9", "timeout": "2s"},
                "selector": {"service": "x"},
                "comparison": "Historical",
                "analysis": {"interval": "30s"},
                "metrics": [
                    {
                        "name": "latency",
                        "type": "Latency",
                        "histogram": "h_seconds",
                        "thresholds": {"p95": {"maxIncrease": "5ms"}},
                    }
                ],
            },
        },
        {
            "apiVersion": "perfguard.dev/v1alpha1",
            "kind": "EnvParity",
            "metadata": {"name": "parity", "namespace": work},
            "spec": {"reference": {"namespace": stg}, "targets": [{"namespace": prd}]},
        },
        {
            "apiVersion": "perfguard.dev/v1alpha1",
            "kind": "CapacityPlan",
            "metadata": {"name": "fleet", "namespace": work},
            "spec": {
                "prometheus": {"url": "http://127.0.0.1:9", "timeout": "2s"},
                "traffic": {"query": "sum(rate(requests_total[5m]))"},
            },
        },
    ]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(resources))
    env = {
        "KUBECONFIG": str(release["kubeconfig"]),
        "PERFGUARD_HTTP_PORT": str(free_port()),
        "PERFGUARD_HTTP_HOST": "127.0.0.1",
        "PERFGUARD_HASH_KEY_SECRET": release["hash_key"],
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = ["run", "--standalone", "-m", "perfguard.handlers"]
    for namespace in (work, stg, prd):
        args += ["--namespace", namespace]
    try:
        with KopfRunner(args, timeout=90) as runner:

            def evaluated(short: str, name: str) -> dict[str, Any] | None:
                status = cluster.get(short, name, work).get("status") or {}
                return status if status.get("verdict") else None

            pb = wait_for(lambda: evaluated("pb", "pb"), timeout=45, what="PerfBaseline status")
            parity = wait_for(lambda: evaluated("envp", "parity"), timeout=45, what="EnvParity")
            fleet = wait_for(lambda: evaluated("cplan", "fleet"), timeout=45, what="CapacityPlan")
            # Status written, Events created, Namespaces/Deployments/pods/ConfigMaps listed,
            # the hash key read, Nodes listed: all with the chart's rules only.
            assert pb["verdict"] == "Inconclusive"
            assert condition({"status": pb}, "Ready")["reason"] == "PrometheusUnreachable"  # type: ignore[index]
            assert parity["verdict"] == "InSync", parity
            assert condition({"status": parity}, "Ready")["status"] == "True"  # type: ignore[index]
            assert "Secret contents not compared" not in parity["message"]  # no secret refs
            assert fleet["verdict"] == "Unverified"
            reason = condition({"status": fleet}, "Ready")["reason"]  # type: ignore[index]
            assert reason in {"NoNodes", "PrometheusUnreachable"}, fleet
            events = cluster.events(work)
            assert any(e["reason"] == "PrometheusUnreachable" for e in events)
            for short, name in (("pb", "pb"), ("envp", "parity"), ("cplan", "fleet")):
                cluster.kubectl("delete", short, name, "-n", work)
        assert runner.exception is None, runner.output
        assert "Forbidden" not in runner.output and " 403" not in runner.output
    finally:
        for namespace in (work, stg, prd):
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    # Outside the rules: the same identity may not delete workloads or read Secrets.
    as_operator = {**cluster.env(), "KUBECONFIG": str(release["kubeconfig"])}
    for forbidden in (
        ["delete", "deployment", "api", "-n", stg, "--dry-run=server"],
        ["get", "secret", "creds", "-n", stg],
        ["create", "namespace", "not-allowed", "--dry-run=server"],
    ):
        result = subprocess.run(
            [str(binary("kubectl")), *forbidden],
            env=as_operator,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode != 0 and "forbidden" in result.stderr.lower(), (forbidden, result)


def _evaluations(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return -1.0
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "perfguard_evaluations_total":
                total += sample.value
    return total


class Replicas:
    """`perfguard run` processes peering as `perfguard` in one namespace, with a
    PerfBaseline there (evaluated every 2 s against a Prometheus that is not there)."""

    def __init__(self, cluster: Cluster, namespace: str, logs: Path) -> None:
        self.cluster, self.namespace, self.logs = cluster, namespace, logs
        self.running: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def start(self, name: str, priority: int) -> int:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable, "-m", "perfguard.cli", "run", "--namespace", self.namespace,
                "--peering", "perfguard", "--priority", str(priority),
                "--http-port", str(port),
            ],
            env={**self.cluster.env(), "PERFGUARD_HTTP_HOST": "127.0.0.1"},
            stdout=(self.logs / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.running[name] = (process, port)
        return port

    def stop(self, name: str) -> None:
        process = self.running[name][0]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def replicas(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Replicas]:
    cluster.kubectl("apply", "-f", str(CHART / "charts" / "kopf-peering" / "crds"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfPeering",
        "metadata": {"name": "perfguard", "namespace": namespace},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(peering))
    body = {
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
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))
    running = Replicas(cluster, namespace, tmp_path)
    try:
        yield running
    finally:
        for name in running.running:
            running.stop(name)
        cluster.kubectl("delete", "pb", "pb", "-n", namespace, "--wait=false", check=False)
        cluster.kubectl(
            "patch", "pb", "pb", "-n", namespace, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip


def test_two_replicas_peer_one_evaluates_and_the_other_takes_over(replicas: Replicas) -> None:
    high_port = replicas.start("high", 200)
    wait_for(lambda: _evaluations(high_port) >= 3, timeout=60, what="the leader evaluating")
    low_port = replicas.start("low", 100)
    wait_for(lambda: _evaluations(low_port) >= 0, timeout=60, what="the standby serving")
    time.sleep(3)  # the standby sees the leader's peering record and pauses
    standby_before = _evaluations(low_port)
    leader_before = _evaluations(high_port)
    time.sleep(6)  # three more intervals
    assert _evaluations(high_port) >= leader_before + 2
    assert _evaluations(low_port) == standby_before, "the standby evaluated beside the leader"
    assert standby_before == 0, "the standby evaluated before it saw the leader"

    replicas.stop("high")
    # docs/install.md: the standby takes over within the peering lifetime (60 s); give
    # it 10 s more to evaluate. (A clean stop withdraws the leader's record, so it is
    # usually far quicker; wait_for fails the test when the bound passes.)
    wait_for(
        lambda: _evaluations(low_port) >= 1,
        timeout=70,
        what="the standby taking over within the peering lifetime",
    )


def _series(port: int, name: str) -> set[str] | None:
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


def test_a_replica_that_hands_over_exports_nothing_for_what_it_no_longer_evaluates(
    cluster: Cluster, namespace: str, replicas: Replicas
) -> None:
    """Before, the paused replica kept each resource's evaluation stamp; deleted while it
    was paused, the resource's stamp stayed on its /metrics page alone and aged, and
    PerfguardEvaluationLag fired about a resource that no longer existed."""
    stamp = "perfguard_last_evaluation_timestamp_seconds"
    first = replicas.start("first", 100)
    wait_for(
        lambda: stamp in (_series(first, "pb") or set()),
        timeout=90,
        what="the only replica evaluates",
    )
    second = replicas.start("second", 200)
    wait_for(
        lambda: stamp in (_series(second, "pb") or set()),
        timeout=90,
        what="the higher-priority replica takes over",
    )
    wait_for(
        lambda: _series(first, "pb") == set(),
        timeout=60,
        what="the paused replica drops every series of the resource",
    )
    cluster.kubectl("delete", "pb", "pb", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_for(
        lambda: _series(second, "pb") == set(),
        timeout=30,
        what="the evaluating replica forgets the deleted resource",
    )
    assert _series(first, "pb") == set(), "the paused replica exports the deleted resource"
