"""Prometheus HTTP API client (async, aiohttp): range and instant queries.

Failures are told apart, because each means something different to the user:
unreachable (connection refused, DNS), timeout, a query Prometheus rejected (its own
error text is kept), an HTTP error, an answer that is not what the API promises, and an
answer that says it lacks data (`status: success` with warnings, see `missing_data`);
refused credentials and a failed TLS handshake have reasons of their own.
Prometheus may be any server that speaks its HTTP API (Thanos, Mimir, VictoriaMetrics).

One aiohttp session serves every resource; what differs per resource (credentials,
TLS trust) travels with each request (`RequestOptions`), never with the session.
Credential values never enter an error message: every message the client builds is
scrubbed of them, and the options' repr hides them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final

import aiohttp
import numpy as np
import numpy.typing as npt

from perfguard import config

FloatArray = npt.NDArray[np.float64]


class FailureKind(StrEnum):
    UNREACHABLE = "PrometheusUnreachable"
    TIMEOUT = "PrometheusTimeout"
    INVALID_QUERY = "InvalidQuery"
    HTTP_ERROR = "PrometheusError"
    BAD_RESPONSE = "PrometheusBadResponse"
    UNAUTHORIZED = "PrometheusUnauthorized"  # HTTP 401/403: credentials missing or refused
    TLS_ERROR = "PrometheusTLSError"  # certificate not trusted, wrong name, bad CA bundle
    CREDENTIALS_UNAVAILABLE = "PrometheusCredentialsUnavailable"  # the Secret cannot be used
    URL_NOT_ALLOWED = "PrometheusURLNotAllowed"  # outside PERFGUARD_PROMETHEUS_ALLOWED_URLS
    TOO_LARGE = "PrometheusAnswerTooLarge"  # above max_answer_bytes: aggregate the query
    # `status: success`, but warnings (or VictoriaMetrics' isPartial) say data is missing
    PARTIAL_RESPONSE = "PrometheusPartialResponse"


# The largest answer read from Prometheus (see config.MAX_ANSWER_BYTES).
MAX_ANSWER_BYTES = config.env_limit(
    "PERFGUARD_PROMETHEUS_MAX_ANSWER_BYTES", config.MAX_ANSWER_BYTES
)


class PrometheusError(Exception):
    def __init__(
        self,
        kind: FailureKind,
        message: str,
        query: str | None = None,
        warnings: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.query = query
        # PARTIAL_RESPONSE: every warning of the answer that says data is missing, whole
        # (the message shows the first few, trimmed); credentials scrubbed as in the message.
        self.warnings = warnings


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    timestamps: FloatArray  # unix seconds
    values: FloatArray


@dataclass
class RequestCounter:
    count: int = 0
    seconds: float = 0.0


REDACTED = "[redacted]"


@dataclass(frozen=True)
class RequestOptions:
    """What one resource's requests carry: credentials and TLS trust.

    `secrets` lists every credential value (and encoded form) the headers hold, so that
    no error message can repeat one. `repr` shows neither headers nor secrets.
    """

    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ssl: ssl.SSLContext | bool = True  # True: verify against the system roots
    server_hostname: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret:
                text = text.replace(secret, REDACTED)
        return text


NO_OPTIONS = RequestOptions()


def new_session(*, limit: int = 100) -> aiohttp.ClientSession:
    """An HTTP session for Prometheus requests, pooling up to `limit` connections. It keeps
    no cookies: credentials travel with each request (RequestOptions), and a cookie an auth
    proxy set for one resource's token would otherwise authenticate every later request
    through the same session, other resources' included (no credentials, a revoked token).
    Call it inside the event loop."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), cookie_jar=aiohttp.DummyCookieJar()
    )


def _seconds(duration: timedelta) -> str:
    """A duration as Prometheus' API parses it: float seconds. `0.5s` (a Go duration with a
    fraction) is refused ("cannot parse to a valid duration"), so `500ms` must go as `0.5`.
    Every digit is kept (`:g` rounds to six)."""
    return repr(duration.total_seconds())


