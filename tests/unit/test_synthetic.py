"""The synthetic telemetry generator: deterministic, valid OpenMetrics, faithful injections."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from perfguard.synthetic import (
    CLOCKS_EVENT_HW_THERMAL,
    CLOCKS_EVENT_SW_THERMAL,
    HISTOGRAM_STAGES,
    POD_TEMPLATE_HASHES,
    Expected,
    Injection,
    InjectionKind,
    Scenario,
    SeriesFamily,
    write_openmetrics,
)

END = datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
SMALL = Scenario(days=0.05, end=END, nodes=2, gpus_per_node=2, cpus_per_node=2, seed=3)
LINE = re.compile(
    r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+) (?P<ts>\S+)$"
)

Series = dict[tuple[str, str], list[tuple[float, float]]]


def generate(scenario: Scenario) -> str:
    buffer = io.StringIO()
    write_openmetrics(scenario, buffer)
    return buffer.getvalue()


def parse_openmetrics(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]


def series_of(text: str) -> Series:
    """(name, label text) -> [(timestamp, value)] in file order."""
    result: Series = defaultdict(list)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        key = (match["name"], match["labels"] or "")
        result[key].append((float(match["ts"]), float(match["value"])))
    return result


def changed(before: Series, after: Series) -> set[tuple[str, str]]:
    assert before.keys() == after.keys()
    return {key for key in before if before[key] != after[key]}


def _gpu_of(labels: str) -> tuple[str, str]:
    host = re.search(r'Hostname="([^"]+)"', labels)
    gpu = re.search(r'gpu="([^"]+)"', labels)
    assert host and gpu, labels
    return host[1], gpu[1]


def first_change(before: Series, after: Series, key: tuple[str, str]) -> float:
    return min(t for (t, a), (_, b) in zip(before[key], after[key], strict=True) if a != b)


def test_same_seed_gives_the_same_text_and_another_seed_does_not() -> None:
    assert generate(SMALL) == generate(SMALL)
    other = replace(SMALL, seed=4)
    assert generate(other) != generate(SMALL)


def test_summary_counts_what_was_written() -> None:
    buffer = io.StringIO()
    summary = write_openmetrics(SMALL, buffer)
    samples = sum(len(points) for points in series_of(buffer.getvalue()).values())
    assert summary.samples == samples
    assert summary.series == len(series_of(buffer.getvalue()))
    assert (summary.start, summary.end) == (SMALL.start, SMALL.end)
    assert summary.end == END
    assert summary.families == 12


def test_counters_gauges_and_metadata_parse_as_openmetrics() -> None:
    text = generate(SMALL)
    assert text.endswith("\n# EOF\n")
    families = {f.name: f for f in parse_openmetrics(_without_histograms(text))}
    assert families["inference_requests"].type == "counter"
    assert families["node_cpu_seconds"].type == "counter"
    assert families["DCGM_FI_DEV_GPU_UTIL"].type == "gauge"
    names = {s.name for s in families["inference_requests"].samples}
    assert names == {"inference_requests_total"}
    steps = SMALL.steps + 1
    assert len(families["DCGM_FI_DEV_GPU_UTIL"].samples) == steps * 2 * 2


def _without_histograms(text: str) -> str:
    return (
        "\n".join(
            line for line in text.splitlines() if "inference_request_duration_seconds" not in line
        )
        + "\n"
    )


def test_every_histogram_point_parses_as_openmetrics() -> None:
    # prometheus_client's parser drops all but the first bucket of a histogram's second
    # timestamp (it deduplicates by series within a group without resetting per
    # timestamp), so each timestamp is checked as a document of its own: buckets in
    # order, +Inf present, _count equal to +Inf, integer counts, canonical `le`.
    text = generate(SMALL)
    lines = [line for line in text.splitlines() if "inference_request_duration_seconds" in line]
    header = [line for line in lines if line.startswith("#")]
    by_timestamp: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        if not line.startswith("#"):
            by_timestamp[line.rsplit(" ", 1)[1]].append(line)
    assert len(by_timestamp) == SMALL.steps + 1
    for timestamp in list(by_timestamp)[:3] + list(by_timestamp)[-2:]:
        document = "\n".join([*header, *by_timestamp[timestamp], "# EOF"]) + "\n"
        (family,) = parse_openmetrics(document)
        assert family.type == "histogram"
        stages = {s.labels["stage"] for s in family.samples}
        assert stages == set(HISTOGRAM_STAGES)


def test_families_are_contiguous_and_series_ascend_in_time() -> None:
    text = generate(SMALL)
    seen: list[str] = []
    last_time: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            family = line.split()[2]
            assert family not in seen, f"{family} appears twice"
            seen.append(family)
            continue
        if line.startswith("#"):
            continue
        match = LINE.match(line)
        assert match
        assert match["name"].startswith(seen[-1]), f"{match['name']} outside its family"
        key = (match["name"], match["labels"] or "")
        timestamp = float(match["ts"])
        assert timestamp > last_time.get(key, float("-inf"))
        last_time[key] = timestamp


def test_counters_never_decrease_and_histograms_agree_with_requests() -> None:
    series = series_of(generate(SMALL))
    for (name, labels), points in series.items():
        if name.endswith(("_total", "_bucket", "_count", "_sum")):
            values = np.array([v for _, v in points])
            assert np.all(np.diff(values) >= 0), f"{name}{labels} decreases"
    for track, pod_hash in POD_TEMPLATE_HASHES.items():
        requests = sum(
            np.array([v for _, v in points])
            for (name, labels), points in series.items()
            if name == "inference_requests_total" and f'track="{track}"' in labels
        )
        for stage in HISTOGRAM_STAGES:
            labels = (
                f'{{service="resnet",track="{track}",stage="{stage}",'
                f'rollouts_pod_template_hash="{pod_hash}"}}'
            )
            count = np.array(
                [v for _, v in series[("inference_request_duration_seconds_count", labels)]]
            )
            inf = labels[:-1] + ',le="+Inf"}'
            bucket = np.array(
                [v for _, v in series[("inference_request_duration_seconds_bucket", inf)]]
            )
            np.testing.assert_array_equal(count, requests)
            np.testing.assert_array_equal(bucket, requests)


def test_latency_shift_changes_only_the_canary_stage_and_its_total_from_its_start() -> None:
    start = timedelta(minutes=30)
    shift = Injection(InjectionKind.LATENCY_SHIFT, start=start, magnitude=5.0, stage="inference")
    injected = replace(SMALL, injections=(shift,))
    before, after = series_of(generate(SMALL)), series_of(generate(injected))
    touched = changed(before, after)
    assert touched
    for name, labels in touched:
        assert name.startswith("inference_request_duration_seconds")
        assert 'track="canary"' in labels
        assert 'stage="inference"' in labels or 'stage="total"' in labels
        assert first_change(before, after, (name, labels)) >= (SMALL.start + start).timestamp()

    expected_before, expected_after = Expected(SMALL), Expected(injected)
    at = SMALL.start + timedelta(minutes=40)
    for q in (0.5, 0.95, 0.99):
        moved = expected_after.stage_quantile("canary", "inference", q, at) - (
            expected_before.stage_quantile("canary", "inference", q, at)
        )
        assert moved == pytest.approx(0.005, abs=1e-9)
    assert expected_after.stage_quantile("stable", "inference", 0.95, at) == (
        expected_before.stage_quantile("stable", "inference", 0.95, at)
    )
    mean_shift = expected_after.stage_mean("canary", "total", at) - expected_before.stage_mean(
        "canary", "total", at
    )
    assert mean_shift == pytest.approx(0.005, abs=1e-9)


def test_thermal_throttling_touches_one_gpu_temperature_and_clock_reasons() -> None:
    injection = Injection(
        InjectionKind.THERMAL_THROTTLING,
        start=timedelta(minutes=20),
        duration=timedelta(minutes=10),
        magnitude=20.0,
        node="gpu-node-2",
        gpu=1,
    )
    injected = replace(SMALL, injections=(injection,))
    before, after = series_of(generate(SMALL)), series_of(generate(injected))
    touched = changed(before, after)
    assert {name for name, _ in touched} == {
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    }
    assert all('gpu="1"' in labels and 'Hostname="gpu-node-2"' in labels for _, labels in touched)

    expected = Expected(injected)
    during = SMALL.start + timedelta(minutes=25)
    after_it = SMALL.start + timedelta(minutes=35)
    thermal = CLOCKS_EVENT_SW_THERMAL | CLOCKS_EVENT_HW_THERMAL
    assert expected.clock_event_reasons("gpu-node-2", 1, during) & thermal == thermal
    assert expected.clock_event_reasons("gpu-node-2", 1, after_it) & thermal == 0
    assert expected.gpu_temperature_c("gpu-node-2", 1, during) - Expected(SMALL).gpu_temperature_c(
        "gpu-node-2", 1, during
    ) == pytest.approx(20.0)


def test_util_spike_xid_and_memory_growth_hit_their_gpu() -> None:
    start = timedelta(minutes=20)
    injected = replace(
        SMALL,
        injections=(
            Injection(
                InjectionKind.UTIL_SPIKE, start=start, magnitude=30.0, node="gpu-node-1", gpu=0
            ),
            Injection(InjectionKind.XID_ERROR, start=start, node="gpu-node-1", gpu=1, code=48),
            Injection(
                InjectionKind.GPU_MEMORY_GROWTH,
                start=start,
                magnitude=10.0,
                node="gpu-node-2",
                gpu=0,
            ),
        ),
    )
    before, after = series_of(generate(SMALL)), series_of(generate(injected))
    touched = changed(before, after)
    assert all(name.startswith("DCGM_FI_DEV_") for name, _ in touched)
    assert {_gpu_of(labels) for _, labels in touched} == {
        ("gpu-node-1", "0"),
        ("gpu-node-1", "1"),
        ("gpu-node-2", "0"),
    }
    assert {name for name, labels in touched if _gpu_of(labels) == ("gpu-node-1", "1")} == {
        "DCGM_FI_DEV_XID_ERRORS"
    }

    expected, baseline = Expected(injected), Expected(SMALL)
    at = SMALL.start + timedelta(minutes=50)
    assert expected.gpu_util("gpu-node-1", 0, at) - baseline.gpu_util("gpu-node-1", 0, at) == (
        pytest.approx(30.0)
    )
    assert expected.xid("gpu-node-1", 1, at) == 48
    assert baseline.xid("gpu-node-1", 1, at) == 0
    grown = expected.gpu_memory_used_mib("gpu-node-2", 0, at) - baseline.gpu_memory_used_mib(
        "gpu-node-2", 0, at
    )
    # 30 minutes at 10 %/h of 81920 MiB
    assert grown == pytest.approx(0.05 * 81920, abs=2)


def test_error_burst_and_throughput_drop_change_the_expected_traffic() -> None:
    start = timedelta(minutes=10)
    injected = replace(
        SMALL,
        injections=(
            Injection(InjectionKind.ERROR_BURST, start=start, magnitude=0.2, code=503),
            Injection(InjectionKind.THROUGHPUT_DROP, start=start, magnitude=5.0, track="stable"),
        ),
    )
    expected, baseline = Expected(injected), Expected(SMALL)
    at = SMALL.start + timedelta(minutes=30)
    assert expected.error_ratio("canary", at) == pytest.approx(0.2 + 0.0005)
    assert expected.error_ratio("stable", at) == pytest.approx(0.001)
    assert baseline.request_rate("stable", at) - expected.request_rate("stable", at) == (
        pytest.approx(5.0)
    )
    assert expected.request_rate("canary", at, code=503) == pytest.approx(
        0.2 * expected.request_rate("canary", at)
    )


@pytest.mark.parametrize("host_label", ["Hostname", "hostname"])
def test_dcgm_series_carry_the_chosen_host_label(
    host_label: Literal["Hostname", "hostname"],
) -> None:
    scenario = replace(SMALL, host_label=host_label, include=frozenset({SeriesFamily.DCGM}))
    other = "hostname" if host_label == "Hostname" else "Hostname"
    series = series_of(generate(scenario))
    assert {name for name, _ in series} == {
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_XID_ERRORS",
        "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    }
    for _, labels in series:
        assert f'{host_label}="gpu-node-' in labels
        assert f"{other}=" not in labels
        assert 'modelName="NVIDIA A100-SXM4-80GB"' in labels
        assert 'UUID="GPU-' in labels


def test_leaving_families_out_does_not_change_the_others() -> None:
    full = series_of(generate(SMALL))
    dcgm_only = series_of(generate(replace(SMALL, include=frozenset({SeriesFamily.DCGM}))))
    assert dcgm_only
    for key, points in dcgm_only.items():
        assert full[key] == points


def test_node_exporter_instance_names_the_dcgm_host() -> None:
    series = series_of(generate(SMALL))
    instances = {
        re.search(r'instance="([^"]+)"', labels)[1]  # type: ignore[index]
        for name, labels in series
        if name.startswith("node_")
    }
    hosts = {
        re.search(r'Hostname="([^"]+)"', labels)[1]  # type: ignore[index]
        for name, labels in series
        if name.startswith("DCGM_")
    }
    assert {i.split(":")[0] for i in instances} == hosts == {"gpu-node-1", "gpu-node-2"}


def test_cpu_modes_add_up_to_wall_time() -> None:
    series = series_of(generate(SMALL))
    per_cpu: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(SMALL.steps + 1))
    for (name, labels), points in series.items():
        if name == "node_cpu_seconds_total":
            cpu = re.sub(r',?mode="[^"]+"', "", labels)
            per_cpu[cpu] = per_cpu[cpu] + np.array([v for _, v in points])
    for total in per_cpu.values():
        np.testing.assert_allclose(np.diff(total), SMALL.step.total_seconds(), atol=0.05)


def test_histogram_agrees_with_the_true_distribution() -> None:
    # Over an hour the sampled histogram's p95 (interpolated like histogram_quantile)
    # lands within a fraction of a millisecond of the true mixture quantile.
    scenario = Scenario(days=1 / 24, end=END, nodes=1, gpus_per_node=1, cpus_per_node=1)
    series = series_of(generate(scenario))
    expected = Expected(scenario)
    window = timedelta(minutes=55)
    for stage in HISTOGRAM_STAGES:
        prefix = (
            f'{{service="resnet",track="stable",stage="{stage}",'
            f'rollouts_pod_template_hash="{POD_TEMPLATE_HASHES["stable"]}",le="'
        )
        buckets = []
        for (name, labels), points in series.items():
            if name == "inference_request_duration_seconds_bucket" and labels.startswith(prefix):
                bound = float(labels[len(prefix) : -2])
                # increase over the last 55 minutes, as rate() over the window sees it
                buckets.append((bound, points[-1][1] - points[-111][1]))
        buckets.sort()
        estimate = _histogram_quantile(0.95, buckets)
        truth = expected.stage_quantile("stable", stage, 0.95, scenario.end, window=window)
        assert estimate == pytest.approx(truth, abs=0.0005), stage


def _histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' linear interpolation within the bucket holding the rank."""
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    raise AssertionError("rank beyond +Inf")


