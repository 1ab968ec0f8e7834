"""The accuracy benchmark's cases that go through a real Prometheus.

Each case is one service in one Prometheus 2.42 (Debian's, via perfguard.local): an hour
of perfguard.synthetic telemetry (latency histograms and request counters of a stable and
a canary track taking half the traffic each), backfilled with promtool, the regression
injected into the canary from the first sample on. perfguard judges it through its whole
query path: ``perfguard.engine.perfbaseline.evaluate`` with a PerfBaselineSpec and a
PrometheusClient, replayed over sustainFor like ``perfguard evaluate``. Kayenta judges
the per-step values of the final window fetched by the same query path
(``fetch_all``); the fixed-threshold judge runs the AnalysisTemplate's instant query
(histogram_quantile or _sum/_count over the whole window, or the canary/stable rate
ratio) through the same client.

The generator's noise differs from the in-process corpus: its per-track latency level
wanders (2 %, 30-minute correlation time) and has no spikes or Pareto tail, so within a
window canary and stable differ by a slowly moving offset of about 1 ms at p95.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Final

from bench.accuracy_corpus import FAMILIES, Family
from bench.accuracy_judges import (
    HISTOGRAM,
    REQUESTS,
    FixedVerdict,
    PerfguardVerdict,
    carry,
    fixed_judge,
    kayenta_config,
    perfguard_spec,
    verdict_of,
)
from bench.accuracy_kayenta import KayentaResult, classify
from perfguard.api.quantities import format_duration
from perfguard.engine.offline import replay_times
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.perfbaseline_fetch import TimedSamples, fetch_all, paired
from perfguard.engine.tracks import plan_tracks
from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily, generate_file
from perfguard.synthetic.expected import Expected

PROMETHEUS_SEED: Final = 7_000
FIRST_END: Final = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
HISTORY: Final = timedelta(hours=1)
FAMILY_NAMES: Final = ("p95", "mean", "throughput")
CANARY_SHARE: Final = 0.5
STEP_S: Final = 30.0
INTERVAL_S: Final = 60.0
SUSTAIN_S: Final = 180.0
LATENCY_FAMILIES: Final = frozenset({SeriesFamily.LATENCY, SeriesFamily.REQUESTS})


@dataclass(frozen=True)
class PromCase:
    case_id: str
    family: Family
    n: int
    size: float
    seed: int
    end: datetime
    scenario: Scenario
    typical: float

    @property
    def regression(self) -> bool:
        return self.size != 0

    @property
    def multiple(self) -> float:
        return self.size / self.family.threshold

    @property
    def service(self) -> str:
        return self.scenario.service

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=(self.n - 1) * STEP_S)


def _scenario(
    service: str, end: datetime, seed: int, days: float, injections: tuple[Injection, ...] = ()
) -> Scenario:
    return Scenario(
        service=service,
        days=days,
        end=end,
        seed=seed,
        canary_share=CANARY_SHARE,
        include=LATENCY_FAMILIES,
        injections=injections,
    )


def _injections(
    family: Family, size: float, service: str, end: datetime, seed: int, window: timedelta
) -> tuple[Injection, ...]:
    if size == 0:
        return ()
    start = timedelta(0)
    if family.name == "p95":
        return (Injection(InjectionKind.LATENCY_SHIFT, start=start, magnitude=size),)
    if family.name == "mean":
        # Every stage and the time between stages: the whole request scales.
        return tuple(
            Injection(InjectionKind.LATENCY_SCALE, start=start, magnitude=size, stage=stage)
            for stage in ("preprocess", "inference", "postprocess", "total")
        )
    # A drop of `size` % of the canary's expected rate over the judged window.
    expected = Expected(_scenario(service, end, seed, HISTORY / timedelta(days=1)))
    rate = expected.request_rate("canary", end, window=window)
    return (Injection(InjectionKind.THROUGHPUT_DROP, start=start, magnitude=rate * size / 100.0),)


def _typical(family: Family, service: str, end: datetime, seed: int) -> float:
    """The stable track's value over the day before, as a dashboard shows it."""
    if family.name == "throughput":
        return float("nan")  # the fixed judge compares canary with stable instead
    day = Expected(_scenario(service, end, seed, 1.0))
    if family.statistic == "mean":
        return day.stage_mean("stable", "total", end, window=timedelta(days=1))
    return day.stage_quantile("stable", "total", 0.95, end, window=timedelta(days=1))


