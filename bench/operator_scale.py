"""Operator scale and cost: N PerfBaselines against one operator process.

A real kube-apiserver + etcd (perfguard.local.controlplane) and a real Prometheus holding a
generated live history that reaches past the end of the run, so evaluations at wall-clock
"now" have data. For each size N, N PerfBaselines are created in a fresh namespace, then
one operator process (`python -m perfguard.cli run --namespace NS ...`) is started: the
first round is the burst an operator restart sees. Once every resource has been evaluated
once, the harness measures for a fixed number of intervals:

- operator CPU (utime + stime of the process and its threads, /proc) per evaluation,
  evaluations counted by the operator's `perfguard_evaluations_total`;
- peak RSS (VmHWM);
- Prometheus requests/s, query-engine time and process CPU (Prometheus' own /metrics);
- API requests/s by verb and resource (kube-apiserver's `apiserver_request_total`,
  scraped with the admin token), kube-apiserver and etcd CPU;
- evaluation lag: each resource's evaluation start times come from the operator's
  `perfguard_last_evaluation_timestamp_seconds` (the exact start of the latest
  evaluation; scraped every 15 s as a Prometheus would, which is often enough since
  each scrape carries the exact start), and the lag is the gap between successive starts
  minus the interval;
- status patches (`perfguard_status_patches_total`) against evaluations.

Run: `python -m bench.operator_scale [--sizes 1,100,500,1000] [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.scale_support import (
    GROUP,
    PLURAL,
    VERSION,
    LagFigures,
    OperatorProcess,
    Sample,
    apply_crds,
    by_label,
    evaluation_lags,
    fetch,
    histogram_quantile_bound,
    kube_client,
    lags_due_after,
    latency_throughput_errors,
    load_average,
    machine,
    markdown_table,
    memory_sites,
    parse_metrics,
    patches_row,
    percentile,
    perfbaseline_body,
    proc_cpu_seconds,
    proc_memory_mib,
    profile_tables,
    ratio,
    restart_lags,
    save_json,
    seconds,
    total,
    tuplify,
)

SIZES = (1, 100, 500, 1000)
QUICK_SIZES = (1, 10)
INTERVAL_S = 60.0
QUICK_INTERVAL_S = 15.0
# The window spans the operator's default statusRefresh (5m) and one interval more, so
# every resource's refresh write of the numbers falls in it, not only the news.
WINDOW_INTERVALS = 6.0
QUICK_WINDOW_INTERVALS = 2.0
# Like a Prometheus scraping the operator at a common 15 s: the page costs the operator's
# event loop about 0.5 s at 1,000 resources, which is part of the measured cost. The
# evaluation times it carries are exact, so the lag does not depend on this interval.
SCRAPE_EVERY_S = 15.0
SERVICES = 4
METRICS = 4
# Concurrent: one range query per metric (candidate and stable tracks together); the
# throughput metric is always judged against the workload's own history: one more.
REQUESTS_PER_EVALUATION = 5
TARGET_SIZE = 1000
TARGET_LAG_P99_S = 10.0
TARGET_RSS_MIB = 500.0

OPERATOR_SERIES = (
    "perfguard_last_evaluation_timestamp_seconds",
    "perfguard_evaluations_total",
    "perfguard_status_patches_total",
    "perfguard_evaluation_duration_seconds_bucket",
    "perfguard_verdict",
)
PROMETHEUS_SERIES = (
    "prometheus_http_requests_total",
    "prometheus_http_request_duration_seconds_sum",
    "prometheus_engine_query_duration_seconds_sum",
    "process_cpu_seconds_total",
)
APISERVER_SERIES = ("apiserver_request_total", "process_cpu_seconds_total")
# What kube-apiserver asks of itself (its identity lease, the `kubernetes` Service's
# endpoints): not the operator's requests. A standalone operator uses none of these.
APISERVER_OWN = frozenset({"leases", "endpoints", "endpointslices"})


def perfbaseline(name: str, namespace: str, service: str, interval_s: float) -> dict[str, Any]:
    """The measured resource: 4 metrics, comparison Concurrent, a 10-minute window."""
    p99 = {
        "name": "p99",
        "type": "Query",
        "query": "histogram_quantile(0.99, sum by (le) (rate("
        'inference_request_duration_seconds_bucket{ {{selector}}, stage="total" }'
        "[1m])))",
        "thresholds": {"value": {"maxIncreasePercent": 15}},
    }
    return perfbaseline_body(
        name,
        namespace,
        service,
        # Only the throughput metric reads it (judged against the workload's history).
        baseline={"window": "1h", "minSamples": 50},
        analysis={
            "interval": f"{interval_s:g}s",
            "window": "10m",
            "step": "30s",
            "sustainFor": "3m",
        },
        metrics=[*latency_throughput_errors(), p99],
    )


def masked_message(message: object, limit: int = 200) -> str:
    """A status message with its numbers masked (#), so messages that differ only in
    figures count as one; cut to `limit` characters."""
    text = re.sub(r"\d+(?:\.\d+)?", "#", str(message or "none"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ results

Tally = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class SizeResult(LagFigures):
    size: int
    create_s: float
    startup_s: float  # operator start -> the last resource's first evaluation started
    evaluated_once: int  # resources evaluated at least once when the window began
    window_s: float
    evaluations: int
    errors: int
    operator_cpu_s: float
    peak_rss_mib: float
    end_rss_mib: float
    status_patches: int
    prometheus_requests: int
    prometheus_query_s: float  # engine: prepare + inner eval + result sort
    prometheus_queue_s: float  # engine: waiting for a query slot
    prometheus_http_s: float  # the query_range handler, JSON encoding included
    prometheus_cpu_s: float
    api_requests: int
    api_breakdown: tuple[tuple[str, int], ...]
    apiserver_cpu_s: float
    etcd_cpu_s: float
    lag_steady: tuple[float, ...]
    lag_first: tuple[float, ...]
    duration_p50_bound_s: float
    duration_p99_bound_s: float
    verdicts: tuple[tuple[str, int], ...]
    scrapes: int
    scrape_wall_s: float  # the harness' /metrics scrapes of the operator in the window
    load_end: tuple[float, float, float]
    reasons: tuple[tuple[str, int], ...] = ()  # status.reason of the resources at the end
    # status.message of the resources Inconclusive at the end, numbers masked (#), top 3
    inconclusive_messages: tuple[tuple[str, int], ...] = ()
    events: tuple[tuple[str, int], ...] = ()  # Events on the resources, by reason, whole run
    marks: tuple[tuple[str, int], ...] = ()  # finalizers and annotations on the resources
    # Status patches by perfguard_status_patches_total's cause (empty in results saved before
    # the label existed).
    patch_causes: Tally = ()
    object_kib: float = math.nan  # mean size of a PerfBaseline as JSON, at the end
    # The operator stopped and started again over the same resources (see _measure_restart):
    # lags of the gaps that ended after the restart; the first is the old operator's last
    # evaluation (its /metrics just before the stop, or status.lastEvaluationTime if later)
    # to the new one's first.
    restart_lag_first: tuple[float, ...] = ()
    restart_lag_steady: tuple[float, ...] = ()
    restart_window_s: float = math.nan  # new operator start -> end of its window
    restart_down_s: float = math.nan  # the old operator's stop (SIGTERM to exit)
    restart_evaluated: int = 0  # resources the new operator evaluated in its window
    # Resources whose next evaluation was due before the stop: one may have been in flight
    # and unseen (the gauge is set when an evaluation ends, and the status may not have
    # been written), so their first gap may be an interval too long. The first gaps of
    # the others, which are exact:
    restart_due_at_stop: int = 0
    restart_lag_first_clear: tuple[float, ...] = ()
    # SIGTERM to the new operator's first evaluation start, and the lags of the gaps that
    # came due after that (what the restart's downtime is not part of).
    restart_first_evaluation_s: float = math.nan
    restart_lag_due_after: tuple[float, ...] = ()

    @property
    def cpu_ms_per_evaluation(self) -> float:
        return 1000 * self.operator_cpu_s / self.evaluations if self.evaluations else math.nan

    @property
    def cpu_cores(self) -> float:
        return self.operator_cpu_s / self.window_s

    @property
    def prometheus_rps(self) -> float:
        return self.prometheus_requests / self.window_s

    @property
    def api_rps(self) -> float:
        return self.api_requests / self.window_s

    @property
    def lag_max_s(self) -> float:
        return max(self.lags) if self.lags else math.nan

    @property
    def restart_lags(self) -> tuple[float, ...]:
        return self.restart_lag_first + self.restart_lag_steady

    @property
    def restart_lag_p99_s(self) -> float:
        return percentile(self.restart_lags, 99)

    @property
    def patches_per_evaluation(self) -> float:
        return self.status_patches / self.evaluations if self.evaluations else math.nan

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluations / self.window_s if self.window_s else math.nan


@dataclass(frozen=True)
class ProfileResult:
    size: int
    window_s: float
    evaluations: int
    operator_cpu_s: float
    busy_s: float  # profiled time in the event-loop thread, waiting in epoll left out
    areas: str  # Markdown: own time by area
    table: str  # Markdown: the functions with the most own time
    profiled_s: float = math.nan  # wall time between starting and writing the profile
    memory: str = ""  # Markdown: the largest live allocation sites (with --profile-memory)


@dataclass(frozen=True)
class OperatorScaleResult:
    sizes: tuple[SizeResult, ...]
    interval_s: float
    window_intervals: float
    services: int
    machine: str
    load_before: tuple[float, float, float]
    setup_s: float
    wall_s: float
    command: str
    scrape_every_s: float
    not_run: tuple[str, ...] = ()
    profile: ProfileResult | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    counterparts_nice: int = 0  # Prometheus, kube-apiserver and etcd ran at this niceness


# ------------------------------------------------------------------ the run


@dataclass
class _Snapshot:
    at: float
    operator_cpu: float
    operator: list[Sample]
    prometheus: list[Sample]
    apiserver: list[Sample]
    etcd_cpu: float


def renice(pid: int, niceness: int) -> int:
    """Set the niceness of every thread of `pid` (Linux keeps it per thread; threads
    started later inherit their creator's). The number of threads changed."""
    changed = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), niceness)
            changed += 1
    return changed


