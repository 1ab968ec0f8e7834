"""CapacityPlan's pure parts: queries, verdict, conditions and Events on hand-made history."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from perfguard.analysis.dcgm import DCGM_INT32_BLANK
from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.engine.capacityplan import failed, judge, new_anomalies
from perfguard.engine.capacityplan_fetch import CapacityData, align_answer, grid
from perfguard.engine.capacityplan_fetch import merge as merge_answers
from perfguard.outcome import Outcome
from perfguard.sources.capacityplan_queries import (
    Signal,
    host_of,
    host_regex,
    plan_queries,
    plan_query,
)
from perfguard.sources.prometheus import Series
from perfguard.status import false, merge, next_status, to_wire

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STEP = 300.0


def spec(**overrides: Any) -> CapacityPlanSpec:
    body: dict[str, Any] = {
        "traffic": {"query": "sum(rate(requests_total[5m]))"},
        "history": "1d",
        "step": "5m",
        "scenarios": [{"name": "plus20", "growthPercent": 20}],
    }
    body.update(overrides)
    return CapacityPlanSpec.model_validate(body)


def fleet(
    times: npt.NDArray[np.float64],
    traffic: npt.NDArray[np.float64],
    util: Callable[[], npt.NDArray[np.float64]],
    *,
    gpus: int = 4,
) -> CapacityData:
    """`gpus` GPUs on node-a, each at the utilisation `util()` returns (called once per GPU,
    in order), 10 % of their memory used, no XID errors or clock events; node-exporter's
    CPU and memory for the node well below their thresholds (30 % and 40 %)."""
    out = CapacityData(times=times, step_s=STEP, traffic=traffic)
    for g in range(gpus):
        out.gpus[("node-a", str(g))] = {
            Signal.GPU_UTIL: util(),
            Signal.GPU_MEMORY_USED: np.full(times.size, 1000.0),
            Signal.GPU_MEMORY_FREE: np.full(times.size, 9000.0),
            Signal.XID_ERRORS: np.zeros(times.size),
            Signal.CLOCK_EVENTS: np.zeros(times.size),
        }
    out.nodes["node-a"] = {
        Signal.CPU: np.full(times.size, 30.0),
        Signal.MEMORY: np.full(times.size, 40.0),
    }
    return out


def data(gpu_level: float, *, gpus: int = 4, traffic_scale: float = 1.0) -> CapacityData:
    """GPUs whose utilisation is exactly 5 + slope * traffic; traffic follows the day."""
    times = grid(AT - timedelta(days=1), AT, STEP)
    hours = (times / 3600.0) % 24
    traffic = traffic_scale * 100.0 * (1.0 + 0.4 * np.sin(2 * np.pi * hours / 24))
    slope = (gpu_level - 5.0) / 100.0
    return fleet(times, traffic, lambda: 5.0 + slope * traffic, gpus=gpus)


def status(outcome: Outcome) -> dict[str, Any]:
    return {**outcome.fields, "conditions": to_wire(merge([], outcome.conditions, generation=1))}


def conditions(outcome: Outcome) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status.value, c.reason) for c in outcome.conditions}


def test_host_regex_escapes_and_filters() -> None:
    assert host_regex(["b.example", "a"]) == "a|b\\\\.example"
    assert host_regex(["Not A Name", "x;y"]) == "$^"
    assert host_regex(None) == ".+"


def test_default_queries_ask_for_both_host_labels_and_both_clock_names() -> None:
    planned = {p.signal: p.query for p in plan_queries(spec(), ["gpu-1"])}
    assert 'Hostname=~"gpu-1"' in planned[Signal.GPU_UTIL]
    assert 'hostname=~"gpu-1"' in planned[Signal.GPU_UTIL]
    assert "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS" in planned[Signal.CLOCK_EVENTS]
    assert "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" in planned[Signal.CLOCK_EVENTS]
    assert 'instance=~"(gpu-1)(:[0-9]+)?"' in planned[Signal.CPU]
    assert planned[Signal.TRAFFIC] == "sum(rate(requests_total[5m]))"


def test_temperature_and_power_are_not_fleet_queries() -> None:
    # Read per throttling episode (perfguard.engine.capacityplan_readings), not for every GPU
    # over the whole history.
    fleet = {p.signal for p in plan_queries(spec(), ["gpu-1"])}
    assert Signal.GPU_TEMP not in fleet and Signal.GPU_POWER not in fleet
    assert plan_query(spec(), Signal.GPU_POWER, ["gpu-1"]).query == (
        'DCGM_FI_DEV_POWER_USAGE{Hostname=~"gpu-1"} or DCGM_FI_DEV_POWER_USAGE{hostname=~"gpu-1"}'
    )
    custom = spec(queries={"gpuPower": 'watts{node=~"{{nodes}}"}'})
    assert plan_query(custom, Signal.GPU_POWER, ["gpu-1"]).query == 'watts{node=~"gpu-1"}'


def test_overrides_expand_nodes() -> None:
    custom = spec(queries={"gpuUtil": 'my_util{host=~"{{ nodes }}"}'})
    planned = {p.signal: p for p in plan_queries(custom, ["n1", "n2"])}
    assert planned[Signal.GPU_UTIL].query == 'my_util{host=~"n1|n2"}'
    assert planned[Signal.GPU_UTIL].overridden


def test_host_of_reads_either_label_or_the_instance() -> None:
    assert host_of({"Hostname": "a"}) == "a"
    assert host_of({"hostname": "b"}) == "b"
    assert host_of({"instance": "c:9100"}) == "c"


def test_sufficient_near_limit_and_insufficient_by_projection() -> None:
    # Peak (p95) traffic ≈ 139.8; +20 % ≈ 167.7. Utilisation = 5 + slope * traffic.
    low = judge(spec(), data(40.0), {}, AT)
    assert low.verdict == "Sufficient"
    assert conditions(low)["CapacitySufficient"] == ("True", "WithinCapacity")
    near = judge(spec(), data(55.0), {}, AT)  # +20 %: 5 + 0.5 * 167.7 ≈ 88.9
    assert near.verdict == "NearLimit", near.fields["message"]
    assert [e.reason for e in near.events] == ["CapacityNearLimit"]
    over = judge(spec(), data(70.0), {}, AT)  # ≈ 114
    assert over.verdict == "Insufficient"
    gpu = next(p for p in over.fields["projections"] if p["resource"] == "gpu")
    assert gpu["addGpus"] == int(np.ceil(gpu["projected"] * 4 / 90)) - 4


@pytest.mark.parametrize("excess", [0.0, 3e-11])
def test_a_projection_at_the_threshold_is_over_capacity_and_asks_for_a_gpu(excess: float) -> None:
    # Utilisation 0.8 x traffic exactly (or a float's last bits above): the "flat" scenario
    # projects exactly the 80 % threshold. Before, assess said OverCapacity while the
    # recommendation said "no scaling needed yet" or "add 0 GPUs".
    times = grid(AT - timedelta(days=1), AT, STEP)
    traffic = np.where(np.arange(times.size) % 2 == 0, 50.0, 100.0)
    traffic[-4:] = 50.0
    plan = CapacityData(times=times, step_s=STEP, traffic=traffic)
    for g in range(4):
        plan.gpus[("node-a", str(g))] = {Signal.GPU_UTIL: 0.8 * traffic * (1.0 + excess)}
    flat = spec(thresholds={"gpu": 80}, scenarios=[{"name": "flat", "growthPercent": 0}])
    outcome = judge(flat, plan, {}, AT)
    gpu = next(p for p in outcome.fields["projections"] if p["resource"] == "gpu")
    assert gpu["projected"] == pytest.approx(80.0)
    assert gpu["assessment"] == "OverCapacity"
    assert gpu["addGpus"] == 1 and gpu["addNodes"] == 1
    assert gpu["recommendation"] == "add 1 GPU (1 node of 4 GPUs)"
    assert outcome.verdict == "Insufficient"


def fleet_change(before: int, after: int, *, days_ago: int = 1, seed: int = 3) -> CapacityData:
    """A week in which the work is 2.4 %·GPU per req/s in total (0.3 x traffic per GPU on
    8 GPUs) and the fleet went from `before` to `after` GPUs `days_ago`; GPUs removed are
    absent from the data (their Node is gone, the selector no longer picks them)."""
    times = grid(AT - timedelta(days=7), AT, STEP)
    hours = (times / 3600.0) % 24
    traffic = 100.0 * (1.0 + 0.4 * np.sin(2 * np.pi * hours / 24))
    change = times.size - days_ago * int(86400 / STEP)
    rng = np.random.default_rng(seed)
    index = np.arange(times.size)
    per_gpu = np.where(index < change, 2.4 * traffic / before, 2.4 * traffic / after)
    out = CapacityData(times=times, step_s=STEP, traffic=traffic)
    for g in range(after):
        util = np.clip(per_gpu + rng.normal(0.0, 1.0, times.size), 0.0, 100.0)
        seen = np.ones(times.size)
        if g >= before:
            seen[:change] = np.nan  # a new node's GPUs appear at the change
        out.gpus[("node-a" if g < 4 else "node-b", str(g))] = {
            Signal.GPU_UTIL: util * seen,
            Signal.GPU_MEMORY_USED: 1000.0 * seen,
            Signal.GPU_MEMORY_FREE: 9000.0 * seen,
        }
    for node in {host for host, _ in out.gpus}:
        # node-exporter on every node, from when its GPUs appear, well below its thresholds.
        seen = np.ones(times.size) if node == "node-a" or before > 4 else np.nan * index
        if node != "node-a" and before <= 4:
            seen[change:] = 1.0
        out.nodes[node] = {Signal.CPU: 30.0 * seen, Signal.MEMORY: 40.0 * seen}
    return out


def test_gpus_added_a_day_ago_do_not_skew_the_projection() -> None:
    # 4 -> 8 GPUs: the 8 run 30-42 %; +20 % traffic at peak puts them near 50 %. Before, six
    # days of averages over 4 GPUs set the slope: projected 100.3 %, "add 1 GPU".
    outcome = judge(spec(history="7d"), fleet_change(4, 8), {}, AT)
    gpu = next(p for p in outcome.fields["projections"] if p["resource"] == "gpu")
    truth = 2.4 * gpu["traffic"] / 8
    assert gpu["projected"] == pytest.approx(truth, abs=1.0)
    assert gpu["assessment"] == "WithinCapacity" and gpu["addGpus"] == 0
    assert outcome.verdict == "Sufficient", outcome.fields["message"]
    # GPU memory is each GPU's own (the same 10 % on every GPU, whatever the fleet's size):
    # its total doubled with the fleet, so the per-unit line projects it, not the shared one.
    memory = next(p for p in outcome.fields["projections"] if p["resource"] == "gpuMemory")
    assert memory["projected"] == pytest.approx(10.0, abs=0.5)
    headroom = next(h for h in outcome.fields["headroom"] if h["resource"] == "gpu")
    # 8 GPUs reach 90 % at 300 req/s: the peak (p95 ≈ 139.5) has ~115 % headroom.
    assert headroom["percent"] == pytest.approx(100.0 * (300.0 / (gpu["traffic"] / 1.2) - 1), abs=3)


def test_time_to_threshold_agrees_with_the_current_figure() -> None:
    times = grid(AT - timedelta(days=1), AT, STEP)
    traffic = 100.0 + 40.0 * np.sin(2 * np.pi * ((times / 3600.0) % 24) / 24)

    def crossing(util: np.ndarray) -> tuple[float, dict[str, Any]]:
        plan = CapacityData(times=times, step_s=STEP, traffic=traffic)
        for g in range(4):
            plan.gpus[("node-a", str(g))] = {Signal.GPU_UTIL: util.copy()}
        outcome = judge(spec(scenarios=[]), plan, {}, AT)
        now = next(c for c in outcome.fields["current"] if c["resource"] == "gpu")
        ttt = next(c for c in outcome.fields["timeToThreshold"] if c["resource"] == "gpu")
        return now["fleet"], ttt

    # A ramp 40 -> 100 % then a scale-out to 50 % in the last hour: not "already at or
    # above the threshold" (as before) while the status shows 50 %.
    ramp = np.linspace(40.0, 100.0, times.size)
    ramp[-12:] = 50.0
    current, ttt = crossing(ramp)
    assert current == 50.0
    assert "already" not in ttt["message"]
    assert ttt["message"].startswith("from 50.0% now, the fleet's load trend reaches 90%")
    # Flat 50 % then 95 % for the last 30 minutes: already over (before: "not within the
    # history's horizon").
    surge = np.full(times.size, 50.0)
    surge[-6:] = 95.0
    current, ttt = crossing(surge)
    assert current == 95.0
    assert ttt == {
        "resource": "gpu",
        "at": "2026-11-28T12:00:00Z",
        "message": "already at or above the threshold (now 95.0%)",
    }


def test_gpus_removed_a_day_ago_make_the_projection_unverified() -> None:
    # 8 -> 4 GPUs, the removed node's series gone with its Node: the 4 run 61 % now, twice
    # what six days of history put on the line. Before: Sufficient, projected 50.4 %, "no
    # scaling needed", while the 4 GPUs would run about 100 % at +20 %.
    outcome = judge(spec(history="7d"), fleet_change(8, 4), {}, AT)
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["reason"] == "ProjectionUnverified"
    gpu = next(p for p in outcome.fields["projections"] if p["resource"] == "gpu")
    assert gpu["assessment"] == "Unverified" and "projected" not in gpu
    assert gpu["recommendation"].startswith("GPU: the line does not match the load now (60.")
    assert "% per unit measured, 30." in gpu["recommendation"]
    assert not [h for h in outcome.fields["headroom"] if h["resource"] == "gpu"]
    # Once the history holds mostly the new state, the line is that state's again.
    later = judge(spec(history="7d"), fleet_change(8, 4, days_ago=4), {}, AT)
    gpu = next(p for p in later.fields["projections"] if p["resource"] == "gpu")
    assert gpu["projected"] == pytest.approx(2.4 * gpu["traffic"] / 4, abs=3.0)
    assert later.verdict == "Insufficient"


@pytest.mark.parametrize("seed", range(10))
def test_traffic_that_explains_nothing_gives_no_projection(seed: int) -> None:
    # Traffic held at 100 ± 0.3 req/s, GPU load 70 ± 5 % on its own. Before: 8 of 10 seeds
    # Sufficient, two Insufficient ("add 1 GPU", "add 2 GPUs"), by the noise's slope.
    times = grid(AT - timedelta(days=1), AT, STEP)
    rng = np.random.default_rng(seed)
    traffic = 100.0 + rng.normal(0.0, 0.3, times.size)
    util = 70.0 + rng.normal(0.0, 5.0, times.size)
    plan = fleet(times, traffic, util.copy)
    outcome = judge(spec(), plan, {}, AT)
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["reason"] == "ProjectionUnverified"
    assert outcome.fields["message"].startswith("plus20: GPU: traffic varied by only ")
    assert conditions(outcome)["CapacitySufficient"] == ("Unknown", "ProjectionUnverified")


def test_a_resource_that_does_not_follow_traffic_is_still_projected() -> None:
    # Node memory at 40 ± 1 % whatever the traffic (which varies ±40 %): the flat line says
    # it stays there, and the plan stays Sufficient rather than Unverified.
    plan = data(40.0)
    rng = np.random.default_rng(8)
    plan.nodes["node-a"][Signal.MEMORY] = 40.0 + rng.normal(0.0, 1.0, plan.times.size)
    outcome = judge(spec(), plan, {}, AT)
    assert outcome.verdict == "Sufficient", outcome.fields["message"]
    memory = next(p for p in outcome.fields["projections"] if p["resource"] == "memory")
    assert memory["projected"] == pytest.approx(40.0, abs=1.0)


def test_current_utilisation_above_threshold_is_insufficient() -> None:
    hot = data(95.0)
    outcome = judge(spec(scenarios=[]), hot, {}, AT)
    assert outcome.verdict == "Insufficient"
    assert outcome.fields["reason"] == "CurrentInsufficient"


def test_sustained_load_is_near_limit() -> None:
    busy = data(40.0)
    for signals in busy.gpus.values():
        signals[Signal.GPU_UTIL][-6:] = 87.0  # 30 min above 85 %
    outcome = judge(spec(scenarios=[]), busy, {}, AT)
    current = next(c for c in outcome.fields["current"] if c["resource"] == "gpu")
    assert current["sustained"] is True
    assert outcome.verdict == "NearLimit"


def test_events_on_transitions_only_and_memory_across_outages() -> None:
    first = judge(spec(), data(55.0), {}, AT)
    again = judge(spec(), data(55.0), status(first), AT)
    assert again.events == []
    outage = failed("PrometheusUnreachable", "connection refused", status(again))
    assert outage.verdict == "Unverified"
    assert conditions(outage)["CapacitySufficient"][0] == "False"  # still remembered
    assert [e.reason for e in outage.events] == ["PrometheusUnreachable"]
    outage_again = failed("PrometheusUnreachable", "connection refused", status(outage))
    assert outage_again.events == []
    back = judge(spec(), data(55.0), status(outage_again), AT)
    assert back.events == [], "NearLimit was already reported"
    fixed = judge(spec(), data(40.0), status(back), AT)
    assert [e.reason for e in fixed.events] == ["CapacitySufficient"]


def test_no_data_is_unverified_never_sufficient() -> None:
    empty = CapacityData(times=grid(AT - timedelta(days=1), AT, STEP), step_s=STEP)
    outcome = judge(spec(), empty, {}, AT)
    assert outcome.verdict == "Unverified"
    assert conditions(outcome)["Ready"] == ("False", "NoData")


def test_gpus_gone_silent_make_the_plan_unverified() -> None:
    """Two of four GPUs stop reporting: the fleet average of the other two is not the
    fleet's, so the plan is not Sufficient, and the message names the silent GPUs."""
    partial = data(40.0)
    for gpu in ("1", "3"):
        for values in partial.gpus[("node-a", gpu)].values():
            values[-24:] = np.nan  # the last 2 hours
    outcome = judge(spec(), partial, {}, AT)
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["reason"] == "DataMissing"
    message = outcome.fields["message"]
    assert "GPU: no data in the last 15m from 2 of 4 GPUs that reported earlier" in message
    assert "node-a GPU 1, node-a GPU 3" in message
    assert conditions(outcome)["CapacitySufficient"] == ("Unknown", "DataMissing")
    # With a GPU silent, its share of the load is spread over all four (whether it still
    # runs is unknown): the most favourable reading, so the shortfall holds either way. The
    # three reporting GPUs alone (1 more) would leave the silent one's load uncounted.
    over = data(70.0)
    for values in over.gpus[("node-a", "3")].values():
        values[-24:] = np.nan
    judged = judge(spec(), over, {}, AT)
    assert judged.verdict == "Insufficient", "a known shortfall outranks missing data"
    gpu = next(p for p in judged.fields["projections"] if p["resource"] == "gpu")
    assert gpu["projected"] == pytest.approx(5.0 + 0.65 * gpu["traffic"], abs=0.2)
    assert gpu["addGpus"] == int(np.ceil(gpu["projected"] * 4 / 90)) - 4 == 2


