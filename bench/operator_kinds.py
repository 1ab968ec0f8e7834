"""Operator scale and cost for EnvParity and CapacityPlan: one operator process per kind.

PerfBaseline's version of this is bench/operator_scale.py; bench/envparity.py and
bench/capacity.py measure these two kinds through their evaluation functions only. Here
each kind is evaluated by a real operator process (`python -m perfguard.cli run
--namespace NS ...`, see scale_support.OperatorProcess) against a real kube-apiserver +
etcd (perfguard.local.controlplane) and a real Prometheus (Debian's, as bench/capacity.py
uses), one kind after the other:

- EnvParity: bench/envparity.py's workloads (a Deployment with two containers, four env
  vars and a ConfigMap, two pods with digests in their status), 500 in each of two
  namespaces, one of them different; one EnvParity comparing them, and the operator
  watching both namespaces (so it also carries the watch on their Deployments and
  ConfigMaps, the prompt re-evaluation path);
- CapacityPlan: bench/capacity.py's fleet, 64 nodes × 8 GPUs, 7 days at a 5-minute step,
  generated and backfilled, but ending in the near future rather than on a fixed date, so
  an evaluation at wall-clock now has data; the 64 Node objects exist in the API server
  (the operator selects its hosts from them); one CapacityPlan.

`spec.interval` is 60 s for both (CapacityPlan's default is 5 minutes) so that a few
evaluations fit in a few minutes; the CapacityPlan's query timeout is 60 s, as in
bench/capacity.py. Once the resource has been evaluated WARMUP_EVALUATIONS times (the
start-up), the harness measures until it has been evaluated FULL.window_intervals more
times, scraping the operator's /metrics
every 15 s as a Prometheus would (and every BOUNDARY_POLL_S around the window's ends, so
that it begins and ends right after an evaluation):

- operator CPU (/proc, threads included) per evaluation, peak RSS (VmHWM);
- Prometheus requests and query time (its own /metrics);
- API requests by verb and resource, from kube-apiserver's audit log: the operator's
  requests only (kube-apiserver's own informers restart their watches every few minutes,
  which `apiserver_request_total` would count too); kube-apiserver and etcd CPU;
- evaluation lag: the gap between successive evaluation starts (from
  `perfguard_last_evaluation_timestamp_seconds`) minus the interval;
- how each evaluation ended, and status patches against evaluations.

For CapacityPlan, the same queries are then sent once more, one after another with the
operator stopped: Prometheus' own time for one evaluation's work.

Run: `python -m bench.operator_kinds [--quick] [--save PATH] [--render PATH]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import envparity as envparity_bench
from bench.capacity import GPUS, NODES, fleet_scenario
from bench.operator_scale import APISERVER_SERIES, PROMETHEUS_SERIES, _delta
from bench.scale_support import (
    GROUP,
    VERSION,
    LagFigures,
    OperatorProcess,
    Sample,
    apply_crds,
    by_label,
    custom_resource,
    evaluation_lags,
    fetch,
    kube_client,
    load_average,
    machine,
    markdown_table,
    parse_metrics,
    patches_row,
    percentile,
    proc_cpu_seconds,
    proc_memory_mib,
    ratio,
    save_json,
    seconds,
    total,
    tuplify,
)

REFERENCE, TARGET = "bench-staging", "bench-prod"
CAPACITY_NAMESPACE = "capacity"
NAME = "bench"
DRIFTED = "svc-007"
HISTORY_DAYS = 7
# bench/capacity.py's client timeout. The default (10 s per query) is for PerfBaseline's
# small queries; a 512-GPU week of DCGM series takes seconds per query even alone.
CAPACITY_QUERY_TIMEOUT = "60s"
OPERATOR_SERIES = (
    "perfguard_last_evaluation_timestamp_seconds",
    "perfguard_evaluations_total",
    "perfguard_status_patches_total",
    "perfguard_evaluation_duration_seconds_sum",
    "perfguard_evaluation_duration_seconds_count",
    "perfguard_verdict",
    "perfguard_ready",
)
QUERY_HANDLERS = ("/api/v1/query_range", "/api/v1/query")
# How often the harness scrapes the operator around the window's two ends (and only there).
BOUNDARY_POLL_S = 0.5
# Evaluations before the window: the start-up. An EnvParity operator's watches list every
# Deployment and ConfigMap of the compared namespaces when they start, which wakes the
# EnvParity again a few seconds after its first evaluation (the prompt path).
WARMUP_EVALUATIONS = 2
# kube-apiserver's audit log, one record per request as it is received, for the kubeconfig's
# user only (the operator's and the harness' requests; kube-apiserver's own loopback
# informers, whose watches restart every few minutes, are another user).
AUDIT_POLICY = """apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["ResponseStarted", "ResponseComplete", "Panic"]
rules:
  - level: Metadata
    users: ["admin"]
  - level: None
