"""The three judges of the accuracy benchmark, each applied to one corpus case.

* perfguard: ``perfguard.engine.perfbaseline.judge``, the function the operator runs
  after fetching, on a PerfBaselineSpec with a Concurrent comparison and the family's
  threshold rule. Samples enter exactly as ``fetch_all`` returns them (per-step values
  of the candidate and stable tracks, keyed by timestamp). The evaluation is replayed as
  ``perfguard.engine.offline.replay_perfbaseline`` does (``replay_times``: 5 evaluations,
  ``interval`` apart, ending at the case's last sample, each over its own window, the
  status carried forward), so sustainFor is applied as in the operator. Reported: the
  final evaluation's metric verdict ("final window") and the overall verdict after the
  replay ("sustained").
* kayenta: bench.accuracy_kayenta on the final window's per-step values, direction
  increase (decrease for throughput), allowedIncrease = 1 + the allowed change relative
  to the team's typical stable value (allowedDecrease = 1 - 5 % for throughput).
* fixed: an Argo Rollouts AnalysisTemplate with a fixed ``successCondition``: one
  PromQL query over the whole final window (histogram_quantile over the window's
  buckets, _sum/_count for the mean) on the canary, failed above the bound set in
  advance: the team's typical stable value plus the allowed increase. Throughput has no
  usable fixed bound (demand moves +/-40 % over the day), so its template compares the
  canary's rate with the stable's over the window: failed below 0.95 of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bench.accuracy_corpus import Case, Family
from bench.accuracy_kayenta import KayentaConfig, KayentaResult, classify
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.offline import replay_times
from perfguard.engine.perfbaseline import judge
from perfguard.engine.perfbaseline_fetch import MetricSamples, TimedSamples, windows
from perfguard.engine.tracks import plan_tracks
from perfguard.status import next_status

HISTOGRAM: Final = "inference_request_duration_seconds"
REQUESTS: Final = "inference_requests_total"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def threshold_rule(family: Family) -> dict[str, Any]:
    """The family's PerfBaseline threshold rule, as a spec fragment."""
    if family.direction == "increase":
        if family.relative:
            return {"maxIncreasePercent": family.threshold}
        return {"maxIncrease": f"{family.threshold:g}ms"}
    if family.relative:
        return {"maxDecreasePercent": family.threshold}
    return {"maxDecrease": f"{family.threshold:g}ms"}


def metric_spec(family: Family, *, stage_label: str | None = None) -> dict[str, Any]:
    rule = {family.statistic: threshold_rule(family)}
    if family.metric_type == "Latency":
        metric: dict[str, Any] = {
            "name": "latency",
            "type": "Latency",
            "histogram": HISTOGRAM,
            "thresholds": rule,
        }
        if stage_label:
            metric["stageLabel"] = stage_label
        return metric
    # Throughput per track is a Query: perfguard judges a Throughput metric for the whole
    # workload against its history (a canary's volume is its traffic share), while a
    # per-replica rate compares concurrently like any other value.
    query = (
        f"sum(rate({REQUESTS}{{ {{{{selector}}}} }}[1m]))"
        if family.name == "throughput"
        else "avg(cloudwatch_value{ {{selector}} })"
    )
    return {"name": family.name, "type": "Query", "query": query, "thresholds": rule}


def perfguard_spec(
    family: Family,
    n: int,
    step_s: float,
    interval_s: float,
    sustain_s: float,
    *,
    service: str = "bench",
    stage_label: str | None = None,
) -> PerfBaselineSpec:
    """A Concurrent PerfBaseline whose window holds exactly ``n`` samples."""
    window_s = (n - 1) * step_s
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": service},
            "candidate": {"matchLabels": {"track": "canary"}},
            "stable": {"matchLabels": {"track": "stable"}},
            "comparison": "Concurrent",
            "baseline": {"window": "2d", "minSamples": 20},
            "analysis": {
                "interval": _seconds(interval_s),
                "window": _seconds(window_s),
                "step": _seconds(step_s),
                "sustainFor": _seconds(sustain_s),
            },
            "metrics": [metric_spec(family, stage_label=stage_label)],
        }
    )


