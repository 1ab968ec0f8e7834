"""The labelled canary-vs-stable corpus of the judge-accuracy benchmark (bench.accuracy).

Every case is one concurrent comparison: a stable and a canary series of per-step values
(what a PerfBaseline's range query returns for one statistic), a label (regression or
not, and its size), and what the peers need besides (the whole-window value an Argo
Rollouts AnalysisTemplate would query, and the "typical" stable value a team reads off
its dashboard to set a fixed bound). Generation is deterministic: a case is a function
of the corpus seed and its position only.

Synthetic cases simulate requests, not per-step summaries:

* Demand follows the day and the week (perfguard.synthetic.traffic.seasonal_demand:
  +/-40 % daily, +/-5 % weekly) times a shared AR(1) wander (3 %, 15 min correlation).
  The window ends at a uniformly random instant of a week, so every hour is covered.
* A request's latency is level_t * Q(u): Q is a shifted log-normal body spliced to a
  Pareto tail above its (1 - w) quantile (w 1-3 %, tail index 2-3), capped at a 5 s
  timeout. The level rises with load (elasticity 0.05-0.2) and carries each track's own
  AR(1) noise (lag-1 coefficient 0.5-0.8 per 30 s step, 1-3 %).
* Spikes: in each track independently, a step starts a spike with probability 0.5-2 %;
  for 1-2 steps a random 10-40 % of its requests wait an extra 30-150 ms (a GC pause, a
  noisy neighbour).
* Requests per 30 s step are Poisson; the canary takes 10, 25 or 50 % of 50, 100 or 200
  requests/s. Per-step values are computed as Prometheus computes them from a histogram
  with perfguard.synthetic's bucket layout: histogram_quantile over a 1 m rate window
  (linear interpolation inside the bucket), and the mean as _sum / _count.
* Throughput cases count requests per replica: 10 replicas share the demand, the canary
  has 1, 2 or 5 of them; per-step value = requests/s per replica over the 1 m window.
  Each track has its own AR(1) noise and occasional dips (a replica restarting: 20-50 %
  fewer requests for 1-2 steps).

Injected regressions act on the canary only, from before the window on:

* p95 +2/+5/+10 ms: a constant delay on every request (every quantile moves by it).
* mean +5/+10/+20 %: every request slower by the factor.
* tail p99 +5/+10/+20 ms: the delay ramps from 0 at the 97th to the full size at the 99th
  percentile of the request distribution, so p99 moves by the size, p95 not at all and
  the mean by 1.5 % of the size (0.3 ms for +20 ms, about 1 %).
* throughput -5/-10/-20 %: the canary's replicas serve that much less.

NAB cases (real series, /work/shared/data/nab, 5-minute samples) take a stretch of a
real CloudWatch series outside its labelled anomaly windows as the stable track. The
canary is a copy of its slow component (centred 45-minute rolling median) plus the
series' own residuals from another clean stretch of the same file, so the canary differs
from stable by the series' real noise (bursts, skew, autocorrelation) and not by a
synthetic one; the regression is then injected into the canary (x 1.05/1.10/1.20 for
CPU, x 0.95/0.90/0.80 for request and network counts).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from perfguard.synthetic import DEFAULT_LATENCY_BUCKETS
from perfguard.synthetic.randomness import ar1
from perfguard.synthetic.traffic import seasonal_demand

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Direction = Literal["increase", "decrease"]

CORPUS_SEED: Final = 20_260_707
SAMPLE_COUNTS: Final = (10, 20, 40, 80)

# The synthetic cadence: a 30 s step, a 1 m rate window (perfguard's default: the larger of
# 1 m and the step), a 1 m evaluation interval and sustainFor 3 m. perfguard's replay
# (perfguard.engine.offline.replay_times) evaluates 5 times, 1 m apart, so a case carries
# 4 intervals = 8 steps more than the judged window, plus one step to fill the first rate
# window.
STEP_S: Final = 30.0
RATE_STEPS: Final = 2
INTERVAL_S: Final = 60.0
SUSTAIN_S: Final = 180.0
# NAB's cadence: 5-minute samples; interval 5 m and sustainFor 15 m replay 5 evaluations,
# one sample apart.
NAB_STEP_S: Final = 300.0
NAB_SUSTAIN_S: Final = 900.0

TIMEOUT_S: Final = 5.0
BUCKETS: Final = np.asarray(DEFAULT_LATENCY_BUCKETS, dtype=np.float64)
# Monday 2026-11-16 00:00 UTC: windows end somewhere in the following week.
WEEK_START: Final = datetime(2026, 11, 16, tzinfo=UTC).timestamp()
REPLICAS: Final = 10


@dataclass(frozen=True)
class Family:
    """One kind of case: the statistic judged, its rule and the injected sizes.

    ``threshold`` is the allowed change in ``unit`` ("ms" absolute, "%" relative to the
    stable value), in the bad ``direction``; ``sizes`` are the injected regressions in the
    same unit.
    """

    name: str
    source: Literal["synthetic", "nab"]
    statistic: Literal["p95", "p99", "mean", "value"]
    metric_type: Literal["Latency", "Query"]
    direction: Direction
    threshold: float
    unit: Literal["ms", "%"]
    sizes: tuple[float, ...]
    what: str

    @property
    def relative(self) -> bool:
        return self.unit == "%"

    def describe_size(self, size: float) -> str:
        if size == 0:
            return "none"
        sign = "+" if self.direction == "increase" else "-"
        return f"{sign}{size:g} {self.unit}"

    @property
    def rule(self) -> str:
        """The PerfBaseline threshold, as written in the spec."""
        if self.direction == "increase":
            key = "maxIncreasePercent" if self.relative else "maxIncrease"
        else:
            key = "maxDecreasePercent" if self.relative else "maxDecrease"
        value = f"{self.threshold:g}" if self.relative else f"{self.threshold:g}ms"
        return f"{self.statistic}: {{{key}: {value}}}"


FAMILIES: Final = {
    "p95": Family(
        "p95",
        "synthetic",
        "p95",
        "Latency",
        "increase",
        2.0,
        "ms",
        (2.0, 5.0, 10.0),
        "constant delay on every canary request",
    ),
    "mean": Family(
        "mean",
        "synthetic",
        "mean",
        "Latency",
        "increase",
        5.0,
        "%",
        (5.0, 10.0, 20.0),
        "every canary request slower by the factor",
    ),
    "tail": Family(
        "tail",
        "synthetic",
        "p99",
        "Latency",
        "increase",
        5.0,
        "ms",
        (5.0, 10.0, 20.0),
        "slowest 3 % of canary requests slower: p99 moves, p95 not, mean by 1.5 % of it",
    ),
    "throughput": Family(
        "throughput",
        "synthetic",
        "value",
        "Query",
        "decrease",
        5.0,
        "%",
        (5.0, 10.0, 20.0),
        "canary replicas serve fewer requests/s",
    ),
    "nab-cpu": Family(
        "nab-cpu",
        "nab",
        "value",
        "Query",
        "increase",
        5.0,
        "%",
        (5.0, 10.0, 20.0),
        "real CloudWatch CPU series, canary scaled up",
    ),
    "nab-traffic": Family(
        "nab-traffic",
        "nab",
        "value",
        "Query",
        "decrease",
        5.0,
        "%",
        (5.0, 10.0, 20.0),
        "real CloudWatch request/network counts, canary scaled down",
    ),
}
SYNTHETIC_FAMILIES: Final = ("p95", "mean", "tail", "throughput")

# NAB files used, by family. CPU series whose values sit on a 0.066 % quantisation grid
# (24ae8d, c6585a: two distinct values) cannot express a 5 % change; series running at
# 90-100 % (825cc2, ac20cd) or jumping between idle and 90 % (77c1ca) would have to be
# clipped at 100 % after a +20 % injection. Disk writes are zero most of the time.
NAB_FILES: Final = {
    "nab-cpu": (
        "realAWSCloudwatch/ec2_cpu_utilization_53ea38.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_5f5533.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv",
        "realAWSCloudwatch/grok_asg_anomaly.csv",
        "realAWSCloudwatch/rds_cpu_utilization_cc0c53.csv",
        "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    ),
    "nab-traffic": (
        "realAWSCloudwatch/elb_request_count_8c0756.csv",
        "realAWSCloudwatch/iio_us-east-1_i-a2eb1cd9_NetworkIn.csv",
    ),
}
NAB_SMOOTH: Final = 9  # samples in the centred rolling median (45 minutes)
NAB_HISTORY: Final = 288  # a day of 5-minute samples before a stretch, for "typical"
NAB_TYPICAL_SPAN: Final = 7 * 288


@dataclass(frozen=True, eq=False)
class Case:
    """One labelled comparison. Values are in base units (seconds, requests/s, raw).

    ``timestamps``/``stable``/``canary`` hold the judged window (the last ``n`` samples)
    and the samples before it that perfguard's sustain replay evaluates. ``stable_window``
    and ``canary_window`` are the whole final window's statistic as one PromQL query over
    it returns (histogram_quantile over the window's buckets, _sum/_count, requests/s);
    ``typical`` is the stable value a team would read off last week's dashboard.
    """

    case_id: str
    family: Family
    n: int
    size: float
    seed: int
    step_s: float
    interval_s: float
    sustain_s: float
    timestamps: FloatArray
    stable: FloatArray
    canary: FloatArray
    stable_window: float
    canary_window: float
    typical: float
    detail: str
    truth: dict[str, float] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.family.source

    @property
    def regression(self) -> bool:
        return self.size != 0

    @property
    def multiple(self) -> float:
        """Injected size in units of the configured threshold (0 without regression)."""
        return self.size / self.family.threshold

    @property
    def final(self) -> slice:
        return slice(self.timestamps.size - self.n, self.timestamps.size)

    def fingerprint(self) -> str:
        """A digest of everything that defines the case, for determinism checks."""
        digest = hashlib.sha256()
        digest.update(
            f"{self.case_id}|{self.family.name}|{self.n}|{self.size}|{self.seed}|"
            f"{self.stable_window!r}|{self.canary_window!r}|{self.typical!r}".encode()
        )
        for array in (self.timestamps, self.stable, self.canary):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


# ---------------------------------------------------------------- histogram arithmetic


def histogram_quantile(q: float, counts: npt.ArrayLike, bounds: FloatArray = BUCKETS) -> FloatArray:
    """Prometheus' histogram_quantile on non-cumulative bucket counts (last axis: the
    finite buckets then +Inf), as in promql/quantile.go (bucketQuantile, 2.42): find the
    bucket holding rank q * total, interpolate linearly inside it, return the largest
    finite bound when the rank falls in +Inf, NaN without observations."""
    c = np.asarray(counts, dtype=np.float64)
    cumulative = np.cumsum(c, axis=-1)
    total = cumulative[..., -1]
    rank = q * total
    finite = cumulative[..., :-1]
    reached = finite >= rank[..., None]
    index = np.where(reached.any(axis=-1), np.argmax(reached, axis=-1), bounds.size)
    safe = np.minimum(index, bounds.size - 1)
    below = np.where(safe > 0, np.take_along_axis(finite, (safe - 1)[..., None], -1)[..., 0], 0.0)
    at = np.take_along_axis(finite, safe[..., None], -1)[..., 0]
    start = np.where(safe > 0, bounds[np.maximum(safe - 1, 0)], 0.0)
    end = bounds[safe]
    inside = at - below
    with np.errstate(invalid="ignore", divide="ignore"):
        value = start + (end - start) * (rank - below) / inside
    value = np.where(index >= bounds.size, bounds[-1], value)
    out: FloatArray = np.where(total > 0, value, np.nan)
    return out


# ---------------------------------------------------------------- latency model


@dataclass(frozen=True)
class LatencyProfile:
    """A service's request latency at level 1 (seconds): floor + log-normal body, Pareto
    tail above the body's (1 - tail_weight) quantile."""

    floor_s: float
    body_mean_s: float
    body_cv: float
    tail_weight: float
    tail_alpha: float

    @property
    def _mu_sigma(self) -> tuple[float, float]:
        sigma2 = math.log1p(self.body_cv**2)
        return math.log(self.body_mean_s) - sigma2 / 2.0, math.sqrt(sigma2)

    @property
    def splice_s(self) -> float:
        mu, sigma = self._mu_sigma
        return self.floor_s + math.exp(mu + sigma * float(ndtri(1.0 - self.tail_weight)))

    def quantile(self, u: FloatArray) -> FloatArray:
        mu, sigma = self._mu_sigma
        w = self.tail_weight
        body = self.floor_s + np.exp(mu + sigma * ndtri(np.minimum(u, 1.0 - w)))
        v = np.clip((u - (1.0 - w)) / w, 0.0, 1.0 - 1e-12)
        tail = self.splice_s * (1.0 - v) ** (-1.0 / self.tail_alpha)
        out: FloatArray = np.where(u > 1.0 - w, tail, body)
        return out

    def cdf(self, x: FloatArray) -> FloatArray:
        mu, sigma = self._mu_sigma
        above = np.maximum(x - self.floor_s, 1e-300)
        body = ndtr((np.log(above) - mu) / sigma)
        tail = 1.0 - self.tail_weight * (self.splice_s / np.maximum(x, self.splice_s)) ** (
            self.tail_alpha
        )
        out: FloatArray = np.where(x <= self.floor_s, 0.0, np.where(x <= self.splice_s, body, tail))
        return out

    def mean(self) -> float:
        grid = (np.arange(200_000) + 0.5) / 200_000 * (1.0 - self.tail_weight)
        body = float(self.quantile(grid).mean()) * (1.0 - self.tail_weight)
        alpha = self.tail_alpha
        return body + self.tail_weight * self.splice_s * alpha / (alpha - 1.0)

    def histogram_value(self, statistic: str) -> float:
        """The statistic as a dashboard shows it for this distribution at level 1:
        histogram_quantile over the expected bucket shares, or the true mean."""
        if statistic == "mean":
            return self.mean()
        q = {"p95": 0.95, "p99": 0.99}[statistic]
        cumulative = np.append(self.cdf(BUCKETS), 1.0)
        shares = np.diff(cumulative, prepend=0.0) * 1e9
        return float(histogram_quantile(q, shares))


