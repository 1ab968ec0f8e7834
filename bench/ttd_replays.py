"""Time to detect, replayed on many services: how often a +10 ms regression takes longer
than the target with the live configuration A (interval 1m, sustainFor 3m, window 3m at
15 s), beyond the six services a `make bench` run measures.

Generates `--services` services per time of day (`--hours`, fixed dates, so the figures
reproduce), backfills them into one Prometheus per time of day, and evaluates each service
every interval from two intervals before its injection with the operator's engine, status
carried forward (as bench.time_to_detect's replays do), until `verdict: Fail`.

Run: ``python -m bench.ttd_replays`` (5 times x 24 services, about 2.5 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.time_to_detect import (
    STAGGER_S,
    DetectConfig,
    Service,
    _history,
    plan_services,
    replay_service,
)

CONFIG = DetectConfig("a", 60, 180, 180, 15)
MAGNITUDE_MS = 10.0
HOURS = (3, 9, 12, 17, 21)
DAY = datetime(2026, 12, 4, tzinfo=UTC)


async def time_to_fail(url: str, services: Sequence[Service]) -> list[float | None]:
    """Seconds from each service's injection to the first evaluation that reports Fail."""
    from perfguard.sources.prometheus import PrometheusClient

    async with PrometheusClient(url, timeout=timedelta(seconds=30)) as client:
        return [(await replay_service(client, CONFIG, s))[0] for s in services]


def run(hours: Sequence[int], services: int) -> list[float | None]:
    fails: list[float | None] = []
    for hour in hours:
        with tempfile.TemporaryDirectory(prefix="perfguard-ttd-replays-") as tmp:
            first = (DAY + timedelta(hours=hour, minutes=7)).timestamp()
            planned = plan_services(first, services, (MAGNITUDE_MS,))
            after = timedelta(seconds=STAGGER_S * services + CONFIG.give_up_s + 300)
            server = _history(Path(tmp), planned, after)
            try:
                fails += asyncio.run(time_to_fail(server.url, planned))
            finally:
                server.stop()
    return fails


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=24, help="services per time of day")
    parser.add_argument(
        "--hours", type=int, nargs="+", default=list(HOURS), help="times of day (UTC hours)"
    )
    args = parser.parse_args(argv)
    fails = run(args.hours, args.services)
    counts = Counter("never" if f is None else f"{f:.0f} s" for f in fails)
    target = CONFIG.target_s
    late = sum(1 for f in fails if f is None or f > target)
    print(f"{CONFIG.label}, +{MAGNITUDE_MS:g} ms, {len(fails)} services")
    print("time to Fail:", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"later than the target ({target:.0f} s): {late} of {len(fails)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
