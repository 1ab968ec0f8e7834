from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perfguard.api.quantities import (
    format_duration,
    format_latency,
    parse_amount,
    parse_duration,
    parse_latency,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5s", timedelta(seconds=1.5)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "5", "10 minutes", "-5m", "1d12h", "m5", "5y", True])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


@given(st.integers(min_value=1, max_value=10**7))
def test_format_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=1, max_value=999))
def test_format_duration_round_trips_milliseconds(ms: int) -> None:
    value = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [("20", 20.0), (20, 20.0), (0.5, 0.5), ("2.5", 2.5), ("0.01", 0.01), (0, 0.0)],
)
def test_parse_amount(text: object, expected: float) -> None:
    assert parse_amount(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "bad", ["5 ms", "-1", -1, "5h", "abc", float("nan"), False, "2.5\n", "1e3", ".5"]
)
def test_parse_amount_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(bad)


@pytest.mark.parametrize("unit", ["ns", "us", "µs", "ms", "s"])
def test_a_time_unit_is_refused_on_a_plain_amount(unit: str) -> None:
    # `maxDecrease: 20ms` on a rate used to mean 0.02/s.
    with pytest.raises(ValueError, match="time units belong to Latency thresholds"):
        parse_amount(f"20{unit}")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5ms", 0.005), ("1s", 1.0), ("0.25s", 0.25), ("500us", 0.0005), ("2µs", 2e-6)],
)
def test_parse_latency(text: str, expected: float) -> None:
    assert parse_latency(text) == pytest.approx(expected)


@pytest.mark.parametrize("bare", [5, 0.005, "5", "0.005"])
def test_a_latency_without_a_time_unit_is_refused(bare: object) -> None:
    # `maxIncrease: 5` on a latency used to mean 5 s.
    with pytest.raises(ValueError, match="needs a time unit"):
        parse_latency(bare)


@pytest.mark.parametrize("bad", ["5 ms", "-1ms", "5m", "5h", "abc", True, None, "5ms\n"])
def test_parse_latency_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_latency(bad)


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False))
def test_format_latency_round_trips(seconds: float) -> None:
    text = format_latency(seconds)
    assert parse_latency(text) == seconds, text


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.005, "5ms"), (0.25, "250ms"), (2.0, "2000ms"), (0.0, "0ms")]
)
def test_format_latency_reads_as_written(seconds: float, text: str) -> None:
    assert format_latency(seconds) == text


def test_parse_duration_refuses_what_a_go_duration_cannot_hold() -> None:
    # The API server's CEL duration() overflows past int64 nanoseconds and then fails a
    # rule with a bare "type conversion error"; perfguard names the limit instead.
    assert parse_duration("999999h999999h562049h") == timedelta(hours=2562047)
    for too_long in ("999999h999999h562050h", "999999h999999h999999h"):
        with pytest.raises(ValueError, match="longer than a Go duration"):
            parse_duration(too_long)
    assert parse_duration("99999w") == timedelta(weeks=99999)
