"""Limits on what a spec can make the operator fetch, and inputs it cannot judge."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.perfbaseline_fetch import _shape
from perfguard.engine.tracks import MAX_POINTS, baseline_step
from perfguard.sources.perfbaseline_queries import STAT_LABEL, TRACK_LABEL
from perfguard.sources.prometheus import Series


def spec(**body: object) -> PerfBaselineSpec:
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": "x"},
            "metrics": [
                {
                    "name": "q",
                    "type": "Query",
                    "query": "sum(up{ {{selector}} })",
                    "thresholds": {"value": {"max": 1}},
                }
            ],
            **body,
        }
    )


def test_a_30_day_baseline_at_10s_is_coarsened_within_prometheus_limits() -> None:
    long = spec(baseline={"window": "30d"}, analysis={"step": "10s"})
    step = baseline_step(long)
    assert step > timedelta(seconds=10)
    points = timedelta(days=30) / step
    assert points <= MAX_POINTS <= 11_000, (step, points)
    # An ordinary window keeps the asked-for resolution.
    assert baseline_step(spec(baseline={"window": "1d"}, analysis={"step": "30s"})) == timedelta(
        seconds=30
    )


def test_a_query_returning_several_series_is_reported_not_averaged() -> None:
    labels = {TRACK_LABEL: "candidate", STAT_LABEL: "value"}
    series = [
        Series({**labels, "pod": f"p{i}"}, np.array([1.0, 2.0]), np.array([0.5, 0.6]))
        for i in range(3)
    ]
    _, _, problem = _shape(series, None)
    assert problem is not None and "several series" in problem and "sum()" in problem
    _, _, none = _shape(series[:1], None)
    assert none is None
