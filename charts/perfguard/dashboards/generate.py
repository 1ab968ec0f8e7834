"""Generate perfguard.json, the chart's Grafana dashboard.

    python charts/perfguard/dashboards/generate.py > charts/perfguard/dashboards/perfguard.json

tests/e2e/test_alert_rules.py checks that the committed JSON is this script's output and that
every query is valid PromQL over series the operator exports.
"""

from __future__ import annotations

import json
from typing import Any

NS = 'namespace=~"$namespace"'


def current(matchers: str = "") -> str:
    """Verdicts as exported by the replica that evaluated each resource last (a standby
    replica of a peering pair may still export older ones)."""
    selector = f"{matchers}, {NS}" if matchers else NS
    return (
        f"max by (kind, namespace, name, verdict) (perfguard_verdict{{{selector}}} "
        f"and on (instance, kind, namespace, name) "
        f"(perfguard_last_evaluation_timestamp_seconds{{{NS}}} "
        f"== on (kind, namespace, name) group_left () "
        f"max by (kind, namespace, name) (perfguard_last_evaluation_timestamp_seconds{{{NS}}})))"
    )


class Layout:
    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.y = 0

    def _id(self) -> int:
        return len(self.panels) + 1

    def row(self, title: str) -> None:
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": self._id(),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def panel(
        self,
        kind: str,
        title: str,
        description: str,
        targets: list[tuple[str, str]],
        *,
        x: int,
        w: int,
        h: int = 8,
        unit: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        table = {"instant": True, "format": "table"} if kind == "table" else {}
        panel: dict[str, Any] = {
            "type": kind,
            "title": title,
            "description": description,
            "id": self._id(),
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": h, "w": w, "x": x, "y": self.y},
            "targets": [
                {"refId": chr(65 + i), "expr": expr, "legendFormat": legend, **table}
                for i, (expr, legend) in enumerate(targets)
            ],
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {},
        }
        if unit:
            panel["fieldConfig"]["defaults"]["unit"] = unit
        panel.update(extra or {})
        self.panels.append(panel)

    def next_line(self, h: int = 8) -> None:
        self.y += h


