"""bench.healthy_shifts' report (measuring needs Prometheus: `python -m bench.healthy_shifts`)."""

from __future__ import annotations

from bench.healthy_shifts import HealthyShifts, ShiftedJudgement, report


def test_the_report_counts_verdicts_and_how_shifted_windows_were_judged() -> None:
    result = HealthyShifts(
        evaluations=8,
        verdicts=(("Pass", 7), ("Inconclusive", 1)),
        reasons=(("WithinThresholds", 7), ("MetricInconclusive", 1)),
        shifted=(
            ShiftedJudgement(0, 3, "latency p95", "Pass", "+0.9ms", whole_window=True),
            ShiftedJudgement(1, 5, "latency mean", "Inconclusive", "-1.7ms", whole_window=False),
        ),
        wall_s=90.0,
    )
    text = report(result)
    assert (
        "8 evaluations of healthy services (4 services, every minute): Pass 7, Inconclusive 1"
        in text
    )
    assert "metric judgements after a level shift: 2 (1 judged from the whole window" in text
    assert "Pass (whole window) 1" in text and "Inconclusive (since) 1" in text
    assert "latency shifts: +0.9ms to -1.7ms (smallest and largest)" in text
    assert "wall time 1.5 min" in text
