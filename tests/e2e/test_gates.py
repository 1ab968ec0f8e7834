"""Canary gates against a real kube-apiserver.

1. Flagger's webhook gates (perfguard.webserver) POSTed real Flagger-shaped payloads, reading
   PerfBaselines and EnvParities whose status the test writes through the status subresource.
   Only the HTTP app runs (build_app with a client for the test cluster), not the operator's
   daemons, which would overwrite the status; one test runs the whole operator to prove the
   gates are served by `perfguard run`'s HTTP server, on a resource in a namespace it does
   not watch.
2. The chart's Argo Rollouts AnalysisTemplate (web provider): its exact URL, with the args
   substituted, is fetched as the analysis ServiceAccount with the chart's RBAC, verifying
   TLS for kubernetes.default.svc against the cluster's CA; the template's jsonPath is
   evaluated with jsonpath-ng and its success/failure conditions with a minimal evaluator of
   the expression subset they use, for Pass, Fail, Inconclusive and a stale candidate.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes
import pytest
import yaml
from aiohttp import web
from jsonpath_ng.ext.parser import parse as jsonpath

from perfguard.config import OperatorConfig
from perfguard.handlers.runtime import Runtime
from perfguard.local.processes import free_port
from perfguard.observability import OperatorMetrics
from perfguard.times import format_time
from perfguard.webserver import KubernetesObjectReader, build_app
from tests.e2e.cluster import Cluster, wait_for
from tests.e2e.test_chart import apply_rbac, one, render
from tests.e2e.test_crd_schema import sample

pytestmark = pytest.mark.e2e


# ----------------------------------------------------------------- helpers


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Run the aiohttp app on its own event loop in a thread; yield its base URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = web.AppRunner(app, access_log=None)
    port = free_port()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def post(url: str, payload: Any) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def flagger_payload(canary: str, namespace: str, **metadata: str) -> dict[str, Any]:
    """What Flagger POSTs to a webhook (CanaryWebhookPayload)."""
    return {
        "name": canary,
        "namespace": namespace,
        "phase": "Progressing",
        "checksum": "5d8f9c7b6d4c",
        "metadata": metadata,
    }


def set_status(cluster: Cluster, kind: str, name: str, namespace: str, status: Any) -> None:
    cluster.kubectl(
        "patch", kind, name, "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip


def just_now() -> str:
    """A lastEvaluationTime the gates take as recent."""
    return format_time(datetime.now(UTC))


EVALUATION_ERROR = {
    "type": "Ready",
    "status": "False",
    "reason": "EvaluationError",
    "message": "KeyError: 'p95'",
    "lastTransitionTime": "2026-12-05T09:00:00Z",
}
READY_TRUE = {**EVALUATION_ERROR, "status": "True", "reason": "Evaluated", "message": "ok"}


def pb_status(verdict: str, identity: str, generation: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "candidate": {"identity": identity, "source": "WorkloadRef"},
        "observedGeneration": generation,
        "lastEvaluationTime": just_now(),
        **extra,
    }


def create(cluster: Cluster, kind: str, name: str, namespace: str) -> None:
    doc = sample(kind, namespace)
    doc["metadata"]["name"] = name
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))


@pytest.fixture(scope="module")
def api_client(cluster: Cluster) -> Any:
    return kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="module")
def gates(api_client: Any) -> Iterator[str]:
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    runtime.started = True
    with serve(build_app(runtime, KubernetesObjectReader(api_client))) as url:
        yield url


# ----------------------------------------------------------------- Flagger gates


def test_flagger_perfbaseline_gate(cluster: Cluster, namespace: str, gates: str) -> None:
    create(cluster, "perfbaseline", "resnet", namespace)
    gate = f"{gates}/gates/flagger/perfbaseline"
    rollback = f"{gates}/gates/flagger/perfbaseline/rollback"
    # The Canary is called resnet too: without metadata the gate reads the PerfBaseline of
    # the Canary's name; `candidate` pins the judged pod-template hash.
    plain = flagger_payload("resnet", namespace)
    current = flagger_payload("resnet", namespace, candidate="7c9d8f6b5")
    other = flagger_payload("resnet", namespace, candidate="5f4e3d2c1")

    status, body = post(gate, plain)
    assert (status, body) == (
        409,
        f"NotEvaluated: PerfBaseline {namespace}/resnet has no verdict yet\n",
    )

    set_status(cluster, "pb", "resnet", namespace, pb_status("Pass", "7c9d8f6b5"))
    assert post(gate, plain) == (
        200,
        f"Passed: PerfBaseline {namespace}/resnet: Pass for candidate 7c9d8f6b5\n",
    )
    assert post(gate, current)[0] == 200
    status, body = post(gate, other)
    assert status == 409 and body.startswith("StaleCandidate: ")
    assert "about candidate 7c9d8f6b5, not 5f4e3d2c1" in body
    assert post(rollback, current)[0] == 409

    set_status(
        cluster, "pb", "resnet", namespace,
        pb_status("Fail", "7c9d8f6b5", message="latency p95 +12 ms (CI95 [8, 16] ms) > 5 ms"),
    )  # fmt: skip
    status, body = post(gate, current)
    assert status == 412
    assert body == (
        f"Regressed: PerfBaseline {namespace}/resnet: Fail for candidate 7c9d8f6b5 "
        "(latency p95 +12 ms (CI95 [8, 16] ms) > 5 ms); promotion blocked\n"
    )
    assert post(rollback, current)[0] == 200
    # A Fail about an older candidate neither promotes nor rolls back the new one.
    assert post(gate, other)[0] == 409
    assert post(rollback, other)[0] == 409

    set_status(cluster, "pb", "resnet", namespace, pb_status("Inconclusive", "7c9d8f6b5"))
    status, body = post(gate, current)
    assert status == 409 and body.startswith("Inconclusive: ")

    # A Pass the operator has not refreshed for an hour: it is not evaluating any more.
    hour_ago = format_time(datetime.now(UTC) - timedelta(hours=1))
    set_status(
        cluster, "pb", "resnet", namespace,
        pb_status("Pass", "7c9d8f6b5", lastEvaluationTime=hour_ago),
    )  # fmt: skip
    status, body = post(gate, current)
    assert status == 409 and body.startswith("StaleVerdict: "), body
    assert f"was reached 1h ago ({hour_ago})" in body

    # An hour-old Fail rolls back only the canary it names by its pod-template hash: a
    # webhook without the candidate cannot tell this revision from the one that failed.
    set_status(
        cluster, "pb", "resnet", namespace,
        pb_status("Fail", "7c9d8f6b5", lastEvaluationTime=hour_ago),
    )  # fmt: skip
    assert post(rollback, current)[0] == 200
    status, body = post(rollback, plain)
    assert status == 409 and body.startswith("StaleVerdict: "), body
    # A label identity (spec.candidate) is every revision's: an old Fail never rolls back,
    # and a hash cannot be checked against it (400, not a 409 for ever).
    labels = {"identity": "app=resnet", "source": "Labels"}
    set_status(cluster, "pb", "resnet", namespace, {"candidate": labels})
    status, body = post(rollback, flagger_payload("resnet", namespace, candidate="app=resnet"))
    assert status == 409 and body.startswith("StaleVerdict: "), body
    status, body = post(gate, current)
    assert status == 400 and body.startswith(
        f"InvalidPayload: PerfBaseline {namespace}/resnet identifies its candidate by labels "
        "(app=resnet)"
    ), body
    # An empty candidate is not "any candidate".
    status, body = post(gate, flagger_payload("resnet", namespace, candidate=""))
    assert status == 400 and body.startswith("InvalidPayload: metadata.candidate is empty"), body

    # A spec change (generation 2) not evaluated yet: the Pass is about the old spec.
    set_status(cluster, "pb", "resnet", namespace, pb_status("Pass", "7c9d8f6b5"))
    cluster.kubectl(
        "patch", "pb", "resnet", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"analysis": {"window": "15m"}}}),
    )  # fmt: skip
    status, body = post(gate, current)
    assert status == 409 and body.startswith("SpecNotEvaluated: "), body

    # Named through metadata, in another namespace of the payload's choosing.
    status, body = post(gate, flagger_payload("web", "elsewhere", perfbaseline=f"{namespace}/gone"))
    assert (status, body) == (404, f"NotFound: PerfBaseline {namespace}/gone does not exist\n")
    assert post(gate, {"name": "resnet"})[0] == 400


def test_flagger_envparity_gate(cluster: Cluster, namespace: str, gates: str) -> None:
    create(cluster, "envparity", "inference", namespace)
    gate = f"{gates}/gates/flagger/envparity"
    payload = flagger_payload("resnet", namespace, envparity="inference")
    base = {"observedGeneration": 1, "compared": 8, "lastEvaluationTime": just_now()}

    set_status(
        cluster,
        "envp",
        "inference",
        namespace,
        {**base, "verdict": "InSync", "driftPercent": 0.0, "differing": 0},
    )
    assert post(gate, payload) == (
        200,
        f"InSync: EnvParity {namespace}/inference: InSync (drift 0%)\n",
    )

    set_status(
        cluster, "envp", "inference", namespace,
        {**base, "verdict": "Drifted", "driftPercent": 12.5, "differing": 2,
         "message": "1 of 8 items differs: image of resnet"},
    )  # fmt: skip
    status, body = post(gate, payload)
    assert status == 412
    assert body == (
        f"Drifted: EnvParity {namespace}/inference: Drifted (drift 12.5%) "
        "(1 of 8 items differs: image of resnet); promotion blocked\n"
    )

    set_status(
        cluster,
        "envp",
        "inference",
        namespace,
        {**base, "verdict": "Unverified", "driftPercent": None},
    )
    status, body = post(gate, payload)
    assert status == 409 and body.startswith("Unverified: ")


def test_gate_reads_with_the_operators_service_account_under_the_charts_rbac(
    cluster: Cluster, namespace: str, api_client: Any
) -> None:
    """The gate's read works with nothing but the chart's RBAC (not the admin's)."""
    release = f"gate-{uuid.uuid4().hex[:6]}"
    system = f"{release}-system"
    apply_rbac(cluster, render(release=release, namespace=system), [system])
    token = cluster.kubectl("create", "token", f"{release}-perfguard", "-n", system).stdout.strip()
    configuration = kubernetes.client.Configuration()
    configuration.host = api_client.configuration.host
    configuration.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    create(cluster, "perfbaseline", "resnet", namespace)
    set_status(cluster, "pb", "resnet", namespace, pb_status("Pass", "7c9d8f6b5"))
    runtime = Runtime(config=OperatorConfig(), metrics=OperatorMetrics())
    reader = KubernetesObjectReader(kubernetes.client.ApiClient(configuration))
    with serve(build_app(runtime, reader)) as url:
        status, body = post(
            f"{url}/gates/flagger/perfbaseline", flagger_payload("resnet", namespace)
        )
    assert status == 200, body


def test_the_running_operator_serves_the_gates(
    cluster: Cluster, namespace: str, run_operator: object, operator_env: dict[str, str]
) -> None:
    """`perfguard run` (KopfRunner) answers the Flagger gate on its own HTTP port, reading
    through the client it loads from the environment."""
    other = f"t-{uuid.uuid4().hex[:10]}"  # not watched: the operator leaves its status alone
    cluster.kubectl("create", "namespace", other)
    try:
        create(cluster, "perfbaseline", "resnet", other)
        set_status(cluster, "pb", "resnet", other, pb_status("Pass", "7c9d8f6b5"))
        port = operator_env["PERFGUARD_HTTP_PORT"]
        url = f"http://127.0.0.1:{port}/gates/flagger/perfbaseline"
        payload = flagger_payload("resnet", other, candidate="7c9d8f6b5")

        def answered() -> tuple[int, str] | None:
            try:
                return post(url, payload)
            except OSError:
                return None  # not listening yet

        status, body = wait_for(answered, timeout=30, what="the operator's gate endpoint")
        assert status == 200, body
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        assert b'perfguard_gate_decisions_total{code="200",gate="perfbaseline"' in metrics
    finally:
        cluster.kubectl("delete", "pb", "resnet", "-n", other, "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


# ----------------------------------------------------------------- Argo Rollouts web template


class ConditionError(Exception):
    """The expression would fail in Argo (expr): a field fetched from nil."""


_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|[(){},]|'[^']*'|[#A-Za-z_][A-Za-z0-9_.]*)")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        assert match, f"outside the evaluated subset at {text[position:]!r}"
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _Parser:
    """expr's grammar, as far as the chart's conditions use it: `||` over `&&` over
    comparisons `a == b` / `a != b` of paths (`result.x.y`, `#.x` inside a predicate),
    'literals' and nil; parentheses; and `none(array, {predicate})`."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        assert token is not None and (expected is None or token == expected), (
            f"expected {expected!r} at {self.tokens[self.at :]!r}"
        )
        self.at += 1
        return token

    def parse(self) -> Any:
        tree = self.either()
        assert self.peek() is None, f"left over: {self.tokens[self.at :]!r}"
        return tree

    def either(self) -> Any:
        tree = self.both()
        while self.peek() == "||":
            self.take()
            tree = ("||", tree, self.both())
        return tree

    def both(self) -> Any:
        tree = self.atom()
        while self.peek() == "&&":
            self.take()
            tree = ("&&", tree, self.atom())
        return tree

    def atom(self) -> Any:
        if self.peek() == "(":
            self.take()
            tree = self.either()
            self.take(")")
            return tree
        if self.peek() == "none":
            self.take()
            self.take("(")
            array = self.operand()
            self.take(",")
            self.take("{")
            predicate = self.either()
            self.take("}")
            self.take(")")
            return ("none", array, predicate)
        left = self.operand()
        operator = self.take()
        assert operator in ("==", "!="), f"not a comparison: {operator!r}"
        return (operator, left, self.operand())

    def operand(self) -> Any:
        token = self.take()
        if token == "nil":
            return ("nil",)
        if token.startswith("'"):
            return ("literal", token[1:-1])
        assert token.split(".")[0] in ("result", "#"), f"unknown name {token!r}"
        return ("path", token)


def _fetch(path: str, result: Any, element: Any) -> Any:
    root, *keys = path.split(".")
    node = result if root == "result" else element
    for key in keys:
        if node is None:
            raise ConditionError(f"cannot fetch {key} from nil in {path}")
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _run(tree: Any, result: Any, element: Any = None) -> Any:
    kind = tree[0]
    if kind == "nil":
        return None
    if kind == "literal":
        return tree[1]
    if kind == "path":
        return _fetch(tree[1], result, element)
    if kind == "&&":
        return _run(tree[1], result, element) and _run(tree[2], result, element)
    if kind == "||":
        return _run(tree[1], result, element) or _run(tree[2], result, element)
    if kind == "none":
        array = _run(tree[1], result, element)
        if not isinstance(array, list):
            raise ConditionError(f"none() of {array!r}: not an array")
        return not any(_run(tree[2], result, item) for item in array)
    left, right = _run(tree[1], result, element), _run(tree[2], result, element)
    return (left == right) if kind == "==" else (left != right)


def evaluate(condition: str, result: Any) -> bool:
    """The subset of Argo's expr language the chart's conditions use (see _Parser),
    short-circuiting like expr (a missing map key is nil; fetching from nil is an error, and
    so is none() of anything but an array)."""
    return bool(_run(_Parser(condition).parse(), result))


def argo_phase(metric: dict[str, Any], body: Any) -> str:
    """Argo's measurement phase: the first jsonPath result, then failure before success;
    neither (with both given) is Inconclusive."""
    path = metric["provider"]["web"]["jsonPath"]
    assert path.startswith("{") and path.endswith("}")
    matches = jsonpath(path[1:-1]).find(body)
    assert matches, "Argo: result of web metric produced no value"
    result = matches[0].value
    if evaluate(metric["failureCondition"], result):
        return "Failed"
    if evaluate(metric["successCondition"], result):
        return "Successful"
    return "Inconclusive"


def substitute(text: str, args: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        return args[match.group(1)]

    return re.sub(r"\{\{\s*args\.([a-z0-9-]+)\s*\}\}", value, text)


def get_as(url: str, headers: dict[str, str], cluster_url: str, ca_file: Path) -> Any:
    """GET `url` (https://kubernetes.default.svc/...) from the test apiserver, verifying its
    certificate for the URL's host name against the cluster CA."""
    parts = urlsplit(url)
    target = urlsplit(cluster_url)
    context = ssl.create_default_context(cafile=str(ca_file))
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.hostname}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    response = b""
    with (
        socket.create_connection((target.hostname, target.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while chunk := tls.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    if b"transfer-encoding: chunked" in head.lower():
        decoded = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            decoded += rest[:size]
            body = rest[size + 2 :]
        body = decoded
    assert status == 200, f"GET {url}: HTTP {status} {body[:300]!r}"
    return json.loads(body)


def test_argo_web_analysis_template_judges_the_canary_from_the_real_api(
    cluster: Cluster, namespace: str
) -> None:
    release = f"argo-{uuid.uuid4().hex[:6]}"
    docs = render(
        {"argoRollouts": {"analysisTemplates": {"enabled": True}, "namespaces": [namespace]}},
        release=release,
        namespace=f"{release}-system",
    )
    template = one(docs, "ClusterAnalysisTemplate", f"{release}-perfguard-perfbaseline")
    metric = template["spec"]["metrics"][0]
    web_provider = metric["provider"]["web"]
    assert set(metric) <= {
        "name", "interval", "count", "initialDelay", "failureLimit", "inconclusiveLimit",
        "consecutiveErrorLimit", "successCondition", "failureCondition", "provider",
    }  # fmt: skip
    assert set(web_provider) <= {
        "method", "url", "headers", "body", "timeoutSeconds", "jsonPath", "insecure",
        "jsonBody", "authentication",
    }  # fmt: skip
    token_arg = next(a for a in template["spec"]["args"] if a["name"] == "token")
    assert token_arg["valueFrom"]["secretKeyRef"] == {
        "name": "perfguard-analysis-token",
        "key": "token",
    }
    # The token Secret the chart creates for the analysis ServiceAccount in that namespace.
    token_secret = one(docs, "Secret", "perfguard-analysis-token")
    assert token_secret["type"] == "kubernetes.io/service-account-token"
    assert token_secret["metadata"]["namespace"] == namespace

    # The chart's analysis RBAC in the real apiserver; a token for its ServiceAccount through
    # the TokenRequest API (no token controller fills Secrets here).
    apply_rbac(cluster, docs, [namespace])
    token = cluster.kubectl("create", "token", "perfguard-analysis", "-n", namespace).stdout.strip()
    create(cluster, "perfbaseline", "resnet", namespace)

    plane = cluster.control_plane  # type: ignore[attr-defined]
    args = {"namespace": namespace, "name": "resnet", "canary-hash": "7c9d8f6b5", "token": token}
    url = substitute(web_provider["url"], args)
    assert url == (
        "https://kubernetes.default.svc/apis/perfguard.dev/v1alpha1"
        f"/namespaces/{namespace}/perfbaselines/resnet"
    )
    headers = {h["key"]: substitute(h["value"], args) for h in web_provider["headers"]}
    assert headers["Authorization"] == f"Bearer {token}"
    measured = {
        key: substitute(metric[key], args) for key in ("successCondition", "failureCondition")
    }
    measured["provider"] = metric["provider"]

    def phase() -> str:
        return argo_phase(measured, get_as(url, headers, plane.url, plane.ca_file))

    # Before the first evaluation there is no status: neither condition, no error.
    assert phase() == "Inconclusive"
    cases = [
        (pb_status("Pass", "7c9d8f6b5"), "Successful"),
        (pb_status("Fail", "7c9d8f6b5"), "Failed"),
        (pb_status("Inconclusive", "7c9d8f6b5"), "Inconclusive"),
        # A verdict about another (older) candidate says nothing about this canary.
        (pb_status("Pass", "5f4e3d2c1"), "Inconclusive"),
        (pb_status("Fail", "5f4e3d2c1"), "Inconclusive"),
        # The latest evaluation of this spec raised: its Pass is an earlier evaluation's
        # (the Flagger gate answers 409 EvaluationFailed); a Fail still fails.
        (pb_status("Pass", "7c9d8f6b5", conditions=[EVALUATION_ERROR]), "Inconclusive"),
        (pb_status("Fail", "7c9d8f6b5", conditions=[EVALUATION_ERROR]), "Failed"),
        (pb_status("Pass", "7c9d8f6b5", conditions=[READY_TRUE]), "Successful"),
    ]
    for status, expected in cases:
        set_status(cluster, "pb", "resnet", namespace, status)
        assert phase() == expected, status
    # A Pass on an older spec (generation moved on) is not a Pass yet.
    set_status(cluster, "pb", "resnet", namespace, pb_status("Pass", "7c9d8f6b5"))
    cluster.kubectl(
        "patch", "pb", "resnet", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"analysis": {"window": "15m"}}}),
    )  # fmt: skip
    assert phase() == "Inconclusive"

    # The token reads PerfBaselines of its own namespace only.
    with pytest.raises(AssertionError, match="HTTP 403"):
        get_as(
            url.replace(f"/namespaces/{namespace}/", "/namespaces/default/"),
            headers, plane.url, plane.ca_file,
        )  # fmt: skip


def test_condition_evaluator_matches_expr_semantics() -> None:
    """The test's evaluator: short-circuit, nil for a missing key, error on nil fetch."""
    assert evaluate("result.a != nil && result.a.b == 'x'", {"a": {"b": "x"}})
    assert not evaluate("result.a != nil && result.a.b == 'x'", {})
    assert evaluate("result.a == result.b", {"a": 1, "b": 1})
    with pytest.raises(ConditionError):
        evaluate("result.a.b == 'x'", {})
    ready = "none(result.c, {#.type == 'Ready' && #.reason == 'Boom'})"
    assert evaluate(ready, {"c": [{"type": "Ready", "reason": "Fine"}]})
    assert not evaluate(ready, {"c": [{"type": "Other"}, {"type": "Ready", "reason": "Boom"}]})
    assert evaluate(ready, {"c": []})
    assert evaluate(f"(result.c == nil || {ready})", {})
    with pytest.raises(ConditionError):
        evaluate(ready, {})


def test_gating_doc_examples_are_accepted_by_the_apiserver(
    cluster: Cluster, namespace: str
) -> None:
    """The PerfBaselines in docs/gating.md pass the real CRD schema (server-side dry run)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "gating.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    resources = [
        d
        for block in blocks
        for d in yaml.safe_load_all(block)
        if isinstance(d, dict) and d.get("apiVersion") == "perfguard.dev/v1alpha1"
    ]
    assert len(resources) == 2
    for doc in resources:
        doc["metadata"]["namespace"] = namespace
        result = cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(doc), check=False
        )
        assert result.returncode == 0, result.stderr
