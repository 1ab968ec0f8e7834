"""Fixtures for e2e tests: a real kube-apiserver + etcd, CRDs applied, one namespace a test.

Set USE_EXISTING_CLUSTER=true to run against the cluster KUBECONFIG points at (e.g. kind
from kind-config.yaml) instead of starting local servers, as envtest does. Without the
test-server binaries the fixture fails loudly: these tests never skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfguard.local.controlplane import ControlPlane
from tests.e2e.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if os.environ.get("USE_EXISTING_CLUSTER", "").lower() == "true":
        kubeconfig = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        found = Cluster(kubeconfig)
        found.kubectl("apply", "-f", str(REPO / "crds"))
        yield found
        return
    try:
        plane = ControlPlane(workdir=tmp_path_factory.mktemp("controlplane")).start()
    except Exception as error:  # a missing server is a failure, never a skip
        pytest.fail(f"could not start the local control plane: {error}", pytrace=False)
    try:
        found = Cluster(plane.kubeconfig)
        found.kubectl("apply", "-f", str(REPO / "crds"))
        found.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        found.control_plane = plane  # type: ignore[attr-defined]
        yield found
    finally:
        plane.stop()


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    # No namespace controller runs, so the namespace stays Terminating; its objects are
    # deleted explicitly so that an operator in a later test does not see them.
    cluster.kubectl("delete", "perfguard", "--all", "-n", name, "--wait=false", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def operator_env(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    from perfguard.local.processes import free_port

    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "PERFGUARD_HTTP_PORT": str(free_port()),
        "PERFGUARD_HTTP_HOST": "127.0.0.1",
        "PERFGUARD_LOG_JSON": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def run_operator(operator_env: dict[str, str], namespace: str) -> Iterator[object]:
    """The real operator (all handlers) under kopf.testing.KopfRunner, watching `namespace`."""
    from kopf.testing import KopfRunner

    args = ["run", "--standalone", "--namespace", namespace, "-m", "perfguard.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