def test_no_time_to_threshold_while_units_are_silent() -> None:
    """A scale-in the plan did not see (4 of 8 GPUs gone, their load on the other 4): the
    trend of the load spread over all 8 rises half as fast as the remaining GPUs do, so a
    crossing time from it is too late (before: "in about 7h" at 80 %, rising 40 points a
    day). With units silent no trend is named; "already at the threshold" still is."""
    rising = data(20.0, gpus=8)
    ramp = np.linspace(0.0, 20.0, rising.times.size)
    for g in range(8):
        rising.gpus[("node-a", str(g))][Signal.GPU_UTIL][:] += ramp
    for g in range(4, 8):
        for values in rising.gpus[("node-a", str(g))].values():
            values[-24:] = np.nan
    for g in range(4):
        rising.gpus[("node-a", str(g))][Signal.GPU_UTIL][-24:] *= 2.0
    outcome = judge(spec(), rising, {}, AT)
    assert outcome.fields["reason"] == "DataMissing"
    gpu = next(c for c in outcome.fields["timeToThreshold"] if c["resource"] == "gpu")
    assert "at" not in gpu
    assert gpu["message"] == (
        "unknown: 4 of 8 GPUs reported earlier but not in the last 15m, so the fleet's "
        "load trend cannot be read"
    )
    for values in rising.gpus.values():
        values[Signal.GPU_UTIL][-24:] = 95.0
    hot = judge(spec(), rising, {}, AT)
    gpu = next(c for c in hot.fields["timeToThreshold"] if c["resource"] == "gpu")
    assert gpu["at"] == "2026-11-28T12:00:00Z"
    assert gpu["message"] == "already at or above the threshold (now 95.0%)"


