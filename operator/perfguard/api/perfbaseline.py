"""PerfBaseline: a workload's rolling performance baseline and the canary judged against it."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from perfguard.api.base import ApiModel
from perfguard.api.cel import FIELD_PATH, CelRule, unique, validations
from perfguard.api.conditions import ResourceStatus
from perfguard.api.quantities import (
    MAX_LENGTH,
    Amount,
    Duration,
    Interval,
    LatencyAmount,
    cel_comparing_durations,
    cel_duration,
    cel_not_duration,
    format_duration,
    parse_duration,
)

# A Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*) that does not start with `__` (names
# Prometheus reserves, and that perfguard's PromQL builder refuses), as one regex without
# lookahead: RE2 (the API server's CEL) and Python read it alike.
LABEL_NAME = r"^([a-zA-Z][a-zA-Z0-9_]*|_([a-zA-Z0-9][a-zA-Z0-9_]*)?)$"
_LABEL_NAME_RE = re.compile(LABEL_NAME)
LABEL_NAME_MESSAGE = (
    "label names must be Prometheus label names: letters, digits and _, not starting "
    "with a digit or __ (e.g. app_kubernetes_io_name, not app.kubernetes.io/name)"
)
METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
# The placeholder a Query template's label matchers go in: `{{selector}}`, white space
# allowed inside the braces. The template engine (sources/promql.render_template) expands
# exactly this; CEL's `matches` (RE2, after CEL unescapes `\t` and the like in its string
# literal) and Python's `re` read it alike.
SELECTOR_PLACEHOLDER = r"[{][{][\t\n\f\r ]*selector[\t\n\f\r ]*[}][}]"
_SELECTOR_PLACEHOLDER_RE = re.compile(SELECTOR_PLACEHOLDER)
NO_SELECTOR_MESSAGE = (
    "a Query metric's query must contain {{selector}} where the label matchers go, e.g. "
    "avg(gpu_util{ {{selector}} }): without it the query ignores the selector and the "
    "tracks, candidate and stable run the same query, and their difference is always 0"
)


def _label_names(value: dict[str, Any]) -> dict[str, Any]:
    bad = sorted(k for k in value if not _LABEL_NAME_RE.match(k))
    if bad:
        raise ValueError(f"{LABEL_NAME_MESSAGE}; got {', '.join(map(repr, bad))}")
    return value


def _label_map(description: str) -> Any:
    """Field metadata of a map keyed by Prometheus label names (at most 32 of them).

    The CRD checks the keys with CEL (a structural schema cannot constrain map keys
    otherwise); pydantic with the same regex, for `perfguard evaluate`.
    """
    return Field(
        max_length=32,
        description=description,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k.matches('{LABEL_NAME}'))",
                    "message": LABEL_NAME_MESSAGE,
                    # The message with the first offending name, quoted.
                    "messageExpression": f"'{LABEL_NAME_MESSAGE}; got \"' + "
                    f"self.filter(k, !k.matches('{LABEL_NAME}'))[0] + '\"'",
                    "reason": "FieldValueInvalid",
                }
            ]
        },
    )


# Prometheus label names and values as users write them; values are escaped before use.
PromLabels = Annotated[
    dict[str, Annotated[str, Field(max_length=1024)]],
    _label_map("PromQL label matchers: label name to exact value."),
    AfterValidator(_label_names),
]


# A Prometheus base URL: scheme, host (DNS name, IPv4 or [IPv6]), an optional port up to
# 65535 and an optional path. No user info (credentials come from Secrets, never the URL,
# which appears in status messages), no query or fragment (API paths are appended). Every
# class is spelled out in ASCII so that the API server's RE2 and pydantic's regex engine
# accept exactly the same strings.
_HOST_LABEL = r"[A-Za-z0-9]([-A-Za-z0-9_]{0,61}[A-Za-z0-9])?"
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
PROMETHEUS_URL = (
    rf"^https?://({_HOST_LABEL}(\.{_HOST_LABEL})*|\[[0-9A-Fa-f:.]+\])(:{_PORT})?"
    r"(/[-A-Za-z0-9._~!$&'()*+,;=:@%/]*)?$"
)
_PROMETHEUS_URL_RE = re.compile(PROMETHEUS_URL)
PROMETHEUS_URL_RULE = (
    "must be an http(s) URL with host[:port] and an optional path, without user info, "
    "query or fragment (e.g. http://prometheus.monitoring:9090)"
)


def prometheus_url_problem(url: str) -> str | None:
    """Why `url` is no Prometheus base URL (PROMETHEUS_URL, in words), or None when it is."""
    if len(url) > 2048:
        return "must be at most 2048 characters"
    return None if _PROMETHEUS_URL_RE.match(url) else PROMETHEUS_URL_RULE


def _check_prometheus_url(value: Any) -> Any:
    # Before the pattern constraint, so the error says the rule in words rather than
    # quoting the regex (the CRD schema still carries the pattern for the API server).
    if isinstance(value, str) and (problem := prometheus_url_problem(value)):
        raise PydanticCustomError("prometheus_url", problem)
    return value


# Kubernetes object names (DNS subdomains) and Secret data keys.
SECRET_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
SERVER_NAME = rf"^{_HOST_LABEL}(\.{_HOST_LABEL})*$"
# A query timeout: Go duration syntax, at most three parts of five digits, so that no
# value overflows CEL's duration (int64 nanoseconds) and the range rule always evaluates.
TIMEOUT_PATTERN = r"^([0-9]{1,5}(\.[0-9]{1,9})?(ns|us|µs|ms|s|m|h)){1,3}$"
_TIMEOUT_RE = re.compile(TIMEOUT_PATTERN)
MIN_TIMEOUT = timedelta(milliseconds=1)
MAX_TIMEOUT = timedelta(minutes=5)


def _parse_timeout(value: Any) -> timedelta:
    if isinstance(value, str) and len(value) > MAX_LENGTH:
        raise ValueError(
            f"invalid timeout {value[:MAX_LENGTH]!r}…: at most {MAX_LENGTH} characters"
        )
    if isinstance(value, str) and not _TIMEOUT_RE.match(value):
        raise ValueError(
            f"invalid timeout {value!r}: use a duration such as '10s', '500ms' or '1m30s'"
        )
    return parse_duration(value)


Timeout = Annotated[
    timedelta,
    BeforeValidator(_parse_timeout),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": TIMEOUT_PATTERN, "maxLength": MAX_LENGTH}),
]
"""A per-query timeout between 1ms and 5m: `10s`, `500ms`, `1m30s`."""


class SecretKeyRef(ApiModel):
    """One key of a Secret in the resource's own namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME,
        description="Name of the Secret, in the resource's namespace.",
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY,
        description="Key in the Secret's data.",
    )