class _Bench:
    def __init__(
        self,
        work: Path,
        interval_s: float,
        scrape_every_s: float,
        counterparts_nice: int = 0,
        trace: Path | None = None,
    ) -> None:
        self.work = work
        # Where each restart's per-resource evaluation times and the operators' logs go.
        self.trace = trace
        self.interval_s = interval_s
        self.scrape_every_s = scrape_every_s
        self.counterparts_nice = counterparts_nice
        self.plane: Any = None
        self.prometheus: Any = None
        self.api: Any = None
        self.profiled_from = 0.0
        self.profiled_s = 0.0
        self.object_kib = math.nan
        self.inconclusive_messages: tuple[tuple[str, int], ...] = ()

    # -- servers

    def start(self, horizon: timedelta) -> None:
        from perfguard.local.controlplane import ControlPlane

        self.plane = ControlPlane(workdir=self.work / "controlplane").start()
        apply_crds(self.plane.kubeconfig)
        self.api = kube_client(self.plane.kubeconfig)
        self.prometheus = _live_prometheus(self.work, horizon)
        self.yield_to_the_operator()

    def yield_to_the_operator(self) -> None:
        """With `counterparts_nice`, Prometheus, kube-apiserver and etcd run at that
        niceness, so the operator (at 0) is first in line for the CPU: as if the data
        source and the control plane ran on other machines, which this one cannot do."""
        if not self.counterparts_nice:
            return
        for pid in [*self.plane.pids(), self.prometheus.pid]:
            if pid is not None:
                renice(pid, self.counterparts_nice)

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        if self.plane is not None:
            self.plane.stop()

    # -- scraping

    def _operator(self, operator: OperatorProcess) -> list[Sample]:
        return parse_metrics(fetch(operator.metrics_url), OPERATOR_SERIES)

    def snapshot(self, operator: OperatorProcess) -> _Snapshot:
        at = time.time()
        cpu = proc_cpu_seconds(operator.pid)
        own = self._operator(operator)
        prometheus = parse_metrics(fetch(f"{self.prometheus.url}/metrics"), PROMETHEUS_SERIES)
        apiserver = parse_metrics(
            fetch(f"{self.plane.url}/metrics", token=self.plane.token, cafile=self.plane.ca_file),
            APISERVER_SERIES,
        )
        etcd = parse_metrics(
            fetch(f"http://127.0.0.1:{self.plane.etcd_port}/metrics"),
            ("process_cpu_seconds_total",),
        )
        return _Snapshot(
            at, cpu, own, prometheus, apiserver, total(etcd, "process_cpu_seconds_total")
        )

    # -- resources

    def create(self, namespace: str, size: int) -> float:
        import kubernetes

        started = time.perf_counter()
        core = kubernetes.client.CoreV1Api(self.api)
        custom = kubernetes.client.CustomObjectsApi(self.api)
        core.create_namespace({"metadata": {"name": namespace}})

        def one(index: int) -> None:
            body = perfbaseline(
                f"pb-{index:04d}", namespace, f"scale-{index % SERVICES}", self.interval_s
            )
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(size)))
        return time.perf_counter() - started

    def operator(self, namespace: str, tag: str, profile: Path | None = None) -> OperatorProcess:
        from perfguard.local.processes import free_port

        return OperatorProcess(
            namespace=namespace,
            prometheus_url=self.prometheus.url,
            kubeconfig=self.plane.kubeconfig,
            log=self.work / f"operator-{tag}.log",
            port=free_port(),
            profile=profile,
        )

    # -- one size

    def run_size(self, size: int, window_intervals: float) -> SizeResult:
        namespace = f"scale-{size}"
        create_s = self.create(namespace, size)
        self.yield_to_the_operator()  # threads the servers started since
        operator = self.operator(namespace, str(size))
        operator.start()
        starts: dict[str, set[float]] = defaultdict(set)
        try:
            fresh = self._measure(operator, size, window_intervals, create_s, starts)
            # The old operator's last evaluations, read just before it is stopped: the
            # status holds only the last one written (statusRefresh), not the last one.
            self._observe(operator, starts)
        finally:
            stopping = time.time()
            operator.stop()
            stopped = time.time()
        return self._measure_restart(fresh, namespace, window_intervals, stopping, stopped, starts)

    def last_evaluations(self, namespace: str) -> dict[str, float]:
        """Each resource's status.lastEvaluationTime (Unix seconds): where a restarted
        operator picks up its schedule."""
        import kubernetes

        from perfguard.times import parse_time_or_none

        custom = kubernetes.client.CustomObjectsApi(self.api)
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        out: dict[str, float] = {}
        for item in items:
            parsed = parse_time_or_none((item.get("status") or {}).get("lastEvaluationTime"))
            if parsed is not None:
                out[item["metadata"]["name"]] = parsed.timestamp()
        return out

    def _measure_restart(
        self,
        fresh: SizeResult,
        namespace: str,
        window_intervals: float,
        stopping: float,
        stopped: float,
        old_starts: Mapping[str, set[float]],
    ) -> SizeResult:
        """The operator stopped (SIGTERM) and a new one started over the same resources:
        the gaps between the old operator's last evaluation of each resource and the new
        one's evaluations, over `window_intervals` intervals from the new operator's start.
        The old operator's last evaluation is the later of what its /metrics last showed
        (`old_starts`) and the status' `lastEvaluationTime` (the last one written, which
        the new operator resumes from)."""
        starts: dict[str, set[float]] = defaultdict(set)
        for name, times in old_starts.items():
            before = [t for t in times if t <= stopping]
            if before:
                starts[name].add(max(before))
        stamps = self.last_evaluations(namespace)
        for name, at in stamps.items():
            starts[name].add(at)
        due = {name for name, times in starts.items() if max(times) <= stopping - self.interval_s}
        before_restart = {name: sorted(times) for name, times in starts.items()}
        operator = self.operator(namespace, f"{fresh.size}-restart")
        operator.start()
        try:
            end = operator.started_at + window_intervals * self.interval_s
            while time.time() < end:
                time.sleep(max(0.0, min(self.scrape_every_s, end - time.time())))
                self._observe(operator, starts)
        finally:
            operator.stop()
        lags = restart_lags(starts, self.interval_s, stopping, end)
        clear = restart_lags(
            {n: t for n, t in starts.items() if n not in due}, self.interval_s, stopping, end
        )
        # Whole-second stamps: the new operator's start floored, so none of its own is missed
        # (an old stamp in that same second would count too; stopping takes longer).
        launched = math.floor(operator.started_at)
        evaluated = sum(1 for times in starts.values() if any(t >= launched for t in times))
        resumed = min((t for times in starts.values() for t in times if t >= launched), default=end)
        if self.trace is not None:
            self._write_trace(
                fresh.size, before_restart, stamps, starts, (stopping, stopped), operator
            )
        return replace(
            fresh,
            restart_lag_first=lags.first,
            restart_lag_steady=lags.steady,
            restart_window_s=end - operator.started_at,
            restart_down_s=stopped - stopping,
            restart_evaluated=evaluated,
            restart_due_at_stop=len(due),
            restart_lag_first_clear=clear.first,
            restart_first_evaluation_s=resumed - stopping,
            restart_lag_due_after=lags_due_after(starts, self.interval_s, stopping, end, resumed),
        )

    def _write_trace(
        self,
        size: int,
        before: Mapping[str, list[float]],
        stamps: Mapping[str, float],
        starts: Mapping[str, set[float]],
        stop: tuple[float, float],
        operator: OperatorProcess,
    ) -> None:
        """Per resource, the evaluation starts known before the restart (the old
        operator's as scraped, and the status stamp), the stamp, and all of them, with the
        restart's times: what a restart lag is made of."""
        assert self.trace is not None
        self.trace.mkdir(parents=True, exist_ok=True)
        trace = {
            "interval_s": self.interval_s,
            "stopping": stop[0],
            "stopped": stop[1],
            "new_started_at": operator.started_at,
            "resources": {
                name: {
                    "before": before.get(name, []),
                    "stamp": stamps.get(name),
                    "all": sorted(times),
                }
                for name, times in starts.items()
            },
        }
        (self.trace / f"restart-{size}.json").write_text(json.dumps(trace))
        for log in self.work.glob(f"operator-{size}*.log"):
            shutil.copy(log, self.trace / log.name)

    def _observe(
        self, operator: OperatorProcess, starts: dict[str, set[float]]
    ) -> tuple[list[Sample], float]:
        began = time.perf_counter()
        samples = self._operator(operator)
        took = time.perf_counter() - began
        for sample in samples:
            if sample.name == OPERATOR_SERIES[0] and sample.value > 0:
                starts[sample.labels["name"]].add(sample.value)
        return samples, took

    def _measure(
        self,
        operator: OperatorProcess,
        size: int,
        window_intervals: float,
        create_s: float,
        starts: dict[str, set[float]],
    ) -> SizeResult:
        """The fresh start: `starts` collects each resource's evaluation start times."""
        startup_deadline = time.time() + max(3 * self.interval_s, 120.0)
        while len(starts) < size and time.time() < startup_deadline:
            self._observe(operator, starts)
            if len(starts) < size:
                time.sleep(self.scrape_every_s)
        evaluated_once = len(starts)
        firsts = [min(times) for times in starts.values()]
        startup_s = max(firsts) - operator.started_at if len(starts) == size else math.nan

        before = self.snapshot(operator)
        operator.profile_restart()
        self.profiled_from = time.time()
        window_s = window_intervals * self.interval_s
        end = before.at + window_s
        scrapes, scrape_wall = 0, 0.0
        while time.time() < end:
            time.sleep(max(0.0, min(self.scrape_every_s, end - time.time())))
            _, took = self._observe(operator, starts)
            scrapes += 1
            scrape_wall += took
        after = self.snapshot(operator)
        current, peak = proc_memory_mib(operator.pid)
        operator.profile_dump()
        self.profiled_s = time.time() - self.profiled_from
        reasons, events, marks = self.tally(operator.namespace)
        for sample in after.operator:
            if sample.name == OPERATOR_SERIES[0] and sample.value > 0:
                starts[sample.labels["name"]].add(sample.value)
        lags = evaluation_lags(starts, self.interval_s, before.at, after.at)
        result = _size_result(
            size=size,
            create_s=create_s,
            startup_s=startup_s,
            evaluated_once=evaluated_once,
            before=before,
            after=after,
            lags_steady=lags.steady,
            lags_first=lags.first,
            peak_rss=peak,
            end_rss=current,
            scrapes=scrapes,
            scrape_wall=scrape_wall,
            reasons=reasons,
            events=events,
            marks=marks,
            object_kib=self.object_kib,
        )
        return replace(result, inconclusive_messages=self.inconclusive_messages)

    def tally(self, namespace: str) -> tuple[Tally, Tally, Tally]:
        """After the window: the resources' status.reason, their Events by reason, and
        the finalizers and annotations on them (what Kopf patches into the objects)."""
        import kubernetes

        custom = kubernetes.client.CustomObjectsApi(self.api)
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        reasons = Counter(str((i.get("status") or {}).get("reason", "none")) for i in items)
        self.inconclusive_messages = tuple(
            Counter(
                masked_message((i.get("status") or {}).get("message"))
                for i in items
                if (i.get("status") or {}).get("verdict") == "Inconclusive"
            ).most_common(3)
        )
        listed = kubernetes.client.CoreV1Api(self.api).list_namespaced_event(namespace)
        events = Counter(str(e.reason) for e in listed.items)
        marks: Counter[str] = Counter()
        for item in items:
            metadata = item.get("metadata") or {}
            marks.update(f"finalizer {f}" for f in metadata.get("finalizers") or [])
            marks.update(f"annotation {a}" for a in metadata.get("annotations") or {})
        self.object_kib = (
            sum(len(json.dumps(i)) for i in items) / len(items) / 1024 if items else math.nan
        )
        return (
            tuple(reasons.most_common()),
            tuple(events.most_common()),
            tuple(sorted(marks.items())),
        )

    def run_profile(self, size: int, memory: bool = False) -> ProfileResult:
        """The same namespace again, the operator under cProfile; the profile covers one
        interval after every resource was evaluated once: where the operator's own
        (event-loop thread) time goes."""
        namespace = f"scale-{size}"
        stats = self.work / f"operator-{size}.prof"
        operator = self.operator(namespace, f"{size}-profiled", profile=stats)
        operator.trace_memory = memory
        operator.start(timeout=120)
        try:
            result = self._measure(operator, size, 1.0, 0.0, defaultdict(set))
        finally:
            operator.stop()
        areas, table, busy = (
            profile_tables(stats) if stats.exists() else ("(no stats written)", "", 0.0)
        )
        sites = Path(f"{stats}.memory")
        memory_table = memory_sites(sites) if sites.exists() else ""
        return ProfileResult(
            size=size,
            window_s=result.window_s,
            evaluations=result.evaluations,
            operator_cpu_s=result.operator_cpu_s,
            busy_s=busy,
            profiled_s=self.profiled_s,
            memory=memory_table,
            areas=areas,
            table=table,
        )


