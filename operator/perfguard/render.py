"""Readable terminal output of statuses (for `perfguard evaluate` and `report`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def one_line(text: Any, limit: int | None = None) -> str:
    """`text` on one line (runs of white space, newlines included, become one space),
    cut to `limit` characters with an ellipsis."""
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    return "\n".join(lines)


def format_quantity(value: Any, unit: str | None, *, signed: bool = False) -> str:
    """A value in a metric's base unit (seconds, requests/s, ratio) as people read it."""
    if value is None or not math.isfinite(float(value)):
        return "-"
    number = float(value)
    sign = "+" if signed and number >= 0 else ""
    if unit == "seconds":
        return f"{sign}{number * 1000:.2f}ms"
    if unit == "requests/s":
        return f"{sign}{number:.2f}/s"
    if unit == "ratio":
        return f"{sign}{number * 100:.3f}%"
    return f"{sign}{number:.4g}"


def perfbaseline(name: str, status: dict[str, Any]) -> str:
    out = []
    identity = (status.get("candidate") or {}).get("identity")
    # No candidate when no evaluation got as far as judging one (its queries failed from
    # the first): "candidate -" read as a candidate named "-".
    judging = f" — candidate {identity}" if identity else ""
    out.append(
        f"PerfBaseline {name}: {status.get('verdict', '?')} ({status.get('reason', '')})"
        f"{judging} at {status.get('lastEvaluationTime', '-')}"
    )
    baseline = status.get("baseline") or {}
    if baseline:
        # The total alone (10080 for a week) read as plenty beside InsufficientBaseline:
        # a Historical comparison is judged on the samples at the window's time of day.
        judged = baseline.get("samplesAtTimeOfDay")
        at_time = "" if judged is None else f", {judged} at the window's time of day"
        out.append(
            f"baseline {baseline.get('from')} .. {baseline.get('to')}, "
            f"{baseline.get('samples', 0)} samples{at_time}"
        )
    rows = []
    for m in status.get("metrics") or []:
        unit = m.get("unit")
        ci = m.get("ci95")
        ci_text = "-"
        if ci:
            lo, hi = (format_quantity(v, unit, signed=True) for v in ci)
            ci_text = f"[{lo}, {hi}]"
        pct = m.get("deltaPercent")
        rows.append(
            [
                m["name"],
                m["statistic"],
                m.get("comparison", "-"),
                format_quantity(m.get("baseline"), unit),
                format_quantity(m.get("current"), unit),
                format_quantity(m.get("delta"), unit, signed=True)
                + (f" ({pct:+.1f}%)" if pct is not None else ""),
                ci_text,
                m.get("threshold", "-"),
                m["verdict"],
                (m.get("breachSince") or "-"),
                str((m.get("samples") or {}).get("candidate", "-"))
                + "/"
                + str((m.get("samples") or {}).get("baseline", "-")),
            ]
        )
    if rows:
        out.append("")
        out.append(
            table(
                [
                    "METRIC",
                    "STAT",
                    "VS",
                    "BASELINE",
                    "CURRENT",
                    "DELTA",
                    "CI95",
                    "THRESHOLD",
                    "VERDICT",
                    "BREACH SINCE",
                    "N(C/B)",
                ],
                rows,
            )
        )
    stages = status.get("stages") or []
    if stages:
        out.append("")
        stage_rows = [
            [
                s["metric"],
                s["stage"],
                format_quantity(s.get("mean"), "seconds"),
                format_quantity(s.get("p95"), "seconds"),
                format_quantity(s.get("p99"), "seconds"),
                f"{s['share'] * 100:.1f}%" if s.get("share") is not None else "-",
            ]
            for s in stages
        ]
        out.append(table(["METRIC", "STAGE", "MEAN", "P95", "P99", "SHARE"], stage_rows))
        summary = status.get("stagesSummary") or {}
        if summary.get("unattributedShare") is not None:
            flag = "  ⚠ above 10 %" if summary.get("unattributedFlagged") else ""
            out.append(f"unattributed: {summary['unattributedShare'] * 100:.1f}%{flag}")
    out.append("")
    out.append(status.get("message", ""))
    return "\n".join(out)


def capacityplan(name: str, status: dict[str, Any]) -> str:
    out = [f"CapacityPlan {name}: {status.get('verdict', '?')} ({status.get('reason', '')})"]
    if status.get("message"):
        out.append(f"  {status['message']}")
    current = status.get("current") or []
    if current:
        out.append("")
        rows = []
        for item in current:
            top = ", ".join(
                f"{t['node']}"
                + (f"/gpu{t['gpu']}" if t.get("gpu") is not None else "")
                + f" {t['value']:.0f}%"
                for t in (item.get("top") or [])[:3]
            )
            rows.append(
                [
                    item["resource"],
                    f"{item['fleet']:.1f}%",
                    f"{item['threshold']:g}%",
                    "yes" if item.get("sustained") else "no",
                    top,
                ]
            )
        out.append(table(["RESOURCE", "FLEET", "THRESHOLD", "SUSTAINED", "TOP"], rows))
    projections = status.get("projections") or []
    if projections:
        out.append("")
        rows = [
            [
                p["scenario"],
                p["resource"],
                "-" if p.get("projected") is None else f"{p['projected']:.1f}%",
                p["assessment"],
                p.get("recommendation", ""),
            ]
            for p in projections
        ]
        out.append(
            table(["SCENARIO", "RESOURCE", "PROJECTED", "ASSESSMENT", "RECOMMENDATION"], rows)
        )
    anomalies = status.get("anomalies") or []
    if anomalies:
        out.append("")
        out.append(f"anomalies ({status.get('totalAnomalies', len(anomalies))}, newest first):")
        rows = [
            [
                a.get("start", ""),
                a["type"],
                a.get("node", "") + (f"/gpu{a['gpu']}" if a.get("gpu") is not None else ""),
                a.get("severity", ""),
                a.get("message", ""),
            ]
            for a in anomalies
        ]
        out.append(table(["START", "TYPE", "WHERE", "SEVERITY", "DETAIL"], rows))
    return "\n".join(out)
