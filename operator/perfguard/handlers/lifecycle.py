"""Operator start-up and shutdown: settings, clients, the HTTP server."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from aiohttp import web

from perfguard import IMPORTED_AT
from perfguard.config import OperatorConfig
from perfguard.handlers.diffbase import LeanAnnotationsDiffBaseStorage
from perfguard.handlers.runtime import Runtime, get_runtime, set_runtime
from perfguard.memory import limit_malloc_arenas
from perfguard.observability import OperatorMetrics, configure_logging
from perfguard.sources.envparity_reader import ParityReader
from perfguard.sources.kubernetes_api import StatusWriter, load_client
from perfguard.sources.nodes import NodeReader
from perfguard.sources.prometheus import new_session
from perfguard.sources.workloads import WorkloadReader
from perfguard.webserver import start

_http: web.AppRunner | None = None


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod: the service account; elsewhere: KUBECONFIG as set now.

    Kopf's default login goes through the kubernetes client, which reads KUBECONFIG once
    at import time; these readers take the environment the operator was started with.
    """
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    return info or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _http
    config = OperatorConfig.from_env()
    configure_logging(config.log_level, json=config.log_json)
    # Before the evaluations start their worker threads (see perfguard.memory).
    limit_malloc_arenas()
    # Kopf's default keeps handler progress in status.kopf, which our structural schemas
    # prune; annotations under our own prefix survive. Only change-detecting handlers
    # (on.create/update/delete, of which there are none) read these two storages, but Kopf
    # builds the diff-base on every watch event: the lean one skips copying the status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="perfguard.dev")
    settings.persistence.diffbase_storage = LeanAnnotationsDiffBaseStorage(
        prefix="perfguard.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "perfguard.dev/finalizer"
    # Our Events are explicit (kopf.event); of Kopf's own log lines only errors, such as
    # a crashed daemon, are worth an Event on the object.
    settings.posting.level = logging.ERROR
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    runtime = Runtime(config=config, metrics=OperatorMetrics(), started_at=IMPORTED_AT)
    # PERFGUARD_EVALUATION_SLOTS, checked by `perfguard run` before Kopf starts.
    slots = config.evaluation_slots
    runtime.evaluation_slots = asyncio.Semaphore(slots) if slots > 0 else None
    client = load_client()
    runtime.status_writer = StatusWriter(client)
    runtime.workloads = WorkloadReader(client)
    runtime.parity = ParityReader(client)
    runtime.nodes = NodeReader(client)
    # One pooled session for every Prometheus query: connections are reused across
    # resources and evaluations (see config.EVALUATION_SLOTS for its size).
    runtime.http = new_session(limit=64)
    set_runtime(runtime)
    _http = await start(runtime)
    runtime.started = True


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    if _http is not None:
        await _http.cleanup()
    runtime = get_runtime()
    if runtime.http is not None:
        await runtime.http.close()
