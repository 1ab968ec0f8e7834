"""Prometheus credentials and TLS trust, per resource, and the operator's URL allowlist.

A PerfBaseline or CapacityPlan names Secrets in its own namespace (`bearerTokenSecret`,
`basicAuthSecret`, `tls.caSecret`); this module reads them through the Kubernetes API
and turns them into `RequestOptions` (headers, SSL context) for the shared aiohttp
session. A Secret is used only if it carries the label
`perfguard.dev/prometheus-credentials: "true"`: whoever may create a PerfBaseline must
not be able to make the operator send an arbitrary Secret of the namespace to a URL of
their choosing (see docs/security.md).

Nothing here logs, and no message built here contains a Secret's content: messages name
the Secret and key, never the value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import ssl
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Final

import aiohttp
from kubernetes.client import ApiClient, Configuration, CoreV1Api
from kubernetes.client.exceptions import ApiException
from yarl import URL

from perfguard.api.perfbaseline import PrometheusRef
from perfguard.sources.prometheus import (
    NO_OPTIONS,
    FailureKind,
    PrometheusClient,
    PrometheusError,
    RequestOptions,
)

CREDENTIALS_LABEL: Final = "perfguard.dev/prometheus-credentials"
DEFAULT_TIMEOUT: Final = timedelta(seconds=10)
# Shorter values are not scrubbed from messages: replacing every occurrence of a two-letter
# password in a message would spell it out rather than hide it.
MIN_REDACTED_LENGTH: Final = 8
_SSL_CACHE_SIZE: Final = 64


class CredentialsError(Exception):
    """A credential cannot be used. The message names where it lives, never its value."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


# ---------------------------------------------------------------- Secrets


class SecretReader:
    """Reads Secrets for Prometheus credentials through the operator's Kubernetes client."""

    def __init__(self, client: ApiClient) -> None:
        self._core = CoreV1Api(client)
        self.reads = 0

    async def read(self, namespace: str, name: str) -> dict[str, bytes]:
        """The Secret's decoded data; CredentialsError if it is missing, unreadable or not
        labelled for perfguard."""
        where = f"Secret {namespace}/{name}"
        self.reads += 1
        try:
            response = await asyncio.to_thread(
                self._core.read_namespaced_secret, name, namespace, _preload_content=False
            )
            body = json.loads(response.data)
        except ApiException as error:
            if error.status == 404:
                message = f"{where} does not exist"
            elif error.status == 403:
                message = f"the operator may not read {where} (its RBAC grants no get on Secrets)"
            else:
                message = f"reading {where}: HTTP {error.status} {error.reason}"
            raise CredentialsError(FailureKind.CREDENTIALS_UNAVAILABLE, message) from None
        except Exception as error:  # connection refused, TLS, undecodable answer
            raise CredentialsError(
                FailureKind.CREDENTIALS_UNAVAILABLE,
                f"reading {where} failed ({type(error).__name__})",
            ) from None
        labels = (body.get("metadata") or {}).get("labels") or {}
        if labels.get(CREDENTIALS_LABEL) != "true":
            raise CredentialsError(
                FailureKind.CREDENTIALS_UNAVAILABLE,
                f"{where} lacks the label {CREDENTIALS_LABEL}=true; only Secrets labelled "
                "for perfguard are sent to Prometheus",
            )
        data: dict[str, bytes] = {}
        for key, encoded in (body.get("data") or {}).items():
            try:
                data[str(key)] = base64.b64decode(str(encoded), validate=True)
            except (binascii.Error, ValueError):
                raise CredentialsError(
                    FailureKind.CREDENTIALS_UNAVAILABLE, f"{where} key {key} is not base64"
                ) from None
        return data


_default_reader: tuple[object, SecretReader] | None = None
_reader_override: SecretReader | None = None


def default_reader() -> SecretReader:
    """A reader on the Kubernetes client configuration the operator loaded at startup
    (`load_client` makes it the default). A new default configuration (a restarted
    operator in the same process, as in tests) gets a new reader."""
    global _default_reader
    if _reader_override is not None:
        return _reader_override
    configuration = Configuration.get_default()
    if _default_reader is None or _default_reader[0] is not configuration:
        _default_reader = (configuration, SecretReader(ApiClient(configuration)))
    return _default_reader[1]


