"""The operator's HTTP endpoints: health, its own Prometheus metrics, and the canary gates.

GET  /healthz                              liveness: the event loop answers
GET  /readyz                               readiness: the operator has started
GET  /metrics                              the operator's metrics (perfguard.observability)
POST /gates/flagger/perfbaseline           Flagger webhook: 200 on Pass for the candidate
POST /gates/flagger/perfbaseline/rollback  Flagger `rollback` hook: 200 on Fail (roll back)
POST /gates/flagger/envparity              Flagger webhook: 200 when InSync

The gates read the named resource through the Kubernetes API on every call (no cache: a
promotion must not go ahead on a verdict the operator has since replaced) and answer with
the decision of perfguard.gates, one line of text. They only read, so every replica answers
them, the standby of a peering pair included.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import weakref
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter

from perfguard import GROUP, VERSION
from perfguard.gates import (
    BAD_REQUEST,
    Decision,
    GateTarget,
    Kind,
    PayloadError,
    judge_envparity,
    judge_perfbaseline,
    judge_perfbaseline_rollback,
    parse_flagger_payload,
    unavailable,
)
from perfguard.handlers.runtime import Runtime
from perfguard.observability import Exposition, resource_logger

T = TypeVar("T")


class Judge(Protocol):
    def __call__(
        self,
        obj: Mapping[str, Any] | None,
        target: GateTarget,
        *,
        now: datetime | None = None,
        status_refresh: timedelta = ...,
    ) -> Decision: ...


_MAX_BODY = 64 * 1024


class ObjectReadError(Exception):
    """The Kubernetes API could not answer (unreachable, forbidden, server error)."""


class ObjectReader(Protocol):
    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The perfguard.dev object, or None when it does not exist."""
        ...


# Threads of their own for what the HTTP server answers: asyncio's default executor also
# runs every Kubernetes call of the evaluations (status patches, reads). While the API
# server hangs, those calls hold all its threads (6 on 2 cores) for their whole timeout, and
# a /metrics render queued behind them took minutes: scrapes timed out, and
# PerfguardOperatorDown fired with the operator up. A gate's read is queued apart likewise.
_METRICS_RENDER: Final = concurrent.futures.ThreadPoolExecutor(
    1, thread_name_prefix="perfguard-metrics"
)
_GATE_READS: Final = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="perfguard-gates")


async def _in(
    executor: concurrent.futures.Executor, call: Callable[..., T], *args: Any, **kwargs: Any
) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        executor, functools.partial(call, *args, **kwargs)
    )


class KubernetesObjectReader:
    """Reads perfguard resources through the official client, in a worker thread of the
    gates' own (not the evaluations')."""

    def __init__(self, client: Any, timeout: float = 10.0) -> None:
        from kubernetes.client import CustomObjectsApi

        self._custom = CustomObjectsApi(client)
        self._timeout = timeout

    async def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            obj: dict[str, Any] = await _in(
                _GATE_READS,
                self._custom.get_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                _request_timeout=self._timeout,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise ObjectReadError(f"HTTP {error.status} {error.reason}") from error
        except (HTTPError, OSError) as error:
            raise ObjectReadError(f"{type(error).__name__}: {error}") from error
        return obj


_decision_counters: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = (
    weakref.WeakKeyDictionary()
)


def _decisions(registry: CollectorRegistry) -> Counter:
    """perfguard_gate_decisions_total, once per registry (build_app may run more than once)."""
    counter = _decision_counters.get(registry)
    if counter is None:
        counter = Counter(
            "perfguard_gate_decisions_total",
            "Canary gate answers by gate, HTTP status code and reason.",
            ["gate", "code", "reason"],
            registry=registry,
        )
        _decision_counters[registry] = counter
    return counter


def build_app(runtime: Runtime, objects: ObjectReader | None = None) -> web.Application:
    """The HTTP application. Without `objects`, the gates read through a client loaded from
    the environment (in-cluster service account, else KUBECONFIG) on their first call."""
    decisions = _decisions(runtime.metrics.registry)
    reader: list[ObjectReader] = [objects] if objects is not None else []
    reader_lock = asyncio.Lock()

    async def get_reader() -> ObjectReader:
        async with reader_lock:
            if not reader:
                from perfguard.sources.kubernetes_api import load_client

                client = await _in(_GATE_READS, load_client)
                reader.append(KubernetesObjectReader(client))
        return reader[0]

    async def healthz(_: web.Request) -> web.Response:
        # Answering at all proves the event loop is not wedged.
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if not runtime.started:
            return web.Response(status=503, text="starting\n")
        return web.Response(text="ready\n")

    exposition = Exposition(runtime.metrics.registry)

    async def metrics(_: web.Request) -> web.Response:
        # A large fleet's page (tens of thousands of series) takes a while: rendered in a
        # worker thread, so the event loop serves the evaluations meanwhile.
        body = await _in(_METRICS_RENDER, exposition.render)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    def gate(name: str, kind: Kind, judge: Judge) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            decision, target = await _decide(request, kind, judge)
            decisions.labels(name, str(decision.status), decision.reason).inc()
            log = resource_logger(
                kind, target.namespace if target else None, target.name if target else None
            )
            log.info(
                "gate decision",
                gate=name,
                status=decision.status,
                reason=decision.reason,
                canary=target.canary if target else None,
                phase=target.phase if target else None,
                candidate=target.candidate if target else None,
            )
            return web.Response(status=decision.status, text=decision.line() + "\n")

        return handle

    async def _decide(
        request: web.Request, kind: Kind, judge: Judge
    ) -> tuple[Decision, GateTarget | None]:
        try:
            raw = await request.read()  # aiohttp enforces client_max_size
        except web.HTTPRequestEntityTooLarge:
            return Decision(BAD_REQUEST, "InvalidPayload", "the body is too large"), None
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            return Decision(BAD_REQUEST, "InvalidPayload", "the body is not JSON"), None
        except RecursionError:
            # Arrays nested tens of thousands deep fit in the size limit: no webhook
            # payload is like that, and the parser gives up on it.
            return Decision(BAD_REQUEST, "InvalidPayload", "the body is nested too deeply"), None
        try:
            target = parse_flagger_payload(payload, kind)
        except PayloadError as error:
            return Decision(BAD_REQUEST, "InvalidPayload", str(error)), None
        try:
            obj = await (await get_reader()).get(target.plural, target.namespace, target.name)
        except ObjectReadError as error:
            return unavailable(target, str(error)), target
        except Exception as error:  # e.g. no kubeconfig at all: answer, do not crash
            return unavailable(target, f"{type(error).__name__}: {error}"), target
        # The operator's own statusRefresh sets how old a healthy verdict may be.
        return judge(obj, target, status_refresh=runtime.config.status_refresh), target

    app = web.Application(client_max_size=_MAX_BODY)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post(
        "/gates/flagger/perfbaseline", gate("perfbaseline", "PerfBaseline", judge_perfbaseline)
    )
    app.router.add_post(
        "/gates/flagger/perfbaseline/rollback",
        gate("perfbaseline-rollback", "PerfBaseline", judge_perfbaseline_rollback),
    )
    app.router.add_post("/gates/flagger/envparity", gate("envparity", "EnvParity", judge_envparity))
    return app


async def start(runtime: Runtime, objects: ObjectReader | None = None) -> web.AppRunner:
    runner = web.AppRunner(build_app(runtime, objects), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, runtime.config.http_host, runtime.config.http_port)
    await site.start()
    return runner
