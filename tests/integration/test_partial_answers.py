"""A partial answer from a real Prometheus is never judged as complete.

Two real Prometheus servers: B holds the series of canary pod c2, the one that fails; A
holds everything else (the other pods, and a GPU fleet for CapacityPlan) and reads B through
`remote_read`, the way a long-term or federated store is read. With B stopped, A answers
`status: success`, the series it has, and a warning ("remote_read: error sending request:
... connection refused"). Before, perfguard dropped the warning: the canary's error ratio
read 0 (c1 serves no errors), the metric Improved and the verdict passed with Ready=True.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.capacityplan import evaluate as evaluate_capacity
from perfguard.engine.offline import EvaluateOptions, replay_perfbaseline
from perfguard.local.processes import free_port
from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.outcome import Outcome
from perfguard.sources.prometheus import FailureKind, PrometheusClient, PrometheusError
from perfguard.synthetic import Scenario, SeriesFamily, write_openmetrics

pytestmark = pytest.mark.integration

END = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCRAPE = 15
HISTORY = timedelta(hours=2)


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def requests_family(pods: list[tuple[str, str, str, float]]) -> str:
    """OpenMetrics for `app_requests_total`: one counter per (track, pod, code) growing at
    `rps` over the last two hours before END."""
    start = END.timestamp() - HISTORY.total_seconds()
    points = int(HISTORY.total_seconds()) // SCRAPE + 1
    lines = ["# TYPE app_requests counter"]
    for track, pod, code, rps in pods:
        labels = _labels({"service": "svc", "track": track, "pod": pod, "code": code})
        lines += [
            f"app_requests_total{labels} {rps * SCRAPE * i:.6f} {start + i * SCRAPE:.3f}"
            for i in range(points)
        ]
    return "\n".join(lines) + "\n"


def fleet_openmetrics(path: Path) -> None:
    """A day of one GPU node's DCGM, node-exporter and traffic series."""
    write_openmetrics(
        Scenario(
            days=1,
            end=END,
            step=timedelta(minutes=1),
            seed=11,
            nodes=1,
            gpus_per_node=2,
            cpus_per_node=2,
            host_label="hostname",
            include=frozenset({SeriesFamily.DCGM, SeriesFamily.NODE, SeriesFamily.REQUESTS}),
        ),
        path,
    )


@dataclass
class Servers:
    a: LocalPrometheus  # what perfguard asks
    b: LocalPrometheus  # the store A reads through remote_read


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    work = tmp_path_factory.mktemp("partial")
    b_history = work / "b.om"
    b_history.write_text(
        requests_family([("canary", "c2", "200", 8.0), ("canary", "c2", "500", 2.0)]) + "# EOF\n"
    )
    a_history = work / "a.om"
    fleet_openmetrics(a_history)
    fleet = a_history.read_text().removesuffix("# EOF\n")
    a_history.write_text(
        fleet
        + requests_family(
            [
                ("stable", "s1", "200", 10.0),
                ("stable", "s1", "500", 0.02),
                ("stable", "s2", "200", 10.0),
                ("stable", "s2", "500", 0.02),
                ("canary", "c1", "200", 10.0),
            ]
        )
        + "# EOF\n"
    )
    backfill(b_history, work / "b")
    backfill(a_history, work / "a")
    b = LocalPrometheus(work / "b", port=free_port())  # a fixed port: it is restarted
    a = LocalPrometheus(
        work / "a",
        config=(
            "global: {}\n"
            "remote_read:\n"
            f"  - url: {b.url}/api/v1/read\n"
            "    read_recent: true\n"
            "    remote_timeout: 5s\n"
        ),
    )
    try:
        b.start()
        a.start()
        yield Servers(a, b)
    finally:
        a.stop()
        b.stop()


@contextmanager
def store_down(servers: Servers) -> Iterator[None]:
    servers.b.stop()
    try:
        yield
    finally:
        servers.b.start()


