"""The operator's command line, in this process, under cProfile.

`python -m bench.scale_profiled STATS run --namespace NS ...` runs `perfguard.cli` with
the remaining arguments. SIGUSR2 starts a fresh profile (so start-up can be left out);
SIGUSR1 writes the profile so far to STATS; exiting writes it too. Kopf handles SIGTERM,
SIGINT and SIGQUIT, so the two user signals are free. Besides the main thread (the event
loop), every thread started later (`asyncio.to_thread`'s pool: around the
Kubernetes client, the /metrics page) gets a profiler of its own; STATS holds them all
added up. Their idle waits (a pool thread blocked on its queue) show as lock acquires.

With PERFGUARD_BENCH_TRACEMALLOC=1, tracemalloc traces allocations from the start and
SIGUSR1 also writes the largest live allocation sites to STATS + ".memory" (what the
resident memory is made of; tracing slows the operator and adds to its memory).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import signal
import sys
import threading
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

MEMORY_ENV = "PERFGUARD_BENCH_TRACEMALLOC"


def write_memory(path: str, limit: int = 25) -> None:
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("lineno")
    total = sum(stat.size for stat in stats)
    lines = [f"{total / 2**20:.1f} MiB traced in {len(stats)} sites"]
    for stat in stats[:limit]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size / 2**20:.1f}\t{stat.count}\t{frame.filename}:{frame.lineno}")
    Path(path).write_text("\n".join(lines) + "\n")


Entries = dict[Any, tuple[Any, ...]]


class _Snapshot:
    """What pstats.Stats.add takes: an object with `stats` and `create_stats`."""

    def __init__(self, stats: Entries) -> None:
        self.stats = stats

    def create_stats(self) -> None:
        pass


class ThreadProfiles:
    """A profiler in each thread started after `install`. A profiler can only be switched
    off from its own thread, so a restart remembers each one's totals so far, and a dump
    subtracts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []
        self._since: dict[int, Entries] = {}

    def install(self) -> None:
        def first_call(_frame: FrameType, _event: str, _arg: object) -> None:
            profile = cProfile.Profile()
            with self._lock:
                self._profiles.append(profile)
            profile.enable()  # replaces this hook in this thread

        threading.setprofile(first_call)

    @staticmethod
    def _entries(profile: cProfile.Profile) -> Entries:
        profile.snapshot_stats()  # reads the totals; the profiler keeps running
        return dict(getattr(profile, "stats", {}))

    def restart(self) -> None:
        with self._lock:
            self._since = {id(p): self._entries(p) for p in self._profiles}

    def add_to(self, stats: pstats.Stats) -> None:
        with self._lock:
            profiles = list(self._profiles)
        for profile in profiles:
            before = self._since.get(id(profile), {})
            delta: Entries = {}
            for key, (cc, nc, tt, ct, callers) in self._entries(profile).items():
                old = before.get(key)
                if old is not None:
                    cc, nc, tt, ct = cc - old[0], nc - old[1], tt - old[2], ct - old[3]
                if nc > 0:
                    delta[key] = (cc, nc, tt, ct, callers)
            if delta:
                stats.add(_Snapshot(delta))


def main(argv: list[str]) -> int:
    stats, args = argv[0], argv[1:]
    current = [cProfile.Profile()]
    threads = ThreadProfiles()
    threads.install()

    def restart(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        current[0] = cProfile.Profile()
        threads.restart()
        current[0].enable()

    def write(path: str) -> None:
        current[0].create_stats()
        combined = pstats.Stats(current[0])
        threads.add_to(combined)
        combined.dump_stats(path)

    def dump(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        if tracemalloc.is_tracing():
            write_memory(stats + ".memory")
        write(stats)
        current[0].enable()

    if os.environ.get(MEMORY_ENV):
        tracemalloc.start(1)

    signal.signal(signal.SIGUSR2, restart)
    signal.signal(signal.SIGUSR1, dump)
    from perfguard.cli import main as cli

    current[0].enable()
    try:
        return cli(args)
    finally:
        current[0].disable()
        write(stats)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