@dataclass
class PrometheusClient:
    url: str
    timeout: timedelta = timedelta(seconds=10)
    options: RequestOptions = NO_OPTIONS
    counter: RequestCounter = field(default_factory=RequestCounter)
    session: aiohttp.ClientSession | None = None
    # Set when the client cannot be used at all (credentials unreadable, URL not allowed):
    # every query fails with it, so each engine reports it like any other outage.
    failure: PrometheusError | None = None
    max_answer_bytes: int = MAX_ANSWER_BYTES

    async def __aenter__(self) -> PrometheusClient:
        if self.session is None:
            self.session = new_session()
            self._own_session = True
        return self

    async def __aexit__(self, *_: object) -> None:
        if getattr(self, "_own_session", False) and self.session is not None:
            await self.session.close()
            self.session = None

    async def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        data = await self._post(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": _seconds(step),
                "timeout": _seconds(self.timeout),
            },
            query,
        )
        if data.get("resultType") != "matrix":
            raise PrometheusError(
                FailureKind.BAD_RESPONSE,
                f"expected a matrix, got {data.get('resultType')!r}",
                query,
            )
        return _matrix(data.get("result") or [], query)

    async def query(self, query: str, at: datetime) -> list[Series]:
        data = await self._post(
            "/api/v1/query",
            {
                "query": query,
                "time": f"{at.timestamp():.3f}",
                "timeout": _seconds(self.timeout),
            },
            query,
        )
        kind = data.get("resultType")
        if kind == "vector":
            out = []
            for item in data.get("result") or []:
                ts, value = item["value"]
                out.append(
                    Series(
                        dict(item.get("metric") or {}),
                        np.array([float(ts)]),
                        np.array([_float(value)]),
                    )
                )
            return out
        if kind == "scalar":
            ts, value = data["result"]
            return [Series({}, np.array([float(ts)]), np.array([_float(value)]))]
        if kind == "matrix":
            return _matrix(data.get("result") or [], query)
        raise PrometheusError(FailureKind.BAD_RESPONSE, f"unexpected resultType {kind!r}", query)

    async def _post(self, path: str, form: dict[str, str], query: str) -> dict[str, Any]:
        if self.failure is not None:
            raise PrometheusError(self.failure.kind, self.failure.message, query)
        if self.session is None:
            raise RuntimeError("use `async with PrometheusClient(...)`")
        try:
            return await self._exchange(path, form, query)
        except PrometheusError as error:
            redacted = self.options.redact(error.message)
            warnings = tuple(self.options.redact(w) for w in error.warnings)
            if redacted != error.message or warnings != error.warnings:
                raise PrometheusError(error.kind, redacted, query, warnings) from None
            raise

    async def _exchange(self, path: str, form: dict[str, str], query: str) -> dict[str, Any]:
        assert self.session is not None
        url = self.url.rstrip("/") + path
        loop = asyncio.get_running_loop()
        started = loop.time()
        self.counter.count += 1
        options = self.options
        try:
            async with self.session.post(
                url,
                data=form,
                headers=options.headers,
                ssl=options.ssl,
                server_hostname=options.server_hostname,
                # A redirect could carry the credentials elsewhere, or lead past the URL
                # allowlist: the Prometheus API does not redirect, so neither do we.
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout.total_seconds()),
            ) as response:
                status = response.status
                body = await _read_bounded(response, self.max_answer_bytes, query)
        except TimeoutError as error:
            raise PrometheusError(
                FailureKind.TIMEOUT,
                f"no answer from {self.url} within {self.timeout.total_seconds():g}s",
                query,
            ) from error
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as error:
            raise PrometheusError(
                FailureKind.TLS_ERROR, f"TLS with {self.url} failed: {_tls_reason(error)}", query
            ) from error
        except aiohttp.ClientConnectionError as error:
            raise PrometheusError(
                FailureKind.UNREACHABLE, f"cannot reach {self.url}: {error}", query
            ) from error
        except aiohttp.ClientError as error:
            raise PrometheusError(
                FailureKind.UNREACHABLE, f"request to {self.url} failed: {error}", query
            ) from error
        except ssl.SSLError as error:
            raise PrometheusError(
                FailureKind.TLS_ERROR, f"TLS with {self.url} failed: {_tls_reason(error)}", query
            ) from error
        except ValueError as error:
            # A URL the HTTP stack cannot use (the CRD's pattern keeps most out).
            raise PrometheusError(
                FailureKind.UNREACHABLE, f"cannot use the URL {self.url}: {error}", query
            ) from error
        finally:
            self.counter.seconds += loop.time() - started
        if status in {401, 403}:
            # The body is not shown: a proxy's error page may echo request headers.
            hint = (
                "the credentials were refused"
                if options.headers
                else "it wants credentials: give prometheus.bearerTokenSecret or basicAuthSecret"
            )
            raise PrometheusError(
                FailureKind.UNAUTHORIZED, f"HTTP {status} from {self.url}: {hint}", query
            )
        if 300 <= status < 400:
            raise PrometheusError(
                FailureKind.HTTP_ERROR,
                f"HTTP {status} from {self.url}: redirects are not followed; give the final "
                "URL of the Prometheus API",
                query,
            )
        payload = await _parse_json(body, query)
        if isinstance(payload, dict) and payload.get("status") == "error":
            error_type = str(payload.get("errorType", ""))
            text = str(payload.get("error", "")) or f"HTTP {status}"
            # bad_data: the query does not parse or names nonsense; execution errors (422)
            # also come from the query itself, e.g. many-to-many matching.
            if error_type in {"bad_data", "execution"} or status in {400, 422}:
                raise PrometheusError(FailureKind.INVALID_QUERY, text, query)
            raise PrometheusError(FailureKind.HTTP_ERROR, f"HTTP {status}: {text}", query)
        if status >= 400:
            snippet = body[:200].decode(errors="replace").strip()
            raise PrometheusError(FailureKind.HTTP_ERROR, f"HTTP {status}: {snippet}", query)
        if not isinstance(payload, dict) or payload.get("status") != "success":
            raise PrometheusError(
                FailureKind.BAD_RESPONSE, "the answer is not Prometheus API JSON", query
            )
        data = payload.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(FailureKind.BAD_RESPONSE, "the answer has no data", query)
        missing = missing_data(payload)
        if missing:
            # Judged as if whole, the series that are there read as all there are: a canary
            # pod's erroring series on an unreachable store made its error ratio 0 (Pass).
            raise PrometheusError(
                FailureKind.PARTIAL_RESPONSE, _partial_message(self.url, missing), query, missing
            )
        return data


