"""Every field of the three CRDs says what it is.

`kubectl explain perfbaseline.spec` is where docs/examples send users for every field, and
it prints `<no description>` for a field whose schema has none. The descriptions come from
the models (`Field(description=...)`, else the nested model's docstring), so a field added
without one fails here rather than in front of a user.

What must carry a description: the spec (and status) object itself and every property
below it, at any depth, including the properties of objects inside arrays (`items`) and
inside maps (`additionalProperties`).

Exempt, on purpose:
- the `items` node of an array and the `additionalProperties` node of a map: they are the
  list's elements and the map's values (a label value in `selector` or `matchLabels`, a
  regex in `errorMatchers`, a name in `ignore.env`), which the list's or map's own
  description covers; `kubectl explain` shows that one for them;
- the branches of `anyOf` (Kubernetes' int-or-string): a structural schema may not carry a
  description there.
"""

from __future__ import annotations

from typing import Any

import pytest

from perfguard.api.crdgen import crd
from perfguard.api.resources import RESOURCES, Resource


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """The paths of the properties under `node` (at any depth) without a description."""
    missing: list[str] = []
    for name, child in (node.get("properties") or {}).items():
        here = f"{path}.{name}"
        if not str(child.get("description") or "").strip():
            missing.append(here)
        missing.extend(undescribed(child, here))
    items = node.get("items")
    if isinstance(items, dict):
        missing.extend(undescribed(items, f"{path}[]"))
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        missing.extend(undescribed(values, f"{path}{{}}"))
    return missing


def _schema(resource: Resource, part: str) -> dict[str, Any]:
    root = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema: dict[str, Any] = root["properties"][part]
    return schema


@pytest.mark.parametrize("part", ["spec", "status"])
@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_field_has_a_description(resource: Resource, part: str) -> None:
    schema = _schema(resource, part)
    itself = [] if str(schema.get("description") or "").strip() else [part]
    missing = itself + undescribed(schema, part)
    assert not missing, (
        f"{resource.kind}: {len(missing)} field(s) without a description "
        "(give each a Field(description=...), or its model a docstring): " + ", ".join(missing)
    )


def test_the_walk_reaches_list_items_and_map_values() -> None:
    # A schema shaped like the CRDs': fields of objects in a list and in a map are checked,
    # the list's items and the map's values themselves are not (see the module's docstring).
    schema = {
        "properties": {
            "described": {"description": "yes", "type": "string"},
            "bare": {"type": "string"},
            "list": {
                "description": "a list",
                "type": "array",
                "items": {"type": "object", "properties": {"inItem": {"type": "string"}}},
            },
            "map": {
                "description": "a map",
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"inValue": {"type": "string"}},
                },
            },
            "labels": {
                "description": "a map of strings",
                "type": "object",
                "additionalProperties": {"type": "string"},
            },
            "nested": {
                "description": "an object",
                "properties": {"deep": {"description": " ", "type": "integer"}},
            },
        }
    }
    assert undescribed(schema, "spec") == [
        "spec.bare",
        "spec.list[].inItem",
        "spec.map{}.inValue",
        "spec.nested.deep",
    ]


def _descriptions(node: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("description"), str):
            found.append((path, node["description"]))
        for key, value in node.items():
            found.extend(_descriptions(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_descriptions(value, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_descriptions_break_lines_only_between_paragraphs(resource: Resource) -> None:
    """`kubectl explain` wraps a description at its own width and keeps its newlines: a
    docstring's line break inside a paragraph leaves a stray short line there (seen as
    "...amounts are numbers in" / "the" / "metric's own unit..."). tests/e2e/test_explain.py
    checks the rendered text."""
    broken = [
        path for path, text in _descriptions(crd(resource)) if "\n" in text.replace("\n\n", "")
    ]
    assert not broken, f"{resource.kind}: a line break inside a paragraph: {broken}"
