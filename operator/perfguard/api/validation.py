"""A resource file checked as `kubectl apply` checks it, without an API server.

The models ignore unknown fields (api/base.py): the operator reads objects the API server
has already pruned, and must keep serving when its CRD is newer than itself. A file given
to `perfguard evaluate` has met no API server, so a misspelt field (`anaylsis:`) would be
dropped silently and the spec evaluated with defaults. `document_problems` refuses it as
kubectl's strict field validation does: every key the CRD schema (generated from the same
models, crdgen.py) does not know is named, besides what the models refuse.

The models also coerce in lax mode what the API server refuses by type: `confidence:
"0.95"`, `minSamples: "50"`, `critical: "true"` or `1`. So the document's values are
checked against the schema's types too, as the API server checks them (`type_problems`),
in its words: `spec.analysis.confidence: must be of type number: "string"`. This walks the
CRD's own schema rather than running the models in strict mode: the types are then the
server's by construction, an integral float passes as an integer as it does there (`50.0`
is sent as `50`), and the int-or-string thresholds take what the server takes. The
operator keeps lax models: the objects it reads have passed this check at the server.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
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


@dataclass(frozen=True)
class TypeProblem:
    path: str
    expected: tuple[str, ...]
    found: str

    def __str__(self) -> str:
        return f'{self.path}: must be of type {",".join(self.expected)}: "{self.found}"'


def json_type(value: object) -> str:
    """The JSON type the API server sees for a value YAML gave: a float without a fractional
    part is an integer (kubectl sends `50.0` as `50`), a YAML timestamp a string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str | date):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The JSON types a schema node allows; empty when it allows any."""
    if "type" in schema:
        return (str(schema["type"]),)
    if schema.get("x-kubernetes-int-or-string"):
        return ("integer", "string")
    return ()


def type_problems(schema: JsonSchema, value: Any, path: str = "") -> list[TypeProblem]:
    """The values in `value` whose JSON type the structural schema `schema` does not allow,
    as the API server refuses them (a number where the schema says string, a string where
    it says number or boolean...), in nested objects, list items and map values too.

    A null object field or map value is no problem: the API server prunes it (or keeps
    it, where the schema says nullable). A null list item is one, unless nullable.
    """
    if not isinstance(schema, Mapping) or schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    expected, found = _types(schema), json_type(value)
    if value is None and schema.get("nullable"):
        return []
    if expected and found not in expected and not (found == "integer" and "number" in expected):
        return [TypeProblem(path, expected, found)]
    problems: list[TypeProblem] = []
    if isinstance(value, Mapping):
        properties = _properties(schema)
        if properties is not None:
            fields = {key: properties[key] for key in value if key in properties}
        elif isinstance(schema.get("additionalProperties"), Mapping):
            fields = {key: schema["additionalProperties"] for key in value}
        else:
            fields = {}
        for key, field in fields.items():
            if value[key] is not None:
                problems += type_problems(field, value[key], _join(path, key))
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problems += type_problems(schema["items"], item, _join(path, index))
    return problems


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


def without_nulls(value: Any) -> Any:
    """`value` without its null object fields and map values, as the API server prunes
    them before it validates and stores an object (`confidence: null` is as if absent, the
    default applies; the CRDs have no nullable field). Null list items stay: the server
    refuses them (`type_problems`)."""
    if isinstance(value, Mapping):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


def _at_or_under(problem: str, paths: list[str]) -> bool:
    return any(problem.startswith((f"{path}:", f"{path}.")) for path in paths)


def document_problems(resource: Resource, doc: Mapping[str, Any]) -> list[str]:
    """What `kubectl apply` would refuse in `doc`, an object of `resource`'s kind: unknown
    fields (spec and top level; metadata is the API server's own), values of the wrong
    JSON type, then what the spec model refuses elsewhere (of a mistyped value it would say
    the same again, or coerce it). Empty when the document is valid."""
    schema = crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    # Top-level names only: status is the operator's to write (a newer operator's status
    # fields are no reason to refuse a `kubectl get -o yaml` of the object).
    top: JsonSchema = {"properties": {name: {} for name in schema["properties"]}}
    unknown = unknown_fields(top, doc) + unknown_fields(
        schema["properties"]["spec"], doc.get("spec"), "spec"
    )
    mistyped = type_problems(schema["properties"]["spec"], doc.get("spec") or {}, "spec")
    problems = [str(field) for field in unknown] + [str(problem) for problem in mistyped]
    try:
        resource.spec.model_validate(without_nulls(doc.get("spec") or {}))
    except ValidationError as error:
        named = [problem.path for problem in mistyped]
        problems += [p for p in describe_validation_errors(error) if not _at_or_under(p, named)]
    return problems