class SecretRef(ApiModel):
    """A Secret in the resource's own namespace."""

    name: str = Field(
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME,
        description="Name of the Secret, in the resource's namespace.",
    )


CA_OR_INSECURE = CelRule(
    "!has(self.caSecret) || !has(self.insecureSkipVerify) || !self.insecureSkipVerify",
    "insecureSkipVerify would ignore caSecret: give one of them",
    ".insecureSkipVerify",
    "FieldValueForbidden",
)


class PrometheusTLS(ApiModel):
    model_config = ConfigDict(json_schema_extra=validations(CA_OR_INSECURE))

    ca_secret: SecretKeyRef | None = Field(
        default=None,
        description="PEM CA bundle to verify the server with, instead of the system roots.",
    )
    server_name: str | None = Field(
        default=None,
        max_length=253,
        pattern=SERVER_NAME,
        description="Name to verify the server certificate against (and send as SNI), when "
        "it differs from the URL's host.",
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify the server certificate. For tests only: anyone on the "
        "network path can then read the credentials.",
    )

    @model_validator(mode="after")
    def _ca_or_insecure(self) -> PrometheusTLS:
        if self.ca_secret is not None and self.insecure_skip_verify:
            raise CA_OR_INSECURE.error()
        return self


TIMEOUT_RANGE = CelRule(
    "!has(self.timeout) || "
    + cel_comparing_durations(
        "duration(self.timeout) >= duration('1ms') && duration(self.timeout) <= duration('5m')",
        "self.timeout",
        pattern=TIMEOUT_PATTERN,
    ),
    "timeout must be between 1ms and 5m",
    ".timeout",
    "FieldValueInvalid",
)
ONE_AUTH = CelRule(
    "!has(self.bearerTokenSecret) || !has(self.basicAuthSecret)",
    "give at most one of bearerTokenSecret and basicAuthSecret",
    ".basicAuthSecret",
    "FieldValueForbidden",
)
TLS_NEEDS_HTTPS = CelRule(
    "!has(self.tls) || !has(self.url) || self.url.startsWith('https://')",
    "tls needs an https:// url",
    ".tls",
    "FieldValueInvalid",
)


class PrometheusRef(ApiModel):
    """Where and how to query Prometheus (or any server with its HTTP API).

    Credentials come from Secrets in the resource's namespace that carry the label
    `perfguard.dev/prometheus-credentials: "true"`; see docs/security.md.
    """

    model_config = ConfigDict(
        json_schema_extra=validations(TIMEOUT_RANGE, ONE_AUTH, TLS_NEEDS_HTTPS)
    )

    url: Annotated[str | None, BeforeValidator(_check_prometheus_url)] = Field(
        default=None,
        description="Base URL of the Prometheus HTTP API; the operator's default otherwise. "
        "The operator may restrict it to an allowlist (PERFGUARD_PROMETHEUS_ALLOWED_URLS).",
        pattern=PROMETHEUS_URL,
        max_length=2048,
    )
    timeout: Timeout = Field(
        default=timedelta(seconds=10),
        description="Per-query timeout, 1ms to 5m; default 10s.",
        json_schema_extra={"default": "10s"},
    )
    bearer_token_secret: SecretKeyRef | None = Field(
        default=None,
        description="Send `Authorization: Bearer <token>` with the token from this Secret key.",
    )
    basic_auth_secret: SecretRef | None = Field(
        default=None,
        description="HTTP basic auth from this Secret's `username` and `password` keys "
        "(the kubernetes.io/basic-auth type).",
    )
    tls: PrometheusTLS | None = Field(
        default=None, description="TLS settings for an https:// url; verification is on."
    )

    @model_validator(mode="after")
    def _coherent(self) -> PrometheusRef:
        # The same rules as the CRD's CEL (for `perfguard evaluate`, which has no API server).
        if not MIN_TIMEOUT <= self.timeout <= MAX_TIMEOUT:
            raise TIMEOUT_RANGE.error()
        if self.bearer_token_secret is not None and self.basic_auth_secret is not None:
            raise ONE_AUTH.error()
        if self.tls is not None and self.url is not None and not self.url.startswith("https://"):
            raise TLS_NEEDS_HTTPS.error()
        return self


