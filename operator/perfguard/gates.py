"""Canary gates: may this candidate be promoted? Pure decisions, no I/O.

The operator's HTTP server (perfguard.webserver) answers Flagger's webhooks with these
decisions. Flagger proceeds on a 2xx and halts on anything else, showing the response body in
its Events: every refusal is therefore a distinct status code with a one-line reason.

    200  proceed: PerfBaseline Pass / EnvParity InSync, on the current spec (and candidate)
    400  the payload is not a Flagger webhook payload, or its metadata.candidate is empty
         or cannot be checked (a hash against a PerfBaseline identifying its candidate by
         labels)
    404  the named PerfBaseline / EnvParity does not exist
    409  not yet: Inconclusive, Unverified, no verdict yet, spec changed since the verdict,
         the verdict is about another candidate, the latest evaluation failed (its
         verdict is an earlier one's), or the verdict is stale (last evaluated longer ago
         than 3 × interval + statusRefresh, see perfguard.freshness: the operator is not
         evaluating the resource) or stamped more than a minute in the future (ClockSkew)
    412  no: PerfBaseline Fail / EnvParity Drifted, the precondition of promotion failed
    502  the Kubernetes API could not be read

Payload (Flagger's, for every webhook type)::

    {"name": "podinfo", "namespace": "test", "phase": "Progressing",
     "checksum": "...", "metadata": {"perfbaseline": "podinfo", "candidate": "7d9f8c6b5"}}

`metadata` (strings only, as Flagger sends them) may name the resource:
`perfbaseline` (or `envparity`) as `name` or `namespace/name`, or the generic `name` and
`namespace` keys; without them the resource is the Canary's own name and namespace.
`candidate` is the expected candidate identity (`status.candidate.identity`: the canary's
pod-template hash for a PerfBaseline following a workloadRef): Flagger's `checksum` hashes
the Canary's spec, not the pod template, so it cannot identify the candidate; when
`candidate` is given, a verdict about any other candidate is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from perfguard.api.conditions import ConditionStatus
from perfguard.freshness import STATUS_REFRESH, ahead, evaluated_at, staleness
from perfguard.render import one_line
from perfguard.status import EVALUATION_ERROR, READY

Kind = Literal["PerfBaseline", "EnvParity"]

PLURALS: Final[dict[str, str]] = {"PerfBaseline": "perfbaselines", "EnvParity": "envparities"}
_METADATA_KEY: Final[dict[str, str]] = {"PerfBaseline": "perfbaseline", "EnvParity": "envparity"}

OK: Final = 200
BAD_REQUEST: Final = 400
NOT_FOUND: Final = 404
NOT_YET: Final = 409
REFUSED: Final = 412
UPSTREAM: Final = 502

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_MESSAGE_LIMIT: Final = 300


class PayloadError(ValueError):
    """The request body is not a usable Flagger webhook payload."""


@dataclass(frozen=True)
class GateTarget:
    """What a webhook call asks about."""

    kind: Kind
    namespace: str
    name: str
    candidate: str | None = None
    canary: str = ""
    phase: str | None = None

    @property
    def plural(self) -> str:
        return PLURALS[self.kind]

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class Decision:
    status: int
    reason: str
    message: str

    @property
    def allowed(self) -> bool:
        return 200 <= self.status < 300

    def line(self) -> str:
        """The one-line response body Flagger shows in its Events."""
        return f"{self.reason}: {self.message}"


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise PayloadError(f"{what} must be a non-empty string")
    return value


def _check_name(value: str, what: str, pattern: re.Pattern[str]) -> str:
    if not pattern.match(value):
        raise PayloadError(f"{what} {value!r} is not a valid Kubernetes name")
    return value


def parse_flagger_payload(payload: Any, kind: Kind) -> GateTarget:
    """The resource and candidate a Flagger webhook call asks about."""
    if not isinstance(payload, Mapping):
        raise PayloadError("the body must be a JSON object (Flagger's webhook payload)")
    canary_name = _string(payload.get("name"), "name")
    canary_namespace = _string(payload.get("namespace"), "namespace")
    phase = payload.get("phase")
    if phase is not None and not isinstance(phase, str):
        raise PayloadError("phase must be a string")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise PayloadError("metadata must be an object of strings")
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise PayloadError(f"metadata.{key} must be a string, as Flagger sends it")
    namespace, name = canary_namespace, canary_name
    named = metadata.get(_METADATA_KEY[kind])
    if named:
        if "/" in named:
            namespace, _, name = named.partition("/")
        else:
            name = named
    else:
        name = metadata.get("name") or name
        namespace = metadata.get("namespace") or namespace
    candidate = metadata.get("candidate")
    if candidate is not None and not candidate.strip():
        raise PayloadError(
            "metadata.candidate is empty: give the canary's candidate identity, or leave the "
            "key out to not check the candidate"
        )
    return GateTarget(
        kind=kind,
        namespace=_check_name(namespace, "namespace", _NAMESPACE),
        name=_check_name(name, "name", _NAME),
        candidate=candidate,
        canary=f"{canary_namespace}/{canary_name}",
        phase=phase,
    )


def _one_line(text: Any) -> str:
    return one_line(text, _MESSAGE_LIMIT)


def _detail(status: Mapping[str, Any]) -> str:
    message = status.get("message")
    return f" ({_one_line(message)})" if message else ""


def _unevaluated(obj: Mapping[str, Any], target: GateTarget) -> Decision | None:
    """A refusal when the status does not judge the current spec, else None."""
    status = obj.get("status") or {}
    if not status.get("verdict"):
        return Decision(NOT_YET, "NotEvaluated", f"{target.ref} has no verdict yet")
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed != generation:
        return Decision(
            NOT_YET,
            "SpecNotEvaluated",
            f"{target.ref}: the verdict is for generation {observed}, the spec is at "
            f"generation {generation}; waiting for its evaluation",
        )
    return None


def _failed_evaluation(status: Mapping[str, Any], target: GateTarget) -> Decision | None:
    """A refusal when the latest evaluation raised: the status then still holds the verdict
    of an earlier one, which must not promote. (When the spec changed meanwhile,
    observedGeneration still names the earlier spec and _unevaluated refuses first; this
    is the same spec's earlier verdict.)"""
    # Read from the raw entries, not through the Condition model: an entry the model would
    # skip as malformed must still stop a promotion.
    for condition in status.get("conditions") or []:
        if (
            isinstance(condition, Mapping)
            and condition.get("type") == READY
            and condition.get("status") == ConditionStatus.FALSE.value
            and condition.get("reason") == EVALUATION_ERROR
        ):
            return Decision(
                NOT_YET,
                "EvaluationFailed",
                f"{target.ref}: the latest evaluation failed "
                f"({_one_line(str(condition.get('message') or ''))}); the verdict "
                f"{status.get('verdict')} is from an earlier one",
            )
    return None


def _judged_candidate(status: Mapping[str, Any]) -> str | None:
    candidate = status.get("candidate")
    if isinstance(candidate, Mapping):
        identity = candidate.get("identity")
        return str(identity) if identity else None
    return None


def _by_labels(status: Mapping[str, Any]) -> bool:
    """Whether the status identifies its candidate by a label set (spec.candidate, or the
    selector), the same for every revision, rather than by a pod-template hash
    (workloadRef)."""
    candidate = status.get("candidate")
    if not isinstance(candidate, Mapping):
        return False
    source = candidate.get("source")
    if source is not None:
        return bool(source != "WorkloadRef")
    return "=" in str(candidate.get("identity") or "")  # a status from before `source`


def _tied_to_canary(status: Mapping[str, Any], target: GateTarget) -> bool:
    """Whether the verdict is about the very canary asking: the webhook names it
    (metadata.candidate) and the status identifies it by its pod-template hash."""
    return (
        target.candidate is not None
        and _judged_candidate(status) == target.candidate
        and not _by_labels(status)
    )


def _stale(status: Mapping[str, Any], target: GateTarget) -> Decision | None:
    if target.candidate is None:
        return None
    judged = _judged_candidate(status)
    if judged == target.candidate:
        return None
    if _by_labels(status):
        # Every revision has the same label identity: a hash can never match it, and a 409
        # would hold the canary for ever.
        return Decision(
            BAD_REQUEST,
            "InvalidPayload",
            f"{target.ref} identifies its candidate by labels ({judged}); "
            f"metadata.candidate {target.candidate!r} (a pod-template hash?) cannot be checked "
            "against it: use workloadRef, or leave metadata.candidate out",
        )
    return Decision(
        NOT_YET,
        "StaleCandidate",
        f"{target.ref}: verdict {status.get('verdict')} is about candidate {judged or 'none'}, "
        f"not {target.candidate}; waiting for an evaluation of {target.candidate}",
    )


def _out_of_date(
    obj: Mapping[str, Any], target: GateTarget, now: datetime | None, status_refresh: timedelta
) -> Decision | None:
    """A refusal when the verdict was reached too long ago for the operator to be still
    evaluating the resource (down, stuck, paused, or no longer serving its namespace)."""
    status: Mapping[str, Any] = obj.get("status") or {}
    verdict = status.get("verdict")
    if evaluated_at(obj) is None:
        return Decision(
            NOT_YET,
            "StaleVerdict",
            f"{target.ref}: verdict {verdict} has no lastEvaluationTime; its age is unknown",
        )
    now = now or datetime.now(UTC)
    future = ahead(obj, now)
    if future is not None:
        return Decision(
            NOT_YET,
            "ClockSkew",
            f"{target.ref}: verdict {verdict} is stamped {future}; its age is unknown (a clock "
            "is wrong, or the stamp was not written by a running operator)",
        )
    stale = staleness(target.kind, obj, now, status_refresh)
    if stale is None:
        return None
    return Decision(
        NOT_YET,
        "StaleVerdict",
        f"{target.ref}: verdict {verdict} was reached {stale}; is the operator evaluating it?",
    )


def not_found(target: GateTarget) -> Decision:
    return Decision(NOT_FOUND, "NotFound", f"{target.ref} does not exist")


def unavailable(target: GateTarget, detail: str) -> Decision:
    return Decision(UPSTREAM, "ApiUnavailable", f"cannot read {target.ref}: {_one_line(detail)}")


def judge_perfbaseline(
    obj: Mapping[str, Any] | None,
    target: GateTarget,
    *,
    now: datetime | None = None,
    status_refresh: timedelta = STATUS_REFRESH,
) -> Decision:
    """Promote only on a recent Pass for the current spec (and the expected candidate, if
    given). `now` defaults to the current time; `status_refresh` is the operator's."""
    if obj is None:
        return not_found(target)
    refusal = _unevaluated(obj, target)
    if refusal is not None:
        return refusal
    status: Mapping[str, Any] = obj.get("status") or {}
    refusal = (
        _stale(status, target)
        or _failed_evaluation(status, target)
        or _out_of_date(obj, target, now, status_refresh)
    )
    if refusal is not None:
        return refusal
    verdict = status.get("verdict")
    judged = _judged_candidate(status) or "none"
    if verdict == "Pass":
        return Decision(OK, "Passed", f"{target.ref}: Pass for candidate {judged}")
    if verdict == "Fail":
        return Decision(
            REFUSED,
            "Regressed",
            f"{target.ref}: Fail for candidate {judged}{_detail(status)}; promotion blocked",
        )
    return Decision(
        NOT_YET,
        str(verdict) if verdict == "Inconclusive" else "UnknownVerdict",
        f"{target.ref}: {verdict} for candidate {judged}{_detail(status)}",
    )


def judge_perfbaseline_rollback(
    obj: Mapping[str, Any] | None,
    target: GateTarget,
    *,
    now: datetime | None = None,
    status_refresh: timedelta = STATUS_REFRESH,
) -> Decision:
    """For Flagger's `rollback` hook: 200 (roll back) only on Fail for the current candidate.

    A recent Fail rolls back. An old one (stale, unstamped or stamped in the future, as the
    promotion gate judges them: the operator may have stopped evaluating) rolls back only
    when it is tied to this canary: the webhook names the candidate (metadata.candidate)
    and the status identifies it by that pod-template hash. A label identity is the same
    for every revision, so an old Fail of an earlier revision would roll back every later
    one: 409 StaleVerdict (or ClockSkew) instead."""
    if obj is None:
        return not_found(target)
    refusal = _unevaluated(obj, target) or _stale(obj.get("status") or {}, target)
    if refusal is not None:
        return refusal
    status: Mapping[str, Any] = obj.get("status") or {}
    judged = _judged_candidate(status) or "none"
    if status.get("verdict") == "Fail":
        old = _out_of_date(obj, target, now, status_refresh)
        if old is not None and not _tied_to_canary(status, target):
            return replace(
                old,
                message=f"{old.message}; an old Fail rolls back only a canary it is tied to "
                "(metadata.candidate = the pod-template hash in status.candidate.identity)",
            )
        return Decision(
            OK,
            "Regressed",
            f"{target.ref}: Fail for candidate {judged}{_detail(status)}; roll back",
        )
    return Decision(
        NOT_YET,
        "NoRegression",
        f"{target.ref}: {status.get('verdict')} for candidate {judged}; no reason to roll back",
    )


def judge_envparity(
    obj: Mapping[str, Any] | None,
    target: GateTarget,
    *,
    now: datetime | None = None,
    status_refresh: timedelta = STATUS_REFRESH,
) -> Decision:
    """Promote only when the environments are InSync on the current spec, recently."""
    if obj is None:
        return not_found(target)
    refusal = _unevaluated(obj, target)
    if refusal is not None:
        return refusal
    status: Mapping[str, Any] = obj.get("status") or {}
    refusal = _failed_evaluation(status, target) or _out_of_date(obj, target, now, status_refresh)
    if refusal is not None:
        return refusal
    verdict = status.get("verdict")
    drift = status.get("driftPercent")
    numbers = f" (drift {drift}%)" if isinstance(drift, int | float) else ""
    if verdict == "InSync":
        return Decision(OK, "InSync", f"{target.ref}: InSync{numbers}")
    if verdict == "Drifted":
        return Decision(
            REFUSED,
            "Drifted",
            f"{target.ref}: Drifted{numbers}{_detail(status)}; promotion blocked",
        )
    return Decision(
        NOT_YET,
        str(verdict) if verdict == "Unverified" else "UnknownVerdict",
        f"{target.ref}: {verdict}{_detail(status)}",
    )
