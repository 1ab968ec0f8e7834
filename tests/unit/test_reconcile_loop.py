"""The shared daemon loop diffs against what it last wrote, not a stale body.

Kopf refreshes a daemon's `body` from the watch stream. Under load (1,000 PerfBaselines
on one core, bench/operator_scale) the watch event of the operator's own status patch can
still be queued at the next evaluation; diffing against that stale copy re-announced
every transition (BaselineEstablished, ImprovementConfirmed) and re-sent the status.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
import structlog.testing
import yaml
from kopf._cogs.aiokits.aioenums import FlagSetter

from perfguard.api.base import ApiModel
from perfguard.api.resources import PERF_BASELINE
from perfguard.config import OperatorConfig
from perfguard.engine.status_news import perfbaseline_news
from perfguard.handlers import reconcile
from perfguard.handlers.reconcile import ResourceLoop, WrittenStatus, previous_status
from perfguard.handlers.runtime import ResourceRef, Runtime, get_runtime, set_runtime
from perfguard.observability import OperatorMetrics
from perfguard.outcome import EventSpec, Outcome
from perfguard.status import true

CHART_VALUES = Path(__file__).parents[2] / "charts" / "perfguard" / "values.yaml"

SPEC: dict[str, Any] = {
    "selector": {"service": "checkout"},
    "metrics": [
        {
            "name": "latency",
            "type": "Latency",
            "histogram": "http_request_duration_seconds",
            "thresholds": {"p95": {"maxIncrease": "5ms"}},
        }
    ],
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies Kopf's status patches: objects
    merge key by key at every depth, null deletes a key, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def test_merge_patch_follows_rfc_7386() -> None:
    # RFC 7386, Appendix A (a selection).
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


class FakeServer:
    """A status subresource: merge patches applied (RFC 7386, as the API server does), a
    new resourceVersion per write."""

    def __init__(self) -> None:
        self.version = 1
        self.status: dict[str, Any] = {}
        self.patches: list[dict[str, Any]] = []

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        self.patches.append(status)
        self.status = merge_patch(self.status, status)
        self.version += 1
        return {"metadata": {"resourceVersion": str(self.version)}, "status": self.status}


async def established_once(
    spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
) -> Outcome:
    """Like PerfBaseline's judge: the Event is posted on the transition to True only."""
    before = {c.get("type"): c.get("status") for c in previous.get("conditions") or []}
    events = (
        []
        if before.get("BaselineEstablished") == "True"
        else [EventSpec("Normal", "BaselineEstablished", "enough samples")]
    )
    return Outcome(
        fields={"verdict": "Pass", "reason": "WithinThresholds", "message": "ok"},
        conditions=[true("BaselineEstablished", "BaselineEstablished", "enough samples")],
        events=events,
        verdict="Pass",
    )


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeServer, list[str]]:
    found = FakeServer()
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    runtime.status_writer = found  # type: ignore[assignment]
    set_runtime(runtime)
    posted: list[str] = []
    monkeypatch.setattr(
        reconcile.kopf, "event", lambda body, *, type, reason, message: posted.append(reason)
    )
    return found, posted


def start_daemon(
    loop: ResourceLoop, body: kopf.Body, memo: kopf.Memo
) -> tuple[asyncio.Task[None], FlagSetter[kopf.DaemonStoppingReason]]:
    """The resource's daemon as Kopf runs it, and the flag that stops it."""
    stopper: FlagSetter[kopf.DaemonStoppingReason] = FlagSetter()
    daemon = asyncio.create_task(
        loop.run(
            body=body, stopped=stopper.async_waiter, memo=memo, name="checkout", namespace="shop"
        )
    )
    return daemon, stopper


