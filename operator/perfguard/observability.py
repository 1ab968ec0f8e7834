"""Logging (structlog) and the operator's own Prometheus metrics."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.utils import floatToGoString

from perfguard.times import parse_time_or_none


def configure_logging(level: str = "INFO", *, json: bool | None = None) -> None:
    """JSON lines in the cluster, readable lines on a terminal.

    Kopf logs through the standard library; routing it through structlog's formatter gives
    one format for both.
    """
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log and kubernetes' urllib3 chatter drown the signal at INFO.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def resource_logger(kind: str, namespace: str | None, name: str | None) -> Any:
    """A logger whose every line carries the resource's kind, namespace and name."""
    return structlog.get_logger("perfguard").bind(kind=kind, namespace=namespace, name=name)


class OperatorMetrics:
    """The operator's own metrics, in a registry of their own (so tests can make many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["kind", "namespace", "name"]
        self.verdict = Gauge(
            "perfguard_verdict",
            "1 for the resource's current verdict, 0 for the others.",
            [*labels, "verdict"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "perfguard_ready",
            "1 when the resource's Ready condition is True.",
            labels,
            registry=self.registry,
        )
        self.metric_delta = Gauge(
            "perfguard_metric_delta",
            "Candidate minus baseline, per PerfBaseline metric, statistic and comparison "
            "(base units: seconds, requests/s, ratio).",
            [*labels, "metric", "statistic", "comparison"],
            registry=self.registry,
        )
        self.evaluations = Counter(
            "perfguard_evaluations_total",
            "Evaluations by outcome (ok, error, invalid_spec).",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.evaluation_seconds = Histogram(
            "perfguard_evaluation_duration_seconds",
            "Wall time of one evaluation, I/O included.",
            ["kind"],
            registry=self.registry,
        )
        self.last_evaluation = Gauge(
            "perfguard_last_evaluation_timestamp_seconds",
            "Unix time of the resource's last completed evaluation.",
            labels,
            registry=self.registry,
        )
        self.status_patches = Counter(
            "perfguard_status_patches_total",
            "Status patches written, by cause: news (at once), refresh (every statusRefresh), "
            "unstamped, handover (a measurement at a stop), changed (neither news nor a "
            "measurement), pending (Ready=Unknown on a new resource's first sight); see "
            "write_cause.",
            ["kind", "cause"],
            registry=self.registry,
        )

        self.metric_ci95 = Gauge(
            "perfguard_metric_ci95",
            "Bounds of the 95 % interval of perfguard_metric_delta (bound lo or hi).",
            [*labels, "metric", "statistic", "comparison", "bound"],
            registry=self.registry,
        )
        self.drift_percent = Gauge(
            "perfguard_envparity_drift_percent",
            "EnvParity: differing items / compared items × 100.",
            ["namespace", "name"],
            registry=self.registry,
        )
        self.utilisation = Gauge(
            "perfguard_capacity_utilisation_percent",
            "CapacityPlan: current fleet utilisation per resource (gpu, gpuMemory, cpu, memory).",
            ["namespace", "name", "resource"],
            registry=self.registry,
        )
        self.projected = Gauge(
            "perfguard_capacity_projected_utilisation_percent",
            "CapacityPlan: projected fleet utilisation per scenario and resource.",
            ["namespace", "name", "scenario", "resource"],
            registry=self.registry,
        )
        self.anomalies = Gauge(
            "perfguard_capacity_anomalies",
            "CapacityPlan: anomalies ongoing or ended within the last hour, by type.",
            ["namespace", "name", "type"],
            registry=self.registry,
        )
        # (gauge, resource label prefix) -> label suffixes last exported (see _replace)
        self._exported: dict[tuple[int, tuple[str, ...]], set[tuple[str, ...]]] = {}

    def _replace(
        self, gauge: Gauge, prefix: tuple[str, ...], rows: dict[tuple[str, ...], float]
    ) -> None:
        """Set a resource's series of `gauge` to exactly `rows` (label suffix -> value).

        The suffixes last written per resource are remembered, so an evaluation touches its
        own series only: scanning every series of the gauge made each evaluation cost grow
        with the fleet (4 % of the event loop at 1,000 PerfBaselines, bench/operator_scale).
        """
        key = (id(gauge), prefix)
        for suffix in self._exported.get(key, set()) - rows.keys():
            gauge.remove(*prefix, *suffix)
        for suffix, value in rows.items():
            gauge.labels(*prefix, *suffix).set(value)
        self._exported[key] = set(rows)

    def _forget_exported(self, prefix: tuple[str, ...], gauges: tuple[Gauge, ...]) -> None:
        for gauge in gauges:
            for suffix in self._exported.pop((id(gauge), prefix), set()):
                gauge.remove(*prefix, *suffix)

    def export_status(
        self, kind: str, namespace: str, name: str, fields: dict[str, Any], at: datetime
    ) -> None:
        """Kind-specific numbers of an evaluation's status fields, for alerts and dashboards."""
        if kind == "PerfBaseline" and "metrics" in fields:
            # Both rebuilt from the metrics the status shows: a metric that has no delta
            # now (NoData) or left the spec loses its series instead of keeping its last.
            deltas: dict[tuple[str, ...], float] = {}
            rows: dict[tuple[str, ...], float] = {}
            for item in fields.get("metrics") or []:
                if not isinstance(item, dict):
                    continue
                key = (
                    item.get("name", ""),
                    item.get("statistic", ""),
                    item.get("comparison", ""),
                )
                if item.get("delta") is not None:
                    deltas[key] = float(item["delta"])
                ci = item.get("ci95")
                if ci and len(ci) == 2 and None not in ci:
                    rows[(*key, "lo")] = float(ci[0])
                    rows[(*key, "hi")] = float(ci[1])
            self._replace(self.metric_delta, (kind, namespace, name), deltas)
            self._replace(self.metric_ci95, (kind, namespace, name), rows)
        if kind == "EnvParity":
            drift = fields.get("driftPercent")
            self._replace(
                self.drift_percent,
                (namespace, name),
                {(): float(drift)} if drift is not None and "compared" in fields else {},
            )
        if kind == "CapacityPlan":
            current: dict[tuple[str, ...], float] = {
                (c["resource"],): float(c["fleet"])
                for c in fields.get("current") or []
                if c.get("fleet") is not None
            }
            projected: dict[tuple[str, ...], float] = {
                (p["scenario"], p["resource"]): float(p["projected"])
                for p in fields.get("projections") or []
                if p.get("projected") is not None
            }
            since = at - timedelta(hours=1)
            active: dict[tuple[str, ...], float] = {}
            for a in fields.get("anomalies") or []:
                end = parse_time_or_none(a.get("end"))
                if a.get("end") is None or (end is not None and end >= since):
                    active[(a["type"],)] = active.get((a["type"],), 0.0) + 1.0
            self._replace(self.utilisation, (namespace, name), current)
            self._replace(self.projected, (namespace, name), projected)
            self._replace(self.anomalies, (namespace, name), active)

    def set_verdict(
        self, kind: str, namespace: str, name: str, verdict: str, choices: tuple[str, ...]
    ) -> None:
        for choice in choices:
            self.verdict.labels(kind, namespace, name, choice).set(1 if choice == verdict else 0)

    def forget(self, kind: str, namespace: str, name: str) -> None:
        """Drop every series of a resource this replica no longer evaluates (deleted, or
        another replica took over) so stale verdicts do not linger."""
        for gauge in (self.verdict, self.ready, self.last_evaluation):
            for labels in list(gauge._metrics):  # prometheus_client lists no label sets
                if labels[:3] == (kind, namespace, name):
                    gauge.remove(*labels)
        self._forget_exported((kind, namespace, name), (self.metric_delta, self.metric_ci95))
        self._forget_exported(
            (namespace, name),
            {
                "EnvParity": (self.drift_percent,),
                "CapacityPlan": (self.utilisation, self.projected, self.anomalies),
            }.get(kind, ()),
        )


