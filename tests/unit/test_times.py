"""Times written to and read from a status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from perfguard.times import format_time, format_timestamp, parse_time, parse_time_or_none

AT = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)


def test_format_time_writes_utc_with_z() -> None:
    assert format_time(AT) == "2026-11-28T10:00:00Z"
    berlin = AT.astimezone(timezone(timedelta(hours=1)))
    assert berlin.isoformat().endswith("+01:00")
    assert format_time(berlin) == "2026-11-28T10:00:00Z"
    assert format_time(AT.replace(microsecond=250_000)) == "2026-11-28T10:00:00.250000Z"


def test_format_time_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        format_time(AT.replace(tzinfo=None))


def test_format_timestamp_is_to_the_second() -> None:
    assert format_timestamp(AT.timestamp() + 0.9) == "2026-11-28T10:00:00Z"


def test_parse_time_reads_z_and_offsets_as_utc() -> None:
    assert parse_time("2026-11-28T10:00:00Z") == AT
    parsed = parse_time("2026-11-28T11:00:00+01:00")
    assert parsed == AT and parsed.utcoffset() == timedelta(0)
    assert parse_time(format_time(AT)) == AT


@pytest.mark.parametrize("text", ["2026-11-28T10:00:00", "yesterday", ""])
def test_parse_time_refuses_what_is_not_an_rfc3339_time(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


@pytest.mark.parametrize("value", [None, 17, "2026-11-28T10:00:00", "not a time"])
def test_parse_time_or_none_treats_a_bad_stored_time_as_absent(value: object) -> None:
    assert parse_time_or_none(value) is None
    assert parse_time_or_none("2026-11-28T10:00:00Z") == AT
