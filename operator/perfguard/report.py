"""`perfguard report`: the fleet summary from the three kinds' statuses (pure).

The final verdict follows one rule table, applied in order (first match wins):

1. NEEDS FIX: a PerfBaseline is Fail, an EnvParity is Drifted, or a CapacityPlan is
   Insufficient.
2. AT RISK: nothing to report at all; or anything is Inconclusive, Unverified or
   NearLimit, holds a verdict this version does not know, is not yet evaluated, not
   Ready, or a CapacityPlan has an active anomaly; or a verdict is out of date: it judged
   an earlier spec (`status.observedGeneration` below `metadata.generation`), or its last
   evaluation (`status.lastEvaluationTime`, missing, older than
   `3 × interval + statusRefresh`, or more than 60 s in the future) is stale. The interval is a
   PerfBaseline's `spec.analysis.interval`, the other kinds' `spec.interval`.
3. STABLE: otherwise, i.e. every resource is evaluated, up to date, Ready and passing.

Why 3 × interval + statusRefresh: the operator rewrites an unchanged status only once
`statusRefresh` (default 5m) has passed since its last write, so a healthy status's
`lastEvaluationTime` is up to `statusRefresh` plus an interval old; the rule allows two
more missed intervals before calling the verdict stale (an operator that is down, stuck
or behind).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from perfguard.freshness import STATUS_REFRESH, ahead, evaluated_at, staleness
from perfguard.render import format_quantity, one_line

STABLE: Final = "STABLE"
NEEDS_FIX: Final = "NEEDS FIX"
AT_RISK: Final = "AT RISK"

FAILING: Final = {
    "PerfBaseline": {"Fail"},
    "EnvParity": {"Drifted"},
    "CapacityPlan": {"Insufficient"},
}
RISKY: Final = {
    "PerfBaseline": {"Inconclusive"},
    "EnvParity": {"Unverified"},
    "CapacityPlan": {"NearLimit", "Unverified"},
}

PASSING: Final = {
    "PerfBaseline": {"Pass"},
    "EnvParity": {"InSync"},
    "CapacityPlan": {"Sufficient"},
}

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class Finding:
    verdict: str  # NEEDS FIX or AT RISK
    kind: str
    name: str
    reason: str


@dataclass
class Report:
    verdict: str
    rule: str
    findings: list[Finding]
    perfbaselines: list[Obj] = field(default_factory=list)
    envparities: list[Obj] = field(default_factory=list)
    capacityplans: list[Obj] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    # The namespace read; None: every namespace.
    namespace: str | None = None

    @property
    def scope(self) -> str:
        return "all namespaces" if self.namespace is None else f"namespace {self.namespace}"


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _status(obj: Obj) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in _status(obj).get("conditions") or [] if c.get("type") == type_), None)


def _out_of_date(kind: str, obj: Obj, now: datetime, status_refresh: timedelta) -> list[Finding]:
    status, name = _status(obj), _name(obj)
    out: list[Finding] = []
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if isinstance(generation, int) and (not isinstance(observed, int) or observed < generation):
        out.append(
            Finding(
                AT_RISK,
                kind,
                name,
                f"spec not evaluated yet: the verdict is for generation {observed}, "
                f"the spec is at generation {generation}",
            )
        )
    stale = staleness(kind, obj, now, status_refresh)
    if evaluated_at(obj) is None:
        if out:  # at risk or failing already, for a clearer reason
            return out
        out.append(
            Finding(AT_RISK, kind, name, "no lastEvaluationTime: the verdict's age is unknown")
        )
    elif (future := ahead(obj, now)) is not None:
        out.append(
            Finding(
                AT_RISK,
                kind,
                name,
                f"lastEvaluationTime in the future: {future}; the verdict's age is unknown "
                "(a clock is wrong, or the stamp was not written by a running operator)",
            )
        )
    elif stale is not None:
        out.append(
            Finding(AT_RISK, kind, name, f"stale: last evaluated {stale}; is the operator running?")
        )
    return out


def findings_of(
    kind: str,
    obj: Obj,
    now: datetime | None = None,
    status_refresh: timedelta = STATUS_REFRESH,
) -> list[Finding]:
    status = _status(obj)
    verdict = status.get("verdict")
    name = _name(obj)
    message = str(status.get("message") or status.get("reason") or "")
    out: list[Finding] = []
    if verdict is None:
        out.append(Finding(AT_RISK, kind, name, "not evaluated yet"))
        return out
    if verdict in FAILING[kind]:
        out.append(Finding(NEEDS_FIX, kind, name, f"{verdict}: {message}"))
    elif verdict in RISKY[kind]:
        out.append(Finding(AT_RISK, kind, name, f"{verdict}: {message}"))
    elif verdict not in PASSING[kind]:
        # Not written by this operator version (by hand, another version): no gate
        # promotes on it (409 UnknownVerdict), so it is not a pass here either.
        out.append(Finding(AT_RISK, kind, name, f"unknown verdict {one_line(str(verdict), 80)!r}"))
    ready = _condition(obj, "Ready")
    if ready is None or ready.get("status") != "True":
        why = ready.get("reason", "?") if ready else "no Ready condition"
        if not out:
            out.append(Finding(AT_RISK, kind, name, f"not Ready ({why})"))
    anomaly = _condition(obj, "AnomalyDetected") if kind == "CapacityPlan" else None
    if anomaly is not None and anomaly.get("status") == "True":
        out.append(Finding(AT_RISK, kind, name, f"active anomaly: {anomaly.get('message', '')}"))
    out += _out_of_date(kind, obj, now or datetime.now(UTC), status_refresh)
    return out


def decide(findings: Sequence[Finding], resources: int) -> tuple[str, str]:
    """The rule table of the module docstring: (verdict, the rule that decided it)."""
    if any(f.verdict == NEEDS_FIX for f in findings):
        return NEEDS_FIX, "a regression, drift or capacity shortfall was found"
    if resources == 0:
        return AT_RISK, "no PerfBaseline, EnvParity or CapacityPlan found: nothing is verified"
    if findings:
        return (
            AT_RISK,
            "something is inconclusive, unverified, near a limit, out of date or not Ready",
        )
    return STABLE, "every resource is evaluated, up to date, Ready and passing"


def _actions(report: Report) -> list[str]:
    actions: list[str] = []
    for obj in report.perfbaselines:
        status = _status(obj)
        if status.get("verdict") == "Fail":
            failed = [
                f"{m['name']} {m['statistic']} ({m.get('comparison')})"
                for m in status.get("metrics") or []
                if m.get("verdict") == "Regressed"
            ]
            identity = (status.get("candidate") or {}).get("identity", "the candidate")
            actions.append(
                f"Hold or roll back {identity} ({_name(obj)}): regressed on {', '.join(failed)}."
            )
    for obj in report.envparities:
        status = _status(obj)
        if status.get("verdict") == "Drifted":
            top = (status.get("differences") or [{}])[0]
            actions.append(
                f"Reconcile {_name(obj)}: {status.get('totalDifferences', 0)} difference(s), "
                f"first {top.get('kind', '')}/{top.get('workload', '')} {top.get('field', '')}."
            )
    for obj in report.capacityplans:
        status = _status(obj)
        for p in status.get("projections") or []:
            if p.get("assessment") in {"OverCapacity", "NearLimit"}:
                actions.append(
                    f"{_name(obj)} {p['scenario']}: {p['resource']} projected "
                    f"{p.get('projected')}% vs {p.get('threshold')}%: {p.get('recommendation')}."
                )
        for a in status.get("anomalies") or []:
            if a.get("severity") == "Critical" and "end" not in a:
                actions.append(
                    f"Drain and inspect {a.get('node')} GPU {a.get('gpu')}: "
                    f"{a.get('type')} ({a.get('message')})."
                )
    return actions


def build(
    perfbaselines: Sequence[Obj],
    envparities: Sequence[Obj],
    capacityplans: Sequence[Obj],
    *,
    now: datetime | None = None,
    status_refresh: timedelta = STATUS_REFRESH,
    namespace: str | None = None,
) -> Report:
    """The report as of `now` (default: the current time); `status_refresh` is the
    operator's statusRefresh, which sets how old a healthy status may be; `namespace` the
    one the resources were read from (None: every namespace), which the report names."""
    now = now or datetime.now(UTC)

    def of(kind: str, objs: Sequence[Obj]) -> list[Finding]:
        return [f for o in objs for f in findings_of(kind, o, now, status_refresh)]

    findings = [
        *of("PerfBaseline", perfbaselines),
        *of("EnvParity", envparities),
        *of("CapacityPlan", capacityplans),
    ]
    total = len(perfbaselines) + len(envparities) + len(capacityplans)
    verdict, rule = decide(findings, total)
    report = Report(
        verdict,
        rule,
        findings,
        list(perfbaselines),
        list(envparities),
        list(capacityplans),
        namespace=namespace,
    )
    report.actions = _actions(report)
    return report


# -- rendering ---------------------------------------------------------------------------


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "_none_\n"
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """One table cell: a message's lines joined (a newline would end the row) and its
    pipes escaped (a pipe would start a new cell)."""
    return one_line(text).replace("|", "\\|")


def _percent(value: Any) -> str:
    """A percentage, or `-` when the status has none (not "None%")."""
    return "-" if value is None else f"{value}%"


def _items(lines: Sequence[str]) -> str:
    """A bullet list, one line per item."""
    return "".join(f"- {one_line(line)}\n" for line in lines) or "_none_\n"


def _ci(metric: Mapping[str, Any]) -> str:
    ci = metric.get("ci95")
    unit = metric.get("unit")
    if not ci or len(ci) != 2:
        return "-"
    low = format_quantity(ci[0], unit, signed=True)
    high = format_quantity(ci[1], unit, signed=True)
    return f"[{low}, {high}]"


def markdown(report: Report) -> str:
    out = [
        f"# perfguard report: **{report.verdict}**",
        "",
        f"Read from {report.scope}.",
        "",
        f"Rule: {report.rule}.",
        "",
    ]
    if report.findings:
        out.append(
            _md_table(
                ["", "resource", "why"],
                [[f.verdict, f"{f.kind} {f.name}", f.reason] for f in report.findings],
            )
        )

    out.append("## Environment integrity\n")
    out.append(
        _md_table(
            ["EnvParity", "verdict", "drift", "compared", "differences", "first difference"],
            [
                [
                    _name(o),
                    str(_status(o).get("verdict", "-")),
                    _percent(_status(o).get("driftPercent")),
                    str(_status(o).get("compared", "-")),
                    str(_status(o).get("totalDifferences", 0)),
                    _first_difference(_status(o)),
                ]
                for o in report.envparities
            ],
        )
    )
    out.append("## Resource utilisation\n")
    out.append(
        _md_table(
            ["CapacityPlan", "resource", "fleet", "threshold", "sustained", "top"],
            [
                [
                    _name(o),
                    c["resource"],
                    _percent(c.get("fleet")),
                    _percent(c.get("threshold")),
                    "yes" if c.get("sustained") else "no",
                    ", ".join(
                        f"{t['node']}"
                        + (f"/gpu{t['gpu']}" if t.get("gpu") is not None else "")
                        + f" {_percent(t.get('value'))}"
                        for t in (c.get("top") or [])[:3]
                    ),
                ]
                for o in report.capacityplans
                for c in _status(o).get("current") or []
            ],
        )
    )
    out.append("## Anomalies\n")
    out.append(
        _md_table(
            ["CapacityPlan", "start", "type", "where", "severity", "detail"],
            [
                [
                    _name(o),
                    str(a.get("start", "")),
                    str(a.get("type", "")),
                    f"{a.get('node', '')}"
                    + (f"/gpu{a['gpu']}" if a.get("gpu") is not None else ""),
                    str(a.get("severity", "")),
                    str(a.get("message", "")),
                ]
                for o in report.capacityplans
                for a in _status(o).get("anomalies") or []
            ],
        )
    )
    out.append("## Latency profile\n")
    out.append(
        _md_table(
            [
                "PerfBaseline",
                "metric",
                "stat",
                "vs",
                "baseline",
                "current",
                "delta",
                "CI95",
                "verdict",
            ],
            [
                [
                    _name(o),
                    m["name"],
                    m["statistic"],
                    str(m.get("comparison", "")),
                    format_quantity(m.get("baseline"), m.get("unit")),
                    format_quantity(m.get("current"), m.get("unit")),
                    format_quantity(m.get("delta"), m.get("unit"), signed=True),
                    _ci(m),
                    str(m.get("verdict", "")),
                ]
                for o in report.perfbaselines
                for m in _status(o).get("metrics") or []
            ],
        )
    )
    out.append("### Stages\n")
    out.append(
        _md_table(
            ["PerfBaseline", "metric", "stage", "mean", "p95", "p99", "share"],
            [
                [
                    _name(o),
                    s["metric"],
                    s["stage"],
                    format_quantity(s.get("mean"), "seconds"),
                    format_quantity(s.get("p95"), "seconds"),
                    format_quantity(s.get("p99"), "seconds"),
                    "-" if s.get("share") is None else f"{100 * s['share']:.1f}%",
                ]
                for o in report.perfbaselines
                for s in _status(o).get("stages") or []
            ],
        )
    )
    out.append("## Bottlenecks\n")
    out.append(_items(bottlenecks(report)))
    out.append("## Baseline\n")
    out.append(
        _md_table(
            ["PerfBaseline", "from", "to", "samples", "at the time of day", "established"],
            [
                [
                    _name(o),
                    str((_status(o).get("baseline") or {}).get("from", "-")),
                    str((_status(o).get("baseline") or {}).get("to", "-")),
                    str((_status(o).get("baseline") or {}).get("samples", "-")),
                    # What a Historical comparison is judged on and minSamples counts.
                    str((_status(o).get("baseline") or {}).get("samplesAtTimeOfDay", "-")),
                    str((_condition(o, "BaselineEstablished") or {}).get("reason", "-")),
                ]
                for o in report.perfbaselines
            ],
        )
    )
    out.append("## Capacity projections\n")
    out.append(
        _md_table(
            [
                "CapacityPlan",
                "scenario",
                "resource",
                "projected",
                "threshold",
                "assessment",
                "recommendation",
            ],
            [
                [
                    _name(o),
                    p["scenario"],
                    p["resource"],
                    _percent(p.get("projected")),
                    _percent(p.get("threshold")),
                    p["assessment"],
                    str(p.get("recommendation", "")),
                ]
                for o in report.capacityplans
                for p in _status(o).get("projections") or []
            ],
        )
    )
    out.append("## Recommended actions\n")
    out.append(_items(report.actions))
    return "\n".join(out)


def _first_difference(status: Mapping[str, Any]) -> str:
    differences = status.get("differences") or []
    if not differences:
        return "-"
    d = differences[0]
    where = f"{d.get('kind', '')}/{d.get('workload', '')}" + (
        f" {d['container']}" if d.get("container") else ""
    )
    return f"{where} {d.get('field', '')}: {d.get('reference')} → {d.get('target')}"


def bottlenecks(report: Report) -> list[str]:
    """The stage taking the largest share of each latency, and the resource closest to its
    threshold in each CapacityPlan."""
    lines = []
    for obj in report.perfbaselines:
        stages = [s for s in _status(obj).get("stages") or [] if s.get("share") is not None]
        if stages:
            top = max(stages, key=lambda s: s["share"])
            p95 = format_quantity(top.get("p95"), "seconds")
            lines.append(
                f"{_name(obj)} {top['metric']}: stage {top['stage']} takes "
                f"{100 * top['share']:.0f}% of the time (p95 {p95})"
            )
    for obj in report.capacityplans:
        current = [c for c in _status(obj).get("current") or [] if c.get("fleet") is not None]
        if current:
            tight = min(current, key=lambda c: c["threshold"] - c["fleet"])
            lines.append(
                f"{_name(obj)}: {tight['resource']} is closest to its limit "
                f"({tight['fleet']}% of {tight['threshold']}%)"
            )
    return lines


def as_json(report: Report) -> str:
    return json.dumps(
        {
            "verdict": report.verdict,
            "namespace": report.namespace,
            "rule": report.rule,
            "findings": [f.__dict__ for f in report.findings],
            "actions": report.actions,
            "bottlenecks": bottlenecks(report),
            "resources": {
                "PerfBaseline": [
                    {"name": _name(o), "status": _status(o)} for o in report.perfbaselines
                ],
                "EnvParity": [{"name": _name(o), "status": _status(o)} for o in report.envparities],
                "CapacityPlan": [
                    {"name": _name(o), "status": _status(o)} for o in report.capacityplans
                ],
            },
        },
        indent=2,
        default=str,
    )


__all__ = [
    "AT_RISK",
    "NEEDS_FIX",
    "STABLE",
    "Finding",
    "Report",
    "as_json",
    "build",
    "decide",
    "markdown",
]
