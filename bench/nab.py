"""The CapacityPlan spike/level-shift detector on the Numenta Anomaly Benchmark (NAB).

Runs ``perfguard.analysis.capacity_anomalies.detect_spikes`` over NAB's real AWS CloudWatch
series and its artificial controls, with ONE parameter set for every file, and scores the
findings against NAB's labelled anomaly windows two ways:

* Windows: a window is detected when a finding starts inside it; a finding that starts
  outside every window is a false positive (several findings inside one window count once).
  Precision = detected / (detected + false positives), recall = detected / windows.
* A NAB-style score (standard profile), implemented here from the published description
  (Lavin & Ahmad 2015, "Evaluating Real-time Anomaly Detection Algorithms - the Numenta
  Anomaly Benchmark"): the first finding in a window earns A_TP * sigma(y), y the finding's
  position relative to the window's end in window lengths (-1 at its start, 0 at its end)
  and sigma(y) = 2 / (1 + exp(5y)) - 1; a finding outside the windows costs
  A_FP * -sigma(y) after a window (less right after it) and A_FP before the first one; a
  missed window costs A_FN. Standard profile: A_TP = 1, A_FP = 0.11, A_FN = 1. Per file
  the sums of the raw score, of a null detector's (no findings) and of a perfect
  detector's (a finding at every window's first instant) give
  100 * (raw - null) / (perfect - null) over the corpus.

Both scorings ignore findings in NAB's probationary period (the first 15 % of a file, at
most 750 samples), where a detector is still learning; the daily seasonal check needs a day
of history anyway. The detector runs with ``causal=True`` (no look-ahead, as NAB requires).

What it does not reproduce: NAB's published scores come from detectors emitting a score per
sample whose threshold was optimised over the corpus, on all 58 files of 7 categories; ours
is a fixed binary detector on the 28 files of 3 categories kept here. The published numbers
are listed for orientation, not as a like-for-like ranking.

Run: ``python -m bench.nab [DATA_DIR]`` (default: ``$NAB_DATA`` or /work/shared/data/nab).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from perfguard.analysis.capacity_anomalies import AnomalyFinding, Direction, detect_spikes

FloatArray = npt.NDArray[np.float64]

CATEGORIES: Final = ("realAWSCloudwatch", "artificialWithAnomaly", "artificialNoAnomaly")
DEFAULT_DATA_DIR: Final = Path("/work/shared/data/nab")


def data_dir() -> Path:
    """$NAB_DATA, else ../shared/data/nab beside the repository, else /work/shared/data/nab."""
    if os.environ.get("NAB_DATA"):
        return Path(os.environ["NAB_DATA"])
    beside = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
    return beside if beside.exists() else DEFAULT_DATA_DIR


# NAB's standard application profile.
A_TP: Final = 1.0
A_FP: Final = 0.11
A_FN: Final = 1.0
PROBATION_SHARE: Final = 0.15
PROBATION_MAX_ROWS: Final = 750

# Published detectors listed next to ours (final_results.json holds more).
PUBLISHED: Final = (
    "numenta",
    "htmjava",
    "knncad",
    "relativeEntropy",
    "twitterADVec",
    "windowedGaussian",
    "skyline",
    "random",
    "null",
)


@dataclass(frozen=True)
class DetectorConfig:
    """One fixed parameter set of ``detect_spikes`` for every NAB file.

    NAB's series have arbitrary units (percent, bytes, counts), so the absolute floor
    cannot be a constant. It is the larger of ``range_share`` of the file's value range
    (NAB's rules let a detector know each file's min and max; 5 % of the range is the
    operator's 5-point floor on a 0-100 % scale) and ``noise_floor`` robust SDs of the
    series' deviations from its trailing level.
    """

    name: str
    spike_percent: float = 20.0
    baseline_s: float = 3600.0
    range_share: float = 0.05
    noise_floor: float = 5.0
    direction: Direction = "both"
    season_s: float | None = 86400.0

    def detect(self, times_s: FloatArray, values: FloatArray) -> list[AnomalyFinding]:
        finite = values[np.isfinite(values)]
        span = float(finite.max() - finite.min()) if finite.size else 0.0
        return detect_spikes(
            times_s,
            values,
            self.spike_percent,
            baseline_s=self.baseline_s,
            min_delta=self.range_share * span,
            noise_floor=self.noise_floor,
            direction=self.direction,
            season_s=self.season_s,
            causal=True,
        )

    def describe(self) -> str:
        season = "none" if self.season_s is None else f"{self.season_s / 3600:g} h"
        return (
            f"spike_percent={self.spike_percent:g}, baseline_s={self.baseline_s:g}, "
            f"min_delta={self.range_share:g} x (max - min of the file), "
            f"noise_floor={self.noise_floor:g}, direction={self.direction}, "
            f"season_s={season}, causal=True"
        )


# Chosen once, before looking at the scores: the spec's default spikePercent, the
# detector's default trailing hour and noise floor, a floor of 5 % of the range (the
# operator's 5 points of 100 %), jumps either way (NAB labels drops and flat-lines too),
# and a daily seasonal check because NAB's series follow the day.
NAB_CONFIG: Final = DetectorConfig("NAB configuration")
# The shape CapacityPlan itself runs (upward only, no seasonal check), same floors.
CAPACITYPLAN_SHAPE: Final = DetectorConfig(
    "CapacityPlan shape (up only, no season)", direction="up", season_s=None
)
# How much the figures move with the two floors (reported, not used to pick).
SENSITIVITY: Final = (
    DetectorConfig("range_share=0 (noise floor only)", range_share=0.0),
    DetectorConfig("range_share=0.1", range_share=0.1),
    DetectorConfig("noise_floor=3", noise_floor=3.0),
    DetectorConfig("noise_floor=8", noise_floor=8.0),
    DetectorConfig("no seasonal check", season_s=None),
)


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float

    def contains(self, t: float) -> bool:
        return self.start_s <= t <= self.end_s

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class NabFile:
    key: str  # "category/name.csv", as in combined_windows.json
    times_s: FloatArray
    values: FloatArray
    windows: tuple[Window, ...]

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def probation_end_s(self) -> float:
        """Findings before this instant are not scored."""
        rows = min(math.floor(PROBATION_SHARE * self.times_s.size), PROBATION_MAX_ROWS)
        return float(self.times_s[min(rows, self.times_s.size - 1)])


@dataclass(frozen=True)
class FileResult:
    key: str
    rows: int
    windows: int
    detected: int  # windows with a finding starting inside
    false_positives: int  # scored findings outside every window
    findings: int  # scored findings (after the probationary period)
    findings_in_probation: int
    raw_score: float
    null_score: float
    perfect_score: float

    @property
    def category(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def precision(self) -> float | None:
        flagged = self.detected + self.false_positives
        return self.detected / flagged if flagged else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.windows if self.windows else None


@dataclass(frozen=True)
class ConfigResult:
    config: DetectorConfig
    files: tuple[FileResult, ...]
    seconds: float

    def _sum(self, attribute: str, category: str | None = None) -> float:
        return float(
            sum(
                getattr(f, attribute)
                for f in self.files
                if category is None or f.category == category
            )
        )

    def windows(self, category: str | None = None) -> int:
        return int(self._sum("windows", category))

    def detected(self, category: str | None = None) -> int:
        return int(self._sum("detected", category))

    def false_positives(self, category: str | None = None) -> int:
        return int(self._sum("false_positives", category))

    def precision(self, category: str | None = None) -> float | None:
        flagged = self.detected(category) + self.false_positives(category)
        return self.detected(category) / flagged if flagged else None

    def recall(self, category: str | None = None) -> float | None:
        windows = self.windows(category)
        return self.detected(category) / windows if windows else None

    def nab_score(self, category: str | None = None) -> float | None:
        raw = self._sum("raw_score", category)
        null = self._sum("null_score", category)
        perfect = self._sum("perfect_score", category)
        return 100.0 * (raw - null) / (perfect - null) if perfect != null else None

    def alarms_without_anomalies(self) -> int:
        """Scored findings on artificialNoAnomaly (every one a false positive)."""
        return int(self._sum("findings", "artificialNoAnomaly"))

    def alarms_without_anomalies_in_probation(self) -> int:
        return int(self._sum("findings_in_probation", "artificialNoAnomaly"))


@dataclass(frozen=True)
class NabResult:
    data_dir: Path
    primary: ConfigResult
    others: tuple[ConfigResult, ...]
    published: dict[str, float]  # detector -> published standard-profile score


def _unix(stamp: str) -> float:
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in stamp else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(stamp, fmt).replace(tzinfo=UTC).timestamp()


def load_files(data_dir: Path) -> list[NabFile]:
    """The CSVs of ``CATEGORIES`` with their windows, in a fixed order."""
    labels = json.loads((data_dir / "combined_windows.json").read_text())
    files = []
    for category in CATEGORIES:
        for path in sorted((data_dir / "data" / category).glob("*.csv")):
            key = f"{category}/{path.name}"
            with path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            times = np.array([_unix(r["timestamp"]) for r in rows], dtype=np.float64)
            values = np.array([float(r["value"]) for r in rows], dtype=np.float64)
            windows = tuple(Window(_unix(a), _unix(b)) for a, b in labels.get(key, []))
            files.append(NabFile(key, times, values, windows))
    return files


def scaled_sigmoid(y: float) -> float:
    """2 / (1 + e^(5y)) - 1: +0.987 at a window's start, 0 at its end, towards -1 after."""
    return 2.0 / (1.0 + math.exp(min(5.0 * y, 700.0))) - 1.0


def nab_raw_score(windows: tuple[Window, ...], detections: list[float]) -> float:
    """Standard-profile score of detection instants (already past the probation)."""
    score = 0.0
    detected: set[int] = set()
    for t in sorted(detections):
        inside = next((i for i, w in enumerate(windows) if w.contains(t)), None)
        if inside is not None:
            if inside not in detected:
                detected.add(inside)
                window = windows[inside]
                score += A_TP * scaled_sigmoid((t - window.end_s) / window.length_s)
            continue
        before = [w for w in windows if w.end_s < t]
        if not before:
            score -= A_FP
        else:
            last = max(before, key=lambda w: w.end_s)
            score += A_FP * scaled_sigmoid((t - last.end_s) / last.length_s)
    return score - A_FN * (len(windows) - len(detected))


def score_file(nab: NabFile, findings: list[AnomalyFinding]) -> FileResult:
    probation_end = nab.probation_end_s
    starts = [f.start_s for f in findings]
    scored = [t for t in starts if t >= probation_end]
    hit = {i for t in scored for i, w in enumerate(nab.windows) if w.contains(t)}
    outside = [t for t in scored if not any(w.contains(t) for w in nab.windows)]
    return FileResult(
        key=nab.key,
        rows=int(nab.times_s.size),
        windows=len(nab.windows),
        detected=len(hit),
        false_positives=len(outside),
        findings=len(scored),
        findings_in_probation=len(starts) - len(scored),
        raw_score=nab_raw_score(nab.windows, scored),
        null_score=-A_FN * len(nab.windows),
        perfect_score=nab_raw_score(nab.windows, [w.start_s for w in nab.windows]),
    )


def run_config(files: list[NabFile], config: DetectorConfig) -> ConfigResult:
    started = time.perf_counter()
    results = tuple(score_file(f, config.detect(f.times_s, f.values)) for f in files)
    return ConfigResult(config, results, time.perf_counter() - started)


def run_nab(data_dir: Path) -> NabResult:
    """The NAB configuration, CapacityPlan's shape and a noise-floor sensitivity sweep."""
    files = load_files(data_dir)
    if not files:
        raise FileNotFoundError(f"no NAB CSV files under {data_dir / 'data'}")
    primary = run_config(files, NAB_CONFIG)
    others = [run_config(files, config) for config in (CAPACITYPLAN_SHAPE, *SENSITIVITY)]
    published_path = data_dir / "final_results.json"
    published: dict[str, float] = {}
    if published_path.exists():
        raw = json.loads(published_path.read_text())
        published = {name: float(scores["standard"]) for name, scores in raw.items()}
    return NabResult(data_dir, primary, tuple(others), published)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.0f} %"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def nab_section(result: NabResult) -> str:
    """Markdown: parameters, overall figures, per-file table, published scores, command."""
    p = result.primary
    lines = [
        "## Anomaly detection on NAB",
        "",
        "CapacityPlan's spike/level-shift detector (`detect_spikes`) on the labelled series of",
        "the Numenta Anomaly Benchmark kept in the data directory: 17 real AWS CloudWatch",
        "series (EC2/RDS CPU, disk writes, network in, ELB requests) and 11 artificial",
        "controls, all at 5-minute steps. One parameter set for every file, no per-file",
        "tuning, no look-ahead (`causal=True`):",
        "",
        f"`{p.config.describe()}`",
        "",
        "A window counts as detected when a finding starts inside it; a finding starting",
        "outside every window is a false positive. Findings in NAB's probationary period",
        "(first 15 % of a file, at most 750 samples) are not scored. The NAB score is the",
        "standard profile (A_TP = 1, A_FP = 0.11, A_FN = 1, scaled sigmoid over the window",
        "position), normalised so that no findings score 0 and a finding at the start of",
        "every window scores 100; it is implemented here from NAB's published description.",
        "",
        "| configuration | windows | detected | false positives | precision | recall "
        "| NAB score | alarms on artificialNoAnomaly |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config in (p, *result.others):
        lines.append(
            f"| {config.config.name} | {config.windows()} | {config.detected()} "
            f"| {config.false_positives()} | {_pct(config.precision())} "
            f"| {_pct(config.recall())} | {_score(config.nab_score())} "
            f"| {config.alarms_without_anomalies()} |"
        )
    lines += [
        "",
        "By category (NAB configuration):",
        "",
        "| category | windows | detected | false positives | precision | recall | NAB score |",
        "|---|---|---|---|---|---|---|",
    ]
    for category in CATEGORIES:
        lines.append(
            f"| {category} | {p.windows(category)} | {p.detected(category)} "
            f"| {p.false_positives(category)} | {_pct(p.precision(category))} "
            f"| {_pct(p.recall(category))} | {_score(p.nab_score(category))} |"
        )
    in_probation = p.alarms_without_anomalies_in_probation()
    worst = sorted(p.files, key=lambda f: -f.false_positives)[:5]
    worst_fp = sum(f.false_positives for f in worst)
    lines += [
        "",
        f"On artificialNoAnomaly the detector raised {p.alarms_without_anomalies()} scored "
        f"alarm(s), plus {in_probation} inside the probationary period (before the seasonal",
        "check has a day to compare with).",
        "",
        f"Where the false positives come from: {worst_fp} of {p.false_positives()} are in "
        "five files, "
        + ", ".join(f"`{f.key.split('/', 1)[1]}` ({f.false_positives})" for f in worst)
        + ". These series burst by far more than 20 % as their normal pattern (idle CPU "
        "jumping to 90 %, disk writes from 0 to hundreds of MB); every burst is a jump the "
        "rule is meant to report, but NAB labels none of them. The rule has no notion of "
        "a burst being usual, which is what NAB's stronger detectors learn; NAB charges "
        "0.11 for each such alarm.",
        "",
        "Per file (NAB configuration):",
        "",
        "| file | windows | detected | false positives | precision | recall | raw score |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in p.files:
        lines.append(
            f"| {f.key} | {f.windows} | {f.detected} | {f.false_positives} "
            f"| {_pct(f.precision)} | {_pct(f.recall)} | {f.raw_score:.2f} |"
        )
    if result.published:
        lines += [
            "",
            "Published standard-profile scores (`final_results.json`: all 58 NAB files, each",
            "detector's threshold optimised over the corpus) next to ours (28 files, fixed",
            "binary detector). Orientation only, not a like-for-like ranking:",
            "",
            "| detector | standard score |",
            "|---|---|",
            f"| **perfguard detect_spikes (this subset)** | **{_score(p.nab_score())}** |",
        ]
        shown = [name for name in PUBLISHED if name in result.published]
        for name in sorted(shown, key=lambda n: -result.published[n]):
            lines.append(f"| {name} | {result.published[name]:.1f} |")
    lines += [
        "",
        f"Command: `python -m bench.nab {result.data_dir}` ({p.seconds:.1f} s for the NAB",
        "configuration).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    print(nab_section(run_nab(Path(argv[1]) if len(argv) > 1 else data_dir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
