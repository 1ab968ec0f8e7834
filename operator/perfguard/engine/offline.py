"""`perfguard evaluate`: the operator's engine without a cluster.

There is no stored status to remember `breachSince`, so the evaluation is replayed at
`interval` steps over the `sustainFor` before `at`, carrying the status forward exactly as
the operator would: a breach's duration is judged the same way. A step that cannot reach
Prometheus ends the replay (see CANNOT_ASK).

Consecutive steps ask for nearly the same ranges (a 7-day baseline moved on by one
interval), so the replay's client (ReplayClient) fetches each range in pieces of the size
the engine asks for and answers later steps from the pieces it holds: the same points, as
Prometheus evaluates each point of a range on its own, for a fraction of the queries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from perfguard.api.capacityplan import CapacityPlanSpec
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.capacityplan import evaluate as evaluate_capacity
from perfguard.engine.perfbaseline import evaluate
from perfguard.engine.tracks import plan_tracks
from perfguard.sources.prometheus import (
    NO_OPTIONS,
    FailureKind,
    PrometheusClient,
    PrometheusError,
    RequestOptions,
    Series,
)
from perfguard.sources.workloads import WorkloadHashes
from perfguard.status import READY, ConditionUpdate, next_status


@dataclass(frozen=True)
class EvaluateOptions:
    prometheus: str
    at: datetime
    candidate_hash: str | None = None
    stable_hash: str | None = None
    generation: int = 1
    # Credentials and TLS trust (--bearer-token-file, --ca-file and the spec's tls).
    request: RequestOptions = NO_OPTIONS


# The most evaluations one replay runs. sustainFor 1d at a 15s interval is 5,762: 77 s with
# the ranges shared (docs/perfbaseline.md, "Offline"). An interval that is no whole number
# of the steps shares little, and each evaluation then asks for its whole baseline (about
# 0.75 s): 10,000 of those take two hours; a sustainFor of years at 1s would not even fit
# in memory.
MAX_REPLAY = 10_000


def replay_steps(spec: PerfBaselineSpec) -> int:
    """How many evaluations the replay runs (counted, not listed: see MAX_REPLAY)."""
    return int(spec.analysis.sustain_for / spec.analysis.interval) + 2


def replay_times(spec: PerfBaselineSpec, at: datetime) -> list[datetime]:
    interval = spec.analysis.interval
    steps = replay_steps(spec) - 1
    return [at - interval * k for k in range(steps, -1, -1)]


async def replay_perfbaseline(
    spec: PerfBaselineSpec,
    options: EvaluateOptions,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The status after the replay; `progress(done, total)` after each evaluation."""
    hashes = None
    if spec.workload_ref is not None:
        hashes = WorkloadHashes(options.candidate_hash, options.stable_hash)
    plan = plan_tracks(spec, hashes)
    status: dict[str, Any] = {}
    timeout = spec.prometheus.timeout if spec.prometheus else timedelta(seconds=10)
    times = replay_times(spec, options.at)
    async with ReplayClient(options.prometheus, timeout=timeout, options=options.request) as client:
        for done, at in enumerate(times, start=1):
            evaluation = await evaluate(spec, plan, status, at, client)
            status = next_status(
                status,
                evaluation.fields,
                evaluation.conditions,
                generation=options.generation,
                at=at,
                measured=evaluation.verdict is not None,
            )
            if progress is not None:
                progress(done, len(times))
            if _cannot_ask(evaluation.conditions):
                break
    return status


# Failures every later step of a replay would only repeat, an unresponsive Prometheus each
# after its own timeout (five steps of 10 s queries took a minute): Prometheus cannot be
# asked at all. The replay stops at the first, whose status says why (exit 4).
CANNOT_ASK = frozenset(
    {FailureKind.UNREACHABLE, FailureKind.TIMEOUT, FailureKind.TLS_ERROR, FailureKind.UNAUTHORIZED}
)


def _cannot_ask(conditions: Iterable[ConditionUpdate]) -> bool:
    ready = next((c for c in conditions if c.type == READY), None)
    return ready is not None and ready.reason in CANNOT_ASK


# `@ start()` and `@ end()` evaluate at the range's own ends: a piece of another range
# would answer with other values. Such queries are always asked as they are.
_RANGE_ENDS = re.compile(r"@\s*(start|end)\s*\(")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ms(at: datetime) -> int:
    return round((at - _EPOCH) / timedelta(milliseconds=1))


