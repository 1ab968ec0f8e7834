"""perfguard.namespace_patterns reads namespace patterns as Kopf does (Kopf watches with
the same patterns), checked against Kopf's own matcher over a grid: a Kopf upgrade that
changes the syntax fails here, not silently in EnvParity's NamespaceNotWatched."""

from __future__ import annotations

import itertools

import pytest
from kopf._cogs.structs.references import NamespaceName, match_namespace

from perfguard.namespace_patterns import matches, served

NAMESPACES = ["ml-prod", "ml-secret", "ml", "kube-system", "myapp-pr-123", "myapp-pr-456", "a1"]
PATTERNS = [
    "*",
    "ml-*",
    "ml-prod",
    "!kube-*",
    "ml-*,!ml-secret",
    "ml-*, !ml-secret",
    "myapp-*, !*-pr-*, *pr-123",
    "!*-pr-*, *pr-123",
    "a?",
    "[km]*",
    "!!ml",
    "",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_matches_what_kopf_matches(pattern: str) -> None:
    for namespace in NAMESPACES:
        expected = match_namespace(NamespaceName(namespace), pattern)
        assert matches(pattern, namespace) is expected, (pattern, namespace)


def test_documented_examples() -> None:
    # Kopf's own: myapp's namespaces except pull requests, but pull request 123.
    pattern = "myapp-*, !*-pr-*, *pr-123"
    assert [n for n in NAMESPACES if matches(pattern, n)] == ["myapp-pr-123"]
    assert matches("!kube-*", "ml-prod") and not matches("!kube-*", "kube-system")


def test_any_pattern_serves_and_none_serves_all() -> None:
    assert served([], "anything")
    for pair in itertools.combinations(PATTERNS, 2):
        for namespace in NAMESPACES:
            assert served(pair, namespace) is any(matches(p, namespace) for p in pair)
    assert not served(["ml-*"], "kube-system")
