"""Evaluators for kinds whose evaluation engine has not landed yet.

They validate nothing beyond the schema and say so honestly: Ready is Unknown with the
reason EvaluationNotImplemented, and the kind's own conditions are Unknown too (the API
conventions ask for conditions on first sight, even when nothing is known yet).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from perfguard.api.base import ApiModel
from perfguard.handlers.reconcile import Evaluator
from perfguard.handlers.runtime import ResourceRef
from perfguard.outcome import Outcome
from perfguard.status import READY, unknown


def pending_evaluator(kind: str, condition_types: tuple[str, ...]) -> Evaluator:
    async def evaluate(
        spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
    ) -> Outcome:
        message = f"spec is valid; {kind} evaluation is not implemented in this version"
        return Outcome(
            fields={"reason": "EvaluationNotImplemented", "message": message},
            conditions=[
                unknown(READY, "EvaluationNotImplemented", message),
                *(unknown(t, "NotEvaluated", message) for t in condition_types),
            ],
        )

    return evaluate
