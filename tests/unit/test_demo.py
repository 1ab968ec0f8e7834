"""`make demo` and `make demo-stop` without their servers: stopping real child processes,
the hints the demo prints."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfguard.local import demo
from perfguard.local.processes import Stopped, group_alive, stop_groups

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(600)\n"
)
OBEYS_SIGTERM = "import sys, time\nprint('ready', flush=True)\ntime.sleep(600)\n"


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    """Started processes, killed at the end whatever the test did."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


def start(children: list[subprocess.Popen[str]], code: str) -> int:
    """A Python child in a session of its own, as the demo starts its servers; returns once
    it has set its signal handling."""
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    children.append(child)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    return child.pid


def test_a_process_that_ignores_sigterm_is_killed_after_the_timeout(
    children: list[subprocess.Popen[str]],
) -> None:
    stubborn = start(children, IGNORES_SIGTERM)
    polite = start(children, OBEYS_SIGTERM)
    started = time.monotonic()
    outcome = stop_groups({"polite": polite, "stubborn": stubborn}, timeout=1.0, kill_timeout=5)
    elapsed = time.monotonic() - started
    assert outcome == {"polite": Stopped.STOPPED, "stubborn": Stopped.KILLED}
    assert 1.0 <= elapsed < 5, elapsed
    # Both are gone when stop_groups returns, not merely signalled.
    assert not group_alive(stubborn) and not group_alive(polite)


def test_stop_waits_for_the_exit_rather_than_a_fixed_second(
    children: list[subprocess.Popen[str]],
) -> None:
    """A process that takes 2 s over its shutdown is waited for, and not killed."""
    slow = start(
        children,
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n",
    )
    started = time.monotonic()
    assert stop_groups({"slow": slow}, timeout=10) == {"slow": Stopped.STOPPED}
    assert 2 <= time.monotonic() - started < 8
    assert not group_alive(slow)


def test_groups_stop_one_after_another_the_last_started_first(
    children: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """The operator (started last) must be gone before its API server gets SIGTERM: both
    signalled at once, the operator's shutdown wrote to a server going down, and both were
    killed after 30 s by `make demo-stop`."""
    log = tmp_path / "order"
    code = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    with open(sys.argv[2], 'a') as f: f.write(f'{sys.argv[1]} term\\n')\n"
        "    time.sleep(0.5)\n"
        "    with open(sys.argv[2], 'a') as f: f.write(f'{sys.argv[1]} exit\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    pids = {}
    for name in ("apiserver", "operator"):
        child = subprocess.Popen(
            [sys.executable, "-c", code, name, str(log)],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        children.append(child)
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        pids[name] = child.pid
    assert stop_groups(pids, timeout=10) == dict.fromkeys(pids, Stopped.STOPPED)
    assert log.read_text().split("\n")[:4] == [
        "operator term",
        "operator exit",
        "apiserver term",
        "apiserver exit",
    ]


def test_demo_stop_reports_after_the_exit_and_only_then_removes_its_state(
    children: list[subprocess.Popen[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stubborn = start(children, IGNORES_SIGTERM)
    polite = start(children, OBEYS_SIGTERM)
    finished = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    finished.wait()
    state = tmp_path / "demo"
    state.mkdir()
    pids = {"prometheus": finished.pid, "kube-apiserver": stubborn, "operator": polite}
    (state / "state.json").write_text(json.dumps({"pids": pids}))

    assert demo.stop(state, timeout=0.5, kill_timeout=5) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "stopping prometheus, kube-apiserver, operator (SIGTERM; SIGKILL after 0.5 s)",
        f"prometheus (pid {finished.pid}) had already exited",
        f"killed kube-apiserver (pid {stubborn}): still running 0.5 s after SIGTERM",
        f"stopped operator (pid {polite})",
    ]
    assert not group_alive(stubborn) and not group_alive(polite)
    assert not state.exists()


def test_demo_stop_keeps_its_state_while_a_process_survives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A process that outlives SIGKILL (stuck in the kernel) keeps the state file that
    finds it, and the stop says so (exit 1)."""
    state = tmp_path / "demo"
    state.mkdir()
    (state / "state.json").write_text(json.dumps({"pids": {"etcd": 4242}}))
    monkeypatch.setattr(demo, "stop_groups", lambda pids, **_: dict.fromkeys(pids, Stopped.ALIVE))
    assert demo.stop(state, timeout=0.1) == 1
    captured = capsys.readouterr()
    assert "could not stop etcd (pid 4242), not even with SIGKILL" in captured.out
    assert f"kept {state}" in captured.err
    assert (state / "state.json").exists()


def test_demo_stop_without_a_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.stop(tmp_path / "nothing") == 0
    assert capsys.readouterr().out == "no demo is running\n"


def test_an_exited_group_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    deadline = time.monotonic() + 10
    # Our own child: group_alive reaps it, so its zombie does not count.
    while group_alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not group_alive(child.pid)


# -- the commands the demo prints ---------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_prints_a_perfguard_command_that_runs_as_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """From the repository root, where `make demo` runs, without the virtualenv on PATH."""
    monkeypatch.chdir(REPO)
    command = demo.perfguard_command()
    venv = Path(sys.executable).parent
    if (venv / "perfguard").exists():
        assert command == [os.path.relpath(venv / "perfguard")]  # .venv/bin/perfguard
    path = os.pathsep.join(
        p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != venv
    )
    shown = shlex.split(shlex.join([*command, "--version"]))
    result = subprocess.run(
        shown, capture_output=True, text=True, check=False, env={**os.environ, "PATH": path}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("perfguard ")


def test_the_closing_hints_run_perfguard_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    hints = demo.explore_hints(
        Path("/tmp/demo dir/kubeconfig"), "http://127.0.0.1:9090", Path(".cache/demo/pb.yaml")
    )
    perfguard = shlex.join(demo.perfguard_command())
    assert hints[0] == "export KUBECONFIG='/tmp/demo dir/kubeconfig'"
    assert f"{perfguard} report -n ml-prod" in hints
    assert (
        f"{perfguard} evaluate -f .cache/demo/pb.yaml --prometheus http://127.0.0.1:9090" in hints
    )
    # Never a bare `perfguard`, which is not on PATH after `make demo`.
    assert not any(hint.startswith("perfguard ") for hint in hints)


def test_the_readme_says_how_to_run_perfguard_after_make_demo() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "`source .venv/bin/activate`" in readme
    assert "`.venv/bin/perfguard ...`" in readme


# -- terminal escapes ---------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_say_writes_no_escapes_when_stdout_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    demo.say("starting")
    assert capsys.readouterr().out == "==> starting\n"


@pytest.mark.parametrize(("no_color", "escapes"), [(None, True), ("", True), ("1", False)])
def test_say_is_bold_on_a_terminal_unless_no_color(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, escapes: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    demo.say("starting")
    bold = "\x1b[1m==>\x1b[0m starting\n"
    assert terminal.getvalue() == (bold if escapes else "==> starting\n")
