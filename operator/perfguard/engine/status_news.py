"""What in a status is news (written at once) and what is a reading (written at most
every `statusRefresh`, see handlers/reconcile.py).

A PerfBaseline evaluated every minute measures new numbers every minute: the window's
p95, the delta and its interval, the baseline's time range. Writing them each time made
every evaluation a status PATCH (at 1,000 PerfBaselines, 13.8 PATCHes/s and about half a
core of kube-apiserver and etcd, docs/benchmarks.md), and each PATCH comes back to the
operator as a watch event. News is what a reader acts on, or what the next evaluation
reads back: the verdict and reasons, each condition's status and reason, each metric's
verdict and its breach and improvement stamps, the candidate judged, and the spec's
generation. Those are written as soon as they change, together with the current readings.

Both functions are pure: they take a status (a mapping as on the wire) and return its
news, to compare with `==`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# A PerfBaseline metric entry's keys that are news; every other key (baseline, current,
# delta, deltaPercent, ci95, samples, message, secondOpinion, levelShift) is a reading.
_METRIC_NEWS = (
    "name",
    "statistic",
    "comparison",
    "unit",
    "threshold",
    "critical",
    "verdict",
    "reason",
    "breachSince",
    "breachUnconfirmedSince",
    "improvedSince",
)
# Top-level PerfBaseline keys that are readings. `message` carries the numbers of the
# metric it names; its reason is news. stagesSummary's unattributedFlagged is a reading too:
# it is the unattributed share read against 10 %, decides nothing, and a share near 10 %
# flipped it on noise, each flip a write (5 in 15 minutes).
_PERFBASELINE_READINGS = frozenset(
    {"lastEvaluationTime", "message", "baseline", "summary", "stages", "stagesSummary"}
)


def _conditions(raw: Any) -> Any:
    """Conditions without their messages (which carry numbers); a malformed list as is."""
    if not isinstance(raw, list):
        return raw
    return [
        {k: v for k, v in item.items() if k != "message"} if isinstance(item, Mapping) else item
        for item in raw
    ]


def all_but_stamp(status: Mapping[str, Any]) -> dict[str, Any]:
    """Every field but the evaluation time: for kinds whose every field is news."""
    return {k: v for k, v in status.items() if k != "lastEvaluationTime"}


def perfbaseline_news(status: Mapping[str, Any]) -> dict[str, Any]:
    """A PerfBaseline status without its readings."""
    news: dict[str, Any] = {
        k: v for k, v in status.items() if k not in _PERFBASELINE_READINGS and k != "conditions"
    }
    news["conditions"] = _conditions(status.get("conditions"))
    metrics = status.get("metrics")
    if isinstance(metrics, list):
        news["metrics"] = [
            {k: item.get(k) for k in _METRIC_NEWS} if isinstance(item, Mapping) else item
            for item in metrics
        ]
    stages = status.get("stages")
    if isinstance(stages, list):
        # Which stages there are is news (a new stage appeared); their numbers are not.
        news["stages"] = sorted(
            (str(row.get("metric")), str(row.get("stage")))
            for row in stages
            if isinstance(row, Mapping)
        )
    return news


def _entry_label(item: Mapping[str, Any], index: int) -> str:
    """How a list entry is named in changed_news: a condition by its type, a metric by name,
    statistic and comparison, anything else by its position."""
    if "type" in item:
        return str(item["type"])
    parts = [str(item[k]) for k in ("name", "statistic", "comparison") if item.get(k)]
    return "/".join(parts) if parts else str(index)


def _labelled(items: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Entries by `_entry_label`; by position where labels repeat (two anomalies of one type
    on different nodes), so that no entry hides another."""
    labels = [_entry_label(item, i) for i, item in enumerate(items)]
    if len(set(labels)) < len(labels):
        labels = [f"{label}#{i}" for i, label in enumerate(labels)]
    return dict(zip(labels, items, strict=True))


def changed_news(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two news (as the functions above return them) differ: dotted paths, list
    entries named by `_entry_label` (``metrics[latency/p95/Concurrent].verdict``,
    ``conditions[Regressed].status``, or ``anomalies[ThermalThrottling#2]`` where labels
    repeat). For the operator's debug log, so that a status
    patched on news says which news."""
    if old == new:
        return []
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            change
            for key in sorted(set(old) | set(new), key=str)
            for change in changed_news(
                old.get(key), new.get(key), f"{path}.{key}" if path else str(key)
            )
        ]
    both_entries = (
        isinstance(old, list)
        and isinstance(new, list)
        and all(isinstance(item, Mapping) for item in [*old, *new])
    )
    if both_entries:
        before, after = _labelled(old), _labelled(new)
        changes: list[str] = []
        for label in [*before, *(k for k in after if k not in before)]:
            where = f"{path}[{label}]"
            if label not in after:
                changes.append(f"{where} removed")
            elif label not in before:
                changes.append(f"{where} added")
            else:
                changes.extend(changed_news(before[label], after[label], where))
        return changes
    return [path]
