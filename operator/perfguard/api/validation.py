"""Validation errors said as the API server says them: naming the field."""

from __future__ import annotations

from pydantic import ValidationError

from perfguard.api.cel import FIELD_PATH

MAX_PROBLEMS = 5


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
