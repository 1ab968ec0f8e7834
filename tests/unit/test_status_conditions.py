from __future__ import annotations

from datetime import UTC, datetime, timedelta

from perfguard.api.conditions import ConditionStatus
from perfguard.status import (
    false,
    merge,
    next_status,
    parse_conditions,
    to_wire,
    transitioned,
    true,
    unknown,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_first_sight_sets_transition_time_and_generation() -> None:
    result = merge([], [unknown("Ready", "EvaluationPending", "not yet")], generation=3, at=T0)
    assert len(result) == 1
    assert result[0].last_transition_time == T0
    assert result[0].observed_generation == 3


def test_a_message_longer_than_the_crd_allows_is_cut_to_fit() -> None:
    """The CRD (like metav1.Condition) takes at most 32768 characters; a longer message
    made building the condition raise, and would make the API server refuse the patch."""
    from perfguard.api.conditions import MAX_MESSAGE

    (long,) = merge([], [false("Ready", "InvalidSpec", "é" * 100_000)], generation=1, at=T0)
    assert len(long.message) == MAX_MESSAGE == 32768
    assert long.message.endswith("é...")
    (short,) = merge([], [false("Ready", "InvalidSpec", "x" * MAX_MESSAGE)], generation=1, at=T0)
    assert short.message == "x" * MAX_MESSAGE


def test_an_event_message_is_cut_in_bytes_never_inside_a_character() -> None:
    from perfguard.status import shorten_utf8

    assert shorten_utf8("ok", 1024) == "ok"
    cut = shorten_utf8("é" * 1000, 1024)  # 2000 bytes
    assert len(cut.encode()) <= 1024 and cut.endswith("é...")
    assert shorten_utf8("x" * 1024, 1024) == "x" * 1024


def test_same_status_keeps_transition_time_but_updates_reason_and_generation() -> None:
    first = merge([], [true("Ready", "Evaluated", "ok")], generation=1, at=T0)
    second = merge(first, [true("Ready", "EvaluatedAgain", "still ok")], generation=2, at=T1)
    assert second[0].last_transition_time == T0
    assert second[0].reason == "EvaluatedAgain"
    assert second[0].observed_generation == 2


def test_status_change_moves_transition_time() -> None:
    first = merge([], [true("Ready", "Evaluated", "ok")], generation=1, at=T0)
    second = merge(first, [false("Ready", "PrometheusUnreachable", "down")], generation=1, at=T1)
    assert second[0].last_transition_time == T1
    assert transitioned(first, second, "Ready") is not None
    assert transitioned(second, second, "Ready") is None


def test_unrelated_conditions_are_kept_in_order() -> None:
    first = merge([], [true("Ready", "A", ""), false("Regressed", "B", "")], generation=1, at=T0)
    second = merge(first, [true("Regressed", "C", "")], generation=1, at=T1)
    assert [c.type for c in second] == ["Ready", "Regressed"]
    assert second[0].status == ConditionStatus.TRUE


def test_wire_round_trip_and_malformed_entries_are_skipped() -> None:
    conditions = merge([], [true("Ready", "Evaluated", "ok")], generation=1, at=T0)
    wire = to_wire(conditions)
    assert wire[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert wire[0]["observedGeneration"] == 1
    parsed = parse_conditions([*wire, {"type": "Broken"}])
    assert parsed == conditions


def test_next_status_keeps_what_the_evaluation_did_not_set() -> None:
    """The status an evaluation leaves, as the operator writes it and replays carry it."""
    first = next_status(
        {},
        {"verdict": "Pass", "metrics": [{"name": "latency"}], "stages": [{"stage": "db"}]},
        [true("Ready", "Evaluated", "ok")],
        generation=1,
        at=T0,
        measured=True,
    )
    assert first["observedGeneration"] == 1
    assert first["lastEvaluationTime"] == "2026-01-01T00:00:00Z", "a verdict is stamped"
    assert first["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    # A failed query sets only the verdict and its reason: the metrics shown stay; a field
    # set to None is removed; a condition whose status holds keeps its transition time.
    failed = next_status(
        first,
        {"verdict": "Inconclusive", "reason": "PrometheusUnreachable", "stages": None},
        [true("Ready", "EvaluatedAgain", "ok"), false("Regressed", "X", "no data")],
        generation=2,
        at=T1,
        measured=True,
    )
    assert failed["lastEvaluationTime"] == "2026-01-01T00:05:00Z"
    assert failed["verdict"] == "Inconclusive" and failed["metrics"] == [{"name": "latency"}]
    assert "stages" not in failed and failed["observedGeneration"] == 2
    ready, regressed = failed["conditions"]
    assert (ready["reason"], ready["lastTransitionTime"]) == (
        "EvaluatedAgain",
        "2026-01-01T00:00:00Z",
    )
    assert (regressed["type"], regressed["lastTransitionTime"]) == (
        "Regressed",
        "2026-01-01T00:05:00Z",
    )
    assert first["verdict"] == "Pass", "the old status is not changed"

    # An outcome without a verdict (an invalid spec) keeps the stamp of the last one, and an
    # evaluation's own stamp is kept.
    invalid = next_status(
        failed,
        {"reason": "InvalidSpec"},
        [],
        generation=3,
        at=T1 + timedelta(minutes=5),
        measured=False,
    )
    assert invalid["lastEvaluationTime"] == "2026-01-01T00:05:00Z"
    own = next_status({}, {"lastEvaluationTime": "x"}, [], generation=1, at=T0, measured=True)
    assert own["lastEvaluationTime"] == "x"


def test_an_evaluation_that_raised_does_not_claim_the_new_spec() -> None:
    """A spec changed (generation 1 -> 2) and its evaluation raised: the status keeps the Pass
    of generation 1, so observedGeneration stays 1 (the generation that verdict was computed
    for) and every gate holds it as a verdict about an older spec. The Ready condition says
    which generation it describes through its own observedGeneration."""
    from perfguard.gates import GateTarget, judge_perfbaseline
    from perfguard.status import EVALUATION_ERROR, READY

    passed = next_status(
        {},
        {"verdict": "Pass", "candidate": {"identity": "7d9f8c6b5"}},
        [true(READY, "Evaluated", "ok")],
        generation=1,
        at=T0,
        measured=True,
    )
    raised = next_status(
        passed,
        {},
        [false(READY, EVALUATION_ERROR, "ValueError: x")],
        generation=2,
        at=T1,
        measured=False,
    )
    assert raised["verdict"] == "Pass"
    assert raised["observedGeneration"] == 1
    assert raised["conditions"][0]["observedGeneration"] == 2
    obj = {
        "metadata": {"name": "resnet", "namespace": "ml-prod", "generation": 2},
        "status": raised,
    }
    decision = judge_perfbaseline(obj, GateTarget("PerfBaseline", "ml-prod", "resnet"), now=T1)
    assert (decision.status, decision.reason) == (409, "SpecNotEvaluated"), decision
    # The next evaluation that reaches a verdict catches up.
    again = next_status(raised, {"verdict": "Fail"}, [], generation=2, at=T1, measured=True)
    assert again["observedGeneration"] == 2
