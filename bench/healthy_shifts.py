"""How often a healthy service's PerfBaseline is Inconclusive, and what level shifts do to it.

The operator-scale benchmark's generated services (bench.operator_scale: no injected
regression, the canary taking 25 % of the traffic, 30 s scrapes) are backfilled into a
real Prometheus, and the scale benchmark's PerfBaseline (4 metrics, a 10-minute window at
30 s, Concurrent) is evaluated with `perfguard evaluate --at T -o json` every minute over
the last `--minutes` minutes, per service. Reported: the verdicts, and every metric judgement
made after a level shift inside the window (`perfguard.analysis.level_shift`) with the size
of the shift and how the newer level was judged (docs/perfbaseline.md, "A level shift
inside the window").

Command: `python -m bench.healthy_shifts` (about 5 minutes; the generated history follows
the wall clock, so figures vary a little from run to run).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from bench.operator_scale import SERVICES, _live_prometheus, perfbaseline
from bench.scale_support import REPO

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
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="perfguard-healthy-shifts-"))
    server = _live_prometheus(work, timedelta(minutes=10))
    now = datetime.now(UTC)
    verdicts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    shifted: list[ShiftedJudgement] = []
    evaluations = 0
    try:
        for index in range(SERVICES):
            body = perfbaseline("healthy", "bench", f"scale-{index}", 60)
            spec_file = work / f"healthy-{index}.yaml"
            spec_file.write_text(yaml.safe_dump(body))
            for minute in range(minutes):
                at = now - timedelta(minutes=minutes - 10 - minute)
                answer = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "perfguard.cli",
                        "evaluate",
                        "-f",
                        str(spec_file),
                        "--at",
                        at.isoformat().replace("+00:00", "Z"),
                        "-o",
                        "json",
                        "--prometheus",
                        server.url,
                    ],
                    capture_output=True,
                    text=True,
                    cwd=REPO,
                    check=False,
                )
                if answer.returncode not in (0, 1, 2):
                    raise RuntimeError(f"perfguard evaluate failed: {answer.stderr[-500:]}")
                status = json.loads(answer.stdout)
                evaluations += 1
                verdicts[str(status.get("verdict"))] += 1
                reasons[str(status.get("reason"))] += 1
                for metric in status.get("metrics", []):
                    message = str(metric.get("message", ""))
                    found = _SHIFT.search(message)
                    if found is None:
                        continue
                    shifted.append(
                        ShiftedJudgement(
                            service=index,
                            minute=minute,
                            metric=f"{metric['name']} {metric['statistic']}",
                            verdict=str(metric["verdict"]),
                            change=found.group(1) + found.group(2),
                            whole_window="judged from the whole window" in message,
                        )
                    )
    finally:
        server.stop()
    return HealthyShifts(
        evaluations=evaluations,
        verdicts=tuple(verdicts.most_common()),
        reasons=tuple(reasons.most_common()),
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