# Which answers lack data. Prometheus answers `status: success` with `warnings` when part
# of the data could not be read (a remote_read endpoint down, Thanos' partial responses, a
# Mimir/Cortex store), and since 2.48 puts PromQL's annotations there too, prefixed
# "PromQL warning: " (input the query had to leave out: a malformed `le`, a mix of float and
# histogram samples, incompatible buckets) or "PromQL info: " (hints that "may or may not be
# false positives", Prometheus' API docs say, such as buckets fixed for monotonicity, which
# healthy classic histograms trigger). Since 2.54 infos come in their own `infos` list.
# VictoriaMetrics marks an answer that misses a storage node `"isPartial": true`.
#
# Every warning counts but an info. A storage warning's text is free-form (each server has
# its own), so a judge cannot tell one that loses no series from one that does; and a PromQL
# warning is by Prometheus' design never a false positive (prometheus/prometheus#14135) and
# means series or buckets left out of the numbers. A gate held on a warning is released by
# fixing its cause; a Pass on part of the data cannot be taken back. Infos lose nothing.
_INFO_PREFIX: Final = "PromQL info:"
# Prometheus' summary line when it cut the infos short (the warnings' one counts: what was
# cut may be a storage warning).
_INFOS_OMITTED = re.compile(r"\A\d+ more info annotations omitted\Z")
# user:password@ in a URL a warning quotes (a remote_read or store endpoint's address).
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@\"']+@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
PARTIAL_FLAG: Final = "isPartial: true"
SHOWN_WARNINGS: Final = 3
WARNING_CHARS: Final = 300


