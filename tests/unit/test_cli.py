"""The command line's answers to user errors: one line on stderr, never a traceback, and the
documented exit code (report: 4 when the cluster cannot be read; evaluate: 3 for unusable
input, 4 when Prometheus cannot be asked)."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from kubernetes.client import Configuration

from perfguard.cli import main


def kubeconfig(server: str, namespace: str | None = None) -> dict[str, object]:
    context: dict[str, str] = {"cluster": "k", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": context}],
    }


@pytest.fixture
def outside_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No in-cluster service account, no ~/.kube/config; the kubernetes client's default
    configuration (which loading a kubeconfig replaces) is restored afterwards."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    saved = Configuration._default
    try:
        yield
    finally:
        Configuration._default = saved


def assert_one_line(err: str, prefix: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), err


@pytest.mark.parametrize(
    "content",
    [
        None,  # no file at all
        "",  # an empty file
        "garbage: [\n",  # not YAML
        "{}\n",  # no current-context
        "- a\n- b\n",  # not a mapping
    ],
    ids=["missing", "empty", "bad-yaml", "no-context", "a-list"],
)
def test_report_without_a_usable_kubeconfig_exits_4(
    outside_a_pod: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["report"]) == 4
    err = capsys.readouterr().err
    assert_one_line(err, "perfguard report: no usable Kubernetes configuration")
    assert str(path) in err


@pytest.mark.parametrize(
    "content",
    ["myhost\n", "42\n", "- a\n- b\n"],
    ids=["a-word-like-etc-hostname", "a-number", "a-list"],
)
def test_report_says_a_file_of_the_wrong_shape_is_not_a_kubeconfig(
    outside_a_pod: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
) -> None:
    """Not the client parser's "'str' object does not support item assignment"."""
    path = tmp_path / "hostname"
    path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["report"]) == 4
    err = capsys.readouterr().err
    assert_one_line(
        err,
        f"perfguard report: no usable Kubernetes configuration (not in a pod, kubeconfig "
        f"{path}): not a kubeconfig (expected a YAML mapping with clusters, contexts, users)",
    )
    assert "item assignment" not in err and "indices" not in err


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "No configuration found"),
        ("", "is empty"),
        ("garbage: [\n", "expected the node content"),
        ("{}\n", "Expected key current-context"),
    ],
    ids=["missing", "empty", "bad-yaml", "no-context"],
)
def test_report_keeps_the_real_error_of_other_unusable_kubeconfigs(
    outside_a_pod: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    words: str,
) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    assert main(["report"]) == 4
    err = capsys.readouterr().err
    assert words in err and "not a kubeconfig" not in err, err


def test_report_against_an_api_server_that_never_answers_exits_4(
    outside_a_pod: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from perfguard.sources import kubernetes_api

    # A real listening socket that accepts connections (the kernel's backlog) and never
    # answers: every read times out.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(f"http://127.0.0.1:{port}")))
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.setattr(kubernetes_api, "READ_TIMEOUT_S", 0.3)
        assert main(["report", "-A"]) == 4
    err = capsys.readouterr().err
    assert_one_line(err, "perfguard report: listing perfbaselines:")
    assert "timed out" in err


def _readme_section(title: str) -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    return " ".join(readme.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0].split())


def _help(command: str) -> str:
    from perfguard.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command].format_help().split())


def test_report_exit_codes_are_documented_as_the_code_returns_them() -> None:
    from perfguard.cli import REPORT_EXITS
    from perfguard.report import AT_RISK, NEEDS_FIX, STABLE

    assert REPORT_EXITS == {STABLE: 0, NEEDS_FIX: 1, AT_RISK: 2}
    readme, help_text = _readme_section("The fleet in one page"), _help("report")
    for verdict, code in REPORT_EXITS.items():
        assert f"{code} {verdict}" in readme and f"{code} {verdict}" in help_text
    assert "4 the cluster cannot be read" in readme
    assert "4 the cluster cannot be read" in help_text


# -- evaluate --------------------------------------------------------------------------

SPEC = {
    "selector": {"service": "x"},
    "metrics": [
        {
            "name": "l",
            "type": "Latency",
            "histogram": "h",
            "thresholds": {"p95": {"maxIncrease": "5ms"}},
        }
    ],
}
AT = ["--at", "2026-11-28T10:00:00Z"]
CLOSED = "http://127.0.0.1:1"  # nothing listens on port 1
EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


def resource_file(tmp_path: Path, metadata: object = None, spec: object = None) -> str:
    doc: dict[str, object] = {"apiVersion": "perfguard.dev/v1alpha1", "kind": "PerfBaseline"}
    doc["metadata"] = {"name": "a"} if metadata is None else metadata
    doc["spec"] = SPEC if spec is None else spec
    path = tmp_path / "pb.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@contextmanager
def serving(answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Iterator[str]:
    """A real local HTTP server (its own event loop, in a thread: the CLI runs its own)."""
    from tests.local_http import start_server

    loop = asyncio.new_event_loop()
    runner, port = loop.run_until_complete(start_server(answer))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("foo", "metadata must be a mapping, not str"),
        ({"name": "a", "generation": "abc"}, "metadata.generation must be a positive integer"),
        ({"name": "a", "generation": 0}, "metadata.generation must be a positive integer"),
    ],
)
def test_evaluate_bad_metadata_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], metadata: object, message: str
) -> None:
    path = resource_file(tmp_path, metadata=metadata)
    assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT]) == 3
    err = capsys.readouterr().err
    assert_one_line(err, f"perfguard evaluate: {message}")


