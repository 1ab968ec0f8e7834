"""PerfBaseline's evaluator for the operator: resolve the candidate, query, judge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from perfguard.api.base import ApiModel
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.tracks import plan_tracks
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.outcome import EventSpec, Outcome
from perfguard.sources.prometheus_auth import client_for, default_reader
from perfguard.sources.workloads import WorkloadError, WorkloadHashes
from perfguard.status import READY, false, parse_conditions, unknown


async def evaluate_perfbaseline(
    spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
) -> Outcome:
    assert isinstance(spec, PerfBaselineSpec)
    namespace = ref.namespace
    runtime = get_runtime()
    hashes: WorkloadHashes | None = None
    if spec.workload_ref is not None:
        assert runtime.workloads is not None
        try:
            hashes = await runtime.workloads.hashes(
                spec.workload_ref.kind.value, namespace, spec.workload_ref.name
            )
        except WorkloadError as error:
            was = next(
                (c for c in parse_conditions(previous.get("conditions")) if c.type == READY), None
            )
            events = (
                []
                if was is not None and was.reason == error.reason
                else [EventSpec("Warning", error.reason, error.message)]
            )
            return Outcome(
                fields={
                    "verdict": "Inconclusive",
                    "reason": error.reason,
                    "message": error.message,
                },
                conditions=[
                    false(READY, error.reason, error.message),
                    unknown("Regressed", error.reason, error.message),
                ],
                events=events,
                verdict="Inconclusive",
            )
    client = await client_for(
        spec.prometheus,
        namespace,
        default_url=runtime.config.default_prometheus_url,
        allowed_urls=runtime.config.prometheus_allowed_urls,
        reader=default_reader(),
        session=runtime.http,
    )
    return await evaluate(spec, plan_tracks(spec, hashes), previous, at, client)
