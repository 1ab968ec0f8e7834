"""PerfBaseline specs that cannot be judged are refused by the model, naming the field.

The CRD refuses the same specs at `kubectl apply` (tests/e2e/test_crd_schema.py); these
are the pydantic side, which `perfguard evaluate -f` and the operator's InvalidSpec rely on.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.sources import promql

BASE: dict[str, Any] = {
    "selector": {"service": "api"},
    "candidate": {"matchLabels": {"track": "canary"}},
    "stable": {"matchLabels": {"track": "stable"}},
    "metrics": [
        {
            "name": "latency",
            "type": "Latency",
            "histogram": "req_seconds",
            "stageLabel": "stage",
            "thresholds": {"p95": {"maxIncrease": "5ms"}},
        },
        {
            "name": "errors",
            "type": "ErrorRate",
            "counter": "req_total",
            "errorMatchers": {"code": "5.."},
            "thresholds": {"ratio": {"max": 0.01}},
        },
    ],
}


def with_(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    node: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return body


def refused(body: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        PerfBaselineSpec.model_validate(body)
    return caught.value


def test_the_base_spec_is_valid() -> None:
    PerfBaselineSpec.model_validate(BASE)


# ---------------------------------------------------------------- label names


@pytest.mark.parametrize(
    ("path", "labels", "loc"),
    [
        ("selector", {"app.kubernetes.io/name": "api"}, ("selector",)),
        ("selector", {"__name__": "up"}, ("selector",)),
        ("candidate.matchLabels", {"1track": "canary"}, ("candidate", "matchLabels")),
        ("stable.matchLabels", {"pod-template": "x"}, ("stable", "matchLabels")),
        ("metrics.1.errorMatchers", {"status code": "5.."}, ("metrics", 1, "errorMatchers")),
    ],
)
def test_label_names_that_prometheus_refuses_are_refused(
    path: str, labels: dict[str, str], loc: tuple[str | int, ...]
) -> None:
    error = refused(with_(path, labels))
    (detail,) = error.errors()
    assert detail["loc"] == loc
    assert "label names must be Prometheus label names" in detail["msg"]
    assert repr(next(iter(labels))) in detail["msg"]  # the offending name is quoted


@pytest.mark.parametrize("name", ["__stage", "1stage", "stage.name"])
def test_a_stage_label_prometheus_refuses_is_refused(name: str) -> None:
    error = refused(with_("metrics.0.stageLabel", name))
    assert error.errors()[0]["loc"] == ("metrics", 0, "stageLabel")


def test_label_names_prometheus_accepts_are_accepted() -> None:
    labels = {"_": "a", "_x": "b", "a__b": "c", "A9_": "d", "app_kubernetes_io_name": "e"}
    spec = PerfBaselineSpec.model_validate(with_("selector", labels))
    assert spec.selector == labels


@given(st.text(alphabet="aZ09_._-/ é", max_size=6))
def test_the_spec_accepts_exactly_the_label_names_the_query_builder_does(name: str) -> None:
    try:
        promql.label_name(name)
        builder = True
    except promql.UnsafeQueryError:
        builder = False
    try:
        PerfBaselineSpec.model_validate(with_("selector", {name: "x"}))
        model = True
    except ValidationError:
        model = False
    assert model == builder, name


# ---------------------------------------------------------------- Query templates


def query_metric(query: str) -> dict[str, Any]:
    return {"name": "gpu", "type": "Query", "query": query, "thresholds": {"value": {"max": 90}}}


@pytest.mark.parametrize(
    "query",
    [
        "avg(DCGM_FI_DEV_GPU_UTIL)",
        "avg(gpu_util{selector})",
        "avg(gpu_util{ {selector} })",
        "avg(gpu_util{ {{selectors}} })",
        "avg(gpu_util{ {{ Selector }} })",
    ],
)
def test_a_query_without_the_selector_placeholder_is_refused(query: str) -> None:
    error = refused(with_("metrics.1", query_metric(query)))
    (detail,) = error.errors()
    assert detail["loc"] == ("metrics", 1)
    assert "must contain {{selector}}" in detail["msg"]


@pytest.mark.parametrize(
    "query",
    [
        "avg(gpu_util{ {{selector}} })",
        "avg(gpu_util{ {{ selector }} })",
        "avg(gpu_util{ {{\tselector\n}} })",
        'sum(rate(x_total{ {{selector}}, code=~"5.." }[5m]))',
    ],
)
def test_a_query_with_the_placeholder_is_accepted(query: str) -> None:
    PerfBaselineSpec.model_validate(with_("metrics.1", query_metric(query)))


def test_the_placeholder_is_only_required_of_query_metrics() -> None:
    body = with_("metrics.1.query", "up")  # ignored on an ErrorRate metric
    PerfBaselineSpec.model_validate(body)


@given(
    st.lists(
        st.sampled_from(["{", "}", "{{", "}}", " ", "\t", "\n", "\v", "selector", "x"]),
        max_size=8,
    ).map("".join)
)
def test_the_model_requires_exactly_what_the_template_engine_expands(template: str) -> None:
    expanded = promql.render_template(template, "\0") != template
    try:
        PerfBaselineSpec.model_validate(with_("metrics.1", query_metric(template)))
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == expanded, repr(template)
