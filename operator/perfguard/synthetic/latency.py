"""Latency distributions per track and stage, step by step.

Each stage's latency is a shifted log-normal: a fixed floor (work every request does)
plus a log-normal part. The whole distribution is scaled by a level that rises with load
and wanders (AR(1), 2 % with a 30 min correlation time), then injections scale or shift
it. The `total` stage is the sum of the stages plus the unattributed time between them;
a sum of log-normals has no closed form, so its variable part is the log-normal with the
same mean and variance (Fenton-Wilkinson). Its mean is exactly the sum of the means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from perfguard.synthetic.arrays import FloatArray
from perfguard.synthetic.randomness import ar1, stream
from perfguard.synthetic.scenario import (
    LATENCY_KINDS,
    STAGES,
    TOTAL_STAGE,
    TRACKS,
    InjectionKind,
    Scenario,
)
from perfguard.synthetic.timeline import Timeline
from perfguard.synthetic.traffic import TrafficModel

# 1 ms steps up to 40 ms and 2 ms steps up to 60 ms keep histogram_quantile within
# ~0.2 ms of the true quantile for every stage; beyond that only outliers live.
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (
    *(ms / 1000 for ms in range(1, 41)),
    *(ms / 1000 for ms in range(42, 61, 2)),
    0.07,
    0.08,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
)

LEVEL_NOISE_SD = 0.02
LEVEL_NOISE_CORRELATION_S = 30 * 60.0
MIN_LEVEL = 0.2


@dataclass(frozen=True)
class StageProfile:
    floor_s: float  # latency every request pays
    variable_mean_s: float  # mean of the log-normal part
    variable_cv: float  # its coefficient of variation
    load_sensitivity: float  # relative latency change per unit of relative load change

    @property
    def mean_s(self) -> float:
        return self.floor_s + self.variable_mean_s


STAGE_PROFILES: dict[str, StageProfile] = {
    "preprocess": StageProfile(0.0015, 0.0025, 0.5, 0.05),
    "inference": StageProfile(0.012, 0.013, 0.35, 0.15),
    "postprocess": StageProfile(0.001, 0.002, 0.5, 0.05),
}


@dataclass(frozen=True)
class ShiftedLogNormal:
    """Per-step distributions: latency = shift + exp(mu + sigma * Z), Z standard normal."""

    shift: FloatArray
    mu: FloatArray
    sigma: FloatArray

    @classmethod
    def of_variable_part(
        cls, shift: FloatArray, mean: FloatArray, var: FloatArray
    ) -> ShiftedLogNormal:
        sigma2 = np.log1p(var / (mean * mean))
        return cls(shift=shift, mu=np.log(mean) - sigma2 / 2.0, sigma=np.sqrt(sigma2))

    def __getitem__(self, index: slice | int) -> ShiftedLogNormal:
        return ShiftedLogNormal(
            shift=np.atleast_1d(self.shift[index]),
            mu=np.atleast_1d(self.mu[index]),
            sigma=np.atleast_1d(self.sigma[index]),
        )

    @property
    def mean(self) -> FloatArray:
        result: FloatArray = self.shift + np.exp(self.mu + self.sigma**2 / 2.0)
        return result

    @property
    def variance(self) -> FloatArray:
        s2 = self.sigma**2
        result: FloatArray = np.expm1(s2) * np.exp(2.0 * self.mu + s2)
        return result

    def cdf(self, x: FloatArray) -> FloatArray:
        """P(latency <= x); `x` broadcasts against a trailing axis: (steps,) or (steps, k)."""
        shift, mu, sigma = (a.reshape(a.shape + (1,) * (x.ndim - 1)) for a in self.params)
        above = x - shift
        with np.errstate(divide="ignore"):
            z = (np.log(np.where(above > 0, above, 1.0)) - mu) / sigma
        result: FloatArray = np.where(above > 0, ndtr(z), 0.0)
        return result

    def quantile(self, q: float) -> FloatArray:
        result: FloatArray = self.shift + np.exp(self.mu + self.sigma * float(ndtri(q)))
        return result

    @property
    def params(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        return self.shift, self.mu, self.sigma


def mixture_quantile(dist: ShiftedLogNormal, weights: FloatArray, q: float) -> float:
    """The q-quantile of the steps' distributions mixed by `weights` (e.g. request counts).

    This is what histogram_quantile over a rate window estimates.
    """
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {q}")
    total = float(weights.sum())
    # A track with no traffic still has a latency distribution: weigh its steps equally.
    w = weights / total if total > 0 else np.full(weights.shape, 1.0 / weights.size)
    lo = float(dist.quantile(q).min())
    hi = float(dist.quantile(q).max())
    # The mixture's quantile lies between its components' quantiles; bisection to 1 ns.
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2.0
        if float(np.dot(w, dist.cdf(np.full(len(w), mid)))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def bucket_probabilities(dist: ShiftedLogNormal, bounds: tuple[float, ...]) -> FloatArray:
    """Per step, the probability of each bucket (not cumulative), the last one above all
    finite bounds: shape (steps, len(bounds) + 1), rows summing to 1."""
    edges = np.asarray(bounds, dtype=np.float64)[np.newaxis, :]
    cdf = dist.cdf(np.broadcast_to(edges, (dist.shift.size, edges.shape[1])))
    cdf = np.maximum.accumulate(cdf, axis=1)  # guard rounding against negative probabilities
    probabilities: FloatArray = np.diff(cdf, axis=1, prepend=0.0, append=1.0)
    return np.clip(probabilities, 0.0, 1.0)


@dataclass(frozen=True)
class LatencyModel:
    # (track, stage) -> per-step distribution in seconds; stages include TOTAL_STAGE.
    distributions: dict[tuple[str, str], ShiftedLogNormal]
    buckets: tuple[float, ...]


def _adjustments(
    scenario: Scenario, timeline: Timeline, track: str, stage: str
) -> tuple[FloatArray, FloatArray]:
    """Multiplier and added seconds that the injections apply to one track's stage."""
    scale = np.ones(timeline.size)
    added = np.zeros(timeline.size)
    for injection in scenario.injections:
        if injection.kind not in LATENCY_KINDS or (injection.track, injection.stage) != (
            track,
            stage,
        ):
            continue
        active = timeline.active(injection)
        if injection.kind is InjectionKind.LATENCY_SCALE:
            scale = np.where(active, scale * (1.0 + injection.magnitude / 100.0), scale)
        else:
            added = np.where(active, added + injection.magnitude / 1000.0, added)
    return scale, added


