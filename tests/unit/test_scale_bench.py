"""The operator-scale and time-to-detect harnesses, without servers: their arithmetic,
parsing and rendering on inputs with known answers (the figures come from `make bench`)."""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest
from bench import operator_scale, time_to_detect
from bench.operator_scale import OperatorScaleResult, SizeResult, misses, operator_scale_section
from bench.scale_support import (
    evaluation_lags,
    histogram_quantile_bound,
    lags_due_after,
    markdown_table,
    parse_metrics,
    percentile,
    proc_cpu_seconds,
    proc_memory_mib,
    profile_tables,
    restart_lags,
    save_json,
    total,
)
from bench.time_to_detect import (
    Detection,
    ReplayRow,
    TimeToDetectResult,
    TraceRow,
    holds,
    summary,
    time_to_detect_section,
)

from perfguard.api.perfbaseline import Comparison, PerfBaselineSpec


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 40.0], 99) == 40.0  # a small sample's p99 is its max
    assert math.isnan(percentile([], 50))


def test_lags_are_gaps_minus_the_interval_split_at_the_first_evaluation() -> None:
    starts = {"a": [0.0, 61.0, 122.0, 185.0, 185.0], "b": [5.0, 65.0]}
    lags = evaluation_lags(starts, 60.0, since=0.0, until=200.0)
    assert sorted(lags.first) == [0.0, 1.0]  # a: 61 - 0 - 60, b: 65 - 5 - 60
    assert sorted(lags.steady) == [1.0, 3.0]  # duplicates of one start count once
    later = evaluation_lags(starts, 60.0, since=100.0, until=200.0)
    assert later.first == () and sorted(later.steady) == [1.0, 3.0]
    assert evaluation_lags(starts, 60.0, since=130.0, until=180.0).steady == ()


def test_restart_lags_start_at_the_first_gap_after_the_stop() -> None:
    """The old operator's /metrics and the status stamp may both be known before the
    stop: the gap spanning it is `first` however many starts came before."""
    starts = {"a": [10.0, 70.0, 135.0, 195.0], "b": [50.0, 112.0]}
    lags = restart_lags(starts, 60.0, stopped_at=100.0, until=200.0)
    assert sorted(lags.first) == [2.0, 5.0]  # b: 112 - 50 - 60; a: 135 - 70 - 60
    assert lags.steady == (0.0,)  # a: 195 - 135 - 60
    # Came due after the new operator's first evaluation (112): a's 130 and 195; b's 110 not.
    assert sorted(lags_due_after(starts, 60.0, 100.0, 200.0, at=112.0)) == [0.0, 5.0]


def test_exposition_parsing_keeps_only_the_named_series() -> None:
    text = "\n".join(
        [
            "# HELP perfguard_evaluations_total Evaluations by outcome.",
            "# TYPE perfguard_evaluations_total counter",
            'perfguard_evaluations_total{kind="PerfBaseline",outcome="ok"} 1234.0',
            'perfguard_evaluations_total{kind="PerfBaseline",outcome="error"} 2.0',
            'perfguard_evaluations_created{kind="PerfBaseline",outcome="ok"} 1.7e9',
            'perfguard_last_evaluation_timestamp_seconds{kind="PerfBaseline",'
            'namespace="ns",name="we\\"ird"} 1.7000001e+09',
            "process_cpu_seconds_total 12.5",
        ]
    )
    samples = parse_metrics(
        text, ["perfguard_evaluations_total", "perfguard_last_evaluation_timestamp_seconds"]
    )
    assert len(samples) == 3
    assert total(samples, "perfguard_evaluations_total") == 1236.0
    assert total(samples, "perfguard_evaluations_total", outcome="ok") == 1234.0
    stamp = next(s for s in samples if s.name.startswith("perfguard_last"))
    assert stamp.labels["name"] == 'we"ird' and stamp.value == pytest.approx(1.7000001e9)


def test_histogram_bound_is_the_bucket_holding_the_quantile() -> None:
    buckets = {0.1: 5.0, 0.5: 9.0, 1.0: 10.0, math.inf: 10.0}
    assert histogram_quantile_bound(buckets, 0.5) == 0.1
    assert histogram_quantile_bound(buckets, 0.9) == 0.5
    assert histogram_quantile_bound(buckets, 0.99) == 1.0
    assert histogram_quantile_bound({0.1: 1.0, math.inf: 10.0}, 0.5) == math.inf
    assert math.isnan(histogram_quantile_bound({0.1: 0.0, math.inf: 0.0}, 0.5))


def test_proc_readers_see_this_process() -> None:
    assert proc_cpu_seconds(os.getpid()) > 0
    rss, peak = proc_memory_mib(os.getpid())
    assert 0 < rss <= peak