def test_gpu_utilisation_is_linear_in_traffic_per_gpu() -> None:
    scenario = Scenario(
        days=1, end=END, nodes=2, gpus_per_node=2, cpus_per_node=1, step=timedelta(minutes=5)
    )
    expected = Expected(scenario)
    times = [scenario.start + timedelta(hours=h) for h in range(1, 24)]
    per_gpu = np.array([expected.request_rate(None, t) / 4 for t in times])
    util = np.array([expected.gpu_util("gpu-node-1", 1, t) for t in times])
    slope, _ = np.polyfit(per_gpu, util, 1)
    assert slope == pytest.approx(expected.gpu_util_per_rps, rel=1e-9)


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="timezone"):
        Scenario(end=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="node"):
        Scenario(
            end=END,
            nodes=2,
            injections=(Injection(InjectionKind.XID_ERROR, start=timedelta(0), node="gpu-node-9"),),
        )
    with pytest.raises(ValueError, match="track"):
        Injection(InjectionKind.LATENCY_SHIFT, start=timedelta(0), track="blue")
    rounded = Scenario(end=datetime(2024, 1, 1, 0, 0, 47, tzinfo=UTC))
    assert rounded.end == datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert Injection("xid_error", start=timedelta(0)).kind is InjectionKind.XID_ERROR  # type: ignore[arg-type]