"""


@dataclass(frozen=True)
class Sizes:
    workloads: int  # Deployments in each of the two namespaces
    nodes: int
    gpus_per_node: int
    interval_s: float
    window_intervals: int  # evaluations measured after the first
    scrape_every_s: float
    horizon: timedelta  # generated history past the start of the run


FULL = Sizes(
    workloads=500,
    nodes=NODES,
    gpus_per_node=GPUS,
    interval_s=60.0,
    window_intervals=5,
    scrape_every_s=15.0,
    horizon=timedelta(hours=2),
)
QUICK = Sizes(
    workloads=20,
    nodes=2,
    gpus_per_node=2,
    interval_s=3.0,
    window_intervals=1,
    scrape_every_s=0.5,
    horizon=timedelta(minutes=30),
)


# ------------------------------------------------------------------ the resources


def envparity(namespace: str, interval_s: float) -> dict[str, Any]:
    """bench/envparity.py's comparison (Deployments labelled tier=bench, staging against
    production), as a resource in the target namespace, like docs/examples/envparity.yaml."""
    spec = {
        "reference": {"namespace": REFERENCE},
        "targets": [{"namespace": TARGET}],
        "workloads": {"kinds": ["Deployment"], "selector": {"matchLabels": {"tier": "bench"}}},
        "interval": f"{interval_s:g}s",
    }
    return custom_resource("EnvParity", NAME, namespace, spec)


def capacityplan(namespace: str, interval_s: float) -> dict[str, Any]:
    """bench/capacity.py's plan (7 days at 5 minutes, two growth scenarios, every anomaly
    detector, a 60 s query timeout), over every Node, evaluated every `interval_s`."""
    spec = {
        "traffic": {"query": 'sum(rate(inference_requests_total{service="resnet"}[5m]))'},
        "history": f"{HISTORY_DAYS}d",
        "step": "5m",
        "scenarios": [
            {"name": "plus5", "growthPercent": 5},
            {"name": "plus20", "growthPercent": 20},
        ],
        "prometheus": {"timeout": CAPACITY_QUERY_TIMEOUT},
        "interval": f"{interval_s:g}s",
    }
    return custom_resource("CapacityPlan", NAME, namespace, spec)


def fleet(sizes: Sizes) -> Any:
    """bench/capacity.py's fleet at `sizes`, from HISTORY_DAYS before the start of the run
    to the end of its horizon."""
    end = datetime.now(UTC) + sizes.horizon
    days = HISTORY_DAYS + sizes.horizon / timedelta(days=1) + 1 / 24
    return fleet_scenario(sizes.nodes, sizes.gpus_per_node, end, days=days)


@contextlib.contextmanager
def _workloads(count: int) -> Iterator[None]:
    """bench/envparity.py's `_populate` creates envparity.WORKLOADS workloads: this many."""
    saved = envparity_bench.WORKLOADS
    envparity_bench.WORKLOADS = count
    try:
        yield
    finally:
        envparity_bench.WORKLOADS = saved


# ------------------------------------------------------------------ results

Tally = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class KindResult(LagFigures):
    kind: str
    scale: str  # what was evaluated, in words
    interval_s: float
    setup: tuple[tuple[str, float], ...]  # (step, seconds) of preparing the data
    startup_s: float  # operator process start -> the first evaluation started
    window_s: float
    evaluations: int
    errors: int
    operator_cpu_s: float
    peak_rss_mib: float
    end_rss_mib: float
    duration_s: float  # evaluation wall time summed over the window (operator histogram)
    status_patches: int
    prometheus_requests: int
    prometheus_query_s: float  # engine: prepare + inner eval + result sort
    prometheus_queue_s: float
    prometheus_http_s: float  # the query handlers, JSON encoding included
    prometheus_cpu_s: float
    api_requests: int  # the operator's, from the audit log
    api_breakdown: Tally
    apiserver_cpu_s: float
    etcd_cpu_s: float
    lag_first: tuple[float, ...]
    lag_steady: tuple[float, ...]
    scrapes: int
    scrape_wall_s: float
    scrape_every_s: float
    load_end: tuple[float, float, float]
    outcomes: Tally = ()  # "verdict, Ready status" of each evaluation started in the window
    # Gaps between the start-up evaluations (before the window), minus the interval.
    warmup_lags: tuple[float, ...] = ()
    # How far the wall clock moved against the monotonic clock during the window: a step
    # (the VM's clock being corrected) shifts the evaluation times the lags come from.
    clock_step_s: float = 0.0
    status: tuple[tuple[str, str], ...] = ()  # selected status fields at the end
    # Wall time of each of the harness' /metrics scrapes in the window: the page is served
    # on the operator's event loop, so a slow scrape is a loop busy with something else.
    scrape_walls: tuple[float, ...] = ()
    events: Tally = ()
    marks: Tally = ()
    # Status patches by perfguard_status_patches_total's cause (empty in results saved before
    # the label existed).
    patch_causes: Tally = ()
    object_kib: float = math.nan
    # CapacityPlan: the same queries one after another, the operator stopped.
    sequential_requests: int = 0
    sequential_http_s: float = math.nan
    sequential_query_s: float = math.nan
    sequential_cpu_s: float = math.nan

    def per_evaluation(self, value: float) -> float:
        return value / self.evaluations if self.evaluations else math.nan

    @property
    def cpu_s_per_evaluation(self) -> float:
        return self.per_evaluation(self.operator_cpu_s)

    @property
    def prometheus_rps(self) -> float:
        return self.prometheus_requests / self.window_s if self.window_s else math.nan

    @property
    def api_rps(self) -> float:
        return self.api_requests / self.window_s if self.window_s else math.nan


