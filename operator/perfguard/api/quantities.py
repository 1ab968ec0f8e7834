"""Durations and amounts: parsed once, at the edge, into typed values.

Durations accept the Go forms Kubernetes users know (`30s`, `1h30m`, `250ms`) and the
day/week forms baselines need (`7d`, `2w`). The CRD schema enforces the same grammar with
a pattern, and CEL rules compare durations with `duration()`, which knows no days; the
generator therefore emits a CEL expression that rewrites `Nd`/`Nw` into hours first, and
skips the comparison when a value does not match the pattern (whose error says so).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal
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
_GO_MAX_SECONDS = (2**63 - 1) / 1e9  # Go's time.Duration is int64 nanoseconds
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_RE = re.compile(DURATION_PATTERN)
# The longest duration or amount string the CRD schema admits (maxLength).
MAX_LENGTH = 32

# Threshold amounts. A latency carries its time unit (`5ms`, `0.25s`): a bare number read
# as seconds made `maxIncrease: 5` a 5000 ms limit. Every other amount is a number in the
# metric's own unit (requests/s, a ratio, the query's value), so a time unit there is a
# mistake (`maxDecrease: 20ms` on a rate was 0.02/s). Written with `[.]` rather than `\.`
# so the same text serves as a CEL string literal (RE2) and a Python regex.
LATENCY_PATTERN = "^[0-9]+([.][0-9]+)?(ns|us|µs|ms|s)$"
NUMBER_PATTERN = "^[0-9]+([.][0-9]+)?$"
_LATENCY_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s)$")
_NUMBER_RE = re.compile(NUMBER_PATTERN)
LATENCY_MESSAGE = (
    "a latency threshold needs a time unit, e.g. 5ms or 0.25s (a bare number would be "
    "read as seconds)"
)
AMOUNT_MESSAGE = (
    "a Throughput, ErrorRate or Query threshold is a number in the metric's own unit "
    "(requests/s, a ratio, the query's value), without a time unit; time units belong to "
    "Latency thresholds"
)


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
        if seconds > _GO_MAX_SECONDS:
            # The API server's CEL `duration()` cannot read it either (its rules then fail
            # with a bare "type conversion error"); a day or week form has no such limit.
            raise ValueError(
                f"duration {value!r} is longer than a Go duration can be (about 2562047h); "
                "use days or weeks, e.g. '7d'"
            )
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
    """Parse a Throughput/ErrorRate/Query threshold: `20`, `"2.5"`, `0.01` (no time unit)."""
    if isinstance(value, bool):
        raise ValueError(f"an amount must be a number, got {value!r}")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError(f"amount must be zero or positive, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"invalid amount {value!r}")
    if _NUMBER_RE.fullmatch(value):
        return float(value)
    if _LATENCY_RE.fullmatch(value):
        raise ValueError(f"{AMOUNT_MESSAGE}; got {value!r}")
    raise ValueError(f"invalid amount {value!r}: {AMOUNT_MESSAGE}")


def parse_latency(value: Any) -> float:
    """Parse a latency threshold into seconds: `5ms` -> 0.005, `0.25s` -> 0.25."""
    if isinstance(value, str):
        match = _LATENCY_RE.fullmatch(value)
        if match:
            number, unit = match.groups()
            return float(number) * _GO_UNIT_SECONDS[unit]
        if not _NUMBER_RE.fullmatch(value):
            raise ValueError(f"invalid latency {value!r}: {LATENCY_MESSAGE}")
    raise ValueError(f"{LATENCY_MESSAGE}; got {value!r}")


def _plain(number: float) -> str:
    """`number` in positional notation (no exponent), as short as its repr."""
    text = format(Decimal(repr(number)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_latency(seconds: float) -> str:
    """A latency threshold as written in a spec, which `parse_latency` reads back exactly:
    in milliseconds when that is exact (`5ms`), else in seconds."""
    in_ms = f"{_plain(seconds * 1000)}ms"
    return in_ms if parse_latency(in_ms) == seconds else f"{_plain(seconds)}s"


def _not_too_long(value: Any) -> Any:
    """The twin of the schema's maxLength, for the fields' strings only (the parsers also
    read back what the formatters write, which may be longer)."""
    if isinstance(value, str) and len(value) > MAX_LENGTH:
        raise ValueError(f"{value[:MAX_LENGTH]!r}… is too long: at most {MAX_LENGTH} characters")
    return value


# In Annotated, the last BeforeValidator runs first.
_AT_MOST_MAX_LENGTH = BeforeValidator(_not_too_long)


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


def cel_not_duration(expr: str, pattern: str = DURATION_PATTERN) -> str:
    """CEL true when the string field `expr` does not match `pattern` (the field's schema
    pattern, a raw CEL string so its backslashes stay RE2's)."""
    return f"!{expr}.matches(r'{pattern}')"


def cel_comparing_durations(condition: str, *exprs: str, pattern: str = DURATION_PATTERN) -> str:
    """CEL holding when `condition`, which parses the duration fields `exprs` (with
    `cel_duration` or `duration()`), holds, or when one of them does not match `pattern`.

    Parsing a value the pattern refuses fails the rule with "type conversion error ...
    evaluating rule", next to the pattern's own error for the same value; skipped, the
    pattern's error is the only one, and it says what is wrong.
    """
    return " || ".join([*(cel_not_duration(expr, pattern) for expr in exprs), f"({condition})"])


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    _AT_MOST_MAX_LENGTH,
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": MAX_LENGTH},
        mode="validation",
    ),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": MAX_LENGTH},
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
    "maxLength": MAX_LENGTH,
    "x-kubernetes-validations": [
        {
            "rule": cel_comparing_durations(cel_duration("self") + " >= 1000", "self"),
            "message": "must be at least 1s",
        }
    ],
}
Interval = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    _AT_MOST_MAX_LENGTH,
    AfterValidator(_at_least_one_second),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(_INTERVAL_SCHEMA, mode="validation"),
    WithJsonSchema(_INTERVAL_SCHEMA, mode="serialization"),
]
"""A duration of at least 1s: evaluation intervals and sample steps. Below that a daemon
would re-evaluate without pause (or an engine divide by zero)."""

