"""`perfguard evaluate` against a real Prometheus: what it answers becomes the exit code."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.local.processes import free_port
from perfguard.local.prometheus import LocalPrometheus

pytestmark = pytest.mark.integration

AT = "2026-11-28T10:00:00Z"


@pytest.fixture(scope="module")
def empty_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus with no data: enough for it to parse (and reject) queries."""
    server = LocalPrometheus(tmp_path_factory.mktemp("prometheus") / "empty", port=free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def evaluate(tmp_path: Path, doc: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "resource.yaml"
    path.write_text(yaml.safe_dump(doc))
    command = [sys.executable, "-m", "perfguard.cli", "evaluate", "-f", str(path), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


BROKEN = "avg(DCGM_FI_DEV_GPU_UTIL{ {{selector}} }"  # the closing parenthesis is missing


def test_a_query_prometheus_rejects_exits_3(empty_prometheus: str, tmp_path: Path) -> None:
    """Prometheus answers the PerfBaseline's broken Query (and a CapacityPlan's broken
    traffic query) with a parse error: unusable input, exit 3, one line quoting it. It
    used to exit 2, Inconclusive, as if more data might settle it."""
    pb = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {"name": "resnet-canary", "namespace": "ml-prod"},
        "spec": {
            "selector": {"service": "resnet"},
            "analysis": {"interval": "1m", "sustainFor": "1m"},
            "metrics": [
                {
                    "name": "gpu-util",
                    "type": "Query",
                    "query": BROKEN,
                    "thresholds": {"value": {"maxIncreasePercent": 15}},
                }
            ],
        },
    }
    result = evaluate(tmp_path, pb, "--prometheus", empty_prometheus, "--at", AT)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "perfguard evaluate: cannot evaluate PerfBaseline ml-prod/resnet-canary (InvalidQuery): "
        "Prometheus rejected a query: "
    )
    assert "parse error" in lines[0]

    plan = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "CapacityPlan",
        "metadata": {"name": "gpu-fleet", "namespace": "ml-prod"},
        "spec": {"traffic": {"query": "sum(rate(inference_requests_total[5m])"}},
    }
    result = evaluate(tmp_path, plan, "--prometheus", empty_prometheus, "--at", AT)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith(
        "perfguard evaluate: cannot evaluate CapacityPlan ml-prod/gpu-fleet (InvalidQuery): "
    )
    assert "parse error" in result.stderr
