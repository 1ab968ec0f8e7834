"""Base model: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


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


class LabelSelectorRequirement(ApiModel):
    """One requirement on a label."""

    key: str = Field(description="The label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In (the label's value is one of values), NotIn (it is not, or the "
        "label is absent), Exists or DoesNotExist."
    )
    values: list[str] | None = Field(
        default=None, description="Values for In and NotIn; Exists and DoesNotExist ignore them."
    )


LabelSelector.model_rebuild()
