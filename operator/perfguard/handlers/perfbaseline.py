"""PerfBaseline's evaluator for the operator: resolve the candidate, query, judge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from perfguard.api.base import ApiModel
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import evaluate, unavailable
from perfguard.engine.tracks import plan_tracks
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.outcome import Outcome
from perfguard.sources.prometheus_auth import client_for, default_reader
from perfguard.sources.workloads import WorkloadError, WorkloadHashes


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
            return unavailable(
                error.reason,
                error.message,
                previous,
                at=at,
                spec=spec,
                status_refresh=runtime.config.status_refresh,
            )
    client = await client_for(
        spec.prometheus,
        namespace,
        default_url=runtime.config.default_prometheus_url,
        allowed_urls=runtime.config.prometheus_allowed_urls,
        reader=default_reader(),
        session=runtime.http,
    )
    return await evaluate(
        spec,
        plan_tracks(spec, hashes),
        previous,
        at,
        client,
        status_refresh=runtime.config.status_refresh,
    )