def test_a_node_advertising_gpus_without_dcgm_data_is_not_sufficient() -> None:
    """DCGM down on a node, or its Hostname label not the node name (the series are then
    not the node's): the node's GPUs are in no fleet figure, so the plan is Unverified."""
    outcome = judge(spec(), data(40.0), {}, AT, {"node-a": 4, "node-b": 8, "cpu-node": 0})
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["reason"] == "DataMissing"
    assert (
        "no DCGM series in the history for 1 of 2 nodes that advertise nvidia.com/gpu"
        in (outcome.fields["message"])
    )
    assert "(node-b)" in outcome.fields["message"]
    # Nodes without GPUs (with their CPU and memory reported), and offline evaluation (no
    # Node objects), change nothing.
    with_cpu_node = data(40.0)
    with_cpu_node.nodes["cpu-node"] = dict(with_cpu_node.nodes["node-a"])
    assert judge(spec(), with_cpu_node, {}, AT, {"node-a": 4, "cpu-node": 0}).verdict == (
        "Sufficient"
    )
    assert judge(spec(), data(40.0), {}, AT, None).verdict == "Sufficient"


def test_a_resource_without_any_data_is_missing_not_left_out() -> None:
    """node-exporter's instance label not the node name (10.0.0.5:9100): CPU and memory,
    each with a threshold, have no series at all. Before, the verdict was Sufficient on the
    GPUs alone and CPU and memory were not mentioned. Likewise DCGM_FI_DEV_GPU_UTIL only
    blanks (or absent) with GPU memory present."""
    no_node_exporter = data(40.0)
    no_node_exporter.nodes.clear()
    for advertised in ({"node-a": 4}, None):
        outcome = judge(spec(), no_node_exporter, {}, AT, advertised)
        assert outcome.verdict == "Unverified", outcome.fields["message"]
        assert outcome.fields["reason"] == "DataMissing"
        assert outcome.fields["message"].startswith(
            "CPU and memory: no data in the history from 1 of 1 node (node-a)"
        )
        assert conditions(outcome)["CapacitySufficient"] == ("Unknown", "DataMissing")
    no_util = data(40.0)
    for gpu in range(4):
        no_util.gpus[("node-a", str(gpu))][Signal.GPU_UTIL][:] = float(DCGM_INT32_BLANK)
    for advertised in ({"node-a": 4}, None):
        outcome = judge(spec(), no_util, {}, AT, advertised)
        assert outcome.verdict == "Unverified", outcome.fields["message"]
        assert outcome.fields["message"] == (
            "GPU: no data in the history from 4 of 4 GPUs (node-a: 0 of 4 report)"
        )
    # A fleet without GPUs (no Node advertises one, no DCGM series) misses nothing.
    cpu_only = data(40.0, gpus=0)
    assert judge(spec(), cpu_only, {}, AT, {"node-a": 0}).verdict == "Sufficient"