def missing_data(payload: dict[str, Any]) -> tuple[str, ...]:
    """What in a successful answer says it lacks data: its warnings other than PromQL infos
    (userinfo in URLs scrubbed, control characters flattened), and `isPartial: true` first
    if the answer says so. Empty for a complete answer."""
    warnings = payload.get("warnings") or []
    if not isinstance(warnings, list):
        warnings = [warnings]
    found = [PARTIAL_FLAG] if payload.get("isPartial") is True else []
    for warning in warnings:
        text = _CONTROL.sub(" ", str(warning)).strip()
        if not text or text.startswith(_INFO_PREFIX) or _INFOS_OMITTED.match(text):
            continue
        found.append(_USERINFO.sub(r"\1[redacted]@", text))
    return tuple(found)


def _partial_message(url: str, missing: tuple[str, ...]) -> str:
    shown = [
        w if len(w) <= WARNING_CHARS else w[: WARNING_CHARS - 1] + "…"
        for w in missing[:SHOWN_WARNINGS]
    ]
    more = len(missing) - len(shown)
    rest = f" (and {more} more warning{'s' if more > 1 else ''})" if more else ""
    return f"the answer from {url} lacks data, so it is not used: {'; '.join(shown)}{rest}"


def _tls_reason(error: BaseException) -> str:
    """The TLS library's own words (e.g. 'certificate verify failed: unable to get local
    issuer certificate'), without aiohttp's connection preamble."""
    cause: BaseException | None = error
    for _ in range(5):
        if isinstance(cause, aiohttp.ClientConnectorCertificateError):
            cause = cause.certificate_error
        elif isinstance(cause, aiohttp.ClientConnectorError):
            cause = cause.os_error
        elif isinstance(cause, ssl.SSLError):
            verify = getattr(cause, "verify_message", None)
            if verify:
                return f"certificate verify failed: {verify}"
            return str(cause.reason or cause)
        else:
            break
    return str(error)


async def _read_bounded(response: aiohttp.ClientResponse, limit: int, query: str) -> bytes:
    """The body, or PrometheusAnswerTooLarge as soon as it passes `limit` bytes (read in
    chunks, so an enormous answer is never held whole)."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise PrometheusError(FailureKind.TOO_LARGE, _too_large(declared, limit), query)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise PrometheusError(FailureKind.TOO_LARGE, _too_large(size, limit), query)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> str:
    return (
        f"the answer is larger than {limit / 2**20:.0f} MiB (at least {size / 2**20:.1f} MiB): "
        "aggregate the query (sum/avg by fewer labels) or shorten the window"
    )


# Answers at least this large are decoded on a worker thread: a CapacityPlan over 512 GPUs
# brings tens of MB of JSON and millions of samples, whose decoding would hold the event
# loop (every other resource's evaluation, /metrics, the probes) for seconds. Small answers,
# the common case, stay on the loop: a thread hand-off costs more than decoding them.
DECODE_IN_THREAD_BYTES: Final = 1 << 20

# One thread decodes the large answers, one after another, each in one job from the JSON
# text to the arrays: decoding a CapacityPlan's nine answers side by side, each parsed whole,
# held nine trees at once (bench, 64 nodes x 8 GPUs: operator peak RSS 1,040 MiB; one at a
# time and series by series, see _decode_matrix_by_series: 541 MiB). Its own thread, so
# that waiting for it never holds up the default pool, which carries the Kubernetes
# client's calls.
_DECODER = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="perfguard-decode")


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


# How Prometheus writes a matrix answer, up to its first series; VictoriaMetrics puts its
# isPartial flag between status and data. Whatever differs (another key order, an error, a
# vector) is decoded whole. Warnings come after the result and are kept (see below): a large
# partial answer is refused as a small one is (PrometheusPartialResponse).
_JSON_SPACE = "[ \t\n\r]*"
_MATRIX_HEAD = re.compile(
    (
        r"\A"
        + _JSON_SPACE
        + _JSON_SPACE.join(
            [
                *(r"\{", '"status"', ":", '"success"', ","),
                r'(?:"isPartial"' + _JSON_SPACE + ":" + _JSON_SPACE + "(?P<partial>true|false)",
                r",)?",
                *('"data"', ":", r"\{"),
                *('"resultType"', ":", '"matrix"', ",", '"result"', ":", r"\["),
            ]
        )
    ).encode()
)
_SPACE = re.compile(_JSON_SPACE)


def _decode_matrix_by_series(
    text: str, start: int, query: str, head: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A matrix answer decoded one series at a time from `start` (just inside the result
    list). json.loads holds the interpreter lock for the whole text (seconds for a fleet's
    answer: the event loop stalls) and builds the whole tree (several times the text);
    here the lock is free between series and one series' tree exists at a time. Raises
    ValueError when the text is not valid JSON of that shape. `head`: keys the head held
    besides status and data (isPartial)."""
    decoder = json.JSONDecoder()
    series: list[Series] = []
    at = _SPACE.match(text, start).end()  # type: ignore[union-attr]
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            item, at = decoder.raw_decode(text, at)
            series.append(_series(item, query))
            at = _SPACE.match(text, at).end()  # type: ignore[union-attr]
            if text.startswith(",", at):
                at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
            elif text.startswith("]", at):
                at += 1
                break
            else:
                raise ValueError(f"expected ',' or ']' at {at}")
    # The rest closes `data` and the answer, maybe after other keys (warnings, stats): check
    # it by decoding it with an empty result in front.
    rest = json.loads('{"data":{"result":[]' + text[at:])
    if not isinstance(rest, dict) or not isinstance(rest.get("data"), dict):
        raise ValueError("unexpected end of the answer")
    data = {**rest["data"], "resultType": "matrix", "result": series}
    return {**(head or {}), **rest, "status": "success", "data": data}