_EXPOSED_TYPES = {"counter": "counter", "gauge": "gauge", "histogram": "histogram"}
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """The Prometheus text format of a registry, as prometheus_client's generate_latest
    writes it, with each series' labels rendered once and remembered.

    The operator exports about 20 series per PerfBaseline; at 1,000 resources a page is
    20,000 lines, and generate_latest validates and escapes every label of every line on
    every scrape (9 % of the operator's CPU at a 10 s scrape, bench/operator_scale).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._rendered: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def render(self) -> bytes:
        families = list(self.registry.collect())
        if any(f.type not in _EXPOSED_TYPES for f in families):
            return generate_latest(self.registry)  # kinds this renderer does not know
        known, used = self._rendered, {}
        out: list[str] = []
        for family in families:
            exposed = family.name + "_total" if family.type == "counter" else family.name
            doc = family.documentation.replace("\\", "\\\\").replace("\n", "\\n")
            out.append(f"# HELP {exposed} {doc}\n# TYPE {exposed} {family.type}\n")
            extra: dict[str, list[str]] = {}
            for sample in family.samples:
                key = (sample.name, tuple(sample.labels.items()))
                head = known.get(key)
                if head is None:
                    labels = ",".join(
                        f'{k}="{_label_value(v)}"' for k, v in sorted(sample.labels.items())
                    )
                    head = f"{sample.name}{{{labels}}}" if labels else sample.name
                used[key] = head
                stamp = (
                    f" {int(float(sample.timestamp) * 1000):d}"
                    if sample.timestamp is not None
                    else ""
                )
                value = floatToGoString(sample.value)  # type: ignore[no-untyped-call]
                line = f"{head} {value}{stamp}\n"
                suffix = next(
                    (x for x in _OPENMETRICS_ONLY if sample.name == family.name + x), None
                )
                if suffix is None:
                    out.append(line)
                else:
                    extra.setdefault(suffix, []).append(line)
            for suffix, lines in sorted(extra.items()):
                name = family.name + suffix
                out.append(f"# HELP {name} {doc}\n# TYPE {name} gauge\n")
                out.extend(lines)
        self._rendered = used  # series of deleted resources are dropped here
        return "".join(out).encode("utf-8")
