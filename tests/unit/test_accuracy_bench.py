"""bench.accuracy: the corpus is deterministic and balanced, the peer judges give known
answers on hand-made cases, and a quick in-process run yields a complete report."""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter

import numpy as np
import pytest
from bench.accuracy import (
    EXTRA,
    JUDGES,
    AccuracyResult,
    Rate,
    _detection_by_source,
    accuracy_section,
    run_accuracy,
)
from bench.accuracy_corpus import (
    BUCKETS,
    CORPUS_SEED,
    FAMILIES,
    QUICK_PLAN,
    SYNTHETIC_FAMILIES,
    Case,
    CorpusPlan,
    build_corpus,
    histogram_quantile,
    synthetic_case,
)
from bench.accuracy_judges import fixed_judge, run_perfguard
from bench.accuracy_kayenta import KayentaConfig, _u_cdf, classify, shift_interval
from bench.nab import data_dir

from perfguard.analysis.statistics import mann_whitney_hodges_lehmann

NAB = data_dir()
NAB_DIR = NAB if (NAB / "combined_windows.json").exists() else None
TINY = CorpusPlan(
    sample_counts=(10, 20),
    synthetic_null=3,
    synthetic_per_size=1,
    nab_null=3,
    nab_per_size=1,
    nab_files_per_family=1,
)


def _fingerprints(cases: list[Case]) -> list[str]:
    return [c.fingerprint() for c in cases]


# ---------------------------------------------------------------- the corpus


def test_same_seed_same_cases_other_seed_other_cases() -> None:
    first = build_corpus(TINY, nab_dir=NAB_DIR)
    again = build_corpus(TINY, nab_dir=NAB_DIR)
    other = build_corpus(TINY, seed=CORPUS_SEED + 1, nab_dir=NAB_DIR)
    assert [c.case_id for c in first] == [c.case_id for c in again] == [c.case_id for c in other]
    assert _fingerprints(first) == _fingerprints(again)
    differs = [a != b for a, b in zip(_fingerprints(first), _fingerprints(other), strict=True)]
    assert all(differs)
    assert len({c.case_id for c in first}) == len(first)


def test_labels_are_balanced_per_family_and_sample_count() -> None:
    cases = build_corpus(TINY, nab_dir=NAB_DIR)
    counts = Counter((c.family.name, c.n, c.regression) for c in cases)
    for family, n, _ in counts:
        assert counts[(family, n, False)] == counts[(family, n, True)] > 0
    assert {c.family.name for c in cases} >= set(SYNTHETIC_FAMILIES)
    if NAB_DIR is not None:
        assert {"nab-cpu", "nab-traffic"} <= {c.family.name for c in cases}
    # The full plan balances too: as many cases without regression as with, per family.
    full = CorpusPlan()
    for name in full.families:
        assert full.synthetic_null == full.synthetic_per_size * len(FAMILIES[name].sizes)
    for name in full.nab_families:
        assert full.nab_null == full.nab_per_size * len(FAMILIES[name].sizes)
    assert 2 * full.synthetic_null * len(full.families) * len(full.sample_counts) >= 400


def test_quick_cases_are_cases_of_the_full_corpus() -> None:
    quick = build_corpus(QUICK_PLAN, quick_sizes=True)
    by_id = {c.case_id: c for c in quick}
    for family in SYNTHETIC_FAMILIES:
        largest = FAMILIES[family].sizes[-1]
        case = synthetic_case(FAMILIES[family], 20, largest, 0)
        assert by_id[case.case_id].fingerprint() == case.fingerprint()


def test_cases_carry_the_sustain_replay_and_the_injected_shift() -> None:
    shifted = synthetic_case(FAMILIES["p95"], 40, 10.0, 3)
    clean = synthetic_case(FAMILIES["p95"], 40, 0.0, 3)
    for case in (shifted, clean):
        # 8 steps (4 earlier evaluations, 1 m apart at a 30 s step) before the window.
        assert case.timestamps.size == case.stable.size == case.canary.size == 40 + 8
        assert np.all(np.diff(case.timestamps) == 30.0)
        assert np.all(np.isfinite(case.stable)) and np.all(np.isfinite(case.canary))
    assert shifted.regression and not clean.regression
    assert shifted.multiple == 5.0
    # A +10 ms delay on every request moves the median per-step p95 by about 10 ms.
    gap = np.median(shifted.canary[shifted.final] - shifted.stable[shifted.final])
    assert 0.007 < gap < 0.013
    assert abs(np.median(clean.canary[clean.final] - clean.stable[clean.final])) < 0.003