class WorkloadKind(StrEnum):
    ROLLOUT = "Rollout"
    DEPLOYMENT = "Deployment"


class WorkloadRef(ApiModel):
    kind: WorkloadKind = Field(description="Rollout (Argo Rollouts) or Deployment.")
    name: str = Field(
        min_length=1,
        max_length=253,
        description="Name of the Rollout or Deployment, in the resource's namespace.",
    )
    hash_label: str = Field(
        default="rollouts_pod_template_hash",
        pattern=LABEL_NAME,
        max_length=128,
        description="Series label carrying the pod-template hash; default "
        "rollouts_pod_template_hash.",
    )


class TrackSelector(ApiModel):
    match_labels: PromLabels


class Comparison(StrEnum):
    CONCURRENT = "Concurrent"
    HISTORICAL = "Historical"
    BOTH = "Both"


class BaselineSpec(ApiModel):
    window: Duration = Field(
        default=timedelta(days=7),
        description="Length of the rolling baseline, a duration such as 36h, 7d or 2w; default "
        "7d. Must be longer than analysis.window, written or default.",
    )
    min_samples: int = Field(
        default=50,
        ge=2,
        le=1_000_000,
        description="Fewest baseline samples a Historical comparison needs: those at the "
        "candidate window's time of day on earlier days (about days x (analysis.window / "
        "baseline step + 1); 77 with the defaults); fewer make it Inconclusive. Default 50. "
        "A short analysis.window can make it unreachable (a 5m window at 30s against 7d holds "
        "42): BaselineEstablished then says MinSamplesUnreachable.",
    )
    step: Duration | None = Field(
        default=None,
        description="Resolution of the baseline series: this step, or analysis.step when "
        "unset, coarsened to the next of 15s, 30s, 1m, 2m, 5m, 10m, 15m, 30m, 1h, 2h, 6h when "
        "baseline.window would need more than 10,800 points per query (1m with the "
        "defaults: 7d at 30s). A coarser step keeps a long baseline cheap to query.",
    )


WINDOW_AT_LEAST_STEP = CelRule(
    cel_comparing_durations(
        f"{cel_duration('self.window')} >= {cel_duration('self.step')}", "self.window", "self.step"
    ),
    "analysis.window must be at least analysis.step",
    ".window",
    "FieldValueInvalid",
)


class AnalysisSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra=validations(WINDOW_AT_LEAST_STEP))

    interval: Interval = Field(
        default=timedelta(minutes=1),
        description="How often to evaluate; default 1m, at least 1s.",
    )
    window: Duration = Field(
        default=timedelta(minutes=10),
        description="The candidate window judged, ending at the evaluation; default 10m. At "
        "least step, and shorter than baseline.window, written or default.",
    )
    step: Interval = Field(
        default=timedelta(seconds=30),
        description="One sample per step in the candidate window; default 30s, at least 1s.",
    )
    sustain_for: Duration = Field(
        default=timedelta(minutes=3),
        description="How long a critical metric's breach must hold before the verdict is "
        "Fail; default 3m.",
    )
    confidence: float = Field(
        default=0.95,
        gt=0.5,
        lt=1.0,
        description="Confidence level of the intervals, above 0.5 and below 1; default 0.95.",
    )
    rate_window: Duration | None = Field(
        default=None,
        description="Range of rate()/histogram windows; the same for candidate and baseline. "
        "Default: the larger of 1m and the steps. Needs at least two scrapes inside it.",
    )

    @model_validator(mode="after")
    def _window_at_least_step(self) -> AnalysisSpec:
        if self.window < self.step:
            raise WINDOW_AT_LEAST_STEP.error()
        return self


class MetricType(StrEnum):
    LATENCY = "Latency"
    THROUGHPUT = "Throughput"
    ERROR_RATE = "ErrorRate"
    QUERY = "Query"


