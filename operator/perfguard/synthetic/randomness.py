"""Seeded random streams and autocorrelated noise.

Every model component draws from its own stream, named after what it generates, so
adding an injection or leaving a series family out never changes the noise of anything
else: a scenario with and without an injection differs only where the injection acts.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from scipy.signal import lfilter

from perfguard.synthetic.arrays import FloatArray


def stream(seed: int, *name: str | int) -> np.random.Generator:
    """The random stream for one named component of a seeded scenario."""
    key = zlib.crc32("/".join(str(part) for part in name).encode())
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(key,)))


def ar1(
    rng: np.random.Generator,
    size: int,
    *,
    sd: float,
    correlation_time_s: float,
    step_s: float,
) -> FloatArray:
    """A stationary AR(1) path with marginal standard deviation `sd`.

    The coefficient comes from a correlation time rather than a per-step constant, so
    the noise looks the same whatever the scenario's resolution.
    """
    phi = math.exp(-step_s / correlation_time_s)
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - phi * phi), size)
    # Starting from the stationary distribution avoids a warm-up transient at the
    # beginning of the history.
    shocks[0] = rng.normal(0.0, sd)
    path: FloatArray = np.asarray(lfilter([1.0], [1.0, -phi], shocks), dtype=np.float64)
    return path
