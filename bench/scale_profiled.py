"""The operator's command line, in this process, under cProfile.

`python -m bench.scale_profiled STATS run --namespace NS ...` runs `perfguard.cli` with
the remaining arguments. SIGUSR2 starts a fresh profile (so start-up can be left out);
SIGUSR1 writes the profile so far to STATS; exiting writes it too. Kopf handles SIGTERM,
SIGINT and SIGQUIT, so the two user signals are free. cProfile sees the main thread (the
event loop) only.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType


def main(argv: list[str]) -> int:
    stats, args = argv[0], argv[1:]
    current = [cProfile.Profile()]

    def restart(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        current[0] = cProfile.Profile()
        current[0].enable()

    def dump(_signum: int, _frame: FrameType | None) -> None:
        current[0].disable()
        current[0].dump_stats(stats)
        current[0].enable()

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
