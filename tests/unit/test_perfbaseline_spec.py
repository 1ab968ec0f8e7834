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


# ---------------------------------------------------------------- tracks


def with_tracks(candidate: dict[str, str], stable: dict[str, str]) -> dict[str, Any]:
    body = with_("candidate.matchLabels", candidate)
    body["stable"] = {"matchLabels": stable}
    return body


@pytest.mark.parametrize(
    "stable",
    [
        pytest.param({}, id="matches-everything"),
        pytest.param({"service": "api"}, id="adds-nothing-to-the-selector"),
        pytest.param({"track": "canary"}, id="same-as-candidate"),
        pytest.param({"role": "stable"}, id="no-common-label"),
        pytest.param({"track": "canary", "zone": "a"}, id="a-subset-of-candidate"),
    ],
)
def test_a_stable_track_that_can_match_the_candidates_series_is_refused(
    stable: dict[str, str],
) -> None:
    # The stable series then include the canary's own: a canary at 100 against a stable at
    # 50 read as 74.9 (+33 %, under a 40 % limit) and passed; identical tracks gave 0.
    (detail,) = refused(with_tracks({"track": "canary"}, stable)).errors()
    assert detail["loc"] == ()
    assert detail["ctx"]["field_path"] == ".stable"
    assert detail["msg"].startswith("candidate and stable must exclude each other")


TRACK_LABELS = st.dictionaries(
    st.sampled_from(["track", "zone"]), st.sampled_from(["", "canary", "stable"]), max_size=2
)


def _matches(series: dict[str, str], matchers: dict[str, str]) -> bool:
    """PromQL's `name="value"`: a series without the label has the value ""."""
    return all(series.get(name, "") == value for name, value in matchers.items())


@given(TRACK_LABELS, TRACK_LABELS)
def test_accepted_tracks_can_never_select_the_same_series(
    candidate: dict[str, str], stable: dict[str, str]
) -> None:
    try:
        PerfBaselineSpec.model_validate(with_tracks(candidate, stable))
        accepted = True
    except ValidationError:
        accepted = False
    selector = BASE["selector"]
    one, other = {**selector, **candidate}, {**selector, **stable}
    # The series that has every label either track asks for, with the value asked: any
    # series matching both has these labels, so both match some series iff both match it.
    merged = {name: value for name, value in {**one, **other}.items() if value}
    overlap = _matches(merged, one) and _matches(merged, other)
    assert accepted == (not overlap), (candidate, stable)


def test_a_track_may_match_on_a_missing_label() -> None:
    """Argo Rollouts' canaryMetadata labels the canary pods only: `role="canary"` against
    `role=""` (pods without the label) selects disjoint series, and is accepted."""
    spec = PerfBaselineSpec.model_validate(with_tracks({"role": "canary"}, {"role": ""}))
    assert spec.stable is not None and spec.stable.match_labels == {"role": ""}


@pytest.mark.parametrize(
    ("selector_track", "contradicted"), [("stable", "candidate"), ("canary", "stable")]
)
def test_a_track_contradicting_the_selector_is_refused(
    selector_track: str, contradicted: str
) -> None:
    body = with_("selector", {"service": "api", "track": selector_track})
    (detail,) = refused(body).errors()
    assert detail["ctx"]["field_path"] == f".{contradicted}.matchLabels"
    assert detail["msg"].startswith(
        f"{contradicted}.matchLabels must not give a label of selector another value"
    )
    assert detail["msg"].endswith("; label: track")


def test_tracks_may_repeat_a_selector_label_and_the_selector_may_match_a_missing_one() -> None:
    body = with_tracks({"service": "api", "track": "canary"}, {"track": "stable"})
    body["selector"] = {"service": "api", "shard": ""}
    PerfBaselineSpec.model_validate(body)


def with_hash_in_selector(workload_ref: dict[str, str]) -> dict[str, Any]:
    body = with_("selector", {"service": "api", "rollouts_pod_template_hash": "6d4f8b"})
    body["workloadRef"] = workload_ref
    return body


def test_the_selector_may_not_pin_the_workloads_hash_label() -> None:
    # The tracks' hashes come from the workload; one in the selector pins every query.
    (detail,) = refused(with_hash_in_selector({"kind": "Rollout", "name": "api"})).errors()
    assert detail["ctx"]["field_path"] == ".selector"
    assert detail["msg"].startswith(
        "selector must not name workloadRef.hashLabel (default rollouts_pod_template_hash)"
    )


