"""A week of synthetic history, backfilled into a real Prometheus, queried through PromQL.

Every query spans the whole history and is held against the generator's true values,
so these tests check the generator, promtool's backfill and our reading of PromQL's
semantics (rate windows, histogram_quantile interpolation, gauge lookback) together.
"""

from __future__ import annotations

import json
import math
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from perfguard.local.binaries import MissingBinaryError
from perfguard.local.prometheus import (
    BackfillError,
    LocalPrometheus,
    PrometheusStartError,
    backfill,
)
from perfguard.synthetic import (
    CLOCKS_EVENT_HW_THERMAL,
    CLOCKS_EVENT_SW_THERMAL,
    STAGES,
    TOTAL_STAGE,
    Scenario,
    SeriesFamily,
    write_openmetrics,
)

if TYPE_CHECKING:
    from tests.integration.conftest import BackfilledPrometheus

pytestmark = pytest.mark.integration

WINDOW = timedelta(minutes=5)


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _history(p: BackfilledPrometheus, step: timedelta) -> tuple[datetime, datetime, timedelta]:
    """Query bounds covering the whole history; the first window already holds data."""
    return p.scenario.start + 2 * WINDOW, p.scenario.end, step


def test_request_rates_follow_the_generated_traffic(
    backfilled_prometheus: BackfilledPrometheus,
) -> None:
    p = backfilled_prometheus
    start, end, step = _history(p, timedelta(minutes=10))
    result = p.query_range(
        'sum by (track) (rate(inference_requests_total{service="resnet"}[5m]))', start, end, step
    )
    assert {dict(labels)["track"] for labels in result} == {"stable", "canary"}
    for labels, points in result.items():
        track = dict(labels)["track"]
        assert len(points) == (end - start) // step + 1, "the whole week must be there"
        z_scores = []
        for timestamp, value in points:
            truth = p.expected.request_rate(track, _instant(timestamp), window=WINDOW)
            # Requests in a window are Poisson: the count's sd is sqrt(expected count).
            seconds = WINDOW.total_seconds()
            z_scores.append((value - truth) * seconds / math.sqrt(truth * seconds))
            assert value == pytest.approx(truth, rel=0.03 if track == "stable" else 0.08)
        assert max(abs(z) for z in z_scores) < 5.5
        assert abs(float(np.mean(z_scores))) < 0.2, "rates are biased"


def test_p95_matches_the_true_quantile(backfilled_prometheus: BackfilledPrometheus) -> None:
    p = backfilled_prometheus
    start, end, step = _history(p, timedelta(minutes=15))
    for track, stage, tolerance in [
        ("stable", "inference", 0.001),
        ("stable", TOTAL_STAGE, 0.001),
        ("stable", "preprocess", 0.001),
        ("canary", "inference", 0.0015),
    ]:
        query = (
            "histogram_quantile(0.95, sum by (le) (rate(inference_request_duration_seconds_bucket"
            f'{{service="resnet",track="{track}",stage="{stage}"}}[5m])))'
        )
        ((_, points),) = p.query_range(query, start, end, step).items()
        assert len(points) == (end - start) // step + 1
        errors = [
            value
            - p.expected.stage_quantile(track, stage, 0.95, _instant(timestamp), window=WINDOW)
            for timestamp, value in points
        ]
        assert max(abs(e) for e in errors) < tolerance, (track, stage)
        assert abs(float(np.mean(errors))) < tolerance / 5, (track, stage)


def test_canary_regression_shows_against_stable(
    backfilled_prometheus: BackfilledPrometheus,
) -> None:
    p = backfilled_prometheus
    query = (
        "histogram_quantile(0.95, sum by (track, le) ("
        'rate(inference_request_duration_seconds_bucket{service="resnet",stage="inference"}[5m])))'
    )
    regression_start = p.scenario.start + timedelta(days=6)
    before = p.query_range(
        query, regression_start - timedelta(days=1), regression_start, timedelta(minutes=15)
    )
    after = p.query_range(query, regression_start + WINDOW, p.scenario.end, timedelta(minutes=15))

    def median_gap(result: dict[frozenset[tuple[str, str]], list[tuple[float, float]]]) -> float:
        by_track = {
            dict(labels)["track"]: np.array(points)[:, 1] for labels, points in result.items()
        }
        return float(np.median(by_track["canary"] - by_track["stable"]))

    assert abs(median_gap(before)) < 0.001
    assert median_gap(after) == pytest.approx(0.008, abs=0.001)


