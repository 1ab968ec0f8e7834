"""An answer that says it lacks data (`status: success` with warnings, or VictoriaMetrics'
`isPartial: true`) is a failure of its own, PrometheusPartialResponse, never a whole answer.

Before, the client returned the series it got and dropped the warnings: a canary pod whose
series sat on an unreachable remote_read store was simply absent, its error ratio read 0,
and the verdict passed. The real counterpart (two Prometheus servers, remote_read) is
tests/integration/test_partial_answers.py; here a local HTTP server answers what
Prometheus 2.46+, Thanos and VictoriaMetrics answer.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.capacityplan import evaluate as evaluate_capacity
from perfguard.engine.offline import EvaluateOptions, replay_perfbaseline
from perfguard.sources import prometheus
from perfguard.sources.prometheus import (
    FailureKind,
    PrometheusClient,
    PrometheusError,
    RequestOptions,
    Series,
)

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
REMOTE_READ = (
    'remote_read: error sending request: Post "http://127.0.0.1:9091/api/v1/read": '
    "dial tcp 127.0.0.1:9091: connect: connection refused"
)
MONOTONICITY = (
    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
    "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
    'for metric name "inference_request_duration_seconds" (1:18)'
)


def matrix(series: int = 2, points: int = 3) -> dict[str, Any]:
    return {
        "resultType": "matrix",
        "result": [
            {
                "metric": {"pod": f"p{i}"},
                "values": [[1_700_000_000 + 60 * t, str(float(i + t))] for t in range(points)],
            }
            for i in range(series)
        ],
    }


def answer(**extra: Any) -> dict[str, Any]:
    """Prometheus' key order: status, data, then warnings and infos."""
    return {"status": "success", "data": matrix(), **extra}


def ask(
    serve: Any, body: bytes, *, instant: bool = False, options: RequestOptions | None = None
) -> list[Series] | PrometheusError:
    async def handler(_: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    async def scenario() -> list[Series] | PrometheusError:
        runner, url = await serve(handler)
        try:
            client = PrometheusClient(url, **({"options": options} if options else {}))
            async with client:
                if instant:
                    return await client.query("up", AT)
                return await client.query_range(
                    "up", AT - timedelta(hours=1), AT, timedelta(minutes=1)
                )
        except PrometheusError as error:
            return error
        finally:
            await runner.cleanup()

    return asyncio.run(scenario())


PARTIAL = [
    pytest.param(answer(warnings=[REMOTE_READ]), (REMOTE_READ,), id="prometheus-remote-read"),
    pytest.param(
        answer(warnings=["No StoreAPIs matched for this query"]),
        ("No StoreAPIs matched for this query",),
        id="thanos-partial-response",
    ),
    pytest.param(
        answer(
            warnings=[
                'PromQL warning: encountered a mix of histograms and floats for metric name "x"'
            ]
        ),
        ('PromQL warning: encountered a mix of histograms and floats for metric name "x"',),
        id="promql-warning-input-dropped",
    ),
    pytest.param(
        answer(warnings=[MONOTONICITY, REMOTE_READ]), (REMOTE_READ,), id="info-and-storage"
    ),
    pytest.param(
        answer(warnings=["10 more warning annotations omitted"]),
        ("10 more warning annotations omitted",),
        id="warnings-cut-short",
    ),
    pytest.param(
        {"status": "success", "isPartial": True, "data": matrix()},
        ("isPartial: true",),
        id="victoriametrics-is-partial",
    ),
]


@pytest.mark.parametrize(("body", "warnings"), PARTIAL)
def test_an_answer_lacking_data_is_a_partial_response(
    serve: Any, body: dict[str, Any], warnings: tuple[str, ...]
) -> None:
    got = ask(serve, json.dumps(body).encode())
    assert isinstance(got, PrometheusError), got
    assert got.kind == FailureKind.PARTIAL_RESPONSE == "PrometheusPartialResponse"
    assert got.warnings == warnings
    assert got.query == "up"
    assert warnings[0] in got.message and "lacks data" in got.message


def test_an_instant_query_lacking_data_is_a_partial_response(serve: Any) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "1"]}]},
        "warnings": [REMOTE_READ],
    }
    got = ask(serve, json.dumps(body).encode(), instant=True)
    assert isinstance(got, PrometheusError) and got.kind == FailureKind.PARTIAL_RESPONSE


WHOLE = [
    pytest.param(answer(), id="no-warnings"),
    pytest.param(answer(warnings=[]), id="empty-warnings"),
    pytest.param(answer(warnings=[MONOTONICITY]), id="promql-info-among-warnings"),
    pytest.param(answer(warnings=["3 more info annotations omitted"]), id="infos-cut-short"),
    pytest.param(
        answer(infos=[MONOTONICITY, "PromQL info: metric might not be a counter"]), id="infos-list"
    ),
    pytest.param({"status": "success", "isPartial": False, "data": matrix()}, id="vm-whole"),
]


@pytest.mark.parametrize("body", WHOLE)
def test_infos_and_whole_answers_are_used(serve: Any, body: dict[str, Any]) -> None:
    got = ask(serve, json.dumps(body).encode())
    assert isinstance(got, list), got
    assert [s.labels["pod"] for s in got] == ["p0", "p1"]


def test_the_message_is_trimmed_and_the_error_keeps_every_warning(serve: Any) -> None:
    warnings = [f"store {i} unavailable: " + "x" * 1000 for i in range(5)]
    got = ask(serve, json.dumps(answer(warnings=warnings)).encode())
    assert isinstance(got, PrometheusError)
    assert got.warnings == tuple(warnings)
    assert "store 0" in got.message and "store 2" in got.message
    assert "store 3" not in got.message and got.message.endswith("(and 2 more warnings)")
    assert len(got.message) < 3 * prometheus.WARNING_CHARS + 200


