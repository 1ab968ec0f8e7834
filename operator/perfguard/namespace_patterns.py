"""Which namespaces the operator serves, by its namespace patterns (`watchNamespaces`,
PERFGUARD_NAMESPACES, `perfguard run -n`), read as Kopf reads them.

Kopf is handed the same patterns for its watches; this module answers the same question
for the namespaces an EnvParity reads, without Kopf's private helpers.
`tests/unit/test_namespace_patterns.py` compares the two over a grid of patterns, so a Kopf
upgrade that changes the syntax fails there.

A pattern is comma-separated globs (`*`, `?`, `[...]`), each inclusive or, with a leading
`!`, exclusive; a pattern that starts with an exclusion begins with an implied `*`. Read
left to right: the first glob makes the initial match; an exclusion then drops a match;
a later inclusive glob brings back only a namespace the first glob matched. A namespace is
served when any pattern matches it; no patterns at all serve every namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase


def matches(pattern: str, namespace: str) -> bool:
    """Whether one pattern (see the module's text) matches a namespace."""
    globs = [part.strip() for part in pattern.split(",")]
    if globs[0].startswith("!"):
        globs.insert(0, "*")
    initial = fnmatchcase(namespace, globs[0])
    matched = initial
    for glob in globs[1:]:
        if glob.startswith("!"):
            matched = matched and not fnmatchcase(namespace, glob.lstrip("!"))
        else:
            matched = matched or (initial and fnmatchcase(namespace, glob))
    return matched


def served(patterns: Iterable[str], namespace: str) -> bool:
    """Whether the operator serves a namespace: any pattern matches it, or there are none."""
    listed = list(patterns)
    return not listed or any(matches(p, namespace) for p in listed)