@dataclass(frozen=True)
class Service:
    profile: LatencyProfile
    base_rps: float
    canary_share: float
    load_elasticity: float
    track_phi: float
    track_sd: float
    spike_rate: float

    def describe(self) -> str:
        p = self.profile
        return (
            f"floor {p.floor_s * 1e3:.1f} ms, body mean {p.body_mean_s * 1e3:.1f} ms cv "
            f"{p.body_cv:.2f}, tail {p.tail_weight * 100:.1f} % alpha {p.tail_alpha:.2f}, "
            f"{self.base_rps:g} req/s, canary {self.canary_share * 100:g} %, elasticity "
            f"{self.load_elasticity:.2f}, track AR(1) {self.track_phi:.2f}/"
            f"{self.track_sd * 100:.1f} %, spikes {self.spike_rate * 100:.1f} %/step"
        )


def _draw_service(rng: np.random.Generator) -> Service:
    profile = LatencyProfile(
        floor_s=float(rng.uniform(0.008, 0.016)),
        body_mean_s=float(rng.uniform(0.008, 0.018)),
        body_cv=float(rng.uniform(0.3, 0.5)),
        tail_weight=float(rng.uniform(0.01, 0.03)),
        tail_alpha=float(rng.uniform(2.0, 3.0)),
    )
    return Service(
        profile=profile,
        base_rps=float(rng.choice([50.0, 100.0, 200.0])),
        canary_share=float(rng.choice([0.1, 0.25, 0.5])),
        load_elasticity=float(rng.uniform(0.05, 0.2)),
        track_phi=float(rng.uniform(0.5, 0.8)),
        track_sd=float(rng.uniform(0.01, 0.03)),
        spike_rate=float(rng.uniform(0.005, 0.02)),
    )


