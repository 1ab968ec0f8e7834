"""PerfBaseline end to end: real kube-apiserver, real Prometheus, the operator under KopfRunner.

The backfilled history reaches a few minutes into the future, so wall-clock time moves
through it: the canary regresses now and recovers about 90 s after the fixture starts.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.synthetic import (
    CANARY_POD_TEMPLATE_HASH,
    STABLE_POD_TEMPLATE_HASH,
    Injection,
    InjectionKind,
    Scenario,
    SeriesFamily,
    generate_file,
)
from tests.e2e.cluster import Cluster, condition, wait_for

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).parent / "manifests"
RECOVERY_AFTER = timedelta(seconds=75)


@dataclass
class LiveData:
    url: str
    recovers_at: datetime


@pytest.fixture(scope="module")
def live_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveData]:
    work = tmp_path_factory.mktemp("live-prometheus")
    now = datetime.now(UTC).replace(microsecond=0)
    days = 0.05  # 72 minutes of history, 12 of them ahead of now
    end = now + timedelta(minutes=12)
    history = timedelta(days=days)
    regression_start = history - timedelta(minutes=12) - timedelta(minutes=20)
    recovers_at = now + RECOVERY_AFTER
    scenario = Scenario(
        service="live",
        days=days,
        end=end,
        step=timedelta(seconds=5),
        seed=21,
        canary_share=0.5,
        include=frozenset({SeriesFamily.LATENCY, SeriesFamily.REQUESTS}),
        injections=(
            Injection(
                InjectionKind.LATENCY_SHIFT,
                start=regression_start,
                duration=(recovers_at - (end - history)) - regression_start,
                magnitude=8.0,
                track="canary",
                stage="inference",
            ),
        ),
    )
    generate_file(scenario, work / "live.om")
    backfill(work / "live.om", work / "data")
    server = LocalPrometheus(work / "data")
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    yield LiveData(server.url, recovers_at)
    server.stop()


def perfbaseline(name: str, namespace: str, url: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prometheus": {"url": url, "timeout": "5s"},
        "selector": {"service": "live"},
        "comparison": "Concurrent",
        "baseline": {"window": "30m", "minSamples": 20},
        # 19 samples whose rate windows overlap only pairwise (data every 5 s): enough for
        # stable intervals; a 20 s rate window made neighbours nearly identical and the
        # honest interval wide enough to straddle the limit now and then.
        "analysis": {
            "interval": "5s",
            "window": "90s",
            "step": "5s",
            "sustainFor": "30s",
            "rateWindow": "10s",
        },
        "metrics": [
            {
                "name": "latency",
                "type": "Latency",
                "histogram": "inference_request_duration_seconds",
                "stageLabel": "stage",
                "thresholds": {"p95": {"maxIncrease": "2ms"}},
            }
        ],
    }
    body.update(spec)
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def status_of(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    return dict(cluster.get("pb", name, namespace).get("status") or {})


def wait_status(
    cluster: Cluster, name: str, namespace: str, what: str, predicate: Any, timeout: float
) -> dict[str, Any]:
    """Wait until predicate(status) holds; on timeout, show the last status seen."""
    last: dict[str, Any] = {}

    def probe() -> bool:
        nonlocal last
        last = status_of(cluster, name, namespace)
        return bool(predicate(last))

    try:
        wait_for(probe, timeout=timeout, interval=1, what=what)
    except AssertionError as error:
        raise AssertionError(
            f"{error}\nlast status:\n{json.dumps(last, indent=1)[:4000]}"
        ) from None
    return last


def breach_since(status: dict[str, Any]) -> str | None:
    for item in status.get("metrics") or []:
        if item.get("breachSince"):
            return str(item["breachSince"])
    return None


def test_regression_fails_survives_restart_and_clears(
    cluster: Cluster,
    namespace: str,
    operator_env: dict[str, str],
    live_prometheus: LiveData,
) -> None:
    from kopf.testing import KopfRunner

    args = ["run", "--standalone", "--namespace", namespace, "-m", "perfguard.handlers"]
    labels = {
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
    }
    body = perfbaseline("canary", namespace, live_prometheus.url, **labels)
    # A breach is dated from the first sample that shows it: here the start of the 90 s
    # window, as the canary has regressed for longer. A sustainFor longer than the window
    # leaves the first evaluations pending, so the restart has a running clock to keep.
    body["spec"]["analysis"]["sustainFor"] = "2m"
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))

    # 1. The operator sees the breach and records when it started...
    with KopfRunner(args, timeout=60) as first:
        first_seen = wait_for(
            lambda: breach_since(status_of(cluster, "canary", namespace)),
            timeout=30,
            what="breachSince",
        )
        pending = status_of(cluster, "canary", namespace)
        assert pending["verdict"] == "Inconclusive", pending
        assert pending["reason"] == "BreachNotSustained", pending
    assert first.exception is None, first.output

    # 2. ...and a restarted operator keeps counting from there instead of starting over.
    with KopfRunner(args, timeout=200) as second:
        failed = wait_status(
            cluster,
            "canary",
            namespace,
            "verdict Fail",
            lambda s: s.get("verdict") == "Fail",
            timeout=60,
        )
        assert breach_since(failed) == first_seen
        regressed = condition({"status": failed}, "Regressed")
        assert regressed is not None and regressed["status"] == "True"
        described = cluster.kubectl("describe", "pb", "canary", "-n", namespace).stdout
        assert "RegressionDetected" in described
        assert "Regressed" in described and "True" in described
        port = operator_env["PERFGUARD_HTTP_PORT"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            exported = response.read().decode()
        ours = {"kind": "PerfBaseline", "namespace": namespace, "name": "canary"}
        samples = [
            sample
            for family in text_string_to_metric_families(exported)
            for sample in family.samples
            if all(sample.labels.get(k) == v for k, v in ours.items())
        ]
        verdicts = {s.labels["verdict"]: s.value for s in samples if s.name == "perfguard_verdict"}
        assert verdicts["Fail"] == 1.0 and verdicts["Pass"] == 0.0
        delta = next(
            s.value
            for s in samples
            if s.name == "perfguard_metric_delta"
            and s.labels["statistic"] == "p95"
            and s.labels["comparison"] == "Concurrent"
        )
        assert delta > 0.003  # seconds: the +8 ms shift

        # 3. The data recovers; the verdict passes and the transition is an Event.
        remaining = (live_prometheus.recovers_at - datetime.now(UTC)).total_seconds()
        wait_status(
            cluster,
            "canary",
            namespace,
            "verdict Pass",
            lambda s: s.get("verdict") == "Pass",
            timeout=max(remaining, 0) + 120,
        )
        events = wait_for(
            lambda: [
                e for e in cluster.events(namespace, "canary") if e["reason"] == "RegressionCleared"
            ],
            timeout=15,
            what="RegressionCleared event",
        )
        assert events[0]["type"] == "Normal"
        detected = [
            e for e in cluster.events(namespace, "canary") if e["reason"] == "RegressionDetected"
        ]
        assert len(detected) == 1, "one Event per transition, not one per evaluation"
        assert detected[0]["type"] == "Warning"
        assert "ms" in detected[0]["message"]
    assert second.exception is None, second.output


def test_argo_rollout_drives_the_candidate_identity(
    cluster: Cluster,
    namespace: str,
    run_operator: object,
    live_prometheus: LiveData,
) -> None:
    cluster.kubectl("apply", "-f", str(MANIFESTS / "argo-rollouts-crd.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/rollouts.argoproj.io")
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "live", "namespace": namespace},
        "spec": {"replicas": 4},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(rollout))
    cluster.kubectl(
        "patch",
        "rollout",
        "live",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "currentPodHash": CANARY_POD_TEMPLATE_HASH,
                    "stableRS": STABLE_POD_TEMPLATE_HASH,
                }
            }
        ),
    )
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=yaml.safe_dump(
            perfbaseline(
                "rollout",
                namespace,
                live_prometheus.url,
                workloadRef={"kind": "Rollout", "name": "live"},
            )
        ),
    )
    status = wait_for(
        lambda: (s := status_of(cluster, "rollout", namespace)).get("candidate") and s,
        timeout=30,
        what="candidate identity",
    )
    assert status["candidate"]["identity"] == CANARY_POD_TEMPLATE_HASH
    assert status["candidate"]["source"] == "WorkloadRef"
    p95 = next(m for m in status["metrics"] if m["statistic"] == "p95")
    assert p95["samples"]["candidate"] >= 10  # the hash label selected real series

    # Promotion: both hashes equal -> no canary; the judged candidate changes with it.
    cluster.kubectl(
        "patch",
        "rollout",
        "live",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"currentPodHash": STABLE_POD_TEMPLATE_HASH}}),
    )
    promoted = wait_for(
        lambda: (
            (s := status_of(cluster, "rollout", namespace))["candidate"]["identity"]
            == STABLE_POD_TEMPLATE_HASH
            and s
        ),
        timeout=30,
        what="identity after promotion",
    )
    assert promoted["candidate"]["source"] == "WorkloadRef"

    missing = perfbaseline(
        "missing", namespace, live_prometheus.url, workloadRef={"kind": "Rollout", "name": "nope"}
    )
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(missing))
    gone = wait_for(
        lambda: (
            (c := condition(cluster.get("pb", "missing", namespace), "Ready"))
            and c["reason"] != "Pending"  # first sight, before the evaluation
            and c
        ),
        timeout=30,
        what="Ready on a missing workload",
    )
    assert gone["status"] == "False" and gone["reason"] == "WorkloadNotFound"


def exported(operator_env: dict[str, str], name: str, namespace: str) -> list[Any]:
    """The operator's /metrics samples about one PerfBaseline (none while it is not
    listening yet)."""
    port = operator_env["PERFGUARD_HTTP_PORT"]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            page = response.read().decode()
    except OSError:
        return []
    ours = {"kind": "PerfBaseline", "namespace": namespace, "name": name}
    return [
        sample
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if all(sample.labels.get(k) == v for k, v in ours.items())
    ]


def test_a_delta_is_exported_only_while_the_status_shows_one(
    cluster: Cluster,
    namespace: str,
    operator_env: dict[str, str],
    run_operator: object,
    live_prometheus: LiveData,
) -> None:
    """perfguard_metric_delta follows status.metrics: when the metric that had a delta
    leaves the spec for one with no data, its series goes, as perfguard_metric_ci95's do."""
    labels = {
        "candidate": {"matchLabels": {"track": "canary"}},
        "stable": {"matchLabels": {"track": "stable"}},
    }
    body = perfbaseline("moving", namespace, live_prometheus.url, **labels)
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))

    def delta_metrics() -> set[str]:
        return {
            s.labels["metric"]
            for s in exported(operator_env, "moving", namespace)
            if s.name == "perfguard_metric_delta"
        }

    wait_for(lambda: delta_metrics() == {"latency"}, timeout=60, what="a latency delta")
    absent = {
        "name": "queue",
        "type": "Latency",
        "histogram": "absent_request_duration_seconds",
        "thresholds": {"p95": {"maxIncrease": "2ms"}},
    }
    patch = json.dumps({"spec": {"metrics": [absent]}})
    cluster.kubectl("patch", "pb", "moving", "-n", namespace, "--type=merge", "-p", patch)
    status = wait_status(
        cluster,
        "moving",
        namespace,
        "the new metric judged",
        lambda s: (
            s.get("observedGeneration") == 2
            and {m["name"] for m in s.get("metrics") or []} == {"queue"}
        ),
        timeout=60,
    )
    assert all(m.get("delta") is None for m in status["metrics"]), status["metrics"]
    assert delta_metrics() == set(), "the removed metric's delta is still exported"
    assert not [
        s for s in exported(operator_env, "moving", namespace) if s.name == "perfguard_metric_ci95"
    ]


