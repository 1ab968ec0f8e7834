"""`perfguard evaluate` against a real Prometheus: what it answers becomes the exit code."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine import offline
from perfguard.engine.offline import EvaluateOptions
from perfguard.local.processes import free_port
from perfguard.local.prometheus import LocalPrometheus
from perfguard.sources.prometheus import PrometheusClient
from tests.integration.conftest import BackfilledPrometheus

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


@pytest.mark.parametrize(
    "analysis",
    [
        # interval a whole number of the baseline's 1m step: every evaluation shares it
        {"interval": "1m", "sustainFor": "20m", "window": "10m", "step": "30s"},
        # 15s is not: four grids of baseline, two of window, each shared within itself
        {"interval": "15s", "sustainFor": "5m", "window": "10m", "step": "30s"},
        # 7s shares nothing: every range is asked as it is
        {"interval": "7s", "sustainFor": "1m", "window": "5m", "step": "20s"},
    ],
    ids=["aligned", "four-grids", "unaligned"],
)
def test_a_replay_sharing_its_ranges_judges_as_one_asking_each_range(
    backfilled_prometheus: BackfilledPrometheus, analysis: dict[str, str]
) -> None:
    """The replay answers later evaluations from pieces of earlier ranges (a 7-day
    baseline asked again a minute later): against the real PromQL engine the status is the
    one that asking every range gives, with far fewer queries where the grids line up."""
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "resnet"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Both",
            "baseline": {"window": "7d", "minSamples": 50},
            "analysis": analysis,
            "metrics": [
                {
                    "name": "latency",
                    "type": "Latency",
                    "histogram": "inference_request_duration_seconds",
                    "stageLabel": "stage",
                    "thresholds": {"p95": {"maxIncrease": "5ms"}, "mean": {"maxIncrease": "5ms"}},
                    "critical": True,
                },
                {
                    "name": "throughput",
                    "type": "Throughput",
                    "counter": "inference_requests_total",
                    "thresholds": {"rate": {"maxDecreasePercent": 20}},
                },
                {
                    "name": "errors",
                    "type": "ErrorRate",
                    "counter": "inference_requests_total",
                    "errorMatchers": {"code": "5.."},
                    "thresholds": {"ratio": {"max": 0.01}},
                },
            ],
        }
    )
    at = backfilled_prometheus.scenario.end.replace(microsecond=0) - timedelta(minutes=3)
    options = EvaluateOptions(prometheus=backfilled_prometheus.url, at=at)
    asked: dict[str, int] = {}
    original = PrometheusClient.query_range

    async def counted(self: PrometheusClient, *args: Any) -> Any:
        asked[type(self).__name__] = asked.get(type(self).__name__, 0) + 1
        return await original(self, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PrometheusClient, "query_range", counted)
        shared = asyncio.run(offline.replay_perfbaseline(spec, options))
        patch.setattr(offline, "ReplayClient", PrometheusClient)
        each = asyncio.run(offline.replay_perfbaseline(spec, options))
    assert shared["verdict"] in {"Fail", "Pass", "Inconclusive"}
    assert shared["metrics"] and shared["baseline"]["samples"] > 1000, shared
    assert shared == each
    steps = len(offline.replay_times(spec, at))
    assert asked["PrometheusClient"] == 6 * steps  # window + baseline, three metrics
    if analysis["interval"] == "1m":
        assert asked["ReplayClient"] < asked["PrometheusClient"] / 4, asked
    else:
        assert asked["ReplayClient"] <= asked["PrometheusClient"], asked
