"""Enormous answers from a real Prometheus: a query returning 10,000 series, and an answer
above the client's size bound.

The module backfills 10,000 series of 21 points (one gauge per pod of one service) into
its own Prometheus, so the answers are Prometheus' own JSON, at the size a careless
`by (pod)` query gives on a large service.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.tracks import plan_tracks
from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.outcome import Outcome
from perfguard.sources.prometheus import FailureKind, PrometheusClient, PrometheusError

pytestmark = pytest.mark.integration

SERIES = 10_000
POINTS = 21
STEP = timedelta(seconds=30)
AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def openmetrics(path: Path) -> None:
    """One gauge per pod, 0.5 at every 30 s step of the 10 minutes before AT."""
    first = AT.timestamp() - (POINTS - 1) * STEP.total_seconds()
    with path.open("w") as out:
        out.write("# TYPE wide_gauge gauge\n")
        for i in range(SERIES):
            labels = f'{{pod="pod-{i}",service="x"}}'
            for j in range(POINTS):
                out.write(f"wide_gauge{labels} 0.5 {first + j * STEP.total_seconds():.0f}\n")
        out.write("# EOF\n")


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("wide")
    openmetrics(work / "wide.om")
    backfill(work / "wide.om", work / "data")
    server = LocalPrometheus(work / "data")
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    yield server.url
    server.stop()


def test_ten_thousand_series_are_read_within_bounded_memory_and_reported(wide: str) -> None:
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "x"},
            "comparison": "Historical",
            "metrics": [
                {
                    "name": "q",
                    "type": "Query",
                    # The mistake this guards against: one series per pod instead of one.
                    "query": "sum(wide_gauge{ {{selector}} }) by (pod)",
                    "thresholds": {"value": {"max": 1}},
                }
            ],
        }
    )

    async def go() -> tuple[int, int, Outcome]:
        tracemalloc.start()
        async with PrometheusClient(wide, timeout=timedelta(seconds=60)) as client:
            found = await client.query_range(
                'wide_gauge{service="x"}', AT - (POINTS - 1) * STEP, AT, STEP
            )
            outcome = await evaluate(spec, plan_tracks(spec, None), {}, AT, client)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return len(found), peak, outcome

    count, peak, outcome = asyncio.run(go())
    assert count == SERIES
    # Each answer is several MiB of JSON; parsing and judging stay within a small multiple.
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert outcome.verdict == "Inconclusive"
    ready = next(c for c in outcome.conditions if c.type == "Ready")
    assert ready.status.value == "False" and "several series" in ready.message, ready


def test_an_answer_above_the_bound_is_refused_while_reading(wide: str) -> None:
    async def go() -> PrometheusError:
        async with PrometheusClient(wide, max_answer_bytes=256 * 1024) as client:
            with pytest.raises(PrometheusError) as caught:
                await client.query_range(
                    'wide_gauge{service="x"}', AT - (POINTS - 1) * STEP, AT, STEP
                )
            return caught.value

    error = asyncio.run(go())
    assert error.kind is FailureKind.TOO_LARGE
    assert "aggregate the query" in error.message
