"""Prometheus credentials and TLS: headers, SSL contexts, the URL allowlist, redaction.

The HTTP tests run the real client against small in-process aiohttp servers (plain and
TLS with a throwaway CA made by the openssl CLI); tests/e2e/test_prometheus_auth.py does
the same through the operator against a real Prometheus behind an HTTPS proxy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import ssl
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from perfguard.api.perfbaseline import PerfBaselineSpec, PrometheusRef
from perfguard.cli import main
from perfguard.config import OperatorConfig
from perfguard.sources.prometheus import (
    NO_OPTIONS,
    FailureKind,
    PrometheusClient,
    PrometheusError,
    RequestOptions,
    new_session,
)
from perfguard.sources.prometheus_auth import (
    CREDENTIALS_LABEL,
    CredentialsError,
    SecretReader,
    basic_options,
    bearer_options,
    client_for,
    offline_options,
    request_options,
    ssl_context,
    url_allowed,
)

TOKEN = "tok-" + secrets.token_hex(16)
AT = datetime(2026, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path  # a CA that did not sign the server's certificate

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(directory: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
        "-subj", f"/CN=perfguard test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=directory,
    )  # fmt: skip


def issue_certificates(directory: Path, hosts: tuple[str, ...] = ("localhost",)) -> Certificates:
    """A CA, a server certificate it signed for `hosts` (and 127.0.0.1), and an unrelated
    CA: enough to test trust, names and an unknown issuer."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca")
    _ca(directory, "other-ca")
    names = ",".join([*(f"DNS:{h}" for h in hosts), "IP:127.0.0.1"])
    (directory / "server.ext").write_text(
        f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "server.key", "-out", "server.csr", "-subj", f"/CN={hosts[0]}",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    return Certificates(
        directory / "ca.crt", directory / "server.crt", directory / "server.key",
        directory / "other-ca.crt",
    )  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return issue_certificates(tmp_path_factory.mktemp("certs"))


# ---------------------------------------------------------------- headers


def test_bearer_header_strips_the_files_newline() -> None:
    options = bearer_options(f"{TOKEN}\n".encode())
    assert options.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert options.ssl is True and options.server_hostname is None


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"abc\r\nX-Injected: 1", "control characters"),
        (b"two words", "one word"),
        ("t\u00f6ken".encode(), "one word of ASCII"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unusable_tokens_are_refused_without_showing_them(token: bytes, fragment: str) -> None:
    with pytest.raises(CredentialsError) as caught:
        bearer_options(token, "Secret ns/creds key token")
    assert fragment in caught.value.message
    assert caught.value.message.startswith("Secret ns/creds key token")
    assert caught.value.kind == FailureKind.CREDENTIALS_UNAVAILABLE
    if len(token) > 3:
        assert token.decode(errors="replace").strip() not in caught.value.message


def test_basic_auth_header() -> None:
    options = basic_options(b"perfguard\n", b"pass word:with colon")
    encoded = base64.b64encode(b"perfguard:pass word:with colon").decode()
    assert options.headers == {"Authorization": f"Basic {encoded}"}
    assert set(options.secrets) == {"pass word:with colon", encoded}
    with pytest.raises(CredentialsError, match="must not contain ':'"):
        basic_options(b"a:b", b"secret")


def test_options_never_show_credentials() -> None:
    options = bearer_options(TOKEN.encode())
    client = PrometheusClient("http://127.0.0.1:9", options=options)
    for text in (repr(options), str(options), repr(client)):
        assert TOKEN not in text
    assert options.redact(f"echo: Bearer {TOKEN}!") == "echo: Bearer [redacted]!"


def test_short_secrets_are_not_scrubbed_letter_by_letter() -> None:
    # Replacing every "ab" in a message would spell the password out, not hide it.
    options = basic_options(b"user", b"ab")
    assert "ab" not in options.secrets
    assert options.redact("absent") == "absent"


# ---------------------------------------------------------------- TLS


def test_ssl_context_defaults_to_verification_against_system_roots() -> None:
    assert ssl_context(None) is True


def test_ssl_context_trusts_only_the_given_ca_and_is_cached(certs: Certificates) -> None:
    pem = certs.ca.read_bytes()
    context = ssl_context(pem)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "perfguard test ca"),),)
    ]
    # aiohttp pools connections per context: the same CA must give the same context.
    assert ssl_context(pem) is context
    assert ssl_context(certs.other_ca.read_bytes()) is not context


