"""Read what EnvParity compares: one list call per namespace and kind, never one per workload.

Objects are read as raw JSON (`_preload_content=False`): the client's model classes would
cost more CPU than the comparison itself for a few hundred workloads. Secrets are read
only when the operator is configured to (the chart grants the RBAC only then); their
content goes straight to the hasher and is never logged.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from perfguard import config
from perfguard.api.base import LabelSelector
from perfguard.engine.envparity_snapshot import NamespaceObjects
from perfguard.sources.kubernetes_api import (
    API_UNREACHABLE,
    READ_TIMEOUT_S,
    UNREACHABLE,
    read_whole,
    unreachable_message,
)


class ParityReadError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def selector_string(selector: LabelSelector | None) -> str:
    """A label selector in the API's query syntax ('' selects everything)."""
    if selector is None:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.match_labels or {}).items())]
    for requirement in selector.match_expressions or []:
        values = ",".join(requirement.values or [])
        if requirement.operator == "In":
            parts.append(f"{requirement.key} in ({values})")
        elif requirement.operator == "NotIn":
            parts.append(f"{requirement.key} notin ({values})")
        elif requirement.operator == "Exists":
            parts.append(requirement.key)
        else:
            parts.append(f"!{requirement.key}")
    return ",".join(parts)


@dataclass
class RequestCount:
    value: int = 0


def _items(response: Any) -> list[dict[str, Any]]:
    data = json.loads(response.data)
    items: list[dict[str, Any]] = data.get("items") or []
    return items


# Lists are read in pages (the API server's chunking), and a namespace holding more
# objects of one kind than MAX_OBJECTS is refused with a clear reason rather than read
# whole: memory stays bounded whatever a namespace holds. Override with
# PERFGUARD_ENVPARITY_MAX_OBJECTS.
PAGE_SIZE = 500
MAX_OBJECTS = config.env_limit("PERFGUARD_ENVPARITY_MAX_OBJECTS", config.ENVPARITY_MAX_OBJECTS)


def _describe(error: ApiException, what: str) -> ParityReadError:
    if error.status == 403:
        return ParityReadError("Forbidden", f"not allowed to list {what}")
    return ParityReadError("ReadFailed", f"listing {what}: HTTP {error.status} {error.reason}")


_APPS_KINDS = {
    "Deployment": "list_namespaced_deployment",
    "StatefulSet": "list_namespaced_stateful_set",
    "DaemonSet": "list_namespaced_daemon_set",
}


