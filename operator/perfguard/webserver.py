"""The operator's HTTP endpoints: liveness, readiness and its own Prometheus metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from perfguard.handlers.runtime import Runtime


def build_app(runtime: Runtime) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        # Answering at all proves the event loop is not wedged.
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if not runtime.started:
            return web.Response(status=503, text="starting\n")
        return web.Response(text="ready\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(runtime.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def start(runtime: Runtime) -> web.AppRunner:
    runner = web.AppRunner(build_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, runtime.config.http_host, runtime.config.http_port)
    await site.start()
    return runner