def raw_answer(url: str, query: str) -> dict[str, Any]:
    params = urllib.parse.urlencode({"query": query, "time": str(END.timestamp())})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


SPEC = PerfBaselineSpec.model_validate(
    {
        "selector": {"service": "svc"},
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
        "comparison": "Concurrent",
        "baseline": {"window": "1h", "minSamples": 20},
        "analysis": {"interval": "1m", "window": "20m", "step": "30s", "sustainFor": "3m"},
        "metrics": [
            {
                "name": "errors",
                "type": "ErrorRate",
                "counter": "app_requests_total",
                "errorMatchers": {"code": "5.."},
                "thresholds": {"ratio": {"max": 0.01}},
            }
        ],
    }
)
PLAN = CapacityPlanSpec.model_validate(
    {
        "traffic": {"query": 'sum(rate(inference_requests_total{service="resnet"}[5m]))'},
        "history": "1d",
        "step": "5m",
    }
)


def judge(url: str) -> dict[str, Any]:
    return asyncio.run(replay_perfbaseline(SPEC, EvaluateOptions(prometheus=url, at=END)))


def plan(url: str) -> Outcome:
    async def go() -> Outcome:
        async with PrometheusClient(url) as client:
            return await evaluate_capacity(PLAN, None, {}, END, client)

    return asyncio.run(go())


def ready(conditions: list[dict[str, Any]]) -> tuple[str, str, str]:
    found = next(c for c in conditions if c["type"] == "Ready")
    return found["status"], found["reason"], found["message"]


def test_with_the_store_up_the_canarys_errors_are_seen(servers: Servers) -> None:
    status = judge(servers.a.url)
    assert status["verdict"] == "Fail", status
    assert ready(status["conditions"])[:2] == ("True", "Evaluated")
    (errors,) = status["metrics"]
    assert errors["verdict"] == "Regressed" and errors["current"] == pytest.approx(0.1)


def test_with_the_store_down_the_answer_is_partial_and_not_judged(servers: Servers) -> None:
    query = 'app_requests_total{track="canary"}'
    with store_down(servers):
        # What real Prometheus answers: success, the series it holds, and a warning.
        raw = raw_answer(servers.a.url, query)
        assert raw["status"] == "success" and len(raw["data"]["result"]) == 1, raw
        assert raw["warnings"] and raw["warnings"][0].startswith("remote_read: "), raw

        async def ask() -> PrometheusError:
            async with PrometheusClient(servers.a.url) as client:
                try:
                    await client.query_range(query, END - timedelta(minutes=5), END, HISTORY / 24)
                except PrometheusError as error:
                    return error
            raise AssertionError("a partial answer was returned as whole")

        error = asyncio.run(ask())
        assert error.kind == FailureKind.PARTIAL_RESPONSE
        assert error.warnings == tuple(raw["warnings"])

        status = judge(servers.a.url)
    assert status["verdict"] == "Inconclusive", status
    state, reason, message = ready(status["conditions"])
    assert (state, reason) == ("False", "PrometheusPartialResponse")
    assert "remote_read: error sending request" in message and "connection refused" in message
    assert f"{servers.b.url}/api/v1/read" in message
    # Nothing was measured on the partial answer: no metric reads Improved or Pass.
    assert all(m.get("verdict") not in {"Improved", "Pass"} for m in status.get("metrics") or [])


def test_capacityplan_is_unverified_while_the_store_is_down(servers: Servers) -> None:
    whole = plan(servers.a.url)
    whole_ready = next(c for c in whole.conditions if c.type == "Ready")
    assert whole_ready.status.value == "True", whole_ready
    assert whole.verdict != "Unverified", whole.fields
    with store_down(servers):
        partial = plan(servers.a.url)
    assert partial.verdict == "Unverified"
    ready_now = next(c for c in partial.conditions if c.type == "Ready")
    assert (ready_now.status.value, ready_now.reason) == ("False", "PrometheusPartialResponse")
    assert "remote_read: error sending request" in ready_now.message