def test_the_benchmarked_resources_are_valid_perfbaselines() -> None:
    body = operator_scale.perfbaseline("pb-0001", "ns", "scale-0", 60)
    spec = PerfBaselineSpec.model_validate(body["spec"])
    assert len(spec.metrics) == operator_scale.METRICS
    assert spec.comparison == Comparison.CONCURRENT
    assert spec.analysis.interval.total_seconds() == 60
    for config in (*time_to_detect.LIVE, *time_to_detect.REPLAY, *time_to_detect.QUICK_LIVE):
        spec = PerfBaselineSpec.model_validate(
            time_to_detect.perfbaseline("x", "ns", "ttd-0", config)["spec"]
        )
        assert spec.analysis.window.total_seconds() == config.window_s
        assert spec.analysis.sustain_for.total_seconds() == config.sustain_s
        # at least the 10 samples a verdict needs
        assert config.window_s / config.step_s + 1 >= 10
    a = time_to_detect.LIVE[0]
    assert (a.interval_s, a.sustain_s, a.target_s) == (60, 180, 300)
    assert a.give_up_s == 540  # window + sustainFor + 3 intervals > target + 3 min
    assert time_to_detect.LIVE[1].give_up_s == 75 + 180
    assert time_to_detect.REPLAY[-1].give_up_s == 600 + 180 + 180


def _size(
    size: int,
    lags: tuple[float, ...],
    rss: float = 200.0,
    restart: tuple[float, ...] = (1.0,) * 10,
) -> SizeResult:
    return SizeResult(
        size=size,
        create_s=1.0,
        startup_s=12.0,
        evaluated_once=size,
        window_s=120.0,
        evaluations=2 * size,
        errors=0,
        operator_cpu_s=0.05 * 2 * size,
        peak_rss_mib=rss,
        end_rss_mib=rss - 10,
        status_patches=2 * size,
        patch_causes=(("news", 2 * size - 1), ("refresh", 1)),
        prometheus_requests=10 * size,
        prometheus_query_s=0.04 * 2 * size,
        prometheus_queue_s=0.0,
        prometheus_http_s=0.05 * 2 * size,
        prometheus_cpu_s=0.1 * 2 * size,
        api_requests=2 * size,
        api_breakdown=(("PATCH perfbaselines/status", 2 * size),),
        apiserver_cpu_s=3.0,
        etcd_cpu_s=1.0,
        lag_steady=lags,
        lag_first=(0.0, 1.0),
        duration_p50_bound_s=0.1,
        duration_p99_bound_s=math.inf,
        verdicts=(("Pass", size),),
        scrapes=12,
        scrape_wall_s=0.6,
        load_end=(2.0, 2.0, 2.0),
        object_kib=7.5,
        restart_lag_first=restart,
        restart_lag_steady=(0.0,) * 10,
        restart_window_s=120.0,
        restart_down_s=2.0,
        restart_evaluated=size,
        restart_first_evaluation_s=6.0,
        restart_lag_due_after=(0.0, 1.0),
    )


def test_scale_figures_targets_and_section(tmp_path: Path) -> None:
    fine = _size(100, tuple(float(v % 3) for v in range(200)))
    assert fine.cpu_ms_per_evaluation == pytest.approx(50.0)
    assert fine.cpu_cores == pytest.approx(10 / 120)
    assert fine.prometheus_rps == pytest.approx(1000 / 120)
    assert fine.evaluations_per_s == pytest.approx(200 / 120)
    assert fine.lag_p50_s == 1.0 and fine.lag_p99_s == 2.0 and fine.lag_max_s == 2.0
    late = dataclasses.replace(
        _size(1000, (*[1.0] * 98, 12.0, 30.0), rss=640.0, restart=(2.0,) * 80 + (15.0,) * 10),
        inconclusive_messages=(("latency p95: interval [#, #] ms straddles #ms", 7),),
    )
    assert late.lag_p99_s == 12.0
    assert late.restart_lag_p99_s == 15.0 and fine.restart_lag_p99_s == 1.0
    result = OperatorScaleResult(
        sizes=(fine, late),
        interval_s=60.0,
        window_intervals=2.0,
        services=4,
        machine="2 cores (test)",
        load_before=(1.0, 1.0, 1.0),
        setup_s=20.0,
        wall_s=600.0,
        command="python -m bench.operator_scale --sizes 100,1000",
        scrape_every_s=10.0,
    )
    assert misses(fine) == []
    missed = misses(late)
    assert any("lag p99 12.0 s" in m for m in missed)
    assert any("peak RSS 640 MiB" in m for m in missed)
    assert any("lag p99 after a restart 15.0 s" in m for m in missed)
    partial = dataclasses.replace(fine, restart_evaluated=50)
    assert misses(partial) == [
        "after a restart only 50 of 100 resources were evaluated in the window"
    ]
    section = operator_scale_section(result)
    assert section.startswith("## Operator scale")
    assert "| 100 PB | 1,000 PB |" in section
    assert "50 ms" in section  # CPU per evaluation
    assert "1.0 s / 12.0 s" in section  # lag p50 / p99 at 1,000
    assert "≤ 0.1 s / > 10 s" in section  # evaluation wall time from the histogram
    assert "| 1.0 s; 2 (6.0 s) |" in section  # restart: due after the new first evaluation
    assert "- 100: every target holds" in section
    assert "- 1,000: misses lag p99 12.0 s" in section
    assert "PATCH perfbaselines/status 16.67/s" in section
    assert "| 7.5 KiB | 7.5 KiB |" in section
    assert "| 200 / 200 (1.00); news 199, refresh 1 |" in section  # patches by cause
    assert "| – | 7 × “latency p95: interval [#, #] ms straddles #ms” |" in section
    assert (
        "| after a restart: lag p50 / p99; gaps counted | 0.0 s / 1.0 s; 20 | 2.0 s / 15.0 s; 100 |"
        in section
    )
    assert "`python -m bench.operator_scale --sizes 100,1000`" in section
    saved = tmp_path / "scale.json"
    save_json(result, saved)
    assert operator_scale.load_result(saved) == result


