"""Times as they are written in a status and read back: RFC 3339 in UTC, with a `Z`.

Status fields the engines build by hand (`breachSince`, `lastEvaluationTime`, an anomaly's
`start`/`end`...) use `format_time`, so they read the same as the times pydantic writes for
the models (conditions' `lastTransitionTime`). Reading a stored status uses
`parse_time_or_none`: a time that is missing, malformed or without an offset is treated as
absent, never as an error that would stop an evaluation.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(at: datetime) -> str:
    """`at` in UTC, e.g. ``2026-11-28T10:00:00Z`` (sub-second digits kept when present)."""
    if at.tzinfo is None:
        raise ValueError(f"{at!r} has no time zone")
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def format_timestamp(seconds: float) -> str:
    """A Unix time, to the second, as `format_time` writes it."""
    return format_time(datetime.fromtimestamp(seconds, UTC).replace(microsecond=0))


def parse_time(text: str) -> datetime:
    """An RFC 3339 time, as an aware datetime in UTC.

    Raises ValueError when `text` is not an ISO 8601 time or has no offset (a time
    without one would be read in the machine's zone, which is never what a status means).
    """
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (e.g. 2026-11-28T10:00:00Z)")
    return at.astimezone(UTC)


def parse_time_or_none(value: object) -> datetime | None:
    """`parse_time` for a value read from a stored status: None when it is not a time."""
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value)
    except ValueError:
        return None
