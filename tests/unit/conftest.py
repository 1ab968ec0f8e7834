"""Fixtures shared by unit tests."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from tests.local_http import Handler, start_server


@pytest.fixture
def serve() -> Iterator[Callable[..., Awaitable[tuple[web.AppRunner, str]]]]:
    """Start a local aiohttp server answering every path with `handler`: (runner, base URL).
    The caller cleans the runner up."""

    async def start(
        handler: Handler, tls: ssl.SSLContext | None = None
    ) -> tuple[web.AppRunner, str]:
        runner, port = await start_server(handler, tls)
        return runner, f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start


@pytest.fixture(autouse=True)
def _operator_runtime_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests that install an operator Runtime (set_runtime) get it taken away again,
    so a later test never runs against another test's runtime. Not for e2e tests: an
    in-process operator started by a module fixture installs its runtime from its own
    thread, after a test may already have begun, and must keep it for the module."""
    from perfguard.handlers import runtime

    monkeypatch.setattr(runtime, "_runtime", runtime._runtime)