def test_credentials_in_a_warning_are_never_shown(serve: Any) -> None:
    """A warning may quote a store's URL with its userinfo, or a header that echoes the
    resource's own token: neither reaches the message nor the error's warnings."""
    token = "s3cr3t-token-value"
    options = RequestOptions(headers={"Authorization": f"Bearer {token}"}, secrets=(token,))
    warnings = [
        'remote_read: Post "https://reader:hunter2@store.example:443/api/v1/read": EOF',
        f"store answered 401 to Bearer {token}\nsecond line",
    ]
    got = ask(serve, json.dumps(answer(warnings=warnings)).encode(), options=options)
    assert isinstance(got, PrometheusError) and got.kind == FailureKind.PARTIAL_RESPONSE
    for text in (got.message, *got.warnings):
        assert "hunter2" not in text and "reader:" not in text and token not in text, text
        assert "\n" not in text
    assert "https://[redacted]@store.example:443" in got.warnings[0]
    assert "Bearer [redacted] second line" in got.warnings[1]


def large(head: str, tail: str) -> bytes:
    """A matrix answer above the size decoded on the worker thread, laid out as the server
    writes it: `head` before `"data"`, `tail` after it."""
    data = json.dumps(matrix(series=200, points=1_000))
    body = f'{{"status":"success",{head}"data":{data}{tail}}}'.encode()
    assert len(body) >= prometheus.DECODE_IN_THREAD_BYTES
    return body


@pytest.mark.parametrize(
    ("body", "partial"),
    [
        pytest.param(large("", f',"warnings":{json.dumps([REMOTE_READ])}'), True, id="warnings"),
        pytest.param(large('"isPartial":true,', ""), True, id="vm-partial"),
        pytest.param(large('"isPartial":false,', ""), False, id="vm-whole"),
        pytest.param(large("", f',"infos":{json.dumps([MONOTONICITY])}'), False, id="infos"),
    ],
)
def test_large_answers_decoded_series_by_series_keep_what_says_data_is_missing(
    monkeypatch: pytest.MonkeyPatch, serve: Any, body: bytes, partial: bool
) -> None:
    """The large-answer decoder reads Prometheus' and VictoriaMetrics' layouts series by
    series (VictoriaMetrics' isPartial before `data` used to send it to the whole-tree
    decode) and keeps the warnings after the result and the flag before it."""
    by_series: list[int] = []
    original = prometheus._decode_matrix_by_series

    def recorded(*args: Any) -> Any:
        found = original(*args)
        by_series.append(len(found["data"]["result"]))
        return found

    monkeypatch.setattr(prometheus, "_decode_matrix_by_series", recorded)
    got = ask(serve, body)
    assert by_series == [200]
    if partial:
        assert isinstance(got, PrometheusError) and got.kind == FailureKind.PARTIAL_RESPONSE
    else:
        assert isinstance(got, list) and len(got) == 200


def test_missing_data_reads_only_what_says_data_is_missing() -> None:
    assert prometheus.missing_data({"status": "success", "data": {}}) == ()
    assert prometheus.missing_data({"warnings": "one text, not a list"}) == (
        "one text, not a list",
    )
    assert prometheus.missing_data({"warnings": [MONOTONICITY, " ", None]}) == ("None",)
    # VictoriaMetrics' flag first, whatever else is said.
    assert prometheus.missing_data({"isPartial": True, "warnings": [REMOTE_READ]}) == (
        "isPartial: true",
        REMOTE_READ,
    )
    assert prometheus.missing_data({"isPartial": "true"}) == ()  # only the JSON boolean


def _partial_server(serve: Any) -> Any:
    """A Prometheus whose every answer carries all series asked for (none here) and a
    remote_read warning."""

    async def handler(_: web.Request) -> web.StreamResponse:
        return web.json_response(answer(warnings=[REMOTE_READ]))

    return serve(handler)


def test_perfbaseline_on_a_partial_answer_is_inconclusive_with_the_warning(serve: Any) -> None:
    spec = PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "svc"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Concurrent",
            "analysis": {"interval": "1m", "window": "20m", "step": "30s", "sustainFor": "3m"},
            "metrics": [
                {
                    "name": "errors",
                    "type": "ErrorRate",
                    "counter": "inference_requests_total",
                    "errorMatchers": {"code": "5.."},
                    "thresholds": {"ratio": {"max": 0.01}},
                }
            ],
        }
    )

    async def scenario() -> dict[str, Any]:
        runner, url = await _partial_server(serve)
        try:
            return await replay_perfbaseline(spec, EvaluateOptions(prometheus=url, at=AT))
        finally:
            await runner.cleanup()

    status = asyncio.run(scenario())
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert status["verdict"] == "Inconclusive"
    assert (ready["status"], ready["reason"]) == ("False", "PrometheusPartialResponse")
    assert REMOTE_READ in ready["message"]


def test_capacityplan_on_a_partial_answer_is_unverified_with_the_warning(serve: Any) -> None:
    spec = CapacityPlanSpec.model_validate(
        {"traffic": {"query": "sum(rate(inference_requests_total[5m]))"}, "history": "1d"}
    )

    async def scenario() -> Any:
        runner, url = await _partial_server(serve)
        try:
            async with PrometheusClient(url) as client:
                return await evaluate_capacity(spec, None, {}, AT, client)
        finally:
            await runner.cleanup()

    outcome = asyncio.run(scenario())
    assert outcome.verdict == "Unverified"
    ready = next(c for c in outcome.conditions if c.type == "Ready")
    assert (ready.status.value, ready.reason) == ("False", "PrometheusPartialResponse")
    assert REMOTE_READ in ready.message
