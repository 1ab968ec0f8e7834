"""Turning arrays into OpenMetrics lines quickly.

Formatting millions of samples one f-string at a time is the slow part of generation.
Instead every line is three pre-made strings, `<name{labels}> `, `<value>` and
` <timestamp>\n`, interleaved by list slice assignment and joined once per chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import TextIO

import numpy as np

from perfguard.synthetic.arrays import FloatArray, IntArray


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def series_prefix(name: str, labels: Mapping[str, str]) -> str:
    """`name{labels} ` with the trailing space that separates the value."""
    body = ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items())
    return f"{name}{{{body}}} " if body else f"{name} "


def format_float(value: float) -> str:
    """Shortest round-tripping text that both Go's ParseFloat and Python's float() read."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def timestamp_suffixes(unix_ms: IntArray) -> list[str]:
    """` <seconds>\n` per sample: OpenMetrics timestamps are seconds, fractions allowed."""
    if bool(np.all(unix_ms % 1000 == 0)):
        return [f" {ms // 1000}\n" for ms in unix_ms.tolist()]
    return [f" {ms // 1000}.{ms % 1000:03d}\n" for ms in unix_ms.tolist()]


def integer_strings(values: IntArray | FloatArray) -> list[str]:
    return list(map(str, np.asarray(values).astype(np.int64).tolist()))


def float_strings(values: IntArray | FloatArray) -> list[str]:
    return list(map(repr, np.asarray(values, dtype=np.float64).tolist()))


def interleave(prefixes: Sequence[str], columns: Sequence[list[str]], suffixes: list[str]) -> str:
    """Lines for k series over m timestamps, timestamp-major.

    `columns[j][i]` is series j's value at timestamp i. OpenMetrics wants the samples of
    one histogram (buckets, count, sum) together per timestamp, hence timestamp-major;
    a single series passed alone comes out as one contiguous run.
    """
    k, m = len(prefixes), len(suffixes)
    parts = [""] * (3 * k * m)
    parts[0::3] = list(prefixes) * m
    parts[1::3] = columns[0] if k == 1 else list(chain.from_iterable(zip(*columns, strict=True)))
    parts[2::3] = suffixes if k == 1 else list(chain.from_iterable(repeat(s, k) for s in suffixes))
    return "".join(parts)


class OpenMetricsWriter:
    """Streams families to a text file and counts what it wrote."""

    def __init__(self, out: TextIO, suffixes: list[str], chunk_steps: int = 2048) -> None:
        self._out = out
        self._suffixes = suffixes
        self._chunk = chunk_steps
        self.series = 0
        self.samples = 0
        self.families = 0

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._out.write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        self.families += 1

    def block(
        self, prefixes: Sequence[str], columns: Callable[[slice], Sequence[list[str]]]
    ) -> None:
        """Write series that share timestamps; `columns(window)` formats a slice of steps.

        Formatting per chunk of steps keeps memory flat however long the history is.
        """
        size = len(self._suffixes)
        for start in range(0, size, self._chunk):
            window = slice(start, min(start + self._chunk, size))
            self._out.write(interleave(prefixes, columns(window), self._suffixes[window]))
        self.series += len(prefixes)
        self.samples += len(prefixes) * size

    def end(self) -> None:
        self._out.write("# EOF\n")