def test_insecure_skip_verify_verifies_nothing() -> None:
    context = ssl_context(None, insecure_skip_verify=True)
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


@pytest.mark.parametrize(
    "content",
    [
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        b"\xff\x00",
    ],
)
def test_a_bad_ca_bundle_is_a_tls_error_naming_where_it_came_from(content: bytes) -> None:
    with pytest.raises(CredentialsError) as caught:
        ssl_context(content, what="Secret ns/ca key ca.crt")
    assert caught.value.kind == FailureKind.TLS_ERROR
    assert caught.value.message == "Secret ns/ca key ca.crt holds no usable PEM certificate"


# ---------------------------------------------------------------- the API


def test_prometheus_ref_shape() -> None:
    ref = PrometheusRef.model_validate(
        {
            "url": "https://prometheus.monitoring.svc:9091/prom",
            "timeout": "5s",
            "bearerTokenSecret": {"name": "prom-token", "key": "token"},
            "tls": {"caSecret": {"name": "prom-ca", "key": "ca.crt"}, "serverName": "prom"},
        }
    )
    assert ref.bearer_token_secret is not None and ref.bearer_token_secret.key == "token"
    assert ref.tls is not None and ref.tls.insecure_skip_verify is False
    assert ref.to_wire()["tls"] == {
        "caSecret": {"name": "prom-ca", "key": "ca.crt"},
        "serverName": "prom",
        "insecureSkipVerify": False,
    }


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ({"timeout": "0s"}, "timeout must be between"),
        (
            {"bearerTokenSecret": {"name": "a", "key": "t"}, "basicAuthSecret": {"name": "b"}},
            "at most one of",
        ),
        ({"url": "http://prom:9090", "tls": {}}, "tls needs an https:// url"),
        (
            {"tls": {"caSecret": {"name": "ca", "key": "ca.crt"}, "insecureSkipVerify": True}},
            "insecureSkipVerify would ignore caSecret",
        ),
        ({"url": "http://user:pass@prom:9090"}, r"must be an http\(s\) URL with host\[:port\]"),
        ({"url": "http://prom:9090/?x=1"}, "without user info, query or fragment"),
        ({"url": "http://prom:65536"}, r"must be an http\(s\) URL"),
        ({"url": "http://prom\u00a0x:9090"}, r"must be an http\(s\) URL"),
        ({"url": "http://p/" + "a" * 2048}, "at most 2048 characters"),
        ({"bearerTokenSecret": {"name": "Not_A_Name", "key": "t"}}, "String should match"),
    ],
)
def test_prometheus_ref_rejects_incoherent_settings(ref: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        PrometheusRef.model_validate(ref)


# ---------------------------------------------------------------- the allowlist


ALLOWED = ("http://prometheus.monitoring:9090", "https://thanos.example.com/prom/")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://prometheus.monitoring:9090", True),
        ("http://prometheus.monitoring:9090/", True),
        ("http://PROMETHEUS.monitoring:9090/sub/path", True),
        ("https://thanos.example.com/prom", True),
        ("https://thanos.example.com:443/prom/api", True),
        ("https://thanos.example.com/prometheus", False),  # not a whole segment
        ("https://thanos.example.com/", False),
        ("https://thanos.example.com/prom/../admin", False),  # dot segments resolved
        ("https://thanos.example.com/prom/%2e%2e/admin", False),
        ("https://thanos.example.com/prom%2F..%2Fadmin", False),
        ("http://thanos.example.com/prom", False),  # scheme
        ("http://prometheus.monitoring:9091", False),  # port
        ("http://prometheus.monitoring", False),
        ("http://prometheus.monitoring:9090.evil.example", False),
        ("http://prometheus.monitoring.evil.example:9090", False),
        ("http://evil@prometheus.monitoring:9090", False),
        ("http://prometheus.monitoring:9090@evil.example", False),
        ("http://169.254.169.254/latest/meta-data", False),
        ("http://[::1", False),
    ],
)
def test_url_allowlist(url: str, allowed: bool) -> None:
    assert url_allowed(url, ALLOWED) is allowed


