"""`make bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.engine import run_engine, run_requests

DOC = Path("docs/benchmarks.md")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few iterations and no Prometheus: proves the harness runs",
    )
    args = parser.parse_args()
    engine = run_engine(iterations=3 if args.quick else 50)
    print(
        f"engine: median {engine.cpu_ms_median:.1f} ms CPU per evaluation "
        f"(p95 {engine.cpu_ms_p95:.1f} ms), peak {engine.peak_mib:.1f} MiB"
    )
    if args.quick:
        return 0
    requests = run_requests()
    print(
        f"requests: {requests.requests_per_evaluation} per evaluation of "
        f"{requests.metrics} metrics ({requests.seconds_in_prometheus:.2f} s in Prometheus)"
    )
    commit = (
        subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown"
    )
    per_metric = requests.requests_per_evaluation / requests.metrics
    DOC.write_text(f"""# Benchmarks

Measured by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d}, commit
`{commit}`, on {machine()}. These are measurements, not tests: `make test` only checks
that the harness runs (`python -m bench --quick`).

## PerfBaseline engine

One evaluation of the issue's workload: 4 metrics (latency with p95 and mean and 3 stages,
throughput, error ratio, a Query), comparison `Both`, a 10-minute window at a 30 s step
(21 samples per series), a 7-day baseline at a 1 m step ({engine.baseline_points:,} points
per series). I/O excluded: samples are AR(1) series of those sizes fed to `judge`.

| measure | value | target |
|---|---|---|
| CPU per evaluation, median of {engine.iterations} | {engine.cpu_ms_median:.1f} ms | < 50 ms |
| CPU per evaluation, p95 | {engine.cpu_ms_p95:.1f} ms | |
| wall per evaluation, median | {engine.wall_ms_median:.1f} ms | |
| peak Python memory of one evaluation (tracemalloc) | {engine.peak_mib:.1f} MiB | |

## Prometheus requests

One evaluation of the same spec against a real Prometheus 2.42 holding 7 days of
generated history: **{requests.requests_per_evaluation} requests for {requests.metrics}
metrics** ({per_metric:.1f} per metric; target at most 2): one range query per metric for
the candidate window (candidate and stable tracks, every statistic and stage in one
request, tagged with `label_replace` and joined with `or`), and one for the historical
baseline. Request time summed over the (concurrent) requests:
{requests.seconds_in_prometheus:.2f} s.

Command: `make bench`.
""")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
