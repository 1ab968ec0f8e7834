"""What every handler shares at run time: configuration, clients, metrics, health."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from perfguard.config import OperatorConfig
from perfguard.observability import OperatorMetrics
from perfguard.sources.envparity_reader import ParityReader
from perfguard.sources.kubernetes_api import StatusWriter
from perfguard.sources.nodes import NodeReader
from perfguard.sources.workloads import WorkloadReader

# A process whose first daemon starts later than this after its own start was standing by
# (peering) or had nothing to run: its take-over starts then, not at its start.
TAKE_OVER_AFTER_S = 60.0


@dataclass(frozen=True)
class ResourceRef:
    kind: str
    namespace: str
    name: str
    # The metadata.generation of the spec an evaluation judges (set for evaluations only).
    # Not part of the identity: one resource's refs stay equal, and hash alike, across edits.
    generation: int | None = field(default=None, compare=False)


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
    # When this process last began to run daemons: its start, or (a standby's take-over, a
    # pause's end) when the first daemon started after none ran. See daemon_started.
    resumed_at: float = math.nan
    daemons_running: int = 0
    # The latest evaluation time (`status.lastEvaluationTime`) among the resources whose
    # daemons this process started: about when the previous operator stopped evaluating.
    latest_evaluation_seen: datetime | None = None
    # At most this many evaluations query and judge at once (None: no bound). A burst of
    # due resources (start-up, a stalled loop) waits here rather than in the HTTP pool,
    # where the wait would count against each query's timeout.
    evaluation_slots: asyncio.Semaphore | None = None
    # Each running daemon's wake-up event: set it to evaluate that resource now.
    wakers: dict[ResourceRef, asyncio.Event] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if math.isnan(self.resumed_at):
            self.resumed_at = self.started_at

    def daemon_started(self, now: float | None = None) -> None:
        """Count a daemon in. The first after none ran starts a take-over (resumed_at):
        unless it comes within TAKE_OVER_AFTER_S of the process' start, which is then the
        start of the restart (the imports and Kopf's start-up come before any daemon)."""
        now = time.monotonic() if now is None else now
        if self.daemons_running == 0 and now - self.started_at > TAKE_OVER_AFTER_S:
            self.resumed_at = now
        self.daemons_running += 1

    def saw_evaluation(self, at: datetime, now: datetime) -> None:
        """Note a status' evaluation time as a daemon starts on it (one ahead of `now`, from
        another clock, counts as `now`)."""
        at = min(at, now)
        if self.latest_evaluation_seen is None or at > self.latest_evaluation_seen:
            self.latest_evaluation_seen = at


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not initialised (startup handler not run)")
    return _runtime
