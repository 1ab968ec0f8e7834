"""Building PromQL from spec values, safely.

Every label value from a spec enters a query only as a double-quoted PromQL string with
`\\`, `"` and newlines escaped, so no value can close the string, the matcher list or
the query. Label names are checked against Prometheus' grammar (the CRD checks them too;
this is the second lock). Metric names likewise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from perfguard.api.perfbaseline import LABEL_NAME, SELECTOR_PLACEHOLDER

# Prometheus' label names, less the reserved `__` prefix: the CRD's and the model's rule.
_LABEL_NAME = re.compile(LABEL_NAME)
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class UnsafeQueryError(ValueError):
    """A name from the spec is not a valid Prometheus identifier."""


def quote(value: str) -> str:
    """A PromQL double-quoted string literal holding exactly `value`."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    return f'"{escaped}"'


def label_name(name: str) -> str:
    if not _LABEL_NAME.match(name):
        raise UnsafeQueryError(f"invalid Prometheus label name {name!r}")
    return name


def metric_name(name: str) -> str:
    if not _METRIC_NAME.match(name):
        raise UnsafeQueryError(f"invalid Prometheus metric name {name!r}")
    return name


def matchers(
    equal: Mapping[str, str] | None = None,
    *,
    regex: Mapping[str, str] | None = None,
    not_equal: Mapping[str, str] | None = None,
    not_regex: Mapping[str, str] | None = None,
) -> str:
    """`a="x",b=~"5.."` — sorted, so the same spec always gives the same query text."""
    parts: list[str] = []
    for op, labels in (("=", equal), ("=~", regex), ("!=", not_equal), ("!~", not_regex)):
        for name in sorted(labels or {}):
            parts.append(f"{label_name(name)}{op}{quote((labels or {})[name])}")
    return ",".join(parts)


def join_matchers(*groups: str) -> str:
    return ",".join(g for g in groups if g)


def by(labels: Iterable[str]) -> str:
    names = [label_name(n) if n != "le" else n for n in labels]
    return f"by ({', '.join(names)})" if names else ""


def tag(expr: str, **labels: str) -> str:
    """Wrap `expr` so every series it returns carries the given perfguard labels.

    Lets one request return many statistics and tracks: the parts are combined with `or`,
    and the tags keep their series apart.
    """
    for name, value in labels.items():
        expr = f'label_replace({expr}, {quote(label_name(name))}, {quote(value)}, "", "")'
    return expr


def union(parts: Iterable[str]) -> str:
    return " or ".join(f"({p})" for p in parts)


def render_template(template: str, selector: str) -> str:
    """Expand `{{selector}}` (and `{{ selector }}`) in a user's Query template."""
    # A callable replacement: a string would have its backslashes interpreted by re.sub,
    # undoing the escaping that quote() put into the selector.
    return re.sub(SELECTOR_PLACEHOLDER, lambda _: selector, template)