class ThresholdRule(ApiModel):
    """A rule on a Throughput, ErrorRate or Query statistic: amounts are numbers in the
    metric's own unit (requests/s, a ratio, the query's value), without a time unit."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    max_increase: Amount | None = Field(
        default=None, description="Largest allowed increase, e.g. 20 (req/s) or 0.005 (ratio)."
    )
    max_increase_percent: float | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Largest allowed increase, in percent of the baseline value (0 to 10000). "
        "Against a baseline of 0 a significant increase is Regressed (RegressionSignificant); "
        "anything else is Inconclusive (BaselineNearZero).",
    )
    max_decrease: Amount | None = Field(default=None, description="Largest allowed decrease.")
    max_decrease_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Largest allowed decrease, in percent of the baseline value (0 to 100). "
        "Against a baseline of 0 a significant decrease is Regressed (RegressionSignificant); "
        "anything else is Inconclusive (BaselineNearZero).",
    )
    max: float | None = Field(
        default=None, ge=0, description="Upper bound on the candidate's value, e.g. 0.01."
    )

    @model_validator(mode="after")
    def _sets_a_limit(self) -> ThresholdRule:
        # The twin of the schema's minProperties: a rule without a limit judges nothing.
        _at_least_one(self)
        return self


class LatencyThresholdRule(ThresholdRule):
    """A rule on a latency statistic (p50, p90, p95, p99, mean): amounts carry a time unit."""

    max_increase: LatencyAmount | None = Field(
        default=None, description="Largest allowed increase, with a time unit: 5ms, 0.25s."
    )
    max_decrease: LatencyAmount | None = Field(
        default=None, description="Largest allowed decrease, with a time unit."
    )
    max: LatencyAmount | None = Field(
        default=None, description="Upper bound on the candidate's value, e.g. 250ms."
    )


class Thresholds(ApiModel):
    """Rules per statistic. Latency: p50/p90/p95/p99/mean; Throughput: rate;
    ErrorRate: ratio; Query: value."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    p50: LatencyThresholdRule | None = None
    p90: LatencyThresholdRule | None = None
    p95: LatencyThresholdRule | None = None
    p99: LatencyThresholdRule | None = None
    mean: LatencyThresholdRule | None = None
    rate: ThresholdRule | None = None
    ratio: ThresholdRule | None = None
    value: ThresholdRule | None = None

    @model_validator(mode="after")
    def _sets_a_statistic(self) -> Thresholds:
        _at_least_one(self)  # the twin of the schema's minProperties
        return self


def _at_least_one(model: ApiModel) -> None:
    """Refuse `model` when it sets no field, as the API server refuses an object under
    `minProperties: 1` (null fields are pruned there, so None counts as unset)."""
    fields = type(model).model_fields
    if all(getattr(model, name) is None for name in fields):
        names = ", ".join(info.alias or name for name, info in fields.items())
        raise PydanticCustomError("min_properties", f"give at least one of {names}")


LATENCY_STATISTICS = ("p50", "p90", "p95", "p99", "mean")


def _only(statistics: tuple[str, ...]) -> str:
    others = [s for s in Thresholds.model_fields if s not in statistics]
    return " && ".join(f"!has(self.thresholds.{s})" for s in others)


# Regex matchers (`=~`); the values are RE2 regexes, checked by Prometheus when queried.
ErrorMatchers = Annotated[
    dict[str, Annotated[str, Field(max_length=1024)]],
    _label_map("Regex label matchers selecting the error requests, e.g. {code: '5..'}."),
    Field(max_length=16),
    AfterValidator(_label_names),
]


NEEDS_HISTOGRAM = CelRule(
    "self.type != 'Latency' || has(self.histogram)",
    "a Latency metric needs histogram (the _bucket/_sum/_count base)",
    ".histogram",
    "FieldValueRequired",
)
NEEDS_COUNTER = CelRule(
    "!(self.type in ['Throughput', 'ErrorRate']) || has(self.counter)",
    "Throughput and ErrorRate metrics need counter",
    ".counter",
    "FieldValueRequired",
)
NEEDS_ERROR_MATCHERS = CelRule(
    "self.type != 'ErrorRate' || has(self.errorMatchers)",
    "an ErrorRate metric needs errorMatchers, e.g. {code: '5..'}",
    ".errorMatchers",
    "FieldValueRequired",
)
NEEDS_QUERY = CelRule(
    "self.type != 'Query' || has(self.query)",
    "a Query metric needs query",
    ".query",
    "FieldValueRequired",
)
QUERY_USES_THE_SELECTOR = CelRule(
    f"self.type != 'Query' || !has(self.query) || self.query.matches('{SELECTOR_PLACEHOLDER}')",
    NO_SELECTOR_MESSAGE,
    ".query",
    "FieldValueInvalid",
)


def _thresholds_for(metric_type: str, statistics: tuple[str, ...], message: str) -> CelRule:
    return CelRule(
        f"self.type != '{metric_type}' || (" + _only(statistics) + ")", message, ".thresholds"
    )


# The statistics each type's thresholds may name, with the rule that says so.
THRESHOLD_KEYS: dict[MetricType, tuple[tuple[str, ...], CelRule]] = {
    MetricType.LATENCY: (
        LATENCY_STATISTICS,
        _thresholds_for(
            "Latency", LATENCY_STATISTICS, "Latency thresholds are p50, p90, p95, p99 or mean"
        ),
    ),
    MetricType.THROUGHPUT: (
        ("rate",),
        _thresholds_for("Throughput", ("rate",), "Throughput thresholds are keyed rate"),
    ),
    MetricType.ERROR_RATE: (
        ("ratio",),
        _thresholds_for("ErrorRate", ("ratio",), "ErrorRate thresholds are keyed ratio"),
    ),
    MetricType.QUERY: (
        ("value",),
        _thresholds_for("Query", ("value",), "Query thresholds are keyed value"),
    ),
}


