"""A reverse proxy in front of a real Prometheus that breaks on command and records queries.

Runs its own event loop in a thread, so tests drive it synchronously: `proxy.mode = "500"`.
Modes: `pass` (forward), `delay` (forward after `delay_s`), `500` (HTTP 500 with a
Prometheus-style error body), `malformed` (200 with truncated JSON), `partial` (Prometheus'
answer, every series kept, with the warning Prometheus adds when a remote_read store is
down), `info` (every series, with a PromQL info annotation among the warnings, as
Prometheus 2.48-2.53 sends them), `reset` (close the connection without answering).
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

# What Prometheus 2.42 adds to an answer when a remote_read endpoint is down (the data of
# the other stores is still there).
REMOTE_READ_WARNING = (
    'remote_read: error sending request: Post "http://store.monitoring:9090/api/v1/read": '
    "dial tcp 10.0.0.7:9090: connect: connection refused"
)
INFO_WARNING = (
    "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see "
    "https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) "
    'for metric name "inference_request_duration_seconds"'
)
WARNING_OF_MODE = {"partial": REMOTE_READ_WARNING, "info": INFO_WARNING}


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
        if mode in WARNING_OF_MODE and status == 200:
            # The series are all kept: what makes the answer partial is only what Prometheus
            # says about it, so a judge that reads the series alone cannot tell.
            data = json.loads(payload)
            if data.get("status") == "success":
                data["warnings"] = [*data.get("warnings", []), WARNING_OF_MODE[mode]]
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
