"""What the local servers share: a free loopback port, the tail of a log, stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Stopped(StrEnum):
    """How `stop_groups` left a process group."""

    STOPPED = "stopped"  # exited after SIGTERM
    KILLED = "killed"  # still running when the time was up: SIGKILL ended it
    GONE = "gone"  # not running when asked to stop
    NOT_OURS = "not ours"  # the id is someone else's now (EPERM): left alone
    ALIVE = "alive"  # still there after SIGKILL (e.g. stuck in the kernel)


def group_alive(pgid: int) -> bool:
    """Whether any process of the group `pgid` is still there."""
    # Reaps the leader if it is our own child (so a zombie does not count as alive); the
    # demo's servers are not: their parent, `make demo`, has exited.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_gone(pgids: set[int], deadline: float, poll: float) -> set[int]:
    """The groups of `pgids` still alive at `deadline` (sooner if all exit)."""
    alive = set(pgids)
    while alive:
        alive = {pgid for pgid in alive if group_alive(pgid)}
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(poll)
    return alive


def stop_groups(
    groups: Mapping[str, int],
    timeout: float = 30.0,
    kill_timeout: float = 5.0,
    poll: float = 0.1,
) -> dict[str, Stopped]:
    """Stop the process groups `groups` names (name -> process group id, each the leader's
    pid: the servers start in a session of their own) one after another, in the reverse
    order of the mapping (the last started first): SIGTERM, up to `timeout` seconds for it
    to exit, then SIGKILL and up to `kill_timeout` seconds more, before the next. One at a
    time because the later ones need the earlier: signalled together, the operator's
    shutdown wrote its last status to an API server that was itself going down, and both
    outlived the 30 s and were killed. Returns when every group has exited or its time is
    up, with how each one ended."""
    outcome: dict[str, Stopped] = {}
    for name, pgid in reversed(list(groups.items())):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            outcome[name] = Stopped.GONE
            continue
        except PermissionError:
            outcome[name] = Stopped.NOT_OURS
            continue
        if not _wait_gone({pgid}, time.monotonic() + timeout, poll):
            outcome[name] = Stopped.STOPPED
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        survived = _wait_gone({pgid}, time.monotonic() + kill_timeout, poll)
        outcome[name] = Stopped.ALIVE if survived else Stopped.KILLED
    return {name: outcome[name] for name in groups}