def stale_body() -> kopf.Body:
    """The object as first listed: no status yet, and never refreshed afterwards."""
    return kopf.Body(
        {
            "apiVersion": "perfguard.dev/v1alpha1",
            "kind": "PerfBaseline",
            "metadata": {
                "name": "checkout",
                "namespace": "shop",
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": SPEC,
        }
    )


def test_a_stale_body_does_not_re_announce_transitions(
    server: tuple[FakeServer, list[str]],
) -> None:
    fake, posted = server
    loop = ResourceLoop(PERF_BASELINE, established_once, ("Pass",), lambda s: timedelta(0))
    body, memo = stale_body(), kopf.Memo()

    async def three_evaluations() -> None:
        for _ in range(3):
            await loop.reconcile(body=body, name="checkout", namespace="shop", memo=memo)
            await asyncio.sleep(1.05)  # a new lastEvaluationTime (whole seconds)

    asyncio.run(three_evaluations())
    assert posted == ["BaselineEstablished"], "announced once, on the transition"
    assert len(fake.patches) == 1, "nothing but lastEvaluationTime changed after the first"
    assert fake.status["conditions"][0]["type"] == "BaselineEstablished"


def test_the_body_wins_once_it_caught_up_or_is_newer() -> None:
    mine = {"lastEvaluationTime": "2026-03-01T12:01:00Z", "verdict": "Pass"}
    written = WrittenStatus(mine, resource_version="7", read_version="5")

    def body(version: str, status: dict[str, Any] | None) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": version}, "status": status or {}}

    # Behind: no status yet, or an older evaluation.
    assert previous_status(body("5", None), written) == (mine, "7")
    older = {"lastEvaluationTime": "2026-03-01T12:00:00Z", "verdict": "Fail"}
    assert previous_status(body("6", older), written) == (mine, "7")
    # Caught up: the written version itself (with whatever the server made of it).
    caught_up = {**mine, "extra": 1}
    assert previous_status(body("7", caught_up), written) == (caught_up, "7")
    # A later evaluation than this daemon's last (another replica took over meanwhile).
    later = {"lastEvaluationTime": "2026-03-01T12:02:00Z", "verdict": "Fail"}
    assert previous_status(body("9", later), written) == (later, "9")
    # No evaluation time on either side (invalid specs): stale while the body has not
    # moved since it was read, the body's once it has.
    invalid = WrittenStatus({"reason": "InvalidSpec"}, resource_version="7", read_version="5")
    assert previous_status(body("5", {"reason": "Old"}), invalid) == (
        {"reason": "InvalidSpec"},
        "7",
    )
    assert previous_status(body("8", {"reason": "Other"}), invalid) == ({"reason": "Other"}, "8")
    # Nothing written yet: the body.
    assert previous_status(body("5", older), None) == (older, "5")


def series() -> int:
    """How many series the operator exports for the PerfBaseline "checkout"."""
    page = get_runtime().metrics.registry.collect()
    return sum(1 for family in page for s in family.samples if s.labels.get("name") == "checkout")


def test_the_schedule_is_a_fixed_rate_and_deletion_forgets_the_metrics(
    server: tuple[FakeServer, list[str]],
) -> None:
    """Evaluations start an interval apart, however long each took; a daemon stopped for
    its resource's deletion drops the resource's series (there is no on.delete handler)."""
    starts: list[float] = []
    third = asyncio.Event()

    async def slow(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        starts.append(asyncio.get_running_loop().time())
        if len(starts) == 3:
            third.set()
        await asyncio.sleep(0.3)
        return await established_once(spec, previous, at, ref)

    loop = ResourceLoop(PERF_BASELINE, slow, ("Pass",), lambda s: timedelta(seconds=0.5))

    async def scenario() -> int:
        daemon, stopper = start_daemon(loop, stale_body(), kopf.Memo())
        await third.wait()
        exported = series()
        stopper.set(kopf.DaemonStoppingReason.RESOURCE_DELETED)
        await asyncio.wait_for(daemon, timeout=2)  # returns by itself, not cancelled
        return exported

    exported = asyncio.run(scenario())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # A fixed rate keeps the mean gap at the 0.5 s interval even when one start is late (the
    # next catches up); one interval after each end would make it 0.8 s (interval + 0.3 s).
    # The mean, not each gap, so that one stall of a busy machine does not fail the test.
    mean_gap = (starts[-1] - starts[0]) / (len(starts) - 1)
    assert 0.45 < mean_gap < 0.7, gaps
    assert exported > 0
    assert series() == 0, "the deleted resource's series are gone"


def test_a_paused_replica_drops_the_series_it_no_longer_updates(
    server: tuple[FakeServer, list[str]],
) -> None:
    """Peering: when another replica takes over, Kopf stops this one's daemons with
    OPERATOR_PAUSING; the paused replica must not keep exporting an old verdict."""
    loop = ResourceLoop(PERF_BASELINE, established_once, ("Pass",), lambda s: timedelta(seconds=30))

    async def scenario() -> int:
        daemon, stopper = start_daemon(loop, stale_body(), kopf.Memo())
        for _ in range(200):
            if series():
                break
            await asyncio.sleep(0.01)
        exported = series()
        stopper.set(kopf.DaemonStoppingReason.OPERATOR_PAUSING)
        await asyncio.wait_for(daemon, timeout=2)
        return exported

    assert asyncio.run(scenario()) > 0
    page = get_runtime().metrics.registry.collect()
    left = {
        family.name
        for family in page
        for sample in family.samples
        if sample.labels.get("name") == "checkout"
    }
    # Its evaluation stamp too: it would outlive a deletion the paused replica never sees
    # (tests/e2e/test_chart_operator.py).
    assert left == set(), left


def test_evaluation_slots_bound_concurrent_evaluations(
    server: tuple[FakeServer, list[str]],
) -> None:
    running, most = [0], [0]

    async def busy(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        running[0] += 1
        most[0] = max(most[0], running[0])
        await asyncio.sleep(0.05)
        running[0] -= 1
        return await established_once(spec, previous, at, ref)

    loop = ResourceLoop(PERF_BASELINE, busy, ("Pass",), lambda s: timedelta(0))

    async def burst() -> None:
        get_runtime().evaluation_slots = asyncio.Semaphore(3)
        await asyncio.gather(
            *(
                loop.reconcile(body=stale_body(), name=f"pb-{i}", namespace="shop")
                for i in range(12)
            )
        )

    asyncio.run(burst())
    assert most[0] == 3


def test_a_status_patch_removes_keys_nested_objects_lost() -> None:
    from perfguard.handlers.reconcile import status_patch

    old = {"summary": {"p95": "40ms", "deltaP95": "+1ms"}, "stages": [1], "reason": "A"}
    new = {"summary": {"p95": "41ms"}, "reason": "B"}
    assert status_patch(old, new) == {
        "summary": {"p95": "41ms", "deltaP95": None},
        "reason": "B",
        "stages": None,
    }


def evaluated_body(last: datetime, *, observed: int = 1, generation: int = 1) -> kopf.Body:
    raw = dict(stale_body())
    raw["metadata"] = {**raw["metadata"], "generation": generation}
    raw["status"] = {
        "verdict": "Pass",
        "observedGeneration": observed,
        "lastEvaluationTime": last.isoformat().replace("+00:00", "Z"),
    }
    return kopf.Body(raw)


def test_resume_delay_keeps_the_schedule_the_status_records() -> None:
    at = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)
    assert reconcile.resume_delay(evaluated_body(at - timedelta(seconds=20)), minute, at) == 40
    # Overdue, never evaluated, or the spec changed since: at once.
    assert reconcile.resume_delay(evaluated_body(at - timedelta(seconds=70)), minute, at) == 0
    assert reconcile.resume_delay(stale_body(), minute, at) == 0
    changed = evaluated_body(at - timedelta(seconds=20), observed=1, generation=2)
    assert reconcile.resume_delay(changed, minute, at) == 0
    # A stamp a little ahead (another replica's clock) waits one interval at most; one
    # further ahead than an interval is not believed: at once, not a long sleep.
    ahead = evaluated_body(at + timedelta(seconds=5), observed=1)
    assert reconcile.resume_delay(ahead, minute, at) == 60
    far = evaluated_body(at + timedelta(seconds=70), observed=1)
    assert reconcile.resume_delay(far, minute, at) == 0
    unreadable = kopf.Body(
        {**dict(evaluated_body(at)), "status": {"observedGeneration": 1, "lastEvaluationTime": "x"}}
    )
    assert reconcile.resume_delay(unreadable, minute, at) == 0


def test_a_restarted_daemon_waits_out_the_interval_unless_the_spec_changes(
    server: tuple[FakeServer, list[str]],
) -> None:
    starts: list[float] = []
    evaluated: list[asyncio.Event] = []  # one per asyncio.run

    async def record(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        starts.append(asyncio.get_running_loop().time())
        evaluated[-1].set()
        return await established_once(spec, previous, at, ref)

    loops = {
        resume: ResourceLoop(
            PERF_BASELINE, record, ("Pass",), lambda s: timedelta(seconds=4), resume=resume
        )
        for resume in (True, False)
    }

    async def first_start(
        body: kopf.Body, change_after: float | None = None, *, resume: bool = True
    ) -> float:
        starts.clear()
        evaluated.append(asyncio.Event())
        memo = kopf.Memo()
        began = asyncio.get_running_loop().time()
        daemon, stopper = start_daemon(loops[resume], body, memo)
        if change_after is not None:
            await asyncio.sleep(change_after)
            # A listing event of the same generation does not wake it; a spec change does.
            await reconcile.wake_on_change(body=body, memo=memo)
            await asyncio.sleep(0.2)
            assert not starts, "woken by an event that changed nothing"
            changed = dict(body)
            changed["metadata"] = {**changed["metadata"], "generation": 2}
            await reconcile.wake_on_change(body=kopf.Body(changed), memo=memo)
        await asyncio.wait_for(evaluated[-1].wait(), timeout=10)
        stopper.set(kopf.DaemonStoppingReason.OPERATOR_EXITING)
        await asyncio.wait_for(daemon, timeout=2)
        return starts[0] - began

    # Evaluated a moment ago, stamped to the whole second as the operator does: due 3-4 s
    # from now. The bounds leave room for a loaded machine; what the others would do
    # instead (start at once) is well below them.
    resumed = asyncio.run(first_start(evaluated_body(datetime.now(UTC).replace(microsecond=0))))
    assert 2.5 < resumed < 6.0, resumed
    fresh = asyncio.run(first_start(stale_body()))
    assert fresh < 1.5, fresh
    woken = asyncio.run(first_start(evaluated_body(datetime.now(UTC)), change_after=0.3))
    assert woken < 2.0, woken
    # A kind that does not resume (EnvParity) starts at once on an evaluated resource.
    unresumed = asyncio.run(first_start(evaluated_body(datetime.now(UTC)), resume=False))
    assert unresumed < 1.5, unresumed


@pytest.mark.parametrize("deleted", [False, True], ids=["exiting", "deleted-while-exiting"])
def test_at_the_stop_queued_evaluations_do_not_start_and_in_flight_ones_are_written(
    server: tuple[FakeServer, list[str]], deleted: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM with the evaluation slots full, stopped by Kopf's own stop_daemon with the
    registered PerfBaseline daemon's timings: the daemon queued for a slot returns without
    evaluating, and the one in flight finishes (it is not cancelled) and writes its
    measurement though nothing but numbers moved and statusRefresh has not passed, so the
    next operator resumes from it. Not when its resource is being deleted as well."""
    from kopf._cogs.configs.configuration import OperatorSettings
    from kopf._core.engines import daemons as kopf_daemons

    from perfguard.handlers import kinds

    fake, _ = server
    runtime = get_runtime()
    runtime.config = OperatorConfig(status_refresh=timedelta(minutes=5))
    runtime.evaluation_slots = asyncio.Semaphore(1)
    # A minute between evaluations (stamps are whole seconds): the second measured anew,
    # within statusRefresh of the first.
    minutes = itertools.count()
    start = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    monkeypatch.setattr(reconcile, "now", lambda: start + timedelta(minutes=next(minutes)))
    evaluated: dict[str, int] = {"first": 0, "queued": 0}
    p95 = itertools.count(40)
    gates: dict[int, asyncio.Event] = {}
    handler = next(
        h
        for h in kopf.get_default_registry()._spawning.get_all_handlers()
        if h.fn is kinds.perfbaseline_daemon
    )

    async def measuring(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        evaluated[ref.name] += 1
        gate = gates.get(evaluated[ref.name]) if ref.name == "first" else None
        if gate is not None:
            gates[0].set()  # in flight, holding the only slot
            await gate.wait()
        value = float(next(p95))
        return Outcome(
            fields={"verdict": "Pass", "summary": {"p95": f"{value}ms"}},
            conditions=[true("Ready", "Evaluated", "ok")],
            verdict="Pass",
        )

    loop = ResourceLoop(
        PERF_BASELINE,
        measuring,
        ("Pass",),
        lambda s: timedelta(seconds=0.2),
        news=perfbaseline_news,
        resume=False,
    )

    async def scenario() -> None:
        gates[0], gates[2] = asyncio.Event(), asyncio.Event()
        first, stop_first = start_daemon_named(loop, "first")
        await asyncio.wait_for(gates[0].wait(), timeout=5)  # its second evaluation runs
        queued, stop_queued = start_daemon_named(loop, "queued")
        await asyncio.sleep(0.1)
        patches = len(fake.patches)
        if deleted:
            stop_first.set(kopf.DaemonStoppingReason.RESOURCE_DELETED)
        # The evaluation in flight takes another 0.5 s: well within the daemon's backoff.
        asyncio.get_running_loop().call_later(0.5, gates[2].set)
        await asyncio.gather(
            *(
                kopf_daemons.stop_daemon(
                    settings=OperatorSettings(),
                    daemon=kopf_daemons.Daemon(
                        task=task, logger=logging.getLogger("test"), handler=handler, stopper=stop
                    ),
                    reason=kopf.DaemonStoppingReason.OPERATOR_EXITING,
                )
                for task, stop in ((first, stop_first), (queued, stop_queued))
            )
        )
        assert not first.cancelled(), "Kopf cancelled the evaluation in flight"
        assert len(fake.patches) == patches + (0 if deleted else 1)
        if not deleted:
            assert fake.patches[-1]["summary"] == {"p95": "41.0ms"}

    asyncio.run(scenario())
    assert evaluated == {"first": 2, "queued": 0}


def test_the_restart_grace_counts_from_the_start_or_a_take_over() -> None:
    """resume_delay's grace begins at the process' start if its first daemon came soon
    after it, else (a standby that took over, the end of a pause) at that daemon."""
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics(), started_at=100.0)
    runtime.daemon_started(now=103.0)  # a restart: the first daemons a few seconds in
    runtime.daemon_started(now=104.0)
    assert runtime.resumed_at == 100.0
    runtime.daemons_running = 0  # paused for a peer: every daemon stopped
    runtime.daemon_started(now=5000.0)
    assert runtime.resumed_at == 5000.0
    standby = Runtime(config=OperatorConfig(), metrics=OperatorMetrics(), started_at=100.0)
    standby.daemon_started(now=3700.0)  # stood by for an hour, then took over
    assert standby.resumed_at == 3700.0


def test_the_restart_grace_ends_shortly_before_the_latest_evaluation_the_statuses_record(
    server: tuple[FakeServer, list[str]],
) -> None:
    """A schedule point further back than the old operator's last evaluations was met by it:
    the grace reaches BEHIND_ALLOWANCE before the latest stamp the daemons started on, not
    the whole STOP_ALLOWANCE, so resources it evaluated before its stop are not evaluated
    again at once. Without a stamp to go by (the first daemons) it stays the upper bound."""
    at = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
    sec = timedelta(seconds=1)
    assert reconcile.restart_grace(3 * sec, at, None) == 23 * sec
    assert reconcile.restart_grace(3 * sec, at, at - 6 * sec) == 14 * sec
    assert reconcile.restart_grace(3 * sec, at, at - 40 * sec) == 23 * sec

    runtime = get_runtime()
    runtime.saw_evaluation(at - 10 * sec, at)
    runtime.saw_evaluation(at - 30 * sec, at)  # an older stamp does not move it back
    assert runtime.latest_evaluation_seen == at - 10 * sec
    runtime.saw_evaluation(at + 5 * sec, at)  # ahead: another clock; counts as now
    assert runtime.latest_evaluation_seen == at

    # Through the daemon's own start: the process began 2 s ago; the old operator's last
    # evaluations stamped 8 s ago (written at its stop). A resource whose schedule point
    # lay 18 s back (stamped 78 s ago, interval 60 s) was evaluated by it: it waits for
    # its next point instead of running at once; one whose point lay 12 s back did not.
    loop = ResourceLoop(PERF_BASELINE, established_once, ("Pass",), lambda s: timedelta(minutes=1))
    fresh = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    fresh.resumed_at -= 2.0
    set_runtime(fresh)
    now = datetime.now(UTC)
    # The first daemon has only its own stamp, 78 s old, to go by: the upper bound holds.
    assert loop._resume_delay(evaluated_body(now - 78 * sec)) == 0.0
    assert loop._resume_delay(evaluated_body(now - 8 * sec)) == pytest.approx(52, abs=1.5)
    assert loop._resume_delay(evaluated_body(now - 78 * sec)) == pytest.approx(42, abs=1.5)
    assert loop._resume_delay(evaluated_body(now - 72 * sec)) == 0.0


def test_daemons_get_to_finish_an_evaluation_within_the_pods_grace_period() -> None:
    """Each kind's daemon has a cancellation backoff (without one Kopf cancels an evaluation
    in flight at once), and backoff, cancellation and Kopf's own wait of 5 s for its tasks
    fit in the chart's terminationGracePeriodSeconds."""
    from perfguard.handlers import kinds

    values = yaml.safe_load(CHART_VALUES.read_text())
    daemons = [
        h
        for h in kopf.get_default_registry()._spawning.get_all_handlers()
        if h.fn in (kinds.perfbaseline_daemon, kinds.envparity_daemon, kinds.capacityplan_daemon)
    ]
    assert len(daemons) == 3
    for handler in daemons:
        assert handler.cancellation_backoff == kinds.FINISH_AT_STOP_S
        assert handler.cancellation_timeout is not None
        budget = handler.cancellation_backoff + handler.cancellation_timeout + 5.0
        assert budget < values["terminationGracePeriodSeconds"]


def start_daemon_named(
    loop: ResourceLoop, name: str
) -> tuple[asyncio.Task[None], FlagSetter[kopf.DaemonStoppingReason]]:
    body = dict(stale_body())
    body["metadata"] = {**body["metadata"], "name": name}
    stopper: FlagSetter[kopf.DaemonStoppingReason] = FlagSetter()
    daemon = asyncio.create_task(
        loop.run(
            body=kopf.Body(body),
            stopped=stopper.async_waiter,
            memo=kopf.Memo(),
            name=name,
            namespace="shop",
        )
    )
    return daemon, stopper


def test_envparity_starts_at_once_the_others_resume() -> None:
    from perfguard.handlers.kinds import CAPACITY_PLAN_LOOP, ENV_PARITY_LOOP, PERF_BASELINE_LOOP

    assert PERF_BASELINE_LOOP.resume and CAPACITY_PLAN_LOOP.resume
    assert not ENV_PARITY_LOOP.resume  # learns what to watch by evaluating


def test_news_is_written_at_once_readings_every_refresh() -> None:
    at = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)

    def stamped(seconds_ago: float, **fields: Any) -> dict[str, Any]:
        stamp = (at - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
        return {"verdict": "Pass", "p95": 41.0, **fields, "lastEvaluationTime": stamp}

    def numbers_are_readings(status: Mapping[str, Any]) -> Any:
        return {k: v for k, v in status.items() if k not in {"p95", "lastEvaluationTime"}}

    def write(
        old: dict[str, Any],
        new: dict[str, Any],
        refresh: float = 300,
        *,
        handing_over: bool = False,
    ) -> bool:
        cause = reconcile.write_cause(
            old,
            new,
            news=numbers_are_readings,
            refresh=timedelta(seconds=refresh),
            at=at,
            handing_over=handing_over,
        )
        return cause is not None

    now_measured = stamped(0, p95=43.0)
    assert not write(stamped(60), now_measured), "only readings moved, within refresh"
    assert write(stamped(300), now_measured), "refresh is due"
    assert write(stamped(60), now_measured, refresh=0), "0s writes every evaluation"
    assert write(stamped(60), stamped(0, verdict="Fail")), "news goes out at once"
    assert write({"verdict": "Pass", "p95": 41.0}, now_measured), "no stamp on the server"
    assert write(stamped(400, p95=43.0), stamped(0, p95=43.0)), "a heartbeat when nothing moved"
    assert write(stamped(-400), now_measured), "a stamp far ahead (another clock) is replaced"
    # Nothing measured (an invalid spec keeps the old stamp): written only if it changed.
    old = stamped(900)
    assert not write(old, dict(old))
    assert write(old, {**old, "extra": "InvalidSpec"})
    # At the operator's stop, a measurement goes out so the next operator resumes from it;
    # an outcome that measured nothing still only if it changed.
    assert write(stamped(60), now_measured, handing_over=True)
    assert not write(old, dict(old), handing_over=True)


def test_write_cause_says_why_a_status_is_patched() -> None:
    """The `cause` label of perfguard_status_patches_total: each reason to write,
    told apart (news first, then what a measurement is due)."""
    at = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)

    def stamped(seconds_ago: float, **fields: Any) -> dict[str, Any]:
        stamp = (at - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")
        return {"verdict": "Pass", "p95": 41.0, **fields, "lastEvaluationTime": stamp}

    def cause(
        old: dict[str, Any], new: dict[str, Any], *, handing_over: bool = False
    ) -> reconcile.WriteCause | None:
        return reconcile.write_cause(
            old,
            new,
            news=lambda s: {k: v for k, v in s.items() if k not in {"p95", "lastEvaluationTime"}},
            refresh=timedelta(minutes=5),
            at=at,
            handing_over=handing_over,
        )

    measured = stamped(0, p95=43.0)
    causes = reconcile.WriteCause
    assert cause(stamped(60), measured) is None
    assert cause(stamped(60), stamped(0, verdict="Fail")) == causes.NEWS
    assert cause(stamped(60), stamped(0, verdict="Fail"), handing_over=True) == causes.NEWS
    assert cause(stamped(300), measured) == causes.REFRESH
    assert cause({"verdict": "Pass", "p95": 41.0}, measured) == causes.UNSTAMPED
    no_zone = {"verdict": "Pass", "p95": 41.0, "lastEvaluationTime": "2026-12-03T11:59:00"}
    assert cause(no_zone, measured) == causes.UNSTAMPED
    assert cause(stamped(60), measured, handing_over=True) == causes.HANDOVER
    assert cause(stamped(300), measured, handing_over=True) == causes.HANDOVER
    old = stamped(900)
    assert cause(old, {**old, "p95": 40.0}) == causes.CHANGED
    assert cause(old, dict(old)) is None


def test_a_steady_status_is_patched_on_news_and_every_refresh(
    server: tuple[FakeServer, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real loop with PerfBaseline's news: numbers that move every evaluation do not
    patch the status until a verdict changes or statusRefresh has passed."""
    fake, _ = server
    get_runtime().config = OperatorConfig(status_refresh=timedelta(minutes=5))
    clock = [datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)]
    monkeypatch.setattr(reconcile, "now", lambda: clock[0])
    verdicts = iter(["Pass", "Pass", "Fail", "Fail", "Fail", "Fail", "Fail", "Fail"])
    p95 = itertools.count(40)

    async def measuring(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        verdict, value = next(verdicts), float(next(p95))
        return Outcome(
            fields={
                "verdict": verdict,
                "message": f"p95 {value} ms",
                "metrics": [{"name": "latency", "verdict": verdict, "current": value}],
                "summary": {"p95": f"{value}ms"},
            },
            conditions=[true("Ready", "Evaluated", f"p95 {value} ms")],
            verdict=verdict,
        )

    loop = ResourceLoop(
        PERF_BASELINE,
        measuring,
        ("Pass", "Fail"),
        lambda s: timedelta(minutes=1),
        news=perfbaseline_news,
    )
    body, memo = stale_body(), kopf.Memo()
    written_at: list[int] = []

    async def evaluations() -> None:
        for minute in range(8):
            # The news line is logged at DEBUG only: from minute 1 on.
            caplog.set_level(logging.DEBUG if minute else logging.INFO, logger="perfguard")
            before = len(fake.patches)
            await loop.reconcile(body=body, name="checkout", namespace="shop", memo=memo)
            if len(fake.patches) > before:
                written_at.append(minute)
            clock[0] += timedelta(minutes=1)

    registry = get_runtime().metrics.registry

    def patches(cause: str) -> float:
        labels = {"kind": "PerfBaseline", "cause": cause}
        return registry.get_sample_value("perfguard_status_patches_total", labels) or 0.0

    before = {cause: patches(cause) for cause in ("news", "refresh")}
    with structlog.testing.capture_logs() as logs:
        asyncio.run(evaluations())
    news_lines = [line for line in logs if line["event"] == "status news"]
    # The write at minute 2 says what changed; the one at 0, at INFO, logged nothing.
    assert len(news_lines) == 1 and news_lines[0]["name"] == "checkout"
    assert {"verdict", "metrics[latency].verdict"} <= set(news_lines[0]["changed"])
    # 0: first status; 2: Pass -> Fail; 7: five minutes after the last write.
    assert written_at == [0, 2, 7]
    assert {cause: patches(cause) - before[cause] for cause in before} == {
        "news": 2.0,
        "refresh": 1.0,
    }
    assert fake.status["summary"] == {"p95": "47.0ms"}, "a refresh writes the current numbers"
    assert fake.status["lastEvaluationTime"] == "2026-12-03T12:07:00Z"


def test_resume_delay_follows_the_schedule_between_refreshes() -> None:
    """With statusRefresh 5m, evaluations between writes kept to whole intervals after the
    stamp; a stamp older than refresh + interval means the operator was down: at once."""
    at = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)
    minute, five = timedelta(minutes=1), timedelta(minutes=5)
    body = evaluated_body(at - timedelta(seconds=130))
    assert reconcile.resume_delay(body, minute, at, five) == 50
    assert (
        reconcile.resume_delay(evaluated_body(at - timedelta(seconds=20)), minute, at, five) == 40
    )
    assert (
        reconcile.resume_delay(evaluated_body(at - timedelta(seconds=361)), minute, at, five) == 0
    )
    # Written every evaluation (refresh no longer than the interval): overdue after one.
    assert reconcile.resume_delay(body, minute, at, timedelta(0)) == 0
    assert reconcile.resume_delay(body, minute, at, minute) == 0
    # The schedule's latest point (10 s ago) within the time the restart took: it may have
    # come while no operator ran, so at once; outside it, the next point.
    grace = timedelta(seconds=15)
    assert reconcile.resume_delay(body, minute, at, five, grace) == 0
    assert reconcile.resume_delay(body, minute, at, five, timedelta(seconds=5)) == 50
    # The stamp itself within the last interval: that evaluation happened; the next waits.
    recent = evaluated_body(at - timedelta(seconds=5))
    assert reconcile.resume_delay(recent, minute, at, five, grace) == 55


def test_status_refresh_comes_from_the_environment() -> None:
    assert OperatorConfig.from_env({}).status_refresh == timedelta(minutes=5)
    env = {"PERFGUARD_STATUS_REFRESH": "90s"}
    assert OperatorConfig.from_env(env).status_refresh == timedelta(seconds=90)
    assert OperatorConfig.from_env({"PERFGUARD_STATUS_REFRESH": "0s"}).status_refresh == timedelta(
        0
    )
    with pytest.raises(ValueError, match=r"PERFGUARD_STATUS_REFRESH.*'5 minutes'"):
        OperatorConfig.from_env({"PERFGUARD_STATUS_REFRESH": "5 minutes"})


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        pytest.param({**SPEC, "metrics": "not a list"}, "spec.metrics", id="edited"),
        # Stored before the rule compared a written window with the other's default
        # (baseline.window 7d): the API server keeps it, the operator must refuse it.
        pytest.param(
            {**SPEC, "analysis": {"window": "8d"}},
            "spec.baseline.window: baseline.window (default 7d) must be longer than",
            id="stored-before-a-stricter-rule",
        ),
    ],
)
def test_an_invalid_spec_replaces_the_last_verdict(
    server: tuple[FakeServer, list[str]], spec: dict[str, Any], named: str
) -> None:
    """A spec the operator refuses (edited, or refused after an upgrade) leaves no verdict
    of the earlier spec for a gate to promote on."""
    fake, posted = server
    fake.status = {"verdict": "Pass", "reason": "WithinThresholds", "observedGeneration": 1}
    loop = ResourceLoop(
        PERF_BASELINE, established_once, ("Pass", "Fail", "Inconclusive"), lambda s: timedelta(0)
    )
    body = kopf.Body(
        {
            "apiVersion": "perfguard.dev/v1alpha1",
            "kind": "PerfBaseline",
            "metadata": {
                "name": "checkout",
                "namespace": "shop",
                "generation": 2,
                "resourceVersion": "1",
            },
            "spec": spec,
            "status": dict(fake.status),
        }
    )

    asyncio.run(loop.reconcile(body=body, name="checkout", namespace="shop", memo=kopf.Memo()))
    assert fake.status["verdict"] == "Inconclusive"
    assert fake.status["reason"] == "InvalidSpec"
    assert named in fake.status["message"]
    assert posted == ["InvalidSpec"]


def test_a_delta_leaves_metrics_when_the_status_no_longer_shows_one(
    server: tuple[FakeServer, list[str]],
) -> None:
    """Through the loop: the canary goes away (NoData, no delta), then the metric leaves
    the spec; /metrics follows status.metrics instead of keeping the last delta."""
    p95 = {"name": "latency", "statistic": "p95", "comparison": "Concurrent"}
    steps = [
        [{**p95, "verdict": "Regressed", "delta": 0.05, "ci95": [0.04, 0.06]}],
        [{**p95, "verdict": "NoData", "reason": "NoData"}],
        [],
    ]

    async def measuring(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        return Outcome(
            fields={"verdict": "Inconclusive", "metrics": steps.pop(0)},
            conditions=[true("Ready", "Evaluated", "ok")],
            verdict="Inconclusive",
        )

    loop = ResourceLoop(PERF_BASELINE, measuring, ("Inconclusive",), lambda s: timedelta(0))
    memo = kopf.Memo()

    def deltas() -> dict[str, float]:
        return {
            s.labels["statistic"]: s.value
            for family in get_runtime().metrics.registry.collect()
            for s in family.samples
            if s.name == "perfguard_metric_delta" and s.labels["name"] == "checkout"
        }

    seen = []
    for _ in range(3):
        asyncio.run(loop.reconcile(body=stale_body(), name="checkout", namespace="shop", memo=memo))
        seen.append(deltas())
    assert seen == [{"p95": 0.05}, {}, {}]


def test_evaluation_error_events_announce_the_transitions_only() -> None:
    def status(ready_status: str, reason: str) -> dict[str, Any]:
        return {
            "conditions": [
                {"type": "Ready", "status": ready_status, "reason": reason, "message": reason}
            ]
        }

    ok, raised = status("True", "Evaluated"), status("False", "EvaluationError")
    down = status("False", "PrometheusUnreachable")
    events = reconcile.evaluation_error_events
    assert [(e.type, e.reason) for e in events(ok, raised)] == [("Warning", "EvaluationError")]
    assert [(e.type, e.reason) for e in events({}, raised)] == [("Warning", "EvaluationError")]
    assert [(e.type, e.reason) for e in events(down, raised)] == [("Warning", "EvaluationError")]
    assert events(raised, raised) == [], "none while it stays"
    assert [(e.type, e.reason) for e in events(raised, ok)] == [("Normal", "EvaluationRecovered")]
    # Other transitions are the evaluators' to announce (PrometheusUnreachable, ...).
    assert events(raised, down) == [] and events(down, ok) == [] and events(ok, ok) == []


def test_an_evaluation_that_raises_is_announced_once_and_its_recovery_too(
    server: tuple[FakeServer, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ready True -> False (EvaluationError) -> True: one Warning Event into it, none while
    it stays, a Normal one out of it. An exception carrying a whole response body does
    not make the condition (or the Event) longer than 1 KiB."""
    fake, posted = server
    steps = ["ok", "raise", "raise", "ok"]

    async def flaky(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        if steps.pop(0) == "raise":
            raise ValueError("<html>" + "ü" * 100_000)
        return Outcome(
            fields={"verdict": "Pass"},
            conditions=[true("Ready", "Evaluated", "ok")],
            verdict="Pass",
        )

    loop = ResourceLoop(PERF_BASELINE, flaky, ("Pass",), lambda s: timedelta(0))
    memo = kopf.Memo()
    messages: list[str] = []
    posted_per_evaluation = []

    def post(body: Any, *, type: str, reason: str, message: str) -> None:
        posted.append(reason)
        messages.append(message)

    monkeypatch.setattr(reconcile.kopf, "event", post)
    for _ in range(4):
        posted.clear()
        asyncio.run(loop.reconcile(body=stale_body(), name="checkout", namespace="shop", memo=memo))
        posted_per_evaluation.append(list(posted))
    assert posted_per_evaluation == [[], ["EvaluationError"], [], ["EvaluationRecovered"]]
    # 1 KiB: the API server counts an Event's message in bytes.
    assert messages[0].startswith("ValueError: <html>üüü") and len(messages[0].encode()) <= 1024
    # The status written after the first exception.
    raised = next(c for c in fake.patches[1]["conditions"] if c["type"] == "Ready")
    assert raised["reason"] == "EvaluationError"
    assert raised["message"] == messages[0]
    ready = next(c for c in fake.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Evaluated")


def _conditions(*rows: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [
        {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": reason,
            "lastTransitionTime": "2026-12-01T00:00:00Z",
            "observedGeneration": 1,
        }
        for type_, status, reason in rows
    ]


SETTLED = {
    "PerfBaseline": _conditions(
        ("Ready", "True", "Evaluated"),
        ("BaselineEstablished", "True", "BaselineEstablished"),
        ("Regressed", "False", "NoRegression"),
    ),
    "EnvParity": _conditions(("Ready", "True", "Evaluated"), ("InSync", "True", "InSync")),
    "CapacityPlan": _conditions(
        ("Ready", "True", "Evaluated"),
        ("CapacitySufficient", "True", "WithinCapacity"),
        ("AnomalyDetected", "False", "NoAnomaly"),
    ),
}
FAILING = {
    "PerfBaseline": _conditions(
        ("Ready", "True", "Evaluated"),
        ("BaselineEstablished", "True", "BaselineEstablished"),
        ("Regressed", "True", "RegressionDetected"),
    ),
    "EnvParity": _conditions(("Ready", "True", "Evaluated"), ("InSync", "False", "Drifted")),
    "CapacityPlan": _conditions(
        ("Ready", "True", "Evaluated"),
        ("CapacitySufficient", "False", "CurrentInsufficient"),
        ("AnomalyDetected", "True", "XidError"),
    ),
}
REFUSED_SPECS = {
    "PerfBaseline": {**SPEC, "metrics": "not a list"},
    "EnvParity": {"reference": {"namespace": "staging"}, "targets": "prod"},
    "CapacityPlan": {"nodes": {}, "traffic": {"query": "sum(x)"}, "interval": "five minutes"},
}


@pytest.mark.parametrize("kind", ["PerfBaseline", "EnvParity", "CapacityPlan"])
@pytest.mark.parametrize("before", ["settled", "failing"])
def test_a_refused_spec_leaves_none_of_the_earlier_specs_conditions(
    server: tuple[FakeServer, list[str]], kind: str, before: str
) -> None:
    """An invalid spec made only Ready False: InSync=True, CapacitySufficient=True,
    BaselineEstablished=True stayed from the earlier spec while observedGeneration moved
    on, so `kubectl wait --for=condition=InSync` passed on an Unverified EnvParity. Each
    kind's conditions now turn Unknown for the refused spec; a failure already reported
    (Regressed, drift, a shortage) stays reported, as through the engines' outages."""
    from perfguard.handlers.kinds import CAPACITY_PLAN_LOOP, ENV_PARITY_LOOP, PERF_BASELINE_LOOP

    loop = {
        "PerfBaseline": PERF_BASELINE_LOOP,
        "EnvParity": ENV_PARITY_LOOP,
        "CapacityPlan": CAPACITY_PLAN_LOOP,
    }[kind]
    fake, posted = server
    earlier = (SETTLED if before == "settled" else FAILING)[kind]
    fake.status = {"verdict": "x", "observedGeneration": 1, "conditions": earlier}
    body = kopf.Body(
        {
            "metadata": {"name": "x", "namespace": "ns", "generation": 2, "resourceVersion": "1"},
            "spec": REFUSED_SPECS[kind],
            "status": copy.deepcopy(fake.status),
        }
    )
    asyncio.run(loop.reconcile(body=body, name="x", namespace="ns", memo=kopf.Memo()))
    assert posted == ["InvalidSpec"]
    assert fake.status["observedGeneration"] == 2
    after = {c["type"]: c for c in fake.status["conditions"]}
    assert set(after) == {c["type"] for c in earlier}, "every condition is rewritten"
    assert all(c["observedGeneration"] == 2 for c in after.values())
    assert (after["Ready"]["status"], after["Ready"]["reason"]) == ("False", "InvalidSpec")
    shown = {t: (c["status"], c["reason"]) for t, c in after.items() if t != "Ready"}
    if before == "settled":
        assert shown == dict.fromkeys(shown, ("Unknown", "InvalidSpec")), shown
    else:
        assert (
            shown
            == {
                "PerfBaseline": {
                    "BaselineEstablished": ("Unknown", "InvalidSpec"),
                    "Regressed": ("True", "RecoveryUnconfirmed"),
                },
                "EnvParity": {"InSync": ("False", "DriftUnconfirmed")},
                "CapacityPlan": {
                    "CapacitySufficient": ("False", "CurrentInsufficient"),
                    "AnomalyDetected": ("Unknown", "InvalidSpec"),
                },
            }[kind]
        ), shown


def test_first_sight_status_is_ready_unknown_until_the_first_evaluation() -> None:
    at = datetime(2026, 12, 5, 12, 0, 0, tzinfo=UTC)
    pending = reconcile.first_sight_status({}, 3, at)
    assert pending is not None
    (ready,) = pending["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "Unknown", "Pending")
    assert ready["observedGeneration"] == 3
    assert ready["lastTransitionTime"] == "2026-12-05T12:00:00Z"
    # No verdict judged the spec yet: no observedGeneration, no stamp, no verdict.
    assert set(pending) == {"conditions"}
    # A status with Ready (a restart, a take-over) is left as it is.
    evaluated = {"conditions": [{**ready, "status": "True", "reason": "Evaluated"}]}
    assert reconcile.first_sight_status(evaluated, 3, at) is None


def test_new_resources_show_ready_unknown_before_they_get_a_slot(
    server: tuple[FakeServer, list[str]],
) -> None:
    """DESIGN: conditions on first sight, even as Unknown. Four new resources, two slots,
    evaluations that take 0.5 s (a Prometheus timing out): every one shows Ready=Unknown
    (Pending) at once, with one patch each and no Event, instead of nothing for up to
    two evaluations' time; a restarted daemon on an evaluated resource writes none."""
    _, posted = server
    written: dict[str, list[tuple[float, dict[str, Any]]]] = {}

    class Recording:
        async def patch_status(
            self, plural: str, namespace: str, name: str, status: dict[str, Any]
        ) -> dict[str, Any]:
            written.setdefault(name, []).append((asyncio.get_running_loop().time(), status))
            return {"metadata": {"resourceVersion": "2"}, "status": status}

    runtime = get_runtime()
    runtime.status_writer = Recording()  # type: ignore[assignment]
    finished: list[str] = []
    all_finished = asyncio.Event()

    async def slow(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        await asyncio.sleep(0.5)
        finished.append(ref.name)
        if len(finished) == 4:
            all_finished.set()
        return Outcome(
            fields={"verdict": "Inconclusive", "reason": "PrometheusTimeout"},
            conditions=[reconcile.false("Ready", "PrometheusTimeout", "timed out")],
            verdict="Inconclusive",
        )

    loop = ResourceLoop(PERF_BASELINE, slow, ("Inconclusive",), lambda s: timedelta(minutes=1))
    names = [f"new-{i}" for i in range(4)]

    async def scenario() -> float:
        runtime.evaluation_slots = asyncio.Semaphore(2)
        began = asyncio.get_running_loop().time()
        daemons = [start_daemon_named(loop, name) for name in names]
        restarted = dict(evaluated_body(datetime.now(UTC)))
        restarted["status"] = {
            **restarted["status"],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Evaluated",
                    "lastTransitionTime": "2026-12-05T12:00:00Z",
                }
            ],
        }
        again, stop_again = start_daemon(loop, kopf.Body(restarted), kopf.Memo())
        await asyncio.wait_for(all_finished.wait(), timeout=10)
        for daemon, stopper in [*daemons, (again, stop_again)]:
            stopper.set(kopf.DaemonStoppingReason.OPERATOR_EXITING)
            await asyncio.wait_for(daemon, timeout=2)
        return began

    began = asyncio.run(scenario())
    for name in names:
        (first_at, first), (_, evaluated) = written[name]
        assert first_at - began < 0.3, f"{name}: the first status came after an evaluation"
        (ready,) = first["conditions"]
        assert (ready["status"], ready["reason"]) == ("Unknown", "Pending")
        assert ready["observedGeneration"] == 1
        (ready,) = evaluated["conditions"]
        assert (ready["status"], ready["reason"]) == ("False", "PrometheusTimeout")
    assert "checkout" not in written, "a resource evaluated before gets no first-sight write"
    assert posted == [], "first sight posts no Event (the evaluations here post none)"
    pending = runtime.metrics.registry.get_sample_value(
        "perfguard_status_patches_total", {"kind": "PerfBaseline", "cause": "pending"}
    )
    assert pending == 4.0


def test_the_evaluator_is_told_the_generation_it_judges(
    server: tuple[FakeServer, list[str]],
) -> None:
    """The generation the status will record as observedGeneration reaches the evaluator
    (CapacityPlan compares it with the last status's, see engine/capacityplan.py); it is
    not part of the resource's identity."""
    fake, _ = server
    refs: list[ResourceRef] = []

    async def recording(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        refs.append(ref)
        return await established_once(spec, previous, at, ref)

    loop = ResourceLoop(PERF_BASELINE, recording, ("Pass",), lambda s: timedelta(0))
    body = stale_body()
    body["metadata"]["generation"] = 3
    asyncio.run(loop.reconcile(body=body, name="checkout", namespace="shop", memo=kopf.Memo()))
    (ref,) = refs
    assert ref.generation == fake.status["observedGeneration"] == 3
    assert ref == ResourceRef("PerfBaseline", "shop", "checkout")
    assert hash(ref) == hash(ResourceRef("PerfBaseline", "shop", "checkout"))
