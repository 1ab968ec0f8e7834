"""The operator's command line, in this process, under cProfile.

`python -m bench.scale_profiled STATS run --namespace NS ...` runs `perfguard.cli` with
the remaining arguments. SIGUSR2 starts a fresh profile (so start-up can be left out);
SIGUSR1 writes the profile so far to STATS; exiting writes it too. Kopf handles SIGTERM,
SIGINT and SIGQUIT, so the two user signals are free. cProfile sees the main thread (the
event loop) only.

With PERFGUARD_BENCH_TRACEMALLOC=1, tracemalloc traces allocations from the start and
SIGUSR1 also writes the largest live allocation sites to STATS + ".memory" (what the
resident memory is made of; tracing slows the operator and adds to its memory).
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

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


def main(argv: list[str]) -> int:
    stats, args = argv[0], argv[1:]
    current = [cProfile.Profile()]

    def restart(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        current[0] = cProfile.Profile()
        current[0].enable()

    def dump(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        if tracemalloc.is_tracing():
            write_memory(stats + ".memory")
        current[0].dump_stats(stats)
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
        current[0].dump_stats(stats)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
