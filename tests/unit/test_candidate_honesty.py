"""PerfBaseline verdicts that must not pass or carry over: a new candidate, a candidate
that stopped reporting, a query answered with several series, an unreadable workload.
Hand-made samples through engine.perfbaseline.judge; statuses carried as the operator
carries them (perfguard.status.next_status)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from perfguard.engine.perfbaseline import judge, lapse_after, unavailable
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import TrackPlan, plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources.prometheus import FailureKind, PrometheusError
from perfguard.status import next_status
from perfguard.times import parse_time
from tests.unit.specs import concurrent_spec, p95_latency

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
SPEC = concurrent_spec([p95_latency()])
PLAN_A = dataclasses.replace(plan_tracks(SPEC, None), identity="hashA", source="WorkloadRef")
PLAN_B = dataclasses.replace(PLAN_A, identity="hashB")


def samples(
    at: datetime, change_s: float, *, since: datetime | None = None, seed: int = 3
) -> dict[str, MetricSamples]:
    """Stable at 100 ms; the candidate `change_s` above it, reporting from `since`."""
    rng = np.random.default_rng(seed)
    w = windows(SPEC, at)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    stable = 0.100 + rng.normal(0, 0.001, t.size)
    candidate = stable + change_s + rng.normal(0, 0.001, t.size)
    shown = t >= (since or AT - timedelta(days=1)).timestamp()
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, stable)
    data.window[("candidate", "p95")] = TimedSamples(t[shown], candidate[shown])
    return {"latency": data}


def step(
    plan: TrackPlan, status: dict[str, Any], at: datetime, data: dict[str, MetricSamples]
) -> tuple[Outcome, dict[str, Any]]:
    out = judge(SPEC, plan, windows(SPEC, at), data, status, at)
    return out, next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)


def test_a_new_candidate_starts_its_own_breach_and_its_failure_is_announced() -> None:
    status: dict[str, Any] = {}
    at = AT
    for _ in range(20):  # candidate A, +20 ms for 20 minutes: Fail
        at += timedelta(minutes=1)
        out, status = step(PLAN_A, status, at, samples(at, 0.020))
    assert status["verdict"] == "Fail"
    a_breach = status["metrics"][0]["breachSince"]
    # A is replaced by B, which regresses as well; its pods report from now on.
    b_start, reasons = at, []
    for minute in range(1, 20):
        at = b_start + timedelta(minutes=minute)
        out, status = step(PLAN_B, status, at, samples(at, 0.020, since=b_start))
        reasons.append((minute, status["verdict"], [e.reason for e in out.events]))
        assert status["metrics"][0].get("breachSince") != a_breach, reasons
    # B fails only once its own breach has held sustainFor (15m) ...
    first_fail = next(m for m, verdict, _ in reasons if verdict == "Fail")
    assert first_fail >= 15, reasons
    # ... A's regression is cleared when B replaces it, and B's is announced.
    assert "RegressionCleared" in reasons[0][2], reasons
    assert [e for _, _, events in reasons for e in events if e == "RegressionDetected"] == [
        "RegressionDetected"
    ]


def test_a_new_candidate_that_fails_at_once_clears_the_old_regression_first() -> None:
    spec = SPEC.model_copy(
        update={"analysis": SPEC.analysis.model_copy(update={"sustain_for": timedelta(minutes=3)})}
    )
    status: dict[str, Any] = {}
    at = AT
    for _ in range(5):
        at += timedelta(minutes=1)
        out = judge(spec, PLAN_A, windows(spec, at), samples(at, 0.020), status, at)
        status = next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)
    assert status["verdict"] == "Fail"
    at += timedelta(minutes=1)
    out = judge(spec, PLAN_B, windows(spec, at), samples(at, 0.020), status, at)
    assert out.fields["verdict"] == "Fail"
    assert [e.reason for e in out.events] == ["RegressionCleared", "RegressionDetected"]


def test_a_candidate_that_stopped_reporting_is_not_judged_on_its_last_minutes() -> None:
    at = AT
    data = samples(at, 0.0)
    series = data["latency"].window[("candidate", "p95")]
    keep = series.timestamps <= (at - timedelta(minutes=4, seconds=30)).timestamp()
    data["latency"].window[("candidate", "p95")] = TimedSamples(
        series.timestamps[keep], series.values[keep]
    )
    out = judge(SPEC, PLAN_A, windows(SPEC, at), data, {}, at)
    metric = out.fields["metrics"][0]
    assert out.fields["verdict"] == "Inconclusive", metric["message"]
    assert metric["verdict"] == "NoData" and metric["reason"] == "CurrentDataStale"
    assert "stopped reporting" in metric["message"]
    # Reporting up to a step ago is current.
    fresh = judge(SPEC, PLAN_A, windows(SPEC, at), samples(at, 0.0), {}, at)
    assert fresh.fields["verdict"] == "Pass", fresh.fields["metrics"][0]["message"]


def test_a_query_answered_with_several_series_is_not_judged() -> None:
    data = samples(AT, 0.0)
    data["latency"].problem = "the query for p95 of candidate returned several series"
    out = judge(SPEC, PLAN_A, windows(SPEC, AT), data, {}, AT)
    metric = out.fields["metrics"][0]
    assert out.fields["verdict"] == "Inconclusive"
    assert metric["verdict"] == "NoData" and metric["reason"] == "QueryProblem"
    assert "several series" in metric["message"]
    ready = next(c for c in out.conditions if c.type == "Ready")
    assert (ready.status.value, ready.reason) == ("False", "InvalidSpec")


def test_an_unreadable_workload_keeps_a_reported_regression() -> None:
    status: dict[str, Any] = {}
    at = AT
    for _ in range(20):
        at += timedelta(minutes=1)
        _, status = step(PLAN_A, status, at, samples(at, 0.020))
    assert status["verdict"] == "Fail"
    blip = unavailable(
        "ApiUnreachable",
        "the Kubernetes API did not answer",
        status,
        at=at,
        spec=SPEC,
        status_refresh=timedelta(0),
    )
    status = next_status(status, blip.fields, blip.conditions, generation=1, at=at, measured=True)
    regressed = next(c for c in status["conditions"] if c["type"] == "Regressed")
    assert (regressed["status"], regressed["reason"]) == ("True", "RecoveryUnconfirmed")
    at += timedelta(minutes=1)
    out, status = step(PLAN_A, status, at, samples(at, 0.020))
    assert status["verdict"] == "Fail"
    assert "RegressionDetected" not in [e.reason for e in out.events], "announced once"


def test_a_breach_does_not_outlast_an_outage_longer_than_sustain_for() -> None:
    """Regressed, then no data, then Regressed again: the two breaches are one only when the
    gap is shorter than sustainFor (15m); otherwise the second starts its own clock."""

    def outage(status: dict[str, Any], start: datetime, minutes: int) -> dict[str, Any]:
        for minute in range(1, minutes + 1):
            at = start + timedelta(minutes=minute)
            # The canary's pods are gone: no current samples at all.
            _, status = step(PLAN_A, status, at, samples(at, 0.020, since=at + timedelta(hours=1)))
            metric = status["metrics"][0]
            assert metric["verdict"] == "NoData"
            if "breachSince" in metric:
                assert parse_time(metric["breachUnconfirmedSince"]) == start + timedelta(minutes=1)
                assert "not confirmed since" in metric["message"]
        return status

    def regressed(status: dict[str, Any], at: datetime) -> dict[str, Any]:
        # +20 ms over the whole 10-minute window: a breach dated from the window's start.
        _, status = step(PLAN_A, status, at, samples(at, 0.020))
        return status

    start = AT + timedelta(minutes=1)
    status = regressed({}, start)
    assert status["verdict"] == "Inconclusive" and status["reason"] == "BreachNotSustained"
    breach = status["metrics"][0]["breachSince"]

    # A 10-minute gap: the breach is kept, so it has held sustainFor when seen again.
    short = outage(dict(status), start, 10)
    assert short["metrics"][0]["breachSince"] == breach
    back = regressed(short, start + timedelta(minutes=11))
    assert back["verdict"] == "Fail", back["message"]
    assert back["metrics"][0]["breachSince"] == breach
    assert "breachUnconfirmedSince" not in back["metrics"][0]

    # A 30-minute gap: the breach lapses after 15 unconfirmed minutes ...
    long = outage(dict(status), start, 30)
    assert "breachSince" not in long["metrics"][0]
    assert "breachUnconfirmedSince" not in long["metrics"][0]
    # ... so the regression seen after it is a new breach, pending, not a sustained one.
    back = regressed(long, start + timedelta(minutes=31))
    assert back["verdict"] == "Inconclusive" and back["reason"] == "BreachNotSustained"
    assert parse_time(back["metrics"][0]["breachSince"]) == start + timedelta(minutes=21)


def test_a_breach_does_not_outlast_an_unavailable_data_source() -> None:
    """As with NoData: Prometheus unreachable (or the workload unreadable) for longer than
    sustainFor (15m) lapses a breach. Before, those evaluations returned no metrics, so
    the breach was never stamped unconfirmed, and a regression seen 30 minutes later
    failed at once on the breach from before the outage."""
    down = MetricSamples(error=PrometheusError(FailureKind.UNREACHABLE, "connection refused"))

    def outage(status: dict[str, Any], start: datetime, minutes: int) -> dict[str, Any]:
        for minute in range(1, minutes + 1):
            at = start + timedelta(minutes=minute)
            if minute % 2:
                _, status = step(PLAN_A, status, at, {"latency": down})
            else:  # the workload's ReplicaSets could not be read: no query at all
                blip = unavailable(
                    "ApiUnreachable",
                    "the API did not answer",
                    status,
                    at=at,
                    spec=SPEC,
                    status_refresh=timedelta(0),
                )
                status = next_status(
                    status, blip.fields, blip.conditions, generation=1, at=at, measured=True
                )
            stamp = status["metrics"][0]["breachUnconfirmedSince"]
            assert parse_time(stamp) == start + timedelta(minutes=1)
        return status

    start = AT + timedelta(minutes=1)
    _, status = step(PLAN_A, {}, start, samples(start, 0.020))
    assert status["reason"] == "BreachNotSustained"
    breach = status["metrics"][0]["breachSince"]

    # A 10-minute outage keeps the breach: it has held sustainFor when seen again.
    _, back = step(
        PLAN_A,
        outage(dict(status), start, 10),
        start + timedelta(minutes=11),
        samples(start + timedelta(minutes=11), 0.020),
    )
    assert back["verdict"] == "Fail", back["message"]
    assert back["metrics"][0]["breachSince"] == breach
    assert "breachUnconfirmedSince" not in back["metrics"][0]

    # A 30-minute outage lapses it: the regression seen after it is a new, pending breach.
    at = start + timedelta(minutes=31)
    out, back = step(PLAN_A, outage(dict(status), start, 30), at, samples(at, 0.020))
    assert back["verdict"] == "Inconclusive" and back["reason"] == "BreachNotSustained"
    assert parse_time(back["metrics"][0]["breachSince"]) == at - timedelta(minutes=10)
    assert "RegressionDetected" not in [e.reason for e in out.events]


def test_a_breach_does_not_outlast_an_operator_stop_longer_than_sustain_for() -> None:
    """No evaluation confirms nothing either: the breach is unconfirmed from when the next
    evaluation was due. Before, a breach and a regression seen after a 30-minute stop of
    the operator added up to a sustained one (Fail at once)."""
    start = AT + timedelta(minutes=1)
    _, status = step(PLAN_A, {}, start, samples(start, 0.020))
    breach = status["metrics"][0]["breachSince"]

    def after(stop: timedelta, refresh: timedelta = timedelta(0)) -> dict[str, Any]:
        at = start + stop
        out = judge(
            SPEC, PLAN_A, windows(SPEC, at), samples(at, 0.020), status, at, status_refresh=refresh
        )
        return next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)

    # Back after 10 minutes: within sustainFor (15m), the breach has held.
    short = after(timedelta(minutes=10))
    assert short["verdict"] == "Fail" and short["metrics"][0]["breachSince"] == breach
    # Back after 30 minutes: the breach lapsed, the regression is a new one.
    long = after(timedelta(minutes=30))
    assert long["verdict"] == "Inconclusive" and long["reason"] == "BreachNotSustained"
    assert parse_time(long["metrics"][0]["breachSince"]) == start + timedelta(minutes=20)
    # A stamp up to statusRefresh old is no stop: the operator wrote no news meanwhile.
    kept = after(timedelta(minutes=20), refresh=timedelta(minutes=5))
    assert kept["verdict"] == "Fail" and kept["metrics"][0]["breachSince"] == breach


# sustainFor 5m, interval 1m: a breach that could be sustained within a short stop.
SPEC_5M = SPEC.model_copy(
    update={"analysis": SPEC.analysis.model_copy(update={"sustain_for": timedelta(minutes=5)})}
)
REFRESH = timedelta(minutes=5)


def at_(hour: int, minute: int, second: int = 0) -> datetime:
    return AT.replace(hour=hour, minute=minute, second=second)


def shifted(at: datetime, shifts: list[tuple[datetime, datetime]]) -> dict[str, MetricSamples]:
    """Stable at 100 ms; the candidate 100 ms above it during each of `shifts`."""
    rng = np.random.default_rng(1)
    w = windows(SPEC_5M, at)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    stable = 0.100 + rng.normal(0, 0.001, t.size)
    candidate = stable + rng.normal(0, 0.001, t.size)
    for begin, end in shifts:
        candidate += np.where((t >= begin.timestamp()) & (t < end.timestamp()), 0.100, 0.0)
    data = MetricSamples()
    data.window[("stable", "p95")] = TimedSamples(t, stable)
    data.window[("candidate", "p95")] = TimedSamples(t, candidate)
    return {"latency": data}


def step_5m(status: dict[str, Any], at: datetime, data: dict[str, MetricSamples]) -> dict[str, Any]:
    out = judge(SPEC_5M, PLAN_A, windows(SPEC_5M, at), data, status, at, status_refresh=REFRESH)
    return next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)


def pending_at_1157(shifts: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    """The status written at 11:57: a breach since 11:55, pending (sustainFor 5m)."""
    status: dict[str, Any] = {}
    for at in (at_(11, 56), at_(11, 57)):
        status = step_5m(status, at, shifted(at, shifts))
    assert status["reason"] == "BreachNotSustained"
    assert parse_time(status["metrics"][0]["breachSince"]) == at_(11, 55)
    return status


def test_a_stop_hidden_by_status_refresh_still_counts_for_a_pending_breach() -> None:
    """A status without news is written only every statusRefresh (5m), so an unwritten
    evaluation may have confirmed a breach up to 5 minutes after lastEvaluationTime. Not a
    pending one from breachSince + sustainFor on: confirmed then it would have been a Fail,
    news, written. Before, the whole statusRefresh counted as confirmed: the regression
    11:55-11:58, the operator down 11:57:30-12:06:30 and a new one from 12:04:30 failed at
    12:07 on the breach "since 11:55", unconfirmed for 6 minutes (from 12:01)."""
    first = (at_(11, 55), at_(11, 58))
    second = (at_(12, 4, 30), at_(13, 0))
    status = pending_at_1157([first, second])

    back = step_5m(status, at_(12, 7), shifted(at_(12, 7), [first, second]))
    assert back["verdict"] == "Inconclusive" and back["reason"] == "BreachNotSustained"
    assert parse_time(back["metrics"][0]["breachSince"]) == at_(12, 4, 30)

    # A regression that held, evaluated on time (12:00) or a little late (12:01:20): the
    # breach from 11:55 is sustained, not lapsed.
    held = [(at_(11, 55), at_(13, 0))]
    for at in (at_(12, 0), at_(12, 1, 20)):
        back = step_5m(status, at, shifted(at, held))
        assert back["verdict"] == "Fail", (at, back["message"])
        assert parse_time(back["metrics"][0]["breachSince"]) == at_(11, 55)


def test_an_outage_right_after_a_restart_does_not_erase_the_stop() -> None:
    """A breach pending at 11:57, the operator down until 12:30, Prometheus unreachable at
    12:30, a new regression from 12:29:30. Before, the unreachable evaluation stamped the
    breach unconfirmed since 12:30 (and a fresh lastEvaluationTime hid the stop), so it
    failed at 12:32 on the breach "since 11:55". Now it is unconfirmed since 12:01 (the
    evaluation due after 11:55 + sustainFor), and lapses."""
    shifts = [(at_(11, 55), at_(11, 58)), (at_(12, 29, 30), at_(13, 0))]
    status = pending_at_1157(shifts)
    down = {"latency": MetricSamples(error=PrometheusError(FailureKind.UNREACHABLE, "refused"))}
    outage = step_5m(status, at_(12, 30), down)
    assert outage["reason"] == "PrometheusUnreachable"
    assert parse_time(outage["metrics"][0]["breachUnconfirmedSince"]) == at_(12, 1)
    # The workload unreadable (the handler's path) stamps it the same.
    blip = unavailable(
        "ApiUnreachable", "no answer", status, at=at_(12, 30), spec=SPEC_5M, status_refresh=REFRESH
    )
    assert parse_time(blip.fields["metrics"][0]["breachUnconfirmedSince"]) == at_(12, 1)

    for at in (at_(12, 31), at_(12, 32)):
        outage = step_5m(outage, at, shifted(at, shifts))
    assert outage["verdict"] == "Inconclusive" and outage["reason"] == "BreachNotSustained"
    assert parse_time(outage["metrics"][0]["breachSince"]) == at_(12, 29, 30)


@pytest.mark.parametrize(
    "late", [timedelta(0), timedelta(milliseconds=5), timedelta(seconds=3)], ids=str
)
def test_one_inconclusive_evaluation_does_not_lapse_a_breach_at_a_long_interval(
    late: timedelta,
) -> None:
    """interval 5m, sustainFor 3m: one Inconclusive evaluation leaves a breach unconfirmed
    for a whole interval. Lapsing it after sustainFor dropped it at every such evaluation,
    so a regression read Regressed, Inconclusive, Regressed, ... never failed. It lapses
    after the longer of sustainFor and the interval, plus a slack (half an interval, at most
    30 s): two missed evaluations in a row. Evaluations come an interval *plus* the wait for
    a slot apart (`late`, each one); without the slack one Inconclusive evaluation coming
    5 ms late lapsed the breach."""
    spec = SPEC.model_copy(
        update={
            "analysis": SPEC.analysis.model_copy(
                update={"interval": timedelta(minutes=5), "sustain_for": timedelta(minutes=3)}
            )
        }
    )
    assert lapse_after(spec) == timedelta(minutes=5, seconds=30)
    every = timedelta(minutes=5) + late

    def evaluate(status: dict[str, Any], at: datetime, regressed: bool) -> dict[str, Any]:
        # Inconclusive: the candidate reports only in the last 2 minutes (too few samples).
        since = None if regressed else at - timedelta(minutes=2)
        out = judge(spec, PLAN_A, windows(spec, at), samples(at, 0.020, since=since), status, at)
        return next_status(status, out.fields, out.conditions, generation=1, at=at, measured=True)

    start = AT + timedelta(minutes=1)
    status: dict[str, Any] = {}
    seen = []
    messages = []
    for i, regressed in enumerate([True, False, True, False, True, False, True]):
        status = evaluate(status, start + i * every, regressed)
        seen.append((status["verdict"], status["metrics"][0].get("breachSince")))
        messages.append(status["metrics"][0]["message"])
    breach = seen[0][1]
    assert seen[1] == ("Inconclusive", breach), seen  # the breach is kept ...
    assert "dropped if still unconfirmed after 5m30s" in messages[1]
    # ... and holds, each time.
    assert [seen[i] for i in (2, 4, 6)] == [("Fail", breach)] * 3, seen
    # Two Inconclusive evaluations in a row (10 minutes unconfirmed) lapse it: the breach
    # seen after them is a new one, dated from its own window.
    status = evaluate({}, start, True)
    for i in (1, 2):
        status = evaluate(status, start + i * every, False)
    at = start + 3 * every
    status = evaluate(status, at, True)
    assert parse_time(status["metrics"][0]["breachSince"]) == at - timedelta(minutes=10)


def test_the_lapse_slack_is_half_an_interval_at_most_30_seconds() -> None:
    """The slack covers a late evaluation, never a missed one: half an interval at most, so
    two missed evaluations in a row always lapse a breach."""

    def limit(interval: timedelta, sustain_for: timedelta) -> timedelta:
        analysis = SPEC.analysis.model_copy(
            update={"interval": interval, "sustain_for": sustain_for}
        )
        return lapse_after(SPEC.model_copy(update={"analysis": analysis}))

    minute = timedelta(minutes=1)
    assert limit(minute, 5 * minute) == timedelta(minutes=5, seconds=30)
    assert limit(timedelta(seconds=20), 3 * minute) == timedelta(minutes=3, seconds=10)
    assert limit(60 * minute, 3 * minute) == timedelta(hours=1, seconds=30)


def test_a_query_that_matched_no_series_says_so() -> None:
    """A misspelt histogram gives no series at all: NoData that says where to look, not
    "no samples: candidate 0, baseline 0", which reads like an idle service."""
    out = judge(SPEC, PLAN_A, windows(SPEC, AT), {"latency": MetricSamples()}, {}, AT)
    metric = out.fields["metrics"][0]
    assert metric["verdict"] == "NoData" and out.fields["verdict"] == "Inconclusive"
    assert metric["message"] == (
        "no samples: the query for p95 returned no series for candidate and stable; check "
        "that req_seconds exists with the selector's labels, and that those pods run"
    )
    # The stable track alone missing is named alone.
    data = samples(AT, 0.0)
    del data["latency"].window[("stable", "p95")]
    metric = judge(SPEC, PLAN_A, windows(SPEC, AT), data, {}, AT).fields["metrics"][0]
    assert "returned no series for stable;" in metric["message"]
    # Series that are there but hold no finite value (no traffic: NaN quantiles) are not
    # "no series".
    data = samples(AT, 0.0)
    for key, series in data["latency"].window.items():
        data["latency"].window[key] = TimedSamples(
            series.timestamps, np.full(series.values.size, np.nan)
        )
    metric = judge(SPEC, PLAN_A, windows(SPEC, AT), data, {}, AT).fields["metrics"][0]
    assert metric["verdict"] == "NoData" and "no series" not in metric["message"]
