"""The operator's Kubernetes client follows KUBECONFIG as set when it starts, not as it was
when the kubernetes package was first imported (the package snapshots it at import)."""

from __future__ import annotations

from pathlib import Path

import kubernetes
import pytest
import yaml

from perfguard.sources.kubernetes_api import load_client


def test_load_client_reads_kubeconfig_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kubernetes.config  # imported before KUBECONFIG changes below
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    client = load_client()
    assert client.configuration.host == "https://127.0.0.1:6443"