def _delta(after: list[Sample], before: list[Sample], name: str, **match: str) -> float:
    return total(after, name, **match) - total(before, name, **match)


def _size_result(
    *,
    size: int,
    create_s: float,
    startup_s: float,
    evaluated_once: int,
    before: _Snapshot,
    after: _Snapshot,
    lags_steady: Sequence[float],
    lags_first: Sequence[float],
    peak_rss: float,
    end_rss: float,
    scrapes: int,
    scrape_wall: float,
    reasons: Tally,
    events: Tally,
    marks: Tally,
    object_kib: float,
) -> SizeResult:
    kind = {"kind": "PerfBaseline"}
    ok = _delta(
        after.operator, before.operator, "perfguard_evaluations_total", outcome="ok", **kind
    )
    errors = _delta(
        after.operator, before.operator, "perfguard_evaluations_total", outcome="error", **kind
    )
    patches = _delta(after.operator, before.operator, "perfguard_status_patches_total", **kind)
    buckets: dict[float, float] = defaultdict(float)
    for snapshot, sign in ((after, 1), (before, -1)):
        for s in snapshot.operator:
            if s.name == "perfguard_evaluation_duration_seconds_bucket" and s.labels.get(
                "kind"
            ) == ("PerfBaseline"):
                buckets[float(s.labels["le"])] += sign * s.value
    verdicts: dict[str, int] = defaultdict(int)
    for s in after.operator:
        if s.name == "perfguard_verdict" and s.value == 1:
            verdicts[s.labels["verdict"]] += 1
    query_range = {"handler": "/api/v1/query_range"}
    engine = "prometheus_engine_query_duration_seconds_sum"
    query_s = sum(
        _delta(after.prometheus, before.prometheus, engine, slice=part)
        for part in ("prepare_time", "inner_eval", "result_sort")
    )
    api: dict[str, int] = defaultdict(int)
    for snapshot, sign in ((after, 1), (before, -1)):
        for s in snapshot.apiserver:
            resource = s.labels.get("resource")
            if s.name != "apiserver_request_total" or not resource or resource in APISERVER_OWN:
                continue
            sub = s.labels.get("subresource")
            key = f"{s.labels.get('verb', '?')} {s.labels['resource']}" + (f"/{sub}" if sub else "")
            api[key] += sign * int(s.value)
    breakdown = tuple(sorted(((k, v) for k, v in api.items() if v > 0), key=lambda kv: -kv[1]))
    return SizeResult(
        size=size,
        create_s=create_s,
        startup_s=startup_s,
        evaluated_once=evaluated_once,
        window_s=after.at - before.at,
        evaluations=int(ok + errors),
        errors=int(errors),
        operator_cpu_s=after.operator_cpu - before.operator_cpu,
        peak_rss_mib=peak_rss,
        end_rss_mib=end_rss,
        status_patches=int(patches),
        patch_causes=by_label(
            after.operator, before.operator, "perfguard_status_patches_total", "cause", **kind
        ),
        prometheus_requests=int(
            _delta(
                after.prometheus, before.prometheus, "prometheus_http_requests_total", **query_range
            )
        ),
        prometheus_query_s=query_s,
        prometheus_queue_s=_delta(after.prometheus, before.prometheus, engine, slice="queue_time"),
        prometheus_http_s=_delta(
            after.prometheus,
            before.prometheus,
            "prometheus_http_request_duration_seconds_sum",
            **query_range,
        ),
        prometheus_cpu_s=_delta(after.prometheus, before.prometheus, "process_cpu_seconds_total"),
        api_requests=sum(v for _, v in breakdown),
        api_breakdown=breakdown,
        apiserver_cpu_s=_delta(after.apiserver, before.apiserver, "process_cpu_seconds_total"),
        etcd_cpu_s=after.etcd_cpu - before.etcd_cpu,
        lag_steady=tuple(lags_steady),
        lag_first=tuple(lags_first),
        duration_p50_bound_s=histogram_quantile_bound(buckets, 0.5),
        duration_p99_bound_s=histogram_quantile_bound(buckets, 0.99),
        verdicts=tuple(sorted(verdicts.items())),
        scrapes=scrapes,
        scrape_wall_s=scrape_wall,
        load_end=load_average(),
        reasons=reasons,
        events=events,
        marks=marks,
        object_kib=object_kib,
    )


