"""The lean diff-base storage builds exactly the essence Kopf's own one builds."""

from __future__ import annotations

import copy
from typing import Any

import kopf
import pytest

from perfguard.handlers.diffbase import LeanAnnotationsDiffBaseStorage

PREFIX, KEY = "perfguard.dev", "last-handled-configuration"


def body(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "uid": "0f6c",
            "resourceVersion": "812",
            "generation": 3,
            "finalizers": ["perfguard.dev/finalizer"],
            "managedFields": [
                {"manager": "perfguard", "fieldsV1": {"f:status": {"f:verdict": {}}}},
            ],
            **metadata,
        },
        "spec": {"selector": {"matchLabels": {"app": "checkout"}}, "metrics": [{"name": "p95"}]},
        "status": {"verdict": "Pass", "metrics": [{"name": "p95", "ci95": [0.1, 0.2]}]},
    }


CASES = {
    "plain": body(),
    "labels and annotations": body(
        labels={"team": "payments"},
        annotations={
            "note": "kept",
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            f"{PREFIX}/{KEY}": '{"spec": {}}',
            "other-operator.example/last-handled-configuration": "{}",
            "other-operator.example/handler-x": "{}",
        },
    ),
    "owned ReplicaSet": {
        **body(ownerReferences=[{"kind": "Deployment", "name": "web", "uid": "1"}]),
        "kind": "ReplicaSet",
    },
    "no status, no metadata": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"}},
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("extra", [None, ["status.verdict"], ["metadata.managedFields"]])
def test_same_essence_as_kopf(name: str, extra: list[str] | None) -> None:
    raw = CASES[name]
    kept = copy.deepcopy(raw)
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY)
    lean = LeanAnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY)
    expected = kopfs.build(body=kopf.Body(raw), extra_fields=extra)
    got = lean.build(body=kopf.Body(raw), extra_fields=extra)
    assert got == expected
    assert raw == kept  # the body the watch delivered is left alone
    if name == "labels and annotations" and extra is None:
        # Not vacuous: labels and the unrelated annotation are in it, the status is not.
        assert got["metadata"]["labels"] == {"team": "payments"}
        assert "note" in got["metadata"]["annotations"]
        assert f"{PREFIX}/{KEY}" not in got["metadata"]["annotations"]
        assert "status" not in got


def test_the_essence_is_a_copy() -> None:
    raw = body(labels={"team": "payments"})
    got = LeanAnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY).build(body=kopf.Body(raw))
    got["spec"]["metrics"][0]["name"] = "changed"
    got["metadata"]["labels"]["team"] = "changed"
    assert raw["spec"]["metrics"][0]["name"] == "p95"
    assert raw["metadata"]["labels"]["team"] == "payments"
