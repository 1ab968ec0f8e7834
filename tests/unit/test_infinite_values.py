"""±Inf in a judged window is not dropped silently: NoData (NonFiniteValues), unless it only
makes a breach the finite steps already show worse.

A Query metric is the user's PromQL, and `a / b` answers +Inf where b is 0. The judge kept
the finite samples only, as it does with NaN (no value at the step): a canary whose query
read +Inf at 7 of 21 steps, and within its limit at the other 14, passed. The rule
(perfguard.analysis.infinities) and the judge's use of it, on hand-made samples, and once
through `evaluate` with Prometheus' own "+Inf".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from perfguard.analysis.infinities import (
    Infinities,
    infinities,
    infinity_ruling,
    limit_stands,
)
from perfguard.analysis.judgement import MetricJudgement, MetricVerdict
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline import evaluate, judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.outcome import Outcome
from perfguard.sources import prometheus
from perfguard.sources.perfbaseline_queries import STAT_LABEL, TRACK_LABEL
from perfguard.sources.prometheus import Series
from tests.unit.specs import made

AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
INF = np.inf
PASS, REGRESSED = MetricVerdict.PASS, MetricVerdict.REGRESSED
IMPROVED, INCONCLUSIVE = MetricVerdict.IMPROVED, MetricVerdict.INCONCLUSIVE


# -- the rule ---------------------------------------------------------------------------


def test_infinities_are_counted_among_the_steps_with_a_value() -> None:
    found = infinities([1.0, INF, np.nan, -INF, INF, 2.0])
    assert found == Infinities(positive=2, negative=1, of=5)
    assert found.steps == 3 and found.sign is None
    assert found.describe() == "+Inf at 2 and -Inf at 1 of 5 steps"
    assert infinities([INF, 1.0]) == Infinities(1, 0, 2)
    assert Infinities(1, 0, 2).sign == 1.0 and Infinities(0, 3, 9).sign == -1.0
    assert Infinities(0, 3, 9).describe() == "-Inf at 3 of 9 steps"
    # NaN is no value, not an infinity.
    assert infinities([1.0, np.nan, 2.0]) is None
    assert infinities([]) is None


UP, DOWN, BOTH_SIGNS = Infinities(3, 0, 21), Infinities(0, 3, 21), Infinities(2, 1, 21)


@pytest.mark.parametrize(
    ("candidate", "reference", "judgement", "stands"),
    [
        # The candidate's +Inf only makes an increase worse: a breach stands.
        (UP, None, made(REGRESSED, ("maxIncrease", REGRESSED)), True),
        (UP, None, made(REGRESSED, ("maxIncreasePercent", REGRESSED)), True),
        (UP, None, made(REGRESSED, ("max", REGRESSED)), True),
        (DOWN, None, made(REGRESSED, ("maxDecrease", REGRESSED)), True),
        (DOWN, None, made(REGRESSED, ("maxDecreasePercent", REGRESSED)), True),
        # ... and nothing else does: the window's mean is infinite.
        (UP, None, made(PASS, ("maxIncrease", PASS)), False),
        (UP, None, made(IMPROVED, ("maxIncrease", PASS)), False),
        (UP, None, made(INCONCLUSIVE, ("maxIncrease", INCONCLUSIVE)), False),
        (DOWN, None, made(PASS, ("maxIncrease", PASS)), False),
        (UP, None, made(INCONCLUSIVE), False),  # too few finite steps
        # Infinities that pull against the breach, or both ways.
        (DOWN, None, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        (UP, None, made(REGRESSED, ("maxDecrease", REGRESSED)), False),
        (BOTH_SIGNS, None, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        # One sound breach is a breach.
        (UP, None, made(REGRESSED, ("maxDecrease", REGRESSED), ("max", REGRESSED)), True),
        (UP, None, made(REGRESSED, ("maxIncrease", REGRESSED), ("maxDecrease", PASS)), True),
        # The reference's infinities leave nothing to compare with.
        (None, UP, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        (None, DOWN, made(PASS, ("maxIncrease", PASS)), False),
        (UP, UP, made(REGRESSED, ("maxIncrease", REGRESSED)), False),
        (None, UP, made(INCONCLUSIVE), False),  # too few finite steps
        # ... but `max` bounds the candidate's own level: they do not enter it.
        (None, UP, made(PASS, ("max", PASS)), True),
        (None, DOWN, made(REGRESSED, ("max", REGRESSED)), True),
        (None, BOTH_SIGNS, made(INCONCLUSIVE, ("max", INCONCLUSIVE)), True),
        (None, UP, made(IMPROVED, ("max", PASS)), True),  # as a Pass
        (UP, DOWN, made(REGRESSED, ("max", REGRESSED)), True),  # the candidate's +Inf: worse
        (DOWN, UP, made(REGRESSED, ("max", REGRESSED)), False),
        (UP, UP, made(PASS, ("max", PASS)), False),
        # With a limit on the change too: a breach of `max` stands, a Pass needs every limit.
        (None, UP, made(REGRESSED, ("maxIncrease", REGRESSED), ("max", REGRESSED)), True),
        (None, UP, made(REGRESSED, ("maxIncrease", REGRESSED), ("max", PASS)), False),
        (None, UP, made(PASS, ("maxIncrease", PASS), ("max", PASS)), False),
        (None, UP, made(INCONCLUSIVE, ("maxIncrease", INCONCLUSIVE), ("max", PASS)), False),
        # None at all: as it is.
        (None, None, made(PASS, ("maxIncrease", PASS)), True),
    ],
)
def test_what_infinities_settle(
    candidate: Infinities | None,
    reference: Infinities | None,
    judgement: MetricJudgement,
    stands: bool,
) -> None:
    ruling = infinity_ruling(judgement, candidate=candidate, reference=reference)
    assert ruling.stands is stands
    if stands and judgement.verdict is REGRESSED:
        assert ruling.on and all(
            limit_stands(rule, REGRESSED, candidate=candidate, reference=reference)
            for rule in ruling.on
        )
        if reference is not None:
            assert ruling.on == ("max",)
    # An improvement is a change from the reference: with its infinities, a Pass at most.
    assert ruling.as_pass is (stands and judgement.verdict is IMPROVED and reference is not None)


# -- the judge ----------------------------------------------------------------------------


def query_spec(comparison: str, thresholds: dict[str, Any] | None = None) -> PerfBaselineSpec:
    """A ratio the user wrote (`a / b`: +Inf where b is 0), a canary against its stable
    track (Concurrent) or against 3 days of the stable's history (Historical)."""
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "api"},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": comparison,
            "baseline": {"window": "3d", "minSamples": 20},
            "analysis": {"interval": "1m", "window": "10m", "step": "30s", "sustainFor": "0s"},
            "metrics": [
                {
                    "name": "ratio",
                    "type": "Query",
                    "query": "sum(a{ {{selector}} }) / sum(b{ {{selector}} })",
                    "thresholds": {"value": thresholds or {"maxIncrease": 0.5}},
                }
            ],
        }
    )