def test_allowlist_comes_from_the_environment() -> None:
    config = OperatorConfig.from_env(
        {"PERFGUARD_PROMETHEUS_ALLOWED_URLS": " http://a:9090 , https://b/prom ,"}
    )
    assert config.prometheus_allowed_urls == ("http://a:9090", "https://b/prom")
    assert OperatorConfig.from_env({}).prometheus_allowed_urls == ()


# ---------------------------------------------------------------- Secrets -> client


class FakeSecrets(SecretReader):
    """A SecretReader over a dict, counting reads."""

    def __init__(self, secrets_by_name: dict[str, dict[str, bytes]]) -> None:
        self.secrets = secrets_by_name
        self.reads = 0

    async def read(self, namespace: str, name: str) -> dict[str, bytes]:
        self.reads += 1
        if name not in self.secrets:
            raise CredentialsError(
                FailureKind.CREDENTIALS_UNAVAILABLE, f"Secret {namespace}/{name} does not exist"
            )
        return self.secrets[name]


def run(coroutine: Awaitable[Any]) -> Any:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def test_request_options_from_secrets(certs: Certificates) -> None:
    reader = FakeSecrets(
        {"tok": {"token": TOKEN.encode()}, "ca": {"ca.crt": certs.ca.read_bytes()}}
    )
    ref = PrometheusRef.model_validate(
        {
            "url": "https://prom:9091",
            "bearerTokenSecret": {"name": "tok", "key": "token"},
            "tls": {"caSecret": {"name": "ca", "key": "ca.crt"}, "serverName": "prom.internal"},
        }
    )
    options = run(request_options(ref, "ns", reader))
    assert options.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert isinstance(options.ssl, ssl.SSLContext)
    assert options.server_hostname == "prom.internal"
    assert TOKEN in options.secrets
    assert run(request_options(None, "ns", reader)) is NO_OPTIONS


def test_missing_key_names_secret_and_key() -> None:
    reader = FakeSecrets({"tok": {"other": b"x"}})
    ref = PrometheusRef.model_validate({"bearerTokenSecret": {"name": "tok", "key": "token"}})
    with pytest.raises(CredentialsError, match="Secret ns/tok has no key token"):
        run(request_options(ref, "ns", reader))


def _failure_of(client: PrometheusClient) -> PrometheusError:
    async def query() -> None:
        async with client:
            await client.query("up", AT)

    with pytest.raises(PrometheusError) as caught:
        run(query())
    return caught.value


def test_client_outside_the_allowlist_fails_every_query_before_reading_secrets() -> None:
    reader = FakeSecrets({"tok": {"token": TOKEN.encode()}})
    ref = PrometheusRef.model_validate(
        {"url": "http://10.0.0.1:9090", "bearerTokenSecret": {"name": "tok", "key": "token"}}
    )
    client = run(
        client_for(
            ref,
            "ns",
            default_url="http://prometheus.monitoring:9090",
            allowed_urls=ALLOWED,
            reader=reader,
            session=None,
        )
    )
    failure = _failure_of(client)
    assert failure.kind == FailureKind.URL_NOT_ALLOWED
    assert "http://10.0.0.1:9090" in failure.message
    assert failure.query == "up"
    assert reader.reads == 0  # a disallowed URL never gets a credential


def test_the_default_url_is_always_allowed() -> None:
    client = run(
        client_for(
            None,
            "ns",
            default_url="http://127.0.0.1:9",
            allowed_urls=ALLOWED,
            reader=FakeSecrets({}),
            session=None,
        )
    )
    assert client.failure is None and client.url == "http://127.0.0.1:9"
    assert client.timeout == timedelta(seconds=10)