def test_the_selector_may_name_a_label_that_is_not_the_hash_label() -> None:
    ref = {"kind": "Deployment", "name": "api", "hashLabel": "pod_template_hash"}
    PerfBaselineSpec.model_validate(with_hash_in_selector(ref))


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
    assert detail["loc"] == ("metrics", 1, "query")
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


# ---------------------------------------------------------------- threshold units

LATENCY_RULES = ("maxIncrease", "maxDecrease", "max")


@pytest.mark.parametrize("key", LATENCY_RULES)
@pytest.mark.parametrize("bare", [5, "5", 0.005])
def test_a_latency_threshold_without_a_time_unit_is_refused(key: str, bare: object) -> None:
    # `maxIncrease: 5` was read as 5 s (a 5000 ms limit).
    error = refused(with_("metrics.0.thresholds", {"p95": {key: bare}}))
    (detail,) = error.errors()
    assert detail["loc"] == ("metrics", 0, "thresholds", "p95", key)
    assert "needs a time unit" in detail["msg"]


def test_an_improvement_without_a_time_unit_is_refused() -> None:
    body = {**BASE, "improvement": {"minP95Reduction": 2}}
    (detail,) = refused(body).errors()
    assert detail["loc"] == ("improvement", "minP95Reduction")
    assert "needs a time unit" in detail["msg"]


@pytest.mark.parametrize(
    ("metric", "statistic", "key", "value"),
    [
        ({"type": "Throughput", "counter": "req_total"}, "rate", "maxDecrease", "20ms"),
        ({"type": "Throughput", "counter": "req_total"}, "rate", "maxIncrease", "1s"),
        (
            {"type": "ErrorRate", "counter": "req_total", "errorMatchers": {"code": "5.."}},
            "ratio",
            "maxIncrease",
            "1s",
        ),
        ({"type": "Query", "query": "avg(x{ {{selector}} })"}, "value", "maxIncrease", "5ms"),
        ({"type": "Query", "query": "avg(x{ {{selector}} })"}, "value", "max", "5ms"),
    ],
)
def test_a_time_unit_on_a_non_latency_threshold_is_refused(
    metric: dict[str, Any], statistic: str, key: str, value: str
) -> None:
    # `maxDecrease: 20ms` on a rate was read as 0.02 requests/s.
    body = with_("metrics.1", {"name": "m", **metric, "thresholds": {statistic: {key: value}}})
    (detail,) = refused(body).errors()
    assert detail["loc"] == ("metrics", 1, "thresholds", statistic, key)
    assert key == "max" or "time units belong to Latency thresholds" in detail["msg"]


def test_thresholds_in_their_units_are_accepted_and_read_in_base_units() -> None:
    body = with_(
        "metrics.0.thresholds",
        {"p95": {"maxIncrease": "5ms", "max": "0.25s"}, "mean": {"maxDecrease": "500us"}},
    )
    body["metrics"].append(
        {
            "name": "rate",
            "type": "Throughput",
            "counter": "req_total",
            "thresholds": {"rate": {"maxDecrease": "2.5", "maxIncrease": 20, "max": 900.5}},
        }
    )
    body["improvement"] = {"minP95Reduction": "2ms"}
    spec = PerfBaselineSpec.model_validate(body)
    p95, mean = spec.metrics[0].thresholds.p95, spec.metrics[0].thresholds.mean
    assert p95 is not None and mean is not None
    assert (p95.max_increase, p95.max, mean.max_decrease) == pytest.approx((0.005, 0.25, 0.0005))
    rate = spec.metrics[2].thresholds.rate
    assert rate is not None
    assert (rate.max_decrease, rate.max_increase, rate.max) == pytest.approx((2.5, 20.0, 900.5))
    assert spec.improvement is not None
    assert spec.improvement.min_p95_reduction == pytest.approx(0.002)


def test_a_dumped_spec_validates_again_to_the_same_spec() -> None:
    body = with_("metrics.0.thresholds", {"p95": {"maxIncrease": "5ms", "max": "0.3s"}})
    body["improvement"] = {"minP95Reduction": "2.5us"}
    spec = PerfBaselineSpec.model_validate(body)
    wire = spec.to_wire()
    assert wire["metrics"][0]["thresholds"]["p95"] == {"maxIncrease": "5ms", "max": "300ms"}
    assert PerfBaselineSpec.model_validate(wire) == spec