def noisy(t: np.ndarray, level: float, seed: int) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, 0.02, t.size)


def case(
    spec: PerfBaselineSpec,
    candidate: float = 2.0,
    at: slice | None = slice(None, None, 3),  # 7 of 21 steps
    value: float = INF,
    stable_at: slice | None = None,
    stable_value: float = INF,
) -> MetricSamples:
    """The canary at `candidate` and the stable track (now and in its history) at 2.0, with
    `value` at the canary's steps `at` and `stable_value` at the stable's `stable_at` (in the
    window, and at the same steps of every earlier day for the history)."""
    w = windows(spec, AT)
    t = np.arange(w.start.timestamp(), w.end.timestamp() + 1e-6, 30.0)
    tb = np.arange(
        w.baseline_start.timestamp(),
        w.baseline_end.timestamp() - 1e-6,
        w.baseline_step.total_seconds(),
    )
    cand, stable, history = noisy(t, candidate, 1), noisy(t, 2.0, 2), noisy(tb, 2.0, 3)
    if at is not None:
        cand[at] = value
    if stable_at is not None:
        stable[stable_at] = stable_value
        for step in t[stable_at]:
            history[np.isclose((step - tb) % 86400.0, 0.0)] = stable_value
    data = MetricSamples()
    data.window[("candidate", "value")] = TimedSamples(t, cand)
    data.window[("stable", "value")] = TimedSamples(t, stable)
    data.baseline["value"] = TimedSamples(tb, history)
    return data


