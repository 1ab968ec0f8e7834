"""A real Prometheus on 127.0.0.1 holding backfilled history, for tests and the demo.

History enters through `promtool tsdb create-blocks-from openmetrics` before the server
starts (blocks written into a running server's directory appear only at its next
reload). The server scrapes nothing, so the backfill is all it holds, and it keeps
blocks for ten years because retention drops blocks by age: a default 15 d retention
would delete a backfilled history that is older than that.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from perfguard.local.binaries import MissingBinaryError
from perfguard.local.processes import free_port, tail

INSTALL_HINT = "apt-get install --no-install-recommends prometheus"
PROMETHEUS_BIN_ENV = "PERFGUARD_PROMETHEUS_BIN"
PROMTOOL_BIN_ENV = "PERFGUARD_PROMTOOL_BIN"
# promtool parses the whole input once per block window, so the window should hold the
# history: 7 days of 30 s samples take minutes with promtool's 2h default and seconds in
# one window. It is rounded down to 2h * 3^k (1458h = 60.75 days).
DEFAULT_MAX_BLOCK_DURATION = "1458h"
MINIMAL_CONFIG = (
    "# Written by perfguard: no scrape jobs, the backfill is all it holds.\nglobal: {}\n"
)


class BackfillError(RuntimeError):
    pass


class PrometheusStartError(RuntimeError):
    pass


def _binary(name: str, env: str) -> Path:
    configured = os.environ.get(env)
    if configured:
        if not os.access(configured, os.X_OK):
            raise MissingBinaryError(f"{env}={configured} is not an executable file")
        return Path(configured)
    found = shutil.which(name)
    if found is None:
        raise MissingBinaryError(
            f"{name} not found on PATH (nor set through {env}); install Debian's Prometheus "
            f"with `{INSTALL_HINT}` (hack/install-prometheus.sh does it)"
        )
    return Path(found)


def prometheus_binary() -> Path:
    return _binary("prometheus", PROMETHEUS_BIN_ENV)


def promtool_binary() -> Path:
    return _binary("promtool", PROMTOOL_BIN_ENV)


def backfill(
    openmetrics_file: Path,
    data_dir: Path,
    *,
    max_block_duration: str = DEFAULT_MAX_BLOCK_DURATION,
    timeout: float = 1800,
) -> None:
    """Turn an OpenMetrics file into TSDB blocks inside `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(promtool_binary()),
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        "--quiet",
        f"--max-block-duration={max_block_duration}",
        str(openmetrics_file),
        str(data_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-4000:]
        raise BackfillError(
            f"promtool could not backfill {openmetrics_file} (exit {result.returncode}):\n{output}"
        )


class LocalPrometheus:
    """A Prometheus server over `data_dir`, started and stopped by its owner.

    Its configuration and log live next to the data directory:
    `<data_dir>.prometheus.yml` and `<data_dir>.prometheus.log`.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        retention: str = "3650d",
        extra_args: Sequence[str] = (),
        config: str = MINIMAL_CONFIG,
        on_start: Callable[[str, int], None] | None = None,
    ) -> None:
        """`config`: the prometheus.yml to run with (e.g. a `remote_read` section); by
        default no scrape jobs. `on_start("prometheus", pid)` is called as soon as the
        process is started, before it is ready (see ControlPlane's)."""
        self.on_start = on_start
        self.data_dir = data_dir
        self.config = config
        self._fixed_port = port
        self.port = port if port is not None else free_port()
        self.retention = retention
        self.extra_args = tuple(extra_args)
        self.config_path = data_dir.with_name(f"{data_dir.name}.prometheus.yml")
        self.log_path = data_dir.with_name(f"{data_dir.name}.prometheus.log")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            str(prometheus_binary()),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            *self.extra_args,
        ]

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running() and self._process is not None else None

    def start(self, timeout: float = 60) -> None:
        """Start the server and wait until it answers /-/ready."""
        if self.running():
            return
        command = self._command()  # fails early, before any file is written
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config)
        # A port picked for us may be taken by the time the server binds: pick again.
        attempts = 1 if self._fixed_port is not None else 3
        for attempt in range(attempts):
            if attempt:
                self.port = free_port()
                command = self._command()
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            try:
                if self.on_start is not None:
                    self.on_start("prometheus", self._process.pid)
                if self._wait_ready(timeout):
                    return
            except BaseException:  # e.g. Ctrl-C while waiting: not left running unseen
                self.stop()
                raise
            log_text = self.log_path.read_text(errors="replace")[offset:]
            self.stop()
            if "address already in use" not in log_text:
                break
        raise PrometheusStartError(
            f"prometheus did not become ready on {self.url} within {timeout:.0f}s; "
            f"last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)

    def restart(self, timeout: float = 60) -> None:
        self.stop()
        self.start(timeout=timeout)

    def __enter__(self) -> LocalPrometheus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
