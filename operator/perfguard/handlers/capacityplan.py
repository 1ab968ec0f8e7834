"""CapacityPlan's evaluator for the operator: select Nodes, query Prometheus, judge."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from perfguard.api.base import ApiModel
from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.engine.capacityplan import evaluate, failed
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.outcome import Outcome
from perfguard.sources.nodes import NodeReadError
from perfguard.sources.prometheus_auth import client_for, default_reader


async def evaluate_capacityplan(
    spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
) -> Outcome:
    assert isinstance(spec, CapacityPlanSpec)
    runtime = get_runtime()
    assert runtime.nodes is not None
    try:
        selected = await runtime.nodes.select(spec.nodes.selector)
    except NodeReadError as error:
        return failed(error.reason, error.message, previous)
    client = await client_for(
        spec.prometheus,
        ref.namespace,
        default_url=runtime.config.default_prometheus_url,
        allowed_urls=runtime.config.prometheus_allowed_urls,
        reader=default_reader(),
        session=runtime.http,
    )
    return await evaluate(
        spec,
        list(selected),
        previous,
        at,
        client,
        advertised_gpus=selected,
        generation=ref.generation,
    )
