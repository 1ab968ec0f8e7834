"""What the operator-scale and time-to-detect benchmarks share.

Reading a process' CPU and memory from /proc, scraping and parsing Prometheus text
exposition (the operator's, Prometheus' own, kube-apiserver's, etcd's), the evaluation lag
from per-resource evaluation start times, nearest-rank percentiles, starting and stopping
the operator as a subprocess (optionally under cProfile), and Markdown tables.
"""

from __future__ import annotations

import math
import os
import platform
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CRDS = REPO / "crds"


# ------------------------------------------------------------------ the machine


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


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


# ------------------------------------------------------------------ /proc


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; fields after its closing parenthesis.
    fields = text[text.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB, from /proc/<pid>/status (VmRSS, VmHWM)."""
    values = {"VmRSS": 0.0, "VmHWM": 0.0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in values:
            values[key] = int(line.split()[1]) / 1024  # kB
    return values["VmRSS"], values["VmHWM"]


# ------------------------------------------------------------------ exposition text


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


def parse_metrics(text: str, names: Iterable[str]) -> list[Sample]:
    """Samples of the named series (exact names, e.g. `foo_total`, `foo_bucket`) from
    Prometheus text exposition. Lines of other series are skipped without parsing, so a
    large page costs little."""
    wanted = set(names)
    prefixes = tuple(wanted)
    out: list[Sample] = []
    for line in text.splitlines():
        if not line.startswith(prefixes):
            continue
        match = _LINE.match(line)
        if match is None or match.group(1) not in wanted:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match.group(2) or "")}
        out.append(Sample(match.group(1), labels, float(match.group(3))))
    return out


def _matching(samples: Iterable[Sample], name: str, match: Mapping[str, str]) -> Iterable[Sample]:
    """The samples called `name` whose labels include `match`."""
    return (
        s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in match.items())
    )


def total(samples: Iterable[Sample], name: str, **match: str) -> float:
    """Sum of the samples called `name` whose labels include `match`."""
    return sum(s.value for s in _matching(samples, name, match))


def by_label(
    after: Iterable[Sample], before: Iterable[Sample], name: str, label: str, **match: str
) -> tuple[tuple[str, int], ...]:
    """How the samples called `name` (labels including `match`) grew from `before` to
    `after`, per value of `label`, largest first; values that did not grow are left out."""
    grown: dict[str, float] = defaultdict(float)
    for samples, sign in ((after, 1.0), (before, -1.0)):
        for s in _matching(samples, name, match):
            grown[s.labels.get(label) or f"no {label}"] += sign * s.value
    return tuple(sorted(((k, int(v)) for k, v in grown.items() if v > 0), key=lambda kv: -kv[1]))


def ratio(numerator: float, denominator: float) -> str:
    """`numerator / denominator` to two places, or a dash without a denominator."""
    return f"{numerator / denominator:.2f}" if denominator > 0 else "–"


def patches_row(patches: int, evaluations: int, causes: Sequence[tuple[str, int]]) -> str:
    """ "patches / evaluations (share); cause count, …" for the benches' status-patch row."""
    text = f"{patches:,} / {evaluations:,}"
    if evaluations:
        text += f" ({patches / evaluations:.2f})"
    if causes:
        text += "; " + ", ".join(f"{cause} {count:,}" for cause, count in causes)
    return text


def fetch(url: str, *, token: str | None = None, cafile: Path | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else None
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        body: bytes = response.read()
    return body.decode()


def histogram_quantile_bound(buckets: Mapping[float, float], q: float) -> float:
    """The upper bound of the bucket holding quantile `q` of a cumulative histogram
    (`le` -> count, +Inf included): "at most this". inf when it is in the +Inf bucket,
    nan without observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return math.nan
    rank = q * buckets[bounds[-1]]
    for bound in bounds:
        if buckets[bound] >= rank:
            return bound
    return math.inf


# ------------------------------------------------------------------ lag and percentiles


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100): the smallest value with at least q % of
    the values at or below it. nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class LagFigures:
    """Percentiles of a result's lags; the result holds them as `lag_first` (the gaps
    after a resource's first evaluation) and `lag_steady` (the later ones)."""

    lag_first: tuple[float, ...]
    lag_steady: tuple[float, ...]

    @property
    def lags(self) -> tuple[float, ...]:
        """Every gap that ended in the window, the first ones after start-up included."""
        return self.lag_first + self.lag_steady

    @property
    def lag_p50_s(self) -> float:
        return percentile(self.lags, 50)

    @property
    def lag_p99_s(self) -> float:
        return percentile(self.lags, 99)


@dataclass(frozen=True)
class Lags:
    """Evaluation lag: the gap between two successive evaluation starts of one resource,
    minus the interval. `steady` are gaps after a resource's second evaluation; `first`
    the gap after its first (the start-up burst)."""

    steady: tuple[float, ...]
    first: tuple[float, ...]


def evaluation_lags(
    starts: Mapping[str, Iterable[float]], interval_s: float, since: float, until: float
) -> Lags:
    """Lags of the evaluations that started in (since, until], per resource's sorted,
    distinct start times (Unix seconds)."""
    steady: list[float] = []
    first: list[float] = []
    for times in starts.values():
        ordered = sorted(set(times))
        for index in range(1, len(ordered)):
            if not since < ordered[index] <= until:
                continue
            lag = ordered[index] - ordered[index - 1] - interval_s
            (first if index == 1 else steady).append(lag)
    return Lags(tuple(steady), tuple(first))


def restart_lags(
    starts: Mapping[str, Iterable[float]], interval_s: float, stopped_at: float, until: float
) -> Lags:
    """Lags of the evaluations that started in (stopped_at, until]: `first` is each
    resource's first gap ending after the stop (the old operator's last evaluation to the
    new one's first), `steady` the later ones."""
    steady: list[float] = []
    first: list[float] = []
    for times in starts.values():
        ordered = sorted(set(times))
        spanned = False
        for index in range(1, len(ordered)):
            if not stopped_at < ordered[index] <= until:
                continue
            lag = ordered[index] - ordered[index - 1] - interval_s
            (steady if spanned else first).append(lag)
            spanned = True
    return Lags(tuple(steady), tuple(first))


def lags_due_after(
    starts: Mapping[str, Iterable[float]], interval_s: float, since: float, until: float, at: float
) -> tuple[float, ...]:
    """Lags of the gaps ending in (since, until] whose evaluation came due after `at`."""
    out: list[float] = []
    for times in starts.values():
        ordered = sorted(set(times))
        for index in range(1, len(ordered)):
            due = ordered[index - 1] + interval_s
            if since < ordered[index] <= until and due > at:
                out.append(ordered[index] - due)
    return tuple(out)


# ------------------------------------------------------------------ the operator process


@dataclass
class OperatorProcess:
    """`python -m perfguard.cli run` watching one namespace, as a subprocess whose CPU and
    memory /proc can tell; with `profile`, the same command line under cProfile
    (bench.scale_profiled: `profile_restart` and `profile_dump` bracket what is profiled)."""

    namespace: str
    prometheus_url: str
    kubeconfig: Path
    log: Path
    port: int
    profile: Path | None = None
    trace_memory: bool = False  # with `profile`: tracemalloc too (bench.scale_profiled)
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)

    @property
    def command(self) -> list[str]:
        runner = ["bench.scale_profiled", str(self.profile)] if self.profile else ["perfguard.cli"]
        return [
            sys.executable,
            "-m",
            *runner,
            "run",
            "--namespace",
            self.namespace,
            "--prometheus",
            self.prometheus_url,
            "--http-port",
            str(self.port),
        ]

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self, timeout: float = 60) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PERFGUARD_HTTP_HOST": "127.0.0.1",
            "PERFGUARD_LOG_JSON": "true",
        }
        if self.profile is not None and self.trace_memory:
            env["PERFGUARD_BENCH_TRACEMALLOC"] = "1"
        with self.log.open("ab") as handle:
            self.started_at = time.time()
            self.popen = subprocess.Popen(
                self.command,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"the operator exited at start-up; see {self.log}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/readyz", timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the operator was not ready within {timeout:.0f}s; see {self.log}")

    def profile_restart(self) -> None:
        if self.profile is not None and self.popen is not None:
            self.popen.send_signal(signal.SIGUSR2)

    def profile_dump(self, timeout: float = 60) -> bool:
        """Have the profiled operator write its stats; True once the file is written."""
        if self.profile is None or self.popen is None:
            return False
        before = self.profile.stat().st_mtime_ns if self.profile.exists() else 0
        self.popen.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.profile.exists() and self.profile.stat().st_mtime_ns != before:
                size = -1
                while size != self.profile.stat().st_size:  # until the write is complete
                    size = self.profile.stat().st_size
                    time.sleep(0.5)
                return True
            time.sleep(0.2)
        return False

    def stop(self, timeout: float = 45) -> None:
        """SIGTERM (Kopf stops its daemons), then SIGKILL."""
        process, self.popen = self.popen, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Waiting, not working: the event loop in epoll, a pool thread on its empty queue, and a
# worker thread blocked reading the Kubernetes API's answer (the event loop's own sockets
# never block: it reads TLS through memory buffers, not an SSLSocket).
IDLE = frozenset(
    {
        "<method 'poll' of 'select.epoll' objects>",
        "<method 'get' of '_queue.SimpleQueue' objects>",
        "<method 'acquire' of '_thread.lock' objects>",
        "<method 'read' of '_ssl._SSLSocket' objects>",
        "<method 'poll' of 'select.poll' objects>",
    }
)
AREAS = (  # (where the time goes, markers in a cProfile filename or builtin's name)
    ("perfguard analysis (statistics)", ("perfguard/analysis/",)),
    ("perfguard engine", ("perfguard/engine/",)),
    ("perfguard handlers, sources, status", ("perfguard/",)),
    ("Kopf", ("kopf/",)),
    ("aiohttp (HTTP client and server)", ("aiohttp/", "yarl/", "multidict/")),
    ("JSON", ("json/", "_json")),
    ("numpy / scipy", ("numpy", "scipy")),
    ("logging (structlog)", ("structlog/", "logging/")),
    ("prometheus_client (/metrics page)", ("prometheus_client/",)),
    ("kubernetes client, urllib3, ssl", ("kubernetes/", "urllib3/", "ssl")),
    ("pydantic", ("pydantic",)),
    ("copy.deepcopy", ("copy.py",)),
    ("asyncio and selectors", ("asyncio/", "selectors", "_asyncio", "socket")),
)


def _area(filename: str, function: str) -> str:
    where = filename if filename != "~" else function
    for area, markers in AREAS:
        if any(marker in where for marker in markers):
            return area
    return "other (builtins, the standard library)"


def profile_tables(path: Path, limit: int = 15) -> tuple[str, str, float]:
    """From a cProfile stats file: own time by area and the functions with the most own
    time, as Markdown, and the busy seconds (waiting in epoll left out)."""
    import pstats

    stats = pstats.Stats(str(path))
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = getattr(
        stats, "stats", {}
    )
    busy = {k: v for k, v in raw.items() if k[2] not in IDLE}
    grand = sum(entry[2] for entry in busy.values()) or 1.0
    areas: dict[str, float] = {}
    for (filename, _, function), entry in busy.items():
        area = _area(filename, function)
        areas[area] = areas.get(area, 0.0) + entry[2]
    area_lines = ["| area | own s | share |", "|---|---:|---:|"]
    for area, own in sorted(areas.items(), key=lambda kv: -kv[1]):
        area_lines.append(f"| {area} | {own:.1f} | {own / grand:.0%} |")
    rows = sorted(busy.items(), key=lambda item: item[1][2], reverse=True)[:limit]
    lines = [
        "| own s | share | cumulative s | calls | function |",
        "|---:|---:|---:|---:|---|",
    ]
    for (filename, line, function), (_, calls, own, cumulative, _) in rows:
        where = _short_path(filename)
        lines.append(
            f"| {own:.1f} | {own / grand:.0%} | {cumulative:.1f} | {calls:,} | "
            f"`{function}` ({where}:{line}) |"
        )
    return "\n".join(area_lines), "\n".join(lines), grand


def memory_sites(path: Path, limit: int = 15) -> str:
    """The file bench.scale_profiled writes from tracemalloc, as Markdown."""
    lines = path.read_text().splitlines()
    rows = ["| MiB | blocks | allocated at |", "|---:|---:|---|"]
    for line in lines[1 : limit + 1]:
        size, count, where = line.split("\t")
        rows.append(f"| {size} | {int(count):,} | `{_short_path(where)}` |")
    return f"{lines[0]}:\n\n" + "\n".join(rows)


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "operator/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# ------------------------------------------------------------------ Markdown


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return "\n".join(lines)


def seconds(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.{digits}f} s"


# ------------------------------------------------------------------ the cluster


def apply_crds(kubeconfig: Path) -> None:
    """kubectl apply the repository's CRDs and wait until they are served."""
    from perfguard.local.binaries import binary

    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    kubectl = str(binary("kubectl"))
    for args in (
        ["apply", "-f", str(CRDS)],
        ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
    ):
        subprocess.run([kubectl, *args], env=env, check=True, capture_output=True, timeout=90)


def kube_client(kubeconfig: Path, pool: int = 16) -> object:
    import kubernetes

    api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = pool
    return api


# ------------------------------------------------------------------ PerfBaselines

GROUP, VERSION, PLURAL = "perfguard.dev", "v1alpha1", "perfbaselines"


def latency_throughput_errors() -> list[dict[str, Any]]:
    """The metrics the engine and scale benchmarks judge (each adds one Query of its own):
    latency p95 and mean by stage, throughput, error ratio. A fresh copy each call."""
    return [
        {
            "name": "latency",
            "type": "Latency",
            "histogram": "inference_request_duration_seconds",
            "stageLabel": "stage",
            "thresholds": {"p95": {"maxIncrease": "5ms"}, "mean": {"maxIncreasePercent": 10}},
        },
        {
            "name": "throughput",
            "type": "Throughput",
            "counter": "inference_requests_total",
            "thresholds": {"rate": {"maxDecreasePercent": 20}},
        },
        {
            "name": "errors",
            "type": "ErrorRate",
            "counter": "inference_requests_total",
            "errorMatchers": {"code": "5.."},
            "thresholds": {"ratio": {"max": 0.01}},
        },
    ]


def perfbaseline_body(
    name: str,
    namespace: str,
    service: str,
    *,
    baseline: Mapping[str, Any],
    analysis: Mapping[str, Any],
    metrics: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """A PerfBaseline comparing the service's canary and stable tracks concurrently."""
    spec = {
        "selector": {"service": service},
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
        "comparison": "Concurrent",
        "baseline": dict(baseline),
        "analysis": dict(analysis),
        "metrics": [dict(m) for m in metrics],
    }
    return custom_resource("PerfBaseline", name, namespace, spec)


def custom_resource(kind: str, name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One of perfguard's resources, as created through the API."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# ------------------------------------------------------------------ saved results


def tuplify(value: object) -> object:
    """JSON lists back into the tuples the frozen result dataclasses hold."""
    if isinstance(value, list):
        return tuple(tuplify(v) for v in value)
    return value


def save_json(result: object, path: Path) -> None:
    import dataclasses
    import json

    assert dataclasses.is_dataclass(result) and not isinstance(result, type)
    path.write_text(json.dumps(dataclasses.asdict(result), indent=1))
