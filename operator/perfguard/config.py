"""Operator configuration: flags override environment variables override defaults."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from perfguard.api.perfbaseline import SECRET_NAME, prometheus_url_problem
from perfguard.api.quantities import parse_duration

T = TypeVar("T")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _refresh(value: str | None) -> timedelta:
    if value is None or not value.strip():
        return OperatorConfig.status_refresh
    try:
        return parse_duration(value.strip())
    except ValueError as error:
        raise ValueError(f"PERFGUARD_STATUS_REFRESH: {error}") from None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(value: str) -> str:
    """A logging level name, upper-cased; ValueError names the choices."""
    level = value.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
    return level


def _whole_number(value: str, low: int, high: int | None, expected: str) -> int:
    """`value` as a whole number from `low` to `high` (None: no upper bound)."""
    try:
        number: int | None = int(value.strip())
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        raise ValueError(f"must be {expected}, not {value!r}")
    return number


def parse_port(value: str) -> int:
    """A TCP port number, 1 to 65535."""
    return _whole_number(value, 1, 65535, "a port number from 1 to 65535")


def parse_prometheus_url(value: str) -> str:
    """A Prometheus base URL, as `perfguard evaluate --prometheus` and the CRDs take it."""
    url = value.strip()
    if problem := prometheus_url_problem(url):
        raise ValueError(f"{problem}, not {value!r}")
    return url


def parse_priority(value: str) -> int:
    """A Kopf peering priority: a whole number."""
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"must be a whole number, not {value!r}") from None


TRUE = ("true", "yes", "1")
FALSE = ("false", "no", "0")


def parse_bool(value: str) -> bool:
    """true/yes/1 or false/no/0, in any case; anything else (`ture`) is refused rather
    than read as false."""
    word = value.strip().lower()
    if word not in TRUE + FALSE:
        raise ValueError(f"must be true or false (or yes/no, 1/0), not {value!r}")
    return word in TRUE


# Kubernetes names: a DNS-1123 label (namespaces) and a DNS-1123 subdomain (most objects).
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(SECRET_NAME)


def _subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(_DNS_SUBDOMAIN_RE.match(name))


def parse_peering(value: str) -> str:
    """A Kopf peering object's name: a DNS-1123 subdomain."""
    name = value.strip()
    if not _subdomain(name):
        raise ValueError(
            "must be a Kubernetes object name (lower-case letters, digits, '-' and '.', "
            f"at most 253 characters), not {value!r}"
        )
    return name


def parse_secret_reference(value: str) -> str:
    """A Secret as `namespace/name`: a DNS-1123 label, then a DNS-1123 subdomain."""
    reference = value.strip()
    namespace, slash, name = reference.partition("/")
    if not (slash and _DNS_LABEL_RE.match(namespace) and _subdomain(name)):
        raise ValueError(f"must be namespace/name of a Secret, not {value!r}")
    return reference


# One glob of a namespace pattern (see namespace_patterns): namespace-name characters and
# the glob's `*`, `?`, `[...]`, with a leading `!` to exclude.
_NAMESPACE_GLOB_RE = re.compile(r"^!?[-a-z0-9*?\[\]!^]+$")


def parse_namespaces(value: str) -> tuple[str, ...]:
    """Comma-separated namespaces or globs; one that can match no namespace is refused."""
    globs = _split(value)
    for glob in globs:
        if not _NAMESPACE_GLOB_RE.match(glob):
            raise ValueError(
                "must be comma-separated namespace names or globs (lower-case letters, "
                f"digits, '-', * ? [...], a leading ! to exclude), not {glob!r}"
            )
    return globs


def parse_prometheus_urls(value: str) -> tuple[str, ...]:
    """Comma-separated URL prefixes, each a Prometheus base URL (parse_prometheus_url)."""
    urls = _split(value)
    for url in urls:
        if problem := prometheus_url_problem(url):
            raise ValueError(f"{problem}, not {url!r}")
    return urls


_HOST_NAME_RE = re.compile(
    r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
)


def parse_host(value: str) -> str:
    """An address to bind: an IPv4 or IPv6 address (`0.0.0.0`, `::`) or a host name. A
    name whose last label is all digits (`999.1.1.1`) is a mistyped address, not a name."""
    host = value.strip()
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if len(host) <= 253 and _HOST_NAME_RE.match(host) and not host.rsplit(".", 1)[-1].isdigit():
        return host
    raise ValueError(f"must be an IP address or a host name (e.g. 0.0.0.0, ::), not {value!r}")


# Evaluations that may query and judge at once (PERFGUARD_EVALUATION_SLOTS; 0: no bound).
# Without a bound the start-up burst of 1,000 PerfBaselines put 5,000 queries in the HTTP
# pool's queue, whose wait counts against each query's 10 s timeout: 15 % of them ended
# PrometheusTimeout (bench/operator_scale). 48 × 5 queries keep that wait short for a
# 64-connection pool; 16 were all busy at 500 PerfBaselines (lag p99 8 s).
EVALUATION_SLOTS = 48


