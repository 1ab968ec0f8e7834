"""docs/benchmarks.md as sections: re-measuring some of them keeps the others.

`make bench` writes the whole document. `python -m bench --only accuracy capacity` runs
those sections alone and puts them in place of their old text. Each re-measured section
then says, under its heading, at which commit and on which day it was measured, and the
header says that some sections did; no figure is passed off as newer than it is.
"""

from __future__ import annotations

HEADING = "## "
HEADER_NOTE = (
    "Some sections were re-measured later with `python -m bench --only`; each of them says "
    "so under its heading, with its commit."
)


def split(document: str) -> tuple[str, dict[str, str]]:
    """The header (the text before the first section) and each section by its heading."""
    header, current = "", ""
    sections: dict[str, str] = {}
    lines: list[str] = []
    for line in document.splitlines(keepends=True):
        if line.startswith(HEADING):
            if current:
                sections[current] = "".join(lines)
            else:
                header = "".join(lines)
            current, lines = line.rstrip("\n"), [line]
        else:
            lines.append(line)
    if current:
        sections[current] = "".join(lines)
    else:
        header = "".join(lines)
    return header, sections


def splice(document: str, measured: str, *, only: list[str], commit: str, day: str) -> str:
    """`document` with every section of `measured` in place of the one of the same heading.

    A heading the document lacks is an error: `make bench` writes the sections in a fixed
    order, and appending one would hide that the document is incomplete.
    """
    header, sections = split(document)
    _, new = split(measured)
    if not new:
        raise ValueError("the measured text has no section")
    missing = [heading for heading in new if heading not in sections]
    if missing:
        raise ValueError(f"the document has no section {missing}; run `make bench`")
    note = (
        f"*Re-measured on {day} at commit `{commit}` with "
        f"`python -m bench --only {' '.join(only)}`, after the rest of this document.*\n\n"
    )
    for heading, text in new.items():
        title, _, rest = text.partition("\n")
        sections[heading] = f"{title}\n\n{note}{rest.lstrip(chr(10))}"
    if HEADER_NOTE not in header:
        header = header.rstrip("\n") + "\n" + HEADER_NOTE + "\n\n"
    return header + "".join(
        text if text.endswith("\n") else text + "\n" for text in sections.values()
    )
