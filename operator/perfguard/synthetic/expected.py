"""The generator's true values, to hold PromQL results against.

Rates and latency distributions are the ones counts were drawn from, so what Prometheus
computes differs from them only by counting noise and histogram resolution. A `window`
reproduces a PromQL range `[window]` ending at `at`: rates average over it, quantiles
are those of the request-weighted mixture of its steps, as histogram_quantile over
`rate(..._bucket[window])` estimates. Gauges are the sample at or before `at`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from perfguard.synthetic.arrays import FloatArray
from perfguard.synthetic.latency import mixture_quantile
from perfguard.synthetic.model import ScenarioModel
from perfguard.synthetic.scenario import POD_TEMPLATE_HASHES, TRACKS, Scenario
from perfguard.synthetic.timeline import Timeline


class Expected:
    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._model = ScenarioModel(scenario)

    @property
    def timeline(self) -> Timeline:
        return self._model.timeline

    @staticmethod
    def pod_template_hash(track: str) -> str:
        return POD_TEMPLATE_HASHES[track]

    def _steps(self, at: datetime, window: timedelta | None) -> slice:
        if window is None:
            index = self.timeline.interval_index(at)
            return slice(index, index + 1)
        return self.timeline.window(at, window)

    def _track_rate(self, track: str | None) -> FloatArray:
        if track is None:
            return self._model.traffic.served_rps
        return self._model.traffic.rates[track]

    # -- traffic --------------------------------------------------------------------------

    def request_rate(
        self,
        track: str | None,
        at: datetime,
        *,
        window: timedelta | None = None,
        code: int | None = None,
    ) -> float:
        """Requests/s of a track (None: all tracks), optionally of one response code."""
        steps = self._steps(at, window)
        tracks = TRACKS if track is None else (track,)
        total = 0.0
        for name in tracks:
            rate = self._model.traffic.rates[name][steps]
            if code is not None:
                rate = rate * self._model.traffic.code_shares[name][code][steps]
            total += float(rate.mean())
        return total

    def error_ratio(self, track: str, at: datetime, *, window: timedelta | None = None) -> float:
        """Share of a track's requests answered with a 5xx code."""
        steps = self._steps(at, window)
        rate = self._model.traffic.rates[track][steps]
        errors = self._model.traffic.error_share(track)[steps]
        return float(np.dot(rate, errors) / rate.sum()) if rate.sum() > 0 else 0.0

    # -- latency --------------------------------------------------------------------------

    def stage_quantile(
        self, track: str, stage: str, q: float, at: datetime, *, window: timedelta | None = None
    ) -> float:
        """The q-quantile of a stage's latency in seconds, injections included."""
        steps = self._steps(at, window)
        dist = self._model.latency.distributions[(track, stage)][steps]
        return mixture_quantile(dist, self._model.traffic.rates[track][steps], q)

    def stage_mean(
        self, track: str, stage: str, at: datetime, *, window: timedelta | None = None
    ) -> float:
        """Mean latency of a stage in seconds, as `_sum` rate over `_count` rate gives it."""
        steps = self._steps(at, window)
        dist = self._model.latency.distributions[(track, stage)][steps]
        weights = self._model.traffic.rates[track][steps]
        if weights.sum() <= 0:
            return float(dist.mean.mean())
        return float(np.dot(dist.mean, weights) / weights.sum())

    @property
    def latency_buckets(self) -> tuple[float, ...]:
        return self._model.latency.buckets

    # -- GPUs -----------------------------------------------------------------------------

    @property
    def gpu_util_per_rps(self) -> float:
        """Utilisation points per request/s carried by one GPU (the fleet shares evenly)."""
        return self._model.gpus.util_per_rps

    @property
    def gpu_util_idle(self) -> float:
        """Utilisation with no traffic, before each GPU's small offset."""
        return self._model.gpus.util_idle

    def gpu_util(self, node: str, gpu: int, at: datetime, *, noise: bool = False) -> float:
        """Utilisation in %: the noiseless signal, or with `noise` the exported value."""
        n, g = self._model.gpus.index(node, gpu)
        values = self._model.gpus.util if noise else self._model.gpus.util_signal
        return float(values[n, g, self.timeline.sample_index(at)])

    def gpu_memory_used_mib(self, node: str, gpu: int, at: datetime) -> float:
        n, g = self._model.gpus.index(node, gpu)
        return float(self._model.gpus.fb_used_mib[n, g, self.timeline.sample_index(at)])

    def gpu_temperature_c(self, node: str, gpu: int, at: datetime) -> float:
        n, g = self._model.gpus.index(node, gpu)
        return float(self._model.gpus.temperature_c[n, g, self.timeline.sample_index(at)])

    def gpu_power_w(self, node: str, gpu: int, at: datetime) -> float:
        n, g = self._model.gpus.index(node, gpu)
        return float(self._model.gpus.power_w[n, g, self.timeline.sample_index(at)])

    def xid(self, node: str, gpu: int, at: datetime) -> int:
        n, g = self._model.gpus.index(node, gpu)
        return int(self._model.gpus.xid[n, g, self.timeline.sample_index(at)])

    def clock_event_reasons(self, node: str, gpu: int, at: datetime) -> int:
        n, g = self._model.gpus.index(node, gpu)
        return int(self._model.gpus.clock_event_reasons[n, g, self.timeline.sample_index(at)])

    def gpu_uuid(self, node: str, gpu: int) -> str:
        n, g = self._model.gpus.index(node, gpu)
        return self._model.gpus.uuids[n][g]

    # -- nodes ----------------------------------------------------------------------------

    def cpu_busy(self, node: str, at: datetime, *, window: timedelta | None = None) -> float:
        """Share of CPU time not idle on a node, averaged over its CPUs (and the window)."""
        n = self._model.nodes.nodes.index(node)
        return float(self._model.nodes.cpu_busy[n, :, self._steps(at, window)].mean())

    def memory_available_bytes(self, node: str, at: datetime) -> float:
        n = self._model.nodes.nodes.index(node)
        return float(self._model.nodes.memory_available_bytes[n, self.timeline.sample_index(at)])

    @property
    def memory_total_bytes(self) -> int:
        return self._model.nodes.memory_total_bytes
