"""Pure comparison of two environments' compared items, for EnvParity.

An environment is what one namespace runs, flattened into items: one per container image,
environment variable, referenced ConfigMap or Secret, and listed annotation of every
workload. Items are keyed by (workload key, container, field), so the same item in two
namespaces lines up whatever the namespaces are called. A value of None means the item
could not be resolved (an image with no reported and no pinned digest): it is counted as
unverified, never as equal.

Counting follows DESIGN.md: `driftPercent` = differing items / compared items × 100. A
workload present on one side only is one compared item that differs (its own items are not
counted one by one, so a missing workload weighs as one difference, not as twenty). An
item present on one side of a matched workload is compared against "<absent>", and differs
even when its own value is unresolved: presence is known, whatever the value would be.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from perfguard.api.envparity import ParityVerdict

ABSENT: Final = "<absent>"
UNRESOLVED: Final = "<unverified>"
# An item known by name only (a Secret when Secrets are not read): present on one side
# only it is drift; on both it was not compared, so it counts neither way.
NOT_READ: Final = "<contents not read>"

# The order differences are listed in: what most likely breaks a service first.
_FIELD_ORDER: Final = (
    "workload",
    "container",
    "image",
    "configmap",
    "secret",
    "env",
    "envFrom",
    "annotation",
)


@dataclass(frozen=True, order=True)
class WorkloadKey:
    kind: str
    key: str  # the workload's name, or the value of the `matchBy` label


@dataclass(frozen=True)
class Item:
    workload: WorkloadKey
    container: str | None
    field: str  # image, env/NAME, envFrom/SOURCE, envFrom/order, configmap/NAME, ...
    value: str | None  # None: unresolved
    display: str | None = None  # what to show instead of value (e.g. a digest with its tag)
    note: str | None = None  # e.g. "mid-rollout: 2 digests running"

    @property
    def slot(self) -> tuple[WorkloadKey, str, str]:
        return (self.workload, self.container or "", self.field)

    def shown(self) -> str:
        if self.value is None:
            return self.display or UNRESOLVED
        return self.display or self.value


@dataclass(frozen=True)
class Environment:
    namespace: str
    workloads: Mapping[WorkloadKey, str]  # key -> the workload's name in this namespace
    items: tuple[Item, ...]

    def by_slot(self) -> dict[tuple[WorkloadKey, str, str], Item]:
        return {item.slot: item for item in self.items}


@dataclass(frozen=True)
class Difference:
    namespace: str  # the target namespace
    workload: WorkloadKey
    name: str  # the workload's name (in the target, else in the reference)
    container: str | None
    field: str
    reference: str | None
    target: str | None
    note: str | None = None

    def rank(self) -> tuple[int, str, str, str, str]:
        head = re.split(r"[/\[]", self.field, maxsplit=1)[0]  # env/NAME, envFrom/order
        order = _FIELD_ORDER.index(head) if head in _FIELD_ORDER else len(_FIELD_ORDER)
        return (order, self.namespace, self.name, self.container or "", self.field)

    def summary(self) -> str:
        where = f"{self.workload.kind}/{self.name}"
        if self.container:
            where += f" container {self.container}"
        return f"{self.namespace}: {where} {self.field}: {self.reference} → {self.target}"


@dataclass(frozen=True)
class Comparison:
    reference: str
    target: str
    compared: int
    differing: int
    unverified: int
    differences: tuple[Difference, ...]
    unverified_items: tuple[str, ...] = field(default=())


def fingerprint(environment: Environment) -> str:
    """A hash over the environment's sorted items: equal environments, equal fingerprints.

    Unresolved items enter as "<unverified>", so an environment with an unresolved image
    cannot share a fingerprint with one whose image is known.
    """
    lines = sorted(
        "\x1f".join(
            (
                item.workload.kind,
                item.workload.key,
                item.container or "",
                item.field,
                UNRESOLVED if item.value is None else item.value,
            )
        )
        for item in environment.items
    )
    lines.extend(sorted(f"{k.kind}\x1f{k.key}\x1fworkload" for k in environment.workloads))
    digest = hashlib.sha256("\x1e".join(sorted(lines)).encode()).hexdigest()
    return f"sha256:{digest[:16]}"


def _describe(item: Item) -> str:
    where = f"{item.workload.kind}/{item.workload.key}"
    if item.container:
        where += f"/{item.container}"
    return f"{where} {item.field}"


def compare(reference: Environment, target: Environment) -> Comparison:
    """Compare a target environment with the reference, item by item."""
    compared = differing = unverified = 0
    differences: list[Difference] = []
    unverified_items: list[str] = []
    ref_items = reference.by_slot()
    tgt_items = target.by_slot()

    for key in sorted(set(reference.workloads) | set(target.workloads)):
        in_ref = key in reference.workloads
        in_tgt = key in target.workloads
        if in_ref != in_tgt:
            compared += 1
            differing += 1
            differences.append(
                Difference(
                    namespace=target.namespace,
                    workload=key,
                    name=target.workloads.get(key) or reference.workloads[key],
                    container=None,
                    field="workload",
                    reference="present" if in_ref else "missing",
                    target="present" if in_tgt else "missing",
                )
            )

    matched = set(reference.workloads) & set(target.workloads)
    # A workload that is itself unresolved (several share its matchBy value, or its pod
    # template cannot be read) is one unverified item; its contents are not compared
    # against a guess or against nothing.
    ambiguous: dict[WorkloadKey, str] = {}
    for items in (ref_items, tgt_items):
        for slot, item in items.items():
            if item.field == "workload" and item.value is None and slot[0] in matched:
                ambiguous.setdefault(slot[0], item.display or "unresolved")
    for key in sorted(ambiguous):
        unverified += 1
        unverified_items.append(f"{key.kind}/{key.key}: {ambiguous[key]}")
    matched -= set(ambiguous)
    slots = sorted(
        {s for s in ref_items if s[0] in matched} | {s for s in tgt_items if s[0] in matched}
    )
    for slot in slots:
        ref = ref_items.get(slot)
        tgt = tgt_items.get(slot)
        either = ref or tgt
        assert either is not None
        # Present on one side only is known drift, whatever its value: an extra container
        # whose image digest is unknown still differs from no container at all.
        if ref is not None and tgt is not None and (ref.value is None or tgt.value is None):
            unverified += 1
            unverified_items.append(_describe(either))
            continue
        if ref is not None and tgt is not None and ref.value == tgt.value == NOT_READ:
            # Same name, contents unread: counting it as compared and equal would dilute
            # driftPercent with items nobody compared (and could turn Drifted into InSync).
            continue
        compared += 1
        ref_value = ref.value if ref is not None else ABSENT
        tgt_value = tgt.value if tgt is not None else ABSENT
        if ref_value == tgt_value:
            continue
        differing += 1
        notes = [n for n in (ref.note if ref else None, tgt.note if tgt else None) if n]
        differences.append(
            Difference(
                namespace=target.namespace,
                workload=slot[0],
                name=target.workloads.get(slot[0]) or reference.workloads[slot[0]],
                container=either.container,
                field=either.field,
                reference=ref.shown() if ref is not None else ABSENT,
                target=tgt.shown() if tgt is not None else ABSENT,
                note="; ".join(dict.fromkeys(notes)) or None,
            )
        )
    differences.sort(key=Difference.rank)
    return Comparison(
        reference=reference.namespace,
        target=target.namespace,
        compared=compared,
        differing=differing,
        unverified=unverified,
        differences=tuple(differences),
        unverified_items=tuple(unverified_items),
    )


@dataclass(frozen=True)
class ParityResult:
    verdict: ParityVerdict
    reason: str
    compared: int
    differing: int
    unverified: int
    drift_percent: float
    differences: tuple[Difference, ...]
    unverified_items: tuple[str, ...]


def judge(comparisons: Iterable[Comparison], max_drift_percent: float) -> ParityResult:
    """Verdict over every target: Drifted above the limit, else Unverified if anything was
    unresolved (or nothing could be compared at all), else InSync.

    Drift that exceeds the limit wins over unresolved items: what is known to differ is
    reported even when something else is unknown.
    """
    items = list(comparisons)
    compared = sum(c.compared for c in items)
    differing = sum(c.differing for c in items)
    unverified = sum(c.unverified for c in items)
    differences = tuple(sorted((d for c in items for d in c.differences), key=Difference.rank))
    unverified_items = tuple(i for c in items for i in c.unverified_items)
    drift = 100.0 * differing / compared if compared else 0.0
    if compared and drift > max_drift_percent:
        verdict, reason = ParityVerdict.DRIFTED, "Drifted"
    elif unverified:
        verdict, reason = ParityVerdict.UNVERIFIED, "UnresolvedItems"
    elif not compared:
        verdict, reason = ParityVerdict.UNVERIFIED, "NothingCompared"
    else:
        verdict, reason = ParityVerdict.IN_SYNC, "InSync"
    return ParityResult(
        verdict=verdict,
        reason=reason,
        compared=compared,
        differing=differing,
        unverified=unverified,
        drift_percent=drift,
        differences=differences,
        unverified_items=unverified_items,
    )
