"""The demo's servers when one fails to start: real etcd and kube-apiserver, a real busy
port. Nothing may be left running that `make demo-stop` cannot find."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from perfguard.local import demo
from perfguard.local.controlplane import ControlPlane
from perfguard.local.processes import group_alive

pytestmark = pytest.mark.e2e


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on: kube-apiserver cannot bind it."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_control_plane_that_fails_to_start_stops_what_it_started(
    tmp_path: Path, busy_port: int
) -> None:
    """etcd was up when kube-apiserver died on the busy port, and start() raised with etcd
    still running in a session of its own (and so outliving the demo)."""
    plane = ControlPlane(workdir=tmp_path / "plane", port=busy_port)
    try:
        with pytest.raises(RuntimeError, match="kube-apiserver exited during start-up"):
            plane.start(timeout=60)
        pids = {p.name: p.popen.pid for p in plane._processes if p.popen is not None}
        assert set(pids) == {"etcd", "kube-apiserver"}
        alive = [name for name, pid in pids.items() if group_alive(pid)]
        assert alive == [], f"left running: {alive}"
    finally:
        plane.stop()  # whatever the test found, it leaves nothing behind


def test_each_server_is_announced_as_it_starts(tmp_path: Path, busy_port: int) -> None:
    """Before start() knows how it will end: whoever must stop them later hears of each."""
    seen: list[tuple[str, int]] = []
    plane = ControlPlane(
        workdir=tmp_path / "plane", port=busy_port, on_start=lambda n, p: seen.append((n, p))
    )
    with pytest.raises(RuntimeError):
        plane.start(timeout=60)
    assert seen == [(p.name, p.popen.pid) for p in plane._processes if p.popen is not None]
    assert [name for name, _ in seen] == ["etcd", "kube-apiserver"]


def test_the_demo_records_each_server_as_it_starts(tmp_path: Path, busy_port: int) -> None:
    """The pids reach the state file as each process starts, not once all are ready (a
    failure in between left them unrecorded); after a failed start none is left running,
    and the state file no longer names them."""
    state_file = tmp_path / "state.json"
    written: list[dict[str, int]] = []

    class Watched(demo.Started):
        def write(self) -> None:
            super().write()
            written.append(json.loads(state_file.read_text())["pids"])

    started = Watched(state_file)
    started("prometheus", 1)  # as recorded before the control plane
    assert demo.start_control_plane(started, port=busy_port) is None
    names = [set(pids) for pids in written]
    assert {"prometheus", "etcd"} in names
    assert {"prometheus", "etcd", "kube-apiserver"} in names
    recorded = {name: pid for pids in written for name, pid in pids.items() if name != "prometheus"}
    assert [name for name, pid in recorded.items() if group_alive(pid)] == []
    assert json.loads(state_file.read_text()) == {"pids": {"prometheus": 1}}
