"""Which nodes a CapacityPlan covers: Node objects chosen by a label selector."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from kubernetes.client import ApiClient, CoreV1Api
from kubernetes.client.exceptions import ApiException

from perfguard.api.base import LabelSelector
from perfguard.sources.envparity_reader import selector_string
from perfguard.sources.kubernetes_api import (
    API_UNREACHABLE,
    READ_TIMEOUT_S,
    UNREACHABLE,
    read_whole,
    unreachable_message,
)

# The NVIDIA device plugin's extended resource.
GPU_RESOURCE: Final = "nvidia.com/gpu"


class NodeReadError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NodeReader:
    def __init__(self, client: ApiClient) -> None:
        self._core = CoreV1Api(client)

    async def select(self, selector: LabelSelector | None) -> dict[str, int]:
        """The selected Nodes' names, each with the GPUs it advertises (the device
        plugin's `status.capacity["nvidia.com/gpu"]`; 0 without)."""
        try:
            response = await asyncio.to_thread(
                read_whole,
                self._core.list_node,
                label_selector=selector_string(selector),
                _request_timeout=READ_TIMEOUT_S,
            )
        except UNREACHABLE as error:
            raise NodeReadError(
                API_UNREACHABLE, unreachable_message(error, "listing Nodes")
            ) from error
        except ApiException as error:
            reason = "NodesForbidden" if error.status == 403 else "NodesReadFailed"
            raise NodeReadError(
                reason, f"listing Nodes: HTTP {error.status} {error.reason}"
            ) from error
        items = json.loads(response.data).get("items") or []
        return {
            str(item["metadata"]["name"]): advertised_gpus(item)
            for item in sorted(items, key=lambda i: str(i["metadata"]["name"]))
        }


def advertised_gpus(node: dict[str, Any]) -> int:
    capacity = (node.get("status") or {}).get("capacity") or {}
    try:
        return max(int(str(capacity.get(GPU_RESOURCE, "0"))), 0)
    except ValueError:
        return 0
