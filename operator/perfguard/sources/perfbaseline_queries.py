"""The PromQL a PerfBaseline asks: one request per metric and window.

Each statistic of each track is tagged (`perfguard_track`, `perfguard_stat`) and the parts
are joined with `or`, so Prometheus evaluates them all in one request and the answer
still tells them apart. Candidate and stable therefore cost one request together, and the
historical baseline one more: two requests per metric per evaluation.

A Latency metric's parts include, per track (and per stage), the share of observations
above the histogram's highest finite bucket (`OVERFLOW`): where it is above 1 - q,
`histogram_quantile(q, ...)` answers that bucket's bound instead of the quantile, and the
engine does not judge the quantile (see perfguard.analysis.histogram).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from perfguard.api.perfbaseline import MetricSpec, MetricType
from perfguard.api.quantities import format_duration
from perfguard.sources import promql

TRACK_LABEL = "perfguard_track"
STAT_LABEL = "perfguard_stat"
STAGE_STATS = ("mean", "p95", "p99")
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
# The statistic tag of the share of a histogram's observations above its highest finite
# bucket (0.1 is 10 %), per step: not a statistic a threshold can name.
OVERFLOW = "overflow"
# The `le` of the +Inf bucket. Prometheus' clients write "+Inf"; histogram_quantile reads
# any spelling Go's ParseFloat takes as infinity, so the matchers do too.
INF_BUCKET = r"(?i)[+]?inf(inity)?"


@dataclass(frozen=True)
class Track:
    """A named set of series: `candidate`, `stable`, or `workload` (no split)."""

    name: str
    matchers: Mapping[str, str]


def statistics_for(metric: MetricSpec) -> tuple[str, ...]:
    """The statistics a metric's thresholds name, plus what the status reports: latency's
    p95 (the headline) and, with stages, its mean."""
    named = [k for k, v in metric.thresholds if v is not None]
    if metric.type == MetricType.LATENCY and "p95" not in named:
        named.append("p95")
    # Stage shares are stage means over the total mean.
    if metric.type == MetricType.LATENCY and metric.stage_label and "mean" not in named:
        named.append("mean")
    return tuple(named)


def _latency(
    metric: MetricSpec, selector: str, stat: str, window: str, group: Sequence[str] = ()
) -> str:
    """A latency statistic per step, aggregated by `group` labels (none: one series)."""
    assert metric.histogram is not None
    base = promql.metric_name(metric.histogram)
    if stat == "mean":
        agg = f"sum {promql.by(group)} " if group else "sum"
        return (
            f"{agg}(rate({base}_sum{{{selector}}}[{window}])) / "
            f"{agg}(rate({base}_count{{{selector}}}[{window}]))"
        )
    buckets = f"rate({base}_bucket{{{selector}}}[{window}])"
    return f"histogram_quantile({QUANTILES[stat]}, sum {promql.by(['le', *group])} ({buckets}))"


def _overflow(metric: MetricSpec, selector: str, window: str, group: Sequence[str] = ()) -> str:
    """The share of observations above the highest finite bucket per step, aggregated by
    `group` labels (none: one series).

    Buckets are cumulative, so each series' largest finite-bucket rate is its highest
    finite bucket's; 1 minus their sum over the +Inf buckets' sum is the share no finite
    bucket holds. Its own `le` is per series, so a workload whose pods have different
    layouts counts what is above each pod's own top bucket."""
    assert metric.histogram is not None
    bucket = f"{promql.metric_name(metric.histogram)}_bucket"
    finite = promql.join_matchers(selector, promql.matchers(not_regex={"le": INF_BUCKET}))
    total = promql.join_matchers(selector, promql.matchers(regex={"le": INF_BUCKET}))
    agg = f"sum {promql.by(group)} " if group else "sum"
    return (
        f"1 - {agg}(max without (le) (rate({bucket}{{{finite}}}[{window}]))) / "
        f"{agg}(rate({bucket}{{{total}}}[{window}]))"
    )


def _expression(metric: MetricSpec, selector: str, stat: str, window: str) -> str:
    if metric.type == MetricType.LATENCY:
        return _latency(metric, selector, stat, window)
    if metric.type == MetricType.THROUGHPUT:
        assert metric.counter is not None
        return f"sum(rate({promql.metric_name(metric.counter)}{{{selector}}}[{window}]))"
    if metric.type == MetricType.ERROR_RATE:
        assert metric.counter is not None and metric.error_matchers is not None
        counter = promql.metric_name(metric.counter)
        errors = promql.join_matchers(selector, promql.matchers(regex=metric.error_matchers))
        total = f"sum(rate({counter}{{{selector}}}[{window}]))"
        # No error series at all means zero errors, not "no data".
        return f"(sum(rate({counter}{{{errors}}}[{window}])) or ({total} * 0)) / {total}"
    assert metric.query is not None
    return promql.render_template(metric.query, selector)


def track_selector(
    metric: MetricSpec, base: Mapping[str, str], track: Track, *, total: bool
) -> str:
    labels = {**base, **track.matchers}
    if metric.type == MetricType.LATENCY and metric.stage_label and total:
        labels[metric.stage_label] = metric.total_stage
    return promql.matchers(labels)


def window_query(
    metric: MetricSpec,
    selector: Mapping[str, str],
    tracks: Sequence[Track],
    rate_window: timedelta,
    *,
    stages_for: str | None = None,
) -> str:
    """One query returning every statistic of `metric` for every track.

    With `stages_for` (a track name) and a latency metric with `stageLabel`, the per-stage
    mean, p95 and p99 of that track are included, keyed by the stage label. A latency
    metric's tracks and stages each have their OVERFLOW share too.
    """
    window = format_duration(rate_window)
    parts: list[str] = []
    latency = metric.type == MetricType.LATENCY
    for track in tracks:
        sel = track_selector(metric, selector, track, total=True)
        for stat in statistics_for(metric):
            parts.append(
                promql.tag(
                    _expression(metric, sel, stat, window),
                    **{TRACK_LABEL: track.name, STAT_LABEL: stat},
                )
            )
        if latency:
            parts.append(
                promql.tag(
                    _overflow(metric, sel, window),
                    **{TRACK_LABEL: track.name, STAT_LABEL: OVERFLOW},
                )
            )
    if stages_for is not None and metric.type == MetricType.LATENCY and metric.stage_label:
        track = next(t for t in tracks if t.name == stages_for)
        stage_label = promql.label_name(metric.stage_label)
        sel = promql.join_matchers(
            promql.matchers({**selector, **track.matchers}),
            promql.matchers(not_equal={stage_label: metric.total_stage}),
        )
        group = [stage_label]
        for stat in STAGE_STATS:
            parts.append(
                promql.tag(
                    _latency(metric, sel, stat, window, group),
                    **{TRACK_LABEL: track.name, STAT_LABEL: f"stage:{stat}"},
                )
            )
        parts.append(
            promql.tag(
                _overflow(metric, sel, window, group),
                **{TRACK_LABEL: track.name, STAT_LABEL: f"stage:{OVERFLOW}"},
            )
        )
    return promql.union(parts)
