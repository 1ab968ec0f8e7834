"""Time to detect: from a regression injected at a known wall-clock time to `verdict: Fail`
and to the `RegressionDetected` Event, with the real operator, kube-apiserver and
Prometheus.

The generated history reaches past the end of the run. Each service (its own seed) gets a
shift of its canary's inference stage at a known instant shortly after the operator
starts: SERVICES services at +10 ms (twice the 5 ms p95 threshold) and as many at +25 ms;
within each group the instants are staggered by 10 s, so the evaluations meet them at
different phases of the interval. Two configurations watch every service at once, in one
operator process:

- A: `interval: 1m`, `sustainFor: 3m` (the issue's), window 3m at a 15 s step;
- B: a quarter of A's interval and sustainFor (`interval: 15s`, `sustainFor: 45s`),
  window 1m at a 5 s step.

The harness polls the PerfBaselines and their Events every second. "Fail" is the start of
the evaluation that first reported Fail (`status.lastEvaluationTime`); "Event" is the
Event's own time; a measurement is missed when neither came within the target plus
three minutes. Afterwards the same data is replayed through the operator's engine
(`perfguard.engine.perfbaseline.evaluate`, status carried forward as the operator does)
with A's interval and sustainFor and windows of 3m, 5m and the default 10m, which would
take too long to wait for live.

Run: `python -m bench.time_to_detect [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.scale_support import (
    GROUP,
    PLURAL,
    VERSION,
    OperatorProcess,
    apply_crds,
    kube_client,
    load_average,
    machine,
    markdown_table,
    perfbaseline_body,
    save_json,
    tuplify,
)

SERVICES = 6  # per magnitude
QUICK_SERVICES = 2
MAGNITUDES_MS = (10.0, 25.0)
QUICK_MAGNITUDES_MS = (25.0,)
STAGGER_S = 10.0
DATA_STEP_S = 5.0
THRESHOLD_MS = 5.0
CANARY_SHARE = 0.25
LEAD_S = 45.0  # from the operator's start to the first injection, at least
MISSED_AFTER_S = 180.0  # past the target: a measurement not made by then is missed
POLL_S = 1.0


@dataclass(frozen=True)
class DetectConfig:
    key: str
    interval_s: float
    sustain_s: float
    window_s: float
    step_s: float
    rate_window_s: float | None = None

    @property
    def target_s(self) -> float:
        return self.sustain_s + 2 * self.interval_s

    @property
    def give_up_s(self) -> float:
        """After the injection, when a detection that has not come counts as missed: the
        target plus MISSED_AFTER_S, and never before the window, sustainFor and three
        intervals have passed (a detection cannot come earlier than about the first two)."""
        return max(
            self.target_s + MISSED_AFTER_S,
            self.window_s + self.sustain_s + 3 * self.interval_s,
        )

    @property
    def label(self) -> str:
        rate = f", rateWindow {_duration(self.rate_window_s)}" if self.rate_window_s else ""
        return (
            f"interval {_duration(self.interval_s)}, sustainFor {_duration(self.sustain_s)}, "
            f"window {_duration(self.window_s)} at {_duration(self.step_s)}{rate}"
        )

    def analysis(self) -> dict[str, str]:
        out = {
            "interval": _duration(self.interval_s),
            "sustainFor": _duration(self.sustain_s),
            "window": _duration(self.window_s),
            "step": _duration(self.step_s),
        }
        if self.rate_window_s:
            out["rateWindow"] = _duration(self.rate_window_s)
        return out


LIVE = (
    DetectConfig("a", 60, 180, 180, 15),
    DetectConfig("b", 15, 45, 60, 5, rate_window_s=15),
)
QUICK_LIVE = (DetectConfig("q", 10, 20, 60, 5, rate_window_s=15),)
REPLAY = (
    DetectConfig("r3m", 60, 180, 180, 15),
    DetectConfig("r5m", 60, 180, 300, 30),
    DetectConfig("r10m", 60, 180, 600, 30),
)
QUICK_REPLAY = (DetectConfig("r1m", 10, 20, 60, 5, rate_window_s=15),)


def _duration(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g}m"
    return f"{value:g}s"


def perfbaseline(name: str, namespace: str, service: str, config: DetectConfig) -> dict[str, Any]:
    latency = {
        "name": "latency",
        "type": "Latency",
        "histogram": "inference_request_duration_seconds",
        "stageLabel": "stage",
        "thresholds": {"p95": {"maxIncrease": f"{THRESHOLD_MS:g}ms"}},
    }
    return perfbaseline_body(
        name,
        namespace,
        service,
        baseline={"window": "1h", "minSamples": 20},
        analysis=config.analysis(),
        metrics=[latency],
    )


# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Service:
    name: str
    seed: int
    magnitude_ms: float
    injected_at: float  # Unix seconds


def plan_services(
    first_injection: float, per_magnitude: int, magnitudes: Sequence[float]
) -> list[Service]:
    """Per magnitude, `per_magnitude` services injected STAGGER_S apart from
    `first_injection` on."""
    out = []
    for group, magnitude in enumerate(magnitudes):
        for k in range(per_magnitude):
            index = group * per_magnitude + k
            out.append(
                Service(f"ttd-{index}", 700 + index, magnitude, first_injection + STAGGER_S * k)
            )
    return out


@dataclass(frozen=True)
class Detection:
    config: str
    name: str
    service: str
    magnitude_ms: float
    injected_at: float  # Unix seconds
    verdict_before: str | None  # the last verdict seen before the injection
    breach_s: float | None  # breachSince - injection
    fail_s: float | None  # start of the evaluation that first said Fail - injection
    fail_seen_s: float | None  # when the harness first read Fail - injection
    event_s: float | None  # the RegressionDetected Event's time - injection

    @property
    def false_alarm(self) -> bool:
        return self.verdict_before == "Fail" or (self.fail_s is not None and self.fail_s < 0)


@dataclass(frozen=True)
class ReplayRow:
    config: DetectConfig
    magnitude_ms: float
    fail_s: tuple[float | None, ...]  # per service
    breach_s: tuple[float | None, ...]


@dataclass(frozen=True)
class TraceRow:
    offset_s: float
    candidate_ms: float | None
    baseline_ms: float | None
    delta_ms: float | None
    ci_ms: tuple[float, float] | None
    verdict: str
    judged: str = "–"  # samples judged: the whole window, or those since a level shift


@dataclass(frozen=True)
class TimeToDetectResult:
    live: tuple[DetectConfig, ...]
    detections: tuple[Detection, ...]
    replay: tuple[ReplayRow, ...]
    trace: tuple[TraceRow, ...]  # the default-window replay of the first service
    trace_config: DetectConfig | None
    services: int  # per magnitude
    magnitudes_ms: tuple[float, ...]
    run_s: float  # the live part: operator start to the last detection (or the deadline)
    wall_s: float
    machine: str
    load_before: tuple[float, float, float]
    command: str
    notes: tuple[str, ...] = field(default_factory=tuple)


def summary(values: Sequence[float | None]) -> tuple[float, float, int]:
    """(median, max, missing) of the measurements; a missing one is a detection that did
    not happen before the deadline."""
    found = [v for v in values if v is not None]
    missing = len(values) - len(found)
    if not found:
        return math.nan, math.nan, missing
    return statistics.median(found), max(found), missing


def holds(values: Sequence[float | None], target_s: float) -> bool:
    return bool(values) and all(v is not None and v <= target_s for v in values)


# ------------------------------------------------------------------ the run


def _history(work: Path, services: Sequence[Service], after: timedelta) -> Any:
    from perfguard.local.prometheus import LocalPrometheus, backfill
    from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily, generate_file

    first = datetime.fromtimestamp(min(s.injected_at for s in services), UTC)
    start = first - timedelta(minutes=30)
    end = first + after
    history = end - start
    for service in services:
        path = work / f"{service.name}.om"
        generate_file(
            Scenario(
                service=service.name,
                days=history / timedelta(days=1),
                end=end,
                step=timedelta(seconds=DATA_STEP_S),
                seed=service.seed,
                canary_share=CANARY_SHARE,
                include=frozenset({SeriesFamily.LATENCY}),
                injections=(
                    Injection(
                        InjectionKind.LATENCY_SHIFT,
                        start=datetime.fromtimestamp(service.injected_at, UTC) - start,
                        magnitude=service.magnitude_ms,
                        track="canary",
                        stage="inference",
                    ),
                ),
            ),
            path,
        )
        backfill(path, work / "prometheus")
        path.unlink()
    server = LocalPrometheus(work / "prometheus")
    server.start()
    return server


def _parse_time(text: str | None) -> float | None:
    from perfguard.times import parse_time

    if not text:
        return None
    return parse_time(text).timestamp()


def _breach(status: dict[str, Any]) -> float | None:
    for metric in status.get("metrics") or []:
        if metric.get("statistic") == "p95" and metric.get("breachSince"):
            return _parse_time(metric["breachSince"])
    return None


@dataclass
class _Watch:
    config: str
    name: str
    service: str
    magnitude_ms: float
    injected_at: float
    deadline: float
    verdict_before: str | None = None
    breach_at: float | None = None
    fail_at: float | None = None
    fail_seen_at: float | None = None
    event_at: float | None = None

    def done(self, now: float) -> bool:
        found = self.fail_at is not None and self.event_at is not None
        return found or now > self.deadline

    def result(self) -> Detection:
        def rel(at: float | None) -> float | None:
            return None if at is None or at > self.deadline else at - self.injected_at

        return Detection(
            config=self.config,
            name=self.name,
            service=self.service,
            magnitude_ms=self.magnitude_ms,
            injected_at=self.injected_at,
            verdict_before=self.verdict_before,
            breach_s=rel(self.breach_at),
            fail_s=rel(self.fail_at),
            fail_seen_s=rel(self.fail_seen_at),
            event_s=rel(self.event_at),
        )


def _poll(api: Any, namespace: str, watches: dict[str, _Watch]) -> None:
    import kubernetes

    now = time.time()
    custom = kubernetes.client.CustomObjectsApi(api)
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
    for item in items:
        watch = watches.get(item["metadata"]["name"])
        if watch is None:
            continue
        status = item.get("status") or {}
        verdict = status.get("verdict")
        if now < watch.injected_at and verdict:
            watch.verdict_before = verdict
        if verdict == "Fail" and watch.fail_at is None:
            watch.fail_at = _parse_time(status.get("lastEvaluationTime"))
            watch.fail_seen_at = now
            watch.breach_at = _breach(status)
    events = kubernetes.client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector="reason=RegressionDetected"
    )
    for event in events.items:
        watch = watches.get(event.involved_object.name)
        if watch is None:
            continue
        moment = event.event_time or event.first_timestamp
        at = moment.timestamp() if moment is not None else now
        if watch.event_at is None or at < watch.event_at:
            watch.event_at = at


def _trace_row(offset: float, status: dict[str, Any]) -> TraceRow:
    metric = next(
        (m for m in status.get("metrics") or [] if m.get("statistic") == "p95"),
        {},
    )

    def ms(key: str) -> float | None:
        value = metric.get(key)
        return None if value is None else 1000 * float(value)

    ci = metric.get("ci95")
    counts = metric.get("samples") or {}
    shift = metric.get("levelShift")
    judged = str(counts.get("candidate", "–"))
    if shift:
        change = f"a level shift of {1000 * float(shift['change']):+.1f} ms"
        # Judged on the samples since, the metric counts exactly those; otherwise the whole
        # window and the shift (docs/perfbaseline.md).
        if counts.get("candidate") != shift.get("samplesAfter"):
            judged += f" (whole window, and {change} {shift['samplesAfter']} samples ago)"
        else:
            judged += f" (since {change})"
    return TraceRow(
        offset_s=offset,
        candidate_ms=ms("current"),
        baseline_ms=ms("baseline"),
        delta_ms=ms("delta"),
        ci_ms=(1000 * ci[0], 1000 * ci[1]) if ci else None,
        verdict=f"{metric.get('verdict', '?')} → {status.get('verdict', '?')}",
        judged=judged,
    )


async def replay_service(
    client: Any, config: DetectConfig, service: Service, *, trace: bool = False
) -> tuple[float | None, float | None, list[TraceRow]]:
    """Evaluate one service every interval from two intervals before its injection,
    carrying the status forward as the operator does, until it fails or `give_up_s` has
    passed: (seconds to Fail, breachSince after the injection, the trace if asked)."""
    from perfguard.api.perfbaseline import PerfBaselineSpec
    from perfguard.engine.perfbaseline import evaluate
    from perfguard.engine.tracks import plan_tracks
    from perfguard.status import next_status

    spec = PerfBaselineSpec.model_validate(
        perfbaseline("replay", "replay", service.name, config)["spec"]
    )
    plan = plan_tracks(spec, None)
    injected = datetime.fromtimestamp(service.injected_at, UTC)
    status: dict[str, Any] = {}
    rows: list[TraceRow] = []
    at = injected - timedelta(seconds=2 * config.interval_s)
    limit = injected + timedelta(seconds=config.give_up_s)
    while at <= limit:
        outcome = await evaluate(spec, plan, status, at, client)
        status = next_status(
            status,
            outcome.fields,
            outcome.conditions,
            generation=1,
            at=at,
            measured=outcome.verdict is not None,
        )
        offset = (at - injected).total_seconds()
        if trace:
            rows.append(_trace_row(offset, status))
        if outcome.verdict == "Fail" and offset >= 0:
            since = _breach(status)
            return offset, None if since is None else since - service.injected_at, rows
        at += timedelta(seconds=config.interval_s)
    return None, None, rows


async def _replay(
    url: str, config: DetectConfig, services: Sequence[Service], trace: bool
) -> tuple[ReplayRow, list[TraceRow]]:
    """Each service replayed (replay_service); the first one traced if `trace`."""
    from perfguard.sources.prometheus import PrometheusClient

    fails: list[float | None] = []
    breaches: list[float | None] = []
    rows: list[TraceRow] = []
    async with PrometheusClient(url, timeout=timedelta(seconds=30)) as client:
        for index, service in enumerate(services):
            fail, breach, steps = await replay_service(
                client, config, service, trace=trace and index == 0
            )
            fails.append(fail)
            breaches.append(breach)
            rows += steps
    magnitude = services[0].magnitude_ms if services else math.nan
    return ReplayRow(config, magnitude, tuple(fails), tuple(breaches)), rows


def run_time_to_detect(
    live: Sequence[DetectConfig] = LIVE,
    replay: Sequence[DetectConfig] = REPLAY,
    *,
    services: int = SERVICES,
    magnitudes: Sequence[float] = MAGNITUDES_MS,
    lead_s: float = LEAD_S,
    command: str = "python -m bench.time_to_detect",
) -> TimeToDetectResult:
    import kubernetes

    from perfguard.local.controlplane import ControlPlane
    from perfguard.local.processes import free_port

    started = time.time()
    load_before = load_average()
    longest = max(c.give_up_s for c in (*live, *replay))
    notes: list[str] = []
    rows: list[ReplayRow] = []
    trace: list[TraceRow] = []
    trace_config = replay[-1] if replay else None
    with tempfile.TemporaryDirectory(prefix="perfguard-ttd-") as tmp:
        work = Path(tmp)
        plane = ControlPlane(workdir=work / "controlplane").start()
        prometheus: Any = None
        operator: OperatorProcess | None = None
        try:
            apply_crds(plane.kubeconfig)
            api = kube_client(plane.kubeconfig)
            # Generating, backfilling and starting take ~20 s (the injections are in the
            # data, so they are fixed first); the lead leaves every resource evaluated
            # before its injection.
            first = math.ceil((time.time() + lead_s + 20) / DATA_STEP_S) * DATA_STEP_S
            planned = plan_services(first, services, magnitudes)
            after = timedelta(seconds=STAGGER_S * services + longest + 300)
            prometheus = _history(work, planned, after)
            namespace = "ttd"
            kubernetes.client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
            custom = kubernetes.client.CustomObjectsApi(api)
            watches: dict[str, _Watch] = {}
            for config in live:
                for index, service in enumerate(planned):
                    name = f"{config.key}-{index}"
                    body = perfbaseline(name, namespace, service.name, config)
                    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
                    watches[name] = _Watch(
                        config.key,
                        name,
                        service.name,
                        service.magnitude_ms,
                        service.injected_at,
                        deadline=service.injected_at + config.give_up_s,
                    )
            operator = OperatorProcess(
                namespace=namespace,
                prometheus_url=prometheus.url,
                kubeconfig=plane.kubeconfig,
                log=work / "operator.log",
                port=free_port(),
            )
            operator.start()
            lead = first - time.time()
            print(f"time to detect: first injection in {lead:.0f} s", file=sys.stderr)
            if lead < 20:
                notes.append(f"only {lead:.0f} s between the operator's start and the injection")
            while not all(w.done(time.time()) for w in watches.values()):
                _poll(api, namespace, watches)
                time.sleep(POLL_S)
            _poll(api, namespace, watches)
            run_s = time.time() - operator.started_at
            operator.stop()
            operator = None
            for config in replay:
                for magnitude in magnitudes:
                    group = [s for s in planned if s.magnitude_ms == magnitude]
                    traced = config is trace_config and magnitude == magnitudes[0]
                    row, steps = asyncio.run(_replay(prometheus.url, config, group, traced))
                    rows.append(row)
                    trace.extend(steps)
        finally:
            if operator is not None:
                operator.stop()
            if prometheus is not None:
                prometheus.stop()
            plane.stop()
    return TimeToDetectResult(
        live=tuple(live),
        detections=tuple(w.result() for w in watches.values()),
        replay=tuple(rows),
        trace=tuple(trace),
        trace_config=trace_config,
        services=services,
        magnitudes_ms=tuple(magnitudes),
        run_s=run_s,
        wall_s=time.time() - started,
        machine=machine(),
        load_before=load_before,
        command=command,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------ the section


def _s(value: float | None) -> str:
    if value is None:
        return "missed"
    if math.isnan(value):
        return "–"
    return f"{value:.0f} s"


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _group(result: TimeToDetectResult, config: DetectConfig, magnitude: float) -> list[Detection]:
    return [d for d in result.detections if d.config == config.key and d.magnitude_ms == magnitude]


def _reading(result: TimeToDetectResult) -> str:
    """What the figures say, from the figures."""
    lines = []
    for config in result.live:
        for magnitude in result.magnitudes_ms:
            mine = [
                d
                for d in result.detections
                if d.config == config.key and d.magnitude_ms == magnitude
            ]
            breach, _, _ = summary([d.breach_s for d in mine])
            fail, worst, missing = summary([d.fail_s for d in mine])
            if math.isnan(fail):
                lines.append(
                    f"- {config.key.upper()}, +{magnitude:g} ms: no Fail within "
                    f"{config.give_up_s:.0f} s of the injection."
                )
                continue
            lines.append(
                f"- {config.key.upper()}, +{magnitude:g} ms: breachSince dated the breach a median "
                f"{_s(breach)} after the injection (window {config.window_s:.0f} s), Fail a "
                f"median {_s(fail)} after it (worst {_s(worst)}"
                + (f", {missing} missed" if missing else "")
                + f"; target {config.target_s:.0f} s)."
            )
    return "\n".join(lines)


def time_to_detect_section(result: TimeToDetectResult) -> str:
    summary_rows = []
    for config in result.live:
        for magnitude in result.magnitudes_ms:
            mine = [
                d
                for d in result.detections
                if d.config == config.key and d.magnitude_ms == magnitude
            ]
            fails = [d.fail_s for d in mine]
            events = [d.event_s for d in mine]
            fail_median, fail_max, fail_missing = summary(fails)
            event_median, event_max, _ = summary(events)
            ok = holds(fails, config.target_s) and holds(events, config.target_s)
            summary_rows.append(
                [
                    f"{config.key.upper()}: {config.label}",
                    f"+{magnitude:g} ms",
                    f"{config.target_s:.0f} s",
                    f"{len(mine)}" + (f" ({fail_missing} missed)" if fail_missing else ""),
                    f"{_s(fail_median)} / {_s(fail_max)}",
                    f"{_s(event_median)} / {_s(event_max)}",
                    f"{sum(d.false_alarm for d in mine)}",
                    "yes" if ok else "**no**",
                ]
            )
    live_table = markdown_table(
        [
            "configuration",
            "shift",
            "target (sustainFor + 2 × interval)",
            "measurements",
            "to Fail: median / max",
            "to Event: median / max",
            "Fail before the injection",
            "target holds",
        ],
        summary_rows,
    )
    each = markdown_table(
        [
            "PerfBaseline",
            "shift",
            "verdict before",
            "breach dated from (breachSince)",
            "Fail (evaluation start)",
            "Fail read by the harness",
            "RegressionDetected Event",
        ],
        (
            [
                f"{d.name} ({d.service})",
                f"+{d.magnitude_ms:g} ms",
                d.verdict_before or "–",
                _s(d.breach_s),
                _s(d.fail_s),
                _s(d.fail_seen_s),
                _s(d.event_s),
            ]
            for d in result.detections
        ),
    )
    replay_rows = []
    for row in result.replay:
        median, worst, missing = summary(row.fail_s)
        breach_median, _, _ = summary(row.breach_s)
        fixed = row.config.window_s + row.config.sustain_s
        replay_rows.append(
            [
                row.config.label,
                f"+{row.magnitude_ms:g} ms",
                ", ".join(_s(v) for v in row.fail_s),
                f"{_s(median)} / {_s(worst)}" + (f" ({missing} missed)" if missing else ""),
                _s(breach_median),
                _s(median - fixed) if not math.isnan(median) else "–",
                f"{row.config.target_s:.0f} s",
                "yes" if holds(row.fail_s, row.config.target_s) else "**no**",
            ]
        )
    replay_table = markdown_table(
        [
            "replayed configuration",
            "shift",
            "to Fail, per service",
            "median / max",
            "breachSince, median",
            "median − window − sustainFor",
            "target",
            "holds",
        ],
        replay_rows,
    )
    trace = ""
    if result.trace and result.trace_config is not None:
        trace_table = markdown_table(
            [
                "evaluation (s after the injection)",
                "candidate p95 (ms)",
                "stable p95 (ms)",
                "candidate − stable (ms)",
                "samples judged",
                "change judged (ms)",
                "its 95 % interval (ms)",
                "metric → overall verdict",
            ],
            (
                [
                    f"{r.offset_s:+.0f}",
                    _ms(r.candidate_ms),
                    _ms(r.baseline_ms),
                    _ms(_minus(r.candidate_ms, r.baseline_ms)),
                    r.judged,
                    _ms(r.delta_ms),
                    "–" if r.ci_ms is None else f"[{r.ci_ms[0]:.1f}, {r.ci_ms[1]:.1f}]",
                    r.verdict,
                ]
                for r in result.trace
            ),
        )
        trace = f"""