def _live_prometheus(work: Path, horizon: timedelta) -> Any:
    """SERVICES services, 30 s scrapes, 90 minutes of past and `horizon` of future."""
    from perfguard.local.prometheus import LocalPrometheus, backfill
    from perfguard.synthetic import Scenario, SeriesFamily, generate_file

    now = datetime.now(UTC)
    end = now + horizon
    history = timedelta(minutes=90) + horizon
    for index in range(SERVICES):
        path = work / f"scale-{index}.om"
        generate_file(
            Scenario(
                service=f"scale-{index}",
                days=history / timedelta(days=1),
                end=end,
                step=timedelta(seconds=30),
                seed=300 + index,
                canary_share=0.25,
                include=frozenset({SeriesFamily.LATENCY, SeriesFamily.REQUESTS}),
            ),
            path,
        )
        backfill(path, work / "prometheus")
        path.unlink()
    server = LocalPrometheus(work / "prometheus")
    server.start()
    return server


def _horizon(sizes: Sequence[int], interval_s: float, window_intervals: float) -> timedelta:
    per_size = sum(
        3 * interval_s + 2 * window_intervals * interval_s + 0.1 * size + 120 for size in sizes
    )
    profile = 3 * interval_s + 0.1 * max(sizes, default=0)
    return timedelta(seconds=per_size + profile + 600)