def test_new_resources_show_ready_unknown_while_their_first_evaluation_waits(
    cluster: Cluster,
    namespace: str,
    operator_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DESIGN: conditions on first sight, even as Unknown. One evaluation slot and a
    Prometheus that does not answer (each first evaluation runs into its 15 s timeout):
    both new PerfBaselines show Ready=Unknown (Pending) within seconds, the second while
    it still waits for the slot, instead of no condition at all until its evaluation."""
    from kopf.testing import KopfRunner

    from tests.e2e.faultproxy import fault_proxy

    monkeypatch.setenv("PERFGUARD_EVALUATION_SLOTS", "1")
    args = ["run", "--standalone", "--namespace", namespace, "-m", "perfguard.handlers"]
    names = ("first", "second")
    with fault_proxy("http://127.0.0.1:9") as proxy:
        proxy.mode, proxy.delay_s = "delay", 120.0
        for name in names:
            body = perfbaseline(name, namespace, proxy.url, comparison="Historical")
            body["spec"]["prometheus"]["timeout"] = "15s"
            cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        with KopfRunner(args, timeout=90) as runner:
            for name in names:
                ready = wait_for(
                    lambda n=name: condition(cluster.get("pb", n, namespace), "Ready"),  # type: ignore[misc]
                    timeout=10,
                    what=f"a Ready condition on {name}",
                )
                assert (ready["status"], ready["reason"]) == ("Unknown", "Pending"), ready
                assert ready["observedGeneration"] == 1
            shown = {n: status_of(cluster, n, namespace) for n in names}
            assert not any(s.get("lastEvaluationTime") for s in shown.values()), shown
            assert not any("observedGeneration" in s for s in shown.values()), shown
            described = cluster.kubectl("get", "pb", "-n", namespace, "-o", "wide").stdout
            assert described.count("Pending") == 2, described
            timed_out = wait_for(
                lambda: (
                    (c := condition(cluster.get("pb", "first", namespace), "Ready"))
                    and c["reason"] != "Pending"
                    and c
                ),
                timeout=40,
                what="the first evaluation's Ready",
            )
            assert timed_out["reason"] == "PrometheusTimeout", timed_out
            port = operator_env["PERFGUARD_HTTP_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                page = reply.read().decode()
            pending = [
                s.value
                for family in text_string_to_metric_families(page)
                for s in family.samples
                if s.name == "perfguard_status_patches_total" and s.labels["cause"] == "pending"
            ]
            assert pending == [2.0], "one first-sight patch per new resource"
            reasons = [e["reason"] for e in cluster.events(namespace)]
            assert "Pending" not in reasons, reasons
        assert runner.exception is None, runner.output