def test_unreadable_credentials_fail_every_query_with_their_reason() -> None:
    ref = PrometheusRef.model_validate(
        {"url": "http://127.0.0.1:9", "bearerTokenSecret": {"name": "gone", "key": "token"}}
    )
    client = run(
        client_for(
            ref,
            "ns",
            default_url="http://x:1",
            allowed_urls=(),
            reader=FakeSecrets({}),
            session=None,
        )
    )
    failure = _failure_of(client)
    assert failure.kind == FailureKind.CREDENTIALS_UNAVAILABLE
    assert failure.message == "Secret ns/gone does not exist"


class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class _Core:
    def __init__(self, body: dict[str, Any] | None = None, status: int | None = None) -> None:
        self.body = body
        self.status = status

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> _Response:
        from kubernetes.client.exceptions import ApiException

        if self.status is not None:
            raise ApiException(status=self.status, reason="Nope")
        assert self.body is not None
        return _Response(self.body)


def _reader(core: _Core) -> SecretReader:
    reader = SecretReader.__new__(SecretReader)
    reader._core = core  # type: ignore[assignment]
    reader.reads = 0
    return reader


def test_secret_reader_needs_the_opt_in_label() -> None:
    data = {"token": base64.b64encode(TOKEN.encode()).decode()}
    unlabelled = _reader(_Core({"metadata": {"name": "s"}, "data": data}))
    with pytest.raises(CredentialsError) as caught:
        run(unlabelled.read("ns", "s"))
    assert CREDENTIALS_LABEL in caught.value.message and TOKEN not in caught.value.message
    labelled = _reader(
        _Core({"metadata": {"name": "s", "labels": {CREDENTIALS_LABEL: "true"}}, "data": data})
    )
    assert run(labelled.read("ns", "s")) == {"token": TOKEN.encode()}


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(404, "does not exist"), (403, "may not read Secret ns/s"), (500, "HTTP 500 Nope")],
)
def test_secret_reader_errors(status: int, fragment: str) -> None:
    with pytest.raises(CredentialsError, match=fragment):
        run(_reader(_Core(status=status)).read("ns", "s"))


# ---------------------------------------------------------------- the client over HTTP


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SUCCESS = {"status": "success", "data": {"resultType": "vector", "result": []}}