@dataclass(frozen=True)
class OperatorKindsResult:
    kinds: tuple[KindResult, ...]
    machine: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    command: str
    wall_s: float
    setup_s: float  # starting the control plane and Prometheus, generating the history
    prometheus_version: str
    quick: bool
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class Snapshot:
    at: float  # wall clock, comparable with the operator's and the audit log's times
    operator_cpu: float
    operator: list[Sample]
    prometheus: list[Sample]
    apiserver: list[Sample]
    etcd_cpu: float
    mono: float = math.nan  # monotonic clock: the window's length even if the wall clock steps


def audit_breakdown(lines: Iterable[str], since: float, until: float) -> Tally:
    """Requests received in (since, until] by verb and resource, from kube-apiserver's JSON
    audit log (AUDIT_POLICY). Non-resource requests (the harness' /metrics) are left out."""
    api: Counter[str] = Counter()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line still being written
        ref = event.get("objectRef") or {}
        if event.get("stage") != "RequestReceived" or not ref.get("resource"):
            continue
        at = datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
        if not since < at <= until:
            continue
        sub = ref.get("subresource")
        api[
            f"{str(event.get('verb', '?')).upper()} {ref['resource']}" + (f"/{sub}" if sub else "")
        ] += 1
    return tuple(sorted(api.items(), key=lambda kv: (-kv[1], kv[0])))


def outcome_of(samples: Sequence[Sample], kind: str) -> tuple[float, str] | None:
    """The resource's latest evaluation start and how it ended ("verdict, Ready status"),
    from one scrape of the operator: the gauges are set together after an evaluation."""
    mine = [s for s in samples if s.labels.get("kind") == kind and s.labels.get("name") == NAME]
    stamp = max((s.value for s in mine if s.name == OPERATOR_SERIES[0]), default=0.0)
    if stamp <= 0:
        return None
    verdict = next(
        (s.labels["verdict"] for s in mine if s.name == "perfguard_verdict" and s.value == 1),
        "no verdict",
    )
    ready = "True" if total(mine, "perfguard_ready") == 1 else "False"
    return stamp, f"{verdict}, Ready {ready}"


def kind_result(
    *,
    kind: str,
    scale: str,
    interval_s: float,
    setup: Sequence[tuple[str, float]],
    startup_s: float,
    before: Snapshot,
    after: Snapshot,
    starts: dict[str, set[float]],
    outcomes: dict[float, str],
    audit: Iterable[str],
    peak_rss: float,
    end_rss: float,
    scrapes: int,
    scrape_wall: float,
    scrape_every_s: float,
    load_end: tuple[float, float, float],
) -> KindResult:
    """The figures of one kind's window, from the snapshots at its two ends."""
    mine = {"kind": kind}
    ok = _delta(
        after.operator, before.operator, "perfguard_evaluations_total", outcome="ok", **mine
    )
    errors = _delta(
        after.operator, before.operator, "perfguard_evaluations_total", outcome="error", **mine
    )
    engine = "prometheus_engine_query_duration_seconds_sum"
    lags = evaluation_lags(starts, interval_s, before.at, after.at)
    warmup = evaluation_lags(starts, interval_s, -math.inf, before.at)
    breakdown = audit_breakdown(audit, before.at, after.at)
    ended = Counter(v for at, v in outcomes.items() if before.at < at <= after.at)
    return KindResult(
        kind=kind,
        scale=scale,
        interval_s=interval_s,
        setup=tuple(setup),
        startup_s=startup_s,
        window_s=(
            after.mono - before.mono
            if math.isfinite(after.mono - before.mono)
            else after.at - before.at
        ),
        evaluations=int(ok + errors),
        errors=int(errors),
        operator_cpu_s=after.operator_cpu - before.operator_cpu,
        peak_rss_mib=peak_rss,
        end_rss_mib=end_rss,
        duration_s=_delta(
            after.operator, before.operator, "perfguard_evaluation_duration_seconds_sum", **mine
        ),
        status_patches=int(
            _delta(after.operator, before.operator, "perfguard_status_patches_total", **mine)
        ),
        patch_causes=by_label(
            after.operator, before.operator, "perfguard_status_patches_total", "cause", **mine
        ),
        prometheus_requests=int(
            sum(
                _delta(
                    after.prometheus, before.prometheus, "prometheus_http_requests_total", handler=h
                )
                for h in QUERY_HANDLERS
            )
        ),
        prometheus_query_s=sum(
            _delta(after.prometheus, before.prometheus, engine, slice=part)
            for part in ("prepare_time", "inner_eval", "result_sort")
        ),
        prometheus_queue_s=_delta(after.prometheus, before.prometheus, engine, slice="queue_time"),
        prometheus_http_s=sum(
            _delta(
                after.prometheus,
                before.prometheus,
                "prometheus_http_request_duration_seconds_sum",
                handler=h,
            )
            for h in QUERY_HANDLERS
        ),
        prometheus_cpu_s=_delta(after.prometheus, before.prometheus, "process_cpu_seconds_total"),
        api_requests=sum(v for _, v in breakdown),
        api_breakdown=breakdown,
        apiserver_cpu_s=_delta(after.apiserver, before.apiserver, "process_cpu_seconds_total"),
        etcd_cpu_s=after.etcd_cpu - before.etcd_cpu,
        lag_first=lags.first,
        lag_steady=lags.steady,
        outcomes=tuple(sorted(ended.items(), key=lambda kv: (-kv[1], kv[0]))),
        warmup_lags=warmup.first + warmup.steady,
        scrapes=scrapes,
        scrape_wall_s=scrape_wall,
        scrape_every_s=scrape_every_s,
        load_end=load_end,
    )