def misses(size: SizeResult) -> list[str]:
    """The targets this size misses (they are stated for 1,000 resources; checked at
    every size)."""
    out = []
    if not size.lag_p99_s < TARGET_LAG_P99_S:
        out.append(f"lag p99 {seconds(size.lag_p99_s)} (target < {TARGET_LAG_P99_S:.0f} s)")
    if not size.peak_rss_mib < TARGET_RSS_MIB:
        out.append(f"peak RSS {size.peak_rss_mib:.0f} MiB (target < {TARGET_RSS_MIB:.0f} MiB)")
    if not size.cpu_cores < 1.0:
        out.append(f"operator CPU {size.cpu_cores:.2f} cores (target: one core)")
    if size.restart_lags and size.restart_evaluated < size.size:
        out.append(
            f"after a restart only {size.restart_evaluated:,} of {size.size:,} resources "
            "were evaluated in the window"
        )
    if size.restart_lags and not size.restart_lag_p99_s < TARGET_LAG_P99_S:
        out.append(
            f"lag p99 after a restart {seconds(size.restart_lag_p99_s)} "
            f"(target < {TARGET_LAG_P99_S:.0f} s)"
        )
    if size.errors:
        out.append(f"{size.errors} evaluations failed")
    return out


def run_operator_scale(
    sizes: Sequence[int] = SIZES,
    *,
    interval_s: float = INTERVAL_S,
    window_intervals: float = WINDOW_INTERVALS,
    scrape_every_s: float = SCRAPE_EVERY_S,
    profile: str = "auto",
    command: str = "python -m bench.operator_scale",
    budget_s: float | None = None,
    profile_memory: bool = False,
    counterparts_nice: int = 0,
    trace: Path | None = None,
) -> OperatorScaleResult:
    """Measure each size in turn (smallest first) with fresh operator processes on one
    control plane and one Prometheus. `profile`: "auto" runs a cProfile pass at the
    largest size when it misses a target, "always" or "never". With `budget_s`, sizes
    that would start after that much wall time are skipped and listed in `not_run`."""
    started = time.time()
    load_before = load_average()
    sizes = sorted(sizes)
    results: list[SizeResult] = []
    not_run: list[str] = []
    profiled: ProfileResult | None = None
    with tempfile.TemporaryDirectory(prefix="perfguard-scale-") as tmp:
        bench = _Bench(Path(tmp), interval_s, scrape_every_s, counterparts_nice, trace)
        try:
            bench.start(_horizon(sizes, interval_s, window_intervals))
            setup_s = time.time() - started
            for size in sizes:
                if budget_s is not None and time.time() - started > budget_s:
                    not_run.append(f"{size}: the time budget of {budget_s:.0f} s was spent")
                    continue
                print(f"operator scale: {size} PerfBaselines...", file=sys.stderr, flush=True)
                results.append(bench.run_size(size, window_intervals))
                print(f"  {_one_line(results[-1])}", file=sys.stderr, flush=True)
            largest = results[-1] if results else None
            wanted = profile == "always" or (
                profile == "auto" and largest is not None and bool(misses(largest))
            )
            if wanted and largest is not None:
                print(f"operator scale: profiling {largest.size}...", file=sys.stderr)
                profiled = bench.run_profile(largest.size, memory=profile_memory)
        finally:
            bench.stop()
    return OperatorScaleResult(
        sizes=tuple(results),
        interval_s=interval_s,
        window_intervals=window_intervals,
        services=SERVICES,
        machine=machine(),
        load_before=load_before,
        setup_s=setup_s,
        wall_s=time.time() - started,
        command=command,
        scrape_every_s=scrape_every_s,
        not_run=tuple(not_run),
        profile=profiled,
        counterparts_nice=counterparts_nice,
    )


