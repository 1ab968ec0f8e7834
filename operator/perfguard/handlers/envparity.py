"""EnvParity's evaluator for the operator, and prompt re-evaluation on workload changes.

Every EnvParity records the namespaces it compares. A watch event on a workload or
ConfigMap in one of them schedules that EnvParity's daemon to wake after a short debounce
(plus jitter, and no sooner than a cool-down after its last evaluation): a rollout that
touches 200 Deployments at once costs one evaluation per EnvParity, not 200, and many
EnvParities watching the same namespaces do not all list it at the same instant.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from perfguard.api.base import ApiModel
from perfguard.api.envparity import EnvParitySpec, IgnoreSpec
from perfguard.engine.envparity import judge_environments, read_failed
from perfguard.engine.envparity_snapshot import (
    Hasher,
    NamespaceObjects,
    config_references,
    environment,
    keyed_hasher,
)
from perfguard.handlers.runtime import ResourceRef, get_runtime
from perfguard.namespace_patterns import served
from perfguard.observability import resource_logger
from perfguard.outcome import Outcome
from perfguard.sources.envparity_reader import ParityReadError

DEBOUNCE_S: Final = 1.0
JITTER_S: Final = 1.0
COOLDOWN_S: Final = 5.0

_scopes: dict[ResourceRef, frozenset[str]] = {}
_last_evaluated: dict[ResourceRef, float] = {}
_scheduled: dict[ResourceRef, asyncio.TimerHandle] = {}
_hash_key: bytes | None = None


async def _hasher() -> Hasher:
    global _hash_key
    if _hash_key is None:
        runtime = get_runtime()
        reference = runtime.config.hash_key_secret
        if reference:
            assert runtime.parity is not None
            _hash_key = await runtime.parity.hash_key(reference)
        else:
            # Without a configured key, hashes are stable only for this process: verdicts
            # are unaffected (both sides use the same key), fingerprints change on restart.
            resource_logger("EnvParity", None, None).warning(
                "no hash key Secret configured (PERFGUARD_HASH_KEY_SECRET); "
                "using a random key for this process"
            )
            _hash_key = secrets.token_bytes(32)
    return keyed_hasher(_hash_key)


def outside(patterns: Sequence[str], namespaces: Sequence[str]) -> list[str]:
    """The namespaces the operator does not serve, by its Kopf namespace patterns (globs,
    `!` exclusions; none: every namespace). An EnvParity reads only namespaces the operator
    serves, so `watchNamespaces` bounds what an author can see through its status."""
    return [n for n in namespaces if not served(patterns, n)]


def _skipped_secrets(objects: list[NamespaceObjects], ignore: IgnoreSpec) -> bool:
    for namespace in objects:
        for workload in namespace.workloads:
            pod_spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
            if config_references(pod_spec, ignore)[1]:
                return True
    return False


async def evaluate_envparity(
    spec: ApiModel, previous: Mapping[str, Any], at: datetime, ref: ResourceRef
) -> Outcome:
    assert isinstance(spec, EnvParitySpec)
    runtime = get_runtime()
    reader = runtime.parity
    assert reader is not None
    _last_evaluated[ref] = time.monotonic()
    reference = spec.reference.namespace
    compare_secrets = runtime.config.compare_secrets and spec.compare.config
    watched = runtime.config.namespaces
    notes = []
    try:
        if spec.targets is not None:
            targets = [t.namespace for t in spec.targets]
            refused = outside(watched, [reference, *targets])
        else:
            assert spec.namespace_selector is not None
            matched = [
                n for n in await reader.namespaces(spec.namespace_selector) if n != reference
            ]
            refused = outside(watched, [reference])
            skipped = outside(watched, matched)
            targets = [n for n in matched if n not in skipped]
            if skipped:
                notes.append(
                    f"{len(skipped)} namespace(s) matched by namespaceSelector are outside "
                    f"the operator's namespaces and were not read: {', '.join(skipped[:5])}"
                    + (" …" if len(skipped) > 5 else "")
                )
        if refused:
            raise ParityReadError(
                "NamespaceNotWatched",
                f"{', '.join(refused)}: outside the namespaces this operator serves "
                f"({', '.join(watched)}; PERFGUARD_NAMESPACES, chart value watchNamespaces); "
                "nothing was read there",
            )
        _scopes[ref] = frozenset([reference, *targets])
        if not targets:
            raise ParityReadError(
                "NoTargetNamespaces",
                "the namespaceSelector matches no namespace but the reference"
                + (f" that this operator serves ({notes[0]})" if notes else ""),
            )
        hasher = await _hasher()
        kinds = [k.value for k in spec.workloads.kinds]
        objects = list(
            await asyncio.gather(
                *(
                    reader.read(
                        namespace,
                        kinds,
                        spec.workloads.selector,
                        config=spec.compare.config,
                        secrets=compare_secrets,
                    )
                    for namespace in [reference, *targets]
                )
            )
        )
    except ParityReadError as error:
        return read_failed(error.reason, error.message, previous)
    environments = [environment(o, spec, hasher) for o in objects]
    if spec.compare.config and not compare_secrets and _skipped_secrets(objects, spec.ignore):
        notes.append("Secret contents not compared: reading Secrets is disabled in the operator")
    return judge_environments(spec, environments[0], environments[1:], previous, notes=notes)


def forget(ref: ResourceRef) -> None:
    _scopes.pop(ref, None)
    _last_evaluated.pop(ref, None)
    handle = _scheduled.pop(ref, None)
    if handle is not None:
        handle.cancel()


def _fire(ref: ResourceRef) -> None:
    _scheduled.pop(ref, None)
    wake = get_runtime().wakers.get(ref)
    if wake is not None:
        wake.set()


def watched_object_changed(namespace: str | None) -> int:
    """Schedule every EnvParity comparing `namespace`; returns how many were scheduled."""
    if namespace is None:
        return 0
    loop = asyncio.get_running_loop()
    scheduled = 0
    for ref, namespaces in list(_scopes.items()):
        if namespace not in namespaces or ref in _scheduled:
            continue
        delay = DEBOUNCE_S + random.uniform(0.0, JITTER_S)
        last = _last_evaluated.get(ref)
        if last is not None:
            delay = max(delay, last + COOLDOWN_S - time.monotonic())
        _scheduled[ref] = loop.call_later(delay, _fire, ref)
        scheduled += 1
    return scheduled
