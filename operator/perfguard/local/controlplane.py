"""A real Kubernetes control plane on 127.0.0.1: etcd + kube-apiserver, no kubelet.

Like controller-runtime's envtest: the servers are real, nothing runs pods. Tests that
need pod status write it through the API themselves. The admin identity is a static
token in `system:masters`; service-account tokens work (the signing keys are generated),
so RBAC can be exercised with real ServiceAccounts.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import yaml

from perfguard.local.binaries import binary
from perfguard.local.processes import free_port, tail


def _generate_tls(certs: Path) -> None:
    """A private CA and a serving certificate for 127.0.0.1, so clients verify TLS."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca_key, ca_crt = certs / "ca.key", certs / "ca.crt"
    key, csr, crt = certs / "apiserver.key", certs / "apiserver.csr", certs / "apiserver.crt"
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca_crt),
        "-days",
        "30",
        "-subj",
        "/CN=perfguard-local-ca",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        "/CN=kube-apiserver",
    )
    extensions = certs / "san.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n")
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca_crt),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(crt),
        "-days",
        "30",
        "-extfile",
        str(extensions),
    )


def _generate_rsa_key(path: Path) -> None:
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["openssl", "rsa", "-in", str(path), "-pubout", "-out", str(path.with_suffix(".pub"))],
        check=True,
        capture_output=True,
    )


@dataclass
class _Process:
    name: str
    args: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.args, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        handle.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


@dataclass
class ControlPlane:
    """Start with `start()` (or as a context manager); `kubeconfig` is then usable.

    `on_start(name, pid)` is called as soon as each server process is started, before it
    is ready: its servers run in sessions of their own, so whoever must be able to stop
    them later (`make demo-stop`) records them then, not once `start()` returns.
    """

    workdir: Path | None = None
    authorization_mode: str = "RBAC"
    extra_apiserver_args: Sequence[str] = ()
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    on_start: Callable[[str, int], None] | None = None
    _processes: list[_Process] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "certs" / "ca.crt"

    @property
    def kubeconfig(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "kubeconfig"

    def start(self, timeout: float = 90) -> ControlPlane:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="perfguard-controlplane-")
            self.workdir = Path(self._tmp.name)
        work = self.workdir
        work.mkdir(parents=True, exist_ok=True)
        (work / "etcd").mkdir(exist_ok=True)
        (work / "certs").mkdir(exist_ok=True)
        sa_key = work / "sa.key"
        if not sa_key.exists():
            _generate_rsa_key(sa_key)
        if not (work / "certs" / "apiserver.crt").exists():
            _generate_tls(work / "certs")
        (work / "tokens.csv").write_text(f'{self.token},admin,admin-uid,"system:masters"\n')
        self._write_kubeconfig()

        etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{self.etcd_peer_port}"
        etcd = _Process(
            "etcd",
            [
                str(binary("etcd")),
                "--data-dir",
                str(work / "etcd"),
                "--listen-client-urls",
                etcd_url,
                "--advertise-client-urls",
                etcd_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
                # Tests throw the data away: fsync would only slow them down.
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(2 * 1024**3),
            ],
            work / "etcd.log",
        )
        apiserver = _Process(
            "kube-apiserver",
            [
                str(binary("kube-apiserver")),
                "--etcd-servers",
                etcd_url,
                "--bind-address",
                "127.0.0.1",
                "--advertise-address",
                "127.0.0.1",
                "--secure-port",
                str(self.port),
                "--tls-cert-file",
                str(work / "certs" / "apiserver.crt"),
                "--tls-private-key-file",
                str(work / "certs" / "apiserver.key"),
                "--token-auth-file",
                str(work / "tokens.csv"),
                "--authorization-mode",
                self.authorization_mode,
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                str(sa_key.with_suffix(".pub")),
                "--service-account-signing-key-file",
                str(sa_key),
                "--service-cluster-ip-range",
                "10.96.0.0/16",
                "--allow-privileged=true",
                # No controller-manager creates the `default` ServiceAccount in new namespaces,
                # so the admission plugin that requires it would reject every test Pod.
                "--disable-admission-plugins",
                "ServiceAccount",
                *self.extra_apiserver_args,
            ],
            work / "kube-apiserver.log",
        )
        self._processes = [etcd, apiserver]
        try:
            self._start(etcd)
            self._wait(lambda: self._etcd_healthy(etcd_url), etcd, timeout)
            self._start(apiserver)
            self._wait(self._apiserver_ready, apiserver, timeout)
        except BaseException:
            # A busy port or a dying kube-apiserver used to leave etcd running in its own
            # session, found by nobody: every retry of `make demo` leaked another.
            self.stop()
            raise
        return self

    def _start(self, process: _Process) -> None:
        process.start()
        if self.on_start is not None and process.popen is not None:
            self.on_start(process.name, process.popen.pid)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(
                            self.ca_file.read_bytes()
                        ).decode(),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    @staticmethod
    def _etcd_healthy(url: str) -> bool:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return b'"health":"true"' in response.read()
        except (urllib.error.URLError, OSError):
            return False

    def _apiserver_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        request = urllib.request.Request(
            f"{self.url}/readyz", headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=3, context=context) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _wait(check: object, process: _Process, timeout: float) -> None:
        assert callable(check)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            if not process.alive():
                raise RuntimeError(
                    f"{process.name} exited during start-up; last log lines:\n{tail(process.log)}"
                )
            time.sleep(0.25)
        raise RuntimeError(
            f"{process.name} not ready after {timeout:.0f}s; last log lines:\n{tail(process.log)}"
        )

    def restart_apiserver(self, timeout: float = 90) -> None:
        apiserver = self._processes[1]
        apiserver.stop()
        self._start(apiserver)
        self._wait(self._apiserver_ready, apiserver, timeout)

    def restart_etcd(self, timeout: float = 60) -> None:
        etcd = self._processes[0]
        etcd.stop()
        self._start(etcd)
        self._wait(lambda: self._etcd_healthy(f"http://127.0.0.1:{self.etcd_port}"), etcd, timeout)

    def env(self) -> dict[str, str]:
        """Environment for child processes (kubectl, helm, the operator) to use this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def pids(self) -> list[int]:
        """The running etcd and kube-apiserver processes (benchmarks renice them)."""
        return [p.popen.pid for p in self._processes if p.popen is not None and p.alive()]

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