def _one_line(size: SizeResult) -> str:
    return (
        f"{size.evaluations} evaluations in {size.window_s:.0f} s, "
        f"{size.cpu_ms_per_evaluation:.0f} ms CPU each ({size.cpu_cores:.2f} cores), "
        f"peak RSS {size.peak_rss_mib:.0f} MiB, lag p50/p99 {seconds(size.lag_p50_s)}/"
        f"{seconds(size.lag_p99_s)} (after a restart {seconds(size.restart_lag_p99_s)}), "
        f"{size.prometheus_rps:.1f} Prometheus req/s, "
        f"{size.api_rps:.1f} API req/s, {size.status_patches} patches"
    )


# ------------------------------------------------------------------ the section


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.0f} ms"


def _per_evaluation(size: SizeResult, seconds_total: float) -> str:
    return _ms(1000 * seconds_total / size.evaluations) if size.evaluations else "–"


def _bound(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "> 10 s" if math.isinf(value) else f"≤ {value:g} s"


def operator_scale_section(result: OperatorScaleResult) -> str:
    from perfguard.api.quantities import format_duration
    from perfguard.config import OperatorConfig

    sizes = result.sizes
    header = ["measure", *(f"{s.size:,} PB" for s in sizes), "target"]
    refresh = format_duration(OperatorConfig().status_refresh)
    interval = result.interval_s

    def row(label: str, cells: Sequence[str], target: str = "") -> list[str]:
        return [label, *cells, target]

    rows = [
        row("window measured", [f"{s.window_s:.0f} s" for s in sizes]),
        row(
            "evaluations in the window (per s; N ÷ interval)",
            [
                f"{s.evaluations:,} ({s.evaluations_per_s:.1f}/s; {s.size / interval:.1f}/s)"
                for s in sizes
            ],
        ),
        row(
            "operator CPU per evaluation",
            [
                _ms(s.cpu_ms_per_evaluation) + (" (mostly idle)" if s.evaluations < 10 else "")
                for s in sizes
            ],
        ),
        row(
            "operator CPU, cores",
            [f"{s.cpu_cores:.2f}" for s in sizes],
            "≤ 1 core at 1,000",
        ),
        row(
            "RSS: peak (VmHWM) / at the end",
            [f"{s.peak_rss_mib:.0f} / {s.end_rss_mib:.0f} MiB" for s in sizes],
            f"< {TARGET_RSS_MIB:.0f} MiB at 1,000",
        ),
        row(
            "evaluation lag p50 / p99",
            [f"{seconds(s.lag_p50_s)} / {seconds(s.lag_p99_s)}" for s in sizes],
            f"p99 < {TARGET_LAG_P99_S:.0f} s at 1,000",
        ),
        row(
            "evaluation lag max; gaps counted",
            [f"{seconds(s.lag_max_s)}; {len(s.lags):,}" for s in sizes],
        ),
        row(
            "of which after a resource's first evaluation: p99; count",
            [f"{seconds(percentile(s.lag_first, 99))}; {len(s.lag_first):,}" for s in sizes],
        ),
        row(
            "of which later (steady): p99; count",
            [f"{seconds(percentile(s.lag_steady, 99))}; {len(s.lag_steady):,}" for s in sizes],
        ),
        row(
            "after a restart: lag p50 / p99; gaps counted",
            [
                f"{seconds(percentile(s.restart_lags, 50))} / {seconds(s.restart_lag_p99_s)}; "
                f"{len(s.restart_lags):,}"
                for s in sizes
            ],
            f"p99 < {TARGET_LAG_P99_S:.0f} s at 1,000",
        ),
        row(
            "of which old operator's last evaluation → new one's first: p99; max; min "
            "(negative: before it was due)",
            [
                f"{seconds(percentile(s.restart_lag_first, 99))}; "
                f"{seconds(max(s.restart_lag_first, default=math.nan))}; "
                f"{seconds(min(s.restart_lag_first, default=math.nan))}"
                for s in sizes
            ],
        ),
        row(
            "of which resources due before the stop (first gap may be an interval too long); "
            "p99 of the others' first gaps",
            [
                f"{s.restart_due_at_stop:,}; {seconds(percentile(s.restart_lag_first_clear, 99))}"
                for s in sizes
            ],
        ),
        row(
            "of which came due after the new operator's first evaluation (SIGTERM → it): "
            "p99; count",
            [
                f"{seconds(percentile(s.restart_lag_due_after, 99))}; "
                f"{len(s.restart_lag_due_after):,} ({seconds(s.restart_first_evaluation_s)})"
                for s in sizes
            ],
        ),
        row(
            "restart: the old operator's stop took; resources the new one evaluated",
            [f"{seconds(s.restart_down_s)}; {s.restart_evaluated:,}" for s in sizes],
        ),
        row(
            "operator start → every resource evaluated once",
            [
                seconds(s.startup_s) if not math.isnan(s.startup_s) else f"{s.evaluated_once:,}"
                for s in sizes
            ],
        ),
        row(
            "evaluation wall time p50 / p99 (histogram bucket)",
            [f"{_bound(s.duration_p50_bound_s)} / {_bound(s.duration_p99_bound_s)}" for s in sizes],
        ),
        row(
            "status patches / evaluations",
            [patches_row(s.status_patches, s.evaluations, s.patch_causes) for s in sizes],
        ),
        row("Prometheus requests/s", [f"{s.prometheus_rps:.1f}" for s in sizes]),
        row(
            "Prometheus query engine time per evaluation (queue wait)",
            [
                f"{_per_evaluation(s, s.prometheus_query_s)} "
                f"({_per_evaluation(s, s.prometheus_queue_s)})"
                for s in sizes
            ],
        ),
        row(
            "Prometheus' own time per request (query_range handler)",
            [
                _ms(1000 * s.prometheus_http_s / s.prometheus_requests)
                if s.prometheus_requests
                else "–"
                for s in sizes
            ],
        ),
        row(
            "Prometheus process CPU, cores",
            [f"{s.prometheus_cpu_s / s.window_s:.2f}" for s in sizes],
        ),
        row(
            "operator CPU ÷ Prometheus engine time",
            [ratio(s.operator_cpu_s, s.prometheus_query_s) for s in sizes],
        ),
        row(
            "operator CPU ÷ Prometheus process CPU",
            [ratio(s.operator_cpu_s, s.prometheus_cpu_s) for s in sizes],
        ),
        row("API requests/s", [f"{s.api_rps:.2f}" for s in sizes]),
        row(
            "kube-apiserver / etcd CPU, cores",
            [
                f"{s.apiserver_cpu_s / s.window_s:.2f} / {s.etcd_cpu_s / s.window_s:.2f}"
                for s in sizes
            ],
        ),
        row(
            "verdicts at the end; failed evaluations",
            [", ".join(f"{k} {v}" for k, v in s.verdicts) + f"; {s.errors}" for s in sizes],
        ),
        row(
            "status.reason at the end",
            [", ".join(f"{k} {v}" for k, v in s.reasons) or "–" for s in sizes],
        ),
        row(
            "status.message of those Inconclusive at the end (numbers as #; top 3)",
            ["; ".join(f"{v} × “{k}”" for k, v in s.inconclusive_messages) or "–" for s in sizes],
        ),
        row(
            "Events on the resources (whole run, by reason)",
            [", ".join(f"{k} {v}" for k, v in s.events) or "none" for s in sizes],
        ),
        row(
            "one PerfBaseline as JSON (status included), mean",
            [f"{s.object_kib:.1f} KiB" for s in sizes],
        ),
        row(
            "finalizers and annotations on the resources at the end",
            [", ".join(f"{k} {v}" for k, v in s.marks) or "none" for s in sizes],
        ),
        row(
            "scraping the operator's /metrics (wall time, ≥ its CPU), share of operator CPU",
            [
                f"{s.scrape_wall_s / s.operator_cpu_s:.0%}" if s.operator_cpu_s > 0 else "–"
                for s in sizes
            ],
        ),
        row("creating the resources (not measured)", [seconds(s.create_s, 0) for s in sizes]),
        row(
            "load average at the end of the window",
            [f"{s.load_end[0]:.1f}" for s in sizes],
        ),
    ]
    table = markdown_table(header, rows)

    api_lines = []
    for s in sizes:
        parts = ", ".join(f"{k} {v / s.window_s:.2f}/s" for k, v in s.api_breakdown[:6])
        api_lines.append(f"- {s.size:,}: {parts or 'none'}")

    verdict_lines = []
    for s in sizes:
        missed = misses(s)
        verdict_lines.append(
            f"- {s.size:,}: "
            + ("every target holds" if not missed else "misses " + "; ".join(missed))
        )
    if sizes:
        big = sizes[-1]
        needed = big.size / interval * big.cpu_ms_per_evaluation / 1000
        verdict_lines.append(
            f"- at {big.size:,}, keeping every resource on its interval takes "
            f"{big.size / interval:.1f} evaluations/s × {_ms(big.cpu_ms_per_evaluation)} = "
            f"{needed:.2f} cores, the judging on the one event-loop thread"
            + (" (the profile below shows where)" if result.profile else "")
            + f"; it ran {big.evaluations_per_s:.1f}/s on {big.cpu_cores:.2f} cores, "
            f"with Prometheus, kube-apiserver and etcd taking "
            f"{(big.prometheus_cpu_s + big.apiserver_cpu_s + big.etcd_cpu_s) / big.window_s:.2f}"
            " cores of the same machine"
        )
    at_target = next((s for s in sizes if s.size == TARGET_SIZE), None)
    if at_target is None:
        largest = sizes[-1].size if sizes else 0
        why = "; ".join(result.not_run) or "not asked for"
        verdict_lines.append(f"- {TARGET_SIZE:,} was not run (largest run: {largest:,}): {why}")

    profile = ""
    if result.profile is not None:
        p = result.profile
        per = 1000 * p.operator_cpu_s / p.evaluations if p.evaluations else math.nan
        profile = f"""
### Profile ({p.size:,} PerfBaselines)

The operator again, over the same resources, under cProfile (`python -m
bench.scale_profiled`), profiled for {p.window_s:.0f} s once every resource had been
evaluated once ({p.evaluations:,} evaluations, {_ms(per)} CPU each with the profiler's
overhead; process CPU {p.operator_cpu_s:.0f} s). Every thread is profiled: the event
loop and the worker threads of `asyncio.to_thread` (the Kubernetes client's status
patches, the /metrics page). cProfile times by the wall clock, and a thread waiting for
the interpreter lock is charged to what it was running, so its totals exceed the process
CPU: read the shares, not the seconds. Own time by area, waiting left out (in epoll, on an
empty pool queue, on a lock, and a worker thread's blocking read of the API server's
answer):

{p.areas}

Functions with the most own time:

{p.table}
"""
        if p.memory:
            profile += f"""
Live allocations at the end of the profiled interval (tracemalloc, one frame; tracing
makes the process larger and slower than in the table above), largest sites: {p.memory}
"""
    from perfguard.config import EVALUATION_SLOTS
    from perfguard.handlers.reconcile import BEHIND_ALLOWANCE, STOP_ALLOWANCE

    load = result.load_before
    nice = (
        f"\n**Prometheus, kube-apiserver and etcd ran at nice {result.counterparts_nice}** (the"
        " operator at 0): the operator is first in line for the CPU, as if they ran on other"
        " machines; they get what it leaves."
        if result.counterparts_nice
        else ""
    )
    commands = (
        f"`{result.command}` (wall time {result.wall_s / 60:.1f} min, of which "
        f"{result.setup_s:.0f} s setting up the servers)"
    )
    return f"""## Operator scale

N PerfBaselines against **one operator process** (`python -m perfguard.cli run
--namespace NS`, measured through /proc), a real kube-apiserver + etcd and a real
Prometheus 2.42, all on this machine. Each PerfBaseline has 4 metrics (latency p95 and
mean with 3 stages; throughput; error ratio; a Query for p99), **comparison
`Concurrent`** (candidate vs stable over the same 10-minute window at a 30 s step),
`analysis.interval` {interval:g} s: {REQUESTS_PER_EVALUATION} range queries per evaluation
(one per metric, plus the throughput metric's own 1-hour history, which throughput is
always judged against). The resources spread over {result.services} generated services
whose history reaches past the end of the run, so every evaluation at wall-clock now has
data. They exist before the operator starts and have never been evaluated (as when
perfguard is first installed on a cluster that holds them): its first round is a burst of
every resource at once; measured over {result.window_intervals:g} intervals from the moment
every resource had been evaluated once. Then the operator is stopped (SIGTERM) and a new
one started over the same resources, as on an upgrade or a crash: it resumes each
resource's schedule from `status.lastEvaluationTime` (docs/reliability.md), measured over
{result.window_intervals:g} intervals from its start, the first gap counted from the old
operator's last evaluation of each resource (its /metrics read just before the stop: with
`statusRefresh` the status holds the last evaluation written, not the last one). Lag = gap
between two successive evaluation starts of a resource (from the operator's
`perfguard_last_evaluation_timestamp_seconds`, scraped every {result.scrape_every_s:g} s,
as a Prometheus would, whose cost the operator's CPU includes; the operator stamps
evaluations to the whole second, so lags are ±1 s) minus the interval, over every gap that
ended in the window; the gaps after a resource's first evaluation (the start-up burst) and
the later ones are also shown apart. A resource is due an interval after its previous
evaluation started (not after it ended); at most {EVALUATION_SLOTS} evaluations query and
judge at once, so the lag is the wait for one of those slots and for the event loop.
A negative first gap after the restart is a resource the new operator evaluated before it
was due: the statuses cannot tell whether the old operator met a schedule point shortly
before it stopped, so a point an interval or more after the resource's own stamp that lies
at most {STOP_ALLOWANCE.total_seconds():g} s plus the new process' run so far back (and no
more than an interval), and no further back than {BEHIND_ALLOWANCE.total_seconds():g} s
before the latest `lastEvaluationTime` among the resources it has started so far, is
evaluated at once (`reconcile.restart_grace`): an extra evaluation rather than a whole
interval late. The harness creates every resource at once, so their schedules share one
band of the interval (as wide as the start-up burst); when the stop falls soon after that
band, nearly all of them are evaluated early.

{table}

Targets (stated for 1,000 PerfBaselines, checked at every size):

{chr(10).join(verdict_lines)}

API requests in the window by verb and resource (the harness makes none then;
kube-apiserver's requests to itself for its lease and endpoints are left out):

{chr(10).join(api_lines)}

Status patches: the operator patches a status when its news changed (verdict, reasons,
conditions' status, metric verdicts, breach and improvement stamps, the candidate;
`perfguard.engine.status_news`), and otherwise rewrites the numbers, which move at every
evaluation, once `statusRefresh` ({refresh}, the default) has passed since the last write.
So patches per evaluation are the share of evaluations with news plus about one interval
in `statusRefresh` (the row splits them by `perfguard_status_patches_total`'s `cause`).
Each new resource also gets one patch before its first evaluation (`pending`: Ready
Unknown on first sight), which falls before the window. The
resources share {result.services} services, and those of one service judge nearly the same
data in the same minute: a metric at the edge of significance there (between Pass and
Improved or Inconclusive) changes its verdict for all of them at once, so news patches
come in bursts of up to a service's share of the resources, and their count moves between
runs by a few such changes (at log level DEBUG the operator logs which news each write
carried). Machine: {result.machine}; the cores are shared with the
control plane, Prometheus and other work (load average {load[0]:.1f} before the run).{nice}
{profile}
Command: {commands}.
"""


def load_result(path: Path) -> OperatorScaleResult:
    """A result written with `--save`, to render its section again without a run."""
    raw = json.loads(path.read_text())
    fields = {k: tuplify(v) for k, v in raw.items() if k not in {"sizes", "profile"}}
    sizes = tuple(SizeResult(**{k: tuplify(v) for k, v in s.items()}) for s in raw["sizes"])
    profile = ProfileResult(**raw["profile"]) if raw.get("profile") else None
    return OperatorScaleResult(sizes=sizes, profile=profile, **fields)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help="comma-separated numbers of PerfBaselines")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"sizes {QUICK_SIZES}, a {QUICK_INTERVAL_S:g} s interval",
    )
    parser.add_argument("--interval", type=float, help="analysis.interval in seconds")
    parser.add_argument(
        "--window-intervals",
        type=float,
        help=f"intervals measured per size, after the start and after the restart "
        f"(default {WINDOW_INTERVALS:g}, --quick {QUICK_WINDOW_INTERVALS:g})",
    )
    parser.add_argument("--profile", choices=["auto", "always", "never"], default="auto")
    parser.add_argument(
        "--profile-memory",
        action="store_true",
        help="trace allocations with tracemalloc in the profiling pass too",
    )
    parser.add_argument("--budget", type=float, help="skip sizes once this many seconds passed")
    parser.add_argument(
        "--counterparts-nice",
        type=int,
        default=0,
        help="run Prometheus, kube-apiserver and etcd at this niceness (the operator at 0)",
    )
    parser.add_argument("--save", type=Path, help="also write the result as JSON here")
    parser.add_argument(
        "--trace",
        type=Path,
        help="write each restart's per-resource evaluation times and the operator logs here",
    )
    parser.add_argument("--render", type=Path, help="print the section of a saved result")
    args = parser.parse_args(argv)
    if args.render:
        print(operator_scale_section(load_result(args.render)))
        return 0
    sizes = (
        tuple(int(s) for s in args.sizes.split(","))
        if args.sizes
        else (QUICK_SIZES if args.quick else SIZES)
    )
    interval = args.interval or (QUICK_INTERVAL_S if args.quick else INTERVAL_S)
    command = "python -m bench.operator_scale " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    result = run_operator_scale(
        sizes,
        interval_s=interval,
        window_intervals=args.window_intervals
        or (QUICK_WINDOW_INTERVALS if args.quick else WINDOW_INTERVALS),
        profile=args.profile,
        command=command.strip(),
        budget_s=args.budget,
        profile_memory=args.profile_memory,
        # A scrape sees only each resource's latest start: at least three per interval, or
        # two evaluations between scrapes read as one gap of two intervals (--quick's 15 s).
        scrape_every_s=min(SCRAPE_EVERY_S, interval / 3),
        counterparts_nice=args.counterparts_nice,
        trace=args.trace,
    )
    if args.save:
        save_json(result, args.save)
    print(operator_scale_section(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