Evaluation by evaluation (the replay of {result.trace_config.label}, the first
+{result.magnitudes_ms[0]:g} ms service): candidate and stable p95 are the means over the
samples judged, which are the whole window or, once the engine finds that candidate −
stable changed level inside it (`perfguard.analysis.level_shift`), only the samples since
(with fewer than 10 since, the newer level may be judged from the whole window and the
shift: docs/perfbaseline.md); "change judged" is the estimate the verdict rests on (after
clipping the paired difference at its own median ± 3 robust SDs) with its interval. A
metric is Regressed when that interval excludes 0 and the estimate is above
{THRESHOLD_MS:g} ms; the verdict is Fail when the breach, dated from the level shift (or the
window's first sample without one), has held `sustainFor`.

{trace_table}
"""
    notes = "".join(f"\n- {n}" for n in result.notes)
    load = result.load_before
    magnitudes = " and ".join(f"+{m:g} ms" for m in result.magnitudes_ms)
    return f"""## Time to detect

A shift of the canary's inference stage ({magnitudes}; {result.services} generated
services each, one seed per service, canary {CANARY_SHARE:.0%} of the traffic,
{DATA_STEP_S:g} s scrapes) injected into the generated history at known wall-clock instants
({STAGGER_S:g} s apart within a group, so evaluations meet them at different phases),
shortly after one operator process started watching all {len(result.detections)}
PerfBaselines (each configuration on each service) against a real kube-apiserver and
Prometheus. Threshold: p95 `maxIncrease: {THRESHOLD_MS:g}ms`, comparison `Concurrent`.
Times are from the injection; "Fail" is the start of the evaluation that first reported
`verdict: Fail` (`status.lastEvaluationTime`), "Event" the `RegressionDetected` Event's own
time (both whole seconds); the harness polled every {POLL_S:g} s. A measurement is missed
when it did not come within the target plus {MISSED_AFTER_S:.0f} s, or (if later) the
window, `sustainFor` and three intervals.