def test_part_of_the_fleet_missing_from_a_resource_is_missing() -> None:
    """Each selected node must be in CPU and memory and each advertised GPU in the GPU
    figures: the average of the rest is not the fleet's. All three cases were Sufficient."""
    fewer = data(40.0)
    for gpu in range(2):
        fewer.gpus[("node-b", str(gpu))] = {
            k: v.copy() for k, v in fewer.gpus[("node-a", str(gpu))].items()
        }
    fewer.nodes["node-b"] = dict(fewer.nodes["node-a"])
    outcome = judge(spec(), fewer, {}, AT, {"node-a": 4, "node-b": 8})
    assert outcome.verdict == "Unverified"
    assert outcome.fields["message"] == (
        "GPU and GPU memory: no data in the history from 6 of 12 GPUs (node-b: 2 of 8 report)"
    )
    # node-b has DCGM series but no node-exporter series.
    del fewer.nodes["node-b"]
    outcome = judge(spec(), fewer, {}, AT, {"node-a": 4, "node-b": 2})
    assert outcome.verdict == "Unverified"
    assert outcome.fields["message"].startswith(
        "CPU and memory: no data in the history from 1 of 2 nodes (node-b)"
    )
    # Offline too: a host in the DCGM series but not in node-exporter's.
    assert (
        judge(spec(), fewer, {}, AT, None)
        .fields["message"]
        .startswith("CPU and memory: no data in the history from 1 of 2 nodes (node-b)")
    )
    # A CPU-only selected node without series.
    outcome = judge(spec(), data(40.0), {}, AT, {"node-a": 4, "cpu-node": 0})
    assert outcome.verdict == "Unverified"
    assert "1 of 2 nodes (cpu-node)" in outcome.fields["message"]


def test_missing_data_in_a_big_fleet_is_summarised() -> None:
    fleet = data(40.0)
    advertised = {"node-a": 4} | {f"node-{i:02d}": 8 for i in range(40)}
    for i in range(40):
        fleet.gpus[(f"node-{i:02d}", "0")] = {
            k: v.copy() for k, v in fleet.gpus[("node-a", "0")].items()
        }
    message = judge(spec(), fleet, {}, AT, advertised).fields["message"]
    assert message.startswith(
        "GPU and GPU memory: no data in the history from 280 of 324 GPUs (node-00: 1 of 8, "
        "node-01: 1 of 8, node-02: 1 of 8 and 37 more nodes report); "
        "CPU and memory: no data in the history from 40 of 41 nodes (node-00, node-01, "
        "node-02 and 37 more)"
    ), message
    assert len(message) < 400


def test_a_gpu_that_never_reported_a_usable_value_is_missing_not_silent() -> None:
    """FB_FREE only DCGM blanks (or NaN) for one GPU: it has no memory figure, so the fleet's
    GPU memory is not verified (named as missing from the history, not as gone silent)."""
    blanks = data(40.0)
    blanks.gpus[("node-a", "1")][Signal.GPU_MEMORY_FREE][:] = np.nan
    outcome = judge(spec(), blanks, {}, AT)
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["message"] == (
        "GPU memory: no data in the history from 1 of 4 GPUs (node-a: 3 of 4 report)"
    )


def test_one_missed_scrape_is_not_silence() -> None:
    gappy = data(40.0)
    for values in gappy.gpus[("node-a", "2")].values():
        values[-1] = np.nan
    assert judge(spec(), gappy, {}, AT).verdict == "Sufficient"


def test_xid_anomaly_event_once() -> None:
    history = data(40.0)
    history.gpus[("node-a", "2")][Signal.XID_ERRORS][-20:-10] = 79
    first = judge(spec(), history, {}, AT)
    assert [e.reason for e in first.events] == ["XidError"]
    assert "node-a GPU 2" in first.events[0].message
    assert conditions(first)["AnomalyDetected"][0] == "True"
    second = judge(spec(), history, status(first), AT + timedelta(minutes=5))
    assert second.events == []


def test_a_gpu_without_memory_figures_does_not_stop_the_other_gpus_detectors() -> None:
    history = data(40.0)
    history.gpus[("node-a", "0")][Signal.GPU_MEMORY_FREE][:] = float(DCGM_INT32_BLANK)
    history.gpus[("node-a", "1")][Signal.GPU_MEMORY_FREE][:] = np.nan
    history.gpus[("node-a", "2")][Signal.XID_ERRORS][-20:-10] = 79
    outcome = judge(spec(), history, {}, AT)
    assert conditions(outcome)["Ready"] == ("True", "Evaluated")
    assert [(a["type"], a["gpu"]) for a in outcome.fields["anomalies"]] == [("XidError", "2")]
    memory = next(c for c in outcome.fields["current"] if c["resource"] == "gpuMemory")
    assert {t["gpu"] for t in memory["top"]} == {"2", "3"}  # the two GPUs with figures


