"""An API server that does not answer is a read failure with its own reason, not an
evaluation error: each kind then reports Unverified/Inconclusive instead of keeping the
previous verdict. The client talks to a real closed port (nothing listens on port 1)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient, Configuration

from perfguard.api.base import LabelSelector
from perfguard.engine.capacityplan import failed
from perfguard.engine.envparity import read_failed
from perfguard.sources.envparity_reader import ParityReader, ParityReadError
from perfguard.sources.kubernetes_api import API_UNREACHABLE, unreachable_message
from perfguard.sources.nodes import NodeReader, NodeReadError
from perfguard.sources.workloads import WorkloadError, WorkloadReader


@pytest.fixture
def closed_port_client() -> Iterator[ApiClient]:
    configuration = Configuration(host="http://127.0.0.1:1")
    configuration.retries = 0
    client = ApiClient(configuration)
    try:
        yield client
    finally:
        client.close()


def test_envparity_reader_reports_an_unreachable_api(closed_port_client: ApiClient) -> None:
    reader = ParityReader(closed_port_client)
    with pytest.raises(ParityReadError) as raised:
        asyncio.run(reader.namespaces(LabelSelector(match_labels={"env": "prod"})))
    assert raised.value.reason == API_UNREACHABLE
    assert "the Kubernetes API did not answer" in raised.value.message
    with pytest.raises(ParityReadError) as raised:
        asyncio.run(reader.read("ml-prod", ["Deployment"], None, config=True, secrets=False))
    assert raised.value.reason == API_UNREACHABLE


def test_node_reader_reports_an_unreachable_api(closed_port_client: ApiClient) -> None:
    with pytest.raises(NodeReadError) as raised:
        asyncio.run(NodeReader(closed_port_client).select(None))
    assert raised.value.reason == API_UNREACHABLE
    assert raised.value.message.startswith("listing Nodes: the Kubernetes API did not answer")


@pytest.mark.parametrize("kind", ["Deployment", "Rollout"])
def test_workload_reader_reports_an_unreachable_api(
    closed_port_client: ApiClient, kind: str
) -> None:
    with pytest.raises(WorkloadError) as raised:
        asyncio.run(WorkloadReader(closed_port_client).hashes(kind, "ml-prod", "resnet"))
    assert raised.value.reason == API_UNREACHABLE
    assert f"reading {kind} ml-prod/resnet" in raised.value.message


def test_the_message_is_one_bounded_line() -> None:
    error = ConnectionRefusedError("refused\n" + "x" * 500)
    message = unreachable_message(error, "listing Nodes")
    assert "\n" not in message and len(message) < 300
    assert message.startswith("listing Nodes: the Kubernetes API did not answer")


def test_an_unreachable_api_replaces_a_passing_verdict() -> None:
    """What the kinds do with the reason: the last InSync/Sufficient does not stand."""
    in_sync = {
        "verdict": "InSync",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Evaluated", "message": ""},
            {"type": "InSync", "status": "True", "reason": "InSync", "message": ""},
        ],
    }
    parity = read_failed(API_UNREACHABLE, "the Kubernetes API did not answer", in_sync)
    assert parity.fields["verdict"] == "Unverified"
    assert [(c.type, c.status.value) for c in parity.conditions] == [
        ("Ready", "False"),
        ("InSync", "Unknown"),
    ]
    sufficient = {"verdict": "Sufficient", "conditions": []}
    capacity = failed(API_UNREACHABLE, "the Kubernetes API did not answer", sufficient)
    assert capacity.fields["verdict"] == "Unverified"
    assert capacity.events and capacity.events[0].reason == API_UNREACHABLE


def test_a_read_that_times_out_is_sent_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client the operator and `perfguard report` load does not send a timed-out read
    again (urllib3's default sends it 4 times: 2 minutes at 30 s each). A real socket that
    takes connections, reads the requests, and never answers."""
    from perfguard.sources import kubernetes_api

    requests: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        held = []
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            held.append(connection)  # open, unanswered
            requests.append(connection.recv(4096))
        for connection in held:
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [
                    {
                        "name": "k",
                        "cluster": {"server": f"http://127.0.0.1:{server.getsockname()[1]}"},
                    }
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kubernetes_api, "READ_TIMEOUT_S", 0.5)
    saved = Configuration._default
    try:
        client = kubernetes_api.load_client()
        with pytest.raises(kubernetes_api.ReadError, match="timed out"):
            asyncio.run(kubernetes_api.list_resources(client, "ml-prod"))
    finally:
        Configuration._default = saved
        done.set()
        thread.join()
        server.close()
    assert len(requests) == 1, requests
    assert requests[0].startswith(b"GET /apis/perfguard.dev/")


def test_a_connect_timeout_is_not_tried_again_and_a_refused_connection_is() -> None:
    """urllib3 counts a connect timeout as a connection error and tries it 3 more times: a
    call against an API server that drops connection attempts held its evaluation for 4 x
    its timeout (8 s at 2 s, measured). A refused connection is still tried again."""
    from urllib3.exceptions import (
        ConnectTimeoutError,
        MaxRetryError,
        NewConnectionError,
        SSLError,
    )

    from perfguard.sources.kubernetes_api import RETRIES

    with pytest.raises(MaxRetryError):
        RETRIES.increment("GET", "/api", error=ConnectTimeoutError("timed out"))
    refused = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    again = RETRIES.increment("GET", "/api", error=refused)
    assert again.total == 2 and isinstance(again, type(RETRIES))
    for _ in range(2):
        again = again.increment("GET", "/api", error=refused)
    with pytest.raises(MaxRetryError):
        again.increment("GET", "/api", error=refused)
    # A TLS handshake cut short (an API server restarting behind a load balancer) too.
    cut = RETRIES.increment("GET", "/api", error=SSLError("EOF in violation of protocol"))
    assert cut.total == 2
    # A read that timed out is not sent again either (test_a_read_that_times_out_is_sent_once).
