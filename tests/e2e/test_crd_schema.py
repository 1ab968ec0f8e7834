"""The CRDs against a real kube-apiserver: samples accepted, nonsense rejected at apply time.

The cases are tests/spec_cases.py's, which tests/unit/test_model_parity.py gives to the
Python side: what the server refuses here, perfguard must refuse without a server."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster
from tests.spec_cases import INVALID, VALID_EDGES, edit, sample

pytestmark = pytest.mark.e2e


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


@pytest.mark.parametrize(("path", "value"), VALID_EDGES)
def test_edge_cases_are_accepted(
    cluster: Cluster, namespace: str, path: str | tuple[str, ...], value: Any
) -> None:
    code, output = apply(cluster, edit(sample("perfbaseline", namespace), path, value))
    assert code == 0, output


@pytest.mark.parametrize(("name", "path", "value", "expected"), INVALID)
def test_invalid_specs_are_rejected_naming_the_field(
    cluster: Cluster,
    namespace: str,
    name: str,
    path: str | tuple[str, ...],
    value: Any,
    expected: str | tuple[str, ...],
) -> None:
    doc = edit(sample(name, namespace), path, value)
    code, output = apply(cluster, doc)
    assert code != 0, f"the server accepted an invalid {name}:\n{output}"
    for fragment in (expected,) if isinstance(expected, str) else expected:
        assert fragment in output, output


# Durations the pattern refuses, in every field a CEL rule compares: one that ends in a Go
# unit (duration() cannot parse it) and one that ends in d (int() cannot).
BAD_DURATIONS = [
    pytest.param("perfbaseline", "spec.analysis.window", "10 minutes", id="analysis-window"),
    pytest.param("perfbaseline", "spec.analysis.window", "1.5d", id="analysis-window-days"),
    pytest.param("perfbaseline", "spec.analysis.step", "30 s", id="analysis-step"),
    pytest.param("perfbaseline", "spec.analysis.interval", "1 minute", id="analysis-interval"),
    pytest.param("perfbaseline", "spec.baseline.window", "7 days", id="baseline-window"),
    pytest.param("perfbaseline", "spec.prometheus.timeout", "10 seconds", id="timeout"),
    pytest.param("perfbaseline", "spec.prometheus.timeout", "1d", id="timeout-days"),
    pytest.param("capacityplan", "spec.history", "7 days", id="capacity-history"),
    pytest.param("capacityplan", "spec.step", "5 minutes", id="capacity-step"),
    pytest.param("envparity", "spec.interval", "1 minute", id="envparity-interval"),
]


@pytest.mark.parametrize(("name", "path", "value"), BAD_DURATIONS)
def test_a_bad_duration_gets_only_the_pattern_error(
    cluster: Cluster, namespace: str, name: str, path: str, value: str
) -> None:
    """The pattern says what is wrong; the CEL rules that compare the duration skip it
    rather than add "type conversion error ... evaluating rule" noise for the same value."""
    code, output = apply(cluster, edit(sample(name, namespace), path, value))
    assert code != 0, output
    assert f"{path}: Invalid value: {value!r}".replace("'", '"') in output, output
    assert "should match" in output, output
    for noise in ("type conversion", "invalid duration", "evaluating rule"):
        assert noise not in output, output


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