def test_an_xid_code_older_than_the_history_is_no_anomaly() -> None:
    history = data(40.0)
    history.gpus[("node-a", "2")][Signal.XID_ERRORS][:] = 79  # held since before the history
    outcome = judge(spec(), history, {}, AT)
    assert outcome.fields["anomalies"] == []
    assert conditions(outcome)["AnomalyDetected"] == ("False", "NoAnomaly")
    assert outcome.events == []


def test_each_new_xid_is_an_event_while_the_last_one_is_still_held() -> None:
    history = data(40.0)
    xid = history.gpus[("node-a", "2")][Signal.XID_ERRORS]
    xid[-30:] = 13
    first = judge(spec(), history, {}, AT)
    assert [e.reason for e in first.events] == ["XidError"]
    xid[-10:] = 48  # another code while 13 was ongoing
    second = judge(spec(), history, status(first), AT)
    assert [(e.reason, "XID 48" in e.message) for e in second.events] == [("XidError", True)]
    xid[-8:-6] = 0
    xid[-6:] = 48  # the same code again, 20 minutes after the first 48
    third = judge(spec(), history, status(second), AT)
    assert [(e.reason, "XID 48" in e.message) for e in third.events] == [("XidError", True)]
    assert judge(spec(), history, status(third), AT).events == []


def test_current_window_ends_at_the_grid_not_the_clock() -> None:
    # The fetch floors the grid to the step; "current" must count the same grid points
    # whatever minute between two steps the evaluation runs at (the last 15 minutes of a
    # 5m grid: its last four points, 15 minutes back inclusive).
    stepped = data(40.0)
    for signals in stepped.gpus.values():
        signals[Signal.GPU_UTIL][-4:] = [10.0, 20.0, 30.0, 40.0]
    figures = {
        judge(spec(scenarios=[]), stepped, {}, AT + timedelta(seconds=s)).fields["current"][0][
            "fleet"
        ]
        for s in (0, 60, 150, 299)
    }
    assert figures == {25.0}


def test_peak_readings_take_one_query_per_kind_of_throttling() -> None:
    """Two nodes throttled for temperature: one query for both, each episode its own GPU's
    peak; a power episode: a second query."""
    import asyncio

    import numpy as np

    from perfguard.analysis.capacity_anomalies import AnomalyFinding, AnomalyKind
    from perfguard.engine.capacityplan_readings import add_peak_readings
    from perfguard.sources.prometheus import Series

    times = np.arange(0.0, 3600.0, 300.0)

    class Answers:
        def __init__(self) -> None:
            self.queries: list[str] = []

        async def query_range(self, query: str, *_: object) -> list[Series]:
            self.queries.append(query)
            return [
                Series({"Hostname": node, "gpu": gpu}, times, np.full(times.size, value))
                for node, gpu, value in (("n1", "0", 81.0), ("n2", "3", 92.0), ("n2", "0", 60.0))
            ]

    def episode(kind: AnomalyKind) -> AnomalyFinding:
        return AnomalyFinding(kind, 600.0, 1200.0, "Warning", 32.0, None, "Throttled")

    found = [
        ("n1", "0", episode(AnomalyKind.THERMAL_THROTTLING)),
        ("n2", "3", episode(AnomalyKind.THERMAL_THROTTLING)),
        ("n2", "0", episode(AnomalyKind.POWER_CAPPING)),
    ]
    client = Answers()
    amended = asyncio.run(add_peak_readings(client, spec(), found, AT, shown=3))  # type: ignore[arg-type]
    assert len(client.queries) == 2
    assert 'Hostname=~"n1|n2"' in client.queries[0] and "GPU_TEMP" in client.queries[0]
    assert "POWER_USAGE" in client.queries[1]
    assert [f.message for _, _, f in amended] == [
        "Throttled; temperature up to 81 °C",
        "Throttled; temperature up to 92 °C",
        "Throttled; power draw up to 60 W",
    ]


def fetched(gpu_series: dict[Signal, list[tuple[dict[str, str], float]]]) -> CapacityData:
    """Prometheus answers (labels, constant value) through the fetch's own alignment and
    merge, with node-exporter's CPU and memory for node-a and a daily traffic."""
    times = grid(AT - timedelta(days=1), AT, STEP)
    planned = {p.signal: p for p in plan_queries(spec(), ["node-a"])}
    traffic = 100.0 * (1.0 + 0.4 * np.sin(2 * np.pi * ((times / 3600.0) % 24) / 24))
    answers = {
        Signal.CPU: [Series({"instance": "node-a:9100"}, times, np.full(times.size, 30.0))],
        Signal.MEMORY: [Series({"instance": "node-a:9100"}, times, np.full(times.size, 40.0))],
        Signal.TRAFFIC: [Series({}, times, traffic)],
    }
    for signal, series in gpu_series.items():
        answers[signal] = [
            Series({"Hostname": "node-a", **labels}, times, np.full(times.size, value))
            for labels, value in series
        ]
    aligned = [
        align_answer(planned[signal], found, frozenset({"node-a"}), times, STEP)
        for signal, found in answers.items()
    ]
    return merge_answers(aligned, times, STEP)


def test_mig_instances_of_one_gpu_are_separate_units() -> None:
    """Three MIG instances of GPU 0 (dcgm-exporter: gpu="0" and GPU_I_ID 1, 2, 3). Before,
    they merged into one unit keyed (node-a, 0) and instance 1's series won: GPU memory at
    80 % and Sufficient while instances 2 and 3 were full."""

    def mig(instance: int) -> dict[str, str]:
        profile = "3g.20gb" if instance == 1 else "2g.10gb"
        return {"gpu": "0", "UUID": "GPU-aaa", "GPU_I_ID": str(instance), "GPU_I_PROFILE": profile}

    history = fetched(
        {
            Signal.GPU_UTIL: [(mig(1), 30.0), (mig(2), 40.0), (mig(3), 40.0)],
            Signal.GPU_MEMORY_USED: [(mig(1), 16000.0), (mig(2), 9900.0), (mig(3), 9900.0)],
            Signal.GPU_MEMORY_FREE: [(mig(1), 4000.0), (mig(2), 100.0), (mig(3), 100.0)],
            # A device-level field may come for the parent GPU, without GPU_I_ID.
            Signal.XID_ERRORS: [({"gpu": "0", "UUID": "GPU-aaa"}, 0.0)],
        }
    )
    # The parent GPU is not a fourth unit beside its instances.
    assert history.gpu_count("node-a") == 3
    assert sorted(k for k, v in history.gpus.items() if Signal.GPU_UTIL in v) == [
        ("node-a", "0 MIG 1"),
        ("node-a", "0 MIG 2"),
        ("node-a", "0 MIG 3"),
    ]
    assert history.conflicts == []
    outcome = judge(spec(), history, {}, AT, {"node-a": 1})
    memory = next(c for c in outcome.fields["current"] if c["resource"] == "gpuMemory")
    assert memory["fleet"] == round((80.0 + 99.0 + 99.0) / 3, 1)
    assert [t["gpu"] for t in memory["top"]] == ["0 MIG 2", "0 MIG 3", "0 MIG 1"]
    assert outcome.verdict == "Insufficient", outcome.fields["message"]


