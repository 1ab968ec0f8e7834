"""Prometheus credentials end to end: the operator under KopfRunner, a real Prometheus
behind an HTTPS reverse proxy that demands a bearer token, Secrets in the real API server.

The proxy's certificate comes from a throwaway CA (openssl CLI). Each PerfBaseline or
CapacityPlan below gets one combination of token, CA and URL, and must end Ready=True or
Ready=False with the specific reason. The planted tokens (right and wrong) must appear
nowhere the operator writes: status, Events, its /metrics, and its whole DEBUG log.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest
from aiohttp import web

from perfguard.local.prometheus import LocalPrometheus
from perfguard.sources.prometheus_auth import CREDENTIALS_LABEL
from tests.e2e.cluster import Cluster, condition, wait_for
from tests.local_http import start_server
from tests.unit.test_prometheus_auth import Certificates, issue_certificates

pytestmark = pytest.mark.e2e

TOKEN = "planted-token-" + secrets.token_hex(12)
WRONG_TOKEN = "planted-wrong-" + secrets.token_hex(12)
UNLABELLED_TOKEN = "planted-unlabelled-" + secrets.token_hex(12)
PLANTED = (
    TOKEN,
    WRONG_TOKEN,
    UNLABELLED_TOKEN,
    base64.b64encode(TOKEN.encode()).decode(),
    base64.b64encode(WRONG_TOKEN.encode()).decode(),
)
CAPTURED_LOGGERS = ("kopf", "perfguard", "kubernetes", "urllib3", "aiohttp", "asyncio")


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


# ---------------------------------------------------------------- the HTTPS proxy


@dataclass
class Proxy:
    """An HTTPS reverse proxy to Prometheus that wants `Authorization: Bearer <token>`,
    and a plain HTTP sink that must never be asked (it stands for a URL outside the
    allowlist). Both run on their own event loop in a thread."""

    upstream: str
    token: str
    tls: Any
    url: str = ""
    sink_url: str = ""
    authorized: int = 0
    refused: int = 0
    sink_requests: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _runners: list[web.AppRunner] = field(default_factory=list)
    _thread: threading.Thread | None = None

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization")
        if given != f"Bearer {self.token}":
            self.refused += 1
            # Echo what was sent, as some proxies do: the operator must not repeat it.
            return web.Response(status=401, text=f"unauthorized: {given}")
        self.authorized += 1
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "")}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as answer,
        ):
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                content_type=answer.content_type,
            )

    async def _sink(self, request: web.Request) -> web.StreamResponse:
        self.sink_requests += 1
        return web.json_response({"status": "success", "data": {}})

    async def _serve(self, handler: Any, tls: Any) -> str:
        runner, port = await start_server(handler, tls)
        self._runners.append(runner)
        return f"{'https://localhost' if tls else 'http://127.0.0.1'}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.url = self._call(self._serve(self._forward, self.tls))
        self.sink_url = self._call(self._serve(self._sink, None))

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(30)

    def stop(self) -> None:
        for runner in self._runners:
            self._call(runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()


@dataclass
class Setup:
    certs: Certificates
    proxy: Proxy
    prometheus: LocalPrometheus


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    work = tmp_path_factory.mktemp("prometheus-auth")
    certs = issue_certificates(work / "certs")
    # Queries are `vector(1)`: an empty TSDB answers them, no backfill needed.
    prometheus = LocalPrometheus(work / "data")
    try:
        prometheus.start()
    except Exception as error:
        pytest.fail(f"Prometheus did not start: {error}", pytrace=False)
    proxy = Proxy(prometheus.url, TOKEN, certs.server_context())
    proxy.start()
    try:
        yield Setup(certs, proxy, prometheus)
    finally:
        proxy.stop()
        prometheus.stop()


# ---------------------------------------------------------------- resources


def secret(name: str, data: dict[str, str], *, labelled: bool = True) -> dict[str, Any]:
    labels = {CREDENTIALS_LABEL: "true"} if labelled else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def perfbaseline(name: str, prometheus: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {"name": name},
        "spec": {
            "prometheus": {"timeout": "5s", **prometheus},
            "selector": {"service": "auth"},
            "comparison": "Historical",
            # Two days: a historical baseline is matched by time of day on earlier days.
            "baseline": {"window": "2d", "minSamples": 10},
            "analysis": {"interval": "3s", "window": "5m", "step": "30s", "sustainFor": "30s"},
            "metrics": [
                {
                    "name": "constant",
                    "type": "Query",
                    # A constant 1: `or` keeps vector(1), whose label set (none) equals
                    # count()'s; the template must name {{selector}}.
                    "query": "vector(1) or count(up{ {{selector}} })",
                    "thresholds": {"value": {"maxIncreasePercent": 10}},
                }
            ],
        },
    }


def capacityplan(name: str, prometheus: dict[str, Any], node_label: str) -> dict[str, Any]:
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "CapacityPlan",
        "metadata": {"name": name},
        "spec": {
            "prometheus": {"timeout": "5s", **prometheus},
            "nodes": {"selector": {"matchLabels": {"perfguard.dev/auth-test": node_label}}},
            "traffic": {"query": "vector(1)"},
            "history": "1h",
            "step": "1m",
            "interval": "3s",
        },
    }


def ready(cluster: Cluster, plural: str, name: str, namespace: str) -> dict[str, Any] | None:
    return condition(cluster.get(plural, name, namespace), "Ready")


def settle(
    cluster: Cluster, plural: str, name: str, namespace: str, expected: tuple[str, str]
) -> dict[str, Any]:
    """Wait for Ready to have (status, reason); fail showing the last condition."""
    last: dict[str, Any] | None = None

    def probe() -> bool:
        nonlocal last
        last = ready(cluster, plural, name, namespace)
        return last is not None and (last["status"], last["reason"]) == expected

    try:
        wait_for(probe, timeout=60, interval=1, what=f"{plural}/{name} Ready {expected}")
    except AssertionError as error:
        raise AssertionError(f"{error}\nlast Ready: {last}") from None
    assert last is not None
    return last


def test_credentials_tls_and_allowlist_through_the_operator(
    cluster: Cluster, namespace: str, operator_env: dict[str, str], setup: Setup
) -> None:
    from kopf.testing import KopfRunner

    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    core = kubernetes.client.CoreV1Api(api)
    custom = kubernetes.client.CustomObjectsApi(api)
    ca = setup.certs.ca.read_text()
    for body in (
        secret("prom-token", {"token": TOKEN + "\n"}),
        secret("prom-ca", {"ca.crt": ca}),
        secret("other-ca", {"ca.crt": setup.certs.other_ca.read_text()}),
        secret("rotating-token", {"token": WRONG_TOKEN}),
        secret("unlabelled-token", {"token": UNLABELLED_TOKEN}, labelled=False),
    ):
        core.create_namespaced_secret(namespace, body)
    node_label = uuid.uuid4().hex[:10]
    node_name = f"auth-node-{node_label}"
    core.create_node(
        {"metadata": {"name": node_name, "labels": {"perfguard.dev/auth-test": node_label}}}
    )

    url = setup.proxy.url
    token = {"bearerTokenSecret": {"name": "prom-token", "key": "token"}}
    trust = {"tls": {"caSecret": {"name": "prom-ca", "key": "ca.crt"}}}
    cases: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {
        "ok": ({"url": url, **token, **trust}, ("True", "Evaluated")),
        "server-name": (
            {
                "url": url.replace("localhost", "127.0.0.1"),
                **token,
                "tls": {
                    "caSecret": {"name": "prom-ca", "key": "ca.crt"},
                    "serverName": "localhost",
                },
            },
            ("True", "Evaluated"),
        ),
        "rotating": (
            {"url": url, "bearerTokenSecret": {"name": "rotating-token", "key": "token"}, **trust},
            ("False", "PrometheusUnauthorized"),
        ),
        "no-token": ({"url": url, **trust}, ("False", "PrometheusUnauthorized")),
        "unknown-ca": (
            {"url": url, **token, "tls": {"caSecret": {"name": "other-ca", "key": "ca.crt"}}},
            ("False", "PrometheusTLSError"),
        ),
        "system-roots": ({"url": url, **token}, ("False", "PrometheusTLSError")),
        "unlabelled": (
            {
                "url": url,
                "bearerTokenSecret": {"name": "unlabelled-token", "key": "token"},
                **trust,
            },
            ("False", "PrometheusCredentialsUnavailable"),
        ),
        "missing-secret": (
            {"url": url, "bearerTokenSecret": {"name": "nope", "key": "token"}, **trust},
            ("False", "PrometheusCredentialsUnavailable"),
        ),
        "not-allowed": (
            {"url": setup.proxy.sink_url, **token},
            ("False", "PrometheusURLNotAllowed"),
        ),
    }
    for name, (prometheus, _) in cases.items():
        custom.create_namespaced_custom_object(
            "perfguard.dev", "v1alpha1", namespace, "perfbaselines", perfbaseline(name, prometheus)
        )
    plans = {
        "cplan-ok": {"url": url, **token, **trust},
        "cplan-wrong-ca": {
            "url": url,
            **token,
            "tls": {"caSecret": {"name": "other-ca", "key": "ca.crt"}},
        },
    }
    for name, prometheus in plans.items():
        custom.create_namespaced_custom_object(
            "perfguard.dev",
            "v1alpha1",
            namespace,
            "capacityplans",
            capacityplan(name, prometheus, node_label),
        )

    log = LogCapture()
    root = logging.getLogger()
    for logger in CAPTURED_LOGGERS:
        logging.getLogger(logger).addHandler(log)
    patcher = pytest.MonkeyPatch()
    patcher.setenv("PERFGUARD_LOG_LEVEL", "DEBUG")
    patcher.setenv(
        "PERFGUARD_PROMETHEUS_ALLOWED_URLS", f"{url},{url.replace('localhost', '127.0.0.1')}"
    )
    args = ["run", "--standalone", "--namespace", namespace, "-m", "perfguard.handlers"]
    try:
        with KopfRunner(args, timeout=120) as runner:
            for name, (_, expected) in cases.items():
                settle(cluster, "pb", name, namespace, expected)
            root.addHandler(log)  # startup replaced the root's handlers; catch the rest too

            ok = cluster.get("pb", "ok", namespace)["status"]
            assert ok["verdict"] == "Pass", ok
            refused = ready(cluster, "pb", "no-token", namespace)
            assert refused is not None and "bearerTokenSecret" in refused["message"]
            wrong = ready(cluster, "pb", "rotating", namespace)
            assert wrong is not None and "credentials were refused" in wrong["message"]
            unknown = ready(cluster, "pb", "unknown-ca", namespace)
            assert unknown is not None and "certificate verify failed" in unknown["message"]
            unlabelled = ready(cluster, "pb", "unlabelled", namespace)
            assert unlabelled is not None and CREDENTIALS_LABEL in unlabelled["message"]
            assert (cluster.get("pb", "unknown-ca", namespace)["status"]["verdict"]) == (
                "Inconclusive"
            )

            # CapacityPlan builds its client the same way.
            plan = settle(
                cluster, "cplan", "cplan-wrong-ca", namespace, ("False", "PrometheusTLSError")
            )
            assert "certificate verify failed" in plan["message"]
            good = wait_for(
                lambda: (
                    (r := ready(cluster, "cplan", "cplan-ok", namespace))
                    and not r["reason"].startswith("Prometheus")
                    and r["reason"] != "NoNodes"
                    and r
                ),
                timeout=60,
                what="cplan-ok evaluated past Prometheus",
            )
            assert good["reason"] not in {"PrometheusUnauthorized", "PrometheusTLSError"}, good

            # A Secret rotated to the right token is picked up at the next evaluation.
            core.patch_namespaced_secret(
                "rotating-token",
                namespace,
                {"data": {"token": base64.b64encode(TOKEN.encode()).decode()}},
            )
            settle(cluster, "pb", "rotating", namespace, ("True", "Evaluated"))

            events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
            statuses = cluster.kubectl("get", "pb,cplan", "-n", namespace, "-o", "json").stdout
            described = cluster.kubectl("describe", "pb,cplan", "-n", namespace).stdout
            port = operator_env["PERFGUARD_HTTP_PORT"]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                metrics = r.read().decode()
        assert runner.exception is None, runner.output
    finally:
        root.removeHandler(log)
        for logger in CAPTURED_LOGGERS:
            logging.getLogger(logger).removeHandler(log)
        patcher.undo()
        core.delete_node(node_name)

    # The proxy saw the token (the scan below covers a real exchange) and the URL
    # outside the allowlist was never asked, with or without credentials.
    assert setup.proxy.authorized > 0 and setup.proxy.refused > 0
    assert setup.proxy.sink_requests == 0
    assert "PrometheusUnauthorized" in statuses and "PrometheusTLSError" in statuses
    assert json.loads(events)["items"], "no Events were written"
    whole_log = "\n".join(log.lines) + "\n" + runner.output
    assert "perfbaseline_daemon" in whole_log, "the log was not captured"
    for where, text in (
        ("status", statuses),
        ("Events", events),
        ("kubectl describe", described),
        ("/metrics", metrics),
        ("the operator's log", whole_log),
    ):
        for planted in PLANTED:
            assert planted not in text, f"a planted credential was found in {where}"


def test_evaluate_offline_with_token_and_ca_files(setup: Setup, tmp_path: Path) -> None:
    """`perfguard evaluate` against the same proxy: --bearer-token-file and --ca-file."""
    import subprocess
    import sys

    import yaml

    spec = perfbaseline("offline", {"url": setup.proxy.url})
    spec["metadata"]["namespace"] = "offline"
    spec["spec"]["analysis"]["sustainFor"] = "6s"  # three replayed evaluations, not eleven
    path = tmp_path / "pb.yaml"
    path.write_text(yaml.safe_dump(spec))
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    base = [sys.executable, "-m", "perfguard.cli", "evaluate", "-f", str(path), "-o", "json"]

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra], capture_output=True, text=True, timeout=120)

    good = run("--bearer-token-file", str(token), "--ca-file", str(setup.certs.ca))
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["verdict"] == "Pass"
    untrusted = run("--bearer-token-file", str(token))
    assert untrusted.returncode == 4 and "certificate verify failed" in untrusted.stderr
    anonymous = run("--ca-file", str(setup.certs.ca))
    assert anonymous.returncode == 4 and "401" in anonymous.stderr
    for result in (good, untrusted, anonymous):
        assert TOKEN not in result.stdout + result.stderr
