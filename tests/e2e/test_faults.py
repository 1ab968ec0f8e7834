"""Faults on purpose: a broken Prometheus never makes a verdict Pass, is reported once per
outage, and the operator recovers to the right verdict by itself.

A real Prometheus holds a live history (the canary regressed by 8 ms for the whole test);
a fault proxy in front of it fails on command. Two PerfBaselines judge the same data:
`strict` (limit 2 ms: Fail) and `lenient` (limit 50 ms: Pass).
"""

from __future__ import annotations

import itertools
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from perfguard.local.prometheus import LocalPrometheus
from tests.e2e.cluster import Cluster, condition, wait_for
from tests.e2e.faultproxy import REMOTE_READ_WARNING, FaultProxy, fault_proxy
from tests.e2e.live_history import start_live_prometheus
from tests.e2e.test_perfbaseline_operator import perfbaseline, status_of

pytestmark = pytest.mark.e2e

LABELS = {
    "candidate": {"matchLabels": {"track": "canary"}},
    "stable": {"matchLabels": {"track": "stable"}},
}
NAMES = ("strict", "lenient")
ANALYSIS = {
    "interval": "2s",
    "window": "90s",
    "step": "5s",
    "sustainFor": "4s",
    "rateWindow": "10s",
}


@pytest.fixture(scope="module")
def regressed_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    work = tmp_path_factory.mktemp("faults")
    server = start_live_prometheus(work, seed=5)
    yield server
    server.stop()


def apply(cluster: Cluster, namespace: str, name: str, url: str, limit: str) -> None:
    metric = {
        "name": "latency",
        "type": "Latency",
        "histogram": "inference_request_duration_seconds",
        "stageLabel": "stage",
        "thresholds": {"p95": {"maxIncrease": limit}},
    }
    body = perfbaseline(
        name,
        namespace,
        url,
        analysis=ANALYSIS,
        metrics=[metric],
        prometheus={"url": url, "timeout": "2s"},
        **LABELS,
    )
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))


def verdicts(cluster: Cluster, namespace: str) -> dict[str, str | None]:
    return {n: status_of(cluster, n, namespace).get("verdict") for n in ("strict", "lenient")}


def ready_reason(cluster: Cluster, namespace: str, name: str) -> str | None:
    ready = condition({"status": status_of(cluster, name, namespace)}, "Ready")
    return None if ready is None else f"{ready['status']}/{ready['reason']}"


def event_count(cluster: Cluster, namespace: str, name: str, reason: str) -> int:
    return sum(1 for e in cluster.events(namespace, name) if e["reason"] == reason)


def outage(
    cluster: Cluster,
    namespace: str,
    proxy: FaultProxy,
    mode: str,
    reason: str,
    seen: list[dict[str, str | None]],
) -> None:
    """Break the proxy; both verdicts go Inconclusive with `reason`, once; then heal."""
    before = {n: event_count(cluster, namespace, n, reason) for n in NAMES}
    proxy.mode = mode
    for name in ("strict", "lenient"):
        wait_for(
            lambda n=name: ready_reason(cluster, namespace, n) == f"False/{reason}",
            timeout=30,
            what=f"{name} Ready=False/{reason}",
        )
    deadline = time.monotonic() + 6  # three more evaluations in the outage
    while time.monotonic() < deadline:
        seen.append(verdicts(cluster, namespace))
        time.sleep(0.5)
    assert verdicts(cluster, namespace) == {"strict": "Inconclusive", "lenient": "Inconclusive"}
    for name in NAMES:
        after = event_count(cluster, namespace, name, reason)
        assert after == before[name] + 1, "one Event per outage"
    proxy.mode = "pass"
    wait_for(
        lambda: verdicts(cluster, namespace) == {"strict": "Fail", "lenient": "Pass"},
        timeout=40,
        what="recovery to Fail/Pass",
    )


def test_prometheus_faults_are_inconclusive_once_and_recover(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    regressed_prometheus: LocalPrometheus,
) -> None:
    with fault_proxy(regressed_prometheus.url) as proxy:
        proxy.delay_s = 4.0  # the spec's timeout is 2 s
        apply(cluster, namespace, "strict", proxy.url, "2ms")
        apply(cluster, namespace, "lenient", proxy.url, "50ms")
        wait_for(
            lambda: verdicts(cluster, namespace) == {"strict": "Fail", "lenient": "Pass"},
            timeout=60,
            what="Fail and Pass",
        )
        seen: list[dict[str, str | None]] = []
        outage(cluster, namespace, proxy, "500", "PrometheusError", seen)
        outage(cluster, namespace, proxy, "delay", "PrometheusTimeout", seen)
        outage(cluster, namespace, proxy, "malformed", "PrometheusBadResponse", seen)
        # Every series there, but Prometheus says a store it reads was down: not judged.
        outage(cluster, namespace, proxy, "partial", "PrometheusPartialResponse", seen)

        # During every outage the lenient resource never read Pass, the strict never Pass.
        assert seen and all(v["lenient"] != "Pass" or v is seen[0] for v in seen[1:])
        assert all(v["strict"] != "Pass" for v in seen)
        # The regression was reported once, not again after each recovery.
        assert event_count(cluster, namespace, "strict", "RegressionDetected") == 1
        regressed = condition({"status": status_of(cluster, "strict", namespace)}, "Regressed")
        assert regressed is not None and regressed["status"] == "True"

        # The partial outage's Event (its message is Ready's) quotes Prometheus' warning.
        messages = [
            e["message"]
            for e in cluster.events(namespace, "lenient")
            if e["reason"] == "PrometheusPartialResponse"
        ]
        assert messages and REMOTE_READ_WARNING in messages[0], messages

        # A PromQL info (buckets fixed for monotonicity) says nothing is missing: judged.
        proxy.mode = "info"
        infos = len(proxy.queries)
        deadline = time.monotonic() + 6  # three evaluations
        while time.monotonic() < deadline:
            assert verdicts(cluster, namespace) == {"strict": "Fail", "lenient": "Pass"}
            for name in NAMES:
                assert ready_reason(cluster, namespace, name) == "True/Evaluated"
            time.sleep(0.5)
        assert len(proxy.queries) > infos, "the info answers were asked for"
        proxy.mode = "pass"