def run(spec: PerfBaselineSpec, data: MetricSamples) -> Outcome:
    return judge(spec, plan_tracks(spec, None), windows(spec, AT), {"ratio": data}, {}, AT)


def metric(out: Outcome) -> dict[str, Any]:
    (only,) = out.fields["metrics"]
    assert isinstance(only, dict)
    return only


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_a_candidate_at_plus_inf_on_a_third_of_its_steps_is_not_passed(comparison: str) -> None:
    """The reproducer: +Inf at 7 of 21 steps, 2.0 against 2.0 at the others. Judged on the
    14 finite steps this read Pass; the window's mean is +Inf."""
    spec = query_spec(comparison)
    out = run(spec, case(spec))
    value = metric(out)
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]
    assert out.fields["verdict"] == "Inconclusive"
    assert out.fields["reason"] == "NoData"
    message = value["message"]
    assert message.startswith("not judged: the candidate read +Inf at 7 of 21 steps")
    assert "(a division by zero in the query?)" in message
    assert "with them the candidate's mean is +Inf: the Pass the other steps read" in message
    assert "stable" not in message.split(";")[0] and "baseline" not in message.split(";")[0]
    assert value["samples"]["candidate"] == 0
    if comparison == "Historical":
        # Withheld as a stale candidate is: the baseline keeps its count.
        assert value["samples"]["baseline"] == 63
    regressed = next(c for c in out.conditions if c.type == "Regressed")
    assert regressed.status.value == "Unknown"


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_nan_steps_are_still_no_value(comparison: str) -> None:
    """The control: the same steps NaN (no value, e.g. no traffic) are left out as before."""
    spec = query_spec(comparison)
    out = run(spec, case(spec, value=np.nan))
    assert metric(out)["verdict"] == "Pass", metric(out)["message"]
    assert metric(out)["samples"]["candidate"] == 14
    assert out.fields["verdict"] == "Pass"


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_a_breach_the_infinities_make_worse_stands(comparison: str) -> None:
    """The canary 1.0 above the stable at its finite steps (maxIncrease 0.5) and +Inf at 7:
    still Fail, and the message says the infinite steps were left out."""
    spec = query_spec(comparison)
    out = run(spec, case(spec, candidate=3.0))
    value = metric(out)
    assert (value["verdict"], value["reason"]) == ("Regressed", "RegressionSignificant")
    assert out.fields["verdict"] == "Fail", out.fields["message"]
    assert value["message"].startswith(
        "worse still: the candidate read +Inf at 7 of 21 steps (a division by zero in the "
        "query?), left out of the figures; Regressed on maxIncrease holds whatever they are"
    )
    assert "worse still: the candidate read +Inf" in out.fields["message"]
    assert value["samples"]["candidate"] == 14
    assert value["delta"] == pytest.approx(1.0, abs=0.05)


def test_a_decrease_breach_stands_on_minus_inf_and_not_on_plus_inf() -> None:
    spec = query_spec("Concurrent", {"maxDecrease": 0.5})
    value = metric(run(spec, case(spec, candidate=1.0, value=-INF)))
    assert value["verdict"] == "Regressed", value["message"]
    assert "Regressed on maxDecrease holds whatever they are" in value["message"]

    value = metric(run(spec, case(spec, candidate=1.0, value=INF)))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    assert "the other way from the maxDecrease breach the rest read" in value["message"]


def test_infinities_of_both_signs_settle_nothing() -> None:
    spec = query_spec("Concurrent")
    data = case(spec, candidate=3.0)
    data.window[("candidate", "value")].values[1] = -INF
    value = metric(run(spec, data))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    assert "the candidate read +Inf at 7 and -Inf at 1 of 21 steps" in value["message"]


