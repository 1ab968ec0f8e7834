"""Which pod-template hashes are the candidate and the stable of a workload.

Argo Rollouts: `status.currentPodHash` is the candidate, `status.stableRS` the stable;
equal hashes mean no canary is in flight. Deployments: the newest ReplicaSet (by
revision) is the candidate, the newest other ReplicaSet that still has replicas is the
stable; with a single ReplicaSet there is no candidate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient, AppsV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from perfguard.sources.kubernetes_api import (
    API_UNREACHABLE,
    READ_TIMEOUT_S,
    UNREACHABLE,
    unreachable_message,
)


class WorkloadError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class WorkloadHashes:
    candidate: str | None
    stable: str | None


def rollout_hashes(rollout: dict[str, Any]) -> WorkloadHashes:
    status = rollout.get("status") or {}
    current = status.get("currentPodHash") or None
    stable = status.get("stableRS") or None
    if current is not None and current == stable:
        return WorkloadHashes(candidate=None, stable=stable)
    return WorkloadHashes(candidate=current, stable=stable)


def deployment_hashes(uid: str, replica_sets: list[dict[str, Any]]) -> WorkloadHashes:
    owned = []
    for rs in replica_sets:
        meta = rs.get("metadata") or {}
        if not any(ref.get("uid") == uid for ref in meta.get("ownerReferences") or []):
            continue
        revision = int((meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", 0))
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        replicas = int((rs.get("spec") or {}).get("replicas") or 0)
        if template_hash:
            owned.append((revision, template_hash, replicas))
    owned.sort(reverse=True)
    if not owned:
        return WorkloadHashes(None, None)
    newest = owned[0]
    others = [o for o in owned[1:] if o[2] > 0]
    if not others:
        return WorkloadHashes(candidate=None, stable=newest[1])
    return WorkloadHashes(candidate=newest[1], stable=others[0][1])


class WorkloadReader:
    def __init__(self, client: ApiClient) -> None:
        self._client = client
        self._custom = CustomObjectsApi(client)
        self._apps = AppsV1Api(client)

    async def hashes(self, kind: str, namespace: str, name: str) -> WorkloadHashes:
        try:
            if kind == "Rollout":
                rollout = await asyncio.to_thread(
                    self._custom.get_namespaced_custom_object,
                    "argoproj.io",
                    "v1alpha1",
                    namespace,
                    "rollouts",
                    name,
                    _request_timeout=READ_TIMEOUT_S,
                )
                return rollout_hashes(rollout)
            deployment = await asyncio.to_thread(
                self._apps.read_namespaced_deployment,
                name,
                namespace,
                _request_timeout=READ_TIMEOUT_S,
            )
            listing = await asyncio.to_thread(
                self._apps.list_namespaced_replica_set, namespace, _request_timeout=READ_TIMEOUT_S
            )
            items = self._client.sanitize_for_serialization(listing).get("items") or []
            uid = str(self._client.sanitize_for_serialization(deployment)["metadata"]["uid"])
            return deployment_hashes(uid, items)
        except UNREACHABLE as error:
            raise WorkloadError(
                API_UNREACHABLE, unreachable_message(error, f"reading {kind} {namespace}/{name}")
            ) from error
        except ApiException as error:
            if error.status == 404:
                raise WorkloadError(
                    "WorkloadNotFound", f"{kind} {namespace}/{name} not found"
                ) from error
            if error.status == 403:
                raise WorkloadError(
                    "WorkloadForbidden", f"not allowed to read {kind} {namespace}/{name}"
                ) from error
            raise WorkloadError(
                "WorkloadReadFailed", f"reading {kind} {namespace}/{name}: HTTP {error.status}"
            ) from error
