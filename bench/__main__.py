"""`make bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.accuracy import accuracy_section, run_accuracy
from bench.capacity import capacity_section, run_capacity_scale
from bench.document import splice
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


def _steps() -> dict[str, Callable[[], str]]:
    """Each section of the document, by the name `--only` takes, in the document's order."""
    return {
        "engine": lambda: engine_section(run_engine(iterations=50), run_requests()),
        "envparity": lambda: envparity_section(run_envparity_scale()),
        "capacity": lambda: capacity_section(run_capacity_scale()),
        "accuracy": lambda: accuracy_section(run_accuracy(prometheus=True)),
        "nab": lambda: nab_section(run_nab(nab_data_dir())),
        "operator-scale": lambda: operator_scale_section(run_operator_scale(command=CMD)),
        "operator-kinds": lambda: operator_kinds_section(run_operator_kinds(command=CMD)),
        "time-to-detect": lambda: time_to_detect_section(run_time_to_detect(command=CMD)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="few iterations and no Prometheus: proves the harness runs",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(_steps()),
        metavar="SECTION",
        help=f"re-measure these sections ({', '.join(_steps())}) and put them in place "
        "of their old text in docs/benchmarks.md, marked with the commit",
    )
    args = parser.parse_args()
    if args.only:
        return _remeasure(args.only)
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
    header = f"""# Benchmarks

Measured by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d}, commit
`{_commit()}`, on {machine()}. These are measurements, not tests: `make test` only checks
that the harness runs (`python -m bench --quick`).
"""
    sections = [header, engine_section(engine, requests)]
    for name, step in list(_steps().items())[1:]:
        sections.append(step())
        # Written after every section, so a long run that fails late keeps what it measured.
        DOC.write_text("\n".join(sections))
        print(f"{name}: done")
    print(f"wrote {DOC}")
    return 0


def _remeasure(only: list[str]) -> int:
    steps = _steps()
    for name in only:
        measured = steps[name]()
        DOC.write_text(
            splice(
                DOC.read_text(),
                measured,
                only=only,
                commit=_commit(),
                day=f"{datetime.now(UTC):%Y-%m-%d}",
            )
        )
        print(f"{name}: done")
    print(f"updated {DOC}")
    return 0


def _commit() -> str:
    answer = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return answer.stdout.strip() or "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
