"""Specs the API server refuses (and edge cases it accepts), as one table for two tests.

tests/e2e/test_crd_schema.py applies each to a real kube-apiserver with the generated CRDs;
tests/unit/test_model_parity.py gives each to the check `perfguard evaluate` and the
operator run without a server (api/validation.py). An entry added here is proven on both
sides, so the CRD's rules and their Python twins cannot drift apart unnoticed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def sample(name: str, namespace: str | None = None) -> dict[str, Any]:
    """The example resource docs/examples/NAME.yaml, in `namespace` when given."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    if namespace is not None:
        doc["metadata"]["namespace"] = namespace
    return doc


DELETE = object()
"""A value that removes the key (or list item) at the path."""


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    last = keys[-1]
    if value is DELETE:
        if isinstance(node, list):
            del node[int(last)]
        else:
            del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def edit(doc: dict[str, Any], path: str | tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `doc` with `value` at the dotted `path` (list items by index); a tuple of
    paths takes a tuple of values, set in order."""
    if isinstance(path, str):
        return _set(doc, path, value)
    for one_path, one_value in zip(path, value, strict=True):
        doc = _set(doc, one_path, one_value)
    return doc


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
    pytest.param("perfbaseline", "spec.selector", DELETE, "spec.selector", id="missing-selector"),
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
        DELETE,
        ("spec.metrics[3].query", "a Query metric needs query"),
        id="cel-query-needs-query",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.histogram",
        DELETE,
        ("spec.metrics[0].histogram", "a Latency metric needs histogram"),
        id="cel-latency-needs-histogram",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.errorMatchers",
        DELETE,
        ("spec.metrics[2].errorMatchers", "an ErrorRate metric needs errorMatchers"),
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
        ("spec.baseline.window", "baseline.window (default 7d) must be longer than"),
        id="cel-baseline-window",
    ),
    # Either object left out: its window is the default, and still compared.
    pytest.param(
        "perfbaseline",
        ("spec.analysis", "spec.baseline.window"),
        (DELETE, "10m"),
        ("spec.baseline.window", "must be longer than analysis.window (default 10m)"),
        id="cel-baseline-window-vs-default-analysis",
    ),
    pytest.param(
        "perfbaseline",
        ("spec.baseline", "spec.analysis.window"),
        (DELETE, "7d"),
        ("spec.baseline.window", "baseline.window (default 7d) must be longer than"),
        id="cel-default-baseline-vs-analysis-window",
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
    # Kubernetes' LabelSelector rules, on the one selector model every kind uses.
    pytest.param(
        "envparity",
        "spec.workloads.selector",
        {"matchExpressions": [{"key": "tier", "operator": "In"}]},
        (
            "spec.workloads.selector.matchExpressions[0].values",
            "values must be given when operator is In or NotIn",
        ),
        id="cel-selector-in-without-values",
    ),
    pytest.param(
        "envparity",
        "spec.workloads.selector",
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": []}]},
        (
            "spec.workloads.selector.matchExpressions[0].values",
            "values must be given when operator is In or NotIn",
        ),
        id="cel-selector-notin-empty-values",
    ),
    pytest.param(
        "capacityplan",
        "spec.nodes.selector",
        {"matchExpressions": [{"key": "gpu", "operator": "Exists", "values": ["true"]}]},
        (
            "spec.nodes.selector.matchExpressions[0].values",
            "values must be empty when operator is Exists or DoesNotExist",
        ),
        id="cel-selector-exists-with-values",
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
    pytest.param("capacityplan", "spec.traffic", DELETE, "spec.traffic", id="missing-traffic"),
    pytest.param(
        "capacityplan",
        "spec.step",
        "30d",
        ("spec.history", "history must be longer than step"),
        id="cel-history-vs-step",
    ),
    # The rules below were CEL only until `perfguard evaluate` crashed on the first or
    # evaluated a broken spec; each has a Python twin now (api/cel.py).
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.counter",
        DELETE,
        ("spec.metrics[1].counter", "Throughput and ErrorRate metrics need counter"),
        id="cel-throughput-needs-counter",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.counter",
        DELETE,
        ("spec.metrics[2].counter", "Throughput and ErrorRate metrics need counter"),
        id="cel-errorrate-needs-counter",
    ),
    pytest.param(
        "perfbaseline",
        "spec.analysis",
        {"window": "1m", "step": "5m"},
        ("spec.analysis.window", "analysis.window must be at least analysis.step"),
        id="cel-window-below-step",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.thresholds",
        {"p95": {"max": "5ms"}},
        ("spec.metrics[1].thresholds", "Throughput thresholds are keyed rate"),
        id="cel-throughput-threshold-key",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.2.thresholds",
        {"rate": {"max": 1}},
        ("spec.metrics[2].thresholds", "ErrorRate thresholds are keyed ratio"),
        id="cel-errorrate-threshold-key",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.3.thresholds",
        {"ratio": {"max": 1}},
        ("spec.metrics[3].thresholds", "Query thresholds are keyed value"),
        id="cel-query-threshold-key",
    ),
    pytest.param(
        "perfbaseline",
        ("spec.comparison", "spec.stable"),
        ("Concurrent", DELETE),
        ("spec.comparison", "Concurrent comparison needs workloadRef, or both candidate"),
        id="cel-concurrent-needs-tracks",
    ),
    # Tracks that do not exclude each other: the stable series would include the
    # candidate's (or be the same), and a canary twice as slow passed.
    pytest.param(
        "perfbaseline",
        "spec.stable.matchLabels",
        {},
        ("spec.stable", "candidate and stable must exclude each other"),
        id="cel-stable-matches-everything",
    ),
    pytest.param(
        "perfbaseline",
        "spec.stable.matchLabels",
        {"service": "resnet"},
        ("spec.stable", "candidate and stable must exclude each other"),
        id="cel-stable-adds-nothing-to-selector",
    ),
    pytest.param(
        "perfbaseline",
        "spec.stable.matchLabels",
        {"track": "canary"},
        ("spec.stable", "candidate and stable must exclude each other"),
        id="cel-stable-same-as-candidate",
    ),
    pytest.param(
        "perfbaseline",
        "spec.stable.matchLabels",
        {"role": "stable"},
        ("spec.stable", "candidate and stable must exclude each other"),
        id="cel-tracks-without-a-common-label",
    ),
    pytest.param(
        "perfbaseline",
        "spec.selector",
        {"service": "resnet", "track": "stable"},
        (
            "spec.candidate.matchLabels",
            "candidate.matchLabels must not give a label of selector another value",
            "label: track",
        ),
        id="cel-candidate-contradicts-selector",
    ),
    pytest.param(
        "perfbaseline",
        "spec.selector",
        {"service": "resnet", "track": "canary"},
        (
            "spec.stable.matchLabels",
            "stable.matchLabels must not give a label of selector another value",
            "label: track",
        ),
        id="cel-stable-contradicts-selector",
    ),
    pytest.param(
        "perfbaseline",
        ("spec.workloadRef", "spec.selector"),
        (
            {"kind": "Rollout", "name": "resnet"},
            {"service": "resnet", "rollouts_pod_template_hash": "6d4f8b"},
        ),
        ("spec.selector", "selector must not name workloadRef.hashLabel"),
        id="cel-selector-names-hash-label",
    ),
    pytest.param(
        "perfbaseline",
        "spec.analysis.interval",
        "500ms",
        ("spec.analysis.interval", "must be at least 1s"),
        id="cel-interval-below-1s",
    ),
    pytest.param(
        "perfbaseline",
        "spec.prometheus.timeout",
        "6m",
        ("spec.prometheus.timeout", "timeout must be between 1ms and 5m"),
        id="cel-timeout-range",
    ),
    pytest.param(
        "perfbaseline",
        "spec.prometheus",
        {
            "url": "http://prometheus.monitoring:9090",
            "bearerTokenSecret": {"name": "prom", "key": "token"},
            "basicAuthSecret": {"name": "prom-basic"},
        },
        ("spec.prometheus.basicAuthSecret", "give at most one of bearerTokenSecret and"),
        id="cel-one-auth",
    ),
    pytest.param(
        "perfbaseline",
        "spec.prometheus.tls",
        {"serverName": "prometheus"},
        ("spec.prometheus.tls", "tls needs an https:// url"),
        id="cel-tls-needs-https",
    ),
    pytest.param(
        "perfbaseline",
        "spec.prometheus",
        {
            "url": "https://prometheus.monitoring:9090",
            "tls": {"caSecret": {"name": "ca", "key": "ca.crt"}, "insecureSkipVerify": True},
        },
        ("spec.prometheus.tls.insecureSkipVerify", "insecureSkipVerify would ignore caSecret"),
        id="cel-ca-or-insecure",
    ),
    pytest.param(
        "envparity",
        "spec.interval",
        "0.5s",
        ("spec.interval", "must be at least 1s"),
        id="cel-envparity-interval-below-1s",
    ),
    pytest.param(
        "capacityplan",
        "spec.step",
        "100ms",
        ("spec.step", "must be at least 1s"),
        id="cel-capacityplan-step-below-1s",
    ),
    # OpenAPI rules (not CEL) that pydantic did not enforce before either.
    pytest.param(
        "perfbaseline",
        "spec.prometheus.timeout",
        "1.123456789ms1.123456789ms1.12345ms",  # the pattern's, but 35 characters
        "spec.prometheus.timeout",
        id="timeout-too-long",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.p95",
        {},
        "spec.metrics[0].thresholds.p95",
        id="empty-threshold-rule",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.thresholds",
        {},
        "spec.metrics[1].thresholds",
        id="empty-thresholds",
    ),
    pytest.param(
        "perfbaseline",
        "spec.analysis.sustainFor",
        "1s" * 17,
        "spec.analysis.sustainFor",
        id="duration-too-long",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.thresholds.rate.maxDecrease",
        "0." + "0" * 40 + "1",
        "spec.metrics[1].thresholds.rate.maxDecrease",
        id="amount-too-long",
    ),
    pytest.param(
        "capacityplan",
        "spec.scenarios.1.name",
        "plus5",
        ("spec.scenarios[1]", "Duplicate value"),
        id="duplicate-scenario-name",
    ),
    pytest.param(
        "envparity",
        "spec.targets",
        [{"namespace": "ml-prod"}, {"namespace": "ml-prod"}],
        ("spec.targets[1]", "Duplicate value"),
        id="duplicate-target",
    ),
    pytest.param(
        "envparity",
        "spec.workloads.kinds",
        ["Deployment", "Deployment"],
        ("spec.workloads.kinds[1]", "Duplicate value"),
        id="duplicate-workload-kind",
    ),
    # Values of the wrong JSON type: the models (lax) coerced these, the API server refuses
    # them by the schema's type; `perfguard evaluate` checks the types against the schema.
    pytest.param(
        "perfbaseline",
        "spec.analysis.confidence",
        "0.95",
        ("spec.analysis.confidence", 'must be of type number: "string"'),
        id="quoted-number",
    ),
    pytest.param(
        "perfbaseline",
        "spec.baseline.minSamples",
        "50",
        ("spec.baseline.minSamples", 'must be of type integer: "string"'),
        id="quoted-integer",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.critical",
        "true",
        ("spec.metrics[0].critical", 'must be of type boolean: "string"'),
        id="quoted-boolean",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.critical",
        1,
        ("spec.metrics[0].critical", 'must be of type boolean: "integer"'),
        id="number-for-boolean",
    ),
    pytest.param(
        "perfbaseline",
        "spec.analysis.window",
        600,
        ("spec.analysis.window", 'must be of type string: "integer"'),
        id="number-for-duration",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.1.thresholds.rate.maxDecrease",
        2.5,
        ("spec.metrics[1].thresholds.rate.maxDecrease", "must be of type integer,string"),
        id="decimal-for-int-or-string",
    ),
    pytest.param(
        "envparity",
        "spec.maxDriftPercent",
        "10",
        ("spec.maxDriftPercent", 'must be of type number: "string"'),
        id="quoted-envparity-number",
    ),
    pytest.param(
        "capacityplan",
        "spec.anomalies.throttling",
        "yes",
        ("spec.anomalies.throttling", 'must be of type boolean: "string"'),
        id="quoted-capacityplan-boolean",
    ),
    # Unknown fields: kubectl's strict field validation refuses them; the models ignore
    # them (api/base.py), so `perfguard evaluate` checks them against the CRD schema.
    pytest.param(
        "perfbaseline",
        "spec.anaylsis",
        {"window": "5m"},
        ("spec.anaylsis", "unknown field"),
        id="unknown-field",
    ),
    pytest.param(
        "perfbaseline",
        "spec.metrics.0.thresholds.p95",
        {"maxIncrese": "5ms"},
        ("spec.metrics[0].thresholds.p95.maxIncrese", "unknown field"),
        id="unknown-nested-field",
    ),
    pytest.param(
        "capacityplan",
        "spec.histroy",
        "30d",
        ("spec.histroy", "unknown field"),
        id="unknown-capacityplan-field",
    ),
    pytest.param(
        "envparity",
        "spec.workloads.selector.matchLables",
        {"tier": "inference"},
        ("spec.workloads.selector.matchLables", "unknown field"),
        id="unknown-selector-field",
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
    pytest.param("spec.analysis.window", "30s", id="window-equal-to-step"),
    # JSON types as the API server sees them: an integral float is an integer there
    # (kubectl sends 50.0 as 50), and an integer is a number.
    pytest.param(
        ("spec.baseline.minSamples", "spec.metrics.1.thresholds.rate.maxDecrease"),
        (50.0, 20.0),
        id="integral-floats-as-integers",
    ),
    pytest.param(
        ("spec.metrics.2.thresholds.ratio.max", "spec.metrics.0.thresholds.mean"),
        (1, {"maxIncreasePercent": 10.0, "maxDecreasePercent": 5}),
        id="integers-as-numbers",
    ),
    pytest.param(
        ("spec.baseline.window", "spec.analysis.window"), ("11m", "10m"), id="baseline-just-longer"
    ),
    # A null field is pruned by the API server before it validates: as if absent.
    pytest.param(
        ("spec.analysis.confidence", "spec.metrics.0.critical", "spec.selector.service"),
        (None, None, None),
        id="null-fields-pruned",
    ),
    pytest.param(
        ("spec.baseline", "spec.analysis.window"), (DELETE, "6d"), id="analysis-window-in-default"
    ),
    pytest.param(
        ("spec.analysis", "spec.baseline.window"), (DELETE, "11m"), id="baseline-above-default"
    ),
    pytest.param(
        ("spec.comparison", "spec.stable", "spec.workloadRef"),
        ("Concurrent", DELETE, {"kind": "Rollout", "name": "resnet"}),
        id="concurrent-with-workload-ref",
    ),
    # Tracks may repeat a selector label with its value, and share labels besides the one
    # that tells them apart; the selector may match on a missing label (`shard=""`).
    pytest.param(
        "spec.candidate.matchLabels",
        {"service": "resnet", "track": "canary"},
        id="track-repeats-selector",
    ),
    pytest.param(
        ("spec.candidate.matchLabels", "spec.stable.matchLabels"),
        ({"track": "canary", "tier": "gpu"}, {"track": "stable", "tier": "gpu"}),
        id="tracks-share-a-label",
    ),
    pytest.param(
        "spec.candidate.matchLabels", {"track": "canary", "version": "v2"}, id="track-adds-a-label"
    ),
    pytest.param("spec.selector", {"service": "resnet", "shard": ""}, id="empty-selector-value"),
    # A track may match on a missing label: the stable pods of an Argo Rollout whose
    # canaryMetadata alone adds `role` have no `role`; `role=""` still excludes `role="canary"`.
    pytest.param(
        ("spec.candidate.matchLabels", "spec.stable.matchLabels"),
        ({"role": "canary"}, {"role": ""}),
        id="stable-without-the-canarys-label",
    ),
    pytest.param(
        ("spec.candidate.matchLabels", "spec.stable.matchLabels"),
        ({"track": "canary", "zone": ""}, {"track": "stable"}),
        id="empty-value-beside-the-telling-label",
    ),
    pytest.param(
        ("spec.workloadRef", "spec.selector"),
        (
            {"kind": "Deployment", "name": "resnet", "hashLabel": "pod_template_hash"},
            {"service": "resnet", "rollouts_pod_template_hash": "6d4f8b"},
        ),
        id="selector-names-another-hash-label",
    ),
]
