"""Durations and amounts: parsed once, at the edge, into typed values.

Durations accept the Go forms Kubernetes users know (`30s`, `1h30m`, `250ms`) and the
day/week forms baselines need (`7d`, `2w`). The CRD schema enforces the same grammar with
a pattern, and CEL rules compare durations with `duration()`, which knows no days; the
generator therefore emits a CEL expression that rewrites `Nd`/`Nw` into hours first.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

_GO_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DAY_UNIT_SECONDS = {"d": 86400.0, "w": 604800.0}

# `1h30m`, `250ms`, `1.5s` (Go's time.ParseDuration, positive only) or a whole `7d` / `2w`.
# At most 6 integer digits per part (999999h is 114 years) so no duration the schema
# admits overflows a timedelta.
DURATION_PATTERN = r"^(([0-9]{1,6}(\.[0-9]{1,9})?(ns|us|µs|ms|s|m|h))+|[0-9]{1,5}(d|w))$"
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_RE = re.compile(DURATION_PATTERN)

# An amount: a plain number in the metric's base unit (seconds for latency, req/s for
# throughput) or a number with a time unit, which only makes sense for latency.
AMOUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s)?$"
_AMOUNT_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s)?$")


def parse_duration(value: Any) -> timedelta:
    """Parse `30s`, `1h30m`, `7d` (or a timedelta / number of seconds) into a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration must be a string such as '30s', '5m' or '7d'")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"duration must be a positive number of seconds, got {value}")
        return timedelta(seconds=float(value))
    if not isinstance(value, str) or not _DURATION_RE.match(value):
        raise ValueError(
            f"invalid duration {value!r}: use a number with a unit, e.g. '30s', '5m', '1h30m', '7d'"
        )
    unit = value[-1]
    try:
        if unit in _DAY_UNIT_SECONDS:
            return timedelta(seconds=int(value[:-1]) * _DAY_UNIT_SECONDS[unit])
        seconds = sum(float(num) * _GO_UNIT_SECONDS[u] for num, u in _GO_PART.findall(value))
        return timedelta(seconds=seconds)
    except OverflowError as error:
        raise ValueError(f"duration {value!r} is too long") from error


def format_duration(value: timedelta) -> str:
    """The shortest string that `parse_duration` reads back to the same value."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    if total >= 86400 and total % 86400 == 0:
        return f"{int(total // 86400)}d"
    if total < 1:
        ms = total * 1000
        return f"{ms:g}ms"
    parts: list[str] = []
    rest = total
    for unit, size in (("h", 3600), ("m", 60)):
        if rest >= size:
            count = int(rest // size)
            parts.append(f"{count}{unit}")
            rest -= count * size
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return "".join(parts)


def parse_amount(value: Any) -> float:
    """Parse a threshold amount: `5ms` -> 0.005 (seconds), `20` -> 20.0 (base unit)."""
    if isinstance(value, bool):
        raise ValueError("an amount must be a number or a string such as '5ms'")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"amount must be zero or positive, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid amount {value!r}")
    match = _AMOUNT_RE.match(value)
    if not match:
        raise ValueError(f"invalid amount {value!r}: use a number, or a latency such as '5ms'")
    number, unit = match.groups()
    return float(number) * (_GO_UNIT_SECONDS[unit] if unit else 1.0)


def cel_duration(expr: str) -> str:
    """CEL giving a duration string field as whole milliseconds, days and weeks included.

    Kubernetes CEL's `duration()` parses Go durations only, and building a Go duration
    string from `7d` (`string(int(...))`) defeats the API server's cost estimator, so
    days and weeks are converted by arithmetic instead.
    """
    number = f"int({expr}.substring(0, size({expr}) - 1))"
    return (
        f"({expr}.endsWith('d') ? {number} * 86400000 : "
        f"{expr}.endsWith('w') ? {number} * 604800000 : "
        f"duration({expr}).getMilliseconds())"
    )


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32},
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": 32},
        mode="serialization",
    ),
]
"""A positive duration: `30s`, `5m`, `1h30m`, `7d`."""


def _at_least_one_second(value: timedelta) -> timedelta:
    if value < timedelta(seconds=1):
        raise ValueError(f"must be at least 1s, got {format_duration(value)}")
    return value


_INTERVAL_SCHEMA = {
    "type": "string",
    "pattern": DURATION_PATTERN,
    "maxLength": 32,
    "x-kubernetes-validations": [
        {"rule": cel_duration("self") + " >= 1000", "message": "must be at least 1s"}
    ],
}
Interval = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_at_least_one_second),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_INTERVAL_SCHEMA, mode="validation"),
    WithJsonSchema(_INTERVAL_SCHEMA, mode="serialization"),
]
"""A duration of at least 1s: evaluation intervals and sample steps. Below that a daemon
would re-evaluate without pause (or an engine divide by zero)."""

Amount = Annotated[
    float,
    BeforeValidator(parse_amount),
    WithJsonSchema(
        {
            # Structural schemas allow int-or-string only as this exact anyOf; `pattern`
            # and `maxLength` apply to strings and `minimum` to integers by JSON Schema rules.
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "pattern": AMOUNT_PATTERN,
            "maxLength": 32,
        }
    ),
]
"""A non-negative amount: a number in the metric's base unit, or a latency such as `5ms`.

Kubernetes' int-or-string keeps decimals as strings: write `2.5` as `"2.5"`."""
