"""perfguard.shutdown names what still runs after Kopf stopped (what holds the exit up)."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from perfguard.shutdown import Lingering, lingering


def _innermost(thread: threading.Thread) -> str:
    frame = sys._current_frames().get(thread.ident or -1)
    return frame.f_code.co_name if frame is not None else ""


def _until_settled(pool_worker: list[threading.Thread]) -> None:
    """Wait (up to 5 s) until the pool's worker is back waiting for work and the busy
    thread is inside its wait, so the snapshot does not race them."""
    deadline = time.monotonic() + 5
    busy = next(t for t in threading.enumerate() if t.name == "busy")
    while time.monotonic() < deadline:
        if _innermost(busy) == "wait" and all(_innermost(w) == "_worker" for w in pool_worker):
            return
        time.sleep(0.01)
    raise AssertionError("the test's threads did not settle")


def test_busy_threads_and_pending_tasks_are_named_and_idle_pool_workers_are_not() -> None:
    release = threading.Event()

    def patch_status() -> None:  # stands for a blocked HTTP call
        release.wait(timeout=30)

    pool = ThreadPoolExecutor(2, thread_name_prefix="pool")
    pool.submit(lambda: None).result()  # a worker now idle, waiting for work
    busy = threading.Thread(target=patch_status, name="busy")
    background = threading.Thread(target=release.wait, name="background", daemon=True)
    busy.start()
    background.start()
    _until_settled(pool_worker=[t for t in threading.enumerate() if t.name.startswith("pool")])

    async def scenario() -> Lingering:
        pending = asyncio.create_task(asyncio.sleep(30), name="daemon-of-pb-1")
        await asyncio.sleep(0)
        try:
            current = asyncio.current_task()
            found = lingering(
                asyncio.all_tasks(), threading.enumerate(), sys._current_frames(), current=current
            )
        finally:
            pending.cancel()
        return found

    try:
        found = asyncio.run(scenario())
    finally:
        release.set()
        busy.join()
        pool.shutdown()

    assert found.tasks == ("daemon-of-pb-1: sleep",)
    assert len(found.threads) == 1, found.threads
    assert found.threads[0].startswith("busy: wait (threading.py:")
    assert "patch_status (test_shutdown.py:" in found.threads[0]