@pytest.mark.parametrize(
    "values",
    [[["x", "y"]], "zz", [[1]], 5],
    ids=["not-numbers", "a-string", "short-points", "a-number"],
)
def test_evaluate_a_malformed_matrix_is_a_bad_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], values: object
) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "matrix", "result": [{"metric": {}, "values": values}]},
    }

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response(body)

    with serving(answer) as url:
        code = main(["evaluate", "-f", resource_file(tmp_path), "--prometheus", url, *AT])
    err = capsys.readouterr().err
    assert code == 4, err
    assert_one_line(err, "perfguard evaluate:")
    assert "not [time, value] pairs" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate"],  # -f missing
        ["evaluate", "-f", "x", "--bogus"],
        ["evaluate", "-f", "x", "-o", "yaml"],
        ["report", "--bogus"],
        ["report", "-o", "yaml"],
        ["report", "-n", "a", "-A"],
        ["report", "--status-refresh", "soon"],
    ],
)
def test_usage_errors_of_evaluate_and_report_exit_3_not_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """2 is Inconclusive / AT RISK for these two; a script must not read a typo as that."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 3
    assert f"perfguard {argv[0]}: error:" in capsys.readouterr().err


def test_usage_error_exit_codes_are_documented() -> None:
    assert "3 a usage error" in _readme_section("The fleet in one page")
    assert "3 a usage error" in _help("report")
    assert "3 unusable input or a usage error" in _readme_section("Judging a canary offline")
    assert "3 unusable input or a usage error" in _help("evaluate")


def test_evaluate_documents_that_it_refuses_what_kubectl_apply_refuses() -> None:
    assert "unknown or misspelt fields" in _readme_section("Judging a canary offline")
    assert "checked as `kubectl apply` checks it, unknown fields included" in _help("evaluate")


@pytest.mark.parametrize("url", ["notaurl", "ftp://x", "http://", "http://u:p@prom:9090", ""])
def test_evaluate_a_bad_prometheus_flag_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    """Not "unreachable" (exit 4): no request is made."""
    assert main(["evaluate", "-f", resource_file(tmp_path), "--prometheus", url, *AT]) == 3
    assert_one_line(
        capsys.readouterr().err, "perfguard evaluate: --prometheus must be an http(s) URL"
    )


def test_evaluate_a_bad_spec_url_is_said_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = resource_file(tmp_path, spec={**SPEC, "prometheus": {"url": "notaurl"}})
    assert main(["evaluate", "-f", path, *AT]) == 3
    err = capsys.readouterr().err
    assert_one_line(
        err,
        "perfguard evaluate: invalid spec: spec.prometheus.url: "
        "must be an http(s) URL with host[:port]",
    )
    assert "pattern" not in err and "[A-Za-z0-9]" not in err


LATENCY: dict[str, Any] = SPEC["metrics"][0]  # type: ignore[index]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {**SPEC, "anaylsis": {"window": "5m"}},
            "spec.anaylsis: unknown field (did you mean analysis?)",
        ),
        (
            {**SPEC, "metrics": [{**LATENCY, "thresholds": {"p95": {"maxIncrese": "5ms"}}}]},
            "spec.metrics.0.thresholds.p95.maxIncrese: unknown field (did you mean maxIncrease?)",
        ),
        (
            {**SPEC, "metrics": [{k: v for k, v in LATENCY.items() if k != "histogram"}]},
            "spec.metrics.0.histogram: a Latency metric needs histogram "
            "(the _bucket/_sum/_count base)",
        ),
        (
            {
                **SPEC,
                "metrics": [
                    {"name": "t", "type": "Throughput", "thresholds": {"rate": {"max": 1}}}
                ],
            },
            "spec.metrics.0.counter: Throughput and ErrorRate metrics need counter",
        ),
        (
            {**SPEC, "analysis": {"window": "1m", "step": "5m"}},
            "spec.analysis.window: analysis.window must be at least analysis.step",
        ),
    ],
    ids=["misspelt-field", "misspelt-nested-field", "no-histogram", "no-counter", "window-lt-step"],
)
def test_evaluate_refuses_what_kubectl_apply_refuses_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: dict[str, object], message: str
) -> None:
    """Exit 3 (unusable input) before any query: not 1, which says Fail, and not a
    misspelt field evaluated as its default."""
    path = resource_file(tmp_path, spec=spec)
    assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT]) == 3
    assert_one_line(capsys.readouterr().err, f"perfguard evaluate: invalid spec: {message}")


def test_evaluate_refuses_a_misspelt_capacityplan_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cplan.yaml"
    doc = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "CapacityPlan",
        "metadata": {"name": "fleet"},
        "spec": {"traffic": {"query": "sum(rate(x[5m]))"}, "histroy": "30d"},
    }
    path.write_text(yaml.safe_dump(doc))
    assert main(["evaluate", "-f", str(path), "--prometheus", CLOSED, *AT]) == 3
    assert_one_line(
        capsys.readouterr().err,
        "perfguard evaluate: invalid spec: spec.histroy: unknown field (did you mean history?)",
    )


def test_evaluate_refuses_quoted_numbers_and_booleans_as_the_api_server_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The models would read "0.95" as 0.95 and "true" as True; `kubectl apply` refuses
    them by the schema's type, so evaluate exits 3 naming each field in the server's words
    (`... in body must be of type number: "string"`), and queries nothing."""
    path = tmp_path / "pb.yaml"
    path.write_text(
        "apiVersion: perfguard.dev/v1alpha1\n"
        "kind: PerfBaseline\n"
        "metadata: {name: a}\n"
        "spec:\n"
        "  selector: {service: x}\n"
        '  baseline: {window: 7d, minSamples: "50"}\n'
        '  analysis: {window: 10m, confidence: "0.95"}\n'
        "  metrics:\n"
        "    - name: l\n"
        "      type: Latency\n"
        "      histogram: h\n"
        "      thresholds: {p95: {maxIncrease: 5ms}}\n"
        "      critical: 1\n"
    )
    assert main(["evaluate", "-f", str(path), "--prometheus", CLOSED, *AT]) == 3
    assert_one_line(
        capsys.readouterr().err,
        "perfguard evaluate: invalid spec: "
        'spec.baseline.minSamples: must be of type integer: "string"; '
        'spec.analysis.confidence: must be of type number: "string"; '
        'spec.metrics.0.critical: must be of type boolean: "integer"',
    )


