"""Seconds of CPU stay off the operator's event loop.

One event loop serves every resource's evaluation, the status patches, /metrics and the
probes. A CapacityPlan over a fleet decodes tens of MB of JSON and analyses hundreds of
GPUs (docs/benchmarks.md: ~15 s CPU at 64 nodes x 8 GPUs); done on the loop, that froze
everything else for as long. These tests record which thread each heavy step ran on.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.engine import capacityplan, capacityplan_fetch
from perfguard.sources import prometheus
from perfguard.sources.capacityplan_queries import plan_queries
from perfguard.sources.prometheus import PrometheusClient, Series

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def recording(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, threads: list[str]) -> None:
    """Replace module.name by a wrapper that notes the thread it runs on."""
    original: Callable[..., Any] = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def matrix_answer(series: int, points: int) -> bytes:
    result = [
        {
            "metric": {"Hostname": f"node-{i}", "gpu": "0"},
            "values": [[1_700_000_000 + 60 * t, str(float(i + t))] for t in range(points)],
        }
        for i in range(series)
    ]
    return json.dumps(
        {"status": "success", "data": {"resultType": "matrix", "result": result}}
    ).encode()


@pytest.mark.parametrize(
    ("series", "points", "off_loop"),
    [(2, 10, False), (200, 1_000, True)],  # 128 bytes vs 6 MB; 20 vs 200,000 samples
)
def test_large_prometheus_answers_are_decoded_on_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch, serve: Any, series: int, points: int, off_loop: bool
) -> None:
    body = matrix_answer(series, points)
    assert (len(body) >= prometheus.DECODE_IN_THREAD_BYTES) is off_loop
    threads: list[str] = []
    for step in ("_json_or_none", "_series_list", "_decode_large"):
        recording(monkeypatch, prometheus, step, threads)

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async def scenario() -> tuple[str, list[Series]]:
        runner, url = await serve(handler)
        try:
            async with aiohttp.ClientSession() as session:
                client = PrometheusClient(url, session=session)
                found = await client.query_range(
                    "up", AT - timedelta(hours=1), AT, timedelta(minutes=1)
                )
        finally:
            await runner.cleanup()
        return threading.current_thread().name, found

    loop_thread, found = asyncio.run(scenario())
    assert len(threads) == (1 if off_loop else 2), threads
    assert all((t != loop_thread) is off_loop for t in threads), (loop_thread, threads)
    if off_loop:
        assert all(t.startswith("perfguard-decode") for t in threads), threads
    # Decoded the same wherever it ran.
    assert len(found) == series
    assert found[-1].labels == {"Hostname": f"node-{series - 1}", "gpu": "0"}
    np.testing.assert_array_equal(found[-1].values, series - 1 + np.arange(points, dtype=float))
    assert found[0].timestamps[1] - found[0].timestamps[0] == 60.0


def test_large_answers_are_decoded_one_after_another(
    monkeypatch: pytest.MonkeyPatch, serve: Any
) -> None:
    """Nine answers of a CapacityPlan arrive together; decoding them side by side would hold
    nine parsed trees at once. Each decode (JSON to arrays) must end before the next starts."""
    body = matrix_answer(200, 1_000)
    spans: list[tuple[float, float]] = []
    original = prometheus._decode_large

    def timed(*args: Any) -> Any:
        started = time.monotonic()
        try:
            return original(*args)
        finally:
            spans.append((started, time.monotonic()))

    monkeypatch.setattr(prometheus, "_decode_large", timed)

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async def scenario() -> list[list[Series]]:
        runner, url = await serve(handler)
        try:
            async with aiohttp.ClientSession() as session:
                client = PrometheusClient(url, session=session)
                return await asyncio.gather(
                    *(
                        client.query_range("up", AT - timedelta(hours=1), AT, timedelta(minutes=1))
                        for _ in range(4)
                    )
                )
        finally:
            await runner.cleanup()

    answers = asyncio.run(scenario())
    assert [len(a) for a in answers] == [200] * 4
    assert len(spans) == 4
    ordered = sorted(spans)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert end <= start, ordered


def _whole(body: bytes) -> Any:
    """The reference: json.loads, then the result's series converted."""
    payload = json.loads(body)
    if payload.get("data", {}).get("resultType") == "matrix":
        payload["data"]["result"] = prometheus._series_list(payload["data"]["result"], "q")
    return payload


def _same(a: Any, b: Any) -> None:
    if isinstance(a, Series):
        assert isinstance(b, Series) and a.labels == b.labels
        np.testing.assert_array_equal(a.timestamps, b.timestamps)
        np.testing.assert_array_equal(a.values, b.values)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (a.keys(), b)
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


