"""Request rates per track and the share of each response code.

Demand follows the day (±40 % around `base_rps`, peaking at 14:00 UTC), mildly follows
the week (±5 %, busiest mid-week) and wanders (AR(1), 3 % with a 15 min correlation
time). The canary receives `canary_share` of it. Rates here are the intensities counts
are drawn from: the Poisson noise of counting is added by the writer, not here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perfguard.synthetic.arrays import FloatArray
from perfguard.synthetic.randomness import ar1, stream
from perfguard.synthetic.scenario import InjectionKind, Scenario
from perfguard.synthetic.timeline import Timeline

DAILY_AMPLITUDE = 0.40
DAILY_PEAK_HOUR_UTC = 14.0
WEEKLY_AMPLITUDE = 0.05
WEEKLY_PEAK_DAY = 2.5  # Wednesday noon, counting days from Monday 00:00
DEMAND_NOISE_SD = 0.03
DEMAND_NOISE_CORRELATION_S = 15 * 60.0
# Background server errors: a healthy service still answers a few requests with 5xx.
BASE_ERROR_SHARES: dict[int, float] = {500: 0.0005, 503: 0.0005}
SUCCESS_CODE = 200
DEFAULT_ERROR_CODE = 500

_UNIX_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def seasonal_demand(unix_s: FloatArray, base_rps: float) -> FloatArray:
    """Requests/s the service would receive from the calendar alone."""
    hour = (unix_s / 3600.0) % 24.0
    daily = 1.0 + DAILY_AMPLITUDE * np.sin(2 * math.pi * (hour - DAILY_PEAK_HOUR_UTC + 6.0) / 24.0)
    day_of_week = (unix_s / 86400.0 + _UNIX_EPOCH_WEEKDAY) % 7.0
    weekly = 1.0 + WEEKLY_AMPLITUDE * np.cos(2 * math.pi * (day_of_week - WEEKLY_PEAK_DAY) / 7.0)
    demand: FloatArray = base_rps * daily * weekly
    return demand


@dataclass(frozen=True)
class TrafficModel:
    timeline: Timeline
    # Requests/s per track, per step, after injections.
    rates: dict[str, FloatArray]
    # Share of each response code per track, per step; the codes include SUCCESS_CODE.
    code_shares: dict[str, dict[int, FloatArray]]

    @property
    def codes(self) -> tuple[int, ...]:
        first = next(iter(self.code_shares.values()))
        return tuple(first)

    @property
    def served_rps(self) -> FloatArray:
        """All tracks together: the load the fleet carries."""
        total: FloatArray = np.sum(list(self.rates.values()), axis=0)
        return total

    def error_share(self, track: str) -> FloatArray:
        shares = self.code_shares[track]
        errors: FloatArray = np.sum([s for c, s in shares.items() if c >= 500], axis=0)
        return errors


def build_traffic(scenario: Scenario, timeline: Timeline) -> TrafficModel:
    noise = ar1(
        stream(scenario.seed, "traffic", "demand"),
        timeline.size,
        sd=DEMAND_NOISE_SD,
        correlation_time_s=DEMAND_NOISE_CORRELATION_S,
        step_s=timeline.step_s,
    )
    demand = seasonal_demand(timeline.unix_s, scenario.base_rps) * np.maximum(1.0 + noise, 0.1)
    shares = {"stable": 1.0 - scenario.canary_share, "canary": scenario.canary_share}
    rates = {track: demand * share for track, share in shares.items()}

    error_codes = sorted(
        set(BASE_ERROR_SHARES)
        | {
            i.code or DEFAULT_ERROR_CODE
            for i in scenario.injections
            if i.kind is InjectionKind.ERROR_BURST
        }
    )
    code_shares: dict[str, dict[int, FloatArray]] = {}
    for track in rates:
        errors = {
            code: np.full(timeline.size, BASE_ERROR_SHARES.get(code, 0.0)) for code in error_codes
        }
        for injection in scenario.injections:
            if injection.track != track:
                continue
            active = timeline.active(injection)
            if injection.kind is InjectionKind.THROUGHPUT_DROP:
                rates[track] = np.where(
                    active, np.maximum(rates[track] - injection.magnitude, 0.0), rates[track]
                )
            elif injection.kind is InjectionKind.ERROR_BURST:
                code = injection.code or DEFAULT_ERROR_CODE
                errors[code] = np.where(active, injection.magnitude, errors[code])
        total_errors = np.sum(list(errors.values()), axis=0)
        # Overlapping bursts cannot fail more than every request.
        scale = np.where(total_errors > 1.0, 1.0 / np.maximum(total_errors, 1e-12), 1.0)
        errors = {code: share * scale for code, share in errors.items()}
        success = np.clip(1.0 - np.sum(list(errors.values()), axis=0), 0.0, 1.0)
        code_shares[track] = {SUCCESS_CODE: success, **errors}
    return TrafficModel(timeline=timeline, rates=rates, code_shares=code_shares)
