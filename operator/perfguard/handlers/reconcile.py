"""The loop every kind shares: validate, evaluate, write status when due, emit Events.

Each resource gets one Kopf daemon: it evaluates at the spec's interval and wakes early
when the spec changes. A daemon started on a resource evaluated before (the operator's
restart) keeps the schedule its status records (resume_delay). Status is patched when
its news changed (verdict, reasons, conditions, breaches: engine/status_news.py), and
otherwise with fresh readings every statusRefresh (write_cause), so a steady fleet does
not churn etcd and watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import kopf
from pydantic import ValidationError

from perfguard.api.base import ApiModel
from perfguard.api.conditions import ConditionStatus
from perfguard.api.resources import CAPACITY_PLAN, ENV_PARITY, PERF_BASELINE, Resource
from perfguard.api.validation import describe_validation_errors, summary
from perfguard.engine import capacityplan, envparity, perfbaseline
from perfguard.engine.status_news import all_but_stamp, changed_news
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.observability import resource_logger
from perfguard.outcome import EventSpec, Outcome
from perfguard.status import (
    EVALUATION_ERROR,
    READY,
    ConditionUpdate,
    false,
    next_status,
    now,
    parse_conditions,
    shorten_utf8,
    unknown,
)
from perfguard.times import parse_time_or_none

Evaluator = Callable[[ApiModel, Mapping[str, Any], datetime, ResourceRef], Awaitable[Outcome]]
"""(validated spec, previous status, now, resource with the generation judged) -> Outcome.
Must not raise for bad data."""

Undetermined = Callable[[str, str, Mapping[str, Any]], list[ConditionUpdate]]
"""(reason, message, previous status) -> a kind's conditions besides Ready when it reaches no
verdict: their Unknown form, a failure already reported kept."""


def _ready_only(reason: str, message: str, previous: Mapping[str, Any]) -> list[ConditionUpdate]:
    return []


# Each kind's conditions for a spec it refuses (the engines' failure paths give the same),
# so that none of them (InSync=True, say) stays from the earlier spec for `kubectl wait`
# or a gate to take while observedGeneration moves on.
UNDETERMINED_CONDITIONS: Final[Mapping[str, Undetermined]] = {
    PERF_BASELINE.kind: perfbaseline.invalid_spec_conditions,
    ENV_PARITY.kind: envparity.unverified_conditions,
    CAPACITY_PLAN.kind: capacityplan.unverified_conditions,
}


def describe_validation_error(error: ValidationError) -> str:
    return summary(describe_validation_errors(error))


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch turning `old` into `new`: every value of `new`, and null for the keys
    that disappeared, in nested objects too (a merge patch merges objects key by key, so
    a key left out of a nested object would stay)."""
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


News = Callable[[Mapping[str, Any]], Any]

# The Normal Event when Ready turns True after evaluations that raised.
EVALUATION_RECOVERED: Final = "EvaluationRecovered"
# The API server refuses an Event whose message is longer than 1024 bytes (Kopf cuts them
# to 1024 characters, which is more bytes when any is not ASCII: the Event was lost).
EVENT_MESSAGE_LIMIT: Final = 1024


