"""A p95 above the histogram's highest finite bucket, against real Prometheus.

Where more than 5 % of a step's requests are above the highest finite bucket,
histogram_quantile(0.95, ...) answers that bucket's bound. perfguard judged the bound as
the p95: a canary 60 ms slower, with buckets up to 60 ms, read about 16 ms slower and
passed `maxIncrease: 20ms`. The bound is a floor: it settles a breach on the candidate's
side (a canary whose floor is already beyond the limit fails) and a Pass on the
baseline's (one slow baseline step does not make a healthy workload Inconclusive), and
nothing else (NoData, HistogramSaturated). Here the services, backfilled into a real
Prometheus (Debian's 2.42) from perfguard.synthetic with a bucket layout that ends at
60 ms, are judged by the real engine through the real PromQL engine.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.engine.offline import EvaluateOptions, replay_perfbaseline
from perfguard.local.prometheus import LocalPrometheus
from perfguard.sources.perfbaseline_queries import OVERFLOW, STAT_LABEL, Track, window_query
from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily
from tests.integration.conftest import prometheus_with

pytestmark = pytest.mark.integration

END = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)
DAYS = 1.1  # a day of history before the window, for the Historical comparison
# 5 ms buckets up to 60 ms. The services' total p95 is about 44 ms (p99 about 50 ms), so
# only a slower track leaves them.
BUCKETS = tuple(ms / 1000 for ms in range(5, 61, 5))
HISTOGRAM = "inference_request_duration_seconds"


def slower(track: str, start: timedelta, duration: timedelta | None = None) -> Injection:
    """60 ms more inference: a total p95 of about 105 ms, far above the top bucket."""
    return Injection(
        InjectionKind.LATENCY_SHIFT,
        start=start,
        duration=duration,
        magnitude=60.0,
        track=track,
        stage="inference",
    )


def scenario(service: str, seed: int, *injections: Injection) -> Scenario:
    return Scenario(
        service=service,
        days=DAYS,
        end=END,
        seed=seed,
        include=frozenset({SeriesFamily.LATENCY, SeriesFamily.REQUESTS}),
        canary_share=0.5,
        latency_buckets=BUCKETS,
        injections=injections,
    )


HISTORY = timedelta(days=DAYS)
SCENARIOS = {
    # The canary 60 ms slower for the last 40 minutes.
    "slowtail": scenario("slowtail", 31, slower("canary", HISTORY - timedelta(minutes=40))),
    # Nothing happens: the normal case, inside the buckets.
    "steady": scenario("steady", 32),
    # The stable track 60 ms slower for 80 minutes around the window's time a day earlier.
    "incident": scenario(
        "incident",
        33,
        slower(
            "stable",
            HISTORY - timedelta(days=1, minutes=40),
            duration=timedelta(minutes=80),
        ),
    ),
    # Both tracks 60 ms slower for one 30-second step in the window's time a day earlier.
    "blip": scenario(
        "blip",
        34,
        *(
            slower(track, HISTORY - timedelta(days=1, minutes=10), timedelta(seconds=30))
            for track in ("canary", "stable")
        ),
    ),
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    with prometheus_with(tmp_path_factory.mktemp("histogram-saturation"), SCENARIOS) as server:
        yield server


def spec(
    service: str, thresholds: dict[str, Any], comparison: str, *, tracks: bool = True
) -> PerfBaselineSpec:
    """A canary-vs-stable spec; without `tracks` a continuous watch of the workload."""
    canary = {"matchLabels": {"track": "canary"}} if tracks else None
    stable = {"matchLabels": {"track": "stable"}} if tracks else None
    return PerfBaselineSpec.model_validate(
        {
            "selector": {"service": service},
            "candidate": canary,
            "stable": stable,
            "comparison": comparison,
            "baseline": {"window": "1d", "minSamples": 20},
            "analysis": {"interval": "1m", "window": "20m", "step": "30s", "sustainFor": "3m"},
            "metrics": [
                {
                    "name": "latency",
                    "type": "Latency",
                    "histogram": HISTOGRAM,
                    "stageLabel": "stage",
                    "thresholds": thresholds,
                }
            ],
        }
    )


P95 = {"p95": {"maxIncrease": "20ms"}}


def evaluate(server: LocalPrometheus, pb: PerfBaselineSpec) -> dict[str, Any]:
    return asyncio.run(replay_perfbaseline(pb, EvaluateOptions(prometheus=server.url, at=END)))


def metric(status: dict[str, Any], statistic: str, comparison: str) -> dict[str, Any]:
    return next(
        m
        for m in status["metrics"]
        if m["statistic"] == statistic and m["comparison"] == comparison
    )


def vector(server: LocalPrometheus, query: str) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": query, "time": str(END.timestamp())})
    with urllib.request.urlopen(f"{server.url}/api/v1/query?{params}", timeout=30) as answer:
        body = json.load(answer)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def instant(server: LocalPrometheus, query: str) -> float:
    (item,) = vector(server, query)
    return float(item["value"][1])


def p95_of(server: LocalPrometheus, service: str, track: str) -> float:
    selector = f'service="{service}",track="{track}",stage="total"'
    return instant(
        server,
        f"histogram_quantile(0.95, sum by (le) (rate({HISTOGRAM}_bucket{{{selector}}}[1m])))",
    )


def test_the_share_above_the_top_bucket_is_what_the_buckets_say(
    prometheus: LocalPrometheus,
) -> None:
    """The engine's share (max over the finite buckets of each series, over +Inf), against
    the top bucket read by name."""
    pb = spec("slowtail", P95, "Concurrent")
    query = window_query(
        pb.metrics[0],
        pb.selector,
        [Track("candidate", {"track": "canary"}), Track("stable", {"track": "stable"})],
        timedelta(minutes=1),
    )
    shares = {
        item["metric"]["perfguard_track"]: float(item["value"][1])
        for item in vector(prometheus, query)
        if item["metric"][STAT_LABEL] == OVERFLOW
    }
    for track in ("canary", "stable"):
        selector = f'{HISTOGRAM}_bucket{{service="slowtail",track="{track}",stage="total",le='
        top = instant(prometheus, f'sum(rate({selector}"0.06"}}[1m]))')
        total = instant(prometheus, f'sum(rate({selector}"+Inf"}}[1m]))')
        name = "candidate" if track == "canary" else "stable"
        assert shares[name] == pytest.approx(1 - top / total, abs=1e-12)
    assert shares["candidate"] > 0.5  # the canary's median is above 60 ms
    assert shares["stable"] < 0.01


def test_a_canary_p95_above_the_top_bucket_is_not_passed(prometheus: LocalPrometheus) -> None:
    # The premise, in real PromQL: the canary's p95 (about 105 ms) reads as the 60 ms bound,
    # about 16 ms above the stable's, inside a 20 ms limit.
    assert p95_of(prometheus, "slowtail", "canary") == pytest.approx(0.06)
    assert 0.035 < p95_of(prometheus, "slowtail", "stable") < 0.055

    status = evaluate(prometheus, spec("slowtail", P95, "Concurrent"))
    assert status["verdict"] == "Inconclusive", status["message"]
    assert status["reason"] == "NoData"
    p95 = metric(status, "p95", "Concurrent")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    message = p95["message"]
    assert f"above the highest finite bucket of {HISTOGRAM} (le=0.06, 60.00ms)" in message
    assert "for the candidate at 41 of 41 steps" in message
    assert "stable track" not in message  # its p95 is inside the buckets
    # The printer column's p95 says it is a floor; the canary's inference stage p95 is not
    # reported, its preprocess stage's is.
    assert status["summary"]["p95"].startswith(">=")
    stages = {row["stage"]: row for row in status["stages"]}
    assert "p95" not in stages["inference"]
    assert "p95 not reported: above the highest finite bucket" in stages["inference"]["message"]
    assert 0.003 < stages["preprocess"]["p95"] < 0.015


def test_the_mean_still_judges_a_saturated_canary(prometheus: LocalPrometheus) -> None:
    """The mean comes from _sum/_count, which no bucket layout caps: it fails the canary."""
    status = evaluate(
        prometheus, spec("slowtail", {**P95, "mean": {"maxIncrease": "20ms"}}, "Concurrent")
    )
    assert metric(status, "p95", "Concurrent")["reason"] == "HistogramSaturated"
    mean = metric(status, "mean", "Concurrent")
    assert mean["verdict"] == "Regressed", mean["message"]
    assert 0.05 < mean["delta"] < 0.07
    assert status["verdict"] == "Fail", status["message"]


def test_a_historical_comparison_of_a_saturated_canary_is_not_passed(
    prometheus: LocalPrometheus,
) -> None:
    status = evaluate(prometheus, spec("slowtail", P95, "Historical"))
    assert status["verdict"] == "Inconclusive", status["message"]
    p95 = metric(status, "p95", "Historical")
    assert (p95["verdict"], p95["reason"]) == ("NoData", "HistogramSaturated"), p95["message"]
    assert "for the candidate at 41 of 41 steps" in p95["message"]


def test_a_canary_whose_floor_already_breaks_the_limit_fails(prometheus: LocalPrometheus) -> None:
    """The same canary against `maxIncrease: 10ms`: its p95 reads the 60 ms bound, about
    16 ms above the stable's, so it is at least that much slower whatever its true p95:
    Regressed, and Fail (the breach holds since the window's start)."""
    status = evaluate(prometheus, spec("slowtail", {"p95": {"maxIncrease": "10ms"}}, "Concurrent"))
    p95 = metric(status, "p95", "Concurrent")
    assert (p95["verdict"], p95["reason"]) == ("Regressed", "RegressionSignificant"), p95["message"]
    assert status["verdict"] == "Fail", status["message"]
    assert status["reason"] == "RegressionDetected"
    message = p95["message"]
    assert message.startswith("at least: the candidate's p95 is a floor, so it and the change")
    assert "for the candidate at 41 of 41 steps" in message
    assert "Regressed on maxIncrease holds whatever the true p95" in message
    assert 0.010 < p95["delta"] < 0.025
    assert status["summary"]["p95"].startswith(">=")
    assert status["summary"]["deltaP95"].startswith(">=+")


def test_a_baseline_above_the_top_bucket_at_the_window_time_of_day_settles_a_pass(
    prometheus: LocalPrometheus,
) -> None:
    """The baseline has its own query: its share above the top bucket comes with it. A
    day earlier the stable track was above the top bucket at the window's time of day; it
    is back inside today, so the change read against that floor is at most the true one:
    an improvement, as it would be against the true baseline."""
    status = evaluate(prometheus, spec("incident", P95, "Both"))
    historical = metric(status, "p95", "Historical")
    assert historical["verdict"] in ("Pass", "Improved"), historical["message"]
    assert historical["message"].startswith("at most: the baseline's p95 is a floor")
    assert (
        "for the baseline at the window's time of day at 41 of 41 steps" in (historical["message"])
    )
    assert historical["samples"]["baseline"] == 41
    established = next(c for c in status["conditions"] if c["type"] == "BaselineEstablished")
    assert established["status"] == "True", established["message"]
    # Today the stable track is inside the buckets: the Concurrent comparison is as before.
    concurrent = metric(status, "p95", "Concurrent")
    assert concurrent["verdict"] == "Pass", concurrent["message"]
    assert status["verdict"] == "Pass", status["message"]


def test_one_slow_baseline_step_leaves_a_healthy_workload_pass(
    prometheus: LocalPrometheus,
) -> None:
    """A continuous watch of a workload that is as it always was; a day earlier, at the
    window's time of day, one 30-second step was 60 ms slower, above the top bucket. That
    floor makes the baseline larger, never smaller: the Pass stands."""
    status = evaluate(prometheus, spec("blip", P95, "Historical", tracks=False))
    p95 = metric(status, "p95", "Historical")
    assert p95["verdict"] == "Pass", p95["message"]
    assert status["verdict"] == "Pass", status["message"]
    message = p95["message"]
    assert message.startswith("at most: the baseline's p95 is a floor")
    found = re.search(r"for the baseline at the window's time of day at (\d+) of 41 steps", message)
    assert found is not None, message
    assert 1 <= int(found.group(1)) <= 2  # the rate window spreads the blip over two steps
    assert not status["summary"]["p95"].startswith(">=")
    assert status["summary"]["deltaP95"].startswith("<=")


@pytest.mark.parametrize("comparison", ["Concurrent", "Historical"])
def test_a_p95_inside_the_buckets_is_judged_as_before(
    prometheus: LocalPrometheus, comparison: str
) -> None:
    status = evaluate(prometheus, spec("steady", P95, comparison))
    assert status["verdict"] == "Pass", status["message"]
    p95 = metric(status, "p95", comparison)
    assert p95["verdict"] == "Pass", p95["message"]
    assert abs(p95["delta"]) < 0.005
    assert not status["summary"]["p95"].startswith(">=")
    assert all("p95" in row for row in status["stages"])