def test_evaluate_takes_a_null_field_as_absent_as_the_api_server_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kubectl apply` prunes `confidence: null` (the default applies): not exit 3 but an
    evaluation, which here cannot reach Prometheus (exit 4)."""
    spec = {**SPEC, "analysis": {"window": "10m", "confidence": None}}
    path = resource_file(tmp_path, spec=spec)
    assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT]) == 4
    assert_one_line(capsys.readouterr().err, f"perfguard evaluate: cannot reach {CLOSED}")


def test_evaluate_names_every_problem_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt field and what it leaves missing, with top-level typos too; metadata
    (the API server's own) and status (the operator's) are not checked."""
    doc = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "PerfBaseline",
        "metadata": {"name": "a", "resourceVersion": "7", "managedFields": []},
        "spec": {**SPEC, "metrics": [{**LATENCY, "histogarm": "h", "histogram": None}]},
        "status": {"someNewerField": 1},
        "sepc": {},
    }
    path = tmp_path / "pb.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert main(["evaluate", "-f", str(path), "--prometheus", CLOSED, *AT]) == 3
    err = capsys.readouterr().err
    assert_one_line(
        err, "perfguard evaluate: invalid spec: sepc: unknown field (did you mean spec?)"
    )
    assert "; spec.metrics.0.histogarm: unknown field (did you mean histogram?)" in err
    assert "; spec.metrics.0.histogram: a Latency metric needs histogram" in err
    assert "metadata" not in err and "status" not in err


def test_evaluate_gives_up_on_an_unresponsive_prometheus_after_one_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replay of 5 steps (sustainFor 3m at 1m) stops at the first timeout, instead of
    waiting out the query timeout at every step."""
    spec = {**SPEC, "prometheus": {"timeout": "1s"}}
    # A real socket that accepts connections (the kernel's backlog) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code = main(["evaluate", "-f", resource_file(tmp_path, spec=spec), "--prometheus", url])
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == 4, err
    assert_one_line(err, "perfguard evaluate:")
    assert elapsed < 2.5, f"{elapsed:.1f} s: the replay went on after the first timeout"


def test_evaluate_a_spec_the_engine_refuses_is_unusable_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """history 30d at step 1m is more points than Prometheus answers: the engine refuses
    it (Ready InvalidSpec) before any query. That is exit 3, not 2 ("Inconclusive"), which
    a pipeline may retry or wait out."""
    path = tmp_path / "cplan.yaml"
    doc = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "CapacityPlan",
        "metadata": {"name": "fleet", "namespace": "ml-prod"},
        "spec": {"traffic": {"query": "sum(rate(x[5m]))"}, "history": "30d", "step": "1m"},
    }
    path.write_text(yaml.safe_dump(doc))
    for output in ("table", "json"):
        argv = ["evaluate", "-f", str(path), "--prometheus", CLOSED, *AT, "-o", output]
        assert main(argv) == 3
        captured = capsys.readouterr()
        assert_one_line(
            captured.err,
            "perfguard evaluate: cannot evaluate CapacityPlan ml-prod/fleet (InvalidSpec): "
            "history 30d at step 1m is 43,201 points per series",
        )
        assert captured.out == ""


def test_evaluate_documents_that_a_refused_spec_or_query_exits_3() -> None:
    for text in (_readme_section("Judging a canary offline"), _help("evaluate")):
        assert "InvalidSpec" in text and "InvalidQuery" in text, text
    assert "(InvalidQuery) exits 3 too" in _help("evaluate")
    assert "`InvalidQuery`, e.g. a PromQL syntax error) exits 3 too" in _readme_section(
        "Judging a canary offline"
    )


def test_the_table_names_no_candidate_when_none_was_judged() -> None:
    """A first evaluation whose queries failed has no candidate in its status: the header
    used to read "candidate -", as if one were named "-"."""
    from perfguard.render import perfbaseline

    status = {
        "verdict": "Inconclusive",
        "reason": "PrometheusAnswerTooLarge",
        "lastEvaluationTime": "2026-11-28T10:00:00Z",
    }
    header = perfbaseline("ml-prod/a", status).splitlines()[0]
    assert header == "PerfBaseline ml-prod/a: Inconclusive (PrometheusAnswerTooLarge) at " + (
        "2026-11-28T10:00:00Z"
    )
    status["candidate"] = {"identity": "track=canary"}
    header = perfbaseline("ml-prod/a", status).splitlines()[0]
    assert header.endswith(" — candidate track=canary at 2026-11-28T10:00:00Z")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("0001-01-01T00:00:00Z", "is before 1970-01-01T00:00:00Z"),
        ("0001-01-01T00:00:00+01:00", "is before 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "is before 1970-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "is in the future"),
    ],
)
def test_evaluate_refuses_an_at_outside_what_prometheus_can_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], at: str, message: str
) -> None:
    """Exit 3 before any query, one line. 0001-01-01 used to end in an OverflowError
    traceback, exit 1 (Fail); a time in the future in NoData with no word why."""
    for path in (resource_file(tmp_path), str(EXAMPLES / "capacityplan.yaml")):
        assert main(["evaluate", "-f", path, "--prometheus", CLOSED, "--at", at]) == 3
        assert_one_line(capsys.readouterr().err, f"perfguard evaluate: --at {at} {message}")


def test_evaluate_takes_any_rfc_3339_time_to_the_whole_second() -> None:
    from datetime import UTC, datetime, timedelta

    from perfguard.cli import UsageError, _evaluation_time

    now = datetime(2026, 12, 5, 12, 0, 0, 700000, tzinfo=UTC)
    ten = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    for text in (
        "2026-11-28T10:00:00Z",
        "2026-11-28t10:00:00z",  # RFC 3339 allows both in lower case; "z" was refused
        "2026-11-28T10:00:00.999999Z",  # floored, as the operator writes its times
        "2026-11-28T11:00:00.5+01:00",
    ):
        assert _evaluation_time(text, now) == ten, text
    assert _evaluation_time(None, now) == now.replace(microsecond=0)
    # Another machine's "now", up to a minute ahead of this clock, is not "the future".
    assert _evaluation_time("2026-12-05T12:01:00Z", now) == now.replace(microsecond=0) + timedelta(
        minutes=1
    )
    with pytest.raises(UsageError, match="is in the future"):
        _evaluation_time("2026-12-05T12:01:01Z", now)


EMPTY_MATRIX = {"status": "success", "data": {"resultType": "matrix", "result": []}}


async def empty_answer(request: web.Request) -> web.StreamResponse:
    return web.json_response(EMPTY_MATRIX)


def test_evaluate_writes_whole_seconds_for_a_fractional_at(tmp_path: Path) -> None:
    """lastEvaluationTime and the baseline's times as the operator writes them: a fraction
    of --at used to come out in all of them (2026-11-28T10:00:00.500000Z)."""
    import json

    spec = {**SPEC, "analysis": {"interval": "1m", "sustainFor": "1m"}}
    path = resource_file(tmp_path, spec=spec)
    with serving(empty_answer) as url:
        argv = ["evaluate", "-f", path, "--prometheus", url, "-o", "json"]
        out = subprocess.run(
            [sys.executable, "-m", "perfguard.cli", *argv, "--at", "2026-11-28T10:00:00.5Z"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2, out.stderr  # no data: Inconclusive
    status = json.loads(out.stdout)
    assert status["lastEvaluationTime"] == "2026-11-28T10:00:00Z"
    assert status["baseline"]["to"] == "2026-11-28T09:50:00Z"
    assert "." not in json.dumps(
        [status["baseline"], [c["lastTransitionTime"] for c in status["conditions"]]]
    )


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_evaluate_prints_its_table_to_a_terminal_that_is_not_utf8(
    tmp_path: Path, encoding: str
) -> None:
    """The table's "—" raised UnicodeEncodeError under an ASCII locale: a traceback and
    exit 1, read as Fail. Now it is written plainly, and the exit is the verdict's."""
    spec = {**SPEC, "analysis": {"interval": "1m", "sustainFor": "1m"}}
    path = resource_file(tmp_path, spec=spec)
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    with serving(empty_answer) as url:
        cli = [sys.executable, "-m", "perfguard.cli"]
        out = subprocess.run(
            [*cli, "evaluate", "-f", path, "--prometheus", url, *AT],
            capture_output=True,
            env=env,
            timeout=60,
        )
    assert out.returncode == 2, out.stderr  # no data: Inconclusive
    assert b"Traceback" not in out.stderr
    header = out.stdout.decode(encoding).splitlines()[0]
    assert header.startswith("PerfBaseline default/a: Inconclusive (NoData) - candidate ")


def test_text_a_terminal_cannot_show_is_written_plainly() -> None:
    import io

    from perfguard.cli import PLAIN_ERRORS

    buffer = io.BytesIO()
    stream = io.TextIOWrapper(buffer, encoding="ascii", errors=PLAIN_ERRORS)
    stream.write("a — b … ΔP95 ≥ 5 µs ⚠ 日")
    stream.flush()
    assert buffer.getvalue() == b"a - b ... dP95 >= 5 us ! ?"


@pytest.mark.parametrize("command", ["evaluate", "report"])
def test_an_unexpected_error_exits_4_saying_it_is_a_bug(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    outside_a_pod: None,
    command: str,
) -> None:
    """Not Python's exit 1 with a traceback, which reads as Fail / NEEDS FIX: one line
    naming the error, the traceback in a file for the report."""
    from perfguard.engine import offline
    from perfguard.sources import kubernetes_api

    def broken(*args: object, **kwargs: object) -> Any:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(offline, "replay_perfbaseline", broken)
    monkeypatch.setattr(kubernetes_api, "list_resources", broken)
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(kubeconfig(CLOSED)))
    monkeypatch.setenv("KUBECONFIG", str(config))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    argv = {
        "evaluate": ["evaluate", "-f", resource_file(tmp_path), "--prometheus", CLOSED, *AT],
        "report": ["report", "-A"],
    }[command]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert_one_line(
        err,
        f"perfguard {command}: unexpected ZeroDivisionError: float division by zero; this is "
        "a bug, please report it (traceback in ",
    )
    trace = Path(err.split("(traceback in ", 1)[1].rstrip().removesuffix(")"))
    assert "Traceback" in trace.read_text() and "def broken" not in err


def test_the_exit_code_of_an_unexpected_error_is_documented() -> None:
    for section, command in (
        ("Judging a canary offline", "evaluate"),
        ("The fleet in one page", "report"),
    ):
        for text in (_readme_section(section), _help(command)):
            assert "an unexpected error (a bug, which the line says)" in text, (command, text)


def test_evaluate_refuses_a_replay_of_more_evaluations_than_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """sustainFor 30d at 15s is 172,802 evaluations: hours of queries with no end in sight
    (sustainFor 1d at 15s used to run 5,762 of them in silence, each asking for its 7-day
    baseline). Refused before any query, with an interval that fits."""
    from perfguard.api.perfbaseline import PerfBaselineSpec
    from perfguard.engine.offline import MAX_REPLAY, replay_steps

    analysis = {"interval": "15s", "sustainFor": "30d"}
    path = resource_file(tmp_path, spec={**SPEC, "analysis": analysis})
    assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT]) == 3
    err = capsys.readouterr().err
    assert_one_line(
        err,
        "perfguard evaluate: sustainFor 30d at interval 15s is a replay of 172,802 "
        "evaluations; perfguard evaluate replays at most 10,000: evaluate a copy whose "
        "spec.analysis.interval is at least 4m20s",
    )
    fits = PerfBaselineSpec.model_validate({**SPEC, "analysis": {**analysis, "interval": "4m20s"}})
    assert replay_steps(fits) <= MAX_REPLAY


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_replay_progress_in_a_log_is_a_line_every_30_seconds() -> None:
    from perfguard.cli import ReplayProgress

    clock, log = Clock(), io.StringIO()
    progress = ReplayProgress("sustainFor 1d at interval 15s", 5762, log, clock)
    assert log.getvalue() == (
        "perfguard evaluate: replaying 5,762 evaluations (sustainFor 1d at interval 15s)\n"
    )
    log.truncate(0)
    log.seek(0)
    clock.now += 4
    progress(40, 5762)  # within the first 5 s: nothing yet
    assert log.getvalue() == ""
    clock.now += 2
    progress(60, 5762)  # 6 s for 60: about 570 s left
    assert log.getvalue() == (
        "perfguard evaluate: replayed 60 of 5,762 evaluations (sustainFor 1d at interval "
        "15s); about 10m left\n"
    )
    clock.now += 29
    progress(350, 5762)
    assert log.getvalue().count("\n") == 1  # the next only 30 s after the last
    clock.now += 1
    progress(360, 5762)
    assert (
        log.getvalue()
        .splitlines()[-1]
        .endswith(
            "replayed 360 of 5,762 evaluations (sustainFor 1d at interval 15s); about 9m left"
        )
    )
    progress.close()
    assert "\r" not in log.getvalue()


def test_replay_progress_on_a_terminal_is_one_line_rewritten() -> None:
    from perfguard.cli import ReplayProgress

    clock, terminal = Clock(), Terminal()
    progress = ReplayProgress("sustainFor 10m at interval 15s", 42, terminal, clock)
    assert terminal.getvalue() == ""  # a short replay says nothing up front
    for done in range(1, 42):
        clock.now += 0.25
        progress(done, 42)
    shown = terminal.getvalue()
    assert "\n" not in shown and shown.count("\r") >= 5
    assert shown.rsplit("\r", 1)[1].startswith("perfguard evaluate: replayed 4")
    progress.close()
    assert terminal.getvalue().endswith("\r")  # cleared: the verdict starts a clean line


def test_evaluate_reports_each_replayed_evaluation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from perfguard.cli import ReplayProgress

    monkeypatch.setattr(ReplayProgress, "FIRST_S", 0.0)
    monkeypatch.setattr(ReplayProgress, "EVERY_S", 0.0)
    spec = {**SPEC, "analysis": {"interval": "1m", "sustainFor": "3m"}}
    with serving(empty_answer) as url:
        argv = ["evaluate", "-f", resource_file(tmp_path, spec=spec), "--prometheus", url, *AT]
        assert main(argv) == 2  # no data: Inconclusive
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" evaluations")[0] for line in lines] == [
        f"perfguard evaluate: replayed {done} of 5" for done in (1, 2, 3, 4)
    ]


def test_evaluate_documents_the_replay_and_its_limit() -> None:
    from perfguard.engine.offline import MAX_REPLAY

    for text in (_readme_section("Judging a canary offline"), _help("evaluate")):
        assert f"at most {MAX_REPLAY:,} evaluations" in text, text
        assert "progress on stderr" in text, text


def test_report_takes_the_designs_format_flag() -> None:
    """DESIGN: `perfguard report [-n NS | -A] [--format markdown|json]`."""
    from perfguard.cli import build_parser

    for flag in ("--format", "--output", "-o"):
        assert build_parser().parse_args(["report", flag, "json"]).output == "json"
    assert build_parser().parse_args(["report"]).output == "markdown"


# -- run -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERFGUARD_PEERING_PRIORITY", "abc"),
        ("PERFGUARD_HTTP_PORT", "abc"),
        ("PERFGUARD_HTTP_PORT", "70000"),
        ("PERFGUARD_LOG_LEVEL", "bogus"),
        ("PERFGUARD_EVALUATION_SLOTS", "abc"),
        ("PERFGUARD_EVALUATION_SLOTS", "-1"),
        ("PERFGUARD_EVALUATION_SLOTS", "2.5"),
        ("PERFGUARD_PROMETHEUS_URL", "notaurl"),
        ("PERFGUARD_PROMETHEUS_URL", "http://user:secret@prometheus:9090"),
        ("PERFGUARD_PROMETHEUS_MAX_ANSWER_BYTES", "64MiB"),
        ("PERFGUARD_PROMETHEUS_MAX_ANSWER_BYTES", "0"),
        ("PERFGUARD_ENVPARITY_MAX_OBJECTS", "x"),
        # Once read as false (or accepted) without a word; README promises exit 2.
        ("PERFGUARD_COMPARE_SECRETS", "ture"),
        ("PERFGUARD_COMPARE_SECRETS", "on"),
        ("PERFGUARD_LOG_JSON", "ja"),
        ("PERFGUARD_HASH_KEY_SECRET", "no-slash"),
        ("PERFGUARD_HASH_KEY_SECRET", "ops/"),
        ("PERFGUARD_HASH_KEY_SECRET", "/key"),
        ("PERFGUARD_HASH_KEY_SECRET", "Ops/key"),
        ("PERFGUARD_HASH_KEY_SECRET", "ops/key/extra"),
        ("PERFGUARD_HASH_KEY_SECRET", "my.ns/key"),
        ("PERFGUARD_PROMETHEUS_ALLOWED_URLS", "not a url"),
        ("PERFGUARD_PROMETHEUS_ALLOWED_URLS", "https://prom.example:9090,prom.example:9090"),
        ("PERFGUARD_PROMETHEUS_ALLOWED_URLS", "http://user:pw@prom.example"),
        ("PERFGUARD_PEERING", "Bad Name!"),
        ("PERFGUARD_PEERING", "perfguard/x"),
        ("PERFGUARD_PEERING", "x" * 254),
        ("PERFGUARD_HTTP_HOST", "999.1.1.1"),
        ("PERFGUARD_HTTP_HOST", "[::]"),
        ("PERFGUARD_HTTP_HOST", "not a host"),
        ("PERFGUARD_HTTP_HOST", "http://0.0.0.0"),
        ("PERFGUARD_NAMESPACES", "ML-Prod"),
        ("PERFGUARD_NAMESPACES", "ml-prod,ml staging"),
        ("PERFGUARD_NAMESPACES", "ml-prod/x"),
    ],
)
def test_run_refuses_a_bad_variable_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    """Before anything starts: exit 2, one line that names the variable."""
    monkeypatch.setenv(variable, value)
    assert main(["run"]) == 2
    assert_one_line(capsys.readouterr().err, f"perfguard run: {variable} must be")


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "bogus"],
        ["--http-port", "abc"],
        ["--http-port", "0"],
        ["--priority", "x"],
        ["--prometheus", "notaurl"],
        ["--prometheus", "prometheus.monitoring:9090"],
        ["--peering", "Bad Name!"],
        ["-n", "ML-Prod"],
        ["--namespace", "ml prod"],
    ],
)
def test_run_refuses_a_bad_flag_naming_it(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", *argv])
    assert exited.value.code == 2
    # argparse names a flag with its short form by all its names: `-n/--namespace`.
    flag = rf"(-\w/)?{re.escape(argv[0])}(/--[-\w]+)?"
    assert re.search(rf"perfguard run: error: argument {flag}: must be", capsys.readouterr().err)


def test_run_accepts_the_log_levels_the_chart_allows() -> None:
    from perfguard.config import OperatorConfig

    for level in ("DEBUG", "info", "Warning", "error"):
        env = {"PERFGUARD_LOG_LEVEL": level}
        assert OperatorConfig.from_env(env).log_level == level.upper()
    env = {"PERFGUARD_PEERING_PRIORITY": "7", "PERFGUARD_HTTP_PORT": "9000"}
    config = OperatorConfig.from_env(env)
    assert (config.peering_priority, config.http_port) == (7, 9000)


def test_run_accepts_the_good_values_of_every_variable() -> None:
    """The chart's values, the demo's and the e2e tests' pass; an empty variable is the
    default."""
    from perfguard.config import OperatorConfig

    good = {
        "PERFGUARD_COMPARE_SECRETS": {
            "true": True,
            "TRUE": True,
            "yes": True,
            "1": True,
            "false": False,
            "False": False,
            "no": False,
            "0": False,
            "": False,
        },
        "PERFGUARD_LOG_JSON": {"true": True, "Yes": True, "false": False, "0": False, "": None},
        "PERFGUARD_HASH_KEY_SECRET": {
            "perfguard-system/perfguard-hash-key": "perfguard-system/perfguard-hash-key",
            "ops/pg.hash-key": "ops/pg.hash-key",
            "": None,
        },
        "PERFGUARD_PROMETHEUS_ALLOWED_URLS": {
            "https://prom.example:9090": ("https://prom.example:9090",),
            "http://a.monitoring:9090/, http://[::1]:9090/prom": (
                "http://a.monitoring:9090/",
                "http://[::1]:9090/prom",
            ),
            "": (),
        },
        "PERFGUARD_PEERING": {"perfguard": "perfguard", "pg.perfguard-1": "pg.perfguard-1"},
        "PERFGUARD_HTTP_HOST": {
            "0.0.0.0": "0.0.0.0",
            "::": "::",
            "127.0.0.1": "127.0.0.1",
            "::1": "::1",
            "localhost": "localhost",
            "perfguard.svc": "perfguard.svc",
            "": "0.0.0.0",
        },
        "PERFGUARD_NAMESPACES": {
            "ml-prod,ml-staging": ("ml-prod", "ml-staging"),
            "e2e-*, !kube-system,team-[ab]?": ("e2e-*", "!kube-system", "team-[ab]?"),
            "": (),
        },
    }
    attribute = {
        "PERFGUARD_COMPARE_SECRETS": "compare_secrets",
        "PERFGUARD_LOG_JSON": "log_json",
        "PERFGUARD_HASH_KEY_SECRET": "hash_key_secret",
        "PERFGUARD_PROMETHEUS_ALLOWED_URLS": "prometheus_allowed_urls",
        "PERFGUARD_PEERING": "peering",
        "PERFGUARD_HTTP_HOST": "http_host",
        "PERFGUARD_NAMESPACES": "namespaces",
    }
    for variable, values in good.items():
        for value, expected in values.items():
            config = OperatorConfig.from_env({variable: value})
            assert getattr(config, attribute[variable]) == expected, (variable, value)
    assert OperatorConfig.from_env({"PERFGUARD_PEERING": "perfguard"}).standalone is False
    assert OperatorConfig.from_env({"PERFGUARD_PEERING": ""}).standalone is True


def test_run_passes_good_namespace_and_peering_flags_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flags' values reach the variables `run` reads, each glob once."""
    monkeypatch.setenv("PERFGUARD_NAMESPACES", "")
    monkeypatch.setenv("PERFGUARD_PEERING", "")
    monkeypatch.setenv("PERFGUARD_HTTP_HOST", "999.1.1.1")  # stops `run` after the flags
    assert main(["run", "-n", "ml-prod", "-n", "ml-*,!ml-x", "--peering", "pg.perfguard"]) == 2
    assert os.environ["PERFGUARD_NAMESPACES"] == "ml-prod,ml-*,!ml-x"
    assert os.environ["PERFGUARD_PEERING"] == "pg.perfguard"


def test_run_reads_the_evaluation_slots() -> None:
    """PERFGUARD_EVALUATION_SLOTS: 48 unless set; 0 lifts the bound."""
    from perfguard.config import EVALUATION_SLOTS, OperatorConfig

    assert OperatorConfig.from_env({}).evaluation_slots == EVALUATION_SLOTS == 48
    assert OperatorConfig.from_env({"PERFGUARD_EVALUATION_SLOTS": ""}).evaluation_slots == 48
    for value, slots in (("96", 96), (" 0 ", 0), ("1", 1)):
        env = {"PERFGUARD_EVALUATION_SLOTS": value}
        assert OperatorConfig.from_env(env).evaluation_slots == slots


@pytest.mark.parametrize(("value", "bounded"), [("3", True), ("0", False)])
def test_the_operators_startup_takes_the_slots_run_checked(
    monkeypatch: pytest.MonkeyPatch, value: str, bounded: bool
) -> None:
    """The startup handler builds the semaphore from the configuration `run` validated,
    not from a second parse of the variable (which Kopf would retry for ever)."""
    import kopf

    from perfguard.handlers import lifecycle, runtime

    class Stop(Exception):
        pass

    def stop_at_the_client() -> None:
        raise Stop

    monkeypatch.setenv("PERFGUARD_EVALUATION_SLOTS", value)
    monkeypatch.setattr(lifecycle, "load_client", stop_at_the_client)
    monkeypatch.setattr(lifecycle, "configure_logging", lambda *_, **__: None)
    monkeypatch.setattr(lifecycle, "limit_malloc_arenas", lambda: None)
    built: list[runtime.Runtime] = []
    original = lifecycle.Runtime

    def keep(**kwargs: Any) -> runtime.Runtime:
        built.append(original(**kwargs))
        return built[-1]

    monkeypatch.setattr(lifecycle, "Runtime", keep)
    with pytest.raises(Stop):
        asyncio.run(lifecycle.startup(settings=kopf.OperatorSettings()))
    slots = built[0].evaluation_slots
    if bounded:
        assert isinstance(slots, asyncio.Semaphore) and slots._value == 3
    else:
        assert slots is None


def test_run_judges_the_default_prometheus_url_as_evaluate_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One rule for a Prometheus URL: the flag, the variable and `evaluate` say the same."""
    from perfguard.api.perfbaseline import PROMETHEUS_URL_RULE
    from perfguard.config import OperatorConfig

    monkeypatch.setenv("PERFGUARD_PROMETHEUS_URL", "notaurl")
    assert main(["run"]) == 2
    from_env = capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--prometheus", "notaurl"])
    from_flag = capsys.readouterr().err
    assert main(["evaluate", "-f", resource_file(tmp_path), "--prometheus", "notaurl", *AT]) == 3
    from_evaluate = capsys.readouterr().err
    for err in (from_env, from_flag, from_evaluate):
        assert f"{PROMETHEUS_URL_RULE}, not 'notaurl'" in err, err
    # Good URLs pass; an empty variable is the default, as for the other variables.
    for url in ("http://thanos-query.monitoring:9090", "https://[::1]:9090/prom"):
        assert (
            OperatorConfig.from_env({"PERFGUARD_PROMETHEUS_URL": url}).default_prometheus_url == url
        )
    default = OperatorConfig.default_prometheus_url
    assert (
        OperatorConfig.from_env({"PERFGUARD_PROMETHEUS_URL": ""}).default_prometheus_url == default
    )
    assert OperatorConfig.from_env({}).default_prometheus_url == default


def test_the_evaluation_slots_variable_is_in_the_readme() -> None:
    table = _readme_section("Running the operator")
    assert "`PERFGUARD_EVALUATION_SLOTS` | `48`" in table


def test_every_run_flag_is_in_the_readme() -> None:
    from perfguard.cli import build_parser

    table = _readme_section("Running the operator")
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    flags = [
        option
        for action in sub.choices["run"]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert "--priority" in flags
    for flag in flags:
        assert re.search(f"`[^`]*{flag}[^`]*`", table), flag  # in the table's code spans
    assert "PERFGUARD_PEERING_PRIORITY" in table


# -- evaluate: the candidate's identity offline -------------------------------------------

WORKLOAD_REF = {**SPEC, "workloadRef": {"kind": "Rollout", "name": "resnet"}}


def test_evaluate_warns_that_a_workload_ref_needs_the_candidate_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = resource_file(tmp_path, spec=WORKLOAD_REF)
    assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT]) == 4
    err = capsys.readouterr().err
    assert "warning: spec.workloadRef names Rollout resnet" in err
    assert "give --candidate-hash" in err
    # With the hashes (or the stable one alone: no canary in flight) there is nothing to say.
    both = ["--candidate-hash", "abc", "--stable-hash", "def"]
    for flags in (both, ["--stable-hash", "def"]):
        assert main(["evaluate", "-f", path, "--prometheus", CLOSED, *AT, *flags]) == 4
        assert "warning" not in capsys.readouterr().err


def test_evaluate_warns_that_equal_hashes_mean_no_canary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same hash for both tracks used to judge the stable against itself (delta 0,
    # Pass); as for a fully promoted Rollout, the workload is judged, and this says so.
    path = resource_file(tmp_path, spec=WORKLOAD_REF)
    argv = ["evaluate", "-f", path, "--prometheus", CLOSED, *AT]
    assert main([*argv, "--candidate-hash", "abc", "--stable-hash", "abc"]) == 4
    assert (
        "warning: --candidate-hash equals --stable-hash: no canary in flight (a fully "
        "promoted workload); judging the whole workload, named abc"
    ) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("comparison", "says"),
    [
        ("Both", "the Concurrent comparison has no stable track"),
        ("Concurrent", "the Concurrent comparison has no stable track"),
        ("Historical", "the historical baseline is the whole workload's history"),
    ],
)
def test_evaluate_warns_that_a_candidate_hash_alone_has_no_stable_track(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], comparison: str, says: str
) -> None:
    # A Concurrent spec judged with the candidate's hash alone used to leave every metric
    # but throughput out, silently, and pass.
    path = resource_file(tmp_path, spec={**WORKLOAD_REF, "comparison": comparison})
    argv = ["evaluate", "-f", path, "--prometheus", CLOSED, *AT, "--candidate-hash", "abc"]
    assert main(argv) == 4
    err = capsys.readouterr().err
    assert "warning: --candidate-hash without --stable-hash: " in err
    assert says in err and "give --stable-hash" in err


@pytest.mark.parametrize(
    ("kind", "spec", "why"),
    [
        ("PerfBaseline", SPEC, "the spec has no workloadRef"),
        ("CapacityPlan", None, "a CapacityPlan has no candidate"),
    ],
)
def test_evaluate_warns_that_hash_flags_are_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, spec: Any, why: str
) -> None:
    examples = Path(__file__).parents[2] / "docs" / "examples"
    path = resource_file(tmp_path, spec=spec) if spec else str(examples / "capacityplan.yaml")
    argv = ["evaluate", "-f", path, "--prometheus", CLOSED, *AT, "--candidate-hash", "abc"]
    assert main(argv) == 4
    assert f"warning: --candidate-hash ignored: {why}" in capsys.readouterr().err


# -- minor ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: PerfBaseline\nspec: {selector: [\n", "invalid YAML at line 3, column 1"),
        ("kind: PerfBaseline\n---\nkind: Rollout\n", "expected a single document"),
        ("kind: PerfBaseline\nspec: hello\n", "spec must be a mapping, not str"),
    ],
)
def test_evaluate_names_the_file_of_a_yaml_error_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "pb.yaml"
    path.write_text(content)
    assert main(["evaluate", "-f", str(path), "--prometheus", CLOSED]) == 3
    err = capsys.readouterr().err
    assert_one_line(err, "perfguard evaluate:")
    assert message in err and "<unicode string>" not in err
    if "YAML" in message:
        assert f"cannot read {path}:" in err


def test_crds_check_outside_the_repository_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["crds", "--check"]) == 2
    assert_one_line(capsys.readouterr().err, "perfguard crds: no crds")
    assert not (tmp_path / "crds").exists()
    assert main(["crds"]) == 2  # nor does it scatter crds/ and charts/ here
    assert not (tmp_path / "crds").exists()
    # Named directories work anywhere; --check of one that does not exist says so.
    assert main(["crds", "--check", "-o", "nowhere"]) == 2
    assert "no directory nowhere" in capsys.readouterr().err
    assert main(["crds", "-o", "out"]) == 0 and main(["crds", "--check", "-o", "out"]) == 0
