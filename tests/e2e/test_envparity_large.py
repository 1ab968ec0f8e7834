"""EnvParity over 1,000 workloads a namespace: paged lists, bounded memory, and a clear
condition when a namespace holds more than the configured limit."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kubernetes
import pytest

from perfguard.api.envparity import EnvParitySpec
from perfguard.config import OperatorConfig
from perfguard.handlers import envparity as handler
from perfguard.handlers.runtime import ResourceRef, Runtime, set_runtime
from perfguard.observability import OperatorMetrics
from perfguard.outcome import Outcome
from perfguard.sources import envparity_reader
from perfguard.sources.envparity_reader import ParityReader
from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

WORKLOADS = 1_000
DIGEST = "sha256:" + "e" * 64


def deployment(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": f"r.example/{name}@{DIGEST}"}]},
            },
        },
    }


@pytest.fixture(scope="module")
def large(cluster: Cluster) -> Iterator[tuple[Any, str, str]]:
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16
    core = kubernetes.client.CoreV1Api(api)
    apps = kubernetes.client.AppsV1Api(api)
    prefix = f"big-{uuid.uuid4().hex[:6]}"
    namespaces = (f"{prefix}-a", f"{prefix}-b")
    for namespace in namespaces:
        core.create_namespace({"metadata": {"name": namespace}})

    def create(item: tuple[str, int]) -> None:
        namespace, index = item
        apps.create_namespaced_deployment(namespace, deployment(f"w{index:04d}"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, [(n, i) for n in namespaces for i in range(WORKLOADS)]))
    yield api, *namespaces
    for namespace in namespaces:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def evaluate(api: Any, reference: str, target: str) -> tuple[Outcome, int, int]:
    reader = ParityReader(api)
    set_runtime(Runtime(config=OperatorConfig(), metrics=OperatorMetrics(), parity=reader))
    spec = EnvParitySpec.model_validate(
        {
            "reference": {"namespace": reference},
            "targets": [{"namespace": target}],
            "workloads": {"kinds": ["Deployment"]},
        }
    )
    tracemalloc.start()
    outcome = asyncio.run(
        handler.evaluate_envparity(
            spec, {}, datetime.now(UTC), ResourceRef("EnvParity", reference, "big")
        )
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return outcome, reader.requests.value, peak


def test_a_thousand_workloads_a_namespace_are_compared_in_pages(
    large: tuple[Any, str, str],
) -> None:
    api, reference, target = large
    outcome, requests, peak = evaluate(api, reference, target)
    assert outcome.verdict == "InSync", outcome.fields.get("message")
    assert outcome.fields["compared"] == WORKLOADS
    # Per namespace: the Namespace, two pages of Deployments, pods, ConfigMaps.
    assert requests == 2 * (1 + 2 + 1 + 1), requests
    assert peak < 200 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_more_objects_than_the_limit_is_a_clear_condition(
    large: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, reference, target = large
    monkeypatch.setattr(envparity_reader, "MAX_OBJECTS", 800)
    outcome, _, _ = evaluate(api, reference, target)
    assert outcome.verdict == "Unverified"
    ready = next(c for c in outcome.conditions if c.type == "Ready")
    assert ready.status.value == "False" and ready.reason == "TooManyObjects"
    assert "more than 800 Deployments in" in ready.message