class MetricSpec(ApiModel):
    model_config = ConfigDict(
        json_schema_extra=validations(
            NEEDS_HISTOGRAM,
            NEEDS_COUNTER,
            NEEDS_ERROR_MATCHERS,
            NEEDS_QUERY,
            QUERY_USES_THE_SELECTOR,
            *(rule for _, rule in THRESHOLD_KEYS.values()),
        )
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="Unique within the resource (a DNS label).",
    )
    type: MetricType = Field(
        description="Latency (from histogram), Throughput (rate of counter), ErrorRate (the "
        "share of counter matching errorMatchers) or Query (the query's value)."
    )
    histogram: str | None = Field(
        default=None,
        pattern=METRIC_NAME,
        max_length=256,
        description="Histogram base name (without _bucket/_sum/_count).",
    )
    counter: str | None = Field(
        default=None,
        pattern=METRIC_NAME,
        max_length=256,
        description="Request counter name (Throughput and ErrorRate).",
    )
    error_matchers: ErrorMatchers | None = None
    query: str | None = Field(
        default=None,
        max_length=4096,
        description="PromQL template (Query metrics); must contain {{selector}}, which "
        "expands to the escaped label matchers of the spec's selector and the track.",
    )
    stage_label: str | None = Field(
        default=None,
        pattern=LABEL_NAME,
        max_length=128,
        description="Latency only: label whose values name the request's stages.",
    )
    total_stage: str = Field(
        default="total",
        max_length=1024,
        description="Latency with stageLabel: the stage value of the end-to-end series (the "
        "headline statistics); every other value is a stage of the request. Default total.",
    )
    thresholds: Thresholds
    critical: bool = Field(
        default=True,
        description="A critical metric's sustained regression fails the verdict; a "
        "non-critical one is only reported. Default true.",
    )

    @field_validator("query")
    @classmethod
    def _query_uses_the_selector(cls, query: str | None, info: ValidationInfo) -> str | None:
        # The same rule as the CRD's CEL (for `perfguard evaluate`, which has no API server).
        # `type` is declared before `query`, so it has been validated (absent if invalid).
        if (
            info.data.get("type") == MetricType.QUERY
            and query is not None
            and not _SELECTOR_PLACEHOLDER_RE.search(query)
        ):
            # A field validator's error is at the field already: no fieldPath to add.
            raise PydanticCustomError("cel_rule", NO_SELECTOR_MESSAGE)
        return query

    @model_validator(mode="after")
    def _fields_for_the_type(self) -> MetricSpec:
        # The twins of the CRD's CEL rules above, in the same order.
        if self.type == MetricType.LATENCY and self.histogram is None:
            raise NEEDS_HISTOGRAM.error()
        if self.type in (MetricType.THROUGHPUT, MetricType.ERROR_RATE) and self.counter is None:
            raise NEEDS_COUNTER.error()
        if self.type == MetricType.ERROR_RATE and self.error_matchers is None:
            raise NEEDS_ERROR_MATCHERS.error()
        if self.type == MetricType.QUERY and self.query is None:
            raise NEEDS_QUERY.error()
        allowed, rule = THRESHOLD_KEYS[self.type]
        given = {s for s in Thresholds.model_fields if getattr(self.thresholds, s) is not None}
        if given - set(allowed):
            raise rule.error()
        return self


class Improvement(ApiModel):
    min_p95_reduction: LatencyAmount | None = Field(
        default=None,
        description="Smallest p95 drop, with a time unit (e.g. 2ms), that counts as an "
        "improvement.",
    )


CONCURRENT_NEEDS_TRACKS = CelRule(
    "!has(self.comparison) || self.comparison != 'Concurrent' || "
    "has(self.workloadRef) || (has(self.candidate) && has(self.stable))",
    "Concurrent comparison needs workloadRef, or both candidate and stable",
    ".comparison",
)


# Candidate and stable must select disjoint series: one label both name, with different
# values, so that no series matches both. One of the values may be empty: a series has one
# value of a label ("" when it lacks it), so `role="canary"` and `role=""` (the stable pods
# of an Argo Rollout whose canaryMetadata alone adds the label) exclude each other.
# Otherwise the stable series take in the candidate's (`stable.matchLabels: {}`, or labels
# the selector already gives) or are the very same (identical tracks): the Concurrent
# comparison then measures a fraction of the candidate's change, or none (0), and passes.
TRACKS_EXCLUSIVE = CelRule(
    "!has(self.candidate) || !has(self.stable) || self.candidate.matchLabels.exists(k, "
    "k in self.stable.matchLabels && self.stable.matchLabels[k] != self.candidate.matchLabels[k])",
    "candidate and stable must exclude each other: give both matchLabels a label with "
    "different values (e.g. track: canary and track: stable); otherwise the stable series "
    "include the candidate's, or are the same, and the Concurrent change shrinks toward 0",
    ".stable",
    "FieldValueInvalid",
)


def _track_agrees_with_selector(track: str) -> CelRule:
    """A track's label that the selector also names must keep the selector's value: the
    selector is part of every query (the whole workload's too), so a track giving its label
    another value contradicts it (the query builder would let the track's value win)."""
    labels = f"self.{track}.matchLabels"
    message = (
        f"{track}.matchLabels must not give a label of selector another value: selector is "
        "part of every query (the whole workload too); name that label in candidate and "
        "stable only"
    )
    return CelRule(
        f"!has(self.{track}) || {labels}.all(k, !(k in self.selector) || "
        f"self.selector[k] == {labels}[k])",
        message,
        f".{track}.matchLabels",
        "FieldValueInvalid",
        message_expression=f"'{message}; label: ' + {labels}.filter(k, k in self.selector && "
        f"self.selector[k] != {labels}[k])[0]",
    )