def _decode_large(body: bytes, query: str) -> Any:
    """The answer's JSON with a matrix result already turned into Series."""
    head = _MATRIX_HEAD.match(body)
    if head is not None:
        try:
            # The head is ASCII, so its end is the same index in the text.
            flag = head.group("partial")
            keys = {} if flag is None else {"isPartial": flag == b"true"}
            return _decode_matrix_by_series(body.decode(), head.end(), query, keys)
        except ValueError:
            pass  # not quite the usual layout: decode it whole, as any other answer
    payload = _json_or_none(body)
    data = payload.get("data") if isinstance(payload, dict) else None
    if (
        isinstance(data, dict)
        and data.get("resultType") == "matrix"
        and isinstance(data.get("result"), list)
    ):
        data["result"] = _series_list(data["result"], query)
    return payload


async def _parse_json(body: bytes, query: str) -> Any:
    if len(body) < DECODE_IN_THREAD_BYTES:
        return _json_or_none(body)
    return await asyncio.get_running_loop().run_in_executor(_DECODER, _decode_large, body, query)


def _series_list(items: list[Any], query: str) -> list[Series]:
    return [_series(item, query) for item in items]


def _matrix(items: Any, query: str) -> list[Series]:
    if not isinstance(items, list):
        raise PrometheusError(FailureKind.BAD_RESPONSE, "the result is not a list", query)
    if items and all(isinstance(item, Series) for item in items):
        return items  # a large answer, decoded on the decoding thread
    return _series_list(items, query)


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _series(item: Any, query: str) -> Series:
    try:
        values = item["values"]
        labels = dict(item.get("metric") or {})
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise PrometheusError(FailureKind.BAD_RESPONSE, "a series has no values", query) from error
    # Each point is [unix time, "value"]: a time that is not a number, or a point of another
    # shape, is a bad answer (the value alone may be a non-number such as "NaN").
    try:
        if not isinstance(values, list):
            raise TypeError(f"values is a {type(values).__name__}")
        timestamps = np.fromiter((float(v[0]) for v in values), dtype=np.float64, count=len(values))
        numbers = np.fromiter((_float(v[1]) for v in values), dtype=np.float64, count=len(values))
    except (IndexError, KeyError, TypeError, ValueError) as error:
        raise PrometheusError(
            FailureKind.BAD_RESPONSE,
            f"a series' values are not [time, value] pairs ({error})",
            query,
        ) from error
    return Series(labels, timestamps, numbers)