def _track_noise(rng: np.random.Generator, size: int, phi: float, sd: float) -> FloatArray:
    return ar1(rng, size, sd=sd, correlation_time_s=-STEP_S / math.log(phi), step_s=STEP_S)


def _bursts(
    rng: np.random.Generator, size: int, rate: float, low: float, high: float
) -> FloatArray:
    """Per step, 0 or the magnitude of a burst lasting 1-2 steps."""
    out = np.zeros(size)
    for start in np.flatnonzero(rng.random(size) < rate):
        length = int(rng.integers(1, 3))
        out[start : start + length] = rng.uniform(low, high)
    return out


@dataclass(frozen=True)
class _Track:
    buckets: npt.NDArray[np.int64]  # (steps, buckets + 1), per step
    sums: FloatArray
    counts: IntArray
    spiked: npt.NDArray[np.bool_]  # per step: a spike delayed some requests


def _simulate_latency(
    rng: np.random.Generator,
    service: Service,
    rate_rps: FloatArray,
    level: FloatArray,
    *,
    shift_s: float = 0.0,
    scale: float = 1.0,
    tail_s: float = 0.0,
) -> _Track:
    steps = rate_rps.size
    counts = rng.poisson(rate_rps * STEP_S).astype(np.int64)
    spike_share = _bursts(rng, steps, service.spike_rate, 0.1, 0.4)
    spike_delay = np.where(spike_share > 0, rng.uniform(0.03, 0.15, steps), 0.0)
    step_of = np.repeat(np.arange(steps), counts)
    u = rng.random(step_of.size)
    latency = level[step_of] * service.profile.quantile(u)
    latency = latency * scale + shift_s
    if tail_s:
        latency += tail_s * np.clip((u - 0.97) / 0.02, 0.0, 1.0)
    spiked = rng.random(step_of.size) < spike_share[step_of]
    latency = np.minimum(latency + np.where(spiked, spike_delay[step_of], 0.0), TIMEOUT_S)
    bucket = np.searchsorted(BUCKETS, latency, side="left")
    width = BUCKETS.size + 1
    per_step = np.bincount(step_of * width + bucket, minlength=steps * width)
    sums = np.bincount(step_of, weights=latency, minlength=steps).astype(np.float64)
    return _Track(per_step.reshape(steps, width), sums, counts, spike_share > 0)