# ------------------------------------------------------------------ the run


class _Operator(OperatorProcess):
    """OperatorProcess watching more than one namespace (`--namespace` repeated)."""

    also: tuple[str, ...] = ()

    @property
    def command(self) -> list[str]:
        extra = [arg for namespace in self.also for arg in ("--namespace", namespace)]
        return [*super().command, *extra]


class _Bench:
    def __init__(self, work: Path, sizes: Sizes) -> None:
        self.work = work
        self.sizes = sizes
        self.plane: Any = None
        self.prometheus: Any = None
        self.api: Any = None
        self.hosts: list[str] = []
        self.audit = work / "audit.log"
        self.capacity_setup: list[tuple[str, float]] = []
        self.capacity_scale = ""
        self.began = time.monotonic()

    def progress(self, message: str) -> None:
        print(f"  [{time.monotonic() - self.began:5.0f} s] {message}", file=sys.stderr, flush=True)

    # -- servers

    def start(self) -> None:
        from perfguard.local.controlplane import ControlPlane
        from perfguard.local.prometheus import LocalPrometheus, backfill
        from perfguard.synthetic import generate_file

        policy = self.work / "audit-policy.yaml"
        policy.write_text(AUDIT_POLICY)
        self.audit = self.work / "audit.log"
        self.plane = ControlPlane(
            workdir=self.work / "controlplane",
            extra_apiserver_args=(
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit}",
                "--audit-log-format=json",
            ),
        ).start()
        apply_crds(self.plane.kubeconfig)
        self.api = kube_client(self.plane.kubeconfig)
        self.progress("control plane up, CRDs applied")
        sizes = self.sizes
        scenario = fleet(sizes)
        self.hosts = list(scenario.node_names)
        history = self.work / "history.om"
        started = time.perf_counter()
        summary = generate_file(scenario, history)
        generated = time.perf_counter()
        backfill(history, self.work / "prometheus")
        backfilled = time.perf_counter()
        history.unlink()
        self.progress(f"history generated ({generated - started:.0f} s) and backfilled")
        self.capacity_setup = [
            ("generating the history", generated - started),
            ("backfilling it with promtool", backfilled - generated),
        ]
        gpus = sizes.nodes * sizes.gpus_per_node
        self.capacity_scale = (
            f"{sizes.nodes} nodes × {sizes.gpus_per_node} GPUs ({gpus} GPUs), "
            f"{HISTORY_DAYS} days at a 5-minute step ({summary.samples:,} samples backfilled)"
        )
        self.prometheus = LocalPrometheus(self.work / "prometheus")
        self.prometheus.start()
        self.progress("Prometheus up")

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        if self.plane is not None:
            self.plane.stop()

    # -- scraping

    def _operator(self, operator: OperatorProcess) -> list[Sample]:
        return parse_metrics(fetch(operator.metrics_url), OPERATOR_SERIES)

    def snapshot(self, operator: OperatorProcess) -> Snapshot:
        at, mono = time.time(), time.monotonic()
        cpu = proc_cpu_seconds(operator.pid)
        return Snapshot(
            at,
            cpu,
            self._operator(operator),
            self._prometheus(),
            parse_metrics(
                fetch(
                    f"{self.plane.url}/metrics", token=self.plane.token, cafile=self.plane.ca_file
                ),
                APISERVER_SERIES,
            ),
            total(
                parse_metrics(
                    fetch(f"http://127.0.0.1:{self.plane.etcd_port}/metrics"),
                    ("process_cpu_seconds_total",),
                ),
                "process_cpu_seconds_total",
            ),
            mono,
        )

    def _prometheus(self) -> list[Sample]:
        return parse_metrics(fetch(f"{self.prometheus.url}/metrics"), PROMETHEUS_SERIES)

    def operator(self, namespace: str, also: Sequence[str] = ()) -> _Operator:
        from perfguard.local.processes import free_port

        process = _Operator(
            namespace=namespace,
            prometheus_url=self.prometheus.url,
            kubeconfig=self.plane.kubeconfig,
            log=self.work / f"operator-{namespace}.log",
            port=free_port(),
        )
        process.also = tuple(also)
        return process

    # -- the kinds

    def run_envparity(self) -> KindResult:
        import kubernetes

        sizes = self.sizes
        started = time.perf_counter()
        with _workloads(sizes.workloads):
            envparity_bench._populate(self.api, REFERENCE, None)
            envparity_bench._populate(self.api, TARGET, DRIFTED)
        populated = time.perf_counter() - started
        self.progress(f"{2 * sizes.workloads} workloads created")
        kubernetes.client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP, VERSION, TARGET, "envparities", envparity(TARGET, sizes.interval_s)
        )
        pods = sizes.workloads * envparity_bench.PODS_PER_WORKLOAD
        scale = (
            f"{sizes.workloads} Deployments in each of 2 namespaces (bench/envparity.py's: "
            f"two containers, four env vars and a ConfigMap each, {pods} pods per namespace "
            f"with digests in their status; one target workload different)"
        )
        operator = self.operator(TARGET, also=(REFERENCE,))
        return self._measure(
            "EnvParity",
            "envparities",
            TARGET,
            operator,
            scale,
            [("creating the namespaces' objects", populated)],
        )

    def run_capacityplan(self) -> KindResult:
        import kubernetes

        sizes = self.sizes
        core = kubernetes.client.CoreV1Api(self.api)
        started = time.perf_counter()
        for host in self.hosts:
            core.create_node({"metadata": {"name": host, "labels": {"perfguard.dev/bench": "gpu"}}})
        core.create_namespace({"metadata": {"name": CAPACITY_NAMESPACE}})
        created = time.perf_counter() - started
        kubernetes.client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            GROUP,
            VERSION,
            CAPACITY_NAMESPACE,
            "capacityplans",
            capacityplan(CAPACITY_NAMESPACE, sizes.interval_s),
        )
        operator = self.operator(CAPACITY_NAMESPACE)
        result = self._measure(
            "CapacityPlan",
            "capacityplans",
            CAPACITY_NAMESPACE,
            operator,
            self.capacity_scale,
            [*self.capacity_setup, (f"creating {len(self.hosts)} Node objects", created)],
        )
        return self._sequential(result)

    def _observe(
        self, operator: OperatorProcess, kind: str, outcomes: dict[float, str]
    ) -> tuple[list[Sample], float]:
        began = time.perf_counter()
        samples = self._operator(operator)
        took = time.perf_counter() - began
        _record(samples, kind, outcomes)
        return samples, took

    def _measure(
        self,
        kind: str,
        plural: str,
        namespace: str,
        operator: _Operator,
        scale: str,
        setup: list[tuple[str, float]],
    ) -> KindResult:
        sizes = self.sizes
        interval = sizes.interval_s
        operator.start(timeout=120)
        self.progress(f"operator ready, pid {operator.pid}")
        try:
            outcomes: dict[float, str] = {}
            deadline = time.time() + max(3 * interval, 180.0) + interval
            # Before the window, often: it begins right after the last start-up evaluation
            # ended, not inside the next (a CapacityPlan evaluation may take most of a
            # minute). The gauge of the evaluation's start is set last, once it is written.
            while len(outcomes) < WARMUP_EVALUATIONS:
                if time.time() > deadline:
                    raise RuntimeError(f"{kind} was not evaluated in time; see {operator.log}")
                time.sleep(BOUNDARY_POLL_S)
                self._observe(operator, kind, outcomes)
            startup_s = min(outcomes) - operator.started_at
            before = self.snapshot(operator)
            self.progress(f"{len(outcomes)} evaluations done: the window begins")

            def evaluated(samples: list[Sample]) -> float:
                return total(samples, "perfguard_evaluations_total", kind=kind)

            def in_window() -> int:
                return sum(1 for at in outcomes if at > before.at)

            wanted = evaluated(before.operator) + sizes.window_intervals
            end = before.at + (sizes.window_intervals + 2) * interval
            boundary = _last_evaluation_due(before.operator, kind, outcomes, wanted, interval)
            walls: list[float] = []
            offsets = [time.time() - time.monotonic()]
            counted_at: tuple[float, int] | None = None
            while time.time() < end:
                now = time.time()
                # Every scrape_every_s, as a Prometheus would; often once the last evaluation
                # of the window should be ending, so the window ends right after it.
                pause = (
                    BOUNDARY_POLL_S
                    if now >= boundary
                    else min(sizes.scrape_every_s, boundary - now)
                )
                time.sleep(max(0.0, min(pause, end - now)))
                samples, took = self._observe(operator, kind, outcomes)
                walls.append(took)
                offsets.append(time.time() - time.monotonic())
                if evaluated(samples) >= wanted:
                    # Counted before it is written: the end is once its start time shows
                    # (see _record), or a few seconds later if it never does.
                    if in_window() >= sizes.window_intervals:
                        break
                    if counted_at is None:
                        counted_at = (time.monotonic(), len(outcomes))
                    elif len(outcomes) > counted_at[1] or time.monotonic() > counted_at[0] + 10:
                        break
                boundary = _last_evaluation_due(samples, kind, outcomes, wanted, interval)
            after = self.snapshot(operator)
            offsets.append(time.time() - time.monotonic())
            self.progress("the window ends")
            current, peak = proc_memory_mib(operator.pid)
            _record(after.operator, kind, outcomes)
            result = kind_result(
                kind=kind,
                scale=scale,
                interval_s=interval,
                setup=setup,
                startup_s=startup_s,
                before=before,
                after=after,
                starts={NAME: set(outcomes)},
                outcomes=outcomes,
                audit=self.audit.read_text().splitlines(),
                peak_rss=peak,
                end_rss=current,
                scrapes=len(walls),
                scrape_wall=sum(walls),
                scrape_every_s=sizes.scrape_every_s,
                load_end=load_average(),
            )
            result = dataclasses.replace(result, clock_step_s=max(offsets) - min(offsets))
        finally:
            operator.stop()
            self.progress("operator stopped")
        return self._tally(
            dataclasses.replace(result, scrape_walls=tuple(walls)), plural, namespace
        )

    def _tally(self, result: KindResult, plural: str, namespace: str) -> KindResult:
        """After the window: the resource's status, its Events, finalizers and annotations."""

        import kubernetes

        custom = kubernetes.client.CustomObjectsApi(self.api)
        body = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, NAME)
        status = body.get("status") or {}
        keys = (
            ("verdict", "compared", "differing", "unverified", "driftPercent")
            if result.kind == "EnvParity"
            else ("verdict", "totalAnomalies", "summary")
        )
        picked = tuple(
            (k, json.dumps(status[k]) if isinstance(status[k], dict) else str(status[k]))
            for k in keys
            if k in status
        )
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None:
            picked += (("Ready", f"{ready.get('status')} ({ready.get('reason')})"),)
        listed = kubernetes.client.CoreV1Api(self.api).list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={NAME}"
        )
        events = Counter(str(e.reason) for e in listed.items)
        metadata = body.get("metadata") or {}
        marks: Counter[str] = Counter()
        marks.update(f"finalizer {f}" for f in metadata.get("finalizers") or [])
        marks.update(f"annotation {a}" for a in metadata.get("annotations") or {})
        return dataclasses.replace(
            result,
            status=picked,
            events=tuple(events.most_common()),
            marks=tuple(sorted(marks.items())),
            object_kib=len(json.dumps(body)) / 1024,
        )

    def _sequential(self, result: KindResult) -> KindResult:
        """CapacityPlan's queries once more, one after another, nothing else querying:
        Prometheus' own time for one evaluation's work (as bench/capacity.py measures it)."""

        from perfguard.api.capacityplan import CapacityPlanSpec
        from perfguard.sources.capacityplan_queries import plan_queries
        from perfguard.sources.prometheus import PrometheusClient

        spec = CapacityPlanSpec.model_validate(
            capacityplan(CAPACITY_NAMESPACE, self.sizes.interval_s)["spec"]
        )
        end = datetime.now(UTC).replace(microsecond=0)

        async def run() -> None:
            async with PrometheusClient(self.prometheus.url, timeout=timedelta(seconds=120)) as c:
                for planned in plan_queries(spec, self.hosts):
                    await c.query_range(planned.query, end - spec.history, end, spec.step)

        before = self._prometheus()
        asyncio.run(run())
        after = self._prometheus()
        engine = "prometheus_engine_query_duration_seconds_sum"
        return dataclasses.replace(
            result,
            sequential_requests=int(
                _delta(after, before, "prometheus_http_requests_total", handler=QUERY_HANDLERS[0])
            ),
            sequential_http_s=_delta(
                after,
                before,
                "prometheus_http_request_duration_seconds_sum",
                handler=QUERY_HANDLERS[0],
            ),
            sequential_query_s=sum(
                _delta(after, before, engine, slice=part)
                for part in ("prepare_time", "inner_eval", "result_sort")
            ),
            sequential_cpu_s=_delta(after, before, "process_cpu_seconds_total"),
        )