def parse_slots(value: str) -> int:
    """A number of evaluation slots: a whole number, 0 or more (0: no bound)."""
    return _whole_number(value, 0, None, "a whole number, 0 or more (0: no bound)")


def parse_limit(value: str) -> int:
    """A size limit: a whole number, 1 or more."""
    return _whole_number(value, 1, None, "a whole number, 1 or more")


# The largest answer read from Prometheus (PERFGUARD_PROMETHEUS_MAX_ANSWER_BYTES). Parsed
# JSON takes several times its size in Python objects, so this bounds an evaluation's
# memory: 64 MiB holds a 7-day, 5-minute range query over 512 GPUs with room to spare; a
# Query returning 10,000 series over a 10-minute window is a few MiB.
MAX_ANSWER_BYTES = 64 * 2**20
# The most objects of one kind an EnvParity reads in a namespace
# (PERFGUARD_ENVPARITY_MAX_OBJECTS); more is refused with a clear reason (TooManyObjects).
ENVPARITY_MAX_OBJECTS = 5000


def env_limit(name: str, default: int) -> int:
    """A size limit from the environment, read where it is used (at import); a bad value is
    a ValueError naming the variable. `perfguard run` checks the same variables first
    (OperatorConfig.from_env), so it stops with exit 2 rather than a traceback."""
    return _named(dict(os.environ), name, parse_limit, default)


def _named(env: dict[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    """`parse` of the variable `name`, or `default` when it is unset or empty; a bad value is
    a ValueError that names the variable."""
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        return parse(value)
    except ValueError as error:
        raise ValueError(f"{name} {error}") from None


@dataclass(frozen=True)
class OperatorConfig:
    default_prometheus_url: str = "http://prometheus.monitoring:9090"
    namespaces: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "INFO"
    log_json: bool | None = None
    http_host: str = "0.0.0.0"
    http_port: int = 8080
    peering: str | None = None
    standalone: bool = True
    # EnvParity: the Secret ("namespace/name", key `key`) holding the per-installation HMAC
    # key for config hashes, and whether Secrets' contents are compared at all.
    hash_key_secret: str | None = None
    compare_secrets: bool = False
    # URL prefixes a resource's spec.prometheus.url must lie under (empty: any URL). The
    # default URL is always allowed. See docs/security.md (SSRF).
    prometheus_allowed_urls: tuple[str, ...] = field(default_factory=tuple)
    # A status whose news did not change (verdict, reasons, conditions' status, metric
    # verdicts, breach stamps) is rewritten with its current readings (numbers,
    # lastEvaluationTime) once this much time has passed since the last write; 0s writes
    # every evaluation. See engine/status_news.py and docs/perfbaseline.md.
    status_refresh: timedelta = timedelta(minutes=5)
    # Kopf's peering priority of this replica; None: `perfguard run` draws one at random.
    peering_priority: int | None = None
    # Evaluations that may query and judge at once; 0: no bound (see EVALUATION_SLOTS).
    evaluation_slots: int = EVALUATION_SLOTS
    prometheus_max_answer_bytes: int = MAX_ANSWER_BYTES
    envparity_max_objects: int = ENVPARITY_MAX_OBJECTS

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        env = dict(os.environ if env is None else env)
        peering = _named(env, "PERFGUARD_PEERING", parse_peering, None)
        return cls(
            default_prometheus_url=_named(
                env, "PERFGUARD_PROMETHEUS_URL", parse_prometheus_url, cls.default_prometheus_url
            ),
            namespaces=_named(env, "PERFGUARD_NAMESPACES", parse_namespaces, ()),
            log_level=_named(env, "PERFGUARD_LOG_LEVEL", parse_log_level, cls.log_level),
            log_json=_named(env, "PERFGUARD_LOG_JSON", parse_bool, None),
            http_host=_named(env, "PERFGUARD_HTTP_HOST", parse_host, cls.http_host),
            http_port=_named(env, "PERFGUARD_HTTP_PORT", parse_port, cls.http_port),
            peering=peering,
            standalone=peering is None,
            hash_key_secret=_named(env, "PERFGUARD_HASH_KEY_SECRET", parse_secret_reference, None),
            compare_secrets=_named(
                env, "PERFGUARD_COMPARE_SECRETS", parse_bool, cls.compare_secrets
            ),
            prometheus_allowed_urls=_named(
                env, "PERFGUARD_PROMETHEUS_ALLOWED_URLS", parse_prometheus_urls, ()
            ),
            status_refresh=_refresh(env.get("PERFGUARD_STATUS_REFRESH")),
            peering_priority=_named(env, "PERFGUARD_PEERING_PRIORITY", parse_priority, None),
            evaluation_slots=_named(
                env, "PERFGUARD_EVALUATION_SLOTS", parse_slots, cls.evaluation_slots
            ),
            prometheus_max_answer_bytes=_named(
                env, "PERFGUARD_PROMETHEUS_MAX_ANSWER_BYTES", parse_limit, MAX_ANSWER_BYTES
            ),
            envparity_max_objects=_named(
                env, "PERFGUARD_ENVPARITY_MAX_OBJECTS", parse_limit, ENVPARITY_MAX_OBJECTS
            ),
        )