def set_default_reader(reader: SecretReader | None) -> None:
    """Use `reader` from now on (tests); None goes back to the default configuration's."""
    global _reader_override
    _reader_override = reader


def _value(data: Mapping[str, bytes], namespace: str, name: str, key: str) -> bytes:
    if key not in data:
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"Secret {namespace}/{name} has no key {key}"
        )
    return data[key]


# ---------------------------------------------------------------- headers and TLS


def _printable(value: bytes, what: str) -> str:
    """Decode a credential; trailing whitespace (a file's newline) is dropped."""
    try:
        text = value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"{what} is not UTF-8 text"
        ) from None
    if not text:
        raise CredentialsError(FailureKind.CREDENTIALS_UNAVAILABLE, f"{what} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        # A newline in a header value would split the request: refuse, without the value.
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"{what} contains control characters"
        )
    return text


def _redactable(*values: str) -> tuple[str, ...]:
    return tuple(v for v in values if len(v) >= MIN_REDACTED_LENGTH)


def bearer_options(token: bytes, what: str = "the bearer token") -> RequestOptions:
    text = _printable(token, what)
    if not text.isascii() or " " in text:
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"{what} must be one word of ASCII characters"
        )
    return RequestOptions(headers={"Authorization": f"Bearer {text}"}, secrets=_redactable(text))


def basic_options(
    username: bytes, password: bytes, what: str = "the basic-auth Secret"
) -> RequestOptions:
    user = _printable(username, f"{what} username")
    if ":" in user:
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"{what} username must not contain ':'"
        )
    secret = _printable(password, f"{what} password")
    encoded = base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")
    return RequestOptions(
        headers={"Authorization": f"Basic {encoded}"}, secrets=_redactable(secret, encoded)
    )


_ssl_cache: OrderedDict[tuple[str, bool], ssl.SSLContext] = OrderedDict()


def ssl_context(
    ca_pem: bytes | None, *, insecure_skip_verify: bool = False, what: str = "the CA bundle"
) -> ssl.SSLContext | bool:
    """What aiohttp's `ssl=` takes: True (system roots), or a context trusting `ca_pem`
    only, or one that verifies nothing.

    Contexts are cached by content: aiohttp pools connections per SSL context, so a new
    context per evaluation would open a new connection per evaluation.
    """
    if ca_pem is None and not insecure_skip_verify:
        return True
    digest = hashlib.sha256(ca_pem or b"").hexdigest()
    key = (digest, insecure_skip_verify)
    cached = _ssl_cache.get(key)
    if cached is not None:
        _ssl_cache.move_to_end(key)
        return cached
    if insecure_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        assert ca_pem is not None
        try:
            text = ca_pem.decode("ascii")
            if "-----BEGIN CERTIFICATE-----" not in text:
                raise ValueError("no PEM certificate")
            # cadata replaces the system roots: the CA given is the only one trusted.
            context = ssl.create_default_context(cadata=text)
        except (UnicodeDecodeError, ValueError, ssl.SSLError):
            raise CredentialsError(
                FailureKind.TLS_ERROR, f"{what} holds no usable PEM certificate"
            ) from None
    _ssl_cache[key] = context
    while len(_ssl_cache) > _SSL_CACHE_SIZE:
        _ssl_cache.popitem(last=False)
    return context


def combine(
    auth: RequestOptions, tls: ssl.SSLContext | bool, server_name: str | None
) -> RequestOptions:
    return RequestOptions(
        headers=dict(auth.headers), ssl=tls, server_hostname=server_name, secrets=auth.secrets
    )