CANDIDATE_AGREES_WITH_SELECTOR = _track_agrees_with_selector("candidate")
STABLE_AGREES_WITH_SELECTOR = _track_agrees_with_selector("stable")
_DEFAULT_HASH_LABEL: str = WorkloadRef.model_fields["hash_label"].default
HASH_LABEL_NOT_IN_SELECTOR = CelRule(
    "!has(self.workloadRef) || !((has(self.workloadRef.hashLabel) ? "
    f"self.workloadRef.hashLabel : '{_DEFAULT_HASH_LABEL}') in self.selector)",
    f"selector must not name workloadRef.hashLabel (default {_DEFAULT_HASH_LABEL}): the "
    "candidate's and the stable's pod-template hashes come from the workload, and a hash in "
    "selector would pin every query to one revision",
    ".selector",
    "FieldValueInvalid",
)


def _window_or_default(section: str, default: timedelta) -> tuple[str, str]:
    """CEL for `self.<section>.window` in milliseconds, or `default`'s when the section is
    left out (the field has a schema default, so a written section has it), and CEL true
    when that window is written but does not match the pattern."""
    window = f"self.{section}.window"
    milliseconds = default // timedelta(milliseconds=1)
    return (
        f"(has(self.{section}) ? {cel_duration(window)} : {milliseconds})",
        f"(has(self.{section}) && {cel_not_duration(window)})",
    )


# The windows compared are the effective ones: a section left out has its default window,
# which a written window of the other section must still respect.
_DEFAULT_BASELINE_WINDOW: timedelta = BaselineSpec.model_fields["window"].default
_DEFAULT_ANALYSIS_WINDOW: timedelta = AnalysisSpec.model_fields["window"].default
_BASELINE_WINDOW_MS, _BASELINE_WINDOW_UNPARSABLE = _window_or_default(
    "baseline", _DEFAULT_BASELINE_WINDOW
)
_ANALYSIS_WINDOW_MS, _ANALYSIS_WINDOW_UNPARSABLE = _window_or_default(
    "analysis", _DEFAULT_ANALYSIS_WINDOW
)
BASELINE_LONGER_THAN_WINDOW = CelRule(
    f"{_BASELINE_WINDOW_UNPARSABLE} || {_ANALYSIS_WINDOW_UNPARSABLE} || "
    f"{_BASELINE_WINDOW_MS} > {_ANALYSIS_WINDOW_MS}",
    f"baseline.window (default {format_duration(_DEFAULT_BASELINE_WINDOW)}) must be longer "
    f"than analysis.window (default {format_duration(_DEFAULT_ANALYSIS_WINDOW)})",
    ".baseline.window",
)


