"""What one evaluation concludes, independent of who runs it (operator or CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from perfguard.status import ConditionUpdate


@dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    """Status fields, conditions, and Events to emit."""

    fields: dict[str, Any]
    conditions: list[ConditionUpdate]
    events: list[EventSpec] = field(default_factory=list)
    verdict: str | None = None
