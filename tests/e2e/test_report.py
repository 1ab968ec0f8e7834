"""perfguard report against a real kube-apiserver: statuses written as the operator would."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from perfguard.times import format_time
from tests.e2e.cluster import Cluster
from tests.spec_cases import sample

pytestmark = pytest.mark.e2e

NOW = "2026-11-28T12:00:00Z"


def ready() -> list[dict[str, Any]]:
    return [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Evaluated",
            "message": "ok",
            "lastTransitionTime": NOW,
            "observedGeneration": 1,
        }
    ]


def put(cluster: Cluster, doc: dict[str, Any], name: str, status: dict[str, Any]) -> None:
    doc["metadata"]["name"] = name
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    short = {"PerfBaseline": "pb", "EnvParity": "envp", "CapacityPlan": "cplan"}[doc["kind"]]
    cluster.kubectl(
        "patch",
        short,
        name,
        "-n",
        doc["metadata"]["namespace"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(
            {
                "status": {
                    "conditions": ready(),
                    "observedGeneration": 1,
                    "lastEvaluationTime": format_time(datetime.now(UTC)),
                    **status,
                }
            }
        ),
    )


def report(
    cluster: Cluster, *args: str, encoding: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = cluster.env() if encoding is None else {**cluster.env(), "PYTHONIOENCODING": encoding}
    return subprocess.run(
        [sys.executable, "-m", "perfguard.cli", "report", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_of_a_mixed_namespace(cluster: Cluster, namespace: str) -> None:
    metric = {
        "name": "latency",
        "statistic": "p95",
        "comparison": "Concurrent",
        "unit": "seconds",
        "baseline": 0.045,
        "current": 0.053,
        "delta": 0.008,
        "ci95": [0.007, 0.009],
        "verdict": "Regressed",
    }
    put(cluster, sample("perfbaseline", namespace), "passing", {"verdict": "Pass"})
    put(
        cluster,
        sample("perfbaseline", namespace),
        "regressing",
        {"verdict": "Fail", "candidate": {"identity": "7f9b6c5d4"}, "metrics": [metric]},
    )
    put(
        cluster,
        sample("envparity", namespace),
        "drifted",
        {
            "verdict": "Drifted",
            "driftPercent": 12.5,
            "totalDifferences": 1,
            "differences": [
                {
                    "namespace": "ml-prod",
                    "workload": "server",
                    "kind": "Deployment",
                    "field": "image",
                    "reference": "sha256:a",
                    "target": "sha256:b",
                }
            ],
        },
    )
    put(
        cluster,
        sample("capacityplan", namespace),
        "near",
        {
            "verdict": "NearLimit",
            "projections": [
                {
                    "scenario": "plus20",
                    "growthPercent": 20,
                    "resource": "gpu",
                    "projected": 87.8,
                    "threshold": 90,
                    "assessment": "NearLimit",
                    "recommendation": "no scaling needed yet",
                }
            ],
        },
    )
    text = report(cluster, "-n", namespace)
    assert text.returncode == 1, text.stderr  # NEEDS FIX
    assert "# perfguard report: **NEEDS FIX**" in text.stdout
    assert f"{namespace}/regressing" in text.stdout and "Hold or roll back 7f9b6c5d4" in text.stdout
    assert "Deployment/server image" in text.stdout
    assert "plus20" in text.stdout and "87.8%" in text.stdout
    as_json = report(cluster, "-n", namespace, "-o", "json")
    data = json.loads(as_json.stdout)
    assert data["verdict"] == "NEEDS FIX"
    reasons = {(f["kind"], f["name"].split("/")[1], f["verdict"]) for f in data["findings"]}
    assert reasons == {
        ("PerfBaseline", "regressing", "NEEDS FIX"),
        ("EnvParity", "drifted", "NEEDS FIX"),
        ("CapacityPlan", "near", "AT RISK"),
    }
    # Only the passing resource: STABLE.
    for kind, name in (("pb", "regressing"), ("envp", "drifted"), ("cplan", "near")):
        cluster.kubectl("delete", kind, name, "-n", namespace)
    stable = report(cluster, "-n", namespace)
    assert stable.returncode == 0 and "**STABLE**" in stable.stdout, stable.stdout


def test_report_to_a_terminal_that_is_not_utf8(cluster: Cluster, namespace: str) -> None:
    """A status message's "—" (as the operator writes EnvParity's) raised UnicodeEncodeError
    under an ASCII locale: a traceback and exit 1, NEEDS FIX whatever the fleet. Now it is
    written plainly and the exit is the report's verdict."""
    message = (
        "ml-prod: 1 of 8 compared items differ (12.5%; limit 0.5%) — ml-prod: Deployment/"
        "resnet-server annotation/perfguard.dev/model-version: resnet50-v7 → resnet50-v8"
    )
    status = {"verdict": "Unverified", "message": message, "driftPercent": 12.5}
    put(cluster, sample("envparity", namespace), "inference", status)
    utf8 = report(cluster, "-n", namespace)
    assert utf8.returncode == 2 and message in utf8.stdout, utf8.stdout  # AT RISK
    ascii = report(cluster, "-n", namespace, encoding="ascii")
    assert ascii.returncode == 2, ascii.stderr
    assert "Traceback" not in ascii.stderr
    assert ascii.stdout.isascii() and "**AT RISK**" in ascii.stdout
    assert ascii.stdout == utf8.stdout.replace("—", "-").replace("→", "->")


