"""The sample grid of a scenario and how instants map onto it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

from perfguard.synthetic.arrays import BoolArray, FloatArray, IntArray
from perfguard.synthetic.scenario import Injection, Scenario


@dataclass(frozen=True)
class Timeline:
    """`size` samples, `step` apart, the first at `start`.

    Sample i of a gauge is the value at its instant t_i. Sample i of a counter adds what
    happened during (t_{i-1}, t_i], so per-step rates are indexed like the counter
    increments that realise them.
    """

    start: datetime
    step: timedelta
    size: int

    @classmethod
    def of(cls, scenario: Scenario) -> Timeline:
        return cls(start=scenario.start, step=scenario.step, size=scenario.steps + 1)

    @property
    def end(self) -> datetime:
        return self.start + self.step * (self.size - 1)

    @property
    def step_s(self) -> float:
        return self.step.total_seconds()

    @cached_property
    def offsets_s(self) -> FloatArray:
        """Seconds from the start, per sample."""
        return np.arange(self.size, dtype=np.float64) * self.step_s

    @cached_property
    def unix_ms(self) -> IntArray:
        start_ms = round(self.start.timestamp() * 1000)
        step_ms = round(self.step_s * 1000)
        return start_ms + np.arange(self.size, dtype=np.int64) * step_ms

    @cached_property
    def unix_s(self) -> FloatArray:
        return self.unix_ms.astype(np.float64) / 1000.0

    def instant(self, index: int) -> datetime:
        return self.start + self.step * index

    def _position(self, at: datetime) -> float:
        if at.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
        return (at.astimezone(UTC) - self.start) / self.step

    def sample_index(self, at: datetime) -> int:
        """The last sample at or before `at`: what an instant query of a gauge sees."""
        return min(max(math.floor(self._position(at) + 1e-9), 0), self.size - 1)

    def interval_index(self, at: datetime) -> int:
        """The step whose interval (t_{i-1}, t_i] holds `at`."""
        return min(max(math.ceil(self._position(at) - 1e-9), 0), self.size - 1)

    def window(self, at: datetime, length: timedelta) -> slice:
        """The steps whose intervals cover (at - length, at], like a PromQL range `[length]`."""
        last = self.interval_index(at)
        first = self.interval_index(at - length + self.step)
        return slice(first, max(last, first) + 1)

    def active(self, injection: Injection) -> BoolArray:
        """Samples during which `injection` acts."""
        start_s = injection.start.total_seconds()
        mask: BoolArray = self.offsets_s >= start_s
        if injection.end is not None:
            mask &= self.offsets_s < injection.end.total_seconds()
        return mask

    def hours_active(self, injection: Injection) -> FloatArray:
        """Hours since `injection` started, zero outside it."""
        elapsed = (self.offsets_s - injection.start.total_seconds()) / 3600.0
        hours: FloatArray = np.where(self.active(injection), elapsed, 0.0)
        return hours
