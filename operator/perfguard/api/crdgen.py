"""Generate CustomResourceDefinitions from the pydantic models (the single source of truth).

pydantic emits JSON Schema 2020-12; Kubernetes wants a *structural* OpenAPI v3 schema:
no $ref, no nulls, every node typed, `exclusiveMinimum` as a boolean, no `title`,
no `additionalProperties` beside `properties`. This module performs that translation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import yaml

from perfguard import GROUP, VERSION
from perfguard.api.quantities import DURATION_PATTERN, format_duration
from perfguard.api.resources import RESOURCES, Resource

JsonSchema = dict[str, Any]

_DROP_KEYS = {"title", "$defs", "discriminator", "examples"}


def _resolve(node: Any, defs: dict[str, JsonSchema]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].split("/")[-1]]
        merged = {**_resolve(target, defs), **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {k: _resolve(v, defs) for k, v in node.items()}


_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>[0-9.]+)D)?(?:T(?:(?P<h>[0-9.]+)H)?(?:(?P<m>[0-9.]+)M)?(?:(?P<s>[0-9.]+)S)?)?$"
)


def _iso_duration(text: str) -> timedelta:
    match = _ISO_DURATION.match(text)
    if not match:
        raise ValueError(f"unexpected ISO duration {text!r} in a generated default")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("d", 0),
        hours=parts.get("h", 0),
        minutes=parts.get("m", 0),
        seconds=parts.get("s", 0),
    )


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


def _prose(description: str) -> str:
    """A docstring's paragraphs, each on one line: `kubectl explain` wraps descriptions at
    its own width and keeps the newlines it finds, so a docstring's line breaks would leave
    a stray short line wherever they fall after its wrap ("...numbers in" / "the" / ...)."""
    return re.sub(r"(?<!\n)\n(?!\n)", " ", description)


def _structural(node: Any) -> Any:
    """Rewrite one resolved JSON Schema node (recursively) into Kubernetes' dialect."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {k: v for k, v in node.items() if k not in _DROP_KEYS}

    # Optional[X] -> X: absence, not null, is how Kubernetes says "unset".
    for key in ("anyOf", "oneOf"):
        if key in node and any(_is_null(o) for o in node[key]):
            options = [o for o in node[key] if not _is_null(o)]
            rest = {k: v for k, v in node.items() if k != key}
            rest.pop("default", None) if rest.get("default", 0) is None else None
            node = {**options[0], **rest} if len(options) == 1 else {**rest, key: options}

    node = {k: v for k, v in node.items() if k not in _DROP_KEYS}
    if node.get("pattern") == DURATION_PATTERN and isinstance(node.get("default"), str):
        # pydantic renders timedelta defaults as ISO 8601 (PT10S); users write 10s.
        node["default"] = format_duration(_iso_duration(node["default"]))
    if "default" in node and (node["default"] is None or isinstance(node["default"], dict | list)):
        # Only scalar defaults go into the CRD: object defaults would be applied even when
        # a user set only part of the object, which surprises more than it helps.
        del node["default"]

    if "const" in node:
        node["enum"] = [node.pop("const")]

    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[flag] = node.pop(bound)
            node[bound] = True

    if "properties" in node:
        node.setdefault("type", "object")
        node.pop("additionalProperties", None)
        node["properties"] = {k: _structural(v) for k, v in node["properties"].items()}
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = _structural(node["additionalProperties"])
    if "items" in node:
        node["items"] = _structural(node["items"])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in node:
            node[key] = [_structural(o) for o in node[key]]

    if (
        node.get("type") == "object"
        and "properties" not in node
        and ("additionalProperties" not in node)
    ):
        node["x-kubernetes-preserve-unknown-fields"] = True
    if "format" in node and node["format"] not in {"date-time", "int64", "int32", "double"}:
        node.pop("format")
    if isinstance(node.get("description"), str):  # last: Optional[X] above merged X's in
        node["description"] = _prose(node["description"])
    return node


def _without_defaults(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_defaults(item) for item in node]
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    return node


def model_schema(model: type[Any], mode: str) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True, mode=mode)
    defs = raw.get("$defs", {})
    return _structural(_resolve(raw, defs))  # type: ignore[no-any-return]


def crd(resource: Resource) -> dict[str, Any]:
    spec_schema = model_schema(resource.spec, "validation")
    # Status is the operator's to write; defaults there would invent values it never set.
    status_schema = _without_defaults(model_schema(resource.status, "serialization"))
    # Every status field is optional: status is written piecemeal as evaluation proceeds.
    status_schema.pop("required", None)
    schema: JsonSchema = {
        "type": "object",
        "description": _prose(resource.description),
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "required": ["spec"],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": resource.crd_name,
            "labels": {"app.kubernetes.io/part-of": "perfguard"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": resource.singular,
                "shortNames": [resource.short_name],
                "categories": ["perfguard"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            **({"description": c.description} if c.description else {}),
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in resource.columns
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


HEADER = (
    "# Generated by `perfguard crds` from operator/perfguard/api/. Do not edit by hand:\n"
    "# change the models and run `make crds`.\n"
)


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def render(resource: Resource) -> str:
    body = yaml.dump(crd(resource), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + "---\n" + body


def filename(resource: Resource) -> str:
    return f"{GROUP}_{resource.plural}.yaml"


def render_all(resources: Iterable[Resource] = RESOURCES) -> dict[str, str]:
    return {filename(r): render(r) for r in resources}