def _windowed(values: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> FloatArray:
    """Per step, the sum over the rate window ending at it (first RATE_STEPS - 1 dropped)."""
    v = np.asarray(values, dtype=np.float64)
    out: FloatArray = sum(  # type: ignore[assignment]
        v[k : v.shape[0] - RATE_STEPS + 1 + k] for k in range(RATE_STEPS)
    )
    return out


def _latency_statistic(track: _Track, statistic: str, window: slice) -> tuple[FloatArray, float]:
    """Per-step values over the rate window, and the whole final window's value."""
    buckets = _windowed(track.buckets)
    if statistic == "mean":
        sums, counts = _windowed(track.sums), _windowed(track.counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_step: FloatArray = np.where(counts > 0, sums / counts, np.nan)
        whole = float(track.sums[window].sum() / max(track.counts[window].sum(), 1))
        return per_step, whole
    q = {"p95": 0.95, "p99": 0.99}[statistic]
    per_step = histogram_quantile(q, buckets)
    whole = float(histogram_quantile(q, track.buckets[window].sum(axis=0)))
    return per_step, whole


def _timeline(rng: np.random.Generator, steps: int) -> FloatArray:
    end = WEEK_START + STEP_S * math.floor(rng.uniform(0.0, 7 * 86400.0) / STEP_S)
    out: FloatArray = end - STEP_S * np.arange(steps - 1, -1, -1, dtype=np.float64)
    return out


def _seed_of(seed_sequence: np.random.SeedSequence) -> int:
    return int(seed_sequence.generate_state(1, dtype=np.uint32)[0])


def synthetic_case(
    family: Family, n: int, size: float, replicate: int, corpus_seed: int = CORPUS_SEED
) -> Case:
    """One synthetic case; a pure function of its arguments."""
    family_index = SYNTHETIC_FAMILIES.index(family.name)
    size_index = ([0.0, *family.sizes]).index(size)
    sequence = np.random.SeedSequence(
        corpus_seed, spawn_key=(family_index, n, size_index, replicate)
    )
    rng = np.random.default_rng(sequence)
    service = _draw_service(rng)
    replay_steps = round((SUSTAIN_S + INTERVAL_S) / STEP_S)  # 4 earlier evaluations
    judged = n + replay_steps
    steps = judged + RATE_STEPS - 1
    times = _timeline(rng, steps)
    wander = ar1(rng, steps, sd=0.03, correlation_time_s=900.0, step_s=STEP_S)
    demand = seasonal_demand(times, service.base_rps) * np.maximum(1.0 + wander, 0.1)
    load = demand / service.base_rps
    final = slice(steps - n, steps)
    label = family.describe_size(size).replace(" ", "")
    case_id = f"{family.name}-n{n}-{label}-{replicate:02d}"
    if family.name == "throughput":
        return _throughput_case(
            family, n, size, rng, service, times, demand, final, case_id, _seed_of(sequence)
        )
    share = service.canary_share
    levels = {
        track: np.maximum(1.0 + service.load_elasticity * (load - 1.0), 0.2)
        * (1.0 + _track_noise(rng, steps, service.track_phi, service.track_sd))
        for track in ("stable", "canary")
    }
    stable = _simulate_latency(rng, service, demand * (1.0 - share), levels["stable"])
    regression: dict[str, float] = {}
    if family.name == "p95":
        regression["shift_s"] = size / 1000.0
    elif family.name == "mean":
        regression["scale"] = 1.0 + size / 100.0
    else:
        regression["tail_s"] = size / 1000.0
    canary = _simulate_latency(rng, service, demand * share, levels["canary"], **regression)
    s_values, s_window = _latency_statistic(stable, family.statistic, final)
    c_values, c_window = _latency_statistic(canary, family.statistic, final)
    typical = service.profile.histogram_value(family.statistic)
    return Case(
        case_id=case_id,
        family=family,
        n=n,
        size=size,
        seed=_seed_of(sequence),
        step_s=STEP_S,
        interval_s=INTERVAL_S,
        sustain_s=SUSTAIN_S,
        timestamps=times[RATE_STEPS - 1 :],
        stable=s_values,
        canary=c_values,
        stable_window=s_window,
        canary_window=c_window,
        typical=typical,
        detail=service.describe(),
        truth={
            "load": float(load[final].mean()),
            # Spikes (either track) in the raw steps feeding the final window's values.
            "spiked_steps": float(
                (stable.spiked | canary.spiked)[steps - n - RATE_STEPS + 1 :].sum()
            ),
        },
    )


def _throughput_case(
    family: Family,
    n: int,
    size: float,
    rng: np.random.Generator,
    service: Service,
    times: FloatArray,
    demand: FloatArray,
    final: slice,
    case_id: str,
    seed: int,
) -> Case:
    steps = times.size
    canary_replicas = {0.1: 1, 0.25: 2, 0.5: 5}[service.canary_share]
    replicas = {"stable": REPLICAS - canary_replicas, "canary": canary_replicas}
    per_replica = demand / REPLICAS
    values: dict[str, FloatArray] = {}
    whole: dict[str, float] = {}
    dipped = np.zeros(steps, dtype=bool)
    for track, count in replicas.items():
        noise = _track_noise(rng, steps, service.track_phi, service.track_sd)
        dips = _bursts(rng, steps, service.spike_rate, 0.2, 0.5)
        dipped |= dips > 0
        served = 1.0 - size / 100.0 if track == "canary" else 1.0
        rate = per_replica * count * np.maximum(1.0 + noise, 0.1) * (1.0 - dips) * served
        counts = rng.poisson(rate * STEP_S)
        values[track] = _windowed(counts) / (RATE_STEPS * STEP_S) / count
        whole[track] = float(counts[final].sum()) / (n * STEP_S) / count
    return Case(
        case_id=case_id,
        family=family,
        n=n,
        size=size,
        seed=seed,
        step_s=STEP_S,
        interval_s=INTERVAL_S,
        sustain_s=SUSTAIN_S,
        timestamps=times[RATE_STEPS - 1 :],
        stable=values["stable"],
        canary=values["canary"],
        stable_window=whole["stable"],
        canary_window=whole["canary"],
        typical=float(np.mean(per_replica)),
        truth={"spiked_steps": float(dipped[steps - n - RATE_STEPS + 1 :].sum())},
        detail=(
            f"{service.base_rps:g} req/s over {REPLICAS} replicas, canary {canary_replicas}, "
            f"track AR(1) {service.track_phi:.2f}/{service.track_sd * 100:.1f} %, dips "
            f"{service.spike_rate * 100:.1f} %/step"
        ),
    )


# ---------------------------------------------------------------- NAB


@dataclass(frozen=True)
class NabSeries:
    key: str
    times_s: FloatArray
    values: FloatArray
    clean: npt.NDArray[np.bool_]  # outside every labelled anomaly window
    smooth: FloatArray


def _stamps(texts: Sequence[str]) -> FloatArray:
    out: FloatArray = np.array(texts, dtype="datetime64[s]").astype(np.float64)
    return out


def load_nab_series(data_dir: Path, keys: Sequence[str]) -> list[NabSeries]:
    """The named NAB files with their clean mask and slow component, in ``keys`` order."""
    labels = json.loads((data_dir / "combined_windows.json").read_text())
    out = []
    for key in keys:
        with (data_dir / "data" / key).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        times = _stamps([r["timestamp"] for r in rows])
        values = np.array([float(r["value"]) for r in rows], dtype=np.float64)
        clean = np.ones(times.size, dtype=bool)
        for start, end in _stamps([t for pair in labels.get(key, []) for t in pair]).reshape(-1, 2):
            clean &= ~((times >= start) & (times <= end))
        half = NAB_SMOOTH // 2
        padded = np.pad(values, half, mode="edge")
        smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, NAB_SMOOTH), axis=1)
        out.append(NabSeries(key, times, values, clean, smooth))
    return out


