"""bench.sustain_replays runs the engine's judge over simulated canaries (the figures are in
docs/perfbaseline.md); these check that one run of each kind behaves as its scenario says."""

from __future__ import annotations

from bench.sustain_replays import SCENARIOS, Scenario, describe, first_fail


def test_a_step_reaches_fail_after_sustain_for_and_a_short_burst_does_not() -> None:
    step = Scenario("step", 10.0, None, 1.0, 0.5, 1)
    fails = [first_fail(step, run) for run in range(3)]
    # Dated from the shift, the breach must hold sustainFor (3m) before Fail.
    assert all(f is not None and 180.0 <= f <= 360.0 for f in fails), fails
    burst = Scenario("burst", 10.0, 120.0, 1.0, 0.5, 1)
    assert [first_fail(burst, run) for run in range(3)] == [None, None, None]


def test_runs_are_reproducible_and_described() -> None:
    scenario = SCENARIOS[0]
    assert first_fail(scenario, 0) == first_fail(scenario, 0)
    text = describe(scenario, [200.0, 250.0, None])
    assert text.startswith("+10 ms from then on, track noise 1 ms at rho 0.3: Fail in 2/3")
    assert "later than 300 s: 1" in text
    wander = Scenario("wander", 0.0, 0.0, 3.0, 0.9, 1)
    assert (
        describe(wander, [None, 12.0]) == "no change, track noise 3 ms at rho 0.9: Fail in 1/2 runs"
    )
