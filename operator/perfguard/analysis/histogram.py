"""When a histogram cannot tell a quantile: observations above its highest finite bucket.

`histogram_quantile(q, ...)` finds the bucket holding the q-th observation. When that is
the +Inf bucket (more than 1 - q of the observations are above the highest finite bound),
Prometheus answers the highest finite bound: a number that looks like a latency, and is
only a floor under the quantile. A canary whose p95 went from 0.85 s to 3 s, with buckets
up to 1 s, read as 0.75 s against 1.0 s; both tracks above the top bucket read as equal.
Those steps' quantiles are not judged (the engine's `HistogramSaturated`).

Pure: arrays in, numbers out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Shares come from rates, 1 - a / b in floating point: a share at exactly 1 - q is not a
# saturated step (Prometheus interpolates to the bound then, which is the quantile).
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Saturation:
    """Steps whose quantile is the highest finite bucket's bound, not the quantile."""

    steps: int  # saturated steps
    of: int  # steps with both a share and a quantile
    worst_share: float  # the largest share above the bucket at a saturated step
    bound: float  # the highest finite bucket's bound: the quantile read at those steps


def saturated(shares: npt.ArrayLike, quantile: float) -> npt.NDArray[np.bool_]:
    """Per step: whether more than 1 - `quantile` of the observations are above the
    highest finite bucket (NaN shares, steps without traffic, are not)."""
    s = np.asarray(shares, dtype=float)
    with np.errstate(invalid="ignore"):
        above: npt.NDArray[np.bool_] = np.isfinite(s) & (s > (1.0 - quantile) + TOLERANCE)
    return above


def saturation(shares: npt.ArrayLike, values: npt.ArrayLike, quantile: float) -> Saturation | None:
    """The saturated steps among aligned (share, quantile value) pairs; None when none is.

    `values` are what histogram_quantile answered at the same steps: at a saturated step
    that is the highest finite bound, so the largest of them names the bucket."""
    s = np.asarray(shares, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.shape != v.shape:
        raise ValueError("shares and values must be aligned, step by step")
    present = np.isfinite(s) & np.isfinite(v)
    hit = saturated(s, quantile) & present
    if not hit.any():
        return None
    return Saturation(
        steps=int(hit.sum()),
        of=int(present.sum()),
        worst_share=float(s[hit].max()),
        bound=float(v[hit].max()),
    )