def _clean_starts(series: NabSeries, length: int, first: int) -> FloatArray:
    ok = np.lib.stride_tricks.sliding_window_view(series.clean, length).all(axis=1)
    starts = np.flatnonzero(ok)
    out: FloatArray = starts[starts >= first].astype(np.float64)
    return out


def nab_case(
    family: Family,
    series: NabSeries,
    file_index: int,
    n: int,
    size: float,
    replicate: int,
    corpus_seed: int = CORPUS_SEED,
) -> Case | None:
    """A real-series case, or None when the file has no clean stretch long enough."""
    family_index = 10 + list(NAB_FILES).index(family.name)
    size_index = ([0.0, *family.sizes]).index(size)
    sequence = np.random.SeedSequence(
        corpus_seed, spawn_key=(family_index, file_index, n, size_index, replicate)
    )
    rng = np.random.default_rng(sequence)
    length = n + round(NAB_SUSTAIN_S / NAB_STEP_S) + 1
    starts = _clean_starts(series, length, NAB_HISTORY)
    donors = _clean_starts(series, length, 0)
    if starts.size == 0:
        return None
    start = int(rng.choice(starts))
    far = donors[np.abs(donors - start) >= length]
    if far.size == 0:
        return None
    donor = int(rng.choice(far))
    own = slice(start, start + length)
    other = slice(donor, donor + length)
    residual = series.values[other] - series.smooth[other]
    stable = series.values[own]
    canary = np.maximum(series.smooth[own] + residual, 0.0)
    factor = 1.0 + size / 100.0 if family.direction == "increase" else 1.0 - size / 100.0
    canary = canary * factor
    history = slice(max(0, start - NAB_TYPICAL_SPAN), start)
    typical = float(np.median(series.values[history][series.clean[history]]))
    final = slice(length - n, length)
    label = family.describe_size(size).replace(" ", "")
    name = series.key.split("/", 1)[1].removesuffix(".csv")
    return Case(
        case_id=f"{family.name}-{name}-n{n}-{label}-{replicate:02d}",
        family=family,
        n=n,
        size=size,
        seed=_seed_of(sequence),
        step_s=NAB_STEP_S,
        interval_s=NAB_STEP_S,
        sustain_s=NAB_SUSTAIN_S,
        timestamps=series.times_s[own].astype(np.float64),
        stable=stable.astype(np.float64),
        canary=canary.astype(np.float64),
        stable_window=float(np.mean(stable[final])),
        canary_window=float(np.mean(canary[final])),
        typical=typical,
        detail=f"{series.key} rows {start}-{start + length - 1}, residuals from rows "
        f"{donor}-{donor + length - 1}",
    )


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class CorpusPlan:
    """How many cases of each kind; the defaults are the full run."""

    sample_counts: tuple[int, ...] = SAMPLE_COUNTS
    # Per synthetic family and sample count: this many cases without regression and this
    # many per injected size.
    synthetic_null: int = 24
    synthetic_per_size: int = 8
    # Per NAB file and sample count.
    nab_null: int = 3
    nab_per_size: int = 1
    families: tuple[str, ...] = SYNTHETIC_FAMILIES
    nab_families: tuple[str, ...] = tuple(NAB_FILES)
    nab_files_per_family: int | None = None  # None: every file of NAB_FILES