def test_histogram_quantile_follows_prometheus() -> None:
    bounds = np.array([0.01, 0.02, 0.04])
    # 10 observations in (0.01, 0.02]: the median interpolates halfway through it.
    assert histogram_quantile(0.5, [0, 10, 0, 0], bounds) == pytest.approx(0.015)
    # Rank in the first bucket interpolates from 0.
    assert histogram_quantile(0.5, [10, 0, 0, 0], bounds) == pytest.approx(0.005)
    # Rank in +Inf: the largest finite bound.
    assert histogram_quantile(0.99, [1, 0, 0, 99], bounds) == pytest.approx(0.04)
    assert math.isnan(float(histogram_quantile(0.5, [0, 0, 0, 0], bounds)))
    assert BUCKETS[0] == 0.001 and np.all(np.diff(BUCKETS) > 0)


# ---------------------------------------------------------------- Kayenta


def test_u_distribution_matches_enumeration() -> None:
    m, n = 3, 4
    counts: Counter[int] = Counter()
    for positions in itertools.combinations(range(m + n), m):
        # U counts pairs (x, y) with x above y: for each x, the y values below it.
        u = sum(p - i for i, p in enumerate(positions))
        counts[u] += 1
    total = sum(counts.values())
    expected = np.cumsum([counts[u] / total for u in range(m * n + 1)])
    assert np.allclose(_u_cdf(m, n), expected)


def test_shift_interval_agrees_with_an_independent_implementation() -> None:
    rng = np.random.default_rng(5)
    canary = rng.normal(31.0, 2.0, 25)
    baseline = rng.normal(30.0, 2.0, 30)
    ours = shift_interval(canary, baseline, confidence=0.95)
    theirs = mann_whitney_hodges_lehmann(canary, baseline, confidence=0.95)
    assert ours.method == "exact"
    assert ours.estimate == pytest.approx(theirs.shift)
    assert (ours.lo, ours.hi) == pytest.approx((theirs.shift_ci_low, theirs.shift_ci_high))


def test_kayenta_known_answers() -> None:
    rng = np.random.default_rng(11)
    stable = 0.030 + rng.normal(0.0, 0.002, 20)
    # Identical data pass, whatever the direction.
    assert classify(stable.copy(), stable).classification == "Pass"
    # +50 ms on every sample is High when increases are bad, and not Low.
    up = KayentaConfig(direction="increase", allowed_increase=1.07)
    result = classify(stable + 0.050, stable, up)
    assert result.classification == "High" and result.failed
    assert result.interval is not None and result.interval.lo > 0.04
    assert classify(stable + 0.050, stable, KayentaConfig(direction="decrease")).classification == (
        "Pass"
    )
    # A drop is Low for a metric where decreases are bad.
    down = KayentaConfig(direction="decrease", allowed_decrease=0.95)
    assert classify(stable * 0.5, stable, down).classification == "Low"
    # Significant but within allowedIncrease: the effect-size gate passes it.
    tight = 0.030 + rng.normal(0.0, 0.0001, 20)
    small = tight * 1.02
    assert classify(small, tight, KayentaConfig(direction="increase")).classification == "High"
    assert classify(small, tight, up).classification == "Pass"
    # No data.
    assert classify([], stable).classification == "Nodata"


# ---------------------------------------------------------------- fixed threshold, perfguard


def test_fixed_threshold_known_answers() -> None:
    p95, mean, throughput = FAMILIES["p95"], FAMILIES["mean"], FAMILIES["throughput"]
    # Bound = typical + 2 ms.
    assert fixed_judge(p95, 0.030, 0.0335, 0.030).failed
    assert not fixed_judge(p95, 0.030, 0.0315, 0.030).failed
    assert fixed_judge(p95, 0.030, 0.0335, 0.030).bound == pytest.approx(0.032)
    # Bound = typical x 1.05.
    assert fixed_judge(mean, 0.020, 0.0215, 0.020).failed
    assert not fixed_judge(mean, 0.020, 0.0205, 0.020).failed
    # Throughput: canary/stable rate below 0.95.
    assert fixed_judge(throughput, math.nan, 90.0, 100.0).failed
    assert not fixed_judge(throughput, math.nan, 99.0, 100.0).failed


