"""±Inf in a judged window: what infinities settle (perfguard.analysis.infinities).

A Query metric is the user's PromQL, and `a / b` answers +Inf where b is 0. Only a breach
that infinities on the candidate's side can make only worse is settled by them.
"""

from __future__ import annotations

import numpy as np
import pytest

from perfguard.analysis.infinities import (
    Infinities,
    infinities,
    infinity_ruling,
    limit_stands,
)
from perfguard.analysis.judgement import MetricJudgement, MetricVerdict, RuleCheck

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


def made(verdict: MetricVerdict, *checks: tuple[str, MetricVerdict]) -> MetricJudgement:
    """A judgement with these limits' results (the numbers do not enter the ruling)."""
    return MetricJudgement(
        verdict=verdict,
        reason="",
        message="",
        breached=verdict is REGRESSED,
        delta=0.0,
        delta_percent=None,
        ci_low=0.0,
        ci_high=0.0,
        confidence=0.95,
        baseline_value=1.0,
        candidate_value=1.0,
        n_candidate=21,
        n_baseline=21,
        checks=tuple(RuleCheck(rule, v, "", "") for rule, v in checks),
    )


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
