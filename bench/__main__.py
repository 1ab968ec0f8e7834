"""`make bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.accuracy import accuracy_section, run_accuracy
from bench.capacity import capacity_section, run_capacity_scale
from bench.engine import engine_section, run_engine, run_requests
from bench.envparity import envparity_section, run_envparity_scale
from bench.nab import data_dir as nab_data_dir
from bench.nab import nab_section, run_nab
from bench.operator_kinds import operator_kinds_section, run_operator_kinds
from bench.operator_scale import operator_scale_section, run_operator_scale
from bench.scale_support import machine
from bench.time_to_detect import run_time_to_detect, time_to_detect_section

DOC = Path("docs/benchmarks.md")
CMD = "make bench"


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
    header = f"""# Benchmarks

Measured by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d}, commit
`{commit}`, on {machine()}. These are measurements, not tests: `make test` only checks
that the harness runs (`python -m bench --quick`).
"""
    sections = [header, engine_section(engine, requests)]
    steps: list[tuple[str, Callable[[], str]]] = [
        ("envparity", lambda: envparity_section(run_envparity_scale())),
        ("capacity", lambda: capacity_section(run_capacity_scale())),
        ("accuracy", lambda: accuracy_section(run_accuracy(prometheus=True))),
        ("nab", lambda: nab_section(run_nab(nab_data_dir()))),
        (
            "operator scale",
            lambda: operator_scale_section(run_operator_scale(command="make bench")),
        ),
        (
            "operator kinds",
            lambda: operator_kinds_section(run_operator_kinds(command="make bench")),
        ),
        (
            "time to detect",
            lambda: time_to_detect_section(run_time_to_detect(command="make bench")),
        ),
    ]
    for name, step in steps:
        sections.append(step())
        # Written after every section, so a long run that fails late keeps what it measured.
        DOC.write_text("\n".join(sections))
        print(f"{name}: done")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
