"""The HTTP server answers while the evaluations' Kubernetes calls hang.

A real socket plays an API server that takes connections and never answers; the
operator's StatusWriter sends status patches to it until every thread of asyncio's default
executor waits on one (as the evaluations' calls do in an API brownout). /metrics and a
gate, whose read goes to a second, answering server, must still answer at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from kubernetes.client import ApiClient, Configuration

from perfguard.config import OperatorConfig
from perfguard.handlers.runtime import Runtime
from perfguard.observability import OperatorMetrics
from perfguard.sources.kubernetes_api import RETRIES, StatusWriter
from perfguard.webserver import KubernetesObjectReader, build_app
from tests.local_http import start_server
from tests.unit.test_gates import pb


class SilentServer:
    """Takes connections and never answers, until closed."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(512)
        self.socket.settimeout(0.2)
        self.held: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                connection, _ = self.socket.accept()
            except TimeoutError:
                continue
            self.held.append(connection)

    def close(self) -> None:
        self.done.set()
        self.thread.join()
        for connection in self.held:
            connection.close()
        self.socket.close()


def client_of(url: str) -> ApiClient:
    configuration = Configuration(host=url)
    configuration.retries = RETRIES
    return ApiClient(configuration)


def test_metrics_and_gates_answer_while_every_default_thread_waits_on_the_api() -> None:
    """Before, /metrics was rendered in asyncio's default executor: behind status patches
    to a hung API server it waited for their 30 s timeouts (measured 9.8 s at a 5 s
    timeout), scrapes timed out and PerfguardOperatorDown fired with the operator up."""
    silent = SilentServer()
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    runtime.started = True
    runtime.metrics.ready.labels("PerfBaseline", "ml-prod", "resnet").set(1)
    canary = pb("Pass", at=datetime.now(UTC))

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(canary)

    async def scenario() -> tuple[int, int, int]:
        api, port = await start_server(answer)
        reader = KubernetesObjectReader(client_of(f"http://127.0.0.1:{port}"), timeout=10.0)
        writer = StatusWriter(client_of(silent.url), timeout=60.0)
        threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
        patches = [
            asyncio.create_task(writer.patch_status("perfbaselines", "ns", f"r{i}", {"x": i}))
            for i in range(2 * threads)
        ]
        try:
            async with TestClient(TestServer(build_app(runtime, reader))) as http:
                for _ in range(400):  # until every default thread waits on a patch
                    if len(silent.held) >= threads:
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"{len(silent.held)} patches reached the API")
                metrics = await asyncio.wait_for(http.get("/metrics"), timeout=10)
                page = await metrics.text()
                assert 'perfguard_ready{kind="PerfBaseline"' in page
                gate = await asyncio.wait_for(
                    http.post(
                        "/gates/flagger/perfbaseline",
                        json={"name": "resnet", "namespace": "ml-prod", "phase": "Progressing",
                              "metadata": {"candidate": "abc123"}},
                    ),
                    timeout=10,
                )  # fmt: skip
                health = await http.get("/healthz")
                return metrics.status, gate.status, health.status
        finally:
            silent.close()  # the patches fail now, at once
            await asyncio.gather(*patches, return_exceptions=True)
            await api.cleanup()

    assert asyncio.run(scenario()) == (200, 200, 200)