def prometheus_cases(per_family: int = 8, seed: int = PROMETHEUS_SEED) -> list[PromCase]:
    """``per_family`` cases per family, alternating no regression and a regression (sizes
    cycling from 2x the threshold up), windows of 20 and 40 samples, window ends spread
    over the day (every case its own hour)."""
    cases = []
    k = 0
    for name in FAMILY_NAMES:
        family = FAMILIES[name]
        above = family.sizes[1:]
        for i in range(per_family):
            size = above[(i // 2) % len(above)] if i % 2 else 0.0
            n = (20, 40)[(i // 2) % 2]
            end = FIRST_END + timedelta(hours=(7 * k + 3) % 24, days=k // 24)
            case_seed = seed + k
            service = f"acc-{name}-{i:02d}"
            window = timedelta(seconds=(n - 1) * STEP_S)
            injections = _injections(family, size, service, end, case_seed, window)
            scenario = _scenario(service, end, case_seed, HISTORY / timedelta(days=1), injections)
            label = family.describe_size(size).replace(" ", "")
            cases.append(
                PromCase(
                    case_id=f"prom-{name}-n{n}-{label}-{i:02d}",
                    family=family,
                    n=n,
                    size=size,
                    seed=case_seed,
                    end=end,
                    scenario=scenario,
                    typical=_typical(family, service, end, case_seed),
                )
            )
            k += 1
    return cases


@dataclass(frozen=True)
class PromOutcome:
    case: PromCase
    perfguard: PerfguardVerdict
    kayenta: KayentaResult
    fixed: FixedVerdict
    samples: int  # final-window pairs fetched for Kayenta


@dataclass(frozen=True)
class PrometheusRun:
    outcomes: tuple[PromOutcome, ...]
    requests: int
    seconds_in_prometheus: float
    seconds_generate: float
    seconds_backfill: float
    seconds_judge: float
    version: str


def _fixed_query(case: PromCase) -> str:
    window = format_duration(case.window)
    sel = f'service="{case.service}"'
    if case.family.name == "throughput":
        canary = f'sum(rate({REQUESTS}{{{sel},track="canary"}}[{window}]))'
        stable = f'sum(rate({REQUESTS}{{{sel},track="stable"}}[{window}]))'
        return f"{canary} / {stable}"
    track = f'{sel},track="canary",stage="total"'
    if case.family.statistic == "mean":
        return (
            f"sum(rate({HISTOGRAM}_sum{{{track}}}[{window}])) / "
            f"sum(rate({HISTOGRAM}_count{{{track}}}[{window}]))"
        )
    return f"histogram_quantile(0.95, sum by (le) (rate({HISTOGRAM}_bucket{{{track}}}[{window}])))"


async def _judge(client: Any, case: PromCase) -> PromOutcome:
    family = case.family
    spec = perfguard_spec(
        family,
        case.n,
        STEP_S,
        INTERVAL_S,
        SUSTAIN_S,
        service=case.service,
        stage_label="stage" if family.metric_type == "Latency" else None,
    )
    plan = plan_tracks(spec, None)
    status: dict[str, Any] = {}
    for at in replay_times(spec, case.end):
        evaluation = await evaluate(spec, plan, status, at, client)
        status = carry(status, evaluation.fields, evaluation.conditions, at)
    perfguard = verdict_of(status, family)
    _, samples = await fetch_all(client, spec, plan, case.end)
    data = samples[spec.metrics[0].name]
    empty = TimedSamples.empty()
    canary, stable = paired(
        data.window.get((plan.current.name, family.statistic), empty),
        data.window.get(("stable", family.statistic), empty),
    )
    kayenta = classify(canary, stable, kayenta_config(family, case.typical))
    answer = await client.query(_fixed_query(case), case.end)
    value = float(answer[0].values[0]) if answer else float("nan")
    if family.name == "throughput":
        fixed = fixed_judge(family, case.typical, value, 1.0)
    else:
        fixed = fixed_judge(family, case.typical, value, value)
    return PromOutcome(case, perfguard, kayenta, fixed, int(canary.size))


def run_prometheus(cases: Sequence[PromCase]) -> PrometheusRun:
    """Generate, backfill, start one Prometheus, judge every case, stop it."""
    from perfguard.local.prometheus import LocalPrometheus, backfill, prometheus_binary
    from perfguard.sources.prometheus import PrometheusClient

    version = subprocess.run(
        [str(prometheus_binary()), "--version"], capture_output=True, text=True, check=False
    ).stdout.splitlines()
    with TemporaryDirectory(prefix="perfguard-accuracy-") as tmp:
        work = Path(tmp)
        data = work / "data"
        started = time.perf_counter()
        files = []
        for case in cases:
            path = work / f"{case.service}.om"
            generate_file(case.scenario, path)
            files.append(path)
        generated = time.perf_counter()
        for path in files:
            backfill(path, data)
            path.unlink()
        backfilled = time.perf_counter()
        server = LocalPrometheus(data)
        server.start()
        try:

            async def judge_all() -> tuple[list[PromOutcome], int, float]:
                async with PrometheusClient(server.url, timeout=timedelta(seconds=30)) as client:
                    outcomes = [await _judge(client, case) for case in cases]
                    return outcomes, client.counter.count, client.counter.seconds

            outcomes, requests, seconds = asyncio.run(judge_all())
        finally:
            server.stop()
        judged = time.perf_counter()
    return PrometheusRun(
        outcomes=tuple(outcomes),
        requests=requests,
        seconds_in_prometheus=seconds,
        seconds_generate=generated - started,
        seconds_backfill=backfilled - generated,
        seconds_judge=judged - backfilled,
        version=version[0] if version else "prometheus (version unknown)",
    )


def fetched_pairs(outcomes: Sequence[PromOutcome]) -> tuple[int, int]:
    counts = [o.samples for o in outcomes]
    return (min(counts), max(counts)) if counts else (0, 0)
