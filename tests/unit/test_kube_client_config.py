"""The operator's Kubernetes client follows KUBECONFIG as set when it starts, not as it was
when the kubernetes package was first imported (the package snapshots it at import)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from perfguard.sources.kubernetes_api import load_client


def kubeconfig() -> dict[str, Any]:
    """A kubeconfig with one context and no namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }


def test_load_client_reads_kubeconfig_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kubernetes.config  # imported before KUBECONFIG changes below
    config = kubeconfig()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    client = load_client()
    assert client.configuration.host == "https://127.0.0.1:6443"


def test_the_default_namespace_is_kubectls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client import Configuration

    from perfguard.sources import kubernetes_api

    saved = Configuration._default
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "kubeconfig"
    config = kubeconfig()
    monkeypatch.setenv("KUBECONFIG", str(path))
    try:
        path.write_text(yaml.safe_dump(config))
        assert kubernetes_api.load_client_and_namespace()[1] == "default"
        config["contexts"][0]["context"]["namespace"] = "ml-prod"  # type: ignore[index]
        path.write_text(yaml.safe_dump(config))
        assert kubernetes_api.load_client_and_namespace()[1] == "ml-prod"
        # In a pod: the pod's namespace, from the service account's mount.
        monkeypatch.setattr(kubernetes.config, "load_incluster_config", lambda: None)
        pod_namespace = tmp_path / "namespace"
        monkeypatch.setattr(kubernetes_api, "POD_NAMESPACE_FILE", pod_namespace)
        assert kubernetes_api.load_client_and_namespace()[1] == "default"  # no file
        pod_namespace.write_text("perfguard-system\n")
        assert kubernetes_api.load_client_and_namespace()[1] == "perfguard-system"
    finally:
        Configuration._default = saved