def build_latency(scenario: Scenario, timeline: Timeline, traffic: TrafficModel) -> LatencyModel:
    relative_load = traffic.served_rps / scenario.base_rps
    distributions: dict[tuple[str, str], ShiftedLogNormal] = {}
    for track in TRACKS:
        shifts: list[FloatArray] = []
        means: list[FloatArray] = []
        variances: list[FloatArray] = []
        for stage in STAGES:
            profile = STAGE_PROFILES[stage]
            wander = ar1(
                stream(scenario.seed, "latency-level", track, stage),
                timeline.size,
                sd=LEVEL_NOISE_SD,
                correlation_time_s=LEVEL_NOISE_CORRELATION_S,
                step_s=timeline.step_s,
            )
            level = 1.0 + profile.load_sensitivity * (relative_load - 1.0) + wander
            scale, added = _adjustments(scenario, timeline, track, stage)
            factor = np.maximum(level, MIN_LEVEL) * scale
            shift = factor * profile.floor_s + added
            mean = factor * profile.variable_mean_s
            var = (mean * profile.variable_cv) ** 2
            distributions[(track, stage)] = ShiftedLogNormal.of_variable_part(shift, mean, var)
            shifts.append(shift)
            means.append(mean)
            variances.append(var)
        scale, added = _adjustments(scenario, timeline, track, TOTAL_STAGE)
        between_stages = scale * scenario.unattributed_latency.total_seconds() + added
        distributions[(track, TOTAL_STAGE)] = ShiftedLogNormal.of_variable_part(
            np.sum(shifts, axis=0) + between_stages,
            np.sum(means, axis=0),
            np.sum(variances, axis=0),
        )
    return LatencyModel(
        distributions=distributions,
        buckets=scenario.latency_buckets or DEFAULT_LATENCY_BUCKETS,
    )