@pytest.mark.parametrize("timeout", ["500ms", "1500ms", "2.5s", "10s"])
def test_a_timeout_with_a_fraction_of_a_second_is_one_prometheus_takes(
    backfilled_prometheus: BackfilledPrometheus, timeout: str
) -> None:
    """`prometheus.timeout: 500ms` (the CRD's own example) went out as `timeout=0.5s`, which
    Prometheus refuses ("cannot parse "0.5s" to a valid duration"): every query failed as
    InvalidQuery."""
    import asyncio

    from perfguard.api.quantities import parse_duration
    from perfguard.sources.prometheus import PrometheusClient

    async def ask() -> int:
        async with PrometheusClient(
            backfilled_prometheus.url, timeout=parse_duration(timeout)
        ) as client:
            end = backfilled_prometheus.scenario.end
            answer = await client.query_range(
                'sum(rate(inference_requests_total{service="resnet"}[5m]))',
                end - timedelta(minutes=10),
                end,
                timedelta(seconds=30),
            )
            instant = await client.query('sum(inference_requests_total{service="resnet"})', end)
            return len(answer) + len(instant)

    assert asyncio.run(ask()) == 2


def test_mean_latency_per_stage(backfilled_prometheus: BackfilledPrometheus) -> None:
    p = backfilled_prometheus
    start, end, step = _history(p, timedelta(hours=1))
    query = (
        'sum by (stage) (rate(inference_request_duration_seconds_sum{track="stable"}[5m]))'
        ' / sum by (stage) (rate(inference_request_duration_seconds_count{track="stable"}[5m]))'
    )
    result = {
        dict(labels)["stage"]: points
        for labels, points in p.query_range(query, start, end, step).items()
    }
    assert set(result) == {*STAGES, TOTAL_STAGE}
    for stage, points in result.items():
        for timestamp, value in points:
            truth = p.expected.stage_mean("stable", stage, _instant(timestamp), window=WINDOW)
            assert value == pytest.approx(truth, rel=0.01), stage
    # The total holds the 1 ms no stage accounts for.
    unattributed = np.array(result[TOTAL_STAGE])[:, 1] - sum(
        np.array(result[s])[:, 1] for s in STAGES
    )
    assert float(np.median(unattributed)) == pytest.approx(0.001, abs=0.0002)


def test_dcgm_gauges_carry_the_host_label_and_the_generated_values(
    backfilled_prometheus: BackfilledPrometheus,
) -> None:
    p = backfilled_prometheus
    per_host = p.query("count by (Hostname) (DCGM_FI_DEV_GPU_UTIL)", p.scenario.end)
    assert per_host == {
        frozenset({("Hostname", "gpu-node-1")}): 4.0,
        frozenset({("Hostname", "gpu-node-2")}): 4.0,
    }
    assert p.query('count(DCGM_FI_DEV_GPU_UTIL{hostname!=""})', p.scenario.end) == {}

    start, end, step = _history(p, timedelta(hours=1))
    checks = {
        "DCGM_FI_DEV_GPU_UTIL": lambda node, gpu, at: p.expected.gpu_util(
            node, gpu, at, noise=True
        ),
        "DCGM_FI_DEV_FB_USED": p.expected.gpu_memory_used_mib,
        "DCGM_FI_DEV_GPU_TEMP": p.expected.gpu_temperature_c,
        "DCGM_FI_DEV_POWER_USAGE": p.expected.gpu_power_w,
    }
    for metric, truth in checks.items():
        result = p.query_range(metric, start, end, step)
        assert len(result) == 8, metric
        for labels, points in result.items():
            label = dict(labels)
            assert label["modelName"] == "NVIDIA A100-SXM4-80GB"
            assert label["UUID"] == p.expected.gpu_uuid(label["Hostname"], int(label["gpu"]))
            for timestamp, value in points:
                at = _instant(timestamp)
                assert value == truth(label["Hostname"], int(label["gpu"]), at), (metric, label, at)


def test_gpu_faults_are_where_they_were_injected(
    backfilled_prometheus: BackfilledPrometheus,
) -> None:
    p = backfilled_prometheus
    during_xid = p.scenario.start + timedelta(days=4, hours=3, minutes=15)
    xids = p.query("DCGM_FI_DEV_XID_ERRORS != 0", during_xid)
    assert [(dict(labels)["Hostname"], dict(labels)["gpu"], v) for labels, v in xids.items()] == [
        ("gpu-node-1", "3", 79.0)
    ]
    assert p.query("DCGM_FI_DEV_XID_ERRORS != 0", during_xid + timedelta(hours=1)) == {}

    during_heat = p.scenario.start + timedelta(days=5, hours=1)
    reasons = p.query(
        'DCGM_FI_DEV_CLOCKS_EVENT_REASONS{Hostname="gpu-node-2",gpu="1"}', during_heat
    )
    ((_, value),) = reasons.items()
    thermal = CLOCKS_EVENT_SW_THERMAL | CLOCKS_EVENT_HW_THERMAL
    assert int(value) & thermal == thermal
    assert int(value) == p.expected.clock_event_reasons("gpu-node-2", 1, during_heat)
    hot = p.query("max by (Hostname, gpu) (DCGM_FI_DEV_GPU_TEMP)", during_heat)
    hottest = max(hot.items(), key=lambda item: item[1])[0]
    assert dict(hottest) == {"Hostname": "gpu-node-2", "gpu": "1"}

    growth = (
        'DCGM_FI_DEV_FB_USED{{Hostname="gpu-node-1",gpu="{gpu}"}}'
        ' - DCGM_FI_DEV_FB_USED{{Hostname="gpu-node-1",gpu="{gpu}"}} offset 6h'
    )
    end, six_hours_ago = p.scenario.end, p.scenario.end - timedelta(hours=6)
    leaking = next(iter(p.query(growth.format(gpu=0), end).values()))
    healthy = next(iter(p.query(growth.format(gpu=1), end).values()))
    assert leaking == p.expected.gpu_memory_used_mib(
        "gpu-node-1", 0, end
    ) - p.expected.gpu_memory_used_mib("gpu-node-1", 0, six_hours_ago)
    # 2 %/h of 81920 MiB for 6 hours more than its neighbour, which carries the same load.
    assert leaking - healthy == pytest.approx(0.12 * 81920, rel=0.25)


