"""`python -m bench --only`: re-measured sections replace their old text and say so."""

from __future__ import annotations

import pytest
from bench.document import HEADER_NOTE, splice, split

DOCUMENT = """# Benchmarks

Measured by `make bench` on 2026-12-01, commit `aaaaaaa`.

## Engine

old engine figures

## Judge accuracy

old accuracy figures

### Headline

old headline

## Time to detect

old ttd figures
"""


def _splice(measured: str, only: list[str] | None = None) -> str:
    return splice(DOCUMENT, measured, only=only or ["accuracy"], commit="bbbbbbb", day="2026-12-05")


def test_a_remeasured_section_replaces_only_its_own_text() -> None:
    out = _splice("## Judge accuracy\n\nnew accuracy figures\n\n### Headline\n\nnew headline\n")
    header, sections = split(out)
    assert list(sections) == ["## Engine", "## Judge accuracy", "## Time to detect"]
    assert "new accuracy figures" in sections["## Judge accuracy"]
    assert "new headline" in sections["## Judge accuracy"]
    assert "old" not in sections["## Judge accuracy"]
    assert sections["## Engine"] == split(DOCUMENT)[1]["## Engine"]
    assert sections["## Time to detect"] == split(DOCUMENT)[1]["## Time to detect"]
    assert "commit `aaaaaaa`" in header


def test_the_section_and_the_header_say_what_was_remeasured_and_when() -> None:
    out = _splice("## Judge accuracy\n\nnew\n")
    header, sections = split(out)
    assert HEADER_NOTE in header
    assert "2026-12-05 at commit `bbbbbbb`" in sections["## Judge accuracy"]
    assert "`python -m bench --only accuracy`" in sections["## Judge accuracy"]
    assert "bbbbbbb" not in sections["## Engine"]


def test_remeasuring_again_keeps_one_header_note_and_the_newest_section_note() -> None:
    once = _splice("## Judge accuracy\n\nfirst\n")
    twice = splice(
        once, "## Judge accuracy\n\nsecond\n", only=["accuracy"], commit="ccccccc", day="2026-12-06"
    )
    header, sections = split(twice)
    assert header.count(HEADER_NOTE) == 1
    assert "ccccccc" in sections["## Judge accuracy"]
    assert "bbbbbbb" not in sections["## Judge accuracy"]
    assert "first" not in sections["## Judge accuracy"]


def test_a_section_the_document_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no section"):
        _splice("## Something new\n\nfigures\n")