QUICK_PLAN: Final = CorpusPlan(
    sample_counts=(10, 20),
    synthetic_null=1,
    synthetic_per_size=0,
    nab_null=1,
    nab_per_size=0,
    nab_files_per_family=1,
)


def build_corpus(
    plan: CorpusPlan = CorpusPlan(),
    *,
    seed: int = CORPUS_SEED,
    nab_dir: Path | None = None,
    quick_sizes: bool = False,
) -> list[Case]:
    """Every case of the plan, in a fixed order. ``nab_dir`` None leaves NAB out.

    ``quick_sizes`` adds one case per family and sample count at the largest size (the
    quick run's regression half).
    """
    cases: list[Case] = []
    for name in plan.families:
        family = FAMILIES[name]
        for n in plan.sample_counts:
            for r in range(plan.synthetic_null):
                cases.append(synthetic_case(family, n, 0.0, r, seed))
            for size in family.sizes:
                for r in range(plan.synthetic_per_size):
                    cases.append(synthetic_case(family, n, size, r, seed))
            if quick_sizes:
                cases.append(synthetic_case(family, n, family.sizes[-1], 0, seed))
    if nab_dir is None:
        return cases
    for name in plan.nab_families:
        family = FAMILIES[name]
        keys = NAB_FILES[name][: plan.nab_files_per_family]
        for file_index, series in enumerate(load_nab_series(nab_dir, keys)):
            for n in plan.sample_counts:
                made: list[Case | None] = []
                for r in range(plan.nab_null):
                    made.append(nab_case(family, series, file_index, n, 0.0, r, seed))
                for size in family.sizes:
                    for r in range(plan.nab_per_size):
                        made.append(nab_case(family, series, file_index, n, size, r, seed))
                if quick_sizes:
                    made.append(nab_case(family, series, file_index, n, family.sizes[-1], 0, seed))
                cases.extend(c for c in made if c is not None)
    return cases