def _last_evaluation_due(
    samples: Sequence[Sample], kind: str, outcomes: dict[float, str], wanted: float, interval: float
) -> float:
    """When the window's last evaluation should be half done: the latest start seen plus
    the intervals still to go, plus half the mean evaluation time so far (fixed-rate
    schedule)."""
    mine = {"kind": kind}
    done = total(samples, "perfguard_evaluations_total", **mine)
    count = total(samples, "perfguard_evaluation_duration_seconds_count", **mine)
    mean = (
        total(samples, "perfguard_evaluation_duration_seconds_sum", **mine) / count if count else 0
    )
    return max(outcomes) + (wanted - done) * interval + mean / 2


def _record(samples: Sequence[Sample], kind: str, outcomes: dict[float, str]) -> None:
    seen = outcome_of(samples, kind)
    if seen is not None and seen[0] not in outcomes:
        outcomes[seen[0]] = seen[1]


def _prometheus_version() -> str:
    from perfguard.local.prometheus import prometheus_binary

    try:
        out = subprocess.run(
            [str(prometheus_binary()), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "Prometheus"
    first = (out.stdout or out.stderr).splitlines()[:1]
    parts = first[0].split() if first else []
    return f"Prometheus {parts[2]}" if len(parts) > 2 and parts[1] == "version" else "Prometheus"


def run_operator_kinds(
    sizes: Sizes = FULL, *, command: str = "python -m bench.operator_kinds", quick: bool = False
) -> OperatorKindsResult:
    started = time.time()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="perfguard-kinds-") as tmp:
        bench = _Bench(Path(tmp), sizes)
        try:
            bench.start()
            setup_s = time.time() - started
            print("operator kinds: EnvParity...", file=sys.stderr, flush=True)
            parity = bench.run_envparity()
            print(f"  {_one_line(parity)}", file=sys.stderr, flush=True)
            print("operator kinds: CapacityPlan...", file=sys.stderr, flush=True)
            capacity = bench.run_capacityplan()
            print(f"  {_one_line(capacity)}", file=sys.stderr, flush=True)
        finally:
            bench.stop()
    return OperatorKindsResult(
        kinds=(parity, capacity),
        machine=machine(),
        load_before=load_before,
        load_after=load_average(),
        command=command,
        wall_s=time.time() - started,
        setup_s=setup_s,
        prometheus_version=_prometheus_version(),
        quick=quick,
    )


def _one_line(k: KindResult) -> str:
    return (
        f"{k.evaluations} evaluations in {k.window_s:.0f} s, "
        f"{_ms(1000 * k.cpu_s_per_evaluation)} CPU each, peak RSS {k.peak_rss_mib:.0f} MiB, "
        f"lag p50/p99 {seconds(k.lag_p50_s)}/{seconds(k.lag_p99_s)}, "
        f"{k.prometheus_rps:.2f} Prometheus req/s, {k.api_rps:.2f} API req/s, "
        f"{k.status_patches} patches"
    )


# ------------------------------------------------------------------ the section


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f} ms"