def test_an_out_of_date_verdict_is_at_risk(cluster: Cluster, namespace: str) -> None:
    doc = sample("perfbaseline", namespace)
    put(cluster, doc, "canary", {"verdict": "Pass"})
    assert report(cluster, "-n", namespace).returncode == 0  # STABLE
    # A spec change: the API server bumps metadata.generation, the verdict is for 1.
    doc["spec"]["analysis"]["interval"] = "2m"
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    changed = report(cluster, "-n", namespace)
    assert changed.returncode == 2, changed.stdout + changed.stderr  # AT RISK
    assert "spec not evaluated yet" in changed.stdout and "generation 2" in changed.stdout
    # Evaluated for generation 2, but 3 × 2m + 5m and a second ago: stale.
    old = datetime.now(UTC) - timedelta(minutes=11, seconds=1)
    status = {"observedGeneration": 2, "lastEvaluationTime": format_time(old)}
    cluster.kubectl(
        "patch",
        "pb",
        "canary",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    stale = report(cluster, "-n", namespace)
    assert stale.returncode == 2 and "stale: last evaluated" in stale.stdout, stale.stdout
    # ...unless the operator refreshes statuses less often.
    assert report(cluster, "-n", namespace, "--status-refresh", "10m").returncode == 0


def test_report_defaults_to_the_contexts_namespace(
    cluster: Cluster, namespace: str, tmp_path: Any
) -> None:
    """As kubectl: without -n, the kubeconfig's current context names the namespace."""
    put(cluster, sample("perfbaseline", namespace), "passing", {"verdict": "Pass"})
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    current = config["current-context"]
    for context in config["contexts"]:
        if context["name"] == current:
            context["context"]["namespace"] = namespace
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "perfguard.cli", "report", "-o", "json"],
        env={**cluster.env(), "KUBECONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr  # STABLE
    report = json.loads(result.stdout)
    names = [r["name"] for r in report["resources"]["PerfBaseline"]]
    assert names == [f"{namespace}/passing"]
    assert report["namespace"] == namespace


def test_report_without_a_cluster_says_so(tmp_path: Any) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    import os

    result = subprocess.run(
        [sys.executable, "-m", "perfguard.cli", "report", "-A"],
        env={**os.environ, "KUBECONFIG": str(broken)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "perfguard report:" in result.stderr