def test_series_colliding_on_one_unit_are_reported_not_first_wins() -> None:
    """Two series for one host and GPU with different values (two exporters for one host, a
    query that drops the GPU_I_ID label): the fetch kept the first one silently."""
    clash = fetched(
        {
            Signal.GPU_UTIL: [({"gpu": "0"}, 30.0), ({"gpu": "0", "pod": "other"}, 95.0)],
            Signal.GPU_MEMORY_USED: [({"gpu": "0"}, 1000.0)],
            Signal.GPU_MEMORY_FREE: [({"gpu": "0"}, 9000.0)],
        }
    )
    assert [(unit, signal) for unit, signal, _ in clash.conflicts] == [
        (("node-a", "0"), Signal.GPU_UTIL)
    ]
    outcome = judge(spec(), clash, {}, AT, {"node-a": 1})
    assert outcome.verdict == "Unverified", outcome.fields["message"]
    assert outcome.fields["reason"] == "AmbiguousData"
    assert "node-a GPU 0; gpuUtil" in outcome.fields["message"]
    # The same values twice (both host labels, a GPU shared by two pods) are one series.
    same = fetched(
        {
            Signal.GPU_UTIL: [({"gpu": "0"}, 30.0), ({"gpu": "0", "hostname": "node-a"}, 30.0)],
            Signal.GPU_MEMORY_USED: [({"gpu": "0"}, 1000.0)],
            Signal.GPU_MEMORY_FREE: [({"gpu": "0"}, 9000.0)],
        }
    )
    assert same.conflicts == []
    assert judge(spec(), same, {}, AT, {"node-a": 1}).verdict == "Sufficient"


def test_a_new_episode_after_an_ongoing_one_ended_gets_its_event() -> None:
    """Evaluation 1 (11:00) sees hardware thermal throttling ongoing since 10:00. By
    evaluation 2 (12:00, interval 30m) it ended at 11:05 and a new one began at 11:40:
    both are listed, and the new one must get an Event. Before, the old ongoing entry
    matched any later start on the GPU and there was none. The status is carried through
    JSON, as across an operator restart."""

    def history(at: datetime, onsets: list[tuple[float, float]]) -> CapacityData:
        out = data(40.0)
        out.times = grid(at - timedelta(days=1), at, STEP)
        clocks = np.zeros(out.times.size)
        for first, last in onsets:
            clocks[(out.times >= first) & (out.times <= last)] = 0x40
        out.gpus[("node-a", "0")][Signal.CLOCK_EVENTS] = clocks
        return out

    hour = 3600.0
    first_at = AT - timedelta(hours=1)
    at_s = AT.timestamp()
    episodes = [(at_s - 2 * hour, at_s - 55 * 60), (at_s - 20 * 60, at_s)]
    first = judge(spec(interval="30m"), history(first_at, episodes), {}, first_at)
    assert [e.reason for e in first.events] == ["ThermalThrottling"]
    carried = json.loads(json.dumps(status(first)))  # what a restarted operator reads
    second = judge(spec(interval="30m"), history(AT, episodes), carried, AT)
    assert [(a["start"], "end" in a) for a in second.fields["anomalies"]] == [
        ("2026-11-28T11:40:00Z", False),
        ("2026-11-28T10:00:00Z", True),
    ]
    assert [e.reason for e in second.events] == ["ThermalThrottling"]
    assert "node-a GPU 0 since 2026-11-28T11:40:00Z" in second.events[0].message
    # Once announced, neither is announced again.
    carried = json.loads(json.dumps(status(second)))
    assert judge(spec(interval="30m"), history(AT, episodes), carried, AT).events == []


def test_an_ongoing_episode_re_estimated_to_start_later_is_not_new() -> None:
    """Memory growth's onset is an estimate that may move later while the episode goes on:
    the same ongoing episode, no second Event."""
    old = {
        "type": "GpuMemoryGrowth",
        "node": "node-a",
        "gpu": "0",
        "start": "2026-11-28T10:00:00Z",
        "severity": "Warning",
        "value": 8.0,
        "message": "GPU memory grows",
    }
    moved = {**old, "start": "2026-11-28T10:30:00Z", "value": 7.5}
    assert new_anomalies([moved], [old], 600.0) == []
    # Ended, and a new one later: new.
    ended = {**old, "end": "2026-11-28T11:00:00Z"}
    later = {**old, "start": "2026-11-28T11:40:00Z"}
    assert new_anomalies([later, ended], [old], 600.0) == [later]
    # XIDs start where the gauge changed: a later start is a new XID.
    xid = {**old, "type": "XidError", "value": 79.0}
    assert new_anomalies([{**xid, "start": "2026-11-28T10:30:00Z"}], [xid], 600.0) != []


def test_an_ended_episode_missing_from_one_evaluation_stays_listed_without_a_second_event() -> None:
    """A past spike's threshold depends on the scatter of the whole window, which moves as
    the window slides: a borderline episode may be missed by one evaluation and found by
    the next. It stays listed meanwhile, so it is announced once. The status goes through
    JSON, as across an operator restart."""
    spike_at = AT - timedelta(hours=5)

    def history(spike: bool) -> CapacityData:
        out = data(40.0)
        if spike:
            out.gpus[("node-a", "0")][Signal.GPU_UTIL][out.times == spike_at.timestamp()] += 30
        return out

    def listed(outcome: Outcome) -> list[tuple[str, str, str | None]]:
        return [(a["type"], a["start"], a.get("end")) for a in outcome.fields["anomalies"]]

    def carried(outcome: Outcome) -> dict[str, Any]:
        return dict(json.loads(json.dumps(status(outcome))))

    episode = ("UtilizationSpike", "2026-11-28T07:00:00Z", "2026-11-28T07:00:00Z")
    first = judge(spec(), history(True), {}, AT)
    assert listed(first) == [episode]
    assert [e.reason for e in first.events] == ["UtilizationSpike"]
    # Missed once: still listed, counted, not announced again.
    later = AT + timedelta(minutes=5)
    missed = judge(spec(), history(False), carried(first), later)
    assert listed(missed) == [episode]
    assert missed.fields["anomalies"][0] == first.fields["anomalies"][0]
    assert missed.fields["totalAnomalies"] == 1
    assert missed.events == []
    assert conditions(missed)["AnomalyDetected"] == ("False", "NoActiveAnomaly")
    # Found again: one entry, no Event.
    back = judge(spec(), history(True), carried(missed), later + timedelta(minutes=5))
    assert listed(back) == [episode]
    assert back.fields["totalAnomalies"] == 1
    assert back.events == []
    # Once its start is older than the history, it goes.
    gone = judge(spec(), history(False), carried(back), spike_at + timedelta(days=1, minutes=5))
    assert listed(gone) == []
    assert gone.fields["totalAnomalies"] == 0
    assert conditions(gone)["AnomalyDetected"] == ("False", "NoAnomaly")


