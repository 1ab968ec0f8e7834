"""`perfguard run | crds | evaluate | report` — the command line."""

from __future__ import annotations

import argparse
import codecs
import io
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from perfguard import __version__
from perfguard.render import one_line

if TYPE_CHECKING:
    from perfguard.api.perfbaseline import PerfBaselineSpec, PrometheusRef
    from perfguard.sources.prometheus import RequestOptions


DEFAULT_CRD_DIRS = ("crds", "charts/perfguard/files/crds")


def _cmd_crds(args: argparse.Namespace) -> int:
    from perfguard.api.crdgen import render_all

    if args.output is None:
        # The repository's copies, relative to its root: elsewhere there is nothing to
        # check or write (and a --check would call every file out of date).
        outputs = [Path(p) for p in DEFAULT_CRD_DIRS]
        missing = [str(out) for out in outputs if not out.is_dir()]
        if missing:
            print(
                f"perfguard crds: no {', '.join(missing)} here: run it from the repository "
                "root, or name the directories with -o",
                file=sys.stderr,
            )
            return 2
    else:
        outputs = [Path(p) for p in args.output]
    rendered = render_all()
    if args.check:
        missing = [str(out) for out in outputs if not out.is_dir()]
        if missing:
            print(f"perfguard crds: no directory {', '.join(missing)}", file=sys.stderr)
            return 2
        stale = [
            str(out / name)
            for out in outputs
            for name, text in rendered.items()
            if not (out / name).exists() or (out / name).read_text() != text
        ]
        if stale:
            print("CRDs are out of date (run `make crds`): " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    for out in outputs:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (out / name).write_text(text)
            print(f"wrote {out / name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    from perfguard.config import OperatorConfig

    if args.prometheus:
        os.environ["PERFGUARD_PROMETHEUS_URL"] = args.prometheus
    if args.log_level:
        os.environ["PERFGUARD_LOG_LEVEL"] = args.log_level
    if args.http_port is not None:
        os.environ["PERFGUARD_HTTP_PORT"] = str(args.http_port)
    if args.namespace:
        os.environ["PERFGUARD_NAMESPACES"] = ",".join(g for globs in args.namespace for g in globs)
    if args.peering:
        os.environ["PERFGUARD_PEERING"] = args.peering
    try:
        config = OperatorConfig.from_env()
    except ValueError as error:
        print(f"perfguard run: {error}", file=sys.stderr)
        return 2
    # Kopf pauses every replica whose peering priority equals another's: each replica
    # needs its own. Random unless given, so two pods of one Deployment differ.
    priority = args.priority if args.priority is not None else config.peering_priority
    if priority is None:
        import random

        priority = random.randint(1, 32767)

    import perfguard.handlers  # noqa: F401 - registers the handlers
    from perfguard.shutdown import ExitClock, report_exit

    clock = ExitClock()

    async def operate() -> None:
        try:
            await kopf.operator(
                clusterwide=not config.namespaces,
                namespaces=list(config.namespaces),
                standalone=config.standalone,
                peering_name=config.peering,
                priority=priority,
            )
        finally:
            clock.stop()
            report_exit(clock, "operator stopped")

    asyncio.run(operate())
    report_exit(clock, "event loop closed")
    return 0


T = TypeVar("T")


class UsageError(Exception):
    """Exit 3: the input cannot be evaluated."""


def _load_resource(path: str) -> dict[str, object]:
    import yaml

    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UsageError(f"cannot read {name}: {_yaml_problem(error)}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {name}: {one_line(str(error))}") from None
    if not isinstance(doc, dict) or "kind" not in doc:
        raise UsageError(f"{path} does not hold a Kubernetes object")
    return doc


def _yaml_problem(error: Exception) -> str:
    """A YAML error on one line, with the place in the file (not PyYAML's multi-line text
    naming the stream "<unicode string>")."""
    import yaml

    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        what = " ".join(str(p) for p in (error.context, error.problem) if p)
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"invalid YAML: {one_line(str(error))}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    """One evaluation of a PerfBaseline or CapacityPlan file against Prometheus.

    PerfBaseline: exit 0 Pass, 1 Fail, 2 Inconclusive. CapacityPlan: 0 Sufficient,
    1 Insufficient, 2 NearLimit or Unverified. Both: 3 bad input (a spec the engine or a
    query Prometheus refuses included), 4 no Prometheus.
    """
    import asyncio
    import json

    from perfguard.api.capacityplan import CapacityPlanSpec
    from perfguard.api.perfbaseline import PerfBaselineSpec
    from perfguard.api.resources import CAPACITY_PLAN, PERF_BASELINE
    from perfguard.api.validation import document_problems, summary, without_nulls
    from perfguard.engine.offline import (
        EvaluateOptions,
        evaluate_capacityplan_offline,
        replay_perfbaseline,
        replay_steps,
    )
    from perfguard.render import capacityplan, perfbaseline

    resources = {r.kind: r for r in (PERF_BASELINE, CAPACITY_PLAN)}
    try:
        doc = _load_resource(args.file)
        resource = resources.get(str(doc["kind"]))
        if resource is None:
            raise UsageError(
                f"perfguard evaluate takes a PerfBaseline or a CapacityPlan, not {doc['kind']}"
            )
        if not isinstance(doc.get("spec") or {}, dict):
            raise UsageError(f"spec must be a mapping, not {type(doc['spec']).__name__}")
        # What `kubectl apply` refuses, unknown fields included: the models alone ignore
        # those, and a misspelt field would be evaluated as its default.
        if problems := document_problems(resource, doc):
            raise UsageError(f"invalid spec: {summary(problems)}")
        spec = resource.spec.model_validate(without_nulls(doc.get("spec") or {}))
        assert isinstance(spec, PerfBaselineSpec | CapacityPlanSpec)
        at = _evaluation_time(args.at)
        url = spec.prometheus.url if spec.prometheus else None
        if args.prometheus is not None:
            from perfguard.config import parse_prometheus_url

            try:
                url = parse_prometheus_url(args.prometheus)
            except ValueError as error:
                raise UsageError(f"--prometheus {error}") from None
        if not url:
            raise UsageError("give --prometheus URL (the spec names none)")
        request = _request_options(args, spec.prometheus)
        metadata, generation = _metadata(doc)
        if isinstance(spec, PerfBaselineSpec):
            _check_replay(spec)
    except UsageError as error:
        print(f"perfguard evaluate: {error}", file=sys.stderr)
        return 3
    for warning in _identity_warnings(spec, args):
        print(f"perfguard evaluate: warning: {warning}", file=sys.stderr)
    if isinstance(spec, PerfBaselineSpec):
        options = EvaluateOptions(
            prometheus=url,
            at=at,
            candidate_hash=args.candidate_hash,
            stable_hash=args.stable_hash,
            generation=generation,
            request=request,
        )
        progress = ReplayProgress(_replay(spec), replay_steps(spec), sys.stderr)
        try:
            status = asyncio.run(replay_perfbaseline(spec, options, progress))
        finally:
            progress.close()
        render, exits = perfbaseline, {"Pass": 0, "Fail": 1}
    else:
        hosts = [h.strip() for h in args.nodes.split(",") if h.strip()] if args.nodes else None
        options = EvaluateOptions(prometheus=url, at=at, generation=generation, request=request)
        status = asyncio.run(evaluate_capacityplan_offline(spec, options, hosts))
        render, exits = capacityplan, {"Sufficient": 0, "Insufficient": 1}
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    if ready and ready["reason"] in _UNREACHABLE:
        print(f"perfguard evaluate: {ready['message']}", file=sys.stderr)
        return 4
    name = f"{metadata.get('namespace', 'default')}/{metadata.get('name', '?')}"
    if ready and ready["reason"] in _UNUSABLE:
        # Not Inconclusive (2), which a pipeline may wait out: no later run of this file
        # gets further until the spec or its query is fixed.
        print(
            f"perfguard evaluate: cannot evaluate {doc['kind']} {name} ({ready['reason']}): "
            f"{one_line(ready['message'])}",
            file=sys.stderr,
        )
        return 3
    if args.output == "json":
        print(json.dumps(status, indent=2))
    else:
        print(render(name, status))
    return exits.get(str(status.get("verdict")), 2)


def _replay(spec: PerfBaselineSpec) -> str:
    """The replay a PerfBaseline's evaluation runs, in words."""
    from perfguard.api.quantities import format_duration

    return (
        f"sustainFor {format_duration(spec.analysis.sustain_for)} at interval "
        f"{format_duration(spec.analysis.interval)}"
    )


def _check_replay(spec: PerfBaselineSpec) -> None:
    """Refuse a replay of more evaluations than MAX_REPLAY, saying what would fit."""
    import math

    from perfguard.api.quantities import format_duration
    from perfguard.engine.offline import MAX_REPLAY, replay_steps

    steps = replay_steps(spec)
    if steps <= MAX_REPLAY:
        return
    # int(sustainFor / interval) + 2 <= MAX_REPLAY
    sustain_s = spec.analysis.sustain_for.total_seconds()
    fits = timedelta(seconds=math.ceil(sustain_s / (MAX_REPLAY - 2)))
    raise UsageError(
        f"{_replay(spec)} is a replay of {steps:,} evaluations; perfguard evaluate replays "
        f"at most {MAX_REPLAY:,}: evaluate a copy whose spec.analysis.interval is at least "
        f"{format_duration(fits)}"
    )


class ReplayProgress:
    """How far a PerfBaseline replay has got, on `stream` (stderr): on a terminal one line
    rewritten in place, elsewhere (a CI log) a line every EVERY_S seconds; nothing for a
    replay done within FIRST_S seconds. A replay of LONG evaluations or more says so at
    once."""

    FIRST_S = 5.0
    EVERY_S = 30.0
    LONG = 100

    def __init__(
        self, what: str, total: int, stream: Any, clock: Callable[[], float] | None = None
    ) -> None:
        """`what`: the replay in words ("sustainFor 1d at interval 15s"); `total`: its
        evaluations."""
        import time

        self.what = what
        self.stream = stream
        self.clock = clock or time.monotonic
        self.started = self.clock()
        self.shown = 0.0
        self.width = 0  # of the line shown in place
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        if total >= self.LONG:
            self._line(
                f"perfguard evaluate: replaying {total:,} evaluations ({self.what})", keep=True
            )

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        elapsed = now - self.started
        if elapsed < self.FIRST_S or done >= total:
            return
        if now - self.shown < (0.5 if self.terminal else self.EVERY_S):
            return
        self.shown = now
        left = elapsed / done * (total - done)
        self._line(
            f"perfguard evaluate: replayed {done:,} of {total:,} evaluations ({self.what}); "
            f"about {_about(left)} left"
        )

    def _line(self, text: str, keep: bool = False) -> None:
        if self.terminal and not keep:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            self.close()
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Clear a line shown in place, so what follows starts on a clean line."""
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _about(seconds: float) -> str:
    """A time left, as a person reads it: 40s, 12m, 1h35m."""
    seconds = max(round(seconds), 1)
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def _identity_warnings(spec: object, args: argparse.Namespace) -> list[str]:
    """What the hash flags will not do: offline there is no workload to read the canary's
    pod-template hash from, so a workloadRef without them judges the whole workload, and
    without a workloadRef they select nothing."""
    from perfguard.api.perfbaseline import Comparison, PerfBaselineSpec

    given = [
        flag
        for flag, value in (
            ("--candidate-hash", args.candidate_hash),
            ("--stable-hash", args.stable_hash),
        )
        if value
    ]
    if not isinstance(spec, PerfBaselineSpec):
        return [f"{' and '.join(given)} ignored: a CapacityPlan has no candidate"] if given else []
    ref = spec.workload_ref
    if ref is None:
        return [f"{' and '.join(given)} ignored: the spec has no workloadRef"] if given else []
    if args.candidate_hash and not args.stable_hash:
        # The operator's twin is a Rollout with currentPodHash but no stableRS: both judge
        # the candidate without a stable track (engine/tracks.py). Silent, this passed a
        # Concurrent spec on throughput alone.
        if spec.comparison == Comparison.HISTORICAL:
            return [
                "--candidate-hash without --stable-hash: the historical baseline is the whole "
                "workload's history, not the stable track's; give --stable-hash"
            ]
        return [
            "--candidate-hash without --stable-hash: the Concurrent comparison has no stable "
            "track, so its metrics are NoData (NoStableTrack) and the verdict Inconclusive; "
            "give --stable-hash"
        ]
    if args.candidate_hash and args.candidate_hash == args.stable_hash:
        # One ReplicaSet for both, as in a fully promoted Rollout: the operator judges the
        # workload then, and so does this (engine/tracks.py), rather than the stable
        # against itself.
        return [
            "--candidate-hash equals --stable-hash: no canary in flight (a fully promoted "
            f"workload); judging the whole workload, named {args.stable_hash}"
        ]
    if given:
        # --stable-hash alone is "no canary in flight": the operator then judges the
        # workload and names it by the stable hash (engine/tracks.py), and so does this.
        return []
    return [
        f"spec.workloadRef names {ref.kind} {ref.name}, whose pod-template hashes cannot be "
        "read offline: give --candidate-hash (and --stable-hash) to judge a canary; judging "
        "the whole workload, candidate 'none'"
    ]


def _metadata(doc: dict[str, object]) -> tuple[dict[str, object], int]:
    """The resource's metadata and generation (1 when not given), checked as the API
    server would: a mapping, and a positive whole number."""
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise UsageError(f"metadata must be a mapping, not {type(metadata).__name__}")
    generation = metadata.get("generation")
    if generation is None:
        return metadata, 1
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 1:
        raise UsageError(f"metadata.generation must be a positive integer, not {generation!r}")
    return metadata, generation


# Prometheus holds nothing before the Unix epoch; before it, too, a baseline window taken
# from --at could leave the years a datetime holds (0001-01-01 was an OverflowError, exit 1).
EARLIEST_AT = datetime(1970, 1, 1, tzinfo=UTC)
# How far ahead of this machine's clock --at may be: another machine's "now". Beyond it
# Prometheus has no data yet, and every metric would be NoData with no word why.
AT_AHEAD = timedelta(seconds=60)


def _evaluation_time(text: str | None, now: datetime | None = None) -> datetime:
    """--at as the time of the evaluation, in whole seconds (as the operator writes its
    times: a fraction leaked into lastEvaluationTime and the baseline's times); now when
    not given."""
    from perfguard.times import format_time

    now = now or datetime.now(UTC)
    if not text:
        return now.replace(microsecond=0)
    # RFC 3339 allows a lowercase "t" and "z"; fromisoformat takes the "t" but not the "z".
    try:
        at = datetime.fromisoformat(text[:-1] + "Z" if text.endswith("z") else text)
    except ValueError as error:
        raise UsageError(f"--at {text!r} is not an RFC 3339 time") from error
    if at.tzinfo is None:
        raise UsageError("--at needs a time zone, e.g. 2026-11-28T10:00:00Z")
    too_old = f"--at {text} is before {format_time(EARLIEST_AT)}: Prometheus holds nothing that old"
    try:
        at = at.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in a zone east of UTC
        raise UsageError(too_old) from None
    if at < EARLIEST_AT:
        raise UsageError(too_old)
    if at > now + AT_AHEAD:
        raise UsageError(
            f"--at {text} is in the future (it is {format_time(now.replace(microsecond=0))} "
            "now): Prometheus has no data for it yet"
        )
    return at.replace(microsecond=0)


def _request_options(args: argparse.Namespace, ref: PrometheusRef | None) -> RequestOptions:
    """Credentials and TLS trust for `perfguard evaluate`: from files, since the spec's
    Secrets cannot be read without a cluster."""
    from perfguard.sources.prometheus_auth import CredentialsError, offline_options

    try:
        return offline_options(
            ref,
            bearer_token_file=Path(args.bearer_token_file) if args.bearer_token_file else None,
            ca_file=Path(args.ca_file) if args.ca_file else None,
        )
    except CredentialsError as error:
        raise UsageError(error.message) from None


# Ready reasons meaning Prometheus could not be asked (exit 4): unreachable, timed out,
# erroring, refusing the credentials, failing TLS.
_UNREACHABLE = {
    "PrometheusUnreachable",
    "PrometheusTimeout",
    "PrometheusError",
    "PrometheusBadResponse",
    "PrometheusUnauthorized",
    "PrometheusTLSError",
    "PrometheusCredentialsUnavailable",
}


# Ready reasons meaning the file itself cannot be evaluated (exit 3, as a spec refused
# before any query): the engine refuses the spec (e.g. a CapacityPlan history of more points
# than Prometheus answers, a Query metric returning several series), or Prometheus refuses
# one of its queries (a PromQL error, many-to-many matching, too many points).
_UNUSABLE = {"InvalidSpec", "InvalidQuery"}


# The report's verdict as an exit code; 4 when the cluster cannot be read.
REPORT_EXITS = {"STABLE": 0, "NEEDS FIX": 1, "AT RISK": 2}
REPORT_EXIT_CODES = (
    "0 STABLE, 1 NEEDS FIX, 2 AT RISK, 3 a usage error (a bad flag or value), 4 the cluster "
    "cannot be read (no usable kubeconfig, the API server does not answer, access refused, "
    "CRDs missing) or an unexpected error (a bug, which the line says)"
)


def _cmd_report(args: argparse.Namespace) -> int:
    """Exit codes: REPORT_EXIT_CODES."""
    import asyncio

    from perfguard.report import as_json, build, markdown
    from perfguard.sources.kubernetes_api import (
        ReadError,
        list_resources,
        load_client_and_namespace,
    )

    try:
        client, context_namespace = _report_client(load_client_and_namespace)
        # As kubectl: -n, else the context's namespace (in a pod, the pod's).
        namespace = None if args.all_namespaces else args.namespace or context_namespace
        found = asyncio.run(list_resources(client, namespace))
    except ReadError as error:
        print(f"perfguard report: {one_line(str(error))}", file=sys.stderr)
        return 4
    report = build(
        found["perfbaselines"],
        found["envparities"],
        found["capacityplans"],
        status_refresh=args.status_refresh,
        namespace=namespace,
    )
    print(as_json(report) if args.output == "json" else markdown(report))
    return REPORT_EXITS[report.verdict]


def _duration(text: str) -> timedelta:
    from perfguard.api.quantities import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


NOT_A_KUBECONFIG = "not a kubeconfig (expected a YAML mapping with clusters, contexts, users)"


def _report_client(load: Callable[[], T]) -> T:
    """The Kubernetes client for `perfguard report`; a missing, unreadable or malformed
    kubeconfig is a ReadError (exit 4), like an API server that does not answer."""
    from perfguard.sources.kubernetes_api import ReadError

    try:
        return load()
    # Not only ConfigException: a missing file is an OSError, bad YAML a YAMLError, and a
    # document of the wrong shape (a string such as /etc/hostname's, a number, a list) a
    # TypeError or AttributeError from the client's parser, whose own words ("'str' object
    # does not support item assignment") say nothing about the file.
    except (TypeError, AttributeError):
        problem = NOT_A_KUBECONFIG
    except Exception as error:
        problem = one_line(str(error)) or type(error).__name__
    where = os.environ.get("KUBECONFIG") or "~/.kube/config"
    raise ReadError(
        f"no usable Kubernetes configuration (not in a pod, kubeconfig {where}): {problem}"
    ) from None


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit `usage_exit`: 3 for `evaluate` and
    `report`, whose exit 2 already means Inconclusive / AT RISK; argparse's 2 elsewhere."""

    def __init__(self, *args: Any, usage_exit: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_exit = usage_exit

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, f"{self.prog}: error: {message}\n")


def _flag(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse type from one of config's parsers: argparse names the flag."""

    def convert(text: str) -> T:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def build_parser() -> argparse.ArgumentParser:
    from perfguard.config import (
        LOG_LEVELS,
        OperatorConfig,
        parse_log_level,
        parse_namespaces,
        parse_peering,
        parse_port,
        parse_priority,
        parse_prometheus_url,
    )

    parser = _Parser(
        prog="perfguard",
        description="perfguard: performance baselines, environment parity "
        "and GPU capacity for Kubernetes workloads.",
    )
    parser.add_argument("--version", action="version", version=f"perfguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run the operator (in a cluster, or against KUBECONFIG)")
    run.add_argument(
        "--prometheus",
        type=_flag(parse_prometheus_url),
        help="default Prometheus URL [PERFGUARD_PROMETHEUS_URL]",
    )
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        type=_flag(parse_namespaces),
        help="watch only this namespace (repeatable) [PERFGUARD_NAMESPACES]",
    )
    run.add_argument(
        "--log-level",
        type=_flag(parse_log_level),
        help=f"{', '.join(LOG_LEVELS)} [PERFGUARD_LOG_LEVEL, INFO]",
    )
    run.add_argument(
        "--http-port",
        type=_flag(parse_port),
        help="port of /healthz, /readyz, /metrics [PERFGUARD_HTTP_PORT, 8080]",
    )
    run.add_argument(
        "--priority",
        type=_flag(parse_priority),
        help="Kopf peering priority of this replica [PERFGUARD_PEERING_PRIORITY]; "
        "random when not given, so replicas never tie",
    )
    run.add_argument(
        "--peering",
        type=_flag(parse_peering),
        help="Kopf peering name for an HA pair [PERFGUARD_PEERING]; standalone without it",
    )
    run.set_defaults(func=_cmd_run)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a PerfBaseline or a CapacityPlan offline, with the operator's engine",
        description="Exit codes: 0 Pass (CapacityPlan: Sufficient), 1 Fail (Insufficient), "
        "2 Inconclusive (NearLimit, Unverified), 3 unusable input or a usage error, "
        "4 Prometheus unreachable or an unexpected error (a bug, which the line says). "
        "The file is checked as `kubectl apply` checks it, "
        "unknown fields included; what it would refuse exits 3, naming the field. "
        "A spec the engine refuses (InvalidSpec) or a query Prometheus rejects "
        "(InvalidQuery) exits 3 too. A PerfBaseline is replayed at its interval over its "
        "sustainFor, as the operator would have evaluated it: at most 10,000 evaluations "
        "(more exits 3), with progress on stderr when it takes a while.",
        usage_exit=3,
    )
    evaluate.add_argument("-f", "--file", required=True, help="the resource's YAML (- for stdin)")
    evaluate.add_argument("--prometheus", help="Prometheus URL (default: the spec's)")
    evaluate.add_argument(
        "--at",
        help="evaluate as of this RFC 3339 time, taken to the whole second; not before 1970 "
        "nor more than a minute ahead of this machine's clock (default: now)",
    )
    evaluate.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default="table",
        help="table for people; json is exactly the status the operator would write",
    )
    evaluate.add_argument(
        "--candidate-hash",
        help="with workloadRef: the canary's "
        "pod-template hash (there is no cluster to read it from)",
    )
    evaluate.add_argument(
        "--stable-hash",
        help="with workloadRef: the stable pod-template hash; alone (no canary in flight) "
        "the workload is judged and named by it, as the operator does",
    )
    evaluate.add_argument(
        "--nodes",
        help="CapacityPlan: comma-separated hosts to cover, each of which must report, as "
        "the operator's selected Nodes must (default: every host the exporters report; "
        "offline there are no Node objects to select from)",
    )
    evaluate.add_argument(
        "--bearer-token-file",
        help="send `Authorization: Bearer` with the token in this file (the spec's "
        "bearerTokenSecret cannot be read without a cluster)",
    )
    evaluate.add_argument(
        "--ca-file",
        help="verify the https:// Prometheus with this PEM CA bundle instead of the system roots",
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    crds = sub.add_parser(
        "crds",
        help="write the CRDs generated from the API models",
        description="Exit codes: 0 written (--check: up to date), 1 --check found them out "
        "of date, 2 a usage error or a directory that does not exist.",
    )
    crds.add_argument(
        "-o",
        "--output",
        action="append",
        default=None,
        help="directory to write to (repeatable; default: crds/ and the chart's, from the "
        "repository root)",
    )
    crds.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the files differ from what the models generate",
    )
    crds.set_defaults(func=_cmd_crds)

    report = sub.add_parser(
        "report",
        help="the fleet summary from every PerfBaseline, EnvParity and CapacityPlan",
        description="Exit codes: " + REPORT_EXIT_CODES + ".",
        usage_exit=3,
    )
    where = report.add_mutually_exclusive_group()
    where.add_argument(
        "-n",
        "--namespace",
        help="namespace (default: as kubectl, the kubeconfig context's, else default)",
    )
    where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    report.add_argument(
        "-o",
        "--output",
        "--format",
        dest="output",
        choices=["markdown", "json"],
        default="markdown",
        help="markdown for people, json for machines (default: markdown)",
    )
    report.add_argument(
        "--status-refresh",
        type=_duration,
        default=OperatorConfig.status_refresh,
        metavar="DURATION",
        help="the operator's statusRefresh (default 5m): a verdict whose lastEvaluationTime "
        "is older than 3 × the evaluation interval + this is stale (AT RISK)",
    )
    report.set_defaults(func=_cmd_report)
    return parser


# What stands in for a character the terminal's encoding lacks (an ASCII or Latin-1
# locale, PYTHONIOENCODING=ascii): the tables' and messages' punctuation. Anything else
# becomes "?". Without it the first "—" raised UnicodeEncodeError: exit 1, read as Fail.
_PLAIN = {
    "—": "-",
    "–": "-",
    "…": "...",
    "Δ": "d",
    "×": "x",
    "≥": ">=",
    "≤": "<=",
    "±": "+/-",
    "→": "->",
    "⚠": "!",
    "µ": "u",
    "°": "deg",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
}
PLAIN_ERRORS = "perfguard-plain"


def _plain(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(_PLAIN.get(c, "?") for c in text), error.end


codecs.register_error(PLAIN_ERRORS, _plain)


def _any_encoding() -> None:
    """Let stdout and stderr write whatever their encoding cannot hold, plainly."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors=PLAIN_ERRORS)


# Commands whose exit codes are verdicts: an exception must not exit 1 (Python's code for
# it), which reads as Fail / NEEDS FIX.
_VERDICT_COMMANDS = {"evaluate", "report"}


def _unexpected(command: str, error: Exception) -> int:
    """One line for an exception nothing foresaw, and exit 4; the traceback goes to a file
    the line names, for the bug report."""
    import tempfile
    import traceback

    where = ""
    try:
        with tempfile.NamedTemporaryFile(
            "w", prefix=f"perfguard-{command}-", suffix=".txt", delete=False
        ) as trace:
            traceback.print_exception(error, file=trace)
        where = f" (traceback in {trace.name})"
    except OSError:
        pass
    print(
        f"perfguard {command}: unexpected {type(error).__name__}: {one_line(error, 300)}; "
        f"this is a bug, please report it{where}",
        file=sys.stderr,
    )
    return 4


def main(argv: list[str] | None = None) -> int:
    import signal

    # `perfguard evaluate | head` should end quietly, not with a BrokenPipeError trace.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _any_encoding()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse reports these from the top-level parser (exit 2); the subcommand's own
        # parser says them, with its usage and exit code.
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        code: int = args.func(args)
    except Exception as error:
        if args.command not in _VERDICT_COMMANDS:
            raise
        return _unexpected(args.command, error)
    return code


if __name__ == "__main__":
    sys.exit(main())