def test_services_are_staggered_within_each_shift() -> None:
    services = time_to_detect.plan_services(1000.0, 3, (10.0, 25.0))
    assert [s.name for s in services] == [f"ttd-{i}" for i in range(6)]
    assert [s.injected_at for s in services] == [1000.0, 1010.0, 1020.0] * 2
    assert [s.magnitude_ms for s in services] == [10.0] * 3 + [25.0] * 3
    assert len({s.seed for s in services}) == 6


def test_time_to_detect_summary_and_section(tmp_path: Path) -> None:
    assert summary([240.0, None, 300.0, 420.0]) == (300.0, 420.0, 1)
    assert holds([240.0, 300.0], 300.0) and not holds([240.0, 301.0], 300.0)
    assert not holds([240.0, None], 300.0) and not holds([], 300.0)
    config = time_to_detect.LIVE[0]
    detections = tuple(
        Detection(
            config="a",
            name=f"a-{i}",
            service=f"ttd-{i}",
            magnitude_ms=10.0,
            injected_at=1.7e9,
            verdict_before="Pass",
            breach_s=float(180 + 10 * i),
            fail_s=float(360 + 10 * i),
            fail_seen_s=float(361 + 10 * i),
            event_s=float(361 + 10 * i),
        )
        for i in range(3)
    )
    replay = ReplayRow(time_to_detect.REPLAY[-1], 10.0, (780.0, 790.0, None), (600.0, 610.0, None))
    result = TimeToDetectResult(
        live=(config,),
        detections=detections,
        replay=(replay,),
        trace=(TraceRow(0.0, 44.0, 44.5, -0.5, (-1.0, 0.2), "Pass → Pass"),),
        trace_config=time_to_detect.REPLAY[-1],
        services=3,
        magnitudes_ms=(10.0,),
        run_s=420.0,
        wall_s=480.0,
        machine="2 cores (test)",
        load_before=(1.0, 1.0, 1.0),
        command="python -m bench.time_to_detect",
    )
    section = time_to_detect_section(result)
    assert section.startswith("## Time to detect")
    assert "| 300 s |" in section  # the target: 3m + 2 × 1m
    assert "370 s / 380 s" in section  # to Fail: median / max
    assert "371 s / 381 s" in section  # to Event
    assert "**no**" in section
    assert "780 s, 790 s, missed" in section and "(1 missed)" in section
    assert "| +0 | 44.0 | 44.5 | -0.5 | – | -0.5 | [-1.0, 0.2] | Pass → Pass |" in section
    assert "Fail a median 370 s after it (worst 380 s; target 300 s)" in section
    saved = tmp_path / "ttd.json"
    save_json(result, saved)
    assert time_to_detect.load_result(saved) == result


def test_profile_tables_group_own_time_by_area(tmp_path: Path) -> None:
    import cProfile
    import json

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(300):
        json.loads(json.dumps({"a": list(range(200))}))
    profiler.disable()
    profiler.dump_stats(tmp_path / "p.prof")
    areas, table, busy = profile_tables(tmp_path / "p.prof", limit=5)
    assert busy > 0
    assert areas.startswith("| area | own s | share |")
    assert "| JSON |" in areas
    assert table.count("\n") == 6  # header, rule, five functions


def test_markdown_table_shape() -> None:
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_renice_reaches_every_thread() -> None:
    import subprocess
    import sys

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import threading, time\n"
            "for _ in range(3):\n"
            "    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
            "print('up', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        assert operator_scale.renice(child.pid, 7) == 4
        tasks = list(Path(f"/proc/{child.pid}/task").iterdir())
        # Field 19 of /proc/.../stat is the niceness (after the parenthesised command).
        nices = {int(t.joinpath("stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks}
        assert nices == {7}
    finally:
        child.kill()
        child.wait()


def test_messages_are_counted_with_their_numbers_masked() -> None:
    assert operator_scale.masked_message("p95 +3.25 ms in [0.5, 6] of 10 samples") == (
        "p# +# ms in [#, #] of # samples"
    )
    assert operator_scale.masked_message(None) == "none"
    assert operator_scale.masked_message("x" * 300, limit=10) == "x" * 9 + "…"
