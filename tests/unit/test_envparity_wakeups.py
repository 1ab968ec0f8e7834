"""Workload changes wake the EnvParities comparing that namespace: once, debounced."""

from __future__ import annotations

import asyncio
import time

import pytest

from perfguard.config import OperatorConfig
from perfguard.handlers import envparity
from perfguard.handlers.runtime import ResourceRef, Runtime, set_runtime
from perfguard.observability import OperatorMetrics


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setattr(envparity, "DEBOUNCE_S", 0.05)
    monkeypatch.setattr(envparity, "JITTER_S", 0.05)
    monkeypatch.setattr(envparity, "COOLDOWN_S", 0.0)
    monkeypatch.setattr(envparity, "_scopes", {})
    monkeypatch.setattr(envparity, "_scheduled", {})
    monkeypatch.setattr(envparity, "_last_evaluated", {})
    found = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    set_runtime(found)
    return found


def test_a_burst_of_changes_wakes_each_watcher_once(runtime: Runtime) -> None:
    watching = ResourceRef("EnvParity", "ops", "prod-vs-staging")
    elsewhere = ResourceRef("EnvParity", "ops", "other")
    envparity._scopes[watching] = frozenset({"staging", "prod"})
    envparity._scopes[elsewhere] = frozenset({"dev", "qa"})

    async def scenario() -> tuple[list[int], bool, bool]:
        wakes = {ref: asyncio.Event() for ref in (watching, elsewhere)}
        runtime.wakers.update(wakes)
        scheduled = [envparity.watched_object_changed("prod") for _ in range(200)]
        assert not wakes[watching].is_set(), "woken before the debounce"
        await asyncio.sleep(0.2)
        return scheduled, wakes[watching].is_set(), wakes[elsewhere].is_set()

    scheduled, woke, other_woke = asyncio.run(scenario())
    assert scheduled[0] == 1 and sum(scheduled) == 1, "200 changes, one scheduled wake"
    assert woke and not other_woke


def test_cooldown_defers_a_wake_after_a_recent_evaluation(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(envparity, "COOLDOWN_S", 0.5)
    ref = ResourceRef("EnvParity", "ops", "p")
    envparity._scopes[ref] = frozenset({"prod"})

    async def scenario() -> tuple[bool, bool]:
        wake = asyncio.Event()
        runtime.wakers[ref] = wake
        envparity._last_evaluated[ref] = time.monotonic()
        envparity.watched_object_changed("prod")
        await asyncio.sleep(0.25)
        early = wake.is_set()
        await asyncio.sleep(0.4)
        return early, wake.is_set()

    early, later = asyncio.run(scenario())
    assert not early and later


def test_forget_cancels_a_scheduled_wake(runtime: Runtime) -> None:
    ref = ResourceRef("EnvParity", "ops", "gone")
    envparity._scopes[ref] = frozenset({"prod"})

    async def scenario() -> bool:
        wake = asyncio.Event()
        runtime.wakers[ref] = wake
        envparity.watched_object_changed("prod")
        envparity.forget(ref)
        await asyncio.sleep(0.2)
        return wake.is_set()

    assert asyncio.run(scenario()) is False
    assert ref not in envparity._scopes


def test_outside_follows_the_operators_namespace_patterns() -> None:
    from perfguard.handlers.envparity import outside

    assert outside((), ["anything", "kube-system"]) == []
    assert outside(("ml-*",), ["ml-prod", "kube-system", "ml"]) == ["kube-system", "ml"]
    # Kopf's pattern syntax: one pattern with exclusions, and several patterns (any matches).
    assert outside(("ml-*,!ml-secret",), ["ml-prod", "ml-secret"]) == ["ml-secret"]
    assert outside(("ml-prod", "ml-staging"), ["ml-staging", "ml-dev"]) == ["ml-dev"]
