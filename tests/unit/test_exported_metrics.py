"""The numbers alerts and dashboards read: exported per resource, replaced, forgotten."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import generate_latest

from perfguard.observability import OperatorMetrics

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def text(metrics: OperatorMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def _line(exposition: str, prefix: str, label: str) -> str:
    """The one sample line of the exposition that starts with ``prefix`` and carries
    ``label``."""
    lines = [x for x in exposition.splitlines() if x.startswith(prefix) and label in x]
    assert len(lines) == 1, lines
    return lines[0]


def test_capacity_numbers_and_active_anomalies() -> None:
    metrics = OperatorMetrics()
    fields = {
        "current": [{"resource": "gpu", "fleet": 71.5}],
        "projections": [{"scenario": "plus20", "resource": "gpu", "projected": 87.8}],
        "anomalies": [
            {"type": "XidError", "start": "2026-11-28T11:50:00Z"},  # ongoing
            {"type": "XidError", "start": "2026-11-28T11:00:00Z", "end": "2026-11-28T11:30:00Z"},
            {
                "type": "ThermalThrottling",
                "start": "2026-11-27T01:00:00Z",
                "end": "2026-11-27T02:00:00Z",
            },
        ],
    }
    metrics.export_status("CapacityPlan", "ml", "fleet", fields, AT)
    out = text(metrics)
    assert (
        'perfguard_capacity_utilisation_percent{name="fleet",namespace="ml",resource="gpu"} 71.5'
        in out
    )
    assert _line(
        out, "perfguard_capacity_projected_utilisation_percent{", 'scenario="plus20"'
    ).endswith(" 87.8")
    assert 'perfguard_capacity_anomalies{name="fleet",namespace="ml",type="XidError"} 2.0' in out
    assert "ThermalThrottling" not in out  # ended a day ago: not active
    # The next evaluation replaces the set; forgetting drops it.
    metrics.export_status("CapacityPlan", "ml", "fleet", {"current": [], "anomalies": []}, AT)
    assert "perfguard_capacity_anomalies{" not in text(metrics)
    metrics.export_status("CapacityPlan", "ml", "fleet", fields, AT)
    metrics.forget("CapacityPlan", "ml", "fleet")
    assert 'name="fleet"' not in text(metrics)


def test_drift_and_ci_bounds() -> None:
    metrics = OperatorMetrics()
    metrics.export_status("EnvParity", "ml", "p", {"driftPercent": 12.5, "compared": 8}, AT)
    pb = {
        "metrics": [
            {
                "name": "latency",
                "statistic": "p95",
                "comparison": "Concurrent",
                "ci95": [0.007, 0.009],
            }
        ]
    }
    metrics.export_status("PerfBaseline", "ml", "c", pb, AT)
    out = text(metrics)
    assert 'perfguard_envparity_drift_percent{name="p",namespace="ml"} 12.5' in out
    assert _line(out, "perfguard_metric_ci95{", 'bound="lo"').endswith(" 0.007")
    assert _line(out, "perfguard_metric_ci95{", 'bound="hi"').endswith(" 0.009")
    # A read failure (no compared items) removes the drift figure rather than keep it.
    metrics.export_status("EnvParity", "ml", "p", {"verdict": "Unverified"}, AT)
    assert "perfguard_envparity_drift_percent{" not in text(metrics)


def test_a_delta_is_exported_while_the_status_shows_one() -> None:
    """perfguard_metric_delta follows status.metrics as perfguard_metric_ci95 does: a
    metric with no delta now (NoData: the canary is gone) or removed from the spec loses
    its series, so a dashboard does not keep showing the last regression."""
    metrics = OperatorMetrics()
    p95 = {"name": "latency", "statistic": "p95", "comparison": "Concurrent"}
    mean = {**p95, "statistic": "mean"}
    measured = {"delta": 0.05, "ci95": [0.04, 0.06], "verdict": "Regressed"}
    metrics.export_status(
        "PerfBaseline", "ml", "c", {"metrics": [{**p95, **measured}, {**mean, **measured}]}, AT
    )
    out = text(metrics)
    assert _line(out, "perfguard_metric_delta{", 'statistic="p95"').endswith(" 0.05")
    assert _line(out, "perfguard_metric_delta{", 'statistic="mean"').endswith(" 0.05")

    no_data = {"verdict": "NoData", "reason": "NoData"}
    metrics.export_status(
        "PerfBaseline", "ml", "c", {"metrics": [{**p95, **no_data}, {**mean, **measured}]}, AT
    )
    out = text(metrics)
    assert 'statistic="p95"' not in out, "NoData: no delta, no interval"
    assert _line(out, "perfguard_metric_delta{", 'statistic="mean"').endswith(" 0.05")

    # An evaluation that keeps the metrics shown (no "metrics" field) keeps their series.
    metrics.export_status("PerfBaseline", "ml", "c", {"verdict": "Inconclusive"}, AT)
    assert "perfguard_metric_delta{" in text(metrics)
    metrics.export_status("PerfBaseline", "ml", "c", {"metrics": []}, AT)  # left the spec
    assert "perfguard_metric_delta{" not in text(metrics)
    assert "perfguard_metric_ci95{" not in text(metrics)

    metrics.export_status("PerfBaseline", "ml", "c", {"metrics": [{**p95, **measured}]}, AT)
    metrics.forget("PerfBaseline", "ml", "c")
    assert 'name="c"' not in text(metrics)


def test_the_cached_exposition_is_generate_latest_byte_for_byte() -> None:
    """The operator's /metrics renders with perfguard.observability.Exposition (label sets
    rendered once); its page must be exactly prometheus_client's, before and after the
    series change."""
    from perfguard.observability import Exposition

    metrics = OperatorMetrics()
    exposition = Exposition(metrics.registry)
    for index in range(3):
        name = f'pb-{index}"\\odd\nname'  # escaping
        metrics.set_verdict("PerfBaseline", "ml", name, "Pass", ("Pass", "Fail"))
        metrics.ready.labels("PerfBaseline", "ml", name).set(1)
        metrics.last_evaluation.labels("PerfBaseline", "ml", name).set(AT.timestamp())
        delta = {"name": "lat", "statistic": "p95", "comparison": "Concurrent", "delta": -0.25}
        metrics.export_status("PerfBaseline", "ml", name, {"metrics": [delta]}, AT)
    metrics.evaluations.labels("PerfBaseline", "ok").inc(7)
    metrics.evaluation_seconds.labels("PerfBaseline").observe(0.3)
    metrics.status_patches.labels("PerfBaseline", "news").inc()
    assert exposition.render() == generate_latest(metrics.registry)
    metrics.forget("PerfBaseline", "ml", 'pb-1"\\odd\nname')
    metrics.set_verdict("PerfBaseline", "ml", 'pb-0"\\odd\nname', "Fail", ("Pass", "Fail"))
    metrics.evaluation_seconds.labels("PerfBaseline").observe(12.0)
    assert exposition.render() == generate_latest(metrics.registry)
