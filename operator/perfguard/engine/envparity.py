"""EnvParity evaluation: environments in, status fields, conditions and Events out (pure).

The `InSync` condition remembers drift across unverified evaluations (and restarts): once
drift was reported, only an InSync comparison reports it resolved, so `DriftDetected` and
`DriftResolved` Events pair up and an unreadable namespace never reads as "fixed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from perfguard.analysis.parity import (
    NOT_READ,
    Difference,
    Environment,
    ParityResult,
    compare,
    fingerprint,
    judge,
)
from perfguard.api.envparity import (
    MAX_DIFFERENCES,
    MAX_FINGERPRINTS,
    EnvParitySpec,
    ParityVerdict,
)
from perfguard.outcome import EventSpec, Outcome
from perfguard.status import READY, ConditionUpdate, false, parse_conditions, true, unknown

IN_SYNC: Final = "InSync"
DRIFT_UNCONFIRMED: Final = "DriftUnconfirmed"
SUMMARY_DIFFERENCES: Final = 3


def _drifted_before(previous: Mapping[str, Any]) -> bool:
    for condition in parse_conditions(previous.get("conditions")):
        if condition.type == IN_SYNC:
            return condition.status.value == "False"
    return False


def _difference_status(d: Difference) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "namespace": d.namespace,
            "workload": d.name,
            "kind": d.workload.kind,
            "container": d.container,
            "field": d.field,
            "reference": d.reference,
            "target": d.target,
            "note": d.note,
        }.items()
        if v is not None
    }


def _percent(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") + "%"


def headline(
    result: ParityResult, spec: EnvParitySpec, reference: str, targets: Sequence[str]
) -> str:
    where = f"{reference} vs {', '.join(targets)}"
    drift = _percent(result.drift_percent)
    counts = f"{result.differing} of {result.compared} compared items differ ({drift}"
    limit = f"; limit {_percent(spec.max_drift_percent)})"
    unverified = f"; {result.unverified} unverified" if result.unverified else ""
    text = f"{where}: {counts}{limit}{unverified}"
    if result.differences:
        top = "; ".join(d.summary() for d in result.differences[:SUMMARY_DIFFERENCES])
        more = len(result.differences) - SUMMARY_DIFFERENCES
        text += f" — {top}" + (f" (+{more} more)" if more > 0 else "")
    elif result.unverified_items:
        shown = ", ".join(result.unverified_items[:SUMMARY_DIFFERENCES])
        more = len(result.unverified_items) - SUMMARY_DIFFERENCES
        text += f" — unresolved: {shown}" + (f" (+{more} more)" if more > 0 else "")
    return text


def nothing_compared(spec: EnvParitySpec, environments: Sequence[Environment]) -> str:
    """Why nothing was compared: no workload matched, or those that matched gave no item
    (a user fixes the selector in one case and spec.compare or spec.ignore in the other)."""
    kinds = ", ".join(k.value for k in spec.workloads.kinds)
    if not any(e.workloads for e in environments):
        where = ", ".join(e.namespace for e in environments)
        return f"no workloads of kinds {kinds} matched in {where}; nothing to compare"
    counts = ", ".join(f"{e.namespace}: {len(e.workloads)}" for e in environments)
    # Compared 0 with workloads paired on every side: each item is an unread Secret under
    # the same name on both sides, or there is no item at all.
    unread = any(item.value == NOT_READ for e in environments for item in e.items)
    why = (
        "their only items are Secrets whose contents are not read"
        if unread
        else "spec.compare and spec.ignore leave none"
    )
    return (
        f"workloads of kinds {kinds} matched ({counts}) but gave no item to compare: {why}; "
        "nothing to compare"
    )


def judge_environments(
    spec: EnvParitySpec,
    reference: Environment,
    targets: Sequence[Environment],
    previous: Mapping[str, Any],
    *,
    notes: Sequence[str] = (),
) -> Outcome:
    result = judge((compare(reference, t) for t in targets), spec.max_drift_percent)
    message = headline(result, spec, reference.namespace, [t.namespace for t in targets])
    if result.reason == "NothingCompared":
        message = nothing_compared(spec, [reference, *targets])
    if notes:
        message += " (" + "; ".join(notes) + ")"
    fields: dict[str, Any] = {
        "verdict": result.verdict.value,
        "reason": result.reason,
        "message": message,
        "driftPercent": round(result.drift_percent, 3),
        "compared": result.compared,
        "differing": result.differing,
        "unverified": result.unverified,
        # A namespaceSelector may match more targets than status lists: the reference and
        # the first targets keep theirs, the rest are counted.
        "fingerprints": [
            {"namespace": env.namespace, "fingerprint": fingerprint(env), "items": len(env.items)}
            for env in (reference, *targets)[:MAX_FINGERPRINTS]
        ],
        "omittedFingerprints": max(len(targets) + 1 - MAX_FINGERPRINTS, 0) or None,
        "differences": [_difference_status(d) for d in result.differences[:MAX_DIFFERENCES]],
        "totalDifferences": len(result.differences),
    }
    drifted_before = _drifted_before(previous)
    ready = true(READY, "Evaluated", "namespaces read and compared; see verdict for the outcome")
    events: list[EventSpec] = []
    if result.verdict == ParityVerdict.DRIFTED:
        in_sync = false(IN_SYNC, "Drifted", message)
        if not drifted_before:
            events.append(EventSpec("Warning", "DriftDetected", message))
    elif result.verdict == ParityVerdict.IN_SYNC:
        in_sync = true(IN_SYNC, "InSync", message)
        if drifted_before:
            events.append(EventSpec("Normal", "DriftResolved", message))
    elif drifted_before:
        in_sync = false(
            IN_SYNC, DRIFT_UNCONFIRMED, f"drift was reported; now unverified: {message}"
        )
    else:
        in_sync = unknown(IN_SYNC, result.reason, message)
        was = {c.type: c for c in parse_conditions(previous.get("conditions"))}.get(IN_SYNC)
        if was is None or was.reason != result.reason:
            events.append(EventSpec("Warning", "ParityUnverified", message))
    return Outcome(
        fields=fields, conditions=[ready, in_sync], events=events, verdict=result.verdict.value
    )


def unverified_conditions(
    reason: str, message: str, previous: Mapping[str, Any]
) -> list[ConditionUpdate]:
    """EnvParity's conditions besides Ready when nothing was compared (a read failed, the
    spec is invalid): InSync Unknown with the reason, or still False (DriftUnconfirmed) once
    drift was reported, so an unverified comparison never reads as in sync or as fixed."""
    if _drifted_before(previous):
        return [false(IN_SYNC, DRIFT_UNCONFIRMED, f"drift was reported; now unverified: {message}")]
    return [unknown(IN_SYNC, reason, message)]


def read_failed(reason: str, message: str, previous: Mapping[str, Any]) -> Outcome:
    """A namespace could not be read: Unverified, Ready=False, one Event per distinct cause."""
    conditions = {c.type: c for c in parse_conditions(previous.get("conditions"))}
    was_ready = conditions.get(READY)
    events = (
        []
        if was_ready is not None
        and was_ready.reason == reason
        and was_ready.status.value == "False"
        else [EventSpec("Warning", reason, message)]
    )
    return Outcome(
        fields={"verdict": ParityVerdict.UNVERIFIED.value, "reason": reason, "message": message},
        conditions=[
            false(READY, reason, message),
            *unverified_conditions(reason, message, previous),
        ],
        events=events,
        verdict=ParityVerdict.UNVERIFIED.value,
    )
