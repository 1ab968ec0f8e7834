"""What every handler shares at run time: configuration, clients, metrics, health."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from perfguard.config import OperatorConfig
from perfguard.observability import OperatorMetrics
from perfguard.sources.kubernetes_api import StatusWriter
from perfguard.sources.workloads import WorkloadReader


@dataclass
class Runtime:
    config: OperatorConfig
    metrics: OperatorMetrics
    status_writer: StatusWriter | None = None
    workloads: WorkloadReader | None = None
    http: aiohttp.ClientSession | None = None
    started: bool = False


_runtime: Runtime | None = None


def set_runtime(runtime: Runtime) -> None:
    global _runtime
    _runtime = runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError("the operator runtime is not initialised (startup handler not run)")
    return _runtime
