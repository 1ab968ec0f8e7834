"""A real Prometheus holding a week of synthetic history, shared by the integration tests.

The history ends now, so queries over "the last 10 minutes" see data, and carries a few
injections (a canary latency regression, GPU thermal throttling, an XID error, a GPU
memory leak) that tests can find. A missing Prometheus fails the session: never a skip.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from perfguard.local.binaries import MissingBinaryError
from perfguard.local.prometheus import (
    INSTALL_HINT,
    LocalPrometheus,
    backfill,
    prometheus_binary,
    promtool_binary,
)
from perfguard.synthetic import (
    Expected,
    Injection,
    InjectionKind,
    Scenario,
    generate_file,
    write_openmetrics,
)

# Canary inference latency regresses by 8 ms for the last day of the week.
CANARY_REGRESSION = Injection(
    InjectionKind.LATENCY_SHIFT,
    start=timedelta(days=6),
    magnitude=8.0,
    track="canary",
    stage="inference",
)
THERMAL = Injection(
    InjectionKind.THERMAL_THROTTLING,
    start=timedelta(days=5),
    duration=timedelta(hours=2),
    magnitude=25.0,
    node="gpu-node-2",
    gpu=1,
)
XID = Injection(
    InjectionKind.XID_ERROR,
    start=timedelta(days=4, hours=3),
    duration=timedelta(minutes=30),
    node="gpu-node-1",
    gpu=3,
    code=79,
)
MEMORY_LEAK = Injection(
    InjectionKind.GPU_MEMORY_GROWTH,
    start=timedelta(days=6, hours=12),
    magnitude=2.0,
    node="gpu-node-1",
    gpu=0,
)


def history_scenario() -> Scenario:
    return Scenario(
        days=7,
        step=timedelta(seconds=30),
        seed=7,
        nodes=2,
        gpus_per_node=4,
        cpus_per_node=4,
        injections=(CANARY_REGRESSION, THERMAL, XID, MEMORY_LEAK),
    )


Labels = frozenset[tuple[str, str]]


@dataclass
class BackfilledPrometheus:
    server: LocalPrometheus
    scenario: Scenario
    expected: Expected
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def _get(self, path: str, params: dict[str, str]) -> object:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=60) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, query: str, at: datetime) -> dict[Labels, float]:
        data = self._get("/api/v1/query", {"query": query, "time": str(at.timestamp())})
        assert isinstance(data, dict) and data["resultType"] == "vector", data
        return {
            frozenset(item["metric"].items()): float(item["value"][1]) for item in data["result"]
        }

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> dict[Labels, list[tuple[float, float]]]:
        params = {
            "query": query,
            "start": str(start.timestamp()),
            "end": str(end.timestamp()),
            "step": str(step.total_seconds()),
        }
        data = self._get("/api/v1/query_range", params)
        assert isinstance(data, dict) and data["resultType"] == "matrix", data
        return {
            frozenset(item["metric"].items()): [(float(t), float(v)) for t, v in item["values"]]
            for item in data["result"]
        }


_TIMINGS: dict[str, float] = {}


@contextlib.contextmanager
def prometheus_with(work: Path, scenarios: Mapping[str, Scenario]) -> Iterator[LocalPrometheus]:
    """One real Prometheus holding every scenario's history, backfilled with promtool into
    `work`; fails the test (never skips) when a backfill or the start fails."""
    data = work / "data"
    for name, scenario in scenarios.items():
        path = work / f"{name}.om"
        generate_file(scenario, path)
        try:
            backfill(path, data)
        except Exception as error:
            pytest.fail(f"backfill of {name} failed: {error}", pytrace=False)
        path.unlink()
    server = LocalPrometheus(data)
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def backfilled_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[BackfilledPrometheus]:
    try:
        prometheus_binary()
        promtool_binary()
    except MissingBinaryError as error:
        pytest.fail(f"{error}\nInstall it with `{INSTALL_HINT}` or `make prometheus`.")

    scenario = history_scenario()
    workdir = tmp_path_factory.mktemp("prometheus")
    history = workdir / "history.om"
    data_dir = workdir / "data"

    started = time.perf_counter()
    summary = write_openmetrics(scenario, history)
    generated = time.perf_counter()
    backfill(history, data_dir)
    backfilled = time.perf_counter()
    history.unlink()  # gigabytes of text, no longer needed once the blocks exist
    server = LocalPrometheus(data_dir)
    server.start()
    ready = time.perf_counter()
    _TIMINGS.update(
        {
            "samples": float(summary.samples),
            "generate_s": generated - started,
            "backfill_s": backfilled - generated,
            "start_s": ready - backfilled,
        }
    )
    try:
        yield BackfilledPrometheus(server, scenario, Expected(scenario), dict(_TIMINGS))
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        terminalreporter.write_line(
            "backfilled Prometheus: {samples:.0f} samples; generate {generate_s:.1f}s, "
            "backfill {backfill_s:.1f}s, start {start_s:.1f}s".format(**_TIMINGS)
        )
