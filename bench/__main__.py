"""`make bench`: run the benchmarks and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from bench.accuracy import accuracy_section, run_accuracy
from bench.capacity import capacity_section, run_capacity_scale
from bench.engine import engine_section, run_engine, run_requests
from bench.envparity import envparity_section, run_envparity_scale
from bench.nab import data_dir as nab_data_dir
from bench.nab import nab_section, run_nab

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
    sections = [engine_section(engine, requests)]
    sections.append(envparity_section(run_envparity_scale()))
    print("envparity: done")
    sections.append(capacity_section(run_capacity_scale()))
    print("capacity: done")
    sections.append(accuracy_section(run_accuracy(prometheus=True)))
    print("accuracy: done")
    sections.append(nab_section(run_nab(nab_data_dir())))
    print("nab: done")
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
    DOC.write_text("\n".join([header, *sections]))

    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
