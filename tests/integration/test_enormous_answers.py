"""Enormous answers: a Query returning 10,000 series, and an answer above the size bound.

A local HTTP server answers like Prometheus' API (the real Prometheus here holds a few
hundred series, not ten thousand); the client, the engine and the limits are the real ones.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.perfbaseline_fetch import WORKLOAD
from perfguard.engine.tracks import plan_tracks
from perfguard.sources.prometheus import FailureKind, PrometheusClient, PrometheusError

pytestmark = pytest.mark.integration

SERIES = 10_000
AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def matrix(series: int, points: int, start: float) -> bytes:
    result = [
        {
            "metric": {
                "pod": f"pod-{i}",
                "perfguard_track": WORKLOAD.name,
                "perfguard_stat": "value",
            },
            "values": [[start + 30 * j, "0.5"] for j in range(points)],
        }
        for i in range(series)
    ]
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(body).encode()


async def serve(payload: bytes) -> AsyncIterator[str]:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(body=payload, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def test_ten_thousand_series_are_read_within_bounded_memory_and_reported() -> None:
    payload = matrix(SERIES, 21, AT.timestamp() - 600)

    async def go() -> tuple[int, int, object]:
        async for url in serve(payload):
            tracemalloc.start()
            async with PrometheusClient(url) as client:
                found = await client.query_range(
                    "q", AT - timedelta(minutes=10), AT, timedelta(seconds=30)
                )
                spec = PerfBaselineSpec.model_validate(
                    {
                        "selector": {"service": "x"},
                        "comparison": "Historical",
                        "metrics": [
                            {
                                "name": "q",
                                "type": "Query",
                                "query": "sum(up{ {{selector}} }) by (pod)",
                                "thresholds": {"value": {"max": 1}},
                            }
                        ],
                    }
                )
                outcome = await evaluate(spec, plan_tracks(spec, None), {}, AT, client)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            return len(found), peak, outcome
        raise AssertionError("no server")

    count, peak, outcome = asyncio.run(go())
    assert count == SERIES
    # The answer is a few MiB of JSON; parsing and judging it stay within a small multiple.
    assert len(payload) < 8 * 2**20
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert outcome.verdict == "Inconclusive"  # type: ignore[attr-defined]
    ready = next(c for c in outcome.conditions if c.type == "Ready")  # type: ignore[attr-defined]
    assert ready.status.value == "False" and "several series" in ready.message, ready


def test_an_answer_above_the_bound_is_refused_while_reading() -> None:
    payload = matrix(2_000, 21, AT.timestamp() - 600)

    async def go() -> PrometheusError:
        async for url in serve(payload):
            async with PrometheusClient(url, max_answer_bytes=256 * 1024) as client:
                with pytest.raises(PrometheusError) as caught:
                    await client.query_range(
                        "q", AT - timedelta(minutes=10), AT, timedelta(seconds=30)
                    )
                return caught.value
        raise AssertionError("no server")

    error = asyncio.run(go())
    assert error.kind is FailureKind.TOO_LARGE
    assert "aggregate the query" in error.message
