"""`perfguard evaluate`: the operator's engine without a cluster.

There is no stored status to remember `breachSince`, so the evaluation is replayed at
`interval` steps over the `sustainFor` before `at`, carrying the status forward exactly as
the operator would: a breach's duration is judged the same way. A step that cannot reach
Prometheus ends the replay (see CANNOT_ASK).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.capacityplan import evaluate as evaluate_capacity
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.tracks import plan_tracks
from perfguard.sources.prometheus import (
    NO_OPTIONS,
    FailureKind,
    PrometheusClient,
    RequestOptions,
)
from perfguard.sources.workloads import WorkloadHashes
from perfguard.status import READY, ConditionUpdate, next_status


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
            if _cannot_ask(evaluation.conditions):
                break
    return status


# Failures every later step of a replay would only repeat, an unresponsive Prometheus each
# after its own timeout (five steps of 10 s queries took a minute): Prometheus cannot be
# asked at all. The replay stops at the first, whose status says why (exit 4).
CANNOT_ASK = frozenset(
    {FailureKind.UNREACHABLE, FailureKind.TIMEOUT, FailureKind.TLS_ERROR, FailureKind.UNAUTHORIZED}
)


def _cannot_ask(conditions: Iterable[ConditionUpdate]) -> bool:
    ready = next((c for c in conditions if c.type == READY), None)
    return ready is not None and ready.reason in CANNOT_ASK


async def evaluate_capacityplan_offline(
    spec: CapacityPlanSpec, options: EvaluateOptions, hosts: list[str] | None
) -> dict[str, Any]:
    """One CapacityPlan evaluation without a cluster: `hosts` None takes every host the
    exporters report (there are no Node objects to select from).

    Named hosts are the fleet, as the operator's selected Nodes are: each must report, and
    one that sends no data makes the plan Unverified (DataMissing) here as there. Without
    this, coverage expected only the hosts present in the data, and a named host with no
    exporter passed as Sufficient. Each counts as advertising 0 GPUs: offline there is no
    device-plugin capacity to read, so its GPUs are those its DCGM series name, and the
    "advertises GPUs but no DCGM series" check (which needs a positive count) stays off.
    """
    timeout = spec.prometheus.timeout if spec.prometheus else timedelta(seconds=10)
    advertised = None if hosts is None else dict.fromkeys(hosts, 0)
    async with PrometheusClient(
        options.prometheus, timeout=timeout, options=options.request
    ) as client:
        outcome = await evaluate_capacity(
            spec, hosts, {}, options.at, client, advertised_gpus=advertised
        )
    return next_status(
        {},
        outcome.fields,
        outcome.conditions,
        generation=options.generation,
        at=options.at,
        measured=outcome.verdict is not None,
    )