def test_gpu_utilisation_fits_traffic(backfilled_prometheus: BackfilledPrometheus) -> None:
    p = backfilled_prometheus
    start, end, step = _history(p, timedelta(minutes=15))
    ((_, util),) = p.query_range("avg(DCGM_FI_DEV_GPU_UTIL)", start, end, step).items()
    ((_, traffic),) = p.query_range(
        'sum(rate(inference_requests_total{service="resnet"}[5m]))', start, end, step
    ).items()
    per_gpu = np.array(traffic)[:, 1] / 8
    slope, _ = np.polyfit(per_gpu, np.array(util)[:, 1], 1)
    assert slope == pytest.approx(p.expected.gpu_util_per_rps, rel=0.05)


def test_node_exporter_cpu_and_memory(backfilled_prometheus: BackfilledPrometheus) -> None:
    p = backfilled_prometheus
    start, end, step = _history(p, timedelta(hours=1))
    busy = p.query_range(
        '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))', start, end, step
    )
    hosts = {dict(labels)["instance"].split(":")[0] for labels in busy}
    dcgm_hosts = {dict(labels)["Hostname"] for labels in p.query("DCGM_FI_DEV_GPU_UTIL", end)}
    assert hosts == dcgm_hosts == {"gpu-node-1", "gpu-node-2"}
    for labels, points in busy.items():
        node = dict(labels)["instance"].split(":")[0]
        for timestamp, value in points:
            truth = p.expected.cpu_busy(node, _instant(timestamp), window=WINDOW)
            assert value == pytest.approx(truth, abs=0.001)

    available = p.query("node_memory_MemAvailable_bytes", end)
    for labels, value in available.items():
        node = dict(labels)["instance"].split(":")[0]
        assert value == p.expected.memory_available_bytes(node, end)
    totals = p.query("node_memory_MemTotal_bytes", end)
    assert set(totals.values()) == {float(p.expected.memory_total_bytes)}


def test_backfill_reports_what_promtool_said(tmp_path: Path) -> None:
    broken = tmp_path / "broken.om"
    broken.write_text("# TYPE up gauge\nup 1 1700000000\n")  # no `# EOF`
    with pytest.raises(BackfillError, match="EOF"):
        backfill(broken, tmp_path / "data")


def test_local_prometheus_restarts_and_reports_start_failures(tmp_path: Path) -> None:
    scenario = Scenario(
        days=1 / 24,
        nodes=1,
        gpus_per_node=1,
        cpus_per_node=1,
        include=frozenset({SeriesFamily.DCGM}),
    )
    write_openmetrics(scenario, tmp_path / "hour.om")
    backfill(tmp_path / "hour.om", tmp_path / "data")
    with LocalPrometheus(tmp_path / "data") as server:
        url = server.url
        server.restart()
        assert server.url == url
        with urllib.request.urlopen(f"{url}/api/v1/query?query=count(DCGM_FI_DEV_GPU_UTIL)") as r:
            assert json.load(r)["data"]["result"][0]["value"][1] == "1"
    assert not server.running()
    # A server that exits at once: the error carries the end of its log.
    broken = LocalPrometheus(tmp_path / "data", extra_args=("--no-such-flag",))
    with pytest.raises(PrometheusStartError, match="no-such-flag"):
        broken.start(timeout=20)
    assert not broken.running()


def test_missing_binaries_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFGUARD_PROMETHEUS_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        MissingBinaryError, match="apt-get install --no-install-recommends prometheus"
    ):
        LocalPrometheus(Path("/nonexistent")).start()
    monkeypatch.setenv("PERFGUARD_PROMTOOL_BIN", "/nonexistent/promtool")
    with pytest.raises(MissingBinaryError, match="PERFGUARD_PROMTOOL_BIN"):
        backfill(Path("/nonexistent.om"), Path("/nonexistent"))