class PerfBaselineSpec(ApiModel):
    """What to measure for a workload, what to compare the candidate with, and its limits."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            CONCURRENT_NEEDS_TRACKS,
            BASELINE_LONGER_THAN_WINDOW,
            TRACKS_EXCLUSIVE,
            CANDIDATE_AGREES_WITH_SELECTOR,
            STABLE_AGREES_WITH_SELECTOR,
            HASH_LABEL_NOT_IN_SELECTOR,
        )
    )

    prometheus: PrometheusRef | None = None
    selector: PromLabels = Field(
        description="PromQL label matchers shared by every query. With workloadRef it must not "
        "name the hashLabel."
    )
    workload_ref: WorkloadRef | None = Field(
        default=None,
        description="Rollout or Deployment whose pod-template hashes name the candidate and "
        "stable series; when set, candidate and stable are ignored.",
    )
    candidate: TrackSelector | None = Field(
        default=None,
        description="Extra label matchers for the candidate's (canary's) series. Without it "
        "(and without workloadRef) the whole workload is judged, against the historical "
        "baseline. With stable, one label must be in both with different values, so that no "
        "series matches both; no value may be empty, nor give a selector label another value.",
    )
    stable: TrackSelector | None = Field(
        default=None,
        description="Extra label matchers for the stable series, the baseline of both "
        "comparisons; without it the historical baseline is the whole workload. With "
        "candidate, one label must be in both with different values (e.g. track: canary and "
        "track: stable); no value may be empty, nor give a selector label another value.",
    )
    comparison: Comparison = Field(
        default=Comparison.BOTH,
        description="Concurrent (candidate vs stable over the same window), Historical "
        "(against the rolling baseline) or Both; default Both. Throughput, and every metric "
        "while no candidate is in flight, are judged Historical.",
    )
    baseline: BaselineSpec = Field(
        default_factory=BaselineSpec,
        description="The historical baseline: the stable series (the whole workload without "
        "one) over baseline.window, ending where the candidate window starts.",
    )
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec,
        description="How often, over which window and how strictly the candidate is judged.",
    )
    metrics: Annotated[list[MetricSpec], unique(lambda m: m.name, "metric name")] = Field(
        min_length=1,
        max_length=32,
        description="What to measure and the thresholds each is judged by (1 to 32, names unique).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    improvement: Improvement | None = Field(
        default=None,
        description="The smallest Latency p95 drop that counts as Improved; without it, and "
        "for other statistics, any significant improvement does.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> PerfBaselineSpec:
        # The twins of the CRD's CEL rules above.
        if (
            self.comparison == Comparison.CONCURRENT
            and self.workload_ref is None
            and (self.candidate is None or self.stable is None)
        ):
            raise CONCURRENT_NEEDS_TRACKS.error()
        # Written or default, as in CEL: a section left out has its default window.
        if self.baseline.window <= self.analysis.window:
            raise BASELINE_LONGER_THAN_WINDOW.error()
        if (
            self.candidate is not None
            and self.stable is not None
            and not _exclusive(self.candidate.match_labels, self.stable.match_labels)
        ):
            raise TRACKS_EXCLUSIVE.error()
        for track, rule in (
            (self.candidate, CANDIDATE_AGREES_WITH_SELECTOR),
            (self.stable, STABLE_AGREES_WITH_SELECTOR),
        ):
            if track is not None and (
                contradicted := _contradicted(self.selector, track.match_labels)
            ):
                raise PydanticCustomError(
                    "cel_rule",
                    f"{rule.message}; label: {contradicted[0]}",
                    {FIELD_PATH: rule.field_path},
                )
        if self.workload_ref is not None and self.workload_ref.hash_label in self.selector:
            raise HASH_LABEL_NOT_IN_SELECTOR.error()
        return self


def _exclusive(one: dict[str, str], other: dict[str, str]) -> bool:
    """Whether no series can match both label sets: a label in both, with different values
    (one may be "": a series without the label)."""
    return any(name in other and other[name] != value for name, value in one.items())


def _contradicted(selector: dict[str, str], track: dict[str, str]) -> list[str]:
    """The labels `track` gives another value than `selector` does."""
    return [name for name, value in track.items() if name in selector and selector[name] != value]


# ---------------------------------------------------------------- status


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class MetricVerdict(StrEnum):
    PASS = "Pass"
    REGRESSED = "Regressed"
    IMPROVED = "Improved"
    INCONCLUSIVE = "Inconclusive"
    NO_DATA = "NoData"


class CandidateStatus(ApiModel):
    identity: str = Field(description="Pod-template hash or label set of the judged candidate.")
    source: str | None = Field(default=None, description="WorkloadRef, Labels or Workload.")
    since: datetime | None = Field(default=None, description="When this candidate was first seen.")


class BaselineStatus(ApiModel):
    from_: datetime | None = Field(
        default=None, alias="from", description="Start of the historical baseline window."
    )
    to: datetime | None = Field(
        default=None, description="End of the baseline window: the candidate window's start."
    )
    samples: int = Field(
        default=0,
        description="The most baseline samples any metric's baseline query returned, at any "
        "time of day; see samplesAtTimeOfDay for those judged.",
    )
    samples_at_time_of_day: int | None = Field(
        default=None,
        description="Baseline samples a Historical comparison is judged on: those at the "
        "candidate window's time of day on earlier days, the fewest of any critical metric's "
        "(of any metric's when none is critical). baseline.minSamples counts these; unset "
        "without a Historical comparison.",
    )


class SampleCounts(ApiModel):
    candidate: int = Field(default=0, description="Candidate samples judged.")
    baseline: int = Field(default=0, description="Baseline samples judged (stable or historical).")


class SecondOpinion(ApiModel):
    method: str = Field(description="The test: MannWhitneyU/HodgesLehmann.")
    p_value: float | None = Field(default=None, description="The Mann-Whitney U p-value.")
    shift: float | None = Field(
        default=None,
        description="Hodges-Lehmann estimate of candidate - baseline, in the metric's unit.",
    )
    ci95: list[float] | None = Field(
        default=None,
        max_length=2,
        description="[lo, hi] of shift, at analysis.confidence (0.95 by default).",
    )


class LevelShiftStatus(ApiModel):
    at: datetime = Field(description="First sample of the new level of candidate - stable.")
    change: float = Field(description="New level minus old, in the metric's base unit.")
    samples_before: int = Field(default=0, description="Samples before the shift.")
    samples_after: int = Field(default=0, description="Samples since the shift.")
    p_value: float | None = Field(default=None, description="Bonferroni-bounded over splits.")


class MetricStatus(ApiModel):
    """One statistic of one metric, judged in one comparison."""

    name: str = Field(description="The metric's name in spec.metrics.")
    statistic: str = Field(description="p50, p90, p95, p99, mean, rate, ratio or value.")
    comparison: Comparison = Field(description="Concurrent or Historical.")
    unit: str | None = Field(
        default=None,
        description="Unit of baseline, current, delta and ci95: seconds, requests/s, ratio or "
        "value.",
    )
    baseline: float | None = Field(
        default=None,
        description="Mean of the baseline samples: the stable series over the same window, or "
        "the historical baseline.",
    )
    current: float | None = Field(
        default=None,
        description="Mean of the candidate's (or workload's) samples; of the newer level "
        "after a level shift.",
    )
    delta: float | None = Field(
        default=None, description="Estimated change, candidate - baseline, in unit."
    )
    delta_percent: float | None = Field(
        default=None, description="delta in percent of |baseline|; unset when it is near 0."
    )
    ci95: list[float] | None = Field(
        default=None,
        max_length=2,
        description="[lo, hi] of delta, at analysis.confidence (0.95 by default).",
    )
    threshold: str | None = Field(default=None, description="The rule, as written in the spec.")
    verdict: MetricVerdict = Field(description="Pass, Regressed, Improved, Inconclusive or NoData.")
    reason: str | None = Field(
        default=None, description="Why, in one CamelCase word, e.g. RegressionSignificant."
    )
    message: str | None = Field(default=None, description="The judgement and its numbers.")
    breach_since: datetime | None = Field(
        default=None,
        description=(
            "First sample of the data that showed the breach; kept until a Pass or Improved, "
            "or until the breach has gone unconfirmed for longer than sustainFor (or the "
            "interval, when longer) plus half an interval, at most 30s."
        ),
    )
    breach_unconfirmed_since: datetime | None = Field(
        default=None,
        description=(
            "When an evaluation first neither showed nor refuted the breach (Inconclusive, "
            "NoData, no data at all, or an evaluation missed); cleared when the breach is seen "
            "again. Past sustainFor (or the interval, when longer) plus half an interval, "
            "at most 30s, the breach lapses."
        ),
    )
    improved_since: datetime | None = Field(
        default=None,
        description=(
            "When this candidate was first judged Improved on this metric (the "
            "ImprovementConfirmed Event); kept until a sustained regression or a new "
            "candidate."
        ),
    )
    level_shift: LevelShiftStatus | None = Field(
        default=None,
        description="Set when the window held two levels. From 10 samples since the shift "
        "the newer level is judged on its own; with fewer (and no max rule) the whole window "
        "is judged with the shift taken out, and the newer level's interval derived from it.",
    )
    critical: bool = Field(
        default=True, description="The metric's spec.critical: whether it can fail the verdict."
    )
    samples: SampleCounts | None = Field(default=None, description="Samples judged on each side.")
    second_opinion: SecondOpinion | None = Field(
        default=None,
        description="A rank test over the window, reported only: it assumes independent "
        "samples, so it never decides the verdict.",
    )


class StageStatus(ApiModel):
    """One stage of a Latency metric with stageLabel, over the candidate window."""

    metric: str = Field(description="The Latency metric's name.")
    stage: str = Field(description="The stageLabel value.")
    mean: float | None = Field(default=None, description="Mean latency of the stage, seconds.")
    p95: float | None = Field(
        default=None,
        description="The stage's p95 latency, averaged over the window, seconds; unset when "
        "it was above the histogram's highest finite bucket at some step (see message).",
    )
    p99: float | None = Field(
        default=None,
        description="The stage's p99 latency, averaged over the window, seconds; unset when "
        "it was above the histogram's highest finite bucket at some step (see message).",
    )
    share: float | None = Field(
        default=None,
        description="The stage's mean over the total mean (0.25 is 25 %), both over the "
        "steps where the total and every stage have a value (stagesSummary.steps).",
    )
    message: str | None = Field(
        default=None,
        description="Set when the stage has no value at some of the total's steps (how many, "
        "and that the shares leave those steps out), or when its p95 or p99 is not reported "
        "because it was above the histogram's highest finite bucket.",
    )


class StagesSummary(ApiModel):
    unattributed_share: float | None = Field(
        default=None,
        description="Share of the total mean latency no stage accounts for (0.25 is 25 %).",
    )
    unattributed_flagged: bool = Field(
        default=False, description="True when unattributedShare is above 0.10."
    )
    steps: int | None = Field(
        default=None,
        description="Steps the shares are over: those where the total and every stage have "
        "a value.",
    )
    total_steps: int | None = Field(
        default=None, description="Steps of the window where the total has a value."
    )


class PerfBaselineSummary(ApiModel):
    """Preformatted headline numbers, for printer columns."""

    p95: str | None = Field(
        default=None,
        description="The first Latency metric's p95 for the candidate (or the workload), "
        "averaged over the window, e.g. 41.20ms; prefixed >= when it was above the "
        "histogram's highest finite bucket at some step, so the number is only a floor.",
    )
    delta_p95: str | None = Field(
        default=None,
        description="Its p95 change against the stable series (else the historical "
        "baseline), e.g. +3.10ms; prefixed >= when the candidate's p95 was a floor (above "
        "the histogram's highest finite bucket) at some judged step and <= when the "
        "baseline's was, the change being then at least or at most that.",
    )


class PerfBaselineStatus(ResourceStatus):
    """The verdict on the candidate, with the numbers behind it; written by the operator."""

    verdict: Verdict | None = Field(
        default=None,
        description="Pass, Fail (a critical metric's regression held for sustainFor) or "
        "Inconclusive; never Pass without data.",
    )
    candidate: CandidateStatus | None = Field(
        default=None,
        description="What was judged, so a gate can refuse a verdict about another candidate.",
    )
    baseline: BaselineStatus | None = Field(
        default=None, description="The historical baseline window of the last evaluation."
    )
    summary: PerfBaselineSummary | None = None
    metrics: list[MetricStatus] | None = Field(
        default=None,
        max_length=64,
        description="One entry per metric, statistic with a threshold, and comparison.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "statistic", "comparison"],
        },
    )
    stages: list[StageStatus] | None = Field(
        default=None,
        max_length=256,
        description="Per-stage latency of Latency metrics with stageLabel.",
    )
    stages_summary: StagesSummary | None = Field(
        default=None, description="How much of the latency the stages account for."
    )