{live_table}

Each measurement:

{each}

The same data replayed through the operator's engine (each service evaluated every
interval from two intervals before its injection, the status carried forward as the
operator does), with windows too long to wait for live (the default `analysis.window` is
10m):

{replay_table}
{trace}
What the figures say:

{_reading(result)}

How detection works now: while the shift covers only part of the window, the engine
splits the window at the level shift. Once the new level has outlasted a burst (3 +
rateWindow / step samples) and still holds at the window's end, a newer level beyond the
limit is Regressed from the whole window and the shift (the onset of a regression); with
fewer samples it is Inconclusive (never Pass), and from 10 on it is judged on its own
samples. The breach is dated from the shift (`breachSince`), and the verdict is Fail at the
first evaluation where it is Regressed and has held `sustainFor` in the data. Time to Fail
is therefore about `sustainFor` (plus the rate window's ramp), plus up to one interval for
the evaluation to come round; an Inconclusive evaluation in between does not restart the
clock (only a Pass does). Machine: {result.machine}; load average
{load[0]:.1f} before the run.{notes}

Command: `{result.command}` (wall time {result.wall_s / 60:.1f} min; the live part
{result.run_s / 60:.1f} min).
"""


def load_result(path: Path) -> TimeToDetectResult:
    """A result written with `--save`, to render its section again without a run."""
    raw = json.loads(path.read_text())

    def config(d: dict[str, Any]) -> DetectConfig:
        return DetectConfig(**d)

    return TimeToDetectResult(
        live=tuple(config(c) for c in raw["live"]),
        detections=tuple(Detection(**d) for d in raw["detections"]),
        replay=tuple(
            ReplayRow(
                config(r["config"]),
                r["magnitude_ms"],
                tuplify(r["fail_s"]),  # type: ignore[arg-type]
                tuplify(r["breach_s"]),  # type: ignore[arg-type]
            )
            for r in raw["replay"]
        ),
        trace=tuple(TraceRow(**{k: tuplify(v) for k, v in t.items()}) for t in raw["trace"]),  # type: ignore[arg-type]
        trace_config=config(raw["trace_config"]) if raw.get("trace_config") else None,
        **{
            k: tuplify(v)  # type: ignore[misc]
            for k, v in raw.items()
            if k not in {"live", "detections", "replay", "trace", "trace_config"}
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one small configuration, two services"
    )
    parser.add_argument("--save", type=Path, help="also write the result as JSON here")
    parser.add_argument("--render", type=Path, help="print the section of a saved result")
    args = parser.parse_args(argv)
    if args.render:
        print(time_to_detect_section(load_result(args.render)))
        return 0
    command = "python -m bench.time_to_detect " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if args.quick:
        result = run_time_to_detect(
            QUICK_LIVE,
            QUICK_REPLAY,
            services=QUICK_SERVICES,
            magnitudes=QUICK_MAGNITUDES_MS,
            command=command.strip(),
        )
    else:
        result = run_time_to_detect(command=command.strip())
    if args.save:
        save_json(result, args.save)
    print(time_to_detect_section(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