def _require_token(token: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.Response(status=401, text=f"denied: {request.headers.get('Authorization')}")
        if request.path.endswith("/query_range"):
            return web.json_response(
                {"status": "success", "data": {"resultType": "matrix", "result": []}}
            )
        return web.json_response(SUCCESS)

    return handler


def test_headers_travel_per_request_on_a_shared_session(serve: Any) -> None:
    async def scenario() -> tuple[list[str], PrometheusError, PrometheusError]:
        runner, url = await serve(_require_token(TOKEN))
        try:
            async with aiohttp.ClientSession() as session:
                right = PrometheusClient(
                    url, options=bearer_options(TOKEN.encode()), session=session
                )
                wrong = PrometheusClient(
                    url, options=bearer_options(b"wrong-token-value"), session=session
                )
                anonymous = PrometheusClient(url, session=session)
                results = [str(await right.query("up", AT))]
                errors = []
                for client in (wrong, anonymous):
                    try:
                        await client.query("up", AT)
                    except PrometheusError as error:
                        errors.append(error)
                results.append(str(await right.query("up", AT)))
                return results, errors[0], errors[1]
        finally:
            await runner.cleanup()

    results, wrong, anonymous = run(scenario())
    assert results == ["[]", "[]"]
    assert wrong.kind == FailureKind.UNAUTHORIZED
    assert wrong.message.endswith("the credentials were refused")
    assert "wrong-token-value" not in wrong.message and "denied" not in wrong.message
    assert anonymous.kind == FailureKind.UNAUTHORIZED
    assert "bearerTokenSecret" in anonymous.message


def _proxy_with_sessions(token: str) -> Handler:
    """An auth proxy as oauth2-proxy-style proxies behave: the right token gets an answer and
    a session cookie, and the cookie alone is let through afterwards."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") == f"Bearer {token}":
            response = web.json_response(SUCCESS)
            response.set_cookie("_proxy_session", "team-a", httponly=True)
            return response
        if request.cookies.get("_proxy_session") == "team-a":
            return web.json_response(SUCCESS)
        return web.Response(status=401, text="denied")

    return handler


@pytest.mark.parametrize("session", ["operator's shared session", "client's own session"])
def test_a_cookie_set_for_one_resources_token_authenticates_no_other(
    serve: Any, session: str
) -> None:
    """Before, the operator's one session kept cookies: after resource A's token got a proxy
    session cookie, resource B's requests (no credentials, or a revoked token) went through
    on A's session and read A's data. (The host is a name: aiohttp keeps no cookies for IP
    addresses.)"""

    async def scenario() -> list[FailureKind | None]:
        runner, url = await serve(_proxy_with_sessions(TOKEN))
        url = url.replace("127.0.0.1", "localhost")
        outcomes: list[FailureKind | None] = []
        shared = new_session() if session.startswith("operator") else None
        try:
            for options in (
                bearer_options(TOKEN.encode()),
                NO_OPTIONS,
                bearer_options(b"revoked-token-value"),
            ):
                client = PrometheusClient(url, options=options, session=shared)
                try:
                    async with client:
                        await client.query("up", AT)
                        if shared is None:  # the same client's session, as `evaluate` has
                            client.options = NO_OPTIONS
                            await client.query("up", AT)
                    outcomes.append(None)
                except PrometheusError as error:
                    outcomes.append(error.kind)
        finally:
            if shared is not None:
                await shared.close()
            await runner.cleanup()
        return outcomes

    outcomes = run(scenario())
    if session.startswith("operator"):
        assert outcomes == [None, FailureKind.UNAUTHORIZED, FailureKind.UNAUTHORIZED]
    else:
        # Within one client the second request carries no token: refused, cookie or not.
        assert outcomes == [FailureKind.UNAUTHORIZED] * 3


def test_a_server_echoing_the_token_cannot_put_it_in_a_message(serve: Any) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        return web.Response(status=500, text=f"boom {request.headers.get('Authorization')}")

    async def scenario() -> PrometheusError:
        runner, url = await serve(echo)
        try:
            async with PrometheusClient(url, options=bearer_options(TOKEN.encode())) as client:
                await client.query("up", AT)
        except PrometheusError as error:
            return error
        finally:
            await runner.cleanup()
        raise AssertionError("no error")

    error = run(scenario())
    assert error.kind == FailureKind.HTTP_ERROR
    assert TOKEN not in error.message
    assert "boom Bearer [redacted]" in error.message


def test_redirects_are_not_followed(serve: Any) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    async def scenario() -> PrometheusError:
        runner, url = await serve(redirect)
        try:
            async with PrometheusClient(url) as client:
                await client.query("up", AT)
        except PrometheusError as error:
            return error
        finally:
            await runner.cleanup()
        raise AssertionError("no error")

    error = run(scenario())
    assert error.kind == FailureKind.HTTP_ERROR
    assert "HTTP 302" in error.message and "redirects are not followed" in error.message


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("right-ca", None),
        ("system-roots", FailureKind.TLS_ERROR),
        ("other-ca", FailureKind.TLS_ERROR),
        ("wrong-server-name", FailureKind.TLS_ERROR),
        ("right-server-name", None),
        ("insecure", None),
    ],
)
def test_tls_verification(
    serve: Any, certs: Certificates, case: str, expected: FailureKind | None
) -> None:
    ca = certs.ca.read_bytes()
    options = {
        "right-ca": RequestOptions(ssl=ssl_context(ca)),
        "system-roots": RequestOptions(),
        "other-ca": RequestOptions(ssl=ssl_context(certs.other_ca.read_bytes())),
        "wrong-server-name": RequestOptions(ssl=ssl_context(ca), server_hostname="elsewhere"),
        "right-server-name": RequestOptions(ssl=ssl_context(ca), server_hostname="localhost"),
        "insecure": RequestOptions(ssl=ssl_context(None, insecure_skip_verify=True)),
    }[case]

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(SUCCESS)

    async def scenario() -> PrometheusError | None:
        runner, url = await serve(handler, certs.server_context())
        try:
            async with PrometheusClient(url, options=options) as client:
                await client.query("up", AT)
        except PrometheusError as error:
            return error
        finally:
            await runner.cleanup()
        return None

    error = run(scenario())
    if expected is None:
        assert error is None, error
    else:
        assert error is not None and error.kind == expected
        assert error.message.startswith("TLS with https://127.0.0.1:")
        assert "certificate" in error.message.lower() or "hostname" in error.message.lower()


# ---------------------------------------------------------------- perfguard evaluate


def test_offline_options_from_files(tmp_path: Path, certs: Certificates) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    ref = PrometheusRef.model_validate(
        {"url": "https://p:1", "tls": {"insecureSkipVerify": True, "serverName": "p.internal"}}
    )
    options = offline_options(ref, bearer_token_file=token_file, ca_file=certs.ca)
    assert options.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert isinstance(options.ssl, ssl.SSLContext)
    assert options.ssl.verify_mode == ssl.CERT_REQUIRED  # --ca-file wins over the spec
    assert options.server_hostname == "p.internal"
    insecure = offline_options(ref)
    assert isinstance(insecure.ssl, ssl.SSLContext) and insecure.ssl.verify_mode == ssl.CERT_NONE
    assert offline_options(None).ssl is True
    with pytest.raises(CredentialsError, match="cannot read"):
        offline_options(None, bearer_token_file=tmp_path / "missing")


def _pb_file(tmp_path: Path, url: str) -> Path:
    spec = {
        "prometheus": {"url": url, "timeout": "2s"},
        "selector": {"service": "x"},
        "comparison": "Historical",
        "metrics": [
            {
                "name": "up",
                "type": "Query",
                "query": "up{ {{selector}} }",
                "thresholds": {"value": {"max": 1}},
            }
        ],
    }
    PerfBaselineSpec.model_validate(spec)
    path = tmp_path / "pb.yaml"
    path.write_text(
        json.dumps({"apiVersion": "perfguard.dev/v1alpha1", "kind": "PerfBaseline", "spec": spec})
    )
    return path


def test_evaluate_flags(
    tmp_path: Path, serve: Any, capsys: pytest.CaptureFixture[str], certs: Certificates
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)

    async def start() -> tuple[web.AppRunner, str]:
        runner, url = await serve(_require_token(TOKEN), certs.server_context())
        return runner, url

    loop = asyncio.new_event_loop()
    runner, url = loop.run_until_complete(start())
    # The CLI runs its own event loop; serve from this one in a thread meanwhile.
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        path = str(_pb_file(tmp_path, url))
        base = ["evaluate", "-f", path, "--at", "2026-01-01T00:00:00Z", "-o", "json"]
        # With the token and the CA: Prometheus answers (no data: Inconclusive, exit 2).
        assert (
            main([*base, "--bearer-token-file", str(token_file), "--ca-file", str(certs.ca)]) == 2
        )
        # Without the CA the certificate is not trusted; without the token it is refused.
        assert main([*base, "--bearer-token-file", str(token_file)]) == 4
        assert "certificate verify failed" in capsys.readouterr().err
        assert main([*base, "--ca-file", str(certs.ca)]) == 4
        assert "credentials" in capsys.readouterr().err
        # An unreadable token file is unusable input.
        assert main([*base, "--bearer-token-file", str(tmp_path / "nope")]) == 3
        assert TOKEN not in capsys.readouterr().err
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_default_reader_follows_the_default_kubernetes_configuration() -> None:
    from kubernetes.client import Configuration

    from perfguard.sources import prometheus_auth

    saved = Configuration._default
    try:
        first = prometheus_auth.default_reader()
        assert prometheus_auth.default_reader() is first  # one client, reused
        Configuration.set_default(Configuration(host="https://elsewhere:6443"))
        second = prometheus_auth.default_reader()
        assert second is not first  # a reloaded kubeconfig gets a reader of its own
        override = FakeSecrets({})
        prometheus_auth.set_default_reader(override)
        assert prometheus_auth.default_reader() is override
        prometheus_auth.set_default_reader(None)
        assert prometheus_auth.default_reader() is second
    finally:
        Configuration._default = saved
        prometheus_auth.set_default_reader(None)
