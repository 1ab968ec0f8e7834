"""Every reason a kind can report (status.reason, a condition's reason, an Event's reason)
is named, in backticks, in that kind's doc.

The reasons are collected from the source by its syntax, not by a grep for CamelCase words
(which would also catch kinds, severities and label names):

- the reason argument of the calls that set one (``true``/``false``/``unknown`` for
  conditions, ``EventSpec``, ``OverallVerdict``, ``RuleCheck``, the errors that carry a
  reason, and the helpers that turn a reason into an outcome), positional or ``reason=``;
- a value assigned to a variable named ``reason`` (also inside a tuple target), or given
  as the default of a parameter named ``reason``;
- a CamelCase string followed in a tuple by its message (``("QueryProblem", f"...")``),
  the (reason, message) pairs the engines pass around before they become conditions.

A string or a module-level constant is resolved; a conditional expression gives both
branches. Reasons built at run time are added from the enums they come from (see
``_built_reasons``); reasons read from another object (``error.reason``) are found where
that object is made.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from perfguard.analysis.capacity_anomalies import AnomalyKind
from perfguard.api.capacityplan import Assessment, CapacityVerdict
from perfguard.sources.prometheus import FailureKind

REPO = Path(__file__).parents[2]
PACKAGE = REPO / "operator" / "perfguard"

# Call name -> index of its reason argument.
REASON_ARGUMENT = {
    "true": 1,
    "false": 1,
    "unknown": 1,
    "EventSpec": 1,
    "OverallVerdict": 1,
    "RuleCheck": 2,
    "result": 1,  # judgement's local constructor of a MetricJudgement
    "WorkloadError": 0,
    "ParityReadError": 0,
    "NodeReadError": 0,
    "failed": 0,  # CapacityPlan
    "unavailable": 0,  # PerfBaseline
    "read_failed": 0,  # EnvParity
}
WORD = re.compile(r"^[A-Z][A-Za-z0-9]*$")

COMMON = ("handlers/reconcile.py",)  # InvalidSpec, EvaluationError for every kind
DOCS = {
    "perfbaseline.md": (
        "engine/perfbaseline.py",
        "analysis/judgement.py",
        "sources/workloads.py",
        "handlers/perfbaseline.py",
        *COMMON,
    ),
    "capacityplan.md": (
        "engine/capacityplan.py",
        "analysis/capacity_anomalies.py",
        "sources/nodes.py",
        "handlers/capacityplan.py",
        *COMMON,
    ),
    "envparity.md": (
        "engine/envparity.py",
        "analysis/parity.py",
        "sources/envparity_reader.py",
        "handlers/envparity.py",
        *COMMON,
    ),
}


def _constants() -> dict[str, set[str]]:
    """Module-level string constants of the package, by name."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, set()).add(value.value)
    return found


CONSTANTS = _constants()


def _values(node: ast.expr | None) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Name):
        return CONSTANTS.get(node.id, set())
    if isinstance(node, ast.IfExp):
        return _values(node.body) | _values(node.orelse)
    return set()


def _is_message(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and " " in node.value
    return not isinstance(node, ast.Tuple | ast.List | ast.Dict | ast.Set)


def _reasons_in(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            at = REASON_ARGUMENT.get(name or "")
            if at is not None and len(node.args) > at:
                yield from _values(node.args[at])
            for keyword in node.keywords:
                if keyword.arg == "reason":
                    yield from _values(keyword.value)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "reason":
                    yield from _values(node.value)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for part, value in zip(target.elts, node.value.elts, strict=False):
                        if isinstance(part, ast.Name) and part.id == "reason":
                            yield from _values(value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            defaults = dict(
                zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True)
            )
            defaults |= {
                a: d
                for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)
                if d is not None
            }
            for arg, default in defaults.items():
                if arg.arg == "reason":
                    yield from _values(default)
        elif isinstance(node, ast.Tuple):
            for element, following in zip(node.elts, node.elts[1:], strict=False):
                if _is_message(following):
                    yield from _values(element) if isinstance(element, ast.Constant) else ()


def reasons(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / module).read_text())
    return {r for r in _reasons_in(tree) if WORD.match(r)}


def _built_reasons() -> dict[str, set[str]]:
    """Reasons made at run time from an enum's value, by the doc that must name them."""
    prometheus = {kind.value for kind in FailureKind}  # a failed query's error.kind.value
    worse = (CapacityVerdict.NEAR_LIMIT, CapacityVerdict.INSUFFICIENT)
    return {
        "perfbaseline.md": prometheus,
        "capacityplan.md": prometheus
        | {kind.value for kind in AnomalyKind}  # AnomalyDetected's reason, an Event's
        | {"Current" + state.value for state in worse}  # CapacitySufficient False
        | {"Capacity" + state.value for state in worse}  # the Events
        | {"Projected" + a.value for a in (Assessment.NEAR_LIMIT, Assessment.OVER_CAPACITY)},
        "envparity.md": set(),
    }


def _documented(doc: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z0-9]+)`", (REPO / "docs" / doc).read_text()))


def test_the_scan_finds_reasons_of_each_shape() -> None:
    """Not hollow: each way a reason is written is found (call argument, keyword,
    IfExp, assigned variable, tuple target, parameter default, (reason, message) pair)."""
    assert {"BreachNotSustained", "RegressionSignificant", "NoThreshold"} <= reasons(
        "analysis/judgement.py"
    )
    pb = reasons("engine/perfbaseline.py")
    assert {"MinSamplesUnreachable", "InsufficientBaseline", "NoRegression"} <= pb
    assert {"CurrentDataStale", "QueryProblem", "NoStableTrack", "NothingToJudge"} <= pb
    assert {"WithinThreshold", "StableDataStale"} <= pb  # reason=
    assert {"NodesForbidden", "NodesReadFailed", "ApiUnreachable"} <= reasons("sources/nodes.py")
    assert {"Drifted", "UnresolvedItems"} <= reasons("analysis/parity.py")
    assert {"DataMissing", "AmbiguousData", "WithinCapacity"} <= reasons("engine/capacityplan.py")
    assert "TooManyObjects" in reasons("sources/envparity_reader.py")
    # Kinds, severities and track names are not reasons.
    everything = set().union(*(reasons(m) for ms in DOCS.values() for m in ms))
    assert not everything & {"Warning", "Critical", "Concurrent", "Historical", "Deployment"}


def test_every_module_with_reasons_is_mapped_to_a_doc() -> None:
    mapped = {m for modules in DOCS.values() for m in modules}
    unmapped = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if reasons(str(path.relative_to(PACKAGE)))
    } - mapped
    assert not unmapped, f"map these modules' reasons to a doc in {__file__}: {unmapped}"


def test_every_reason_is_documented() -> None:
    built = _built_reasons()
    missing = {
        doc: sorted((set().union(*(reasons(m) for m in modules)) | built[doc]) - _documented(doc))
        for doc, modules in DOCS.items()
    }
    assert not any(missing.values()), f"reasons not named in docs/: {missing}"