def test_stable_infinities_at_paired_steps_give_no_data() -> None:
    """A stable track at -Inf at 3 paired steps: its level is not a number, whatever the
    canary's finite steps read (here a clear breach)."""
    spec = query_spec("Concurrent")
    data = case(spec, candidate=3.0, at=None, stable_at=slice(4, 7), stable_value=-INF)
    value = metric(run(spec, data))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]
    message = value["message"]
    assert "the stable track at the paired steps read -Inf at 3 of 21 steps" in message
    assert "with them the stable track has no finite level to compare with" in message
    assert "the candidate read" not in message


def test_baseline_infinities_at_the_window_time_of_day_give_no_data() -> None:
    spec = query_spec("Historical")
    data = case(spec, at=None, stable_at=slice(4, 7), stable_value=INF)
    out = run(spec, data)
    value = metric(out)
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]
    message = value["message"]
    assert "the baseline at the window's time of day read +Inf at 9 of 63 steps" in message
    assert out.fields["verdict"] == "Inconclusive"


def test_baseline_infinities_at_other_hours_do_not_matter() -> None:
    spec = query_spec("Historical")
    data = case(spec, at=None)
    history = data.baseline["value"]
    hours_before_end = ((AT.timestamp() - history.timestamps) / 3600.0) % 24.0
    history.values[(hours_before_end > 2.0) & (hours_before_end < 20.0)] = INF  # not 11:50-12:00
    assert metric(run(spec, data))["verdict"] == "Pass"


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_a_candidate_at_plus_inf_throughout_is_named_so(comparison: str) -> None:
    """Not "no pairs" nor a stale candidate: every step has a value, +Inf. No step is left
    to read a verdict on, and the message says that, not what "the other steps read"."""
    spec = query_spec(comparison)
    value = metric(run(spec, case(spec, at=slice(None))))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    message = value["message"]
    assert message.startswith("not judged: the candidate read +Inf at 21 of 21 steps")
    assert (
        "the candidate held only ±Inf steps, and the finite steps left reach no verdict "
        "(no samples: candidate 0, baseline "
    ) in message
    assert "other steps read" not in message and "steps left would not show" not in message


def test_a_candidate_mostly_at_plus_inf_is_named_so() -> None:
    """15 of 21 steps +Inf leave 6 finite ones, too few for a verdict."""
    spec = query_spec("Concurrent")
    value = metric(run(spec, case(spec, at=slice(None, 15))))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    message = value["message"]
    assert "the candidate read +Inf at 15 of 21 steps" in message
    assert "the candidate held mostly ±Inf steps, and the finite steps left reach no verdict" in (
        message
    )
    assert "(too few samples: candidate 6 (need 10)" in message
    assert "other steps read" not in message


@pytest.mark.parametrize("at", [None, slice(None, None, 3)], ids=["finite", "plus-inf"])
def test_a_stable_query_without_series_is_named_so_whatever_the_candidate(
    at: slice | None,
) -> None:
    """The stable track's query matched no series (a misspelt label): that is the NoData,
    with or without the candidate's +Inf steps, not NonFiniteValues about "the NoData the
    other steps read"."""
    spec = query_spec("Concurrent")
    data = case(spec, at=at)
    del data.window[("stable", "value")]
    value = metric(run(spec, data))
    assert (value["verdict"], value["reason"]) == ("NoData", "NoData"), value["message"]
    assert "the query for value returned no series for stable" in value["message"]


@pytest.mark.parametrize("at", [None, slice(None, None, 3)], ids=["finite", "plus-inf"])
def test_tracks_never_at_one_step_are_no_pairs_whatever_the_candidate(at: slice | None) -> None:
    """Both tracks report, never at the same step: "no pairs", counting the +Inf steps as
    the samples they are."""
    spec = query_spec("Concurrent")
    data = case(spec, at=at)
    stable = data.window[("stable", "value")]
    data.window[("stable", "value")] = TimedSamples(stable.timestamps + 15.0, stable.values)
    value = metric(run(spec, data))
    assert (value["verdict"], value["reason"]) == ("NoData", "NoData"), value["message"]
    assert value["message"].startswith(
        "no pairs: candidate 21 and stable 21 samples, but none at the same step"
    )


