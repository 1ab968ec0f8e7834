"""analysis/ is pure: it imports nothing that does I/O or knows about Kubernetes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ANALYSIS = Path(__file__).resolve().parents[2] / "operator" / "perfguard" / "analysis"
FORBIDDEN = (
    "kopf",
    "kubernetes",
    "aiohttp",
    "requests",
    "urllib",
    "http",
    "socket",
    "perfguard.sources",
    "perfguard.handlers",
    "perfguard.local",
    "perfguard.cli",
)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_analysis_modules_import_nothing_forbidden() -> None:
    modules = sorted(ANALYSIS.rglob("*.py"))
    assert modules, "analysis/ has no modules"
    for path in modules:
        for name in _imports(path):
            assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), (
                f"{path.name} imports {name}"
            )


def test_importing_analysis_loads_no_forbidden_module() -> None:
    code = (
        "import sys, pkgutil, importlib, perfguard.analysis as a\n"
        "for m in pkgutil.iter_modules(a.__path__):\n"
        "    importlib.import_module(f'{a.__name__}.{m.name}')\n"
        "print('\\n'.join(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [
        m
        for m in loaded
        if m.split(".")[0] in {"kopf", "kubernetes", "aiohttp"}
        or m.startswith(("perfguard.sources", "perfguard.handlers"))
    ]
    assert bad == []
