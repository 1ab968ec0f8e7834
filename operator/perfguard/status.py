"""Condition helpers, per the Kubernetes API conventions.

`conditions` is a list keyed by `type`. `lastTransitionTime` changes only when `status`
changes (as cert-manager's SetCertificateCondition does); `observedGeneration` says which
spec the condition was computed for. A merge patch replaces the whole list, so callers
build the complete list here and write it in one patch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from perfguard.api.conditions import MAX_MESSAGE, Condition, ConditionStatus
from perfguard.times import format_time

READY = "Ready"
# Ready's reason when an evaluation raised; the status keeps the previous verdict.
EVALUATION_ERROR = "EvaluationError"


@dataclass(frozen=True)
class ConditionUpdate:
    """A condition as an evaluation wants it to be (times are filled in by `merge`)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def shorten(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters, with "..." where it was cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten_utf8(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` bytes of UTF-8 (never inside a character), with
    "..." where it was cut: the API server counts an Event's message in bytes."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "..."


def parse_conditions(raw: Iterable[Mapping[str, Any]] | None) -> list[Condition]:
    """Read conditions from a status dict, skipping malformed entries rather than failing."""
    result: list[Condition] = []
    for item in raw or ():
        try:
            result.append(Condition.model_validate(item))
        except ValueError:
            continue
    return result


def merge(
    existing: Sequence[Condition],
    updates: Iterable[ConditionUpdate],
    *,
    generation: int,
    at: datetime | None = None,
) -> list[Condition]:
    """Apply updates to existing conditions; keep unrelated ones; keep order stable.

    A condition whose status did not change keeps its lastTransitionTime, even when its
    reason or message did. A message longer than the CRD allows is cut to fit: the API
    server would refuse the whole status patch (422).
    """
    at = at or now()
    by_type = {c.type: c for c in existing}
    order = [c.type for c in existing]
    for update in updates:
        old = by_type.get(update.type)
        changed = old is None or old.status != update.status
        by_type[update.type] = Condition(
            type=update.type,
            status=update.status,
            reason=update.reason,
            message=shorten(update.message, MAX_MESSAGE),
            last_transition_time=at if changed or old is None else old.last_transition_time,
            observed_generation=generation,
        )
        if update.type not in order:
            order.append(update.type)
    return [by_type[t] for t in order]


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def transitioned(
    before: Sequence[Condition], after: Sequence[Condition], type_: str
) -> Condition | None:
    """The condition `type_` in `after` if its status differs from `before` (or is new)."""
    new = find(after, type_)
    old = find(before, type_)
    if new is None:
        return None
    if old is None or old.status != new.status:
        return new
    return None


def to_wire(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [c.to_wire() for c in conditions]


def next_status(
    old: Mapping[str, Any],
    fields: Mapping[str, Any],
    updates: Iterable[ConditionUpdate],
    *,
    generation: int,
    at: datetime,
    measured: bool,
) -> dict[str, Any]:
    """The status an evaluation leaves: `old` with the evaluation's `fields` over it (a field
    set to None is removed) and its conditions merged (see merge: each updated condition
    carries `generation` as its own observedGeneration). When the evaluation reached a
    verdict (`measured`), `observedGeneration` becomes `generation` and
    `lastEvaluationTime` is `at` (unless its fields carry one already).

    An evaluation that reached no verdict (it raised) leaves `observedGeneration` where it
    was: the verdict in status is still the one computed for that generation, and a gate
    comparing `observedGeneration` with `metadata.generation` (the Argo `web` template, the
    Flagger gates) must not take it for a verdict about a newer spec.

    The operator writes this (handlers/reconcile.py); `perfguard evaluate` and the benchmarks
    replay evaluations through it, so a replay carries status forward as the operator does:
    an evaluation whose data source failed sets its verdict, reason and message, keeps the
    last metrics shown, and says when that verdict was reached.
    """
    conditions = merge(
        parse_conditions(old.get("conditions")), updates, generation=generation, at=at
    )
    merged = {
        **{k: v for k, v in old.items() if k != "conditions"},
        **fields,
        "conditions": to_wire(conditions),
        "observedGeneration": generation if measured else old.get("observedGeneration"),
    }
    if measured and "lastEvaluationTime" not in fields:
        merged["lastEvaluationTime"] = format_time(at)
    return {k: v for k, v in merged.items() if v is not None}


def unknown(type_: str, reason: str, message: str) -> ConditionUpdate:
    return ConditionUpdate(type_, ConditionStatus.UNKNOWN, reason, message)


def true(type_: str, reason: str, message: str) -> ConditionUpdate:
    return ConditionUpdate(type_, ConditionStatus.TRUE, reason, message)


def false(type_: str, reason: str, message: str) -> ConditionUpdate:
    return ConditionUpdate(type_, ConditionStatus.FALSE, reason, message)
