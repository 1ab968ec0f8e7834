"""The canary gates' decisions (perfguard.gates) and their HTTP layer (perfguard.webserver).

The decisions are pure and table-tested here; tests/e2e/test_gates.py proves the same
endpoints against a real kube-apiserver.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from perfguard.config import OperatorConfig
from perfguard.gates import (
    GateTarget,
    PayloadError,
    judge_envparity,
    judge_perfbaseline,
    judge_perfbaseline_rollback,
    parse_flagger_payload,
)
from perfguard.handlers.runtime import Runtime
from perfguard.observability import OperatorMetrics
from perfguard.times import format_time
from perfguard.webserver import ObjectReadError, build_app

PB = GateTarget(kind="PerfBaseline", namespace="ml-prod", name="resnet")


def flagger(**extra: Any) -> dict[str, Any]:
    """A payload as Flagger sends it (pkg/apis/flagger/v1beta1 CanaryWebhookPayload)."""
    return {
        "name": "resnet",
        "namespace": "ml-prod",
        "phase": "Progressing",
        "checksum": "6b9bcd8f4d",
        **extra,
    }


# What the reconcile loop writes when an evaluation raises: the verdict field is left as the
# previous evaluation wrote it.
EVALUATION_ERROR = {
    "type": "Ready",
    "status": "False",
    "reason": "EvaluationError",
    "message": "KeyError: 'p95'",
}


# The gates' clock in the table tests (passed as `now`): statuses are built when pytest
# collects the tables, which may be many minutes before a test runs.
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def evaluated(ago: timedelta | None, at: datetime) -> dict[str, Any]:
    """A status's lastEvaluationTime, `ago` before `at`; None: no stamp."""
    if ago is None:
        return {}
    return {"lastEvaluationTime": format_time(at - ago)}


RECENT = timedelta(seconds=30)
# A PerfBaseline at the default 1m interval, operator at the default 5m statusRefresh:
# stale after 3 × 1m + 5m = 8m.
STALE = timedelta(minutes=9)


