"""What `kubectl explain` shows users for the three kinds, with the real kubectl and apiserver.

docs/examples send users to `kubectl explain` for every field. The unit tests check that each
field of the generated CRDs has a description; here the session's kube-apiserver (the CRDs
applied from crds/) publishes them through its OpenAPI v3 and the real kubectl renders them:
every field of spec and status is listed, none says `<no description>`, each description is
the CRD's text word for word, and kubectl's wrapping leaves no stray short line.
"""

from __future__ import annotations

import itertools
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.conftest import REPO

pytestmark = pytest.mark.e2e

PLURALS = ["perfbaselines", "envparities", "capacityplans"]
# kubectl wraps a field's description at 78 - 2 and the top one at 76 (its plaintext template).
WIDTH = 76
# A few descriptions, as users read them (what the models say; a change there changes these).
KNOWN = {
    ("perfbaselines.spec", "analysis"): (
        "How often, over which window and how strictly the candidate is judged."
    ),
    ("perfbaselines.spec.prometheus", "timeout"): "Per-query timeout, 1ms to 5m; default 10s.",
    ("envparities.status", "driftPercent"): (
        "Differing items / compared items x 100, over every target."
    ),
    ("capacityplans", "spec"): (
        "Which Nodes to assess, the traffic they carry, their limits, growth scenarios and checks."
    ),
}


def _schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"perfguard.dev_{plural}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _fields(node: dict[str, Any]) -> dict[str, Any]:
    """A node's fields as kubectl lists them: through list items and map values."""
    while True:
        if isinstance(node.get("items"), dict):
            node = node["items"]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            fields: dict[str, Any] = node.get("properties") or {}
            return fields


