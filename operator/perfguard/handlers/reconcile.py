"""The loop every kind shares: validate, evaluate, write status if changed, emit Events.

Each resource gets one Kopf daemon: it evaluates at the spec's interval and wakes early
when the spec changes. Status is patched only when its content changed (timestamps of
the evaluation aside), so an idle fleet does not churn etcd and watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from perfguard.api.base import ApiModel
from perfguard.api.conditions import Condition, ConditionStatus
from perfguard.api.resources import Resource
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.observability import resource_logger
from perfguard.outcome import EventSpec, Outcome
from perfguard.status import READY, false, merge, now, parse_conditions, to_wire

Evaluator = Callable[[ApiModel, Mapping[str, Any], datetime, ResourceRef], Awaitable[Outcome]]
"""(validated spec, previous status, now, resource) -> Outcome. Must not raise for bad data."""


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        location = ".".join(str(p) for p in item["loc"])
        parts.append(f"spec.{location}: {item['msg']}")
    more = len(error.errors()) - 5
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning `old` into `new`: keys that disappeared are set to null."""
    patch: dict[str, Any] = dict(new)
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


_VOLATILE = ("lastEvaluationTime",)


def _comparable(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in _VOLATILE}


WAKE = "perfguard-wake"
EVALUATED_GENERATION = "perfguard-evaluated-generation"


async def wake_on_change(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Watch-event handler: wake the resource's daemon when its spec (generation) changed.

    Status patches and metadata edits do not change the generation, so they do not wake it.
    Event handlers write no annotations and need no finalizer, unlike on.update.
    """
    wake = memo.get(WAKE)
    generation = body.get("metadata", {}).get("generation")
    if isinstance(wake, asyncio.Event) and generation != memo.get(EVALUATED_GENERATION):
        wake.set()


class ResourceLoop:
    def __init__(
        self,
        resource: Resource,
        evaluator: Evaluator,
        verdicts: tuple[str, ...],
        interval_of: Callable[[Any], timedelta],
    ) -> None:
        self.resource = resource
        self.evaluator = evaluator
        self.verdicts = verdicts
        self.interval_of = interval_of

    async def run(
        self,
        *,
        body: kopf.Body,
        stopped: kopf.DaemonStopped,
        memo: kopf.Memo,
        name: str,
        namespace: str,
        **_: Any,
    ) -> None:
        wake = memo.setdefault(WAKE, asyncio.Event())
        ref = ResourceRef(self.resource.kind, namespace, name)
        wakers = get_runtime().wakers
        wakers[ref] = wake
        try:
            while not stopped:
                wake.clear()
                memo[EVALUATED_GENERATION] = body.metadata.get("generation")
                interval = await self.reconcile(body=body, name=name, namespace=namespace)
                # Sleep until the interval is up or something wakes us (a spec change, see
                # wake_on_change, or a watched object); stopping cancels the daemon.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=interval.total_seconds())
        finally:
            if wakers.get(ref) is wake:
                del wakers[ref]

    async def reconcile(self, *, body: kopf.Body, name: str, namespace: str) -> timedelta:
        runtime = get_runtime()
        kind = self.resource.kind
        log = resource_logger(kind, namespace, name)
        generation = int(body.metadata.get("generation") or 0)
        old_status: dict[str, Any] = dict(body.get("status") or {})
        old_conditions = parse_conditions(old_status.get("conditions"))
        at = now()
        started = time.perf_counter()
        try:
            spec = self.resource.spec.model_validate(dict(body.spec))
        except ValidationError as error:
            message = describe_validation_error(error)
            log.warning("invalid spec", error=message)
            runtime.metrics.evaluations.labels(kind, "invalid_spec").inc()
            ready = next((c for c in old_conditions if c.type == READY), None)
            first = ready is None or ready.reason != "InvalidSpec" or ready.message != message
            outcome = Outcome(
                fields={"reason": "InvalidSpec", "message": message},
                conditions=[false(READY, "InvalidSpec", message)],
                events=[EventSpec("Warning", "InvalidSpec", message)] if first else [],
            )
            await self._write(
                body, name, namespace, generation, old_status, old_conditions, outcome, at
            )
            return timedelta(minutes=5)
        try:
            outcome = await self.evaluator(spec, old_status, at, ResourceRef(kind, namespace, name))
            runtime.metrics.evaluations.labels(kind, "ok").inc()
        except Exception as error:  # one resource's failure must not stop the others
            log.exception("evaluation failed")
            runtime.metrics.evaluations.labels(kind, "error").inc()
            outcome = Outcome(
                fields={},
                conditions=[false(READY, "EvaluationError", f"{type(error).__name__}: {error}")],
            )
        finally:
            runtime.metrics.evaluation_seconds.labels(kind).observe(time.perf_counter() - started)
        await self._write(
            body, name, namespace, generation, old_status, old_conditions, outcome, at
        )
        interval: timedelta = self.interval_of(spec)
        return interval

    async def _write(
        self,
        body: kopf.Body,
        name: str,
        namespace: str,
        generation: int,
        old_status: dict[str, Any],
        old_conditions: list[Condition],
        outcome: Outcome,
        at: datetime,
    ) -> None:
        runtime = get_runtime()
        kind = self.resource.kind
        conditions = merge(old_conditions, outcome.conditions, generation=generation, at=at)
        merged = {
            **{k: v for k, v in old_status.items() if k not in {"conditions"}},
            **outcome.fields,
            "conditions": to_wire(conditions),
            "observedGeneration": generation,
        }
        # A field set to None by the evaluation is removed (status_patch sends null).
        new_status = {k: v for k, v in merged.items() if v is not None}
        if "lastEvaluationTime" not in outcome.fields and outcome.verdict is not None:
            new_status["lastEvaluationTime"] = at.isoformat().replace("+00:00", "Z")
        if _comparable(new_status) != _comparable(old_status):
            writer = runtime.status_writer
            if writer is None:
                raise RuntimeError("no status writer configured")
            await writer.patch_status(
                self.resource.plural, namespace, name, status_patch(old_status, new_status)
            )
            runtime.metrics.status_patches.labels(kind).inc()
        for event in outcome.events:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        ready = next((c for c in conditions if c.type == READY), None)
        runtime.metrics.ready.labels(kind, namespace, name).set(
            1 if ready is not None and ready.status == ConditionStatus.TRUE else 0
        )
        for item in outcome.fields.get("metrics") or []:
            if isinstance(item, dict) and item.get("delta") is not None:
                runtime.metrics.metric_delta.labels(
                    kind,
                    namespace,
                    name,
                    item.get("name", ""),
                    item.get("statistic", ""),
                    item.get("comparison", ""),
                ).set(float(item["delta"]))
        runtime.metrics.export_status(kind, namespace, name, outcome.fields, at)
        if outcome.verdict is not None:
            runtime.metrics.set_verdict(kind, namespace, name, outcome.verdict, self.verdicts)
            runtime.metrics.last_evaluation.labels(kind, namespace, name).set(at.timestamp())
