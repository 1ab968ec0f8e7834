"""The committed CRDs are exactly what the models generate (nobody edits them by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.api.crdgen import crd, render_all
from perfguard.api.resources import RESOURCES

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("folder", ["crds", "charts/perfguard/files/crds"])
def test_committed_crds_match_the_models(folder: str) -> None:
    for name, text in render_all().items():
        path = REPO / folder / name
        assert path.exists(), f"{path} is missing: run `make crds`"
        assert path.read_text() == text, f"{path} differs from the models: run `make crds`"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(_walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_walk(value, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_generated_schema_is_structural(resource: Any) -> None:
    schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        if path.endswith(".properties") or path.endswith("x-kubernetes-validations"):
            continue
        assert "$ref" not in node, path
        assert "title" not in node, path
        assert node.get("type") != "null", path
        if "properties" in node:
            assert "additionalProperties" not in node, path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path


def test_every_kind_has_names_columns_and_status_subresource() -> None:
    for resource in RESOURCES:
        doc = yaml.safe_load(render_all()[f"perfguard.dev_{resource.plural}.yaml"])
        names = doc["spec"]["names"]
        assert names["shortNames"] == [resource.short_name]
        assert names["categories"] == ["perfguard"]
        version = doc["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        assert columns[0] == "Verdict" and columns[-1] == "Age"