def _lags(values: Sequence[float]) -> str:
    return ", ".join(f"{v:+.0f}" for v in values) + " s" if values else "none"


def kind_table(k: KindResult) -> str:
    n = k.evaluations
    rows: list[list[str]] = [
        ["`spec.interval`; window measured", f"{k.interval_s:g} s; {k.window_s:.0f} s"],
        ["evaluations in the window (failed)", f"{n} ({k.errors})"],
        [
            "how they ended (verdict, Ready; as scraped)",
            ", ".join(f"{outcome}: {count}" for outcome, count in k.outcomes) or "–",
        ],
        [
            "operator CPU per evaluation (window CPU ÷ evaluations, idle time included)",
            _ms(1000 * k.cpu_s_per_evaluation),
        ],
        ["operator CPU, cores (window average)", f"{k.operator_cpu_s / k.window_s:.3f}"],
        [
            "evaluation wall time, mean (operator's histogram)",
            _ms(1000 * k.per_evaluation(k.duration_s)),
        ],
        [
            "RSS: peak (VmHWM, whole process life) / at the end",
            f"{k.peak_rss_mib:.0f} / {k.end_rss_mib:.0f} MiB",
        ],
        [
            "evaluation lag p50 / p99 (gaps counted)",
            f"{seconds(k.lag_p50_s, 0)} / {seconds(k.lag_p99_s, 0)} ({len(k.lags)})",
        ],
        ["every lag, in order of the gaps' ends", _lags(k.lags)],
        [
            "wall clock moved against the monotonic clock in the window (a step shifts lags)",
            f"{k.clock_step_s:.1f} s",
        ],
        ["operator start → first evaluation started", seconds(k.startup_s)],
        [
            "before the window (start-up): gaps between evaluations minus the interval",
            _lags(k.warmup_lags),
        ],
        [
            "status patches / evaluations",
            patches_row(k.status_patches, n, k.patch_causes),
        ],
        [
            "Prometheus requests/s (per evaluation)",
            f"{k.prometheus_rps:.3f} ({k.per_evaluation(k.prometheus_requests):.1f})",
        ],
    ]
    if k.prometheus_requests:
        rows += [
            [
                "Prometheus query engine time per evaluation, concurrent queries (queue wait)",
                f"{_ms(1000 * k.per_evaluation(k.prometheus_query_s))} "
                f"({_ms(1000 * k.per_evaluation(k.prometheus_queue_s))})",
            ],
            [
                "Prometheus' handler time per evaluation (query_range, JSON included)",
                _ms(1000 * k.per_evaluation(k.prometheus_http_s)),
            ],
            [
                "Prometheus process CPU per evaluation",
                _ms(1000 * k.per_evaluation(k.prometheus_cpu_s)),
            ],
        ]
        if not math.isnan(k.sequential_http_s):
            rows.append(
                [
                    f"the same {k.sequential_requests} queries one after another, operator "
                    "stopped: handler time (engine; process CPU)",
                    f"{_ms(1000 * k.sequential_http_s)} ({_ms(1000 * k.sequential_query_s)}; "
                    f"{_ms(1000 * k.sequential_cpu_s)})",
                ]
            )
        rows += [
            [
                "operator CPU ÷ Prometheus engine time (same window)",
                ratio(k.operator_cpu_s, k.prometheus_query_s),
            ],
            [
                "operator CPU ÷ Prometheus process CPU (same window)",
                ratio(k.operator_cpu_s, k.prometheus_cpu_s),
            ],
        ]
        if not math.isnan(k.sequential_http_s):
            rows.append(
                [
                    "operator CPU per evaluation ÷ the sequential queries' handler time",
                    ratio(k.cpu_s_per_evaluation, k.sequential_http_s),
                ]
            )
    else:
        rows.append(
            [
                "operator CPU ÷ Prometheus query time",
                "– (no Prometheus query: this kind reads the API server only)",
            ]
        )
    rows += [
        [
            "API requests/s (per evaluation)",
            f"{k.api_rps:.3f} ({k.per_evaluation(k.api_requests):.1f})",
        ],
        [
            "kube-apiserver / etcd CPU per evaluation",
            f"{_ms(1000 * k.per_evaluation(k.apiserver_cpu_s))} / "
            f"{_ms(1000 * k.per_evaluation(k.etcd_cpu_s))}",
        ],
        [
            "operator CPU ÷ kube-apiserver + etcd CPU (same window)",
            ratio(k.operator_cpu_s, k.apiserver_cpu_s + k.etcd_cpu_s),
        ],
        ["status at the end", "; ".join(f"{key} {value}" for key, value in k.status) or "–"],
        [
            "Events on the resource (whole run, by reason)",
            ", ".join(f"{r} {c}" for r, c in k.events) or "none",
        ],
        ["finalizers and annotations", ", ".join(f"{m} {c}" for m, c in k.marks) or "none"],
        ["the resource as JSON, status included", f"{k.object_kib:.1f} KiB"],
        [
            "the harness' scrapes of the operator's /metrics: their wall time ÷ operator CPU "
            "(an upper bound of their share)",
            f"{k.scrape_wall_s / k.operator_cpu_s:.0%}" if k.operator_cpu_s > 0 else "–",
        ],
        [
            "the harness' scrapes of /metrics (served on the operator's event loop): "
            "median / longest wall time (scrapes)",
            f"{_ms(1000 * percentile(k.scrape_walls, 50))} / "
            f"{_ms(1000 * max(k.scrape_walls, default=math.nan))} ({len(k.scrape_walls)})",
        ],
        *[[f"{step} (not measured)", seconds(s, 0)] for step, s in k.setup],
        ["load average (1 min) at the end of the window", f"{k.load_end[0]:.1f}"],
    ]
    return markdown_table(["measure", "value"], rows)