@pytest.mark.parametrize("value", [INF, 1000.0, np.nan])
def test_candidate_steps_without_a_stable_value_are_not_judged_whatever_they_read(
    value: float,
) -> None:
    """Concurrent judges pairs: the candidate's steps where the stable has no value (NaN)
    are never paired, so their +Inf is ignored as 1000.0 or NaN there is."""
    spec = query_spec("Concurrent")
    data = case(spec, at=slice(4, 7), value=value)
    data.window[("stable", "value")].values[4:7] = np.nan
    judged = metric(run(spec, data))
    assert (judged["verdict"], judged["reason"]) == ("Pass", "WithinThreshold"), judged["message"]
    assert judged["samples"]["candidate"] == 18
    assert "Inf" not in judged["message"]


def test_candidate_infinities_are_counted_at_the_paired_steps() -> None:
    """+Inf at every third step (0, 3, ..., 18), the stable without a value at steps 0-2:
    6 of the 18 paired steps, not 7 of 21."""
    spec = query_spec("Concurrent")
    data = case(spec)
    data.window[("stable", "value")].values[0:3] = np.nan
    value = metric(run(spec, data))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    assert value["message"].startswith("not judged: the candidate read +Inf at 6 of 18 steps")


def test_a_candidate_at_plus_inf_since_minutes_is_not_stale() -> None:
    """+Inf at the last 6 steps is a track that reports +Inf, not one that stopped."""
    spec = query_spec("Concurrent")
    value = metric(run(spec, case(spec, at=slice(-6, None))))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
@pytest.mark.parametrize(
    ("candidate", "verdict", "overall"), [(2.0, "Pass", "Pass"), (4.0, "Regressed", "Fail")]
)
def test_max_alone_is_judged_whatever_the_reference_infinities(
    comparison: str, candidate: float, verdict: str, overall: str
) -> None:
    """`max: 3` bounds the candidate's own level: the stable track's (or baseline's) +Inf at
    3 steps does not enter it. A healthy canary at 2.0 passes and one at 4.0 fails, as with
    those steps NaN, and the message names the infinities left out."""
    spec = query_spec(comparison, {"max": 3.0})
    out = run(spec, case(spec, candidate=candidate, at=None, stable_at=slice(4, 7)))
    value = metric(out)
    assert value["verdict"] == verdict, value["message"]
    assert out.fields["verdict"] == overall
    reference = {
        "Concurrent": (
            "the stable track at the paired steps read +Inf at 3 of 21 steps",
            "stable track",
        ),
        "Historical": (
            "the baseline at the window's time of day read +Inf at 9 of 63 steps",
            "baseline",
        ),
    }[comparison]
    assert value["message"].startswith(f"left out of the figures: {reference[0]}")
    assert (
        f"{verdict} on max holds whatever they are (max bounds the candidate's own level, "
        f"which the {reference[1]} does not enter)"
    ) in value["message"]
    nan = metric(
        run(
            spec,
            case(spec, candidate=candidate, at=None, stable_at=slice(4, 7), stable_value=np.nan),
        )
    )
    assert nan["verdict"] == verdict
    assert (value["current"], value["samples"]) == (nan["current"], nan["samples"])


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
@pytest.mark.parametrize(
    ("candidate", "value", "why"),
    [
        (2.0, INF, "with them the candidate's mean is +Inf: the Pass the other steps read"),
        (4.0, -INF, "with them the candidate's mean is -Inf, the other way from the max breach"),
    ],
)
def test_max_alone_refused_with_infinities_on_both_sides_names_the_candidate(
    comparison: str, candidate: float, value: float, why: str
) -> None:
    """`max` alone, infinities on both sides: NoData, and the message names what refuses it,
    the candidate's infinities; `max` never reads the reference. It said the reference "has
    no finite level to compare with" (review reproducer in /tmp/s18-review-inf2)."""
    spec = query_spec(comparison, {"max": 3.0})
    out = metric(run(spec, case(spec, candidate=candidate, value=value, stable_at=slice(4, 7))))
    assert (out["verdict"], out["reason"]) == ("NoData", "NonFiniteValues")
    assert why in out["message"]
    assert "no finite level to compare with" not in out["message"]


