"""api/validation.unknown_fields: the keys the API server would refuse as unknown (kubectl's
strict field validation), found without a server, while the models keep ignoring them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import Field

from perfguard.api.base import ApiModel
from perfguard.api.crdgen import model_schema
from perfguard.api.perfbaseline import PerfBaselineSpec
from perfguard.api.validation import UnknownField, unknown_fields

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "perfbaseline.yaml"


class Leaf(ApiModel):
    max_value: float | None = None
    for_: str | None = Field(default=None, alias="for")


class Other(ApiModel):
    other_key: int = 0


class Tree(ApiModel):
    leaf: Leaf | None = None
    leaves: list[Leaf] = Field(default_factory=list)
    by_name: dict[str, Leaf] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    either: Leaf | Other | None = None
    free: dict[str, Any] | None = None


def paths(value: Any) -> list[str]:
    return [f.path for f in unknown_fields(model_schema(Tree, "validation"), value)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"leaf": {"maxValue": 1, "for": "x"}}, []),
        ({"leef": {}}, ["leef"]),
        ({"leaf": {"maxValeu": 1}}, ["leaf.maxValeu"]),
        # Python names and camelCase both reach the model (populate_by_name), but only the
        # wire names are fields of the CRD: the API server refuses `max_value`.
        ({"leaf": {"max_value": 1, "for_": "x"}}, ["leaf.max_value", "leaf.for_"]),
        ({"leaves": [{"maxValue": 1}, {"mx": 2}]}, ["leaves.1.mx"]),
        ({"byName": {"anything": {"maxValue": 1}, "b": {"bad": 1}}}, ["byName.b.bad"]),
        ({"labels": {"any.key/at-all": "v"}}, []),
        ({"either": {"maxValue": 1}}, []),
        ({"either": {"otherKey": 1}}, []),
        ({"either": {"neither": 1}}, ["either.neither"]),
        ({"free": {"whatever": {"deep": [1]}}}, []),
        # Wrong types are the models' to refuse, not unknown fields.
        ({"leaf": "text", "leaves": {"a": 1}, "labels": [1]}, []),
    ],
    ids=[
        "known",
        "top-level",
        "nested",
        "python-names",
        "list-item",
        "map-values",
        "map-keys-free",
        "union-first",
        "union-second",
        "union-neither",
        "preserve-unknown",
        "wrong-types",
    ],
)
def test_unknown_fields_are_found_at_any_depth(value: dict[str, Any], expected: list[str]) -> None:
    assert paths(value) == expected


def test_a_close_name_is_suggested() -> None:
    found = unknown_fields(model_schema(Tree, "validation"), {"leaf": {"maxValeu": 1}}, "spec")
    assert found == [UnknownField("spec.leaf.maxValeu", "maxValue")]
    assert str(found[0]) == "spec.leaf.maxValeu: unknown field (did you mean maxValue?)"
    assert str(UnknownField("spec.zzz")) == "spec.zzz: unknown field"


def test_the_models_themselves_still_ignore_unknown_fields() -> None:
    """The operator reads objects the server pruned, maybe under a newer CRD: it must not
    refuse a field it does not know."""
    spec = yaml.safe_load(EXAMPLE.read_text())["spec"]
    with_unknown = {**spec, "fieldOfANewerVersion": {"x": 1}}
    assert PerfBaselineSpec.model_validate(with_unknown) == PerfBaselineSpec.model_validate(spec)
    schema = model_schema(PerfBaselineSpec, "validation")
    assert [f.path for f in unknown_fields(schema, with_unknown)] == ["fieldOfANewerVersion"]
