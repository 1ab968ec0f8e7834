"""bench.operator_kinds without servers: the resources it creates, its arithmetic on
snapshots with known answers, and its section (the figures come from running it)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bench import envparity as envparity_bench
from bench import operator_kinds
from bench.operator_kinds import (
    FULL,
    QUICK,
    KindResult,
    OperatorKindsResult,
    Snapshot,
    audit_breakdown,
    capacityplan,
    envparity,
    fleet,
    kind_result,
    operator_kinds_section,
    outcome_of,
)
from bench.scale_support import Sample, save_json

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.envparity import EnvParitySpec


def test_the_resources_are_valid_and_evaluated_every_interval() -> None:
    parity = EnvParitySpec.model_validate(envparity("bench-prod", 60)["spec"])
    assert parity.interval == timedelta(seconds=60)
    assert parity.reference.namespace == "bench-staging"
    assert [t.namespace for t in parity.targets or []] == ["bench-prod"]
    plan = CapacityPlanSpec.model_validate(capacityplan("capacity", 60)["spec"])
    assert plan.interval == timedelta(seconds=60)
    assert (plan.history, plan.step) == (timedelta(days=7), timedelta(minutes=5))
    assert plan.prometheus is not None and plan.prometheus.timeout == timedelta(seconds=60)
    assert [s.growth_percent for s in plan.scenarios] == [5, 20]


def test_the_fleet_is_bench_capacitys_and_reaches_past_now() -> None:
    full = fleet(FULL)
    assert (full.nodes, full.gpus_per_node) == (64, 8)
    assert [(i.node, i.gpu) for i in full.injections] == [("gpu-node-17", 3), ("gpu-node-40", 5)]
    assert full.start < datetime.now(UTC) - timedelta(days=7) and full.end > datetime.now(UTC)
    quick = fleet(QUICK)
    assert quick.node_names == ("gpu-node-1", "gpu-node-2")
    assert {i.node for i in quick.injections} <= set(quick.node_names)


def test_the_workload_count_is_set_for_the_run_only() -> None:
    saved = envparity_bench.WORKLOADS
    with operator_kinds._workloads(7):
        assert envparity_bench.WORKLOADS == 7
    assert saved == envparity_bench.WORKLOADS


def _s(metric: str, value: float, /, **labels: str) -> Sample:
    return Sample(metric, labels, value)


def _snapshot(at: float, n: int) -> Snapshot:
    """The counters after `n` CapacityPlan evaluations (and noise that must not count)."""
    kind = {"kind": "CapacityPlan"}
    engine = "prometheus_engine_query_duration_seconds_sum"
    return Snapshot(
        at=at,
        operator_cpu=2.0 * n,
        operator=[
            _s("perfguard_evaluations_total", n, outcome="ok", **kind),
            _s("perfguard_evaluations_total", 3 * n, kind="EnvParity", outcome="ok"),
            _s("perfguard_status_patches_total", n - 1, cause="news", **kind),
            _s("perfguard_status_patches_total", 1, cause="refresh", **kind),
            _s("perfguard_evaluation_duration_seconds_sum", 10.0 * n, **kind),
        ],
        prometheus=[
            _s("prometheus_http_requests_total", 9 * n, handler="/api/v1/query_range", code="200"),
            _s("prometheus_http_requests_total", 100 * n, handler="/metrics", code="200"),
            _s(
                "prometheus_http_request_duration_seconds_sum",
                4.0 * n,
                handler="/api/v1/query_range",
            ),
            _s(engine, 1.0 * n, slice="inner_eval"),
            _s(engine, 0.5 * n, slice="prepare_time"),
            _s(engine, 0.25 * n, slice="queue_time"),
            _s("process_cpu_seconds_total", 1.0 * n),
        ],
        apiserver=[_s("process_cpu_seconds_total", 0.1 * n)],
        etcd_cpu=0.05 * n,
    )


def _audit(verb: str, resource: str, at: float, subresource: str = "") -> str:
    ref = {"resource": resource, **({"subresource": subresource} if subresource else {})}
    return json.dumps(
        {
            "stage": "RequestReceived",
            "verb": verb,
            "objectRef": ref if resource else None,
            "requestReceivedTimestamp": datetime.fromtimestamp(at, UTC)
            .isoformat()
            .replace("+00:00", "Z"),
        }
    )


def _capacity(before: Snapshot, after: Snapshot) -> KindResult:
    return kind_result(
        kind="CapacityPlan",
        scale="2 nodes × 2 GPUs",
        interval_s=60.0,
        setup=[("generating the history", 3.0)],
        startup_s=9.0,
        before=before,
        after=after,
        starts={"bench": {0.0, 61.0, 120.0, 181.0, 240.0, 300.0}},
        outcomes={
            0.0: "Sufficient, Ready True",
            61.0: "Sufficient, Ready True",
            120.0: "Unverified, Ready False",
            181.0: "Sufficient, Ready True",
            240.0: "Sufficient, Ready True",
            300.0: "Sufficient, Ready True",
        },
        audit=[
            _audit("list", "nodes", 20.0),
            _audit("list", "nodes", 80.0),
            _audit("patch", "capacityplans", 90.0, subresource="status"),
            _audit("get", "", 100.0),  # /metrics: no resource
            _audit("list", "nodes", 5.0),  # before the window
            '{"stage": "RequestReceived", "verb": "li',  # a line being written
        ],
        peak_rss=300.0,
        end_rss=250.0,
        scrapes=20,
        scrape_wall=0.5,
        scrape_every_s=15.0,
        load_end=(2.5, 2.0, 1.5),
    )


def test_the_window_figures_come_from_the_snapshots() -> None:
    k = _capacity(_snapshot(10.0, 1), _snapshot(310.0, 6))
    assert (k.window_s, k.evaluations, k.errors, k.status_patches) == (300.0, 5, 0, 5)
    assert k.patch_causes == (("news", 5),)  # the refresh count did not grow in the window
    assert k.cpu_s_per_evaluation == pytest.approx(2.0)
    assert k.per_evaluation(k.duration_s) == pytest.approx(10.0)
    assert k.prometheus_requests == 45 and k.prometheus_rps == pytest.approx(0.15)
    assert k.prometheus_query_s == pytest.approx(7.5)  # queue time apart
    assert k.prometheus_queue_s == pytest.approx(1.25)
    assert k.prometheus_http_s == pytest.approx(20.0)
    assert k.api_breakdown == (("LIST nodes", 2), ("PATCH capacityplans/status", 1))
    assert k.api_requests == 3
    assert k.apiserver_cpu_s == pytest.approx(0.5) and k.etcd_cpu_s == pytest.approx(0.25)
    assert k.lag_first == (1.0,) and sorted(k.lag_steady) == [-1.0, -1.0, 0.0, 1.0]
    assert k.lag_p50_s == 0.0 and k.lag_p99_s == 1.0
    assert k.outcomes == (("Sufficient, Ready True", 4), ("Unverified, Ready False", 1))
    assert k.warmup_lags == ()  # no gap ended before the window
    # The window's length comes from the monotonic clock when the snapshots carry it.
    stepped = _capacity(
        dataclasses.replace(_snapshot(10.0, 1), mono=5.0),
        dataclasses.replace(_snapshot(310.0, 6), mono=275.0),
    )
    assert stepped.window_s == 270.0
    later = _capacity(_snapshot(130.0, 3), _snapshot(310.0, 6))
    assert later.warmup_lags == (1.0, -1.0) and later.lags == (1.0, -1.0, 0.0)


def test_audit_breakdown_counts_requests_once_by_verb_and_resource() -> None:
    lines = [_audit("list", "pods", 10.0 + i) for i in range(3)]
    lines += [_audit("watch", "configmaps", 11.0), _audit("list", "pods", 30.0)]
    lines.append(json.dumps({"stage": "ResponseComplete", "verb": "list", "objectRef": {}}))
    assert audit_breakdown(lines, 0.0, 20.0) == (("LIST pods", 3), ("WATCH configmaps", 1))


def test_outcome_is_read_from_the_scrape_that_shows_the_evaluation() -> None:
    mine = {"kind": "EnvParity", "namespace": "bench-prod", "name": "bench"}
    samples = [
        _s("perfguard_last_evaluation_timestamp_seconds", 1.7e9, **mine),
        _s("perfguard_verdict", 0.0, verdict="InSync", **mine),
        _s("perfguard_verdict", 1.0, verdict="Drifted", **mine),
        _s("perfguard_ready", 1.0, **mine),
        _s("perfguard_ready", 0.0, kind="EnvParity", namespace="x", name="other"),
    ]
    assert outcome_of(samples, "EnvParity") == (1.7e9, "Drifted, Ready True")
    assert outcome_of(samples, "CapacityPlan") is None


def test_the_window_ends_after_the_evaluation_due_last() -> None:
    kind = {"kind": "CapacityPlan"}
    samples = [
        _s("perfguard_evaluations_total", 2, outcome="ok", **kind),
        _s("perfguard_evaluation_duration_seconds_count", 2, **kind),
        _s("perfguard_evaluation_duration_seconds_sum", 80.0, **kind),
    ]
    outcomes = {1000.0: "x", 1060.0: "x"}
    # Two more to go after the one that started at 1060: due at 1180, half done at 1200.
    assert operator_kinds._last_evaluation_due(samples, "CapacityPlan", outcomes, 4, 60) == 1200


def test_section_renders_both_kinds_and_round_trips(tmp_path: Path) -> None:
    capacity = dataclasses.replace(
        _capacity(_snapshot(10.0, 1), _snapshot(310.0, 6)),
        sequential_requests=9,
        sequential_http_s=1.6,
        sequential_query_s=1.2,
        sequential_cpu_s=1.0,
        status=(("verdict", "Insufficient"),),
        events=(("XidError", 1),),
        object_kib=7.5,
        scrape_walls=(0.01, 0.02, 2.5),
        warmup_lags=(-55.0,),
    )
    parity = dataclasses.replace(
        capacity,
        kind="EnvParity",
        scale="500 Deployments in each of 2 namespaces",
        prometheus_requests=0,
        prometheus_query_s=0.0,
        prometheus_http_s=0.0,
        sequential_requests=0,
        sequential_http_s=math.nan,
        api_breakdown=(("LIST pods", 20), ("LIST deployments", 10)),
        api_requests=30,
    )
    result = OperatorKindsResult(
        kinds=(parity, capacity),
        machine="2 cores (test)",
        load_before=(1.0, 1.5, 2.0),
        load_after=(3.0, 2.5, 2.0),
        command="python -m bench.operator_kinds",
        wall_s=900.0,
        setup_s=60.0,
        prometheus_version="Prometheus 2.42.0",
        quick=False,
    )
    section = operator_kinds_section(result)
    assert section.startswith("## Operator scale: EnvParity and CapacityPlan")
    assert "### EnvParity" in section and "### CapacityPlan" in section
    assert "no Prometheus query" in section  # EnvParity reads the API server only
    assert "| operator CPU per evaluation (window CPU ÷ evaluations" in section
    assert "2,000 ms" in section
    assert (
        "| operator CPU per evaluation ÷ the sequential queries' handler time | 1.25 |" in section
    )
    assert "LIST pods 20 (4.0 per evaluation)" in section
    assert "| 5 / 5 (1.00); news 5 |" in section  # status patches by cause
    assert "| 20 ms / 2,500 ms (3) |" in section  # the scrapes' median and longest
    assert "minus the interval | -55 s |" in section  # the start-up
    assert "load average 1.0 / 1.5 / 2.0 before the run" in section
    assert "`python -m bench.operator_kinds`" in section
    assert "Quick mode" not in section
    saved = tmp_path / "kinds.json"
    save_json(result, saved)
    loaded = operator_kinds.load_result(saved)
    assert loaded.kinds[1] == capacity and math.isnan(loaded.kinds[0].sequential_http_s)
    assert operator_kinds_section(loaded) == section
