"""`max` (an absolute bound on the candidate's own value) is judged on the candidate's own
interval at the spec's confidence, whatever that confidence is. Hand-made samples through
engine.perfbaseline.judge."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from perfguard.analysis import statistics
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from tests.unit.specs import concurrent_spec, p95_latency

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def spec_at(confidence: float) -> PerfBaselineSpec:
    return concurrent_spec(
        [p95_latency(max="250ms")], analysis={"sustainFor": "0s", "confidence": confidence}
    )


def shared_load(spec: PerfBaselineSpec, level_s: float) -> dict[str, MetricSamples]:
    """Both tracks ride one wandering load (AR(1), rho 0.8, sd 10 ms); the candidate is 3 ms
    slower than the stable track, around `level_s` on average. The paired difference is
    tight (the load cancels), the candidate's own level is not."""
    w = windows(spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    rng = np.random.default_rng(4)
    load = np.zeros(t.size)
    load[0] = rng.normal(0, 0.010)
    for i in range(1, t.size):
        load[i] = 0.8 * load[i - 1] + rng.normal(0, 0.010 * np.sqrt(1 - 0.8**2))
    stable = level_s - 0.003 - load.mean() + load + rng.normal(0, 0.0005, t.size)
    candidate = stable + 0.003 + rng.normal(0, 0.0005, t.size)
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, stable)
    data.window[("candidate", "p95")] = TimedSamples(t, candidate)
    return {"latency": data}


def judged(confidence: float, level_s: float) -> tuple[str, dict[str, object]]:
    spec = spec_at(confidence)
    data = shared_load(spec, level_s)
    out = judge(spec, plan_tracks(spec, None), windows(spec, AT), data, {}, AT)
    return out.fields["verdict"], out.fields["metrics"][0]


@pytest.mark.parametrize("confidence", [0.95, 0.96, 0.99])
@pytest.mark.parametrize("level_s", [0.246, 0.254])
def test_a_candidate_whose_own_interval_contains_max_is_inconclusive(
    confidence: float, level_s: float
) -> None:
    """At 246 ms the candidate's own interval reaches past 250 ms: Inconclusive at every
    confidence. Before, above 0.95 the bound was judged on the stable mean plus the paired
    difference's interval ([245.7, 246.1] ms), which the shared load had cancelled out of:
    Pass at 0.96 and 0.99. The mirror at 254 ms was Regressed there."""
    verdict, metric = judged(confidence, level_s)
    assert (verdict, metric["verdict"]) == ("Inconclusive", "Inconclusive"), metric["message"]
    assert "baseline + change interval" not in str(metric["message"])
    assert "its interval [" in str(metric["message"])
    # The interval quoted is the candidate's own at the spec's confidence.
    candidate = shared_load(spec_at(confidence), level_s)["latency"].window[("candidate", "p95")]
    lo, hi = statistics.mean_interval(candidate.values * 1000, confidence)
    assert f"[{lo:.4g}ms, {hi:.4g}ms]" in str(metric["message"])


@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_a_candidate_clearly_on_one_side_of_max_still_concludes(confidence: float) -> None:
    assert judged(confidence, 0.200)[1]["verdict"] == "Pass"
    assert judged(confidence, 0.300)[1]["verdict"] == "Regressed"


def test_the_candidates_interval_widens_with_confidence() -> None:
    x = np.random.default_rng(0).normal(1.0, 0.1, 40)
    summary = statistics.summarize(x)
    assert statistics.mean_interval(x, 0.95) == pytest.approx((summary.ci95_low, summary.ci95_high))
    lo95, hi95 = statistics.mean_interval(x, 0.95)
    lo99, hi99 = statistics.mean_interval(x, 0.99)
    assert lo99 < lo95 < hi95 < hi99
