"""A throwaway local HTTP server for tests (aiohttp), on a free port of 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def start_server(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Serve every method and path with `handler`: (runner to clean up, port)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port