def operator_kinds_section(result: OperatorKindsResult) -> str:
    parts = []
    for k in result.kinds:
        api = ", ".join(
            f"{key} {count} ({count / k.evaluations:.1f} per evaluation)"
            if k.evaluations
            else f"{key} {count}"
            for key, count in k.api_breakdown
        )
        parts.append(
            f"""### {k.kind}

{k.scale}; `spec.interval` {k.interval_s:g} s.

{kind_table(k)}

The operator's API requests in the window by verb and resource (kube-apiserver's audit
log; the harness requests no resource then): {api or "none"}.
"""
        )
    quick = (
        " **Quick mode** (`--quick`): small sizes and a short interval, proving the harness "
        "runs; not the figures of record."
        if result.quick
        else ""
    )
    before, after = result.load_before, result.load_after
    notes = "".join(f"\n{note}\n" for note in result.notes)
    alone = (
        ""
        if result.command.startswith("python -m bench.operator_kinds")
        else "; this section alone: `python -m bench.operator_kinds`"
    )
    return f"""## Operator scale: EnvParity and CapacityPlan

Each kind against **one operator process** (`python -m perfguard.cli run --namespace NS
...`, measured through /proc), a real kube-apiserver + etcd and a real
{result.prometheus_version} on this machine, one kind after the other. ("Operator scale"
does this for PerfBaseline; "EnvParity at scale" and "CapacityPlan at scale" time the
evaluation functions alone.)

- `spec.interval` is {result.kinds[0].interval_s:g} s for both kinds (CapacityPlan's
  default is 5 minutes), so that several evaluations fit; the CapacityPlan's
  `spec.prometheus.timeout` is `{CAPACITY_QUERY_TIMEOUT}`, bench/capacity.py's (the default,
  10 s per query, is sized for PerfBaseline's small queries).
- The EnvParity operator watches both compared namespaces (their Deployments and
  ConfigMaps: the prompt re-evaluation path), the CapacityPlan operator its own namespace.
  The CapacityPlan's hosts are Node objects in the API server; its history ends in the
  near future, so that an evaluation at wall-clock now has data.
- The resource exists before the operator starts. The window begins once it has been
  evaluated {WARMUP_EVALUATIONS} times (the start-up: the EnvParity operator's watches list
  every Deployment and ConfigMap of the compared namespaces as they start, which wakes the
  EnvParity again a few seconds after its first evaluation) and ends right after a few
  more evaluations (counted in the table).
- CPU per evaluation is the process' CPU over the window divided by the evaluations in it:
  what the operator spends between evaluations (watches, the /metrics scrapes) is
  included.
- Lag is the gap between two successive evaluation starts minus the interval, from the
  operator's `perfguard_last_evaluation_timestamp_seconds` (whole seconds), scraped every
  {result.kinds[0].scrape_every_s:g} s as a Prometheus would (every {BOUNDARY_POLL_S:g} s
  around the window's ends). With one resource per kind there are only a few gaps, so p99
  is their maximum.
- API requests are the operator's, from kube-apiserver's audit log (kube-apiserver's own
  informers restart their watches every few minutes; `apiserver_request_total` would
  count those too).{quick}

{chr(10).join(parts)}
Machine: {result.machine}; the cores are shared with the control plane, Prometheus and
other work: load average {before[0]:.1f} / {before[1]:.1f} / {before[2]:.1f} before the run,
{after[0]:.1f} / {after[1]:.1f} / {after[2]:.1f} after it.
{notes}
Command: `{result.command}` (wall time {result.wall_s / 60:.1f} min, of which
{result.setup_s:.0f} s starting the servers and generating and backfilling the history{alone}).
"""


def load_result(path: Path) -> OperatorKindsResult:
    """A result written with `--save`, to render its section again without a run."""
    raw = json.loads(path.read_text())
    fields = {k: tuplify(v) for k, v in raw.items() if k != "kinds"}
    kinds = tuple(
        KindResult(**{k: tuplify(v) for k, v in r.items()})  # type: ignore[arg-type]
        for r in raw["kinds"]
    )
    return OperatorKindsResult(kinds=kinds, **fields)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK.workloads} workloads, {QUICK.nodes}×{QUICK.gpus_per_node} GPUs, "
        f"a {QUICK.interval_s:g} s interval: proves the harness runs",
    )
    parser.add_argument("--save", type=Path, help="also write the result as JSON here")
    parser.add_argument("--render", type=Path, help="print the section of a saved result")
    args = parser.parse_args(argv)
    if args.render:
        print(operator_kinds_section(load_result(args.render)))
        return 0
    command = "python -m bench.operator_kinds " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    result = run_operator_kinds(
        QUICK if args.quick else FULL, command=command.strip(), quick=args.quick
    )
    if args.save:
        save_json(result, args.save)
    print(operator_kinds_section(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
