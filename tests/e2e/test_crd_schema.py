"""The CRDs against a real kube-apiserver: samples accepted, nonsense rejected at apply time."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def sample(name: str, namespace: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    doc["metadata"]["namespace"] = namespace
    return doc


def apply(cluster: Cluster, doc: dict[str, Any]) -> tuple[int, str]:
    result = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc), check=False)
    return result.returncode, result.stdout + result.stderr


def test_crds_are_established_with_names_and_categories(cluster: Cluster) -> None:
    out = cluster.kubectl("api-resources", "--api-group=perfguard.dev", "-o", "wide").stdout
    for plural, short in (
        ("perfbaselines", "pb"),
        ("envparities", "envp"),
        ("capacityplans", "cplan"),
    ):
        line = next(line for line in out.splitlines() if line.startswith(plural))
        assert short in line.split()
        assert "perfguard" in line  # the category: `kubectl get perfguard` lists all three


@pytest.mark.parametrize("name", ["perfbaseline", "envparity", "capacityplan"])
def test_valid_samples_are_accepted(cluster: Cluster, namespace: str, name: str) -> None:
    code, output = apply(cluster, sample(name, namespace))
    assert code == 0, output
    assert "created" in output


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is _DELETE:
        if isinstance(node, list):
            del node[int(last)]
        else:
            del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


_DELETE = object()

# (sample, path to change, new value, text(s) the server's message must contain)
INVALID = [
    pytest.param(
        "perfbaseline",
        "spec.analysis.confidence",
        "high",
        "spec.analysis.confidence",
        id="wrong-type",
    ),
    pytest.param(
        "perfbaseline",
        "spec.analysis.window",
        "10 minutes",
        "spec.analysis.window",
        id="bad-duration",
    ),
    pytest.param(
        "perfbaseline", "spec.comparison", "Sideways", "spec.comparison", id="unknown-enum"
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.mean.maxIncreasePercent",
        -5,
        "spec.metrics[0].thresholds.mean.maxIncreasePercent",
        id="negative-threshold",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.p95.maxIncrease",
        "5 parsecs",
        "spec.metrics[0].thresholds.p95.maxIncrease",
        id="bad-amount",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.p95.maxIncrease",
        5,
        ("spec.metrics[0].thresholds.p95.maxIncrease", "needs a time unit"),
        id="cel-latency-bare-number",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.p95",
        {"maxDecrease": "2"},
        ("spec.metrics[0].thresholds.p95.maxDecrease", "needs a time unit"),
        id="cel-latency-unitless-string",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.mean",
        {"max": 1},
        ("spec.metrics[0].thresholds.mean.max", "needs a time unit"),
        id="cel-latency-max-bare-number",
    ),
    pytest.param(
        "perfbaseline",
        "spec.improvement.minP95Reduction",
        2,
        ("spec.improvement.minP95Reduction", "needs a time unit"),
        id="cel-improvement-bare-number",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.thresholds.rate.maxDecrease",
        "20ms",
        ("spec.metrics[1].thresholds.rate.maxDecrease", "time units belong to Latency"),
        id="cel-time-unit-on-rate",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.thresholds.ratio",
        {"maxIncrease": "1s"},
        ("spec.metrics[2].thresholds.ratio.maxIncrease", "time units belong to Latency"),
        id="cel-time-unit-on-ratio",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.3.thresholds.value",
        {"maxDecrease": "5us"},
        ("spec.metrics[3].thresholds.value.maxDecrease", "time units belong to Latency"),
        id="cel-time-unit-on-query",
    ),
    pytest.param("perfbaseline", "spec.selector", _DELETE, "spec.selector", id="missing-selector"),
    pytest.param(
        "perfbaseline",
        "spec.analysis.step",
        "20m",
        ("spec.analysis.window", "analysis.window must be at least analysis.step"),
        id="cel-window-vs-step",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.3.query",
        _DELETE,
        "spec.metrics[3].query",
        id="cel-query-needs-query",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.histogram",
        _DELETE,
        "spec.metrics[0].histogram",
        id="cel-latency-needs-histogram",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.errorMatchers",
        _DELETE,
        "spec.metrics[2].errorMatchers",
        id="cel-errorrate-needs-matchers",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds",
        {"rate": {"maxDecrease": 1}},
        ("spec.metrics[0].thresholds", "Latency thresholds are"),
        id="cel-threshold-key-for-type",
    ),
    pytest.param(
        "perfbaseline",
        "spec.baseline.window",
        "5m",
        ("spec.baseline.window", "baseline.window must be longer than analysis.window"),
        id="cel-baseline-window",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.name",
        "latency",
        ("spec.metrics[1]", "Duplicate value"),
        id="duplicate-metric-name",
    ),
    pytest.param(
        "perfbaseline",
        "spec.selector",
        {"app.kubernetes.io/name": "api"},
        ("spec.selector", "label names must be Prometheus label names"),
        id="cel-selector-label-name",
    ),
    pytest.param(
        "perfbaseline",
        "spec.candidate.matchLabels",
        {"__name__": "x"},
        ("spec.candidate.matchLabels", "label names must be Prometheus label names"),
        id="cel-candidate-reserved-label",
    ),
    pytest.param(
        "perfbaseline",
        "spec.stable.matchLabels",
        {"1track": "stable"},
        ("spec.stable.matchLabels", "label names must be Prometheus label names"),
        id="cel-stable-label-name",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.errorMatchers",
        {"status-code": "5.."},
        ("spec.metrics[2].errorMatchers", "label names must be Prometheus label names"),
        id="cel-error-matcher-label-name",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.stageLabel",
        "__stage",
        "spec.metrics[0].stageLabel",
        id="reserved-stage-label",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.3.query",
        "avg(DCGM_FI_DEV_GPU_UTIL)",
        ("spec.metrics[3].query", "must contain {{selector}}"),
        id="cel-query-without-selector",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.3.query",
        "avg(DCGM_FI_DEV_GPU_UTIL{ {selector} })",
        ("spec.metrics[3].query", "must contain {{selector}}"),
        id="cel-query-single-braces",
    ),
    pytest.param(
        "envparity",
        "spec.namespaceSelector",
        {"matchLabels": {"env": "prod"}},
        ("spec.targets", "exactly one of targets and namespaceSelector"),
        id="cel-targets-xor-selector",
    ),
    pytest.param(
        "envparity",
        "spec.targets",
        [{"namespace": "ml-staging"}],
        ("spec.targets", "must differ from the reference"),
        id="cel-target-is-reference",
    ),
    pytest.param(
        "envparity", "spec.maxDriftPercent", 150, "spec.maxDriftPercent", id="drift-above-100"
    ),
    pytest.param(
        "capacityplan",
        "spec.thresholds.gpu",
        150,
        "spec.thresholds.gpu",
        id="capacity-threshold-range",
    ),
    pytest.param(
        "capacityplan",
        "spec.thresholds.cpu",
        0,
        ("spec.thresholds.cpu", "should be greater than 0"),
        id="capacity-threshold-zero",
    ),
    pytest.param("capacityplan", "spec.traffic", _DELETE, "spec.traffic", id="missing-traffic"),
    pytest.param(
        "capacityplan",
        "spec.step",
        "30d",
        ("spec.history", "history must be longer than step"),
        id="cel-history-vs-step",
    ),
]


# Edge cases of the rules above that must stay accepted (the models accept them too).
VALID_EDGES = [
    pytest.param("spec.metrics.3.query", "avg(x{ {{ selector }} })", id="query-spaced-selector"),
    pytest.param(
        "spec.metrics.3.query", "avg(x{\n{{\tselector\n}}\n})", id="query-whitespace-selector"
    ),
    pytest.param("spec.selector", {"_": "a", "_x": "b", "a__b": "c"}, id="underscore-labels"),
    pytest.param(
        "spec.metrics.0.thresholds.p95",
        {"maxIncrease": "0.005s", "maxDecrease": "500us", "max": "250ms"},
        id="latency-units",
    ),
    pytest.param(
        "spec.metrics.1.thresholds.rate",
        {"maxDecrease": "2.5", "maxIncrease": 20, "max": 900.5},
        id="rate-numbers",
    ),
]


@pytest.mark.parametrize(("path", "value"), VALID_EDGES)
def test_edge_cases_are_accepted(cluster: Cluster, namespace: str, path: str, value: Any) -> None:
    code, output = apply(cluster, _set(sample("perfbaseline", namespace), path, value))
    assert code == 0, output


@pytest.mark.parametrize(("name", "path", "value", "expected"), INVALID)
def test_invalid_specs_are_rejected_naming_the_field(
    cluster: Cluster,
    namespace: str,
    name: str,
    path: str,
    value: Any,
    expected: str | tuple[str, ...],
) -> None:
    doc = _set(sample(name, namespace), path, value)
    code, output = apply(cluster, doc)
    assert code != 0, f"the server accepted an invalid {name}:\n{output}"
    for fragment in (expected,) if isinstance(expected, str) else expected:
        assert fragment in output, output


def test_kubectl_get_shows_printer_columns(cluster: Cluster, namespace: str) -> None:
    for name in ("perfbaseline", "envparity", "capacityplan"):
        assert apply(cluster, sample(name, namespace))[0] == 0
    header = cluster.kubectl("get", "pb", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "VERDICT", "CANDIDATE", "P95", "ΔP95", "AGE"]
    wide = cluster.kubectl("get", "pb", "-n", namespace, "-o", "wide").stdout.splitlines()[0]
    assert wide.split() == ["NAME", "VERDICT", "CANDIDATE", "P95", "ΔP95", "READY", "REASON", "AGE"]
    envp = cluster.kubectl("get", "envp", "-n", namespace).stdout.splitlines()[0].split()
    assert envp == ["NAME", "VERDICT", "DRIFT", "DIFFERENCES", "AGE"]
    cplan = cluster.kubectl("get", "cplan", "-n", namespace).stdout.splitlines()[0].split()
    assert cplan == ["NAME", "VERDICT", "GPU", "CPU", "MEMORY", "ANOMALIES", "AGE"]
    every = cluster.kubectl("get", "perfguard", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(every) == sorted(
        [
            "perfbaseline.perfguard.dev/resnet",
            "envparity.perfguard.dev/inference",
            "capacityplan.perfguard.dev/gpu-fleet",
        ]
    )