def _ready(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == READY:
            return condition
    return None


def _raised(ready: Mapping[str, Any] | None) -> bool:
    return (
        ready is not None
        and ready.get("status") == ConditionStatus.FALSE.value
        and ready.get("reason") == EVALUATION_ERROR
    )


# Ready's reason from a resource's first sight until its first evaluation is written.
PENDING: Final = "Pending"


def first_sight_status(
    status: Mapping[str, Any], generation: int, at: datetime
) -> dict[str, Any] | None:
    """The status a daemon writes when it first sees a resource whose status has no Ready
    condition (new, or never evaluated): Ready=Unknown, reason Pending, for `generation`.
    None when there is a Ready (an operator restart, a take-over: nothing to write).

    DESIGN: conditions are set on first sight, even as Unknown. The first evaluation may
    wait long for an evaluation slot (a start-up burst, a Prometheus timing out); until then
    `kubectl get/describe` showed no condition at all. One patch per new resource, no
    Event; observedGeneration stays unset, as no verdict judged the spec yet."""
    if _ready(status) is not None:
        return None
    pending = unknown(READY, PENDING, "waiting for its first evaluation")
    return next_status(status, {}, [pending], generation=generation, at=at, measured=False)


def evaluation_error_events(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[EventSpec]:
    """The Events of an evaluation that raised, from the status before and after: a Warning
    `EvaluationError` when Ready turns False for it, a Normal `EvaluationRecovered` when
    Ready turns True after it; none while either holds. From the statuses (not the daemon's
    memory), so a restart neither repeats nor loses one."""
    before, after = _ready(old), _ready(new)
    if _raised(after) and not _raised(before):
        assert after is not None
        return [EventSpec("Warning", EVALUATION_ERROR, str(after.get("message", "")))]
    if _raised(before) and after is not None and after.get("status") == "True":
        message = f"evaluations succeed again: {after.get('message', '')}"
        return [EventSpec("Normal", EVALUATION_RECOVERED, message)]
    return []


# The standard-library logger behind resource_logger's lines: its level decides whether the
# debug line on a news write (and the work to build it) is wanted.
_LOG = logging.getLogger("perfguard")


class WriteCause(StrEnum):
    """Why a status was patched (the `cause` label of perfguard_status_patches_total)."""

    NEWS = "news"  # its news changed (see engine/status_news.py), whatever else holds
    REFRESH = "refresh"  # measured, and the status on the server is statusRefresh old
    UNSTAMPED = "unstamped"  # measured, and the status on the server has no readable stamp
    HANDOVER = "handover"  # measured while the operator stops (see write_cause)
    # Neither news nor a measurement, yet the status changed: an evaluation that raised, or
    # a new validation message for the same invalid spec.
    CHANGED = "changed"
    # First sight: Ready=Unknown (Pending) before the first evaluation (first_sight_status).
    PENDING = "pending"


def write_cause(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    news: News,
    refresh: timedelta,
    at: datetime,
    handing_over: bool = False,
) -> WriteCause | None:
    """Why an evaluation's status is patched, or None when it is not: when its news changed
    (see engine/status_news.py), or when this evaluation measured (a new
    `lastEvaluationTime`) and the status on the server was measured `refresh` or longer
    before (or holds no readable evaluation time).

    So a status whose news holds still is rewritten every `refresh` (at the first
    evaluation due after it), with its numbers and `lastEvaluationTime` as measured then:
    `lastEvaluationTime` says when the numbers shown were measured, and while the operator
    keeps up it is at most `refresh` plus an interval old. An outcome that measured nothing
    (an invalid spec, an evaluation that raised) is written only when it changed the
    status.

    `handing_over`: the operator is stopping (or pausing for a peer), so the next one
    resumes the resource's schedule from this status (resume_delay). A measurement it
    finished meanwhile is written, or the next would take this evaluation's schedule
    point for one never run, or the other way round. At most the evaluations in flight
    at the stop (the evaluation slots) are written so.
    """
    if news(new) != news(old):
        return WriteCause.NEWS
    if new.get("lastEvaluationTime") == old.get("lastEvaluationTime"):
        # Not measured now: written only if it changed.
        return WriteCause.CHANGED if dict(new) != dict(old) else None
    if handing_over:
        return WriteCause.HANDOVER
    last = _evaluated_at(old)
    if last is None or last.tzinfo is None:
        return WriteCause.UNSTAMPED
    return WriteCause.REFRESH if abs(at - last) >= refresh else None


WAKE = "perfguard-wake"
EVALUATED_GENERATION = "perfguard-evaluated-generation"
WRITTEN = "perfguard-written-status"
STARTED = "perfguard-evaluation-started"  # event-loop time the last evaluation started


@dataclass(frozen=True)
class WrittenStatus:
    """The status the server holds after this daemon's last evaluation, as far as the
    daemon knows: the answer to its patch, or, when nothing was written, the status it compared
    against. Kept in the daemon's memo."""

    status: dict[str, Any]
    resource_version: str | None  # of the object holding `status`, when known
    read_version: str | None  # of the body the daemon had read for that evaluation


# Each kind's verdict for "no conclusion" (PerfBaseline; EnvParity and CapacityPlan).
UNDETERMINED: Final = frozenset({"Inconclusive", "Unverified"})


def _evaluated_at(status: Mapping[str, Any]) -> datetime | None:
    return parse_time_or_none(status.get("lastEvaluationTime"))


def previous_status(
    body: Mapping[str, Any], written: WrittenStatus | None
) -> tuple[dict[str, Any], str | None]:
    """The status to diff an evaluation against, and the object version holding it (when
    known): the body's, unless it is older than what this daemon last wrote.

    Kopf refreshes a daemon's body from the watch stream, which under load (or while the
    watch event of a status patch is still queued, or after a patch that failed) lags
    behind the daemon's own writes. Diffing against such a stale copy re-announces
    transitions (Events) and re-sends fields that did not change. The body wins when it
    holds the written version, or a later evaluation (another replica's, after a
    hand-over), or moved on since the daemon read it.
    """
    status: dict[str, Any] = dict(body.get("status") or {})
    version = (body.get("metadata") or {}).get("resourceVersion")
    if written is None:
        return status, version
    if written.resource_version is not None and version == written.resource_version:
        return status, version
    mine, theirs = _evaluated_at(written.status), _evaluated_at(status)
    if mine is not None and (theirs is None or theirs < mine):
        return dict(written.status), written.resource_version  # the body is behind
    if mine is not None and theirs is not None and theirs > mine:
        return status, version
    # The same evaluation time (or none: invalid specs are not evaluated): stale only if
    # the body has not moved since the daemon read it.
    if version is not None and version == written.read_version:
        return dict(written.status), written.resource_version
    return status, version


# The restart before the new process started: how long the old operator was behind at
# the stop (resources queued for a slot are dropped then), its stop, and the start of the
# new process (a new pod on Kubernetes). A resource that came due meanwhile is evaluated
# at once. At 1,000 PerfBaselines (bench/operator_scale) the stop took 1.6-11 s (Kopf
# waits up to 5 s for its tasks; in those runs it also cancelled the evaluations in flight
# at once, which now get kinds.FINISH_AT_STOP_S to finish), and resources due up to 4-5 s
# before it were still queued; with 10 s, 73 and 155 of the 1,000 waited a whole interval
# more. Counted from when this process last began to run daemons (Runtime.resumed_at):
# its start, or a standby's take-over. An upper bound: see BEHIND_ALLOWANCE.
STOP_ALLOWANCE = timedelta(seconds=20)
# The old operator's last evaluations tell when it stopped evaluating: a schedule point
# further back than the latest `lastEvaluationTime` among the resources (the evaluations
# in flight at the stop are written then) by more than this was met by it. This covers
# how far behind its schedule it ran (lag p99 1 s at 1,000 PerfBaselines) and how far a
# schedule estimated from a stamp up to `statusRefresh` old drifts (each evaluation is due
# an interval after the previous one started, so by the lag, and stamps are whole
# seconds). With STOP_ALLOWANCE alone, 160 of 1,000 resources evaluated up to 20 s before
# the stop were evaluated again at once, doubling the restart's burst (bench trace).
BEHIND_ALLOWANCE = timedelta(seconds=8)


def restart_grace(
    since_resumed: timedelta, now: datetime, latest_evaluation: datetime | None
) -> timedelta:
    """How far back a schedule point may lie and still have come while no operator ran
    (resume_delay's `grace`): this process' run so far plus STOP_ALLOWANCE, but no further
    back than BEHIND_ALLOWANCE before the latest evaluation the resources record."""
    grace = since_resumed + STOP_ALLOWANCE
    if latest_evaluation is not None:
        grace = min(grace, now - latest_evaluation + BEHIND_ALLOWANCE)
    return grace


# Stops after which another operator process takes the resources over (see write_cause).
HAND_OVER = kopf.DaemonStoppingReason.OPERATOR_EXITING | kopf.DaemonStoppingReason.OPERATOR_PAUSING
# Kopf adds the reasons up: a resource deleted (or no longer matched) as the operator
# stops is no one's to resume.
GOING_AWAY = kopf.DaemonStoppingReason.RESOURCE_DELETED | kopf.DaemonStoppingReason.FILTERS_MISMATCH


def resume_delay(
    body: Mapping[str, Any],
    interval: timedelta,
    now: datetime,
    refresh: timedelta = timedelta(0),
    grace: timedelta = timedelta(0),
) -> float:
    """Seconds a daemon starting on an existing resource (the operator's start, a new
    leader) waits before its first evaluation: to the next point of the schedule its
    status records, when that status judged the current spec.

    Without it, every resource is due at once when the operator starts (at 500
    PerfBaselines all were re-evaluated right after a restart, 6-11 s before they were
    due, bench/operator_scale).

    The stamp (`lastEvaluationTime`) is the last evaluation written. The evaluations after
    it that were not written (see write_cause) came about whole intervals after it:
    each is due an interval after the one before started, so under load the schedule
    drifts later by the waits, and this is an estimate. A point of that schedule less
    than `grace` ago (the time the restart took) may have come while no operator ran: the
    resource is evaluated at once. A status is written at least every `refresh` (every
    evaluation when that is no longer than the interval), so a stamp older than that plus
    an interval means the operator stopped for a while: at once too. So are a spec changed
    meanwhile, a status without an evaluation time, and one more than an interval ahead
    (another clock); a stamp a little ahead waits one interval at most.
    """
    status = body.get("status") or {}
    generation = (body.get("metadata") or {}).get("generation")
    if not isinstance(status, Mapping) or status.get("observedGeneration") != generation:
        return 0.0
    last = _evaluated_at(status)
    if last is None or last.tzinfo is None:
        return 0.0
    if last > now + interval:
        return 0.0
    step = interval.total_seconds()
    age = (now - last).total_seconds()
    if age < 0:
        return step
    written_within = (refresh + interval if refresh > interval else interval).total_seconds()
    if age >= written_within or step <= 0:
        return 0.0
    since_due = age % step  # since the schedule's latest point (the stamp, within a step)
    if age >= step and since_due <= grace.total_seconds():
        return 0.0
    return step - since_due


async def wake_on_change(*, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Watch-event handler: wake the resource's daemon when its spec (generation) changed.

    Status patches and metadata edits do not change the generation, so they do not wake it.
    Event handlers write no annotations and need no finalizer, unlike on.update.
    """
    wake = memo.get(WAKE)
    generation = body.get("metadata", {}).get("generation")
    if isinstance(wake, asyncio.Event) and generation != memo.get(EVALUATED_GENERATION):
        wake.set()


async def _wake_when_stopped(stopped: kopf.DaemonStopped, wake: asyncio.Event) -> None:
    await stopped.wait()
    wake.set()


def _written(patched: Any, sent: dict[str, Any], read_version: str | None) -> WrittenStatus:
    """What the server holds after a status patch: its answer, or what was sent."""
    held = patched.get("status") if isinstance(patched, Mapping) else None
    metadata = patched.get("metadata") if isinstance(patched, Mapping) else None
    return WrittenStatus(
        dict(held) if isinstance(held, Mapping) else sent,
        (metadata or {}).get("resourceVersion"),
        read_version,
    )


class ResourceLoop:
    def __init__(
        self,
        resource: Resource,
        evaluator: Evaluator,
        verdicts: tuple[str, ...],
        interval_of: Callable[[Any], timedelta],
        forget: Callable[[ResourceRef], None] | None = None,
        *,
        resume: bool = True,
        news: News = all_but_stamp,
    ) -> None:
        self.resource = resource
        self.evaluator = evaluator
        self.verdicts = verdicts
        self.interval_of = interval_of
        self.forget = forget  # what the kind keeps per resource, dropped on deletion
        # Whether a daemon started on an evaluated resource waits out its interval (see
        # resume_delay). Not for a kind that learns what to watch by evaluating.
        self.resume = resume
        # What in its status is written at once when it changes (the rest every
        # statusRefresh, see write_cause).
        self.news = news
        self.undetermined = UNDETERMINED_CONDITIONS.get(resource.kind, _ready_only)

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
        runtime = get_runtime()
        runtime.daemon_started()
        wakers = runtime.wakers
        wakers[ref] = wake
        clock = asyncio.get_running_loop().time
        # Stopping (deletion, the operator's exit) wakes the daemon, which then returns
        # rather than waiting for Kopf to cancel it: a thousand of them stop at once.
        relay = asyncio.create_task(_wake_when_stopped(stopped, wake))
        try:
            # Noted before the first wait, so the watch events of the start-up listing do
            # not read as a spec change (see wake_on_change); and a memo kept across a
            # pause still holds the stop's wake-up.
            memo[EVALUATED_GENERATION] = body.metadata.get("generation")
            wake.clear()
            if not stopped:
                await self._first_sight(body, name, namespace, memo)
            # The first evaluation is due at once, or where the status says the resource's
            # schedule stood (resume_delay).
            delay = self._resume_delay(body) if self.resume else 0.0
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=max(0.0, delay))
                if stopped:
                    break
                wake.clear()
                memo[EVALUATED_GENERATION] = body.metadata.get("generation")
                interval = await self.reconcile(
                    body=body, name=name, namespace=namespace, memo=memo, stopped=stopped
                )
                if interval is None:
                    break  # stopped while it waited for an evaluation slot
                # The next evaluation is due an interval after this one started (once it
                # had a slot): its own wall time does not push the schedule back, and a
                # burst of resources due at once (the operator's start) spreads itself
                # over the interval instead of recurring. Something may wake us sooner (a
                # spec change, see wake_on_change, or a watched object); stopping cancels
                # the daemon.
                delay = interval.total_seconds() - (clock() - memo[STARTED])
        finally:
            runtime.daemons_running -= 1
            relay.cancel()
            if wakers.get(ref) is wake:
                del wakers[ref]
            reason = stopped.reason
            if reason is not None and reason & kopf.DaemonStoppingReason.RESOURCE_DELETED:
                # Here rather than in an on.delete handler: a change-detecting handler
                # makes Kopf keep a diff-base annotation on every object (one more patch
                # each) and diff every watch event, status patches included.
                get_runtime().metrics.forget(ref.kind, namespace, name)
                if self.forget is not None:
                    self.forget(ref)
            elif reason is not None and reason & kopf.DaemonStoppingReason.OPERATOR_PAUSING:
                # Another replica took over (peering): this one keeps running but no longer
                # evaluates, so its series would go stale, outlive a deletion it never
                # sees, and keep alerts such as PerfguardGpuAnomaly firing. The evaluation
                # stamp goes too: kept, it outlived a deletion the replica never saw, and
                # PerfguardEvaluationLag fired about a resource that no longer existed.
                get_runtime().metrics.forget(ref.kind, namespace, name)

    async def _first_sight(
        self, body: kopf.Body, name: str, namespace: str, memo: kopf.Memo
    ) -> None:
        """Write Ready=Unknown (Pending) on a resource with no Ready yet, before its first
        evaluation waits for a slot (first_sight_status)."""
        status = dict(body.get("status") or {})
        generation = int(body.metadata.get("generation") or 0)
        pending = first_sight_status(status, generation, now())
        runtime = get_runtime()
        if pending is None or runtime.status_writer is None:
            return
        kind = self.resource.kind
        try:
            patched = await runtime.status_writer.patch_status(
                self.resource.plural, namespace, name, status_patch(status, pending)
            )
        except Exception as error:  # the first evaluation writes its status all the same
            resource_logger(kind, namespace, name).warning(
                "could not write the first-sight status", error=str(error)
            )
            return
        runtime.metrics.status_patches.labels(kind, WriteCause.PENDING.value).inc()
        memo[WRITTEN] = _written(patched, pending, body.metadata.get("resourceVersion"))

    def _resume_delay(self, body: kopf.Body) -> float:
        try:
            spec = self.resource.spec.model_validate(dict(body.spec))
        except ValidationError:
            return 0.0  # reported by the first evaluation, at once
        runtime = get_runtime()
        interval = self.interval_of(spec)
        at = datetime.now(UTC)
        stamp = _evaluated_at(body.get("status") or {})
        if stamp is not None and stamp.tzinfo is not None:
            runtime.saw_evaluation(stamp, at)
        # The restart took this process' own start-up so far (from its first import, or a
        # standby's take-over) plus what came before it.
        since_resumed = timedelta(seconds=time.monotonic() - runtime.resumed_at)
        grace = restart_grace(since_resumed, at, runtime.latest_evaluation_seen)
        return resume_delay(body, interval, at, runtime.config.status_refresh, min(grace, interval))

    async def reconcile(
        self,
        *,
        body: kopf.Body,
        name: str,
        namespace: str,
        memo: kopf.Memo | None = None,
        stopped: kopf.DaemonStopped | None = None,
    ) -> timedelta | None:
        """Evaluate once and write the outcome; the time until the next evaluation.

        `memo` (the daemon's) remembers the status last written, see previous_status. The
        evaluation waits for one of the runtime's evaluation slots, if bounded. A daemon
        `stopped` before it has a slot does not start it (None): at the operator's stop,
        the queue for the slots would hold the exit up past Kopf's cancellation
        (kinds.FINISH_AT_STOP_S), which loses what it evaluated; the next operator finds
        those resources due (resume_delay). One in flight finishes and is written.
        """
        runtime = get_runtime()
        memo = memo if memo is not None else kopf.Memo()
        slots = runtime.evaluation_slots
        if stopped is not None and stopped:
            return None
        async with slots if slots is not None else contextlib.nullcontext():
            if stopped is not None and stopped:
                return None
            # Read after the wait for a slot: the body may have moved on meanwhile.
            written = memo.get(WRITTEN)
            old_status, old_version = previous_status(
                body, written if isinstance(written, WrittenStatus) else None
            )
            read_version = body.metadata.get("resourceVersion")
            generation = int(body.metadata.get("generation") or 0)
            memo[STARTED] = asyncio.get_running_loop().time()
            at = now()
            outcome, interval = await self._evaluate(
                body, name, namespace, old_status, at, generation
            )
        reason = stopped.reason if stopped is not None else None
        handing_over = reason is not None and bool(reason & HAND_OVER) and not reason & GOING_AWAY
        memo[WRITTEN] = await self._write(
            body,
            name,
            namespace,
            generation,
            old_status,
            outcome,
            at,
            versions=(old_version, read_version),
            handing_over=handing_over,
        )
        return interval

    async def _evaluate(
        self,
        body: kopf.Body,
        name: str,
        namespace: str,
        old_status: dict[str, Any],
        at: datetime,
        generation: int,
    ) -> tuple[Outcome, timedelta]:
        runtime = get_runtime()
        kind = self.resource.kind
        try:
            spec = self.resource.spec.model_validate(dict(body.spec))
        except ValidationError as error:
            message = describe_validation_error(error)
            resource_logger(kind, namespace, name).warning("invalid spec", error=message)
            runtime.metrics.evaluations.labels(kind, "invalid_spec").inc()
            conditions = parse_conditions(old_status.get("conditions"))
            ready = next((c for c in conditions if c.type == READY), None)
            first = ready is None or ready.reason != "InvalidSpec" or ready.message != message
            # The verdict of an earlier, valid spec (or of the same spec before an upgrade
            # refused it) must not stand: a gate would promote on it.
            undetermined = next(v for v in self.verdicts if v in UNDETERMINED)
            outcome = Outcome(
                fields={"verdict": undetermined, "reason": "InvalidSpec", "message": message},
                conditions=[
                    false(READY, "InvalidSpec", message),
                    *self.undetermined("InvalidSpec", message, old_status),
                ],
                events=[EventSpec("Warning", "InvalidSpec", message)] if first else [],
                verdict=undetermined,
            )
            return outcome, timedelta(minutes=5)
        started = time.perf_counter()
        try:
            ref = ResourceRef(kind, namespace, name, generation)
            outcome = await self.evaluator(spec, old_status, at, ref)
            runtime.metrics.evaluations.labels(kind, "ok").inc()
        except Exception as error:  # one resource's failure must not stop the others
            resource_logger(kind, namespace, name).exception("evaluation failed")
            runtime.metrics.evaluations.labels(kind, "error").inc()
            # As its Event says it: an exception can carry a whole response body (past
            # the CRD's 32768 characters the status patch would be refused); the traceback
            # is in the log.
            message = shorten_utf8(f"{type(error).__name__}: {error}", EVENT_MESSAGE_LIMIT)
            outcome = Outcome(fields={}, conditions=[false(READY, EVALUATION_ERROR, message)])
        finally:
            runtime.metrics.evaluation_seconds.labels(kind).observe(time.perf_counter() - started)
        interval: timedelta = self.interval_of(spec)
        return outcome, interval

    async def _write(
        self,
        body: kopf.Body,
        name: str,
        namespace: str,
        generation: int,
        old_status: dict[str, Any],
        outcome: Outcome,
        at: datetime,
        *,
        versions: tuple[str | None, str | None] = (None, None),
        handing_over: bool = False,
    ) -> WrittenStatus:
        """Patch the status when due (write_cause), emit the Events, export the metrics.
        `versions`: the object version holding `old_status` and the one of the body read;
        the result is what the server holds now (see previous_status)."""
        runtime = get_runtime()
        kind = self.resource.kind
        # A field set to None by the evaluation is removed (status_patch sends null).
        new_status = next_status(
            old_status,
            outcome.fields,
            outcome.conditions,
            generation=generation,
            at=at,
            measured=outcome.verdict is not None,
        )
        cause = write_cause(
            old_status,
            new_status,
            news=self.news,
            refresh=runtime.config.status_refresh,
            at=at,
            handing_over=handing_over,
        )
        if cause is not None:
            if cause == WriteCause.NEWS and _LOG.isEnabledFor(logging.DEBUG):
                # Which news: computed only for the debug log (a news write is common).
                resource_logger(kind, namespace, name).debug(
                    "status news",
                    changed=changed_news(self.news(old_status), self.news(new_status)),
                )
            writer = runtime.status_writer
            if writer is None:
                raise RuntimeError("no status writer configured")
            patched = await writer.patch_status(
                self.resource.plural, namespace, name, status_patch(old_status, new_status)
            )
            runtime.metrics.status_patches.labels(kind, cause.value).inc()
            written = _written(patched, new_status, versions[1])
        else:
            written = WrittenStatus(old_status, versions[0], versions[1])
        for event in [*outcome.events, *evaluation_error_events(old_status, new_status)]:
            message = shorten_utf8(event.message, EVENT_MESSAGE_LIMIT)
            kopf.event(body, type=event.type, reason=event.reason, message=message)
        ready = next((c for c in new_status["conditions"] if c.get("type") == READY), None)
        runtime.metrics.ready.labels(kind, namespace, name).set(
            1 if ready is not None and ready.get("status") == ConditionStatus.TRUE.value else 0
        )
        runtime.metrics.export_status(kind, namespace, name, outcome.fields, at)
        if outcome.verdict is not None:
            runtime.metrics.set_verdict(kind, namespace, name, outcome.verdict, self.verdicts)
            runtime.metrics.last_evaluation.labels(kind, namespace, name).set(at.timestamp())
        return written
