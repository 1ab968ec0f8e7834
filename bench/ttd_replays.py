"""Time to detect, replayed on many services: how often a +10 ms regression takes longer
than the target with the live configuration A (interval 1m, sustainFor 3m, window 3m at
15 s), beyond the six services a `make bench` run measures; `--config design` replays
DESIGN's example analysis instead (interval 1m, sustainFor 3m, window 10m at 30 s, the
defaults), `--config 5m` the same with a 5m window.

Generates `--services` services per time of day (`--hours`, fixed dates, so the figures
reproduce), backfills them into one Prometheus per time of day, and evaluates each service
every interval from two intervals before its injection with the operator's engine, status
carried forward (as bench.time_to_detect's replays do), until `verdict: Fail`.

Run: ``python -m bench.ttd_replays`` (5 times x 24 services, about 2.5 minutes;
``--config design`` about 4 minutes).
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
    TraceRow,
    _history,
    plan_services,
    replay_service,
)


def format_trace(rows: Sequence[TraceRow]) -> str:
    """One line per evaluation: seconds after the injection, samples judged, the change
    judged and its interval (ms), and the metric and overall verdicts."""
    lines = []
    for row in rows:
        delta = "–" if row.delta_ms is None else f"{row.delta_ms:+.1f}"
        ci = "–" if row.ci_ms is None else f"[{row.ci_ms[0]:.1f}, {row.ci_ms[1]:.1f}]"
        lines.append(
            f"  {row.offset_s:+5.0f} s  {row.judged:<40} {delta:>6} {ci:<16} {row.verdict}"
        )
    return "\n".join(lines)


CONFIGS = {
    "a": DetectConfig("a", 60, 180, 180, 15),
    "design": DetectConfig("design", 60, 180, 600, 30),
    "5m": DetectConfig("5m", 60, 180, 300, 30),
}
MAGNITUDE_MS = 10.0
HOURS = (3, 9, 12, 17, 21)
DAY = datetime(2026, 12, 4, tzinfo=UTC)


Replayed = tuple[float | None, list[TraceRow]]


async def time_to_fail(
    url: str, config: DetectConfig, services: Sequence[Service]
) -> list[Replayed]:
    """Per service: seconds from its injection to the first evaluation that reports Fail,
    and the evaluations on the way (bench.time_to_detect's trace rows)."""
    from perfguard.sources.prometheus import PrometheusClient

    async with PrometheusClient(url, timeout=timedelta(seconds=30)) as client:
        out: list[Replayed] = []
        for service in services:
            fail, _, rows = await replay_service(client, config, service, trace=True)
            out.append((fail, rows))
        return out


def run(config: DetectConfig, hours: Sequence[int], services: int) -> list[Replayed]:
    fails: list[Replayed] = []
    for hour in hours:
        with tempfile.TemporaryDirectory(prefix="perfguard-ttd-replays-") as tmp:
            first = (DAY + timedelta(hours=hour, minutes=7)).timestamp()
            planned = plan_services(first, services, (MAGNITUDE_MS,))
            after = timedelta(seconds=STAGGER_S * services + config.give_up_s + 300)
            server = _history(Path(tmp), planned, after)
            try:
                fails += asyncio.run(time_to_fail(server.url, config, planned))
            finally:
                server.stop()
    return fails


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=24, help="services per time of day")
    parser.add_argument(
        "--hours", type=int, nargs="+", default=list(HOURS), help="times of day (UTC hours)"
    )
    parser.add_argument(
        "--config", choices=sorted(CONFIGS), default="a", help="analysis configuration"
    )
    args = parser.parse_args(argv)
    config = CONFIGS[args.config]
    replayed = run(config, args.hours, args.services)
    fails = [fail for fail, _ in replayed]
    counts = Counter("never" if f is None else f"{f:.0f} s" for f in fails)
    target = config.target_s
    late = sum(1 for f in fails if f is None or f > target)
    print(f"{config.label}, +{MAGNITUDE_MS:g} ms, {len(fails)} services")
    print("time to Fail:", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    print(f"later than the target ({target:.0f} s): {late} of {len(fails)}")
    for index, (fail, rows) in enumerate(replayed):
        if fail is None or fail > target:
            print(f"\nservice {index} (Fail {'never' if fail is None else f'{fail:.0f} s'}):")
            print(format_trace(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
