"""perfguard.analysis.capacity_anomalies on hand-made series and on the synthetic DCGM fleet.

The synthetic generator injects faults at known times, so every detector is checked for
silence on clean history, for finding the injection on the right GPU, and for the start it
reports. Times are compared in steps of the 5-minute grid.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pytest

from perfguard.analysis.capacity_anomalies import (
    AnomalyFinding,
    AnomalyKind,
    detect_memory_growth,
    detect_spikes,
    detect_throttling,
    detect_xid,
    with_peak_reading,
)
from perfguard.analysis.dcgm import DCGM_FP64_BLANK, DCGM_INT32_BLANK
from perfguard.synthetic import Injection, InjectionKind, Scenario
from perfguard.synthetic.gpu import GpuFleetModel
from perfguard.synthetic.model import ScenarioModel

FloatArray = npt.NDArray[np.float64]

END = datetime(2024, 11, 20, tzinfo=UTC)
STEP = timedelta(minutes=5)
STEP_S = STEP.total_seconds()
NODE, GPU = "gpu-node-2", 3
N, G = 1, 3  # its indices in the (nodes, gpus, steps) arrays


def fleet(
    days: float = 1.0, seed: int = 0, *injections: Injection
) -> tuple[FloatArray, GpuFleetModel]:
    model = ScenarioModel(
        Scenario(days=days, step=STEP, end=END, seed=seed, injections=tuple(injections))
    )
    return model.timeline.unix_s, model.gpus


def injection_time(t: FloatArray, start: timedelta) -> float:
    return float(t[0] + start.total_seconds())


def steps_between(a: float, b: float) -> float:
    return (a - b) / STEP_S


def memory_findings(t: FloatArray, gpus: GpuFleetModel, n: int, g: int) -> list[AnomalyFinding]:
    used = gpus.fb_used_mib[n, g]
    return detect_memory_growth(t, used, used + gpus.fb_free_mib[n, g], 5.0)


def grid(n: int) -> FloatArray:
    return 1_700_000_000.0 + STEP_S * np.arange(n, dtype=np.float64)


# --------------------------------------------------------------------------- spikes


def test_no_spike_on_a_clean_synthetic_week() -> None:
    t, gpus = fleet(days=7.0)
    for n in range(gpus.util.shape[0]):
        for g in range(gpus.util.shape[1]):
            assert detect_spikes(t, gpus.util[n, g], 20.0) == [], (n, g)


def test_no_spike_on_a_clean_noisy_daily_cycle() -> None:
    t = grid(7 * 288)
    rng = np.random.default_rng(4)
    util = 55.0 + 22.0 * np.sin(2 * np.pi * t / 86400.0) + rng.normal(0.0, 2.5, t.size)
    assert detect_spikes(t, np.clip(np.rint(util), 0, 100), 20.0) == []


def test_an_injected_spike_is_found_on_its_gpu_at_its_start() -> None:
    start = timedelta(hours=15, minutes=20)
    spike = Injection(
        kind=InjectionKind.UTIL_SPIKE,
        start=start,
        duration=timedelta(minutes=30),
        magnitude=30.0,
        node=NODE,
        gpu=GPU,
    )
    t, gpus = fleet(1.0, 0, spike)
    found = detect_spikes(t, gpus.util[N, G], 20.0)
    assert len(found) == 1
    finding = found[0]
    assert finding.kind is AnomalyKind.UTILIZATION_SPIKE
    assert abs(steps_between(finding.start_s, injection_time(t, start))) <= 1
    assert finding.end_s is not None
    assert finding.value > finding.reference + 20.0  # type: ignore[operator]
    assert "against the recent level" in finding.message
    for n in range(gpus.util.shape[0]):
        for g in range(gpus.util.shape[1]):
            if (n, g) != (N, G):
                assert detect_spikes(t, gpus.util[n, g], 20.0) == [], (n, g)


def test_a_level_shift_is_a_spike_starting_at_its_first_point() -> None:
    start = timedelta(hours=9)
    shift = Injection(
        kind=InjectionKind.UTIL_SPIKE, start=start, magnitude=35.0, node=NODE, gpu=GPU
    )
    t, gpus = fleet(1.0, 1, shift)
    found = detect_spikes(t, gpus.util[N, G], 20.0)
    assert len(found) == 1
    assert abs(steps_between(found[0].start_s, injection_time(t, start))) <= 1
    # It stops standing out once the trailing hour's median has moved to the new level.
    assert found[0].end_s is not None
    assert found[0].end_s - found[0].start_s <= 3600.0


def test_spike_on_a_hand_made_series() -> None:
    t = grid(100)
    util = np.full(100, 50.0)
    util[60:62] = [80.0, 75.0]
    (finding,) = detect_spikes(t, util, 20.0)
    assert finding.start_s == t[60]
    assert finding.end_s == t[61]
    assert (finding.value, finding.reference) == (80.0, 50.0)
    assert "+60 %" in finding.message


def test_spike_must_beat_the_relative_threshold() -> None:
    t = grid(100)
    util = np.full(100, 50.0)
    util[60] = 59.0  # +18 %: more than the 5-point floor, less than 20 %
    assert detect_spikes(t, util, 20.0) == []
    util[60] = 61.0
    assert len(detect_spikes(t, util, 20.0)) == 1


def test_spike_must_beat_the_absolute_floor_at_low_levels() -> None:
    t = grid(100)
    util = np.full(100, 2.0)
    util[60] = 6.0  # +200 % but only 4 points
    assert detect_spikes(t, util, 20.0) == []
    assert len(detect_spikes(t, util, 20.0, min_delta=3.0)) == 1
    util[60] = 8.0
    assert len(detect_spikes(t, util, 20.0)) == 1


def test_noise_floor_scales_with_the_series_own_jitter() -> None:
    t = grid(600)
    rng = np.random.default_rng(9)
    noisy = 1000.0 + rng.normal(0.0, 100.0, t.size)  # 10 % jitter
    noisy[400] = 1450.0  # +45 %, but only 4.5 robust SDs
    assert detect_spikes(t, noisy, 20.0, min_delta=0.0, noise_floor=None) != []
    assert detect_spikes(t, noisy, 20.0, min_delta=0.0) == []
    noisy[400] = 1700.0  # 7 SDs
    (finding,) = detect_spikes(t, noisy, 20.0, min_delta=0.0)
    assert finding.start_s == t[400]


def test_causal_noise_floor_uses_only_the_past() -> None:
    t = grid(800)
    rng = np.random.default_rng(12)
    series = 1000.0 + rng.normal(0.0, 5.0, t.size)
    series[200:] += rng.normal(0.0, 150.0, 600)  # after a calm start, very noisy
    series[150] = 1400.0  # +40 %, 80 SDs of the calm start, under 3 of the rest
    # With the whole series' spread (lots of noise later) the early jump is not special ...
    assert all(f.start_s != t[150] for f in detect_spikes(t, series, 20.0, min_delta=0.0))
    # ... judged only on what came before it, it is.
    causal = detect_spikes(t, series, 20.0, min_delta=0.0, causal=True)
    assert t[150] in [f.start_s for f in causal]


def test_direction() -> None:
    t = grid(100)
    series = np.full(100, 50.0)
    series[40] = 10.0
    series[70] = 90.0
    assert [f.start_s for f in detect_spikes(t, series, 20.0)] == [t[70]]
    assert [f.start_s for f in detect_spikes(t, series, 20.0, direction="down")] == [t[40]]
    both = detect_spikes(t, series, 20.0, direction="both")
    assert [f.start_s for f in both] == [t[40], t[70]]


def test_seasonal_check_silences_a_daily_square_wave() -> None:
    per_day = 288
    t = grid(4 * per_day)
    hour = (np.arange(t.size) % per_day) / 12.0
    wave = np.where((hour >= 8.0) & (hour < 18.0), 80.0, 20.0)
    plain = detect_spikes(t, wave, 20.0, direction="both")
    assert len(plain) == 8  # every morning up, every evening down
    seasonal = detect_spikes(t, wave, 20.0, direction="both", season_s=86400.0)
    # Only the first day, with no day before it to compare with, still alarms.
    assert [f.start_s for f in seasonal] == [t[96], t[216]]
    wave[3 * per_day + 40] = 200.0
    (late,) = [f for f in detect_spikes(t, wave, 20.0, season_s=86400.0) if f.start_s > t[300]]
    assert late.start_s == t[3 * per_day + 40]


def test_spikes_ignore_sentinels_and_bridge_one_missing_sample() -> None:
    t = grid(100)
    util = np.full(100, 50.0)
    util[30] = DCGM_FP64_BLANK
    util[50] = float(DCGM_INT32_BLANK)
    util[60:63] = [90.0, math.nan, 88.0]
    (finding,) = detect_spikes(t, util, 20.0)
    assert (finding.start_s, finding.end_s) == (t[60], t[62])


def test_spikes_on_irregular_timestamps() -> None:
    t = grid(200)
    util = np.full(200, 50.0)
    util[150] = 90.0
    keep = np.ones(200, dtype=bool)
    keep[[20, 21, 22, 100, 149]] = False  # lost scrapes: missing timestamps
    (finding,) = detect_spikes(t[keep], util[keep], 20.0)
    assert finding.start_s == t[150]
    assert finding.end_s is None or finding.end_s == t[150]


def test_an_ongoing_spike_has_no_end() -> None:
    t = grid(50)
    util = np.full(50, 50.0)
    util[-2:] = 90.0
    (finding,) = detect_spikes(t, util, 20.0)
    assert finding.start_s == t[-2]
    assert finding.end_s is None


def test_spike_parameters_are_checked() -> None:
    t = grid(10)
    with pytest.raises(ValueError):
        detect_spikes(t, np.ones(10), 0.0)
    with pytest.raises(ValueError):
        detect_spikes(t, np.ones(10), 20.0, direction="sideways")  # type: ignore[arg-type]
    assert detect_spikes(t[:1], np.ones(1), 20.0) == []


# --------------------------------------------------------------------------- memory growth


@pytest.mark.parametrize("seed", [0, 1])
def test_load_following_memory_is_not_growth(seed: int) -> None:
    t, gpus = fleet(days=7.0, seed=seed)
    for n in range(gpus.util.shape[0]):
        for g in range(gpus.util.shape[1]):
            assert memory_findings(t, gpus, n, g) == [], (n, g)


# Onsets chosen across the day: rising load, the peak, falling load. See the detector's
# docstring for why the first 2-3 steps of an 8 %/h leak cannot be placed more precisely.
@pytest.mark.parametrize(
    ("seed", "start"),
    [
        (0, timedelta(hours=6)),
        (1, timedelta(hours=10, minutes=10)),
        (2, timedelta(hours=13, minutes=30)),
        (3, timedelta(hours=2)),
    ],
)
def test_a_leak_is_found_on_its_gpu_near_its_onset(seed: int, start: timedelta) -> None:
    leak = Injection(
        kind=InjectionKind.GPU_MEMORY_GROWTH, start=start, magnitude=8.0, node=NODE, gpu=GPU
    )
    t, gpus = fleet(1.0, seed, leak)
    (finding,) = memory_findings(t, gpus, N, G)
    assert finding.kind is AnomalyKind.GPU_MEMORY_GROWTH
    assert -2 <= steps_between(finding.start_s, injection_time(t, start)) <= 3
    assert finding.value == pytest.approx(8.0, abs=1.5)
    assert finding.reference == 5.0
    assert "%/h" in finding.message
    for n in range(gpus.util.shape[0]):
        for g in range(gpus.util.shape[1]):
            if (n, g) != (N, G):
                assert memory_findings(t, gpus, n, g) == [], (n, g)


def test_utilisation_steps_are_not_memory_growth() -> None:
    injections = (
        Injection(
            kind=InjectionKind.UTIL_SPIKE,
            start=timedelta(hours=4),
            duration=timedelta(hours=2),
            magnitude=45.0,
            node=NODE,
            gpu=GPU,
        ),
        Injection(
            kind=InjectionKind.UTIL_SPIKE,
            start=timedelta(hours=15),
            magnitude=40.0,
            node=NODE,
            gpu=0,
        ),
    )
    t, gpus = fleet(1.0, 0, *injections)
    # Memory jumps by 10 points with the load, and stays there or falls back.
    assert gpus.fb_used_mib[N, G, 60] - gpus.fb_used_mib[N, G, 40] > 0.08 * 81920
    assert memory_findings(t, gpus, N, G) == []
    assert memory_findings(t, gpus, N, 0) == []


def test_a_clean_ramp_is_placed_to_the_step() -> None:
    t = grid(400)
    rng = np.random.default_rng(0)
    hours = (t - t[0]) / 3600.0
    onset = 150
    share = 40.0 + 10.0 * np.maximum(hours - hours[onset], 0.0) + rng.normal(0.0, 0.1, t.size)
    total = 81920.0
    (finding,) = detect_memory_growth(t, share / 100.0 * total, total, 5.0)
    assert abs(steps_between(finding.start_s, t[onset])) <= 1
    assert finding.value == pytest.approx(10.0, abs=0.2)
    assert finding.end_s is None  # still growing at the end of the series


def test_memory_growth_ignores_sentinels_and_gaps() -> None:
    t = grid(400)
    hours = (t - t[0]) / 3600.0
    percent = 40.0 + 10.0 * np.maximum(hours - hours[150], 0.0)
    used = percent / 100.0 * 81920.0
    free = 81920.0 - used
    used[[10, 170, 171]] = DCGM_FP64_BLANK
    free[200] = math.nan
    keep = np.ones(t.size, dtype=bool)
    keep[[50, 51, 250]] = False
    (finding,) = detect_memory_growth(t[keep], used[keep], (used + free)[keep], 5.0)
    assert abs(steps_between(finding.start_s, t[150])) <= 1


def sawtooth(t: FloatArray, period_h: float, low: float, high: float) -> FloatArray:
    """Percent used filling from ``low`` to ``high`` over each period, then released."""
    phase = ((t - t[0]) % (period_h * 3600.0)) / (period_h * 3600.0)
    return low + (high - low) * phase


@pytest.mark.parametrize(
    ("period_h", "low", "high", "net_per_hour"),
    [
        (4.0, 30.0, 60.0, 0.0),
        (3.0, 40.0, 60.0, 0.0),
        (8.0, 30.0, 78.0, 0.0),
        (4.0, 10.0, 40.0, 2.0),
    ],
)
def test_a_sawtooth_without_net_growth_above_the_threshold_is_not_a_leak(
    period_h: float, low: float, high: float, net_per_hour: float
) -> None:
    # A caching allocator filling at 6-7.5 %/h and releasing back to the same level (or one
    # rising only 2 %/h): each ramp passes the threshold, the week as a whole does not grow.
    # The ramps, less than a window apart, used to merge into one week-long ongoing leak.
    t = grid(7 * 288)
    rng = np.random.default_rng(3)
    hours = (t - t[0]) / 3600.0
    percent = sawtooth(t, period_h, low, high) + net_per_hour * hours
    percent += rng.normal(0.0, 0.3, t.size)
    assert detect_memory_growth(t, percent / 100.0 * 81920.0, 81920.0, 5.0) == []


def test_growth_under_a_sawtooth_is_one_leak_at_its_net_rate() -> None:
    # An 8 %/h leak from hour 2 with a 10-point sawtooth on top (the troughs rise): the ramps
    # are merged across the releases and the finding keeps the net rate.
    t = grid(288)
    rng = np.random.default_rng(0)
    hours = (t - t[0]) / 3600.0
    percent = 30.0 + 8.0 * np.maximum(hours - 2.0, 0.0) + sawtooth(t, 3.0, 0.0, 10.0)
    percent = np.minimum(percent, 99.0) + rng.normal(0.0, 0.3, t.size)
    (finding,) = detect_memory_growth(t, percent / 100.0 * 81920.0, 81920.0, 5.0)
    assert finding.value == pytest.approx(8.0, abs=1.0)
    assert 1.0 <= (finding.start_s - t[0]) / 3600.0 <= 4.0
    assert finding.end_s is not None and (finding.end_s - t[0]) / 3600.0 >= 8.0  # memory full


def test_slow_growth_is_below_the_threshold() -> None:
    t = grid(400)
    hours = (t - t[0]) / 3600.0
    used = (40.0 + 3.0 * hours) / 100.0 * 81920.0  # 3 %/h for 33 hours
    assert detect_memory_growth(t, used, 81920.0, 5.0) == []
    assert len(detect_memory_growth(t, used, 81920.0, 2.0)) == 1


@pytest.mark.parametrize("blank", [math.nan, float(DCGM_INT32_BLANK)], ids=["nan", "dcgm-blank"])
def test_a_series_without_a_finite_value_has_no_finding(blank: float) -> None:
    # E.g. DCGM_FI_DEV_FB_FREE "not supported" on every sample: used / (used + free) is NaN
    # throughout. Memory growth used to fail here (IndexError), and with it the whole fleet.
    t = grid(288)
    nothing = np.full(t.size, blank)
    assert detect_memory_growth(t, np.full(t.size, 30000.0), nothing, 5.0) == []
    assert detect_memory_growth(t, nothing, 81920.0, 5.0) == []
    assert detect_spikes(t, nothing, 20.0) == []
    assert detect_throttling(t, nothing) == []
    assert detect_xid(t, nothing) == []


def test_memory_growth_when_used_and_free_never_overlap() -> None:
    t = grid(288)
    used = np.full(t.size, math.nan)
    free = np.full(t.size, math.nan)
    used[:12] = 30000.0  # FB_USED only for the first hour, FB_FREE only afterwards
    free[12:] = 50000.0
    assert detect_memory_growth(t, used, used + free, 5.0) == []


def test_memory_growth_when_the_only_value_shares_its_slot_with_a_blank() -> None:
    # Irregular timestamps: a blank sample 50 s after the only valid one lands in the same
    # grid slot and overwrites it, so the grid holds no finite value either.
    t = np.sort(np.append(grid(40), grid(40)[10] + 50.0))
    used = np.full(t.size, math.nan)
    used[10] = 30000.0
    assert detect_memory_growth(t, used, 81920.0, 5.0) == []


# --------------------------------------------------------------------------- throttling


def test_thermal_throttling_from_the_generator() -> None:
    start = timedelta(hours=11, minutes=35)
    hot = Injection(
        kind=InjectionKind.THERMAL_THROTTLING,
        start=start,
        duration=timedelta(minutes=45),
        magnitude=15.0,
        node=NODE,
        gpu=GPU,
    )
    t, gpus = fleet(1.0, 0, hot)
    found = detect_throttling(t, gpus.clock_event_reasons[N, G])
    assert len(found) == 1
    finding = found[0]
    assert finding.kind is AnomalyKind.THERMAL_THROTTLING
    assert abs(steps_between(finding.start_s, injection_time(t, start))) <= 1
    assert finding.end_s is not None
    assert abs(steps_between(finding.end_s, injection_time(t, start + timedelta(minutes=40)))) <= 1
    assert finding.severity == "Critical"  # the generator sets hardware thermal (0x40)
    assert int(finding.value) == 0x60
    assert "HwThermalSlowdown" in finding.message
    assert detect_throttling(t, gpus.clock_event_reasons[N, 0]) == []


def test_power_capping_from_the_generator() -> None:
    start = timedelta(hours=14)
    capped = Injection(
        kind=InjectionKind.POWER_CAPPING,
        start=start,
        duration=timedelta(hours=1),
        magnitude=120.0,
        node=NODE,
        gpu=GPU,
    )
    t, gpus = fleet(1.0, 2, capped)
    (finding,) = detect_throttling(t, gpus.clock_event_reasons[N, G])
    assert finding.kind is AnomalyKind.POWER_CAPPING
    assert abs(steps_between(finding.start_s, injection_time(t, start))) <= 1
    assert finding.severity == "Warning"  # software power cap only
    assert int(finding.value) == 0x4


def test_throttling_episodes_merge_and_split() -> None:
    t = grid(60)
    masks = np.zeros(60)
    masks[5:8] = 0x20
    masks[9:11] = 0x20  # one clean sample between: same episode
    masks[30:32] = 0x20 | 0x40  # 20 samples later: a new one, with hardware slowdown
    masks[40] = 0x80
    masks[50] = 0x1  # idle is not throttling
    masks[55:] = 0x4
    found = detect_throttling(t, masks)
    summary = [(f.kind, f.start_s, f.end_s, f.severity) for f in found]
    assert summary == [
        (AnomalyKind.THERMAL_THROTTLING, t[5], t[10], "Warning"),
        (AnomalyKind.THERMAL_THROTTLING, t[30], t[31], "Critical"),
        (AnomalyKind.POWER_CAPPING, t[40], t[40], "Critical"),
        (AnomalyKind.POWER_CAPPING, t[55], None, "Warning"),
    ]


def test_hardware_slowdown_alone_is_critical_thermal_throttling() -> None:
    # 0x8 (HwSlowdown) is in neither the thermal nor the power bits; a GPU held at half its
    # clocks by it alone used to give no anomaly at all.
    t = grid(24)
    masks = np.zeros(24)
    masks[10:14] = 0x8 | 0x1
    (finding,) = detect_throttling(t, masks)
    assert finding.kind is AnomalyKind.THERMAL_THROTTLING
    assert (finding.start_s, finding.end_s, finding.severity) == (t[10], t[13], "Critical")
    assert int(finding.value) == 0x8
    assert finding.message.startswith("Hardware slowdown without a thermal or power reason")
    assert "HwSlowdown" in finding.message


def test_hardware_slowdown_makes_its_kind_critical() -> None:
    t = grid(40)
    masks = np.zeros(40)
    masks[5:8] = 0x20 | 0x8  # software thermal with hardware slowdown
    masks[25:28] = 0x4 | 0x8  # power cap with hardware slowdown: power, not thermal
    summary = [(f.kind, f.start_s, int(f.value), f.severity) for f in detect_throttling(t, masks)]
    assert summary == [
        (AnomalyKind.THERMAL_THROTTLING, t[5], 0x28, "Critical"),
        (AnomalyKind.POWER_CAPPING, t[25], 0xC, "Critical"),
    ]


def test_throttling_ignores_sentinels_and_missing_samples() -> None:
    t = grid(20)
    masks = np.zeros(20)
    masks[3] = DCGM_INT32_BLANK  # would have every bit set if taken at face value
    masks[4] = math.nan
    masks[10] = float(DCGM_INT32_BLANK + 2)
    assert detect_throttling(t, masks) == []
    assert detect_throttling(t, np.full(20, math.nan)) == []


# --------------------------------------------------------------------------- XID


def test_xid_from_the_generator() -> None:
    start = timedelta(hours=20, minutes=5)
    xid = Injection(
        kind=InjectionKind.XID_ERROR,
        start=start,
        duration=timedelta(minutes=30),
        code=48,
        node=NODE,
        gpu=GPU,
    )
    t, gpus = fleet(1.0, 0, xid)
    (finding,) = detect_xid(t, gpus.xid[N, G])
    assert finding.kind is AnomalyKind.XID_ERROR
    assert abs(steps_between(finding.start_s, injection_time(t, start))) <= 1
    assert finding.severity == "Critical"
    assert finding.value == 48.0
    assert "XID 48" in finding.message
    assert "Double-bit ECC" in finding.message
    assert detect_xid(t, gpus.xid[N, 0]) == []


def test_xid_default_code_is_79() -> None:
    start = timedelta(hours=3)
    t, gpus = fleet(
        1.0, 0, Injection(kind=InjectionKind.XID_ERROR, start=start, node=NODE, gpu=GPU)
    )
    (finding,) = detect_xid(t, gpus.xid[N, G])
    assert finding.value == 79.0
    assert finding.end_s is None  # the injection never ends
    assert "fallen off the bus" in finding.message


def test_xid_episodes_by_hand() -> None:
    nan = math.nan
    codes = [0, 0, 79, 79, nan, 79, 0, 0, 13, 13, DCGM_FP64_BLANK, 4242, 48]
    t = grid(len(codes))
    found = detect_xid(t, codes)
    summary = [(int(f.value), f.start_s, f.end_s, f.severity) for f in found]
    assert summary == [
        (79, t[2], t[5], "Critical"),
        (13, t[8], t[9], "Warning"),
        (4242, t[11], t[11], "Warning"),
        (48, t[12], None, "Critical"),
    ]
    assert found[2].message == "XID 4242 (Warning)"
    assert detect_xid(t, np.zeros(len(codes))) == []


def test_a_code_held_from_the_first_sample_is_not_a_new_xid() -> None:
    # The gauge keeps the last XID until the exporter restarts: a 13 there from the first
    # (valid) sample on may be months old, and used to be an ongoing XID starting there.
    t = grid(24)
    assert detect_xid(t, np.full(24, 13.0)) == []
    assert detect_xid(t, [math.nan, DCGM_FP64_BLANK] + [13.0] * 22) == []
    codes = np.full(24, 13.0)
    codes[10:] = 48.0  # a new XID replaces the old code
    codes[16:18] = 0.0  # the exporter restarted
    codes[18:] = 13.0  # and the old code is reported again: new
    found = detect_xid(t, codes)
    assert [(int(f.value), f.start_s, f.end_s) for f in found] == [
        (48, t[10], t[15]),
        (13, t[18], None),
    ]


def test_a_series_that_begins_later_with_a_code_is_a_new_xid() -> None:
    # A node (or exporter) that appears 16 h into a day's history: its first reading is news.
    t = np.arange(0.0, 24 * 3600.0 + 1.0, 300.0)
    codes = np.full(t.size, math.nan)
    codes[t >= 16 * 3600.0] = 79.0
    found = detect_xid(t, codes)
    assert [(int(f.value), f.start_s) for f in found] == [(79, 16 * 3600.0)]


def _episode(kind: AnomalyKind, start_s: float, end_s: float | None) -> AnomalyFinding:
    return AnomalyFinding(kind, start_s, end_s, "Warning", 96.0, None, "Throttling (mask 0x20)")


def test_peak_reading_is_the_highest_inside_the_episode() -> None:
    times = np.arange(0.0, 600.0, 60.0)  # 0, 60, ..., 540
    temps = np.array([70, 99, 80, 85, 91, 88, 60, 98, 97, 96], dtype=np.float64)
    thermal = _episode(AnomalyKind.THERMAL_THROTTLING, 120.0, 300.0)  # samples 2..5
    assert with_peak_reading(thermal, times, temps).message == (
        "Throttling (mask 0x20); temperature up to 91 °C"
    )
    ongoing = _episode(AnomalyKind.THERMAL_THROTTLING, 300.0, None)  # samples 5..9
    assert with_peak_reading(ongoing, times, temps).message.endswith("up to 98 °C")
    power = _episode(AnomalyKind.POWER_CAPPING, 0.0, 0.0)
    assert with_peak_reading(power, times, temps * 2).message.endswith("power draw up to 140 W")


def test_no_reading_inside_the_episode_or_another_kind_changes_nothing() -> None:
    times = np.arange(0.0, 600.0, 60.0)
    temps = np.full(times.size, 80.0)
    temps[3:6] = DCGM_FP64_BLANK  # sentinels only inside the episode
    thermal = _episode(AnomalyKind.THERMAL_THROTTLING, 180.0, 300.0)
    assert with_peak_reading(thermal, times, temps) == thermal
    spike = _episode(AnomalyKind.UTILIZATION_SPIKE, 0.0, None)
    assert with_peak_reading(spike, times, np.full(times.size, 80.0)) == spike
    later = _episode(AnomalyKind.POWER_CAPPING, 1000.0, None)
    assert with_peak_reading(later, times, temps) == later


def test_an_episode_whose_series_stopped_is_not_ongoing() -> None:
    """The clock-event, XID, utilisation or memory series vanishes (exporter reconfigured,
    metric dropped) while the rest of the history goes on: the last PRESENT sample is not
    "now". Before, each of these episodes stayed ongoing (no end) for ever."""
    t = grid(288)  # a day of 5-minute steps
    stopped = "its series stopped reporting 12.3 h before the end of the history"

    clocks = np.zeros(t.size)
    clocks[100:140] = 0x20
    clocks[140:] = np.nan  # gone 12.3 h before the end of the grid
    (thermal,) = detect_throttling(t, clocks)
    assert thermal.end_s == t[139]
    assert stopped in thermal.message

    codes = np.zeros(t.size)
    codes[130:140] = 43
    codes[140:] = np.nan
    (xid,) = detect_xid(t, codes)
    assert (xid.start_s, xid.end_s) == (t[130], t[139])
    assert stopped in xid.message

    util = np.full(t.size, 50.0)
    util[135:140] = 90.0
    util[140:] = np.nan
    (spike,) = detect_spikes(t, util, 20.0)
    assert (spike.start_s, spike.end_s) == (t[135], t[139])
    assert stopped in spike.message

    total = 81920.0
    share = 40.0 + 10.0 * np.maximum((t - t[80]) / 3600.0, 0.0)
    used = share / 100.0 * total
    used[140:] = np.nan
    (growth,) = detect_memory_growth(t, used, total, 5.0)
    assert growth.end_s == t[139]
    assert stopped in growth.message and "full in about" not in growth.message


def test_a_missed_scrape_or_two_at_the_end_is_still_ongoing() -> None:
    t = grid(288)
    clocks = np.zeros(t.size)
    clocks[-20:] = 0x40
    clocks[-3:] = np.nan  # 15 minutes without a sample: not yet stopped
    (thermal,) = detect_throttling(t, clocks)
    assert thermal.end_s is None and "stopped" not in thermal.message
    codes = np.zeros(t.size)
    codes[-20:] = 79
    codes[-3:] = np.nan
    (xid,) = detect_xid(t, codes)
    assert xid.end_s is None