def test_only_ended_episodes_inside_the_history_are_kept_when_missing() -> None:
    """An ongoing entry that vanished was retracted (the detector's onset or the episode
    itself was wrong): it goes. So does an ended one that started before the history, and
    one of a kind the spec no longer looks for."""
    spike = {
        "type": "UtilizationSpike",
        "node": "node-a",
        "gpu": "1",
        "severity": "Warning",
        "value": 80.0,
        "message": "a spike",
    }
    inside = {**spike, "start": "2026-11-28T07:00:00Z", "end": "2026-11-28T07:05:00Z"}
    ongoing = {**spike, "gpu": "2", "start": "2026-11-28T11:40:00Z"}
    older = {**spike, "gpu": "3", "start": "2026-11-27T11:55:00Z", "end": "2026-11-27T12:00:00Z"}
    edge = {**older, "start": "2026-11-27T12:00:00Z"}  # the history's first sample
    previous = {"anomalies": [ongoing, inside, edge, older]}
    outcome = judge(spec(), data(40.0), previous, AT)
    assert outcome.fields["anomalies"] == [inside, edge]
    assert outcome.fields["totalAnomalies"] == 2
    assert outcome.events == []
    # Nor is an episode of a kind the spec no longer looks for.
    xid = {**inside, "type": "XidError", "value": 79.0}
    off = spec(anomalies={"xidErrors": False})
    assert judge(off, data(40.0), {"anomalies": [xid, inside]}, AT).fields["anomalies"] == [inside]


def test_an_episode_whose_start_moves_past_the_tolerance_is_one_entry_and_one_event() -> None:
    """A spike from 19:30 to 19:45 a day ago. Once the history starts at 19:15, the level of
    its first samples (the median of the hour before them) lacks half its hour: its start is
    re-estimated to 19:45, 15 minutes later, farther than a start may move (10 minutes).
    Their spans share 19:45: one episode. Before, the old entry was kept (ended, inside the
    history) and the finding listed and announced too: two entries, two Events."""
    spike = AT.timestamp() - 16.5 * 3600  # 2026-11-27T19:30:00Z

    def history(at: datetime) -> CapacityData:
        times = grid(at - timedelta(days=1), at, STEP)
        traffic = 100.0 * (1.0 + 0.4 * np.sin(2 * np.pi * ((times / 3600.0) % 24) / 24))
        util = np.full(times.size, 40.0)
        util[(times >= spike) & (times <= spike + 900)] = 90.0
        return fleet(times, traffic, lambda: util.copy(), gpus=1)

    def spikes(outcome: Outcome) -> tuple[list[tuple[str, str | None]], int, int]:
        listed = [(a["start"], a.get("end")) for a in outcome.fields["anomalies"]]
        announced = sum(e.reason == "UtilizationSpike" for e in outcome.events)
        return listed, outcome.fields["totalAnomalies"], announced

    plan = spec(interval="15m")
    at = AT + timedelta(hours=7)  # the history starts at 2026-11-27T19:00
    first = judge(plan, history(at), {}, at)
    assert spikes(first) == ([("2026-11-27T19:30:00Z", "2026-11-27T19:45:00Z")], 1, 1)
    for later in (15, 30):
        now = at + timedelta(minutes=later)  # the history starts at 19:15, then 19:30
        first = judge(plan, history(now), json.loads(json.dumps(status(first))), now)
        assert spikes(first) == ([("2026-11-27T19:45:00Z", "2026-11-27T19:45:00Z")], 1, 0)


def test_overlapping_spans_are_one_episode_but_a_later_one_is_new() -> None:
    """Spans (an ongoing one's end open) that share a sample are one episode, whatever the
    starts; two listed episodes found merged, then split again, are not announced again.
    An ongoing entry found ended (at its start or re-estimated) ends there: an episode
    after that is new. An XID's start never moves: overlapping is no match for it."""
    base = {
        "type": "UtilizationSpike",
        "node": "node-a",
        "gpu": "0",
        "severity": "Warning",
        "value": 80.0,
        "message": "a spike",
    }

    def span(start: str, end: str | None = None, **more: Any) -> dict[str, Any]:
        item = {**base, **more, "start": f"2026-11-28T{start}:00Z"}
        return item if end is None else {**item, "end": f"2026-11-28T{end}:00Z"}

    first, second = span("07:00", "07:05"), span("07:30", "07:40")
    merged = span("07:00", "07:40")
    assert new_anomalies([merged], [first, second], 600.0) == []
    assert new_anomalies([first, second], [merged], 600.0) == []
    assert new_anomalies([span("07:25", "07:40")], [merged], 600.0) == []
    # Another GPU, another type, or spans that share no sample: new.
    assert new_anomalies([span("07:45", "07:50")], [merged], 600.0) != []
    assert new_anomalies([span("07:30", "07:40", gpu="1")], [merged], 600.0) != []
    assert new_anomalies([span("07:30", "07:40", type="PowerCapping")], [merged], 600.0) != []
    # An ongoing entry, found ended 30 minutes after its start: a later episode is new.
    ongoing = span("10:00", type="GpuMemoryGrowth")
    ended = span("10:30", "11:00", type="GpuMemoryGrowth")
    later = span("11:40", type="GpuMemoryGrowth")
    assert new_anomalies([later, ended], [ongoing], 600.0) == [later]
    assert new_anomalies([span("10:30", type="GpuMemoryGrowth")], [ongoing], 600.0) == []
    # XID 79 held since 10:00; 79 again from 10:30 (0 between, the first now out of view).
    xid = span("10:00", type="XidError", value=79.0)
    assert new_anomalies([span("10:30", type="XidError", value=79.0)], [xid], 600.0) != []


def test_a_new_episode_soon_after_an_ended_one_is_new() -> None:
    """A start within the tolerance (max(2 x step, 10 min)) of an entry's is a re-estimate
    of that onset only while the entry is ongoing or their spans share a sample: a spike at
    10:10 after one that ended at 10:00 is a new episode with its own Event, whether the
    earlier one is found again, missed (and kept), or the kind's start is exact (XID 79,
    then 0, then 79 again at 10:10). Before, the new spike took the old entry and got no
    Event, and the second XID was announced with the first one's start."""
    spike = {
        "type": "UtilizationSpike",
        "node": "node-a",
        "gpu": "0",
        "severity": "Warning",
        "value": 90.0,
        "message": "a spike",
    }

    def at(start: str, **more: Any) -> dict[str, Any]:
        when = f"2026-11-28T{start}:00Z"
        return {**spike, **more, "start": when, "end": when}

    a, b = at("10:00"), at("10:10")
    assert new_anomalies([b, a], [a], 600.0) == [b]  # both found: B is new
    assert new_anomalies([b], [a], 600.0) == [b]  # A missed: B is new all the same
    assert new_anomalies([at("10:05")], [{**a, "end": "2026-11-28T10:05:00Z"}], 600.0) == []
    ongoing = {key: value for key, value in a.items() if key != "end"}
    assert new_anomalies([at("10:08")], [ongoing], 600.0) == []  # its onset re-estimated
    # The ongoing one found again, ended at 10:03, and a new one from 10:08: newest first
    # (the order the status lists them in), the new one took the ongoing entry by start.
    ended = {**a, "end": "2026-11-28T10:03:00Z"}
    fresh = {key: value for key, value in at("10:08").items() if key != "end"}
    assert new_anomalies([fresh, ended], [ongoing], 600.0) == [fresh]
    assert new_anomalies([ended, fresh], [ongoing], 600.0) == [fresh]
    first, again = (
        at("10:00", type="XidError", value=79.0),
        at("10:10", type="XidError", value=79.0),
    )
    assert new_anomalies([again, first], [first], 600.0) == [again]

    # Through judge: A listed and announced before, missed now, B found: B gets its Event,
    # A stays listed.
    previous = next_status(
        {"anomalies": [at("07:00", node="node-a", gpu="0")]},
        {},
        [false("AnomalyDetected", "NoActiveAnomaly", "1 anomaly(ies) in the history")],
        generation=1,
        at=AT,
        measured=True,
    )
    history = data(40.0)
    b_at = -1 - (AT - datetime(2026, 11, 28, 7, 10, tzinfo=UTC)) // timedelta(seconds=STEP)
    assert history.times[b_at] == datetime(2026, 11, 28, 7, 10, tzinfo=UTC).timestamp()
    history.gpus[("node-a", "0")][Signal.GPU_UTIL][b_at] += 30
    outcome = judge(spec(), history, previous, AT, generation=1)
    starts = [entry["start"] for entry in outcome.fields["anomalies"]]
    announced = [e.message for e in outcome.events if e.reason == "UtilizationSpike"]
    assert starts == ["2026-11-28T07:10:00Z", "2026-11-28T07:00:00Z"], starts
    assert len(announced) == 1 and "since 2026-11-28T07:10:00Z" in announced[0], announced


