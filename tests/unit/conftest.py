"""Fixtures shared by unit tests."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def serve() -> Iterator[Callable[..., Awaitable[tuple[web.AppRunner, str]]]]:
    """Start a local aiohttp server answering every path with `handler`: (runner, base URL).
    The caller cleans the runner up."""

    async def start(
        handler: Handler, tls: ssl.SSLContext | None = None
    ) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner, f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    yield start