# Structural schemas allow int-or-string only as this exact anyOf; the rules below (CEL,
# not `pattern`, so that the server's message says what is wrong) check the strings.
_INT_OR_STRING: dict[str, Any] = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "maxLength": MAX_LENGTH,
}

Amount = Annotated[
    float,
    BeforeValidator(parse_amount),
    _AT_MOST_MAX_LENGTH,
    WithJsonSchema(
        {
            **_INT_OR_STRING,
            "minimum": 0,  # applies to integers only, by JSON Schema rules
            "x-kubernetes-validations": [
                {
                    "rule": f"type(self) == int || self.matches('{NUMBER_PATTERN}')",
                    "message": AMOUNT_MESSAGE,
                    "messageExpression": f'"{AMOUNT_MESSAGE}; got " + string(self)',
                    "reason": "FieldValueInvalid",
                }
            ],
        }
    ),
]
"""A non-negative number in the metric's own unit: `20`, or `"2.5"` (Kubernetes'
int-or-string keeps decimals as strings). No time unit: those are for `LatencyAmount`."""

LatencyAmount = Annotated[
    float,
    BeforeValidator(parse_latency),
    _AT_MOST_MAX_LENGTH,
    # Dumped with its unit, so that a dumped spec validates again.
    PlainSerializer(format_latency, return_type=str),
    WithJsonSchema(
        {
            # int-or-string, so that a bare number reaches the rule and its message rather
            # than a type error.
            **_INT_OR_STRING,
            "x-kubernetes-validations": [
                {
                    "rule": f"type(self) == string && self.matches('{LATENCY_PATTERN}')",
                    "message": LATENCY_MESSAGE,
                    "messageExpression": f'"{LATENCY_MESSAGE}; got " + string(self)',
                    "reason": "FieldValueInvalid",
                }
            ],
        }
    ),
]
"""A latency with its time unit, in seconds once parsed: `5ms`, `250us`, `0.25s`."""
