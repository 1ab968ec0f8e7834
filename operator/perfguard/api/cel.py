"""CEL validation rules of the CRDs, each with the error its Python twin raises.

The API server enforces a rule from the CRD (`x-kubernetes-validations`); the operator and
`perfguard evaluate` enforce the same rule in a pydantic validator. Both take the rule's
text from one `CelRule`, so the two messages cannot drift apart. The Python check itself
is written next to the model (CEL is not run in Python); tests/unit/test_model_parity.py
holds every rule to a case the API server refuses and pydantic refuses too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# The key of a pydantic error's context that holds the rule's fieldPath (".window"), so that
# the error names the field the API server names (describe_validation_error appends it).
FIELD_PATH = "field_path"


@dataclass(frozen=True)
class CelRule:
    rule: str
    message: str
    field_path: str | None = None
    reason: str | None = None
    message_expression: str | None = None

    def schema(self) -> dict[str, str]:
        """The rule as one entry of `x-kubernetes-validations`."""
        entry = {"rule": self.rule, "message": self.message}
        if self.message_expression:
            entry["messageExpression"] = self.message_expression
        if self.field_path:
            entry["fieldPath"] = self.field_path
        if self.reason:
            entry["reason"] = self.reason
        return entry

    def error(self) -> PydanticCustomError:
        """What the Python twin raises when the input breaks the rule: the same message."""
        context = {FIELD_PATH: self.field_path} if self.field_path else None
        return PydanticCustomError("cel_rule", self.message, context)


def validations(*rules: CelRule) -> dict[str, Any]:
    """`json_schema_extra` carrying `rules` into the generated CRD."""
    return {"x-kubernetes-validations": [rule.schema() for rule in rules]}


def unique(key: Callable[[Any], Hashable], what: str) -> Any:
    """The Python twin of `x-kubernetes-list-type: map` (or `set`): the API server refuses
    a list in which two items share a key ("Duplicate value"), and so does this."""

    def check(items: Sequence[Any]) -> Sequence[Any]:
        seen: set[Hashable] = set()
        for index, item in enumerate(items):
            value = key(item)
            if value in seen:
                raise PydanticCustomError(
                    "duplicate",
                    f"Duplicate value: {what} '{value}' is given twice",
                    {FIELD_PATH: f".{index}"},
                )
            seen.add(value)
        return items

    return AfterValidator(check)