def _time(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass
class _Pieces:
    """One range query's answers, in pieces of `size` points laid end to end on the grid
    of `step` from `origin` (milliseconds), the first piece being the first range asked."""

    origin: int
    step: int
    size: int
    pieces: dict[int, list[Series]] = field(default_factory=dict)

    def piece(self, ms: int) -> int:
        return (ms - self.origin) // self.step // self.size

    def bounds(self, piece: int) -> tuple[int, int]:
        first = self.origin + piece * self.size * self.step
        return first, first + (self.size - 1) * self.step

    def answer(self, first: int, last: int, pieces: range) -> list[Series]:
        """The series of `pieces` cut to [first, last], as a range query from `first` to
        `last` answers: series without a point there are left out, as Prometheus does."""
        joined: dict[tuple[tuple[str, str], ...], list[Series]] = {}
        for piece in pieces:
            for series in self.pieces[piece]:
                joined.setdefault(tuple(sorted(series.labels.items())), []).append(series)
        out = []
        for key in sorted(joined):  # Prometheus sorts a matrix by its labels
            parts = joined[key]
            times = np.concatenate([p.timestamps for p in parts])
            values = np.concatenate([p.values for p in parts])
            ms = np.round(times * 1000)
            keep = (ms >= first) & (ms <= last)
            if keep.any():
                out.append(Series(dict(key), times[keep], values[keep]))
        return out


@dataclass
class ReplayClient(PrometheusClient):
    """A client for one replay: a range query asked again over the same span, a whole
    number of steps later (the next evaluation's baseline or window), is answered from
    pieces fetched before, each piece one range of the size asked; only pieces not yet
    held are fetched. Prometheus evaluates each point of a range by itself (the points
    are the same wherever the range starts on that grid), so the answers are the ones
    the operator would get, and a replay of 42 evaluations with a 7-day baseline asks for
    2 pieces of baseline per metric instead of 42.

    The first piece of each query is exactly the first range asked, so a Prometheus that
    cannot be asked fails as before. A later piece that fails for another reason (a
    partial or too large answer) is not guessed at: that query is then asked range by
    range, as the operator asks it."""

    _ranges: dict[tuple[str, int, int, int], _Pieces | None] = field(
        default_factory=dict, init=False, repr=False
    )

    async def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        first, last, every = _ms(start), _ms(end), _ms(_EPOCH + step)
        if every <= 0 or last < first or _RANGE_ENDS.search(query):
            return await super().query_range(query, start, end, step)
        size = (last - first) // every + 1
        key = (query, every, size, first % every)
        held = self._ranges.setdefault(key, _Pieces(first, every, size))
        if held is None:
            return await super().query_range(query, start, end, step)
        last = first + (size - 1) * every  # the range's last point
        wanted = range(held.piece(first), held.piece(last) + 1)
        try:
            for piece in wanted:
                if piece not in held.pieces:
                    lo, hi = held.bounds(piece)
                    held.pieces[piece] = await super().query_range(
                        query, _time(lo), _time(hi), step
                    )
        except PrometheusError as error:
            if error.kind in CANNOT_ASK:
                raise
            self._ranges[key] = None
            return await super().query_range(query, start, end, step)
        for piece in [p for p in held.pieces if p < wanted.start]:
            del held.pieces[piece]  # the replay only moves forward
        return held.answer(first, last, wanted)


async def evaluate_capacityplan_offline(
    spec: CapacityPlanSpec, options: EvaluateOptions, hosts: list[str] | None
) -> dict[str, Any]:
    """One CapacityPlan evaluation without a cluster: `hosts` None takes every host the
    exporters report (there are no Node objects to select from).

    Named hosts are the fleet, as the operator's selected Nodes are: each must report, and
    one that sends no data makes the plan Unverified (DataMissing) here as there. Without
    this, coverage expected only the hosts present in the data, and a named host with no
    exporter passed as Sufficient. Each counts as advertising 0 GPUs: offline there is no
    device-plugin capacity to read, so its GPUs are those its DCGM series name, and the
    "advertises GPUs but no DCGM series" check (which needs a positive count) stays off.
    """
    timeout = spec.prometheus.timeout if spec.prometheus else timedelta(seconds=10)
    advertised = None if hosts is None else dict.fromkeys(hosts, 0)
    async with PrometheusClient(
        options.prometheus, timeout=timeout, options=options.request
    ) as client:
        outcome = await evaluate_capacity(
            spec, hosts, {}, options.at, client, advertised_gpus=advertised
        )
    return next_status(
        {},
        outcome.fields,
        outcome.conditions,
        generation=options.generation,
        at=options.at,
        measured=outcome.verdict is not None,
    )
