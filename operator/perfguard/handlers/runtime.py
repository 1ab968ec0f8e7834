"""What every handler shares at run time: configuration, clients, metrics, health."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from perfguard.config import OperatorConfig
from perfguard.observability import OperatorMetrics
from perfguard.sources.envparity_reader import ParityReader
from perfguard.sources.kubernetes_api import StatusWriter
from perfguard.sources.nodes import NodeReader
from perfguard.sources.workloads import WorkloadReader


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    namespace: str
    name: str


@dataclass
class Runtime:
    config: OperatorConfig
    metrics: OperatorMetrics
    status_writer: StatusWriter | None = None
    workloads: WorkloadReader | None = None
    parity: ParityReader | None = None
    nodes: NodeReader | None = None
    http: aiohttp.ClientSession | None = None
    started: bool = False
    # time.monotonic() when the operator process started (perfguard.IMPORTED_AT; by
    # default, when the runtime was made).
    started_at: float = field(default_factory=time.monotonic)
    # At most this many evaluations query and judge at once (None: no bound). A burst of
    # due resources (start-up, a stalled loop) waits here rather than in the HTTP pool,
    # where the wait would count against each query's timeout.
    evaluation_slots: asyncio.Semaphore | None = None
    # Each running daemon's wake-up event: set it to evaluate that resource now.
    wakers: dict[ResourceRef, asyncio.Event] = field(default_factory=dict)


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not initialised (startup handler not run)")
    return _runtime
