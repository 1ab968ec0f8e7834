"""A reverse proxy in front of a real Prometheus that breaks on command and records queries.

Runs its own event loop in a thread, so tests drive it synchronously: `proxy.mode = "500"`.
Modes: `pass` (forward), `delay` (forward after `delay_s`), `500` (HTTP 500 with a
Prometheus-style error body), `malformed` (200 with truncated JSON), `partial` (200 with
the first series only and a warning), `reset` (close the connection without answering).
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from perfguard.local.processes import free_port


@dataclass
class FaultProxy:
    upstream: str
    mode: str = "pass"
    delay_s: float = 0.0
    port: int = field(default_factory=free_port)
    queries: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        form = urllib.parse.parse_qs(body.decode()) if body else {}
        query = (form.get("query") or request.query.getall("query", []) or [""])[0]
        if query:
            self.queries.append(query)
        mode = self.mode
        if mode == "reset":
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("fault proxy: reset")
        if mode == "500":
            return web.json_response(
                {"status": "error", "errorType": "internal", "error": "injected failure"},
                status=500,
            )
        if mode == "malformed":
            return web.Response(body=b'{"status":"success","data":{"resultType":"matr', status=200)
        if mode == "delay":
            await asyncio.sleep(self.delay_s)
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "")},
            ) as upstream,
        ):
            payload = await upstream.read()
            status = upstream.status
        if mode == "partial" and status == 200:
            data = json.loads(payload)
            result = data.get("data", {}).get("result")
            if isinstance(result, list):
                data["data"]["result"] = result[:1]
                data["warnings"] = ["fault proxy: partial result"]
            payload = json.dumps(data).encode()
        return web.Response(body=payload, status=status, content_type="application/json")

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            loop.run_until_complete(site.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
