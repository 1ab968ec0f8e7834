"""Kubernetes reads and status writes, through the official client in worker threads."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kubernetes
from kubernetes.client import ApiClient, CustomObjectsApi

from perfguard import GROUP, VERSION


def load_client() -> ApiClient:
    """In a pod: the service account; elsewhere: KUBECONFIG or ~/.kube/config."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        # The client snapshots KUBECONFIG into its default path at import time; read it
        # now, so the operator follows the environment it was started with.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
    return ApiClient()


class StatusWriter:
    def __init__(self, client: ApiClient) -> None:
        self._custom = CustomObjectsApi(client)

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        await asyncio.to_thread(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
        )
