"""Sustained breaches on simulated canaries: how soon a step reaches `Fail`, whether bursts
shorter than sustainFor do, and how often a wander as large as the limit does.

The PerfBaseline judge (`perfguard.engine.perfbaseline.judge`, in this process, no
Prometheus) evaluates DESIGN's example analysis (Concurrent, p95 `maxIncrease: 5ms`,
interval 1m, window 10m at 30 s, sustainFor 3m) every minute over a simulated pair of
p95 series, the status carried forward as the operator carries it. Each track is a
shared load (AR(1), 2 ms, rho 0.8) plus its own noise (AR(1), the scenario's SD and rho);
the canary moves by the scenario's change from the 30th minute (or a step after it), for
the scenario's duration. The evaluations start at a random phase within the minute.

Run: ``python -m bench.sustain_replays`` (about a minute). Seeds are fixed per scenario
and run, so the figures reproduce.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from bench.accuracy_judges import carry
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.synthetic.randomness import ar1, stream

STEP_S = 30.0
HISTORY_MIN = 60
CHANGE_AT_S = 30 * 60.0
FIRST_EVALUATION_S = 26 * 60.0
LAST_EVALUATION_S = 45 * 60.0
START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SEED = 20261204

SPEC = PerfBaselineSpec.model_validate(
    {
        "selector": {"service": "sim"},
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
        "comparison": "Concurrent",
        "analysis": {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "3m"},
        "metrics": [
            {
                "name": "latency",
                "type": "Latency",
                "histogram": "inference_request_duration_seconds",
                "thresholds": {"p95": {"maxIncrease": "5ms"}},
            }
        ],
    }
)


@dataclass(frozen=True)
class Scenario:
    label: str
    change_ms: float
    duration_s: float | None  # None: the change stays
    noise_ms: float
    rho: float
    runs: int


SCENARIOS = (
    *(Scenario("step", 10.0, None, 1.0, rho, 60) for rho in (0.3, 0.5, 0.7)),
    *(
        Scenario("burst", 10.0, duration, 1.0, rho, 60)
        for rho in (0.5, 0.8)
        for duration in (120.0, 150.0, 180.0, 240.0)
    ),
    *(Scenario("wander", 0.0, 0.0, 3.0, rho, 200) for rho in (0.7, 0.9)),
)


def _series(rng: np.random.Generator, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    size = int(HISTORY_MIN * 60 / STEP_S) + 1
    shared = 0.043 + ar1(rng, size, sd=0.002, correlation_time_s=_tau(0.8), step_s=STEP_S)
    own = scenario.noise_ms / 1000.0
    tau = _tau(scenario.rho)
    stable = shared + ar1(rng, size, sd=own, correlation_time_s=tau, step_s=STEP_S)
    canary = shared + ar1(rng, size, sd=own, correlation_time_s=tau, step_s=STEP_S)
    return stable, canary


def _tau(rho: float) -> float:
    return -STEP_S / float(np.log(rho))


def first_fail(scenario: Scenario, run: int) -> float | None:
    """Seconds from the change to the first evaluation that reports Fail, or None."""
    rng = stream(SEED, *_name(scenario), run)
    stable, canary = _series(rng, scenario)
    change_at = CHANGE_AT_S + STEP_S * int(rng.integers(0, 2))
    begin = int(change_at / STEP_S)
    end = canary.size if scenario.duration_s is None else begin + int(scenario.duration_s / STEP_S)
    canary[begin:end] += scenario.change_ms / 1000.0
    stamps = START.timestamp() + STEP_S * np.arange(canary.size)
    plan = plan_tracks(SPEC, None)
    status: dict[str, Any] = {}
    offset = FIRST_EVALUATION_S + float(rng.integers(0, 60))
    while offset <= LAST_EVALUATION_S:
        at = START + timedelta(seconds=offset)
        w = windows(SPEC, at)
        keep = (stamps >= w.start.timestamp()) & (stamps <= w.end.timestamp())
        data = MetricSamples()
        for stat in ("p95", "p99", "mean"):
            data.window[("candidate", stat)] = TimedSamples(stamps[keep], canary[keep].copy())
            data.window[("stable", stat)] = TimedSamples(stamps[keep], stable[keep].copy())
        outcome = judge(SPEC, plan, w, {"latency": data}, status, at)
        status = carry(status, outcome.fields, outcome.conditions, at)
        if status.get("verdict") == "Fail":
            return offset - change_at
        offset += 60.0
    return None


def _name(scenario: Scenario) -> tuple[str | int, ...]:
    """The scenario's random stream name (perfguard.synthetic.randomness.stream)."""
    return (
        scenario.label,
        f"{scenario.change_ms:g}",
        f"{scenario.duration_s}",
        f"{scenario.rho:g}",
    )


def describe(scenario: Scenario, fails: Sequence[float | None]) -> str:
    hit = sorted(f for f in fails if f is not None)
    if scenario.duration_s is None:
        what = f"+{scenario.change_ms:g} ms from then on"
    elif scenario.change_ms:
        what = f"+{scenario.change_ms:g} ms for {scenario.duration_s:g} s"
    else:
        what = "no change"
    head = f"{what}, track noise {scenario.noise_ms:g} ms at rho {scenario.rho:g}"
    if scenario.label == "step":
        late = sum(1 for f in fails if f is None or f > 300.0)
        return (
            f"{head}: Fail in {len(hit)}/{len(fails)}, median {statistics.median(hit):.0f} s, "
            f"max {hit[-1]:.0f} s, later than 300 s: {late}"
        )
    return f"{head}: Fail in {len(hit)}/{len(fails)} runs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="runs per scenario")
    args = parser.parse_args(argv)
    for scenario in SCENARIOS:
        runs = args.runs or scenario.runs
        print(describe(scenario, [first_fail(scenario, run) for run in range(runs)]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