def test_kept_entries_go_with_their_gpu_or_with_the_spec_that_listed_them() -> None:
    """An entry not found now is kept only for a GPU whose series were fetched (not one of
    a node the selector no longer takes, or that was removed), and only while the spec is
    the one that listed it: the last status's observedGeneration is the generation judged,
    and AnomalyDetected is not Unknown (an evaluation that judged nothing, Prometheus down,
    moves observedGeneration on but leaves the list of the spec before). Before, each such
    entry stayed for up to the history's length."""
    spike = {
        "type": "UtilizationSpike",
        "severity": "Warning",
        "value": 80.0,
        "message": "a spike",
        "start": "2026-11-28T07:00:00Z",
        "end": "2026-11-28T07:00:00Z",
    }
    mine = {**spike, "node": "node-a", "gpu": "1"}
    gone = [{**spike, "node": "node-b", "gpu": "1"}, {**spike, "node": "node-a", "gpu": "7"}]

    def judged(generation: int) -> dict[str, Any]:
        updates = [false("AnomalyDetected", "NoActiveAnomaly", "1 anomaly(ies) in the history")]
        return next_status(
            {"anomalies": [mine, *gone]}, {}, updates, generation=generation, at=AT, measured=True
        )

    def kept(previous: dict[str, Any], generation: int, plan: CapacityPlanSpec) -> list[Any]:
        outcome = judge(plan, data(40.0), previous, AT, generation=generation)
        assert outcome.fields["totalAnomalies"] == len(outcome.fields["anomalies"])
        return list(outcome.fields["anomalies"])

    assert kept(judged(3), 3, spec()) == [mine]
    # The spec changed (spikePercent 20 -> 100): nothing kept.
    assert kept(judged(3), 4, spec(anomalies={"spikePercent": 100})) == []
    # Edited, then Prometheus unreachable: the list is still the one of generation 3.
    down = failed("PrometheusUnreachable", "connection refused", judged(3))
    after = next_status(judged(3), down.fields, down.conditions, generation=4, at=AT, measured=True)
    assert after["observedGeneration"] == 4 and after["anomalies"] == [mine, *gone]
    assert kept(after, 4, spec()) == []

    # Found by the spec before, not by the new one: listed by neither.
    history = data(40.0)
    history.gpus[("node-a", "0")][Signal.GPU_UTIL][-60] += 30
    first = judge(spec(), history, {}, AT, generation=1)
    assert [a["type"] for a in first.fields["anomalies"]] == ["UtilizationSpike"]
    carried = next_status({}, first.fields, first.conditions, generation=1, at=AT, measured=True)
    later = AT + timedelta(minutes=5)
    raised = spec(anomalies={"spikePercent": 100})
    assert judge(raised, history, carried, later, generation=2).fields["anomalies"] == []


def test_kept_episodes_take_their_place_among_the_newest_twenty() -> None:
    """Entries kept from the last status and episodes found now form one list, newest
    first, cut at 20; every one is counted."""
    history = data(40.0)
    xid = history.gpus[("node-a", "1")][Signal.XID_ERRORS]
    for k in range(25):  # one XID every 30 minutes, codes 1..25, the newest at 11:30
        xid[-7 - 6 * k : -1 - 6 * k] = k + 1
    found = judge(spec(), history, {}, AT)
    assert found.fields["totalAnomalies"] == 25
    kept = {
        "type": "UtilizationSpike",
        "node": "node-a",
        "gpu": "0",
        "start": "2026-11-28T10:05:00Z",
        "end": "2026-11-28T10:05:00Z",
        "severity": "Warning",
        "value": 80.0,
        "message": "a spike",
    }
    outcome = judge(spec(), history, {"anomalies": [kept, *found.fields["anomalies"]]}, AT)
    items = outcome.fields["anomalies"]
    assert len(items) == 20 and outcome.fields["totalAnomalies"] == 26
    assert [a["start"] for a in items] == sorted((a["start"] for a in items), reverse=True)
    assert kept in items and items[:20] != found.fields["anomalies"]
    assert outcome.events == []


def test_an_xid_whose_gauge_vanished_is_not_detected_for_ever() -> None:
    """XID 43 once, then the XID gauge vanished 10.7 h ago while utilisation keeps
    reporting: before, the XID stayed ongoing and AnomalyDetected True for ever."""
    history = data(40.0)
    xid = history.gpus[("node-a", "0")][Signal.XID_ERRORS]
    xid[160] = 43
    xid[161:] = np.nan
    outcome = judge(spec(), history, {}, AT)
    (item,) = outcome.fields["anomalies"]
    assert (item["type"], item["start"], item.get("end")) == (
        "XidError",
        "2026-11-28T01:20:00Z",
        "2026-11-28T01:20:00Z",
    )
    assert "stopped reporting 10.7 h before the end of the history" in item["message"]
    assert conditions(outcome)["AnomalyDetected"] == ("False", "NoActiveAnomaly")


@pytest.mark.parametrize("seed", range(4))
def test_no_headroom_from_a_line_refused_where_the_headroom_reads_it(seed: int) -> None:
    # GPU load 40 + 0.1 x traffic with ±10 points of noise: robust R² about 0.2. The +20 %
    # scenario is refused for it; the headroom reads the same line at the threshold, three
    # times the peak traffic, and used to publish +250 % to +316 % from it.
    times = grid(AT - timedelta(days=1), AT, STEP)
    traffic = 100.0 * (1.0 + 0.4 * np.sin(2 * np.pi * ((times / 3600.0) % 24) / 24))
    rng = np.random.default_rng(seed)
    plan = fleet(times, traffic, lambda: 40 + 0.1 * traffic + rng.normal(0, 10, times.size))
    outcome = judge(spec(), plan, {}, AT)
    gpu = next(p for p in outcome.fields["projections"] if p["resource"] == "gpu")
    assert gpu["assessment"] == "Unverified"
    assert "explains too little" in gpu["recommendation"]
    assert [h for h in outcome.fields["headroom"] if h["resource"] == "gpu"] == []
