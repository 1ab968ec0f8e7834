"""Everything the engine writes into status is declared in the status model (and so in the
CRD). The API server silently prunes undeclared fields: this catches them before it does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bench.engine import SPEC, synthetic_samples

from perfguard.api.perfbaseline import PerfBaselineStatus
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import windows
from perfguard.engine.tracks import plan_tracks
from perfguard.status import merge, to_wire


def _paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        out: set[str] = set()
        for key, item in value.items():
            out |= {f"{prefix}.{key}"} | _paths(item, f"{prefix}.{key}")
        return out
    if isinstance(value, list):
        return set().union(*(_paths(item, f"{prefix}[]") for item in value)) if value else set()
    return set()


def test_every_status_field_the_engine_writes_survives_the_schema() -> None:
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    evaluation = judge(
        SPEC, plan_tracks(SPEC, None), windows(SPEC, at), synthetic_samples(at), {}, at
    )
    status = {k: v for k, v in evaluation.fields.items() if v is not None}
    status["conditions"] = to_wire(merge([], evaluation.conditions, generation=1, at=at))
    status["observedGeneration"] = 1
    written = _paths(status)
    kept = _paths(PerfBaselineStatus.model_validate(status).to_wire())
    assert written - kept == set()
    assert {
        ".metrics[].secondOpinion.pValue",
        ".stages[].share",
        ".candidate.identity",
        ".stagesSummary.unattributedShare",
        ".summary.deltaP95",
    } <= kept
