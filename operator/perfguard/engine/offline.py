"""`perfguard evaluate`: the operator's engine without a cluster.

There is no stored status to remember `breachSince`, so the evaluation is replayed at
`interval` steps over the `sustainFor` before `at`, carrying the status forward exactly as
the operator would: a breach's duration is judged the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.capacityplan import evaluate as evaluate_capacity
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.tracks import plan_tracks
from perfguard.sources.prometheus import NO_OPTIONS, PrometheusClient, RequestOptions
from perfguard.sources.workloads import WorkloadHashes
from perfguard.status import next_status


@dataclass(frozen=True)
class EvaluateOptions:
    prometheus: str
    at: datetime
    candidate_hash: str | None = None
    stable_hash: str | None = None
    generation: int = 1
    # Credentials and TLS trust (--bearer-token-file, --ca-file and the spec's tls).
    request: RequestOptions = NO_OPTIONS


def replay_times(spec: PerfBaselineSpec, at: datetime) -> list[datetime]:
    interval = spec.analysis.interval
    steps = int(spec.analysis.sustain_for / interval) + 1
    return [at - interval * k for k in range(steps, -1, -1)]


async def replay_perfbaseline(spec: PerfBaselineSpec, options: EvaluateOptions) -> dict[str, Any]:
    hashes = None
    if spec.workload_ref is not None:
        hashes = WorkloadHashes(options.candidate_hash, options.stable_hash)
    plan = plan_tracks(spec, hashes)
    status: dict[str, Any] = {}
    timeout = spec.prometheus.timeout if spec.prometheus else timedelta(seconds=10)
    async with PrometheusClient(
        options.prometheus, timeout=timeout, options=options.request
    ) as client:
        for at in replay_times(spec, options.at):
            evaluation = await evaluate(spec, plan, status, at, client)
            status = next_status(
                status,
                evaluation.fields,
                evaluation.conditions,
                generation=options.generation,
                at=at,
                measured=evaluation.verdict is not None,
            )
    return status


async def evaluate_capacityplan_offline(
    spec: CapacityPlanSpec, options: EvaluateOptions, hosts: list[str] | None
) -> dict[str, Any]:
    """One CapacityPlan evaluation without a cluster: `hosts` None takes every host the
    exporters report (there are no Node objects to select from)."""
    timeout = spec.prometheus.timeout if spec.prometheus else timedelta(seconds=10)
    async with PrometheusClient(
        options.prometheus, timeout=timeout, options=options.request
    ) as client:
        outcome = await evaluate_capacity(spec, hosts, {}, options.at, client)
    return next_status(
        {},
        outcome.fields,
        outcome.conditions,
        generation=options.generation,
        at=options.at,
        measured=outcome.verdict is not None,
    )
