"""A resource file checked as `kubectl apply` checks it, without an API server.

The models ignore unknown fields (api/base.py): the operator reads objects the API server
has already pruned, and must keep serving when its CRD is newer than itself. A file given
to `perfguard evaluate` has met no API server, so a misspelt field (`anaylsis:`) would be
dropped silently and the spec evaluated with defaults. `document_problems` refuses it as
kubectl's strict field validation does: every key the CRD schema (generated from the same
models, crdgen.py) does not know is named, besides what the models refuse.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from perfguard.api.cel import FIELD_PATH
from perfguard.api.crdgen import JsonSchema, crd
from perfguard.api.resources import Resource

MAX_PROBLEMS = 5


@dataclass(frozen=True)
class UnknownField:
    path: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion}?)" if self.suggestion else ""
        return f"{self.path}: unknown field{hint}"


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def unknown_fields(schema: JsonSchema, value: Any, path: str = "") -> list[UnknownField]:
    """The keys of `value` that the structural schema `schema` has no field for, as the
    API server would prune them: in nested objects, list items and map values too.

    An object schema without `properties` (a map, `x-kubernetes-preserve-unknown-fields`,
    metadata) knows every key; its values are checked against `additionalProperties`.
    """
    if not isinstance(schema, Mapping) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[UnknownField] = []
    if isinstance(value, Mapping):
        properties = _properties(schema)
        if properties is not None:
            for key, item in value.items():
                if key in properties:
                    found += unknown_fields(properties[key], item, _join(path, key))
                else:
                    close = difflib.get_close_matches(str(key), list(properties), n=1)
                    found.append(UnknownField(_join(path, key), close[0] if close else None))
        elif isinstance(schema.get("additionalProperties"), Mapping):
            for key, item in value.items():
                found += unknown_fields(schema["additionalProperties"], item, _join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            found += unknown_fields(schema["items"], item, _join(path, index))
    return found


def _properties(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The fields an object node knows, those of every alternative of an anyOf/oneOf/allOf
    included; None when it knows every key."""
    known: dict[str, Any] | None = dict(schema["properties"]) if "properties" in schema else None
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            if not isinstance(option, Mapping) or option.get("type") not in (None, "object"):
                continue
            if "properties" not in option:
                return None
            known = {**(known or {}), **option["properties"]}
    return known


def describe_validation_errors(error: ValidationError) -> list[str]:
    """Each of pydantic's errors as `spec.path.to.field: message`. A CEL rule's twin
    (api/cel.py) names the field the rule's fieldPath names, as the API server does."""
    described = []
    for item in error.errors():
        path = "spec" + "".join(f".{part}" for part in item["loc"])
        path += (item.get("ctx") or {}).get(FIELD_PATH) or ""
        described.append(f"{path}: {item['msg']}")
    return described


def summary(problems: list[str]) -> str:
    """Problems on one line: the first MAX_PROBLEMS, and how many more there are."""
    more = len(problems) - MAX_PROBLEMS
    return "; ".join(problems[:MAX_PROBLEMS]) + (f" (and {more} more)" if more > 0 else "")


def document_problems(resource: Resource, doc: Mapping[str, Any]) -> list[str]:
    """What `kubectl apply` would refuse in `doc`, an object of `resource`'s kind: unknown
    fields (spec and top level; metadata is the API server's own), then what the spec
    model refuses. Empty when the document is valid."""
    schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # Top-level names only: status is the operator's to write (a newer operator's status
    # fields are no reason to refuse a `kubectl get -o yaml` of the object).
    top: JsonSchema = {"properties": {name: {} for name in schema["properties"]}}
    unknown = unknown_fields(top, doc) + unknown_fields(
        schema["properties"]["spec"], doc.get("spec"), "spec"
    )
    problems = [str(field) for field in unknown]
    try:
        resource.spec.model_validate(doc.get("spec") or {})
    except ValidationError as error:
        problems += describe_validation_errors(error)
    return problems
