"""Where the real test servers' binaries come from.

Order: `KUBEBUILDER_ASSETS` (the envtest convention: a folder with etcd, kube-apiserver,
kubectl, and here helm); else the repository's cache built by `make test-servers`.
A missing binary is an error naming the command that builds it: tests never skip.
"""

from __future__ import annotations

import os
from pathlib import Path

VERSIONS_FILE = Path("hack/test-servers/versions.env")


class MissingBinaryError(RuntimeError):
    pass


def _repo_root(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / VERSIONS_FILE).is_file():
            return candidate
    module_repo = Path(__file__).resolve().parents[3]
    if (module_repo / VERSIONS_FILE).is_file():
        return module_repo
    return None


def read_versions(root: Path) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in (root / VERSIONS_FILE).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            result[key.strip()] = value.strip()
    return result


def cache_dir(root: Path) -> Path:
    versions = read_versions(root)
    key = (
        f"k8s-{versions['KUBERNETES_VERSION']}_helm-{versions['HELM_VERSION']}"
        f"_r{versions['BUILD_REVISION']}"
    )
    return root / ".cache" / "test-servers" / key


def assets_dir() -> Path:
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env:
        return Path(env)
    root = _repo_root()
    if root is None:
        raise MissingBinaryError(
            "KUBEBUILDER_ASSETS is not set and no perfguard checkout was found to hold the "
            "test servers; run `make test-servers` in the repository"
        )
    return cache_dir(root)


def binary(name: str) -> Path:
    path = assets_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingBinaryError(
            f"{name} not found at {path}; build the test servers with `make test-servers` "
            "(or point KUBEBUILDER_ASSETS at a folder holding etcd, kube-apiserver, kubectl, helm)"
        )
    return path