@dataclass(frozen=True)
class PerfguardVerdict:
    metric_verdict: str  # the final evaluation's metric verdict
    verdict: str  # the overall verdict after the sustain replay
    delta: float | None  # base units (seconds, requests/s, raw)
    ci: tuple[float, float] | None
    baseline: float | None
    strict_rule: bool  # the rule before 2026-12: the whole interval beyond the limit

    @property
    def regressed(self) -> bool:
        return self.metric_verdict == "Regressed"

    @property
    def failed(self) -> bool:
        return self.verdict == "Fail"


def allowed_change(family: Family, baseline: float) -> float:
    """The allowed change in base units."""
    if family.relative:
        return family.threshold / 100.0 * abs(baseline)
    return family.threshold / 1000.0


def verdict_of(status: dict[str, Any], family: Family) -> PerfguardVerdict:
    metric = status["metrics"][0]
    delta = metric.get("delta")
    ci = metric.get("ci95")
    baseline = metric.get("baseline")
    strict = False
    if delta is not None and ci is not None and baseline is not None:
        allowed = allowed_change(family, baseline)
        if family.direction == "increase":
            strict = ci[0] > allowed and delta > allowed
        else:
            strict = -ci[1] > allowed and -delta > allowed
    return PerfguardVerdict(
        metric_verdict=str(metric["verdict"]),
        verdict=str(status["verdict"]),
        delta=delta,
        ci=None if ci is None else (float(ci[0]), float(ci[1])),
        baseline=baseline,
        strict_rule=strict,
    )


def carry(status: dict[str, Any], fields: dict[str, Any], conditions: Any, at: datetime) -> Any:
    """The next status, as the operator and replay_perfbaseline build it."""
    return next_status(status, fields, conditions, generation=1, at=at, measured=True)


def run_perfguard(case: Case) -> PerfguardVerdict:
    spec = perfguard_spec(case.family, case.n, case.step_s, case.interval_s, case.sustain_s)
    plan = plan_tracks(spec, None)
    metric = spec.metrics[0]
    statistic = case.family.statistic
    last = datetime.fromtimestamp(float(case.timestamps[-1]), UTC)
    window_s = spec.analysis.window.total_seconds()
    status: dict[str, Any] = {}
    for at in replay_times(spec, last):
        t = at.timestamp()
        keep = (case.timestamps >= t - window_s - 1e-6) & (case.timestamps <= t + 1e-6)
        ts = case.timestamps[keep]
        data = MetricSamples(
            window={
                (plan.current.name, statistic): TimedSamples(ts, case.canary[keep]),
                ("stable", statistic): TimedSamples(ts, case.stable[keep]),
            }
        )
        outcome = judge(spec, plan, windows(spec, at), {metric.name: data}, status, at)
        status = carry(status, outcome.fields, outcome.conditions, at)
    return verdict_of(status, case.family)


def kayenta_config(family: Family, typical: float) -> KayentaConfig:
    """The canary config a team would write for the family's allowed change."""
    if family.direction == "increase":
        relative = (
            family.threshold / 100.0 if family.relative else family.threshold / 1000.0 / typical
        )
        return KayentaConfig(direction="increase", allowed_increase=1.0 + relative)
    return KayentaConfig(direction="decrease", allowed_decrease=1.0 - family.threshold / 100.0)


def run_kayenta(case: Case) -> KayentaResult:
    window = case.final
    return classify(
        case.canary[window], case.stable[window], kayenta_config(case.family, case.typical)
    )


@dataclass(frozen=True)
class FixedVerdict:
    value: float
    bound: float
    failed: bool
    what: str


def fixed_bound(family: Family, typical: float) -> float:
    """The AnalysisTemplate's bound, fixed before the rollout."""
    if family.direction == "decrease":
        return 1.0 - family.threshold / 100.0
    if family.relative:
        return typical * (1.0 + family.threshold / 100.0)
    return typical + family.threshold / 1000.0


def fixed_judge(family: Family, typical: float, canary: float, stable: float) -> FixedVerdict:
    bound = fixed_bound(family, typical)
    if family.direction == "decrease":
        ratio = canary / stable if stable > 0 else float("nan")
        return FixedVerdict(ratio, bound, bool(ratio < bound), "canary/stable rate")
    return FixedVerdict(canary, bound, bool(canary > bound), f"canary {family.statistic}")


def run_fixed(case: Case) -> FixedVerdict:
    return fixed_judge(case.family, case.typical, case.canary_window, case.stable_window)
