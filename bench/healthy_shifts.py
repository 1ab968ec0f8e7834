"""How often a healthy service's PerfBaseline is Inconclusive, and what level shifts do to it.

The operator-scale benchmark's generated services (bench.operator_scale: no injected
regression, the canary taking 25 % of the traffic, 30 s scrapes) are backfilled into a
real Prometheus, and the scale benchmark's PerfBaseline (4 metrics, a 10-minute window at
30 s, Concurrent) is evaluated as `perfguard evaluate --at T` evaluates it (in this
process), every minute over the last `--minutes` minutes, per service. Reported: the
verdicts, and every metric judgement made after a level shift inside the window
(`perfguard.analysis.level_shift`) with the size of the shift and how the newer level was
judged (docs/perfbaseline.md, "A level shift
inside the window").

Command: `python -m bench.healthy_shifts` (about a minute; the generated history follows
the wall clock, so figures vary a little from run to run).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.operator_scale import SERVICES, _live_prometheus, perfbaseline

_SHIFT = re.compile(r"changed level by ([-+][\d.e-]+)(\w*)")


@dataclass(frozen=True)
class ShiftedJudgement:
    service: int
    minute: int
    metric: str
    verdict: str
    change: str  # as the message gives it, with its unit
    whole_window: bool  # the newer level judged from the whole window and the shift


@dataclass(frozen=True)
class HealthyShifts:
    evaluations: int
    verdicts: tuple[tuple[str, int], ...]
    reasons: tuple[tuple[str, int], ...]
    shifted: tuple[ShiftedJudgement, ...]
    wall_s: float


def evaluate_every_minute(minutes: int) -> HealthyShifts:
    from perfguard.api.perfbaseline import PerfBaselineSpec
    from perfguard.engine.offline import EvaluateOptions, replay_perfbaseline

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="perfguard-healthy-shifts-"))
    server = _live_prometheus(work, timedelta(minutes=10))
    now = datetime.now(UTC)

    async def evaluate_all() -> list[tuple[int, int, dict[str, Any]]]:
        # What `perfguard evaluate --at T -o json` prints, without a process per evaluation.
        out = []
        for index in range(SERVICES):
            body = perfbaseline("healthy", "bench", f"scale-{index}", 60)
            spec = PerfBaselineSpec.model_validate(body["spec"])
            for minute in range(minutes):
                at = now - timedelta(minutes=minutes - 10 - minute)
                options = EvaluateOptions(prometheus=server.url, at=at)
                out.append((index, minute, await replay_perfbaseline(spec, options)))
        return out

    try:
        statuses = asyncio.run(evaluate_all())
    finally:
        server.stop()
    shifted = [
        ShiftedJudgement(
            service=index,
            minute=minute,
            metric=f"{metric['name']} {metric['statistic']}",
            verdict=str(metric["verdict"]),
            change=found.group(1) + found.group(2),
            whole_window="judged from the whole window" in str(metric.get("message")),
        )
        for index, minute, status in statuses
        for metric in status.get("metrics", [])
        if (found := _SHIFT.search(str(metric.get("message", "")))) is not None
    ]
    return HealthyShifts(
        evaluations=len(statuses),
        verdicts=tuple(Counter(str(s.get("verdict")) for _, _, s in statuses).most_common()),
        reasons=tuple(Counter(str(s.get("reason")) for _, _, s in statuses).most_common()),
        shifted=tuple(shifted),
        wall_s=time.perf_counter() - started,
    )


def report(result: HealthyShifts) -> str:
    whole = [s for s in result.shifted if s.whole_window]
    since = [s for s in result.shifted if not s.whole_window]
    by_verdict = Counter(
        f"{s.verdict} ({'whole window' if s.whole_window else 'since'})" for s in result.shifted
    )
    sizes = sorted(
        (abs(float(s.change[:-2])), s.change) for s in result.shifted if s.change.endswith("ms")
    )
    lines = [
        f"{result.evaluations} evaluations of healthy services "
        f"({SERVICES} services, every minute): "
        + ", ".join(f"{k} {v}" for k, v in result.verdicts),
        "reasons: " + ", ".join(f"{k} {v}" for k, v in result.reasons),
        f"metric judgements after a level shift: {len(result.shifted)} "
        f"({len(whole)} judged from the whole window and the shift, {len(since)} on the "
        "samples since): " + ", ".join(f"{k} {v}" for k, v in by_verdict.most_common()),
    ]
    if sizes:
        lines.append(f"latency shifts: {sizes[0][1]} to {sizes[-1][1]} (smallest and largest)")
    lines.append(f"wall time {result.wall_s / 60:.1f} min")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=40, help="evaluations per service")
    args = parser.parse_args(argv)
    print(report(evaluate_every_minute(args.minutes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