TRICKY_LABELS = {"job": 'a "result":[ ] } , \\ \u00e9 [1,2]', "gpu": "0"}
ANSWERS = {
    "compact": matrix_answer(3, 5),
    "empty": b'{"status":"success","data":{"resultType":"matrix","result":[]}}',
    "indented": json.dumps(json.loads(matrix_answer(2, 3)), indent=2).encode(),
    "tricky labels": json.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": TRICKY_LABELS, "values": [[1, "NaN"], [2, "+Inf"]]}],
            },
        },
        ensure_ascii=False,
    ).encode(),
    "warnings after": matrix_answer(2, 2)[:-1] + b',"warnings":["partial"],"infos":[]}',
    # VictoriaMetrics' layout: its flag between status and data.
    "isPartial true": matrix_answer(2, 2).replace(b'"data"', b'"isPartial": true, "data"', 1),
    "isPartial false": matrix_answer(2, 2).replace(b'"data"', b'"isPartial":false,"data"', 1),
    "stats inside data": matrix_answer(2, 2)[:-2] + b',"stats":{"series":2}}}',
    "another key order": b'{"data":{"result":[],"resultType":"matrix"},"status":"success"}',
    "vector": b'{"status":"success","data":{"resultType":"vector","result":[]}}',
    "error": b'{"status":"error","errorType":"bad_data","error":"parse error"}',
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
def test_series_by_series_decoding_equals_decoding_whole(name: str) -> None:
    body = ANSWERS[name]
    _same(prometheus._decode_large(body, "q"), _whole(body))


@pytest.mark.parametrize(
    "body",
    [
        matrix_answer(2, 3)[:-5],  # cut short
        matrix_answer(2, 3)[:-1] + b"}",  # one brace too many
        matrix_answer(2, 3).replace(b"},{", b"}{", 1),  # a comma missing between series
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{}}]}}',
    ],
    ids=["truncated", "extra brace", "missing comma", "series without values"],
)
def test_a_broken_matrix_fails_as_it_would_whole(body: bytes) -> None:
    try:
        expected: Any = _whole(body)
    except ValueError:
        expected = None  # json.loads refuses it: the client reports a bad answer
    except prometheus.PrometheusError as error:
        with pytest.raises(prometheus.PrometheusError, match=error.message):
            prometheus._decode_large(body, "q")
        return
    _same(prometheus._decode_large(body, "q"), expected)


def test_the_interpreter_lock_is_free_between_series() -> None:
    """A thread decoding a large matrix lets another run long before it ends (json.loads of
    the whole text would not: it holds the lock throughout; measured: its longest pause is
    ~0.9 of the decode, series by series ~0.07)."""
    body = matrix_answer(400, 2_000)  # ~28 MB
    ticks: list[float] = []
    done = threading.Event()

    def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    started = time.monotonic()
    try:
        decoded = prometheus._decode_large(body, "q")
    finally:
        ended = time.monotonic()
        done.set()
        thread.join()
    assert len(decoded["data"]["result"]) == 400
    inside = [t for t in ticks if started < t < ended]
    gaps = np.diff([started, *inside, ended])
    # The ticker ran all along: no gap near the whole decode's duration.
    assert gaps.max() < 0.5 * (ended - started), (gaps.max(), ended - started)


class FleetPrometheus:
    """Answers every CapacityPlan query from generated series (no I/O): 2 nodes x 2 GPUs."""

    def __init__(self, times: np.ndarray) -> None:
        self.times = times
        self.queries: list[str] = []

    async def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        self.queries.append(query)
        load = 100.0 + 10.0 * np.sin(self.times / 3600.0)
        if "requests_total" in query:
            return [Series({}, self.times, load)]
        return [
            Series({"Hostname": node, "gpu": gpu}, self.times, 0.4 * load)
            for node in ("node-a", "node-b")
            for gpu in ("0", "1")
        ]


def test_capacityplan_aligns_and_judges_on_a_worker_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = CapacityPlanSpec.model_validate(
        {
            "traffic": {"query": "sum(rate(requests_total[5m]))"},
            "history": "1d",
            "step": "5m",
            "scenarios": [{"name": "plus20", "growthPercent": 20}],
        }
    )
    step = spec.step.total_seconds()
    end = step * np.floor(AT.timestamp() / step)
    times = np.arange(end - spec.history.total_seconds(), end + step / 2, step)
    source = FleetPrometheus(times)
    threads: list[str] = []
    recording(monkeypatch, capacityplan_fetch, "align_answer", threads)
    recording(monkeypatch, capacityplan, "analyse", threads)
    recording(monkeypatch, capacityplan, "conclude", threads)

    async def scenario() -> tuple[str, Any]:
        outcome = await capacityplan.evaluate(spec, None, {}, AT, source)  # type: ignore[arg-type]
        return threading.current_thread().name, outcome

    loop_thread, outcome = asyncio.run(scenario())
    assert source.queries, "no query was asked"
    # Each answer aligned as it arrives, then analyse and conclude (the readings between).
    planned = plan_queries(spec, None)
    assert len(threads) == len(planned) + 2, (threads, planned)
    assert loop_thread not in threads, (loop_thread, threads)
    # The analysis ran on the data: 4 GPUs at 0.4 x the traffic, the same on every node.
    assert outcome.verdict == "Sufficient", outcome.fields.get("message")
    gpu = next(c for c in outcome.fields["current"] if c["resource"] == "gpu")
    assert {(t["node"], t["gpu"]) for t in gpu["top"]} == {
        (node, g) for node in ("node-a", "node-b") for g in ("0", "1")
    }
    assert gpu["fleet"] == pytest.approx(0.4 * (100.0 + 10.0 * np.sin(end / 3600.0)), abs=1.0)
