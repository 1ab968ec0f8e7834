"""The chart, as far as it goes today (CRDs), with the real helm binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from perfguard.local.binaries import binary

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("helm")), *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_helm_lint_passes() -> None:
    result = helm("lint", str(REPO / "charts" / "perfguard"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_chart_renders_exactly_the_generated_crds() -> None:
    result = helm("template", "perfguard", str(REPO / "charts" / "perfguard"), "--include-crds")
    assert result.returncode == 0, result.stderr
    rendered = {d["metadata"]["name"]: d for d in yaml.safe_load_all(result.stdout) if d}
    generated = {}
    for path in (REPO / "crds").glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        generated[doc["metadata"]["name"]] = doc
    assert set(rendered) == {
        "perfbaselines.perfguard.dev",
        "envparities.perfguard.dev",
        "capacityplans.perfguard.dev",
    }
    assert rendered == generated