def _objects(node: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """`path` and every field path below it whose node has fields, with its node."""
    found = {path: node}
    for name, child in _fields(node).items():
        if _fields(child):
            found.update(_objects(child, f"{path}.{name}"))
    return found


def _pieces(node: dict[str, Any]) -> list[str]:
    """The descriptions kubectl shows, one after the other, under DESCRIPTION: the field's,
    then its list items' or map values' (its plaintext template's "description")."""
    found = [node["description"]] if node.get("description") else []
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _pieces(node[key])
    return found


def _leaves(node: dict[str, Any], path: str) -> set[str]:
    paths = set()
    for name, child in _fields(node).items():
        paths.add(f"{path}.{name}")
        paths |= _leaves(child, f"{path}.{name}")
    return paths


def explain(cluster: Cluster, path: str, *flags: str) -> str:
    result = cluster.kubectl("explain", path, *flags, check=False)
    assert result.returncode == 0, f"kubectl explain {path}: {result.stderr}"
    return result.stdout


@dataclass
class Explained:
    """One non-recursive `kubectl explain`: its DESCRIPTION and each field's description,
    as lists of lines without kubectl's indentation."""

    description: list[str]
    fields: dict[str, list[str]] = field(default_factory=dict)


def parse(output: str) -> Explained:
    _, _, rest = output.partition("\nDESCRIPTION:\n")
    assert rest, output
    description, _, listed = rest.partition("\nFIELDS:\n")
    explained = Explained([line.removeprefix("    ") for line in description.splitlines()])
    current: list[str] | None = None
    for line in listed.splitlines():
        header = re.match(r"^  (\S+)\t<[^>]+>( -required-)?$", line)
        if header:
            current = explained.fields.setdefault(header.group(1), [])
        elif line.startswith("  enum: "):
            continue
        elif line.startswith("    ") or not line.strip():
            assert current is not None, output
            current.append(line.removeprefix("    "))
        else:
            raise AssertionError(f"unexpected line {line!r} in:\n{output}")
    return explained


def words(lines: list[str]) -> str:
    return " ".join(" ".join(lines).split())


def stray_lines(lines: list[str], pieces: list[str] | None = None) -> list[str]:
    """Lines kubectl's greedy wrap would have filled with the next line's first word: a line
    break from the description itself (kubectl counts bytes, so do we). Where one of several
    `pieces` (descriptions kubectl prints one after the other) ends, a line may end short."""
    ends = set(itertools.accumulate(len(p.split()) for p in pieces or []))
    seen, lines = 0, list(lines)
    for index, line in enumerate(list(lines)):
        seen += len(line.split())
        if seen in ends:
            lines[index] = ""  # a break kubectl made on purpose, like a paragraph's
    found = []
    for line, after in itertools.pairwise(lines):
        if not (line.strip() and after.strip()):
            continue  # a paragraph break
        if len(line.rstrip().encode()) + 1 + len(after.split()[0].encode()) < WIDTH:
            found.append(f"{line.rstrip()!r} / {after.split()[0]!r}")
    return found


@pytest.fixture(scope="module")
def published(cluster: Cluster) -> Cluster:
    # Established CRDs reach the OpenAPI v3 document a moment later.
    for plural in PLURALS:
        wait_for(
            lambda plural=plural: cluster.kubectl("explain", plural, check=False).returncode == 0,
            timeout=60,
            what=f"kubectl explain {plural}",
        )
    return cluster


@pytest.mark.parametrize("plural", PLURALS)
def test_explain_describes_every_field_of_spec_and_status_as_the_crd_does(
    published: Cluster, plural: str
) -> None:
    schema = _schema(plural)
    objects = {
        path: node
        for part in ("spec", "status")
        for path, node in _objects(schema["properties"][part], f"{plural}.{part}").items()
    }
    objects[plural] = {  # apiVersion, kind and metadata are the apiserver's, see below
        "description": schema["description"],
        "properties": {k: schema["properties"][k] for k in ("spec", "status")},
    }

    # The recursive listing holds exactly the CRD's fields: the walk below misses none.
    for part in ("spec", "status"):
        listing = explain(published, f"{plural}.{part}", "--recursive").split("\nFIELDS:\n")[1]
        stack: list[str] = []
        listed = set()
        for line in listing.splitlines():
            match = re.match(r"^( +)(\S+)\t<", line)
            if match:
                depth = len(match.group(1)) // 2
                stack[depth - 1 :] = [match.group(2)]
                listed.add(".".join([plural, part, *stack]))
        assert listed == _leaves(schema["properties"][part], f"{plural}.{part}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = dict(
            zip(objects, pool.map(lambda p: explain(published, p), objects), strict=True)
        )
    problems = []
    for path, output in outputs.items():
        if "<no description>" in output or "<empty>" in output:
            problems.append(f"{path}: <no description> or <empty> (field by field below)")
        explained = parse(output)
        wanted = _fields(objects[path])
        if plural == path:
            explained.fields = {k: v for k, v in explained.fields.items() if k in wanted}
        assert set(explained.fields) == set(wanted), path
        pieces = _pieces(objects[path])
        if words(explained.description) != words(pieces):
            problems.append(f"{path}: shows {words(explained.description)!r}, not {pieces}")
        problems += [f"{path}: {s}" for s in stray_lines(explained.description, pieces)]
        for name, lines in explained.fields.items():
            shown, written = (
                words(lines),
                " ".join(str(wanted[name].get("description") or "").split()),
            )
            if shown != written:
                problems.append(f"{path}.{name}: shows {shown!r}, the CRD says {written!r}")
            problems += [f"{path}.{name}: {s}" for s in stray_lines(lines)]
        for (where, name), text in KNOWN.items():
            if where == path and words(explained.fields[name]) != text:
                problems.append(f"{path}.{name}: shows {words(explained.fields[name])!r}")
    assert not problems, "\n".join(problems)
    assert {where.split(".")[0] for where, _ in KNOWN} == set(PLURALS)


def test_the_top_level_fields_are_described_too(published: Cluster) -> None:
    """`kubectl explain perfbaselines` lists apiVersion, kind and metadata beside spec and
    status; the apiserver describes those, so no kind starts with `<no description>`."""
    for plural in PLURALS:
        explained = parse(explain(published, plural))
        assert set(explained.fields) == {"apiVersion", "kind", "metadata", "spec", "status"}
        for name, lines in explained.fields.items():
            assert words(lines) and "<no description>" not in words(lines), (plural, name)
        assert words(explained.description) == " ".join(_schema(plural)["description"].split())


def test_stray_lines_finds_a_description_broken_before_kubectls_wrap() -> None:
    # What `kubectl explain` printed for a docstring wrapped at 88 columns.
    rendered = [
        "A rule on a Throughput, ErrorRate or Query statistic: amounts are numbers in",
        "the",
        "metric's own unit (requests/s, a ratio, the query's value), without a time",
        "unit.",
    ]
    assert stray_lines(rendered) == ["'the' / \"metric's\""]
    assert stray_lines([rendered[0], "the metric's own unit", "", "Next paragraph."]) == []
    # A list's description, then its items': kubectl starts the second on a line of its own.
    pieces = ["Requirements on labels; every one must hold.", "One requirement on a label."]
    assert stray_lines(pieces) == ["'Requirements on labels; every one must hold.' / 'One'"]
    assert stray_lines(pieces, pieces) == []
