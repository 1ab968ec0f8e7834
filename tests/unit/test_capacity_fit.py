"""perfguard.analysis.capacity_fit: the robust line, projections and recommendations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from perfguard.analysis.capacity_fit import (
    MAX_PAIRS,
    MIN_FIT_POINTS,
    MIN_TRAFFIC_SPREAD,
    LinearFit,
    assess,
    headroom_traffic,
    peak_traffic,
    project,
    reaches,
    sustained_since,
    theil_sen,
    time_to_threshold,
    traffic_spread,
    units_to_add,
    why_not_projected,
)
from perfguard.api.capacityplan import Assessment

STEP = 300.0
DAY = 86400.0


def fit_of(slope: float, intercept: float) -> LinearFit:
    return LinearFit(slope, intercept, 100, 0.0, 1.0, 4950)


# --------------------------------------------------------------------------- Theil-Sen


def test_exact_line_is_recovered_exactly() -> None:
    rng = np.random.default_rng(1)
    traffic = rng.uniform(80.0, 320.0, 500)
    util = 3.0 + 0.25 * traffic
    fit = theil_sen(traffic, util)
    assert fit is not None
    assert fit.slope == pytest.approx(0.25, abs=1e-12)
    assert fit.intercept == pytest.approx(3.0, abs=1e-9)
    assert fit.residual_scale == pytest.approx(0.0, abs=1e-9)
    assert fit.robust_r2 == pytest.approx(1.0)
    assert fit.n == 500
    assert fit.pairs == 500 * 499 // 2
    assert project(fit, 400.0) == pytest.approx(103.0)


def test_outliers_tilt_least_squares_but_not_theil_sen() -> None:
    rng = np.random.default_rng(7)
    traffic = rng.uniform(50.0, 250.0, 400)
    util = 5.0 + 0.2 * traffic + rng.normal(0.0, 1.0, traffic.size)
    # A batch job pushed the busiest fifth of the hours up by 35 points.
    busy = traffic > np.quantile(traffic, 0.8)
    util[busy] += 35.0
    fit = theil_sen(traffic, util)
    assert fit is not None
    least_squares_slope = float(np.polyfit(traffic, util, 1)[0])
    assert abs(fit.slope - 0.2) < 0.03
    assert abs(least_squares_slope - 0.2) > 0.08
    # The scatter of the clean hours, inflated a little by the contamination, not by 35.
    assert 0.8 < fit.residual_scale < 2.5


def test_slope_matches_scipy_with_all_pairs() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 100.0, 300)
    y = 2.0 - 0.7 * x + rng.standard_t(2, x.size) * 3.0
    x[::10] = np.round(x[::10])  # some ties in x: those pairs must be skipped
    x[1::10] = x[::10]
    fit = theil_sen(x, y)
    assert fit is not None
    reference = stats.theilslopes(y, x, method="joint")
    assert fit.slope == pytest.approx(reference.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(reference.intercept, rel=1e-12)


def test_long_history_subsamples_pairs_deterministically_and_accurately() -> None:
    rng = np.random.default_rng(5)
    n = 2016  # 7 days at 5 minutes: 2.03 M pairs
    x = rng.uniform(50.0, 300.0, n)
    y = 4.0 + 0.3 * x + rng.normal(0.0, 4.0, n)
    fit = theil_sen(x, y)
    again = theil_sen(x, y)
    assert fit is not None
    assert fit == again
    assert fit.pairs <= MAX_PAIRS
    assert fit.pairs > 0.99 * MAX_PAIRS
    full = stats.theilslopes(y, x).slope
    # The subsample's median is within a small fraction of the full median's own error.
    assert fit.slope == pytest.approx(full, abs=0.002)


def test_nan_pairs_are_dropped() -> None:
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 10.0, 60)
    y = 1.0 + 2.0 * x + rng.normal(0.0, 0.1, 60)
    clean = theil_sen(x, y)
    x_gappy, y_gappy = x.copy(), y.copy()
    x_gappy[5] = np.nan
    y_gappy[17] = np.inf
    y_gappy[30] = np.nan
    keep = np.ones(60, dtype=bool)
    keep[[5, 17, 30]] = False
    gappy = theil_sen(x_gappy, y_gappy)
    assert gappy is not None
    assert clean is not None
    assert gappy.n == 57
    assert gappy == theil_sen(x[keep], y[keep])


def test_no_fit_without_enough_points_or_spread() -> None:
    x = np.arange(MIN_FIT_POINTS, dtype=float)
    assert theil_sen(x[:-1], 2.0 * x[:-1]) is None
    assert theil_sen(x, 2.0 * x) is not None
    assert theil_sen(np.full(50, 120.0), np.arange(50.0)) is None
    with_nans = np.where(np.arange(20) % 2 == 0, np.nan, np.arange(20.0))
    assert theil_sen(with_nans, np.arange(20.0)) is None  # 10 finite pairs


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="same length"):
        theil_sen(np.arange(20.0), np.arange(21.0))


def test_robust_r2_is_low_when_traffic_explains_nothing() -> None:
    rng = np.random.default_rng(2)
    fit = theil_sen(rng.uniform(0, 100, 200), rng.normal(50, 5, 200))
    assert fit is not None
    assert fit.robust_r2 is not None
    assert fit.robust_r2 < 0.2
    flat = theil_sen(np.arange(30.0), np.full(30, 7.0))
    assert flat is not None
    assert flat.robust_r2 is None


# --------------------------------------------------------------------------- projection


def test_traffic_spread_is_the_p5_to_p95_range_over_the_median() -> None:
    assert traffic_spread(np.linspace(50.0, 150.0, 1001)) == pytest.approx(0.9)
    assert traffic_spread([np.nan, 3.0, 3.0, 3.0]) == 0.0
    assert traffic_spread([np.nan]) is None
    assert traffic_spread([0.0, 0.0, 0.0]) is None


def daily_traffic(n: int = 288) -> np.ndarray:
    return 100.0 + 40.0 * np.sin(2 * np.pi * np.arange(n) / n)


NO_RECENT: dict[str, np.ndarray] = {"recent_traffic": np.empty(0), "recent_load": np.empty(0)}


def test_a_line_over_traffic_that_hardly_varied_is_not_projected() -> None:
    rng = np.random.default_rng(1)
    traffic = 100.0 + rng.normal(0.0, 0.3, 288)  # a 1 % range
    util = 70.0 + rng.normal(0.0, 5.0, 288)
    fit = theil_sen(traffic, util)
    assert fit is not None
    why = why_not_projected(fit, traffic, 120.0, units=1, **NO_RECENT)
    assert why is not None
    spread = traffic_spread(traffic)
    assert spread is not None and spread < 0.011
    assert why.startswith(f"traffic varied by only {100 * spread:.1f} % of its median")
    assert f"needs {100 * MIN_TRAFFIC_SPREAD:g} %" in why


def test_a_line_that_explains_little_is_not_projected_unless_it_is_flat() -> None:
    rng = np.random.default_rng(4)
    traffic = daily_traffic()
    # Utilisation follows traffic weakly under a lot of noise: robust R² about 0.3, and the
    # line moves the projection by more than its scatter.
    weak = 20.0 + 0.3 * traffic + rng.normal(0.0, 12.0, traffic.size)
    fit = theil_sen(traffic, weak)
    assert fit is not None and fit.robust_r2 is not None and fit.robust_r2 < 0.5
    why = why_not_projected(fit, traffic, 168.0, units=4, **NO_RECENT)
    assert why is not None and why.startswith("traffic explains too little of utilisation")
    assert f"robust R² {fit.robust_r2:.2f}, need 0.5" in why
    # Independent of traffic (node memory, say): R² about 0, but the line is flat, so the
    # projection says "stays near its level", which the history supports.
    flat = 40.0 + rng.normal(0.0, 1.0, traffic.size)
    fit = theil_sen(traffic, flat)
    assert fit is not None and fit.robust_r2 is not None and fit.robust_r2 < 0.2
    assert why_not_projected(fit, traffic, 168.0, units=4, **NO_RECENT) is None
    # Explained: projected.
    fit = theil_sen(traffic, 5.0 + 0.5 * traffic + rng.normal(0.0, 1.0, traffic.size))
    assert fit is not None
    assert why_not_projected(fit, traffic, 168.0, units=4, **NO_RECENT) is None


def test_a_line_that_does_not_match_the_load_now_is_not_projected() -> None:
    rng = np.random.default_rng(5)
    traffic = daily_traffic(7 * 288)
    load = 1.2 * traffic + rng.normal(0.0, 2.0, traffic.size)
    fit = theil_sen(traffic, load)
    assert fit is not None
    recent = traffic[-3:]
    # The same work now: projected.
    same = {"recent_traffic": recent, "recent_load": 1.2 * recent}
    assert why_not_projected(fit, traffic, 168.0, units=4, **same) is None
    # Twice the load per request now (half the GPUs, the others' series gone): refused.
    doubled = {"recent_traffic": recent, "recent_load": 2.4 * recent}
    why = why_not_projected(fit, traffic, 168.0, units=4, **doubled)
    assert why is not None
    measured = 2.4 * recent.mean() / 4
    on_line = (fit.intercept + fit.slope * recent.mean()) / 4  # about 1.2 * traffic / 4
    assert why.startswith(
        f"the line does not match the load now ({measured:.1f} % per unit measured, "
        f"{on_line:.1f} % on the line at this traffic)"
    )
    # A gap within 10 % of the line is noise or a small change: projected.
    close = {"recent_traffic": recent, "recent_load": 1.3 * recent}
    assert why_not_projected(fit, traffic, 168.0, units=4, **close) is None


def test_peak_traffic_is_a_quantile_of_the_finite_samples() -> None:
    series = np.concatenate([np.arange(1.0, 101.0), [np.nan, np.inf]])
    assert peak_traffic(series) == pytest.approx(np.quantile(np.arange(1.0, 101.0), 0.95))
    assert peak_traffic(series, q=1.0) == 100.0
    assert peak_traffic([np.nan, np.nan]) is None
    with pytest.raises(ValueError):
        peak_traffic(series, q=0.0)


@pytest.mark.parametrize(
    ("projected", "expected"),
    [
        (0.0, Assessment.WITHIN_CAPACITY),
        (84.99, Assessment.WITHIN_CAPACITY),
        (85.0, Assessment.NEAR_LIMIT),
        (89.99, Assessment.NEAR_LIMIT),
        (90.0, Assessment.OVER_CAPACITY),
        (250.0, Assessment.OVER_CAPACITY),
        (math.nan, Assessment.UNVERIFIED),
    ],
)
def test_assess_boundaries(projected: float, expected: Assessment) -> None:
    assert assess(projected, 90.0) is expected


def test_assess_with_another_margin() -> None:
    assert assess(79.0, 90.0, near_margin=10.0) is Assessment.WITHIN_CAPACITY
    assert assess(80.0, 90.0, near_margin=10.0) is Assessment.NEAR_LIMIT
    assert assess(80.0, 90.0, near_margin=0.0) is Assessment.WITHIN_CAPACITY


@pytest.mark.parametrize(
    ("util", "threshold", "units", "expected"),
    [
        (50.0, 90.0, 4, 0),  # well below: nothing to add
        (89.99, 90.0, 10, 0),  # just below: nothing to add
        (90.0, 90.0, 10, 1),  # exactly at the threshold is over capacity (assess): 900 / 11
        (95.0, 90.0, 32, 2),  # 95*32 = 3040; /33 = 92.1 > 90, /34 = 89.4 < 90
        (99.0, 90.0, 10, 2),  # 990 / 11 = 90.0 exactly is still at it: 990 / 12 = 82.5
        (180.0, 90.0, 4, 5),  # twice the threshold: 720 / 8 = 90 is at it, 720 / 9 = 80
        (91.0, 90.0, 1, 1),  # 91 / 2 = 45.5
        (100.0, 80.0, 3, 1),  # 300 / 4 = 75
        (120.0, 50.0, 8, 12),  # 960 / 20 = 48, 960 / 19 = 50.5
    ],
)
def test_units_to_add_by_hand(util: float, threshold: float, units: int, expected: int) -> None:
    assert units_to_add(util, threshold, units) == expected


def test_units_to_add_is_the_smallest_sufficient_count() -> None:
    for util in np.linspace(1.0, 300.0, 97):
        for units in (1, 2, 7, 32, 512):
            k = units_to_add(float(util), 85.0, units)
            assert not reaches(util * units / (units + k), 85.0)
            if k > 0:
                assert reaches(util * units / (units + k - 1), 85.0)


@pytest.mark.parametrize("threshold", [80.0, 85.0, 90.0, 0.09, 77.7])
@pytest.mark.parametrize("units", [1, 3, 4, 10, 33])
def test_at_the_threshold_assessment_and_units_to_add_agree(threshold: float, units: int) -> None:
    # One rule (`reaches`): a projection exactly at the threshold, or a float's last bit
    # above it, is OverCapacity and needs at least one unit; just below needs none.
    for projected in (threshold, threshold * (1 + 3e-11), math.nextafter(threshold, math.inf)):
        assert assess(projected, threshold) is Assessment.OVER_CAPACITY
        assert units_to_add(projected, threshold, units) >= 1
    below = math.nextafter(threshold, 0.0)
    assert assess(below, threshold) is not Assessment.OVER_CAPACITY
    assert units_to_add(below, threshold, units) == 0


def test_units_to_add_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="threshold"):
        units_to_add(95.0, 0.0, 4)
    with pytest.raises(ValueError, match="threshold"):
        units_to_add(95.0, -5.0, 4)
    with pytest.raises(ValueError, match="units"):
        units_to_add(95.0, 90.0, 0)
    with pytest.raises(ValueError, match="finite"):
        units_to_add(math.nan, 90.0, 4)


def test_headroom_traffic_known_answer() -> None:
    fit = fit_of(slope=0.25, intercept=5.0)  # reaches 90 % at 340 req/s
    assert headroom_traffic(fit, 90.0, current_peak=300.0) == pytest.approx(40.0)
    assert headroom_traffic(fit, 90.0, current_peak=400.0) == pytest.approx(-60.0)
    assert headroom_traffic(fit_of(0.0, 50.0), 90.0, 300.0) is None
    assert headroom_traffic(fit_of(-0.1, 80.0), 90.0, 300.0) is None


# --------------------------------------------------------------------------- time to threshold


def week() -> np.ndarray:
    return np.arange(0.0, 7 * DAY + 1.0, STEP)


def test_time_to_threshold_known_answer() -> None:
    t = week()
    util = 40.0 + 5.0 * t / DAY  # +5 points a day: 75 % at the end of the week
    assert time_to_threshold(t, util, 80.0, 7 * DAY, current=75.0) == pytest.approx(DAY, rel=1e-9)
    assert time_to_threshold(t, util, 75.0, 7 * DAY, current=75.0) == 0.0
    assert time_to_threshold(t, util, 70.0, 7 * DAY, current=75.0) == 0.0
    # From the value measured now, not the trend line's value at the last timestamp.
    assert time_to_threshold(t, util, 80.0, 7 * DAY, current=70.0) == pytest.approx(2 * DAY)


def test_time_to_threshold_starts_from_the_current_value() -> None:
    t = week()
    # A ramp to 100 % then a scale-out to 50 %: the trend line ends above 90, the fleet
    # does not. Before, "already at or above the threshold" while the status showed 50 %.
    ramp = np.linspace(40.0, 100.0, t.size)
    ramp[-12:] = 50.0
    slope_per_day = 60.0 / 7.0
    crossing = time_to_threshold(t, ramp, 90.0, 7 * DAY, current=50.0)
    assert crossing == pytest.approx(40.0 / slope_per_day * DAY, rel=0.02)
    # Flat at 50 % then 95 % for the last 30 minutes: over the threshold now, whatever the
    # trend says. Before: "not within the history's horizon".
    surge = np.full(t.size, 50.0)
    surge[-6:] = 95.0
    assert time_to_threshold(t, surge, 90.0, 7 * DAY, current=95.0) == 0.0
    assert time_to_threshold(t, surge, 90.0, 7 * DAY, current=math.nan) is None


def test_time_to_threshold_beyond_the_horizon_is_unknown() -> None:
    t = week()
    util = 40.0 + 5.0 * t / DAY
    # 120 % would be reached in 9 days, further than the 7 days of history reach.
    assert time_to_threshold(t, util, 120.0, 7 * DAY, current=75.0) is None
    assert time_to_threshold(t, util, 120.0, 10 * DAY, current=75.0) == pytest.approx(9 * DAY)


def test_time_to_threshold_flat_or_falling_trend_never_arrives() -> None:
    t = week()
    rng = np.random.default_rng(0)
    flat = 60.0 + rng.normal(0.0, 0.5, t.size)
    assert time_to_threshold(t, 60.0 - t / DAY, 80.0, 7 * DAY, current=53.0) is None
    assert time_to_threshold(t, flat, 80.0, 7 * DAY, current=60.0) is None


def test_time_to_threshold_is_robust_to_a_few_wild_samples() -> None:
    t = week()
    util = 40.0 + 5.0 * t / DAY
    util[::50] = 100.0  # 2 % of the samples at 100 %
    util[7::50] = np.nan
    assert time_to_threshold(t, util, 80.0, 7 * DAY, current=75.0) == pytest.approx(DAY, rel=0.01)


# --------------------------------------------------------------------------- sustained


def run_series(values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float)
    return np.arange(v.size) * STEP + 1_700_000_000.0, v


def test_sustained_since_returns_the_start_of_a_long_enough_run() -> None:
    t, v = run_series([70, 80, 84, 86, 88, 90, 87])  # the last 4 samples: 15 minutes
    assert sustained_since(t, v, above=85.0, for_s=600.0) == t[3]
    assert sustained_since(t, v, above=85.0, for_s=900.0) == t[3]
    assert sustained_since(t, v, above=85.0, for_s=1200.0) is None


def test_sustained_needs_strictly_above_and_the_last_sample() -> None:
    t, v = run_series([90, 90, 85, 90, 90, 90, 90])
    assert sustained_since(t, v, above=85.0, for_s=0.0) == t[3]
    t, v = run_series([90, 90, 90, 90, 90, 90, 80])
    assert sustained_since(t, v, above=85.0, for_s=0.0) is None


def test_one_missing_sample_is_bridged_two_are_not() -> None:
    nan = math.nan
    t, v = run_series([70, 90, 91, nan, 92, 93, 94])
    assert sustained_since(t, v, above=85.0, for_s=900.0) == t[1]
    t, v = run_series([70, 90, 91, nan, nan, 93, 94])
    assert sustained_since(t, v, above=85.0, for_s=0.0) == t[5]
    # The same gaps as missing timestamps instead of NaN.
    t, v = run_series([70, 90, 91, 99, 92, 93, 94])
    keep = np.arange(t.size) != 3
    assert sustained_since(t[keep], v[keep], above=85.0, for_s=900.0) == t[1]


def test_trailing_missing_samples() -> None:
    nan = math.nan
    t, v = run_series([70, 90, 91, 92, 93, nan])
    assert sustained_since(t, v, above=85.0, for_s=900.0) == t[1]
    t, v = run_series([70, 90, 91, 92, 93, nan, nan])
    assert sustained_since(t, v, above=85.0, for_s=0.0) is None
    assert sustained_since([], [], above=85.0, for_s=0.0) is None
