"""Counting noise: how many requests arrived, how they were answered, how long they took.

Requests per step are Poisson around the model's rate. Every stage histogram of a track
observes the same requests, so `_count` of each stage equals that track's
`inference_requests_total` summed over codes. Bucket counts are a multinomial draw from
the step's latency distribution rather than one simulated request at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfguard.synthetic.arrays import FloatArray, IntArray
from perfguard.synthetic.latency import ShiftedLogNormal, bucket_probabilities
from perfguard.synthetic.model import ScenarioModel
from perfguard.synthetic.randomness import stream


def request_counts(model: ScenarioModel, track: str) -> IntArray:
    """Requests of `track` arriving in each step."""
    rng = stream(model.scenario.seed, "requests", track, "arrivals")
    expected = model.traffic.rates[track] * model.timeline.step_s
    counts: IntArray = rng.poisson(expected).astype(np.int64)
    return counts


def code_counters(model: ScenarioModel, track: str, arrivals: IntArray) -> dict[int, IntArray]:
    """inference_requests_total per response code: cumulative since the history start."""
    shares = model.traffic.code_shares[track]
    probabilities = np.stack(list(shares.values()), axis=1)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    rng = stream(model.scenario.seed, "requests", track, "codes")
    per_step = rng.multinomial(arrivals, probabilities)
    totals = np.cumsum(per_step, axis=0)
    return {code: totals[:, j] for j, code in enumerate(shares)}


@dataclass(frozen=True)
class HistogramCounters:
    buckets: IntArray  # (steps, finite bounds + 1): cumulative by `le` and over time
    count: IntArray
    sum: FloatArray


def histogram_counters(
    model: ScenarioModel, track: str, stage: str, arrivals: IntArray
) -> HistogramCounters:
    dist: ShiftedLogNormal = model.latency.distributions[(track, stage)]
    probabilities = bucket_probabilities(dist, model.latency.buckets)
    rng = stream(model.scenario.seed, "latency", track, stage)
    per_step = rng.multinomial(arrivals, probabilities)
    cumulative = np.cumsum(np.cumsum(per_step, axis=1), axis=0)
    # The observed sum of n draws: mean n*m, standard deviation sqrt(n)*sd.
    noise = stream(model.scenario.seed, "latency-sum", track, stage).standard_normal(arrivals.size)
    step_sums = arrivals * dist.mean + np.sqrt(arrivals * dist.variance) * noise
    return HistogramCounters(
        buckets=cumulative,
        count=cumulative[:, -1],
        sum=np.round(np.cumsum(np.maximum(step_sums, 0.0)), 6),
    )