async def request_options(
    ref: PrometheusRef | None, namespace: str, reader: SecretReader
) -> RequestOptions:
    """The headers and TLS settings `ref` asks for, read from its namespace's Secrets."""
    if ref is None:
        return NO_OPTIONS
    auth = NO_OPTIONS
    if ref.bearer_token_secret is not None:
        name, key = ref.bearer_token_secret.name, ref.bearer_token_secret.key
        data = await reader.read(namespace, name)
        token = _value(data, namespace, name, key)
        auth = bearer_options(token, f"Secret {namespace}/{name} key {key}")
    elif ref.basic_auth_secret is not None:
        name = ref.basic_auth_secret.name
        data = await reader.read(namespace, name)
        auth = basic_options(
            _value(data, namespace, name, "username"),
            _value(data, namespace, name, "password"),
            f"Secret {namespace}/{name}",
        )
    tls: ssl.SSLContext | bool = True
    server_name = None
    if ref.tls is not None:
        ca = None
        what = "the CA bundle"
        if ref.tls.ca_secret is not None:
            name, key = ref.tls.ca_secret.name, ref.tls.ca_secret.key
            ca = _value(await reader.read(namespace, name), namespace, name, key)
            what = f"Secret {namespace}/{name} key {key}"
        tls = ssl_context(ca, insecure_skip_verify=ref.tls.insecure_skip_verify, what=what)
        server_name = ref.tls.server_name
    return combine(auth, tls, server_name)


def offline_options(
    ref: PrometheusRef | None,
    *,
    bearer_token_file: Path | None = None,
    ca_file: Path | None = None,
) -> RequestOptions:
    """`perfguard evaluate`: credentials from files; the spec's Secrets are not read
    (there is no cluster), its insecureSkipVerify and serverName are honoured."""
    auth = NO_OPTIONS
    if bearer_token_file is not None:
        auth = bearer_options(
            _read_file(bearer_token_file), f"--bearer-token-file {bearer_token_file}"
        )
    insecure = bool(ref and ref.tls and ref.tls.insecure_skip_verify)
    ca = _read_file(ca_file) if ca_file is not None else None
    if ca is not None:
        insecure = False  # a CA given on the command line is meant to be used
    tls = ssl_context(ca, insecure_skip_verify=insecure, what=f"--ca-file {ca_file}")
    server_name = ref.tls.server_name if ref and ref.tls else None
    return combine(auth, tls, server_name)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CredentialsError(
            FailureKind.CREDENTIALS_UNAVAILABLE, f"cannot read {path}: {error.strerror}"
        ) from None


# ---------------------------------------------------------------- the URL allowlist


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


def url_allowed(url: str, prefixes: Iterable[str]) -> bool:
    """Whether `url` lies under one of `prefixes`: same scheme, host and port, and a path
    equal to or below the prefix's path (whole segments: `/prom` admits `/prom/x`, not
    `/prometheus`). Dot segments are resolved first; encoded slashes and dots are refused,
    as are user info, queries and fragments."""
    try:
        target = URL(url)
        origin = _origin(target)
    except ValueError:
        return False
    if target.user is not None or target.password is not None:
        return False
    if target.query_string or target.fragment or not origin[1]:
        return False
    raw = target.raw_path.lower()
    if "%2f" in raw or "%2e" in raw or "%5c" in raw:
        return False
    path = target.path
    for prefix in prefixes:
        try:
            allowed = URL(prefix.strip())
            if _origin(allowed) != origin:
                continue
        except ValueError:
            continue
        base = allowed.path.rstrip("/")
        if not base or path == base or path.startswith(base + "/"):
            return True
    return False


# ---------------------------------------------------------------- the client


async def client_for(
    ref: PrometheusRef | None,
    namespace: str,
    *,
    default_url: str,
    allowed_urls: tuple[str, ...],
    reader: SecretReader,
    session: aiohttp.ClientSession | None,
) -> PrometheusClient:
    """The client one resource's evaluation uses. It never raises: a URL outside the
    allowlist or unusable credentials give a client whose every query fails with the
    reason, so each engine reports it as it reports any outage (Ready=False)."""
    url = ref.url if ref is not None and ref.url else default_url
    timeout = ref.timeout if ref is not None else DEFAULT_TIMEOUT
    failure: PrometheusError | None = None
    options = NO_OPTIONS
    if allowed_urls and url != default_url and not url_allowed(url, allowed_urls):
        failure = PrometheusError(
            FailureKind.URL_NOT_ALLOWED,
            f"prometheus.url {url} is not among the Prometheus URLs this operator may "
            "query (PERFGUARD_PROMETHEUS_ALLOWED_URLS)",
        )
    else:
        try:
            options = await request_options(ref, namespace, reader)
        except CredentialsError as error:
            failure = PrometheusError(error.kind, error.message)
    return PrometheusClient(url, timeout=timeout, options=options, session=session, failure=failure)
