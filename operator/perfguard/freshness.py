"""How old a verdict in status may be before readers stop trusting it (pure).

`perfguard report` calls such a verdict stale (AT RISK), and the Flagger promotion gates
refuse it (409 StaleVerdict): an operator that is down, stuck, paused by a peer, or no
longer serving the resource's namespace leaves its last verdict in place for ever.

A stamp more than `FUTURE_ALLOWANCE` (60 s) ahead of the reader's clock is not trusted
either: the clock that wrote it, or the reader's, is wrong, or the stamp was not written
by a running operator, so the verdict's age is unknown (see `ahead`). The allowance covers
the small skew between the clocks of the operator's replicas and of a reader's machine.

The limit is `3 × interval + statusRefresh`. The operator rewrites an unchanged status
only once `statusRefresh` (default 5m) has passed since its last write, so a healthy
status's `lastEvaluationTime` is up to `statusRefresh` plus an interval old; the rule
allows two more missed intervals. The interval is a PerfBaseline's
`spec.analysis.interval`, the other kinds' `spec.interval`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.envparity import EnvParitySpec
from perfguard.api.perfbaseline import AnalysisSpec
from perfguard.api.quantities import format_duration, parse_duration
from perfguard.config import OperatorConfig
from perfguard.times import parse_time_or_none

# spec.interval when the spec leaves it out: the API models' defaults.
DEFAULT_INTERVAL: Final[dict[str, timedelta]] = {
    "PerfBaseline": AnalysisSpec.model_fields["interval"].default,
    "EnvParity": EnvParitySpec.model_fields["interval"].default,
    "CapacityPlan": CapacityPlanSpec.model_fields["interval"].default,
}
# The operator's default statusRefresh.
STATUS_REFRESH: Final = OperatorConfig.status_refresh
STALE_INTERVALS: Final = 3
# How far ahead of the reader's clock a lastEvaluationTime may be and still count as recent.
FUTURE_ALLOWANCE: Final = timedelta(seconds=60)


def interval_of(kind: str, obj: Mapping[str, Any]) -> timedelta:
    """How often the resource is evaluated: a PerfBaseline's spec.analysis.interval, the
    others' spec.interval (the default when absent or unreadable)."""
    spec = obj.get("spec") or {}
    if kind == "PerfBaseline" and isinstance(spec, Mapping):
        spec = spec.get("analysis") or {}
    value = spec.get("interval") if isinstance(spec, Mapping) else None
    try:
        return DEFAULT_INTERVAL[kind] if value is None else parse_duration(value)
    except ValueError:
        return DEFAULT_INTERVAL[kind]


def stale_after(
    kind: str, obj: Mapping[str, Any], status_refresh: timedelta = STATUS_REFRESH
) -> timedelta:
    """How old `lastEvaluationTime` may be before the verdict counts as out of date."""
    return STALE_INTERVALS * interval_of(kind, obj) + status_refresh


def evaluated_at(obj: Mapping[str, Any]) -> datetime | None:
    """The status's `lastEvaluationTime`; None when missing or unreadable."""
    status = obj.get("status") or {}
    return (
        parse_time_or_none(status.get("lastEvaluationTime"))
        if isinstance(status, Mapping)
        else None
    )


def staleness(
    kind: str, obj: Mapping[str, Any], now: datetime, status_refresh: timedelta = STATUS_REFRESH
) -> str | None:
    """How stale the verdict is, "1h ago (2026-…Z), more than 8m (3 × interval +
    statusRefresh)", when older than `stale_after`; None when recent or unstamped (the
    callers word a missing stamp themselves)."""
    last = evaluated_at(obj)
    limit = stale_after(kind, obj, status_refresh)
    if last is None or now - last <= limit:
        return None
    age = format_duration(timedelta(seconds=int((now - last).total_seconds())))
    stamp = (obj.get("status") or {}).get("lastEvaluationTime")
    return f"{age} ago ({stamp}), more than {format_duration(limit)} (3 × interval + statusRefresh)"


def ahead(obj: Mapping[str, Any], now: datetime) -> str | None:
    """How far in the future the verdict's stamp is, "1h ahead (2026-…Z), more than 1m
    ahead of this clock", when more than FUTURE_ALLOWANCE; None otherwise (unstamped
    included)."""
    last = evaluated_at(obj)
    if last is None or last - now <= FUTURE_ALLOWANCE:
        return None
    lead = format_duration(timedelta(seconds=int((last - now).total_seconds())))
    stamp = (obj.get("status") or {}).get("lastEvaluationTime")
    allowance = format_duration(FUTURE_ALLOWANCE)
    return f"{lead} ahead ({stamp}), more than {allowance} ahead of this clock"