def dashboard() -> dict[str, Any]:
    d = Layout()
    d.row("Verdicts")
    red_from_one = {
        "options": {"colorMode": "background", "reduceOptions": {"calcs": ["lastNotNull"]}},
        "fieldConfig": {
            "defaults": {
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "green", "value": None}, {"color": "red", "value": 1}],
                }
            },
            "overrides": [],
        },
    }
    for i, (kind, bad, title) in enumerate(
        [
            ("PerfBaseline", "Fail", "Regressions"),
            ("EnvParity", "Drifted", "Drifted environments"),
            ("CapacityPlan", "Insufficient", "Insufficient capacity"),
            ("CapacityPlan", "NearLimit", "Near capacity limit"),
        ]
    ):
        matchers = f'kind="{kind}", verdict="{bad}"'
        d.panel(
            "stat",
            title,
            f"{kind} resources whose verdict is {bad}.",
            [(f"count({current(matchers)} == 1) or vector(0)", "")],
            x=6 * i,
            w=6,
            h=4,
            extra=red_from_one,
        )
    d.next_line(4)
    d.panel(
        "table",
        "Current verdicts",
        "One row per resource: its current verdict, from the replica that evaluated it last.",
        [(current() + " == 1", "")],
        x=0,
        w=12,
        h=9,
        extra={
            "transformations": [
                {"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}
            ]
        },
    )
    d.panel(
        "state-timeline",
        "PerfBaseline verdicts over time",
        "Which verdict each PerfBaseline held, over time.",
        [(current('kind="PerfBaseline"') + " == 1", "{{namespace}}/{{name}} {{verdict}}")],
        x=12,
        w=12,
        h=9,
    )
    d.next_line(9)
    d.row("PerfBaseline: candidate minus baseline")
    d.panel(
        "timeseries",
        "Metric deltas",
        "Candidate minus baseline per metric and statistic (seconds, requests/s or ratio).",
        [
            (
                f"perfguard_metric_delta{{{NS}}}",
                "{{namespace}}/{{name}} {{metric}} {{statistic}} ({{comparison}})",
            )
        ],
        x=0,
        w=12,
    )
    d.panel(
        "timeseries",
        "Metric deltas with CI95",
        "Point estimate with the 95% confidence interval of the change; a regression needs "
        "the whole interval on the bad side of the threshold.",
        [
            (f"perfguard_metric_delta{{{NS}}}", "{{name}} {{metric}} {{statistic}} delta"),
            (f'perfguard_metric_ci95{{bound="lo", {NS}}}', "{{name}} {{metric}} {{statistic}} lo"),
            (f'perfguard_metric_ci95{{bound="hi", {NS}}}', "{{name}} {{metric}} {{statistic}} hi"),
        ],
        x=12,
        w=12,
    )
    d.next_line()
    d.row("EnvParity: drift")
    d.panel(
        "timeseries",
        "Drift",
        "Differing items / compared items x 100, per EnvParity.",
        [(f"perfguard_envparity_drift_percent{{{NS}}}", "{{namespace}}/{{name}}")],
        x=0,
        w=12,
        unit="percent",
    )
    d.panel(
        "state-timeline",
        "EnvParity verdicts",
        "InSync, Drifted or Unverified over time.",
        [(current('kind="EnvParity"') + " == 1", "{{namespace}}/{{name}} {{verdict}}")],
        x=12,
        w=12,
    )
    d.next_line()
    d.row("CapacityPlan: utilisation and projections")
    d.panel(
        "timeseries",
        "Utilisation",
        "Fleet utilisation per resource (cpu, memory, gpu, gpuMemory).",
        [
            (
                f"perfguard_capacity_utilisation_percent{{{NS}}}",
                "{{namespace}}/{{name}} {{resource}}",
            )
        ],
        x=0,
        w=8,
        unit="percent",
    )
    d.panel(
        "bargauge",
        "Projected utilisation per scenario",
        "Projected peak utilisation under each traffic scenario.",
        [
            (
                f"perfguard_capacity_projected_utilisation_percent{{{NS}}}",
                "{{name}} {{scenario}} {{resource}}",
            )
        ],
        x=8,
        w=8,
        unit="percent",
        extra={
            "options": {"orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}}
        },
    )
    d.panel(
        "table",
        "Anomalies",
        "Active anomalies by type (throttling, XID errors, GPU memory growth, spikes).",
        [(f"perfguard_capacity_anomalies{{{NS}}} > 0", "")],
        x=16,
        w=8,
    )
    d.next_line()
    d.row("Operator")
    d.panel(
        "timeseries",
        "Evaluations by outcome",
        "Evaluations per second by kind and outcome (ok, error, invalid_spec).",
        [
            (
                "sum by (kind, outcome) (rate(perfguard_evaluations_total[$__rate_interval]))",
                "{{kind}} {{outcome}}",
            )
        ],
        x=0,
        w=6,
        unit="ops",
    )
    d.panel(
        "timeseries",
        "Evaluation duration p95",
        "95th percentile of one evaluation's wall time, I/O included.",
        [
            (
                "histogram_quantile(0.95, sum by (kind, le) "
                "(rate(perfguard_evaluation_duration_seconds_bucket[$__rate_interval])))",
                "{{kind}}",
            )
        ],
        x=6,
        w=6,
        unit="s",
    )
    d.panel(
        "timeseries",
        "Seconds since last evaluation",
        "Per resource; PerfguardEvaluationLag fires above the configured threshold.",
        [
            (
                "time() - max by (kind, namespace, name) "
                f"(perfguard_last_evaluation_timestamp_seconds{{{NS}}})",
                "{{kind}} {{namespace}}/{{name}}",
            )
        ],
        x=12,
        w=6,
        unit="s",
    )
    d.panel(
        "timeseries",
        "Gate decisions",
        "Flagger gate answers by gate and HTTP code.",
        [
            (
                "sum by (gate, code) (rate(perfguard_gate_decisions_total[$__rate_interval]))",
                "{{gate}} {{code}}",
            )
        ],
        x=18,
        w=6,
        unit="reqps",
    )
    d.next_line()
    return {
        "uid": "perfguard-overview",
        "title": "perfguard",
        "tags": ["perfguard"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "type": "datasource",
                    "name": "datasource",
                    "label": "Data source",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "type": "query",
                    "name": "namespace",
                    "label": "Namespace",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": {
                        "query": "label_values(perfguard_verdict, namespace)",
                        "refId": "namespace",
                    },
                    "definition": "label_values(perfguard_verdict, namespace)",
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": d.panels,
    }


if __name__ == "__main__":
    print(json.dumps(dashboard(), indent=2))
