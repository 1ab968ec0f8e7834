"""What outlives Kopf at the operator's stop, and so holds the process' exit up.

After Kopf has stopped, `asyncio.run` still waits for the loop's tasks to be cancelled and
for every thread of its default executor (our Kubernetes client calls run there, see
sources.kubernetes_api), and the interpreter then joins every other non-daemon thread
(thread pools included). A thread blocked in an HTTP call keeps the pod alive until its
timeout, and while it does the resources wait for the next operator (docs/reliability.md,
restarts). These functions name what is still running, so the log says why an exit was
slow.
"""

from __future__ import annotations

import asyncio
import atexit
import math
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType
from typing import Any

import structlog

# Frames shown per busy thread, innermost last.
_FRAMES = 3


@dataclass(frozen=True, slots=True)
class Lingering:
    """Tasks not done and non-daemon threads busy, each described in one line."""

    tasks: tuple[str, ...]
    threads: tuple[str, ...]


def _frames(frame: FrameType | None) -> list[traceback.FrameSummary]:
    return list(traceback.extract_stack(frame)) if frame is not None else []


def _idle(stack: list[traceback.FrameSummary]) -> bool:
    """A thread-pool worker waiting for work: it ends as soon as its pool shuts down.

    The pools' queue is a C type, so the worker's own loop is the innermost Python frame.
    """
    if not stack:
        return True
    inner = stack[-1]
    return inner.name == "_worker" and "work_queue.get" in (inner.line or "")


def describe_thread(name: str, stack: list[traceback.FrameSummary]) -> str:
    where = " < ".join(
        f"{s.name} ({s.filename.rsplit('/', 1)[-1]}:{s.lineno})" for s in reversed(stack[-_FRAMES:])
    )
    return f"{name}: {where}" if where else name


def describe_task(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    qualname = getattr(coro, "__qualname__", type(coro).__name__)
    return f"{task.get_name()}: {qualname}"


def lingering(
    tasks: Iterable[asyncio.Task[Any]],
    threads: Iterable[threading.Thread],
    frames: dict[int, FrameType],
    *,
    current: asyncio.Task[Any] | None = None,
) -> Lingering:
    """The tasks (other than `current`) not done, and the non-daemon threads other than
    the main one that are not idle pool workers."""
    busy: list[str] = []
    for thread in threads:
        if thread is threading.main_thread() or thread.daemon or not thread.is_alive():
            continue
        stack = _frames(frames.get(thread.ident or -1))
        if not _idle(stack):
            busy.append(describe_thread(thread.name, stack))
    pending = [describe_task(t) for t in tasks if t is not current and not t.done()]
    return Lingering(tasks=tuple(sorted(pending)), threads=tuple(sorted(busy)))


def lingering_now() -> Lingering:
    """What is still running in this process, seen from a coroutine on its loop."""
    current = asyncio.current_task()
    return lingering(
        asyncio.all_tasks(), threading.enumerate(), sys._current_frames(), current=current
    )


class ExitClock:
    """Seconds since Kopf stopped; from then on, the interpreter's exit (after it joined
    the remaining threads) is logged too."""

    def __init__(self) -> None:
        self.stopped_at = math.nan

    def stop(self) -> None:
        self.stopped_at = time.monotonic()
        atexit.register(self._report_interpreter_exit)

    def seconds(self) -> float:
        return round(time.monotonic() - self.stopped_at, 2)

    def _report_interpreter_exit(self) -> None:
        structlog.get_logger("perfguard.shutdown").info(
            "process exiting", seconds_since_stop=self.seconds()
        )


def report_exit(clock: ExitClock, stage: str) -> None:
    """Log `stage` with the seconds since Kopf stopped and what still runs (tasks, when
    called on the loop, and busy threads). Never raises: it runs in the operator's
    `finally`, where an error would hide Kopf's own or fail a clean exit."""
    try:
        try:
            asyncio.get_running_loop()
            left = lingering_now()
        except RuntimeError:  # the loop is closed: threads only
            left = lingering((), threading.enumerate(), sys._current_frames())
        structlog.get_logger("perfguard.shutdown").info(
            stage,
            seconds_since_stop=clock.seconds(),
            tasks_left=list(left.tasks),
            threads_busy=list(left.threads),
        )
    except Exception:  # a diagnostic must not change how the process ends
        structlog.get_logger("perfguard.shutdown").exception("exit diagnostics failed")