def pb(
    verdict: str | None,
    *,
    identity: str | None = "abc123",
    source: str = "WorkloadRef",
    generation: int = 2,
    observed: int | None = 2,
    message: str | None = None,
    error: bool = False,
    ago: timedelta | None = RECENT,
    interval: str | None = None,
    at: datetime = NOW,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if verdict is not None:
        status["verdict"] = verdict
        status.update(evaluated(ago, at))
    if identity is not None:
        status["candidate"] = {"identity": identity, "source": source}
    if observed is not None:
        status["observedGeneration"] = observed
    if message is not None:
        status["message"] = message
    if error:
        status["conditions"] = [EVALUATION_ERROR]
    obj: dict[str, Any] = {
        "metadata": {"name": "resnet", "namespace": "ml-prod", "generation": generation},
        "status": status,
    }
    if interval is not None:
        obj["spec"] = {"analysis": {"interval": interval}}
    return obj


# A PerfBaseline following a Flagger canary by labels (spec.candidate matchLabels).
LABELS_PASS = pb("Pass", identity="app=podinfo", source="Labels")
LABELS_FAIL = pb("Fail", identity="app=podinfo", source="Labels")
LABELS_OLD_FAIL = pb("Fail", identity="app=podinfo", source="Labels", ago=STALE)


# ----------------------------------------------------------------- payload


def test_payload_defaults_to_the_canarys_name_and_namespace() -> None:
    target = parse_flagger_payload(flagger(), "PerfBaseline")
    assert (target.namespace, target.name, target.candidate) == ("ml-prod", "resnet", None)
    assert target.canary == "ml-prod/resnet"
    assert target.phase == "Progressing"
    assert target.plural == "perfbaselines"


@pytest.mark.parametrize(
    ("metadata", "kind", "expected"),
    [
        ({"perfbaseline": "resnet-latency"}, "PerfBaseline", ("ml-prod", "resnet-latency")),
        ({"perfbaseline": "perf/resnet"}, "PerfBaseline", ("perf", "resnet")),
        ({"name": "other", "namespace": "perf"}, "PerfBaseline", ("perf", "other")),
        ({"name": "other"}, "PerfBaseline", ("ml-prod", "other")),
        ({"envparity": "ml-staging/inference"}, "EnvParity", ("ml-staging", "inference")),
        # The PerfBaseline key does not name an EnvParity.
        ({"perfbaseline": "x"}, "EnvParity", ("ml-prod", "resnet")),
    ],
)
def test_metadata_names_the_resource(
    metadata: dict[str, str], kind: Any, expected: tuple[str, str]
) -> None:
    target = parse_flagger_payload(flagger(metadata=metadata), kind)
    assert (target.namespace, target.name) == expected
    assert target.kind == kind


def test_metadata_candidate_is_the_expected_identity() -> None:
    target = parse_flagger_payload(flagger(metadata={"candidate": "7d9f8c6b5"}), "PerfBaseline")
    assert target.candidate == "7d9f8c6b5"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "JSON object"),
        (None, "JSON object"),
        ({"namespace": "ml-prod"}, "name"),
        ({"name": "resnet", "namespace": ""}, "namespace"),
        ({"name": "resnet", "namespace": 3}, "namespace"),
        (flagger(metadata=["a"]), "metadata"),
        (flagger(metadata={"candidate": 7}), "metadata.candidate"),
        # An empty candidate is not "not checked": a Pass for any candidate would promote.
        (flagger(metadata={"candidate": ""}), "metadata.candidate is empty"),
        (flagger(metadata={"candidate": "  "}), "metadata.candidate is empty"),
        (flagger(phase=1), "phase"),
        (flagger(metadata={"perfbaseline": "../../secrets/x"}), "not a valid Kubernetes name"),
        (flagger(metadata={"perfbaseline": "Resnet"}), "not a valid Kubernetes name"),
        (flagger(metadata={"namespace": "a.b"}), "not a valid Kubernetes name"),
    ],
)
def test_malformed_payloads_are_refused(payload: Any, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_flagger_payload(payload, "PerfBaseline")


# ----------------------------------------------------------------- PerfBaseline


@pytest.mark.parametrize(
    ("obj", "candidate", "status", "reason"),
    [
        (pb("Pass"), None, 200, "Passed"),
        (pb("Pass"), "abc123", 200, "Passed"),
        (pb("Pass"), "def456", 409, "StaleCandidate"),
        (pb("Pass", identity=None), "abc123", 409, "StaleCandidate"),
        (pb("Pass", observed=1), None, 409, "SpecNotEvaluated"),
        (pb("Pass", observed=None), None, 409, "SpecNotEvaluated"),
        (pb("Fail"), None, 412, "Regressed"),
        (pb("Fail"), "abc123", 412, "Regressed"),
        # A Fail about an older candidate says nothing about this one: not yet, not no.
        (pb("Fail"), "def456", 409, "StaleCandidate"),
        (pb("Inconclusive"), None, 409, "Inconclusive"),
        (pb("Inconclusive"), "abc123", 409, "Inconclusive"),
        (pb(None), None, 409, "NotEvaluated"),
        ({"metadata": {"generation": 1}}, None, 409, "NotEvaluated"),
        (pb("Sideways"), None, 409, "UnknownVerdict"),
        # The latest evaluation raised: an earlier Pass does not promote; a Fail still stops.
        (pb("Pass", error=True), None, 409, "EvaluationFailed"),
        (pb("Pass", error=True), "abc123", 409, "EvaluationFailed"),
        # A verdict the operator stopped refreshing: not evaluated any more, not promoted.
        (pb("Pass", ago=STALE), None, 409, "StaleVerdict"),
        (pb("Pass", ago=STALE), "abc123", 409, "StaleVerdict"),
        (pb("Fail", ago=STALE), None, 409, "StaleVerdict"),
        (pb("Pass", ago=None), None, 409, "StaleVerdict"),
        # 9 minutes is recent for a 10-minute interval (3 × 10m + 5m).
        (pb("Pass", ago=STALE, interval="10m"), None, 200, "Passed"),
        # A stamp in the future: its age is unknown beyond a minute of clock skew.
        (pb("Pass", ago=-timedelta(seconds=60)), None, 200, "Passed"),
        (pb("Pass", ago=-timedelta(seconds=61)), None, 409, "ClockSkew"),
        (pb("Pass", ago=-timedelta(days=1)), "abc123", 409, "ClockSkew"),
        # A label identity (spec.candidate) is the same for every revision: a hash can
        # never match it (a 409 would hold the canary for ever); the label set itself can.
        (LABELS_PASS, "7d9f8c6b5", 400, "InvalidPayload"),
        (LABELS_PASS, "app=podinfo", 200, "Passed"),
        (pb("Pass", identity="app=podinfo", source="Workload"), "7d9f8c6b5", 400, "InvalidPayload"),
        (None, None, 404, "NotFound"),
    ],
)
def test_perfbaseline_gate(
    obj: dict[str, Any] | None, candidate: str | None, status: int, reason: str
) -> None:
    target = GateTarget("PerfBaseline", "ml-prod", "resnet", candidate=candidate)
    decision = judge_perfbaseline(obj, target, now=NOW)
    assert (decision.status, decision.reason) == (status, reason), decision
    assert decision.allowed is (status == 200)
    assert "\n" not in decision.line()
    assert decision.line().startswith(f"{reason}: ")
    assert "PerfBaseline ml-prod/resnet" in decision.message


def test_refusals_carry_the_status_message_on_one_line() -> None:
    obj = pb("Fail", message="latency p95 +12 ms\n(CI95 [8, 16] ms)   over 5 ms")
    decision = judge_perfbaseline(obj, PB, now=NOW)
    assert decision.status == 412
    assert "latency p95 +12 ms (CI95 [8, 16] ms) over 5 ms" in decision.line()
    assert "candidate abc123" in decision.line()
    long = judge_perfbaseline(pb("Inconclusive", message="x" * 5000), PB, now=NOW)
    assert len(long.line()) < 500


def test_stale_candidate_names_both_candidates() -> None:
    decision = judge_perfbaseline(pb("Pass"), GateTarget("PerfBaseline", "n", "x", "new1"), now=NOW)
    assert "candidate abc123, not new1" in decision.message


@pytest.mark.parametrize(
    ("obj", "candidate", "status", "reason"),
    [
        (pb("Fail"), None, 200, "Regressed"),
        (pb("Fail"), "abc123", 200, "Regressed"),
        (pb("Fail"), "def456", 409, "StaleCandidate"),
        (pb("Fail", observed=1), None, 409, "SpecNotEvaluated"),
        (pb("Pass"), None, 409, "NoRegression"),
        (pb("Inconclusive"), None, 409, "NoRegression"),
        # A failed evaluation after a Fail keeps rolling back (the safe direction).
        (pb("Fail", error=True), None, 200, "Regressed"),
        (LABELS_FAIL, None, 200, "Regressed"),
        # An old Fail (the operator stopped evaluating) rolls back only the canary it is
        # tied to: named by its pod-template hash. A label identity, or no candidate in the
        # webhook, cannot tell this revision from the one that failed.
        (pb("Fail", ago=STALE), "abc123", 200, "Regressed"),
        (pb("Fail", ago=STALE), None, 409, "StaleVerdict"),
        (pb("Fail", ago=None), None, 409, "StaleVerdict"),
        (pb("Fail", ago=-timedelta(days=1)), None, 409, "ClockSkew"),
        (LABELS_OLD_FAIL, None, 409, "StaleVerdict"),
        (LABELS_OLD_FAIL, "app=podinfo", 409, "StaleVerdict"),
        (LABELS_OLD_FAIL, "7d9f8c6b5", 400, "InvalidPayload"),
        (pb(None), None, 409, "NotEvaluated"),
        (None, None, 404, "NotFound"),
    ],
)
def test_rollback_gate_answers_200_only_on_a_regression(
    obj: dict[str, Any] | None, candidate: str | None, status: int, reason: str
) -> None:
    target = GateTarget("PerfBaseline", "ml-prod", "resnet", candidate=candidate)
    decision = judge_perfbaseline_rollback(obj, target, now=NOW)
    assert (decision.status, decision.reason) == (status, reason), decision


# ----------------------------------------------------------------- EnvParity


def envp(
    verdict: str | None,
    drift: float | None = 0.0,
    observed: int = 1,
    error: bool = False,
    ago: timedelta | None = RECENT,
    at: datetime = NOW,
) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": observed}
    if error:
        status["conditions"] = [EVALUATION_ERROR]
    if verdict:
        status["verdict"] = verdict
        status.update(evaluated(ago, at))
    if drift is not None:
        status["driftPercent"] = drift
    return {"metadata": {"generation": 1}, "status": status}


@pytest.mark.parametrize(
    ("obj", "status", "reason"),
    [
        (envp("InSync"), 200, "InSync"),
        (envp("Drifted", 12.5), 412, "Drifted"),
        (envp("Unverified", None), 409, "Unverified"),
        (envp("InSync", observed=0), 409, "SpecNotEvaluated"),
        (envp(None), 409, "NotEvaluated"),
        (envp("InSync", error=True), 409, "EvaluationFailed"),
        # EnvParity's default interval is 5m: stale after 3 × 5m + 5m = 20m.
        (envp("InSync", ago=timedelta(minutes=19)), 200, "InSync"),
        (envp("InSync", ago=timedelta(minutes=21)), 409, "StaleVerdict"),
        (None, 404, "NotFound"),
    ],
)
def test_envparity_gate(obj: dict[str, Any] | None, status: int, reason: str) -> None:
    target = GateTarget("EnvParity", "ml-prod", "inference")
    decision = judge_envparity(obj, target, now=NOW)
    assert (decision.status, decision.reason) == (status, reason), decision
    if reason == "Drifted":
        assert "drift 12.5%" in decision.message


# ----------------------------------------------------------------- HTTP layer


class FakeReader:
    def __init__(self, objects: dict[tuple[str, str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str, str]] = []
        self.fail = False

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append((plural, namespace, name))
        if self.fail:
            raise ObjectReadError("HTTP 403 Forbidden")
        return self.objects.get((plural, namespace, name))


def run_app(
    reader: FakeReader,
    scenario: Callable[[TestClient[Any, Any], Runtime], Awaitable[None]],
    config: OperatorConfig | None = None,
) -> None:
    runtime = Runtime(config=config or OperatorConfig(), metrics=OperatorMetrics())

    async def main() -> None:
        async with TestClient(TestServer(build_app(runtime, reader))) as client:
            await scenario(client, runtime)

    asyncio.run(main())


def test_http_gate_answers_with_the_decision_on_one_line() -> None:
    reader = FakeReader(
        {
            ("perfbaselines", "ml-prod", "resnet"): pb("Pass", at=datetime.now(UTC)),
            ("perfbaselines", "ml-prod", "bad"): pb(
                "Fail", message="p95 +12 ms", at=datetime.now(UTC)
            ),
            ("envparities", "ml-prod", "inference"): envp("Drifted", 3.0, at=datetime.now(UTC)),
        }
    )

    async def scenario(client: TestClient[Any, Any], runtime: Runtime) -> None:
        response = await client.post(
            "/gates/flagger/perfbaseline", json=flagger(metadata={"candidate": "abc123"})
        )
        assert response.status == 200
        assert await response.text() == (
            "Passed: PerfBaseline ml-prod/resnet: Pass for candidate abc123\n"
        )
        response = await client.post(
            "/gates/flagger/perfbaseline", json=flagger(metadata={"perfbaseline": "bad"})
        )
        assert response.status == 412
        body = await response.text()
        assert body.count("\n") == 1 and body.startswith("Regressed: ")
        response = await client.post(
            "/gates/flagger/perfbaseline/rollback", json=flagger(metadata={"perfbaseline": "bad"})
        )
        assert response.status == 200
        response = await client.post(
            "/gates/flagger/envparity", json=flagger(metadata={"envparity": "inference"})
        )
        assert response.status == 412
        response = await client.post("/gates/flagger/perfbaseline", data=b"not json")
        assert response.status == 400
        assert (await response.text()).startswith("InvalidPayload: ")
        response = await client.post("/gates/flagger/perfbaseline", data=b"x" * 70_000)
        assert response.status == 400
        # Nested arrays within the size limit: a refusal, not a 500 with a traceback.
        response = await client.post(
            "/gates/flagger/perfbaseline", data=b"[" * 30_000 + b"]" * 30_000
        )
        assert response.status == 400
        assert await response.text() == "InvalidPayload: the body is nested too deeply\n"
        response = await client.post(
            "/gates/flagger/perfbaseline", json=flagger(metadata={"candidate": ""})
        )
        assert response.status == 400
        assert (await response.text()).startswith("InvalidPayload: metadata.candidate is empty")
        response = await client.get("/gates/flagger/perfbaseline")
        assert response.status == 405
        response = await client.post(
            "/gates/flagger/perfbaseline", json=flagger(metadata={"perfbaseline": "gone"})
        )
        assert response.status == 404
        metrics = await (await client.get("/metrics")).text()
        assert (
            'perfguard_gate_decisions_total{code="200",gate="perfbaseline",reason="Passed"} 1.0'
            in metrics
        )
        assert 'code="412",gate="envparity",reason="Drifted"' in metrics
        assert (
            'perfguard_gate_decisions_total{code="400",gate="perfbaseline",'
            'reason="InvalidPayload"} 4.0' in metrics
        )

    run_app(reader, scenario)
    # Invalid payloads never reach the API.
    assert ("perfbaselines", "ml-prod", "resnet") in reader.calls
    assert len(reader.calls) == 5


def test_http_gate_reports_an_unreadable_api_as_502() -> None:
    reader = FakeReader({})
    reader.fail = True

    async def scenario(client: TestClient[Any, Any], runtime: Runtime) -> None:
        response = await client.post("/gates/flagger/perfbaseline", json=flagger())
        assert response.status == 502
        assert await response.text() == (
            "ApiUnavailable: cannot read PerfBaseline ml-prod/resnet: HTTP 403 Forbidden\n"
        )

    run_app(reader, scenario)


def test_health_endpoints() -> None:
    async def scenario(client: TestClient[Any, Any], runtime: Runtime) -> None:
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 503
        runtime.started = True
        assert (await client.get("/readyz")).status == 200

    run_app(FakeReader({}), scenario)


def test_the_app_can_be_built_twice_on_one_registry() -> None:
    """A second app on the same registry reuses the gate counter (registering it again
    would raise), and both apps count into it."""
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    reader = FakeReader({("perfbaselines", "ml-prod", "resnet"): pb("Pass", at=datetime.now(UTC))})
    apps = [build_app(runtime, reader), build_app(runtime, reader)]

    async def main() -> str:
        for app in apps:
            async with TestClient(TestServer(app)) as client:
                response = await client.post("/gates/flagger/perfbaseline", json=flagger())
                assert response.status == 200
        async with TestClient(TestServer(apps[1])) as client:
            return await (await client.get("/metrics")).text()

    exposition = asyncio.run(main())
    counted = [
        line
        for line in exposition.splitlines()
        if line.startswith("perfguard_gate_decisions_total{")
    ]
    assert len(counted) == 1, counted
    assert 'gate="perfbaseline"' in counted[0] and 'code="200"' in counted[0]
    assert counted[0].endswith(" 2.0")


def test_every_409_reason_is_in_the_gating_docs() -> None:
    """docs/gating.md's answer table lists each reason a gate can answer 409 with."""
    doc = (Path(__file__).parents[2] / "docs" / "gating.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| 409 |"))
    documented = set(row.split("|")[2].replace("`", "").replace(",", " ").split())
    envp = GateTarget(kind="EnvParity", namespace="ml-prod", name="parity")
    objects = [
        variant
        for verdict in (None, "Pass", "Fail", "Inconclusive", "Unverified", "Sideways")
        for variant in (
            pb(verdict),
            pb(verdict, observed=1),
            pb(verdict, identity="other"),
            pb(verdict, error=True),
            pb(verdict, ago=-timedelta(days=1)),
        )
    ]
    objects += [pb("InSync"), pb("Drifted")]
    reasons = set()
    for obj in objects:
        for decision in (
            judge_perfbaseline(obj, replace(PB, candidate="abc123"), now=NOW),
            judge_perfbaseline_rollback(obj, PB, now=NOW),
            judge_envparity(obj, envp, now=NOW),
        ):
            if decision.status == 409:
                reasons.add(decision.reason)
    assert "UnknownVerdict" in reasons and "SpecNotEvaluated" in reasons
    assert reasons <= documented, reasons - documented


def test_a_stale_verdict_says_how_old_it_is_and_the_limit() -> None:
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    obj = pb("Pass")
    obj["status"]["lastEvaluationTime"] = "2026-12-05T11:00:00Z"
    decision = judge_perfbaseline(obj, PB, now=now)
    assert decision.line() == (
        "StaleVerdict: PerfBaseline ml-prod/resnet: verdict Pass was reached 1h ago "
        "(2026-12-05T11:00:00Z), more than 8m (3 × interval + statusRefresh); "
        "is the operator evaluating it?"
    )
    # The operator's statusRefresh moves the limit: 3 × 1m + 1h.
    assert judge_perfbaseline(obj, PB, now=now, status_refresh=timedelta(hours=1)).allowed


@pytest.mark.parametrize(("refresh", "status"), [(None, 409), (timedelta(hours=1), 200)])
def test_http_gate_judges_age_by_the_operators_status_refresh(
    refresh: timedelta | None, status: int
) -> None:
    """A Pass 9 minutes old: stale with the default statusRefresh (limit 8m), recent for an
    operator that rewrites unchanged statuses hourly (limit 1h 3m)."""
    reader = FakeReader(
        {("perfbaselines", "ml-prod", "resnet"): pb("Pass", ago=STALE, at=datetime.now(UTC))}
    )
    config = OperatorConfig() if refresh is None else OperatorConfig(status_refresh=refresh)

    async def scenario(client: TestClient[Any, Any], runtime: Runtime) -> None:
        response = await client.post("/gates/flagger/perfbaseline", json=flagger())
        assert response.status == status, await response.text()

    run_app(reader, scenario, config)