def _hand_case(canary: np.ndarray, stable: np.ndarray, size: float) -> Case:
    steps = stable.size
    times = 1_800_000_000.0 + 30.0 * np.arange(steps, dtype=np.float64)
    return Case(
        case_id="hand",
        family=FAMILIES["p95"],
        n=steps - 8,
        size=size,
        seed=0,
        step_s=30.0,
        interval_s=60.0,
        sustain_s=180.0,
        timestamps=times,
        stable=stable,
        canary=canary,
        stable_window=float(stable.mean()),
        canary_window=float(canary.mean()),
        typical=0.030,
        detail="hand-made",
    )


def test_perfguard_adapter_known_answers() -> None:
    rng = np.random.default_rng(3)
    stable = 0.030 + rng.normal(0.0, 0.0005, 28)
    same = run_perfguard(_hand_case(stable.copy(), stable, 0.0))
    assert (same.metric_verdict, same.verdict) == ("Pass", "Pass")
    assert same.delta == pytest.approx(0.0)
    shifted = run_perfguard(_hand_case(stable + 0.050, stable, 50.0))
    # Regressed in every one of the 5 replayed evaluations: Fail after sustainFor.
    assert (shifted.metric_verdict, shifted.verdict) == ("Regressed", "Fail")
    assert shifted.delta == pytest.approx(0.050)


# ---------------------------------------------------------------- the run and the report


def test_rate_has_a_wilson_interval() -> None:
    assert Rate(0, 480).interval[0] == 0.0
    assert Rate(0, 480).interval[1] == pytest.approx(0.00793, abs=1e-4)
    lo, hi = Rate(5, 10).interval
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert math.isnan(Rate(0, 0).value)


@pytest.fixture(scope="module")
def quick() -> tuple[AccuracyResult, float]:
    started = time.perf_counter()
    result = run_accuracy(prometheus=False, quick=True)
    return result, time.perf_counter() - started


def test_quick_run_judges_every_case_three_ways(quick: tuple[AccuracyResult, float]) -> None:
    result, _ = quick  # how long it took is the benchmark's business, not a test's
    assert result.quick and not result.prometheus
    assert result.prometheus_outcomes == () and result.prometheus_error is None
    expected = len(build_corpus(QUICK_PLAN, nab_dir=result.nab_dir, quick_sizes=True))
    assert len(result.outcomes) == expected >= 16
    regressions = sum(o.regression for o in result.outcomes)
    assert 2 * regressions == len(result.outcomes)
    for outcome in result.outcomes:
        assert set(outcome.flagged) == set(JUDGES) | set(EXTRA)
        assert outcome.perfguard_verdict in ("Pass", "Regressed", "Improved", "Inconclusive")
        assert outcome.regression == (outcome.size > 0) == (outcome.multiple > 0)
    for judge in JUDGES:
        fp = result.false_positives(judge)
        assert fp.n == len(result.outcomes) // 2
        assert 0 <= fp.k <= fp.n
        assert result.detection(judge).n == regressions
    assert {"corpus", "perfguard", "kayenta", "fixed", "wall", "cpu"} <= set(result.seconds)


def test_section_is_a_markdown_report(quick: tuple[AccuracyResult, float]) -> None:
    result, _ = quick
    text = accuracy_section(result)
    assert text.startswith("## Judge accuracy\n")
    assert "`python -m bench.accuracy --no-prometheus --quick`" in text
    assert f"Corpus seed {CORPUS_SEED}" in text
    for heading in (
        "### Headline",
        "### Targets",
        "### Detection per regression size",
        "### Per sample count",
        "### False positives per family",
        "### Through a real Prometheus",
        "### Case definitions",
    ):
        assert heading in text
    assert "Not run (`prometheus=False`)" in text
    assert "`p95: {maxIncrease: 2ms}`" in text
    assert "False positives ≤ 1 %: **" in text
    for line in text.splitlines():
        if line.startswith("|"):
            assert line.endswith("|")


def test_detection_by_source_adds_up(quick: tuple[AccuracyResult, float]) -> None:
    result, _ = quick
    lines = _detection_by_source(result)
    assert lines[0].startswith("### Detection of regressions ≥ 2x")
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in lines[4:]}
    assert ("all", "≥ 20") in rows and ("synthetic", "≥ 20") in rows
    for judge in JUDGES:
        whole = result.detection(judge, min_n=20, min_multiple=2.0)
        synthetic = result.detection(judge, source="synthetic", min_n=20, min_multiple=2.0)
        nab = result.detection(judge, source="nab", min_n=20, min_multiple=2.0)
        assert whole.n == synthetic.n + nab.n > 0
        assert whole.k == synthetic.k + nab.k
        assert whole.text() in rows[("all", "≥ 20")]
        assert synthetic.text() in rows[("synthetic", "≥ 20")]