def test_prometheus_killed_and_restarted(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    regressed_prometheus: LocalPrometheus,
) -> None:
    url = regressed_prometheus.url
    apply(cluster, namespace, "strict", url, "2ms")
    apply(cluster, namespace, "lenient", url, "50ms")
    wait_for(
        lambda: verdicts(cluster, namespace) == {"strict": "Fail", "lenient": "Pass"},
        timeout=60,
        what="Fail and Pass",
    )
    process = regressed_prometheus._process
    assert process is not None
    process.kill()  # SIGKILL: no goodbye
    process.wait(10)
    try:
        for name in ("strict", "lenient"):
            wait_for(
                lambda n=name: ready_reason(cluster, namespace, n) == "False/PrometheusUnreachable",
                timeout=30,
                what=f"{name} unreachable",
            )
        assert verdicts(cluster, namespace) == {
            "strict": "Inconclusive",
            "lenient": "Inconclusive",
        }
    finally:
        regressed_prometheus.start()  # same port, same data
    wait_for(
        lambda: verdicts(cluster, namespace) == {"strict": "Fail", "lenient": "Pass"},
        timeout=60,
        what="recovery after the restart",
    )
    for name in ("strict", "lenient"):
        assert event_count(cluster, namespace, name, "PrometheusUnreachable") == 1
    assert event_count(cluster, namespace, "strict", "RegressionDetected") == 1


def test_label_values_cannot_inject_promql(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    regressed_prometheus: LocalPrometheus,
) -> None:
    hostile = 'live"} or vector(1) or up{x="\\'
    with fault_proxy(regressed_prometheus.url) as proxy:
        body: dict[str, Any] = perfbaseline(
            "hostile", namespace, proxy.url, analysis=ANALYSIS, **LABELS
        )
        body["spec"]["selector"] = {"service": hostile}
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        wait_for(lambda: len(proxy.queries) >= 2, timeout=30, what="queries at the proxy")
        escaped = 'service="live\\"} or vector(1) or up{x=\\"\\\\"'
        for query in proxy.queries:
            assert escaped in query, query
            assert 'service="live"}' not in query
        # Prometheus parsed every query: no InvalidQuery, and no data for that odd service.
        status = wait_for(
            lambda: (s := status_of(cluster, "hostile", namespace)).get("verdict") and s,
            timeout=30,
            what="a verdict",
        )
        ready = condition({"status": status}, "Ready")
        assert ready is not None and ready["reason"] != "InvalidQuery", ready
        assert status["verdict"] == "Inconclusive", status


def _last_evaluations(port: str, namespace: str) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:  # the operator's HTTP server is not up yet
        return {}
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "perfguard_last_evaluation_timestamp_seconds"
                and sample.labels.get("namespace") == namespace
            ):
                found[sample.labels["name"]] = sample.value
    return found


