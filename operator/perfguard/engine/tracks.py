"""Which series are the candidate, the stable and the baseline of a PerfBaseline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from perfguard.api.perfbaseline import Comparison, PerfBaselineSpec
from perfguard.sources.perfbaseline_queries import Track
from perfguard.sources.workloads import WorkloadHashes

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 10_800
NICE_STEPS = tuple(
    timedelta(seconds=s) for s in (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
)
MIN_RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class TrackPlan:
    """What to compare. `candidate` None means a continuous watch of the whole workload."""

    current: Track
    candidate: Track | None
    stable: Track | None
    baseline: Track
    identity: str
    source: str
    concurrent: bool
    historical: bool
    # Why a Concurrent comparison the spec asks for cannot be made although a candidate is
    # in flight (its stable track is unknown); None when it can, or is not asked for.
    no_stable: str | None = None


def _identity(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def plan_tracks(spec: PerfBaselineSpec, hashes: WorkloadHashes | None) -> TrackPlan:
    candidate: Track | None = None
    stable: Track | None = None
    if spec.workload_ref is not None and hashes is not None:
        label = spec.workload_ref.hash_label
        # Equal hashes are one ReplicaSet, a fully promoted workload: no canary in flight.
        # rollout_hashes says so for a Rollout already; `perfguard evaluate --candidate-hash
        # H --stable-hash H` did not, and judged the stable against itself (delta 0, Pass).
        if hashes.candidate and hashes.candidate != hashes.stable:
            candidate = Track("candidate", {label: hashes.candidate})
        if hashes.stable:
            stable = Track("stable", {label: hashes.stable})
        source = "WorkloadRef"
        identity = hashes.candidate or hashes.stable or "none"
    else:
        if spec.candidate is not None:
            candidate = Track("candidate", dict(spec.candidate.match_labels))
        if spec.stable is not None:
            stable = Track("stable", dict(spec.stable.match_labels))
        source = "Labels" if candidate is not None else "Workload"
        identity = _identity(candidate.matchers) if candidate else _identity(dict(spec.selector))
    current = candidate or Track("workload", {})
    # Historical: the stable series; with neither candidate nor stable, the whole workload.
    baseline = Track("baseline", dict(stable.matchers)) if stable else Track("baseline", {})
    concurrent = (
        spec.comparison in (Comparison.CONCURRENT, Comparison.BOTH)
        and candidate is not None
        and stable is not None
    )
    historical = spec.comparison in (Comparison.HISTORICAL, Comparison.BOTH) or (
        # With no canary in flight a Concurrent PerfBaseline still watches the workload.
        candidate is None
    )
    no_stable = None
    if (
        spec.comparison in (Comparison.CONCURRENT, Comparison.BOTH)
        and candidate is not None
        and stable is None
    ):
        # Without this the Concurrent metrics were silently left out, and a verdict resting
        # on throughput alone passed the canary (a Rollout between currentPodHash and
        # stableRS, or `perfguard evaluate --candidate-hash` without --stable-hash).
        ref = spec.workload_ref
        if ref is None:
            where = "the spec names no stable track"
        else:
            empty = "its status.stableRS is empty; " if ref.kind.value == "Rollout" else ""
            where = (
                f"no stable pod-template hash is known for {ref.kind.value} {ref.name} "
                f"({empty}offline: --stable-hash not given)"
            )
        no_stable = (
            f"not judged: the Concurrent comparison needs the stable track of candidate "
            f"{identity}, and {where}"
        )
    return TrackPlan(
        current,
        candidate,
        stable,
        baseline,
        identity,
        source,
        concurrent,
        historical,
        no_stable,
    )


def baseline_step(spec: PerfBaselineSpec) -> timedelta:
    """The baseline's resolution: as asked, else the analysis step, coarsened to fit."""
    wanted = spec.baseline.step or spec.analysis.step
    needed = spec.baseline.window / MAX_POINTS
    if wanted >= needed:
        return wanted
    return next((s for s in NICE_STEPS if s >= needed), needed)


def rate_window(spec: PerfBaselineSpec) -> timedelta:
    """One rate window for candidate and baseline, so their samples are comparable."""
    if spec.analysis.rate_window is not None:
        return spec.analysis.rate_window
    return max(MIN_RATE_WINDOW, spec.analysis.step, baseline_step(spec))