def test_max_improved_with_reference_infinities_is_a_pass() -> None:
    """A canary at 1.0 against a stable at 2.0, `max: 3`: Improved on the finite steps, but
    an improvement is a change from the stable track, whose level +Inf leaves unknown."""
    spec = query_spec("Concurrent", {"max": 3.0})
    value = metric(run(spec, case(spec, candidate=1.0, at=None, stable_at=slice(4, 7))))
    assert (value["verdict"], value["reason"]) == ("Pass", "WithinThreshold"), value["message"]
    assert value["message"].endswith(
        "counted as Pass, not Improved: an improvement is a change from the stable track, "
        "which has no finite level with its ±Inf steps"
    )
    control = metric(run(spec, case(spec, candidate=1.0, at=None)))
    assert control["verdict"] == "Improved"


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_max_with_a_change_limit_and_reference_infinities(comparison: str) -> None:
    """`max: 3` and `maxIncrease: 0.5`, the reference +Inf at 3 steps: only what the
    candidate decides alone stands. A breach of `max` does; a Pass needs `maxIncrease`
    judged too, and so does a breach of `maxIncrease` alone."""
    spec = query_spec(comparison, {"max": 3.0, "maxIncrease": 0.5})

    def judged(candidate: float) -> dict[str, Any]:
        return metric(run(spec, case(spec, candidate=candidate, at=None, stable_at=slice(4, 7))))

    value = judged(4.0)  # both breached; `max` stands
    assert value["verdict"] == "Regressed", value["message"]
    assert "; Regressed on max holds whatever they are (max bounds" in value["message"]

    value = judged(2.0)
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    owner = "stable track" if comparison == "Concurrent" else "baseline"
    assert (
        f"with them the {owner} has no finite level to compare with, which maxIncrease "
        "needs; max, on the candidate's own level, is judged, but the Pass the steps left "
        "read needs every limit judged"
    ) in value["message"]

    value = judged(2.8)  # 0.8 above: maxIncrease breached, max not
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues")
    assert (
        f"with them the {owner} has no finite level to compare with, which the maxIncrease "
        "breach the rest read needs; max, on the candidate's own level, is not breached"
    ) in value["message"]


def test_a_stable_track_at_plus_inf_throughout_is_named_so() -> None:
    spec = query_spec("Concurrent")
    value = metric(run(spec, case(spec, at=None, stable_at=slice(None))))
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]
    assert "the stable track at the paired steps read +Inf at 21 of 21 steps" in value["message"]


# -- Prometheus' own "+Inf" ---------------------------------------------------------------


class DividingPrometheus:
    """Answers the window query as Prometheus' JSON does: the canary's ratio "+Inf" at every
    third step (its divisor 0), "2.0" elsewhere; the stable track "2.0"."""

    async def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        times = np.arange(start.timestamp(), end.timestamp() + 1e-6, step.total_seconds())
        result = [
            {
                "metric": {TRACK_LABEL: track, STAT_LABEL: "value"},
                "values": [
                    [t, "+Inf" if track == "candidate" and i % 3 == 0 else "2.0"]
                    for i, t in enumerate(times)
                ],
            }
            for track in ("candidate", "stable")
        ]
        return prometheus._series_list(result, query)


def test_prometheus_plus_inf_through_evaluate_is_not_passed() -> None:
    spec = query_spec("Concurrent")
    client = DividingPrometheus()
    out = asyncio.run(evaluate(spec, plan_tracks(spec, None), {}, AT, client))  # type: ignore[arg-type]
    value = metric(out)
    assert (value["verdict"], value["reason"]) == ("NoData", "NonFiniteValues"), value["message"]
    assert "the candidate read +Inf at 7 of 21 steps" in value["message"]
    assert out.verdict == "Inconclusive"