class ParityReader:
    def __init__(self, client: ApiClient) -> None:
        self._apps = AppsV1Api(client)
        self._core = CoreV1Api(client)
        self._custom = CustomObjectsApi(client)
        self.requests = RequestCount()

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        self.requests.value += 1
        try:
            return await asyncio.to_thread(
                read_whole, method, *args, _request_timeout=READ_TIMEOUT_S, **kwargs
            )
        except UNREACHABLE as error:
            raise ParityReadError(
                API_UNREACHABLE, unreachable_message(error, "reading the compared namespaces")
            ) from error

    async def _list(
        self, what: str, method: Any, *args: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """Every item of a list call, page by page, refusing more than MAX_OBJECTS."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = {"limit": PAGE_SIZE, **({"_continue": token} if token else {})}
            response = await self._call(method, *args, **kwargs, **page)
            data = json.loads(response.data)
            items.extend(data.get("items") or [])
            if len(items) > MAX_OBJECTS:
                raise ParityReadError(
                    "TooManyObjects",
                    f"more than {MAX_OBJECTS} {what}: narrow spec.workloads.selector or "
                    "raise PERFGUARD_ENVPARITY_MAX_OBJECTS",
                )
            token = (data.get("metadata") or {}).get("continue") or None
            if not token:
                return items

    async def namespaces(self, selector: LabelSelector) -> list[str]:
        try:
            response = await self._call(
                self._core.list_namespace, label_selector=selector_string(selector)
            )
        except ApiException as error:
            raise _describe(error, "namespaces") from error
        return sorted(str(ns["metadata"]["name"]) for ns in _items(response))

    async def _exists(self, namespace: str) -> None:
        try:
            await self._call(self._core.read_namespace, namespace)
        except ApiException as error:
            if error.status == 404:
                raise ParityReadError(
                    "NamespaceNotFound", f"namespace {namespace} does not exist"
                ) from error
            raise _describe(error, f"namespace {namespace}") from error

    async def _workloads(self, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
        what = f"{kind}s in {namespace}"
        try:
            if kind == "Rollout":
                items = await self._list(
                    what,
                    self._custom.list_namespaced_custom_object,
                    "argoproj.io",
                    "v1alpha1",
                    namespace,
                    "rollouts",
                    label_selector=selector,
                )
            else:
                method = getattr(self._apps, _APPS_KINDS[kind])
                items = await self._list(what, method, namespace, label_selector=selector)
        except ApiException as error:
            if kind == "Rollout" and error.status == 404:
                return []  # the Argo Rollouts CRD is not installed: no Rollouts to compare
            raise _describe(error, what) from error
        if kind == "Rollout":
            await self._resolve_workload_refs(namespace, items)
        for item in items:
            item["kind"] = kind
        return items

    async def _resolve_workload_refs(self, namespace: str, rollouts: list[dict[str, Any]]) -> None:
        """A Rollout with `spec.workloadRef` has no template of its own: it runs the
        referenced Deployment's. Copy that template (and selector, when the Rollout has
        none) in, so its containers are compared; an unresolved reference stays without a
        template and is reported as such by the snapshot."""
        wanted = {
            str(ref.get("name"))
            for r in rollouts
            if not (r.get("spec") or {}).get("template")
            and isinstance(ref := (r.get("spec") or {}).get("workloadRef"), dict)
            and ref.get("kind") == "Deployment"
        }
        if not wanted:
            return
        what = f"Deployments in {namespace} (Rollouts' workloadRef)"
        try:
            listed = await self._list(what, self._apps.list_namespaced_deployment, namespace)
        except ApiException as error:
            raise _describe(error, what) from error
        deployments = {
            str(d["metadata"]["name"]): d.get("spec") or {}
            for d in listed
            if d["metadata"]["name"] in wanted
        }
        for rollout in rollouts:
            spec = rollout.setdefault("spec", {})
            ref = spec.get("workloadRef")
            if spec.get("template") or not isinstance(ref, dict):
                continue
            target = deployments.get(str(ref.get("name")))
            if ref.get("kind") != "Deployment" or target is None:
                continue
            spec["template"] = target.get("template") or {}
            spec.setdefault("selector", target.get("selector"))

    async def read(
        self,
        namespace: str,
        kinds: Sequence[str],
        selector: LabelSelector | None,
        *,
        config: bool,
        secrets: bool,
    ) -> NamespaceObjects:
        await self._exists(namespace)
        label_selector = selector_string(selector)
        listed = await asyncio.gather(
            *(self._workloads(namespace, kind, label_selector) for kind in kinds)
        )
        workloads = [item for group in listed for item in group]
        try:
            pods = await self._list(
                f"pods in {namespace}", self._core.list_namespaced_pod, namespace
            )
            config_maps = (
                await self._list(
                    f"ConfigMaps in {namespace}", self._core.list_namespaced_config_map, namespace
                )
                if config
                else []
            )
        except ApiException as error:
            raise _describe(error, f"pods and ConfigMaps in {namespace}") from error
        secret_items: list[dict[str, Any]] | None = None
        if config and secrets:
            try:
                secret_items = await self._list(
                    f"Secrets in {namespace}", self._core.list_namespaced_secret, namespace
                )
            except ApiException as error:
                raise _describe(error, f"Secrets in {namespace}") from error
        return NamespaceObjects(
            namespace=namespace,
            workloads=workloads,
            pods=pods,
            config_maps={str(c["metadata"]["name"]): c for c in config_maps},
            secrets=None
            if secret_items is None
            else {str(s["metadata"]["name"]): s for s in secret_items},
        )

    async def hash_key(self, reference: str) -> bytes:
        """The HMAC key from the Secret `namespace/name` (data key `key`); never logged."""
        namespace, _, name = reference.partition("/")
        if not namespace or not name:
            raise ParityReadError(
                "HashKeyUnavailable", f"hash key Secret must be namespace/name, got {reference!r}"
            )
        try:
            response = await self._call(self._core.read_namespaced_secret, name, namespace)
        except ApiException as error:
            raise ParityReadError(
                "HashKeyUnavailable",
                f"reading the hash key Secret {reference}: HTTP {error.status} {error.reason}",
            ) from error
        encoded = (json.loads(response.data).get("data") or {}).get("key")
        if not encoded:
            raise ParityReadError("HashKeyUnavailable", f"Secret {reference} has no data key `key`")
        key = base64.b64decode(encoded)
        if len(key) < 16:
            raise ParityReadError(
                "HashKeyUnavailable", f"the key in Secret {reference} is shorter than 16 bytes"
            )
        return key