def test_broken_resources_do_not_slow_the_others(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    operator_env: dict[str, str],
    regressed_prometheus: LocalPrometheus,
) -> None:
    healthy = [f"ok-{i:02d}" for i in range(45)]
    with fault_proxy(regressed_prometheus.url) as hanging:
        hanging.mode, hanging.delay_s = "delay", 60.0  # answers long after any timeout
        docs = []
        for name in healthy:
            docs.append(
                perfbaseline(
                    name,
                    namespace,
                    regressed_prometheus.url,
                    analysis={**ANALYSIS, "interval": "5s"},
                    prometheus={"url": regressed_prometheus.url, "timeout": "3s"},
                    **LABELS,
                )
            )
        for i in range(3):
            docs.append(
                perfbaseline(
                    f"hangs-{i}",
                    namespace,
                    hanging.url,
                    analysis={**ANALYSIS, "interval": "5s"},
                    # Far longer than a healthy evaluation's lag may be (below): if hanging
                    # evaluations held the healthy ones up, the lag would show 15 s, not 2.
                    prometheus={"url": hanging.url, "timeout": "15s"},
                    **LABELS,
                )
            )
        for i in range(2):
            bad = perfbaseline(
                f"badquery-{i}",
                namespace,
                regressed_prometheus.url,
                analysis={**ANALYSIS, "interval": "5s"},
                **LABELS,
            )
            bad["spec"]["metrics"] = [
                {
                    "name": "broken",
                    "type": "Query",
                    "query": "sum(rate(nonsense{ {{selector}} }[5m])) by (",
                    "thresholds": {"value": {"maxIncrease": 1}},
                }
            ]
            docs.append(bad)
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        port = operator_env["PERFGUARD_HTTP_PORT"]
        wait_for(
            lambda: len(_last_evaluations(port, namespace)) == 50,
            timeout=60,
            what="every resource evaluated once",
        )
        history: dict[str, set[float]] = {}
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            for name, stamp in _last_evaluations(port, namespace).items():
                history.setdefault(name, set()).add(stamp)
            time.sleep(0.5)
        lags = []
        for name in healthy:
            stamps = sorted(history.get(name, ()))
            assert len(stamps) >= 6, (name, stamps)
            lags += [b - a - 5.0 for a, b in itertools.pairwise(stamps)]
        lags.sort()
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))]
        print(
            f"healthy evaluation lag over {len(lags)} gaps: p50 {lags[len(lags) // 2]:.2f}s, "
            f"p99 {p99:.2f}s, max {lags[-1]:.2f}s"
        )
        # An evaluation itself takes time (queries, bootstrap) on 2 shared cores; what
        # matters is that 15 s timeouts elsewhere do not add up here.
        assert p99 < 5.0, f"healthy lag p99 {p99:.2f}s; all: {lags[-10:]}"
        for name in ("hangs-0", "badquery-0"):
            reason = ready_reason(cluster, namespace, name)
            assert reason in {"False/PrometheusTimeout", "False/InvalidQuery"}, (name, reason)
        assert ready_reason(cluster, namespace, "hangs-1") == "False/PrometheusTimeout"
        assert ready_reason(cluster, namespace, "badquery-1") == "False/InvalidQuery"
        for name in healthy[:3]:
            assert verdicts_of(cluster, namespace, name) in {"Fail", "Inconclusive"}


def verdicts_of(cluster: Cluster, namespace: str, name: str) -> str | None:
    verdict = status_of(cluster, name, namespace).get("verdict")
    return None if verdict is None else str(verdict)


def test_spec_edited_during_an_evaluation_is_judged_by_its_new_generation(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    regressed_prometheus: LocalPrometheus,
) -> None:
    with fault_proxy(regressed_prometheus.url) as slow:
        slow.mode, slow.delay_s = "delay", 2.5  # each evaluation takes a few seconds
        body = perfbaseline(
            "edited",
            namespace,
            slow.url,
            analysis={**ANALYSIS, "interval": "30s"},
            prometheus={"url": slow.url, "timeout": "10s"},
            **LABELS,
        )
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        wait_for(lambda: len(slow.queries) >= 1, timeout=30, what="the first evaluation")
        # Another writer changes the spec while that evaluation is waiting on Prometheus.
        body["spec"]["metrics"][0]["thresholds"] = {"p95": {"maxIncrease": "50ms"}}
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        generation = cluster.get("pb", "edited", namespace)["metadata"]["generation"]
        assert generation == 2

        def judged_new_spec() -> dict[str, Any] | None:
            status = status_of(cluster, "edited", namespace)
            return status if status.get("observedGeneration") == 2 else None

        # Well before the 30 s interval: the edit wakes the daemon.
        status = wait_for(judged_new_spec, timeout=25, what="status for generation 2")
        thresholds = {m.get("threshold") for m in status.get("metrics") or []}
        assert thresholds == {"maxIncrease 50.00ms"}, thresholds
        ready = condition({"status": status}, "Ready")
        assert ready is not None and ready["observedGeneration"] == 2


def test_query_templates_cannot_be_broken_out_of(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    regressed_prometheus: LocalPrometheus,
) -> None:
    hostile = 'live"}) or vector(1) #'
    with fault_proxy(regressed_prometheus.url) as proxy:
        body: dict[str, Any] = perfbaseline(
            "templated", namespace, proxy.url, analysis=ANALYSIS, **LABELS
        )
        body["spec"]["selector"] = {"service": hostile}
        body["spec"]["metrics"] = [
            {
                "name": "rps",
                "type": "Query",
                "query": "sum(rate(inference_requests_total{ {{selector}} }[1m]))",
                "thresholds": {"value": {"maxDecreasePercent": 50}},
            }
        ]
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        wait_for(lambda: len(proxy.queries) >= 1, timeout=30, what="queries at the proxy")
        for query in proxy.queries:
            assert 'service="live\\"}) or vector(1) #"' in query, query
        status = wait_for(
            lambda: (s := status_of(cluster, "templated", namespace)).get("verdict") and s,
            timeout=30,
            what="a verdict",
        )
        ready = condition({"status": status}, "Ready")
        assert ready is not None and ready["reason"] != "InvalidQuery", ready
        assert status["verdict"] != "Pass"  # no data for that service: never a Pass
