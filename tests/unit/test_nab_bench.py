"""bench.nab: the NAB harness on a few files, and its scoring by hand."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from bench.nab import (
    A_FP,
    NAB_CONFIG,
    NabResult,
    Window,
    data_dir,
    nab_raw_score,
    nab_section,
    run_nab,
    scaled_sigmoid,
)

NAB = data_dir()
FILES = (
    "realAWSCloudwatch/rds_cpu_utilization_e47b3b.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    "artificialNoAnomaly/art_flatline.csv",
)


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (NAB / "combined_windows.json").exists():
        pytest.fail(f"NAB data not found under {NAB}: set NAB_DATA to its folder", pytrace=False)
    root = tmp_path_factory.mktemp("nab")
    windows = json.loads((NAB / "combined_windows.json").read_text())
    for key in FILES:
        (root / "data" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / key, root / "data" / key)
    (root / "combined_windows.json").write_text(json.dumps({k: windows[k] for k in FILES}))
    shutil.copy(NAB / "final_results.json", root / "final_results.json")
    return root


@pytest.fixture(scope="module")
def result(subset: Path) -> NabResult:
    return run_nab(subset)


def test_run_nab_on_a_subset(subset: Path, result: NabResult) -> None:
    labels = json.loads((subset / "combined_windows.json").read_text())
    assert result.primary.config == NAB_CONFIG
    assert sorted(f.key for f in result.primary.files) == sorted(FILES)
    for config in (result.primary, *result.others):
        for f in config.files:
            assert f.windows == len(labels[f.key])
            assert 0 <= f.detected <= f.windows
            assert 0 <= f.false_positives <= f.findings
            for share in (f.precision, f.recall):
                assert share is None or 0.0 <= share <= 1.0
            assert f.null_score == -f.windows
            assert f.raw_score <= f.perfect_score
        assert config.windows() == sum(len(labels[k]) for k in FILES) == 3
        for share in (config.precision(), config.recall()):
            assert share is None or 0.0 <= share <= 1.0
        score = config.nab_score()
        assert score is not None
        assert math.isfinite(score)
        assert score <= 100.0
    flat = next(f for f in result.primary.files if f.key.endswith("art_flatline.csv"))
    assert (flat.findings, flat.findings_in_probation, flat.raw_score) == (0, 0, 0.0)
    assert result.published["null"] == 0.0
    assert result.published["numenta"] > 50.0


def test_nab_section_is_a_markdown_report(subset: Path, result: NabResult) -> None:
    text = nab_section(result)
    assert text.startswith("## Anomaly detection on NAB\n")
    for key in FILES:
        assert f"| {key} |" in text
    assert NAB_CONFIG.describe() in text
    assert f"python -m bench.nab {subset}" in text
    assert "| numenta | 70.1 |" in text


def test_scaled_sigmoid_anchors() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(1000.0) == pytest.approx(-1.0)


def test_nab_raw_score_by_hand() -> None:
    windows = (Window(100.0, 200.0), Window(1000.0, 1100.0))
    # Nothing found: both windows missed.
    assert nab_raw_score(windows, []) == -2.0
    # Early in the first window, later again in it (ignored), the second missed.
    early = nab_raw_score(windows, [100.0, 150.0])
    assert early == pytest.approx(scaled_sigmoid(-1.0) - 1.0)
    # At the end of a window a detection earns nothing.
    assert nab_raw_score(windows, [200.0, 1000.0]) == pytest.approx(scaled_sigmoid(-1.0))
    # Before any window: the full false-positive cost; long after one: nearly the full cost;
    # right after one: less.
    assert nab_raw_score(windows, [50.0, 100.0, 1000.0]) == pytest.approx(
        2 * scaled_sigmoid(-1.0) - A_FP
    )
    far = nab_raw_score(windows, [100.0, 1000.0, 900.0])
    near = nab_raw_score(windows, [100.0, 1000.0, 210.0])
    assert far == pytest.approx(2 * scaled_sigmoid(-1.0) + A_FP * scaled_sigmoid(7.0))
    assert far < near < 2 * scaled_sigmoid(-1.0)
