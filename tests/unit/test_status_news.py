"""What in a PerfBaseline status is news (patched at once) and what is a reading (patched
every statusRefresh), on statuses the real judge writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import windows
from perfguard.engine.status_news import all_but_stamp, changed_news, perfbaseline_news
from perfguard.engine.tracks import plan_tracks
from perfguard.status import merge, parse_conditions, to_wire
from tests.unit.test_improvement_events import SPEC as BASE
from tests.unit.test_improvement_events import _samples

# test_improvement_events' canary-vs-stable Query metric, with a sustainFor shorter than
# its window, and its generated samples.
SPEC = BASE.model_copy(
    update={"analysis": BASE.analysis.model_copy(update={"sustain_for": timedelta(minutes=3)})}
)
START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def evaluate(status: dict[str, Any], at: datetime, change: float) -> dict[str, Any]:
    """One evaluation merged into the status as the operator merges it."""
    samples = _samples(at, change, seed=int(at.timestamp()))
    outcome = judge(SPEC, plan_tracks(SPEC, None), windows(SPEC, at), samples, status, at)
    conditions = merge(
        parse_conditions(status.get("conditions")), outcome.conditions, generation=1, at=at
    )
    return {**status, **outcome.fields, "conditions": to_wire(conditions), "observedGeneration": 1}


def test_new_numbers_alone_are_not_news() -> None:
    first = evaluate({}, START, 0.0)
    second = evaluate(first, START + timedelta(minutes=1), 0.0)
    assert first["verdict"] == second["verdict"] == "Pass"
    assert first["metrics"][0]["current"] != second["metrics"][0]["current"]
    assert first["baseline"]["to"] != second["baseline"]["to"], "the baseline window moved"
    assert all_but_stamp(first) != all_but_stamp(second), "every field would be written"
    assert perfbaseline_news(first) == perfbaseline_news(second)


def test_a_breach_and_its_verdict_are_news() -> None:
    steady = evaluate({}, START, 0.0)
    # A regression over the whole window: dated from the window's start, held for
    # sustainFor already, so the verdict fails at once.
    breach = evaluate(steady, START + timedelta(minutes=1), 0.5)
    assert (steady["verdict"], breach["verdict"]) == ("Pass", "Fail")
    assert breach["metrics"][0]["breachSince"] == "2026-12-03T11:51:00Z"
    assert perfbaseline_news(breach) != perfbaseline_news(steady)
    # Still failing: only numbers and the message's figures move.
    held = evaluate(breach, START + timedelta(minutes=2), 0.5)
    assert held["message"] != breach["message"] or held["metrics"] != breach["metrics"]
    assert perfbaseline_news(held) == perfbaseline_news(breach)
    recovered = evaluate(held, START + timedelta(minutes=3), 0.0)
    assert recovered["verdict"] == "Pass"
    assert perfbaseline_news(recovered) != perfbaseline_news(held)


def test_an_unconfirmed_breach_is_news_once_not_at_every_evaluation() -> None:
    metric = {"name": "latency", "statistic": "p95", "verdict": "NoData"}
    breach = {**metric, "breachSince": "2026-12-03T11:51:00Z"}
    first = {"metrics": [{**breach, "breachUnconfirmedSince": "2026-12-03T12:00:00Z"}]}
    # The stamp is kept, not moved, by the evaluations that follow: same news.
    again = {"metrics": [{**first["metrics"][0], "message": "no samples, 12:01"}]}
    assert perfbaseline_news(first) == perfbaseline_news(again)
    assert perfbaseline_news(first) != perfbaseline_news({"metrics": [breach]})
    # The breach lapsing (both stamps dropped) is news too.
    assert perfbaseline_news({"metrics": [metric]}) != perfbaseline_news(first)


def test_condition_status_and_reason_are_news_their_message_is_not() -> None:
    condition = {"type": "Regressed", "status": "True", "reason": "RegressionDetected"}
    one = {"conditions": [{**condition, "message": "p95 +7.1 ms"}]}
    two = {"conditions": [{**condition, "message": "p95 +7.4 ms"}]}
    assert perfbaseline_news(one) == perfbaseline_news(two)
    cleared = {"conditions": [{**condition, "status": "False", "message": "p95 +7.4 ms"}]}
    assert perfbaseline_news(cleared) != perfbaseline_news(two)


def test_a_new_stage_is_news_its_numbers_and_flag_are_not() -> None:
    def status(stages: list[tuple[str, float]], flagged: bool) -> dict[str, Any]:
        return {
            "stages": [{"metric": "latency", "stage": s, "mean": m} for s, m in stages],
            "stagesSummary": {"unattributedShare": 0.05, "unattributedFlagged": flagged},
        }

    base = status([("decode", 1.0)], False)
    assert perfbaseline_news(base) == perfbaseline_news(status([("decode", 1.2)], False))
    # The unattributed share read against 10 %: a reading, written with the share.
    assert perfbaseline_news(base) == perfbaseline_news(status([("decode", 1.0)], True))
    assert perfbaseline_news(base) != perfbaseline_news(
        status([("decode", 1.0), ("infer", 2.0)], False)
    )


def test_changed_news_names_what_changed() -> None:
    steady = evaluate({}, START, 0.0)
    breach = evaluate(steady, START + timedelta(minutes=1), 0.5)
    metric = "metrics[gpu/value/Concurrent]"
    changed = changed_news(perfbaseline_news(steady), perfbaseline_news(breach))
    assert "verdict" in changed and "reason" in changed
    assert f"{metric}.verdict" in changed and f"{metric}.breachSince" in changed
    assert "conditions[Regressed].status" in changed
    assert not any(path.endswith(".current") or path.endswith(".message") for path in changed)
    held = evaluate(breach, START + timedelta(minutes=2), 0.5)
    assert changed_news(perfbaseline_news(breach), perfbaseline_news(held)) == []
    # Entries that come and go are named as such; other values by their dotted path.
    one = {"conditions": [{"type": "Ready", "status": "True"}], "candidate": {"identity": "a"}}
    two = {"conditions": [{"type": "Regressed", "status": "False"}], "candidate": {"identity": "b"}}
    assert changed_news(one, two) == [
        "candidate.identity",
        "conditions[Ready] removed",
        "conditions[Regressed] added",
    ]
    assert changed_news({"stages": [1, 2]}, {"stages": [1, 3]}) == ["stages"]


def test_changed_news_tells_entries_with_one_label_apart() -> None:
    """Two anomalies of one type on different nodes are two entries, not one."""
    one = {"anomalies": [{"type": "XidError", "node": "a"}, {"type": "XidError", "node": "b"}]}
    two = {"anomalies": [{"type": "XidError", "node": "a"}, {"type": "XidError", "node": "c"}]}
    assert changed_news(one, two) == ["anomalies[XidError#1].node"]
    three = {"anomalies": [*one["anomalies"], {"type": "XidError", "node": "d"}]}
    assert changed_news(one, three) == ["anomalies[XidError#2] added"]
