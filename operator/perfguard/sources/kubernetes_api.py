"""Kubernetes reads and status writes, through the official client in worker threads."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import kubernetes
from kubernetes.client import ApiClient, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

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
    def __init__(self, client: ApiClient, timeout: float = 30.0) -> None:
        self._custom = CustomObjectsApi(client)
        # Without a timeout a lost answer would hold the resource's daemon forever.
        self._timeout = timeout

    async def patch_status(
        self, plural: str, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource; the object as the server holds it after."""
        patched: dict[str, Any] = await asyncio.to_thread(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            {"status": status},
            _request_timeout=self._timeout,
        )
        return patched


class ReadError(Exception):
    """The cluster could not be read (unreachable, forbidden, CRDs missing)."""


async def list_resources(client: ApiClient, namespace: str | None) -> dict[str, list[Any]]:
    """Every perfguard resource in a namespace (None: all), by plural."""
    custom = CustomObjectsApi(client)
    found: dict[str, list[Any]] = {}
    for plural in ("perfbaselines", "envparities", "capacityplans"):
        try:
            if namespace is None:
                listing = await asyncio.to_thread(
                    custom.list_cluster_custom_object, GROUP, VERSION, plural
                )
            else:
                listing = await asyncio.to_thread(
                    custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural
                )
        except ApiException as error:
            raise ReadError(f"listing {plural}: HTTP {error.status} {error.reason}") from error
        except Exception as error:  # connection refused, TLS, bad kubeconfig
            raise ReadError(f"listing {plural}: {error}") from error
        found[plural] = list(listing.get("items") or [])
    return found
