"""Without an API server, perfguard refuses what the API server refuses.

tests/spec_cases.INVALID lists specs a real kube-apiserver refuses with the generated
CRDs (tests/e2e/test_crd_schema.py proves it). Each must be refused here too, by the check
`perfguard evaluate` runs (api/validation.document_problems: the models, and unknown fields
against the CRD schema), naming the field the server names and, where the server's text
comes from a rule of ours (CEL), with the same words. And every CEL rule in the generated
CRDs must have such a case, so a rule added without a Python twin fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from perfguard.api.crdgen import crd
from perfguard.api.resources import BY_KIND, RESOURCES, Resource
from perfguard.api.validation import document_problems
from tests.spec_cases import INVALID, VALID_EDGES, edit, sample

# Fragments of the API server's own wording (not of a rule of ours) that the Python side
# words otherwise; the field is still named, which the path fragments check.
SERVER_WORDING = {
    "Duplicate value",  # pydantic's message starts so too; kept for when it does not
    "should be greater than 0",  # pydantic: "Input should be greater than 0"
}

# INVALID entries that Python does not refuse, each with the reason. None so far: keep it
# that way unless Python genuinely cannot (say why here).
NOT_REFUSED_IN_PYTHON: dict[str, str] = {}


def _resource(doc: dict[str, Any]) -> Resource:
    return BY_KIND[doc["kind"]]


def _python_path(server_path: str) -> str:
    """`spec.metrics[0].histogram` as perfguard writes it: `spec.metrics.0.histogram`."""
    return re.sub(r"\[(\d+)\]", r".\1", server_path)


def _fragments(expected: str | tuple[str, ...]) -> tuple[str, ...]:
    return (expected,) if isinstance(expected, str) else expected


def _case_id(param: Any) -> str:
    return str(param.id)


@pytest.mark.parametrize(("name", "path", "value", "expected"), INVALID)
def test_what_the_api_server_refuses_python_refuses_naming_the_field(
    request: pytest.FixtureRequest,
    name: str,
    path: str | tuple[str, ...],
    value: Any,
    expected: str | tuple[str, ...],
) -> None:
    case = request.node.callspec.id
    doc = edit(sample(name), path, value)
    problems = document_problems(_resource(doc), doc)
    if case in NOT_REFUSED_IN_PYTHON:
        assert not problems, f"{case} is refused now: drop it from NOT_REFUSED_IN_PYTHON"
        return
    assert problems, f"the API server refuses {case}, perfguard accepts it"
    for fragment in _fragments(expected):
        if fragment.startswith("spec"):
            where = _python_path(fragment)
            assert any(p.startswith((f"{where}:", f"{where}.")) for p in problems), (
                where,
                problems,
            )
        elif fragment not in SERVER_WORDING:
            assert any(fragment in p for p in problems), (fragment, problems)


def test_the_exceptions_are_cases_of_the_table() -> None:
    assert set(NOT_REFUSED_IN_PYTHON) <= {_case_id(p) for p in INVALID}


@pytest.mark.parametrize(("path", "value"), VALID_EDGES)
def test_edge_cases_the_api_server_accepts_python_accepts(
    path: str | tuple[str, ...], value: Any
) -> None:
    doc = edit(sample("perfbaseline"), path, value)
    assert document_problems(_resource(doc), doc) == []


@pytest.mark.parametrize("name", ["perfbaseline", "envparity", "capacityplan"])
def test_the_samples_are_accepted(name: str) -> None:
    doc = sample(name)
    assert document_problems(_resource(doc), doc) == []


def _cel_messages(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for rule in node.get("x-kubernetes-validations", []):
            yield rule["message"]
        for value in node.values():
            yield from _cel_messages(value)
    elif isinstance(node, list):
        for item in node:
            yield from _cel_messages(item)


def test_every_cel_rule_has_a_case_the_server_and_python_refuse() -> None:
    """A rule's case names (part of) its message, which both sides must then say. A rule
    on a type several kinds share (PrometheusRef, Interval) needs one case among them."""
    fragments = [
        fragment
        for param in INVALID
        if _case_id(param) not in NOT_REFUSED_IN_PYTHON
        for fragment in _fragments(param.values[3])
        if not fragment.startswith("spec")
    ]
    uncovered = sorted(
        {
            message
            for resource in RESOURCES
            for message in _cel_messages(crd(resource))
            if not any(fragment in message for fragment in fragments)
        }
    )
    assert not uncovered, f"CEL rules without a case in tests/spec_cases.INVALID: {uncovered}"
