"""Base model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from perfguard.api.cel import CelRule, validations


class ApiModel(BaseModel):
    """Base of every spec and status model.

    Unknown fields are ignored rather than rejected: the API server already prunes them,
    and an operator one version behind its CRD must keep serving.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
        use_enum_values=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-compatible dict written to the API (camelCase, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class LabelSelector(ApiModel):
    """A Kubernetes label selector: every matchLabels pair and matchExpressions entry must hold."""

    match_labels: dict[str, str] | None = Field(
        default=None, description="Label key to exact value; every pair must match."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, description="Requirements on labels; every one must hold."
    )


# Kubernetes' own LabelSelector validation, as CEL: the API server's selector parser refuses
# `tier in ()` when the operator lists with it, which would surface as a failed read at
# every evaluation instead of a refused spec at `kubectl apply`.
VALUES_FOR_IN = CelRule(
    "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
    "values must be given when operator is In or NotIn",
    ".values",
)
NO_VALUES_FOR_EXISTS = CelRule(
    "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
    "values must be empty when operator is Exists or DoesNotExist",
    ".values",
)


class LabelSelectorRequirement(ApiModel):
    """One requirement on a label."""

    model_config = ConfigDict(json_schema_extra=validations(VALUES_FOR_IN, NO_VALUES_FOR_EXISTS))

    key: str = Field(description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In (the label's value is one of values), NotIn (it is not, or the "
        "label is absent), Exists or DoesNotExist."
    )
    values: list[str] | None = Field(
        default=None,
        description="Values for In and NotIn (at least one); none for Exists and DoesNotExist.",
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        # The twins of the CEL rules above.
        if self.operator in ("In", "NotIn") and not self.values:
            raise VALUES_FOR_IN.error()
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise NO_VALUES_FOR_EXISTS.error()
        return self


LabelSelector.model_rebuild()
