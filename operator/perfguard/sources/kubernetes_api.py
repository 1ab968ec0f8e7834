"""Kubernetes reads and status writes, through the official client in worker threads."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, Final

import kubernetes
import urllib3
from kubernetes.client import ApiClient, Configuration, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from perfguard import GROUP, VERSION
from perfguard.render import one_line

# What the client raises when the API server gives no answer: a refused or reset
# connection, a TLS failure, a timeout (urllib3's errors, after its retries) or a socket
# error. Readers turn these into their kind's "ApiUnreachable" reason, so an outage is an
# unverified result with a clear condition rather than an evaluation error.
UNREACHABLE: Final = (urllib3.exceptions.HTTPError, OSError)
# Per request: without it a lost answer would hold the resource's daemon forever.
READ_TIMEOUT_S: Final = 30.0


class _Retries(urllib3.Retry):
    """A request that timed out is not sent again: with urllib3's default (3 more tries) an
    API server that accepts connections but does not answer held `perfguard report` for 2
    minutes, and an evaluation (and its slot) as long, before it could say so. That holds
    for a connect timeout too (an API server behind a load balancer whose node is gone, a
    firewall dropping packets): urllib3 counts it as a connection error, safe to retry, and
    one call took 4 x its timeout. A refused connection (nothing listening, e.g. while the
    API server restarts) is still tried again at once; the server never saw the request."""

    def increment(self, *args: Any, **kwargs: Any) -> _Retries:
        error = kwargs.get("error")
        if isinstance(error, urllib3.exceptions.ProxyError):
            error = error.original_error
        # NewConnectionError (refused) subclasses ConnectTimeoutError; a bare one is the
        # timeout. Anything else (refused, reset, a TLS handshake cut short by a restarting
        # server) is tried again as before, up to `total`.
        if isinstance(error, urllib3.exceptions.ConnectTimeoutError) and not isinstance(
            error, urllib3.exceptions.NewConnectionError
        ):
            url = kwargs.get("url", args[1] if len(args) > 1 else None)
            # As urllib3 raises it on exhaustion, with its pool (None in a direct call).
            raise urllib3.exceptions.MaxRetryError(kwargs.get("_pool"), url, error) from error  # type: ignore[arg-type]
        return super().increment(*args, **kwargs)


RETRIES: Final = _Retries(total=3, read=0)
API_UNREACHABLE: Final = "ApiUnreachable"


def read_whole(method: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a client method for its raw answer and read the whole body here (in the worker
    thread): the body is read lazily otherwise, on the event loop and outside the caller's
    handling of UNREACHABLE."""
    response = method(*args, _preload_content=False, **kwargs)
    _ = response.data  # urllib3 keeps it: later reads of .data do not touch the socket
    return response


def unreachable_message(error: BaseException, what: str) -> str:
    detail = one_line(error, 200)
    return f"{what}: the Kubernetes API did not answer ({type(error).__name__}: {detail})"


def load_client() -> ApiClient:
    """In a pod: the service account; elsewhere: KUBECONFIG or ~/.kube/config."""
    return load_client_and_namespace()[0]


# The pod's namespace, where Kubernetes mounts the service account.
POD_NAMESPACE_FILE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def load_client_and_namespace() -> tuple[ApiClient, str]:
    """`load_client`, and the namespace kubectl would default to with that configuration:
    in a pod, the pod's; elsewhere, the current context's; "default" when it names none."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        # The client snapshots KUBECONFIG into its default path at import time; read it
        # now, so the operator follows the environment it was started with.
        path = os.environ.get("KUBECONFIG")
        kubernetes.config.load_kube_config(config_file=path)
        _, active = kubernetes.config.list_kube_config_contexts(config_file=path)
        namespace = ((active or {}).get("context") or {}).get("namespace")
        return _client(), str(namespace or "default")
    try:
        namespace = POD_NAMESPACE_FILE.read_text().strip()
    except OSError:
        namespace = ""
    return _client(), namespace or "default"


def _client() -> ApiClient:
    """A client on the configuration just loaded, with our RETRIES."""
    configuration = Configuration.get_default_copy()
    configuration.retries = RETRIES
    return ApiClient(configuration)


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
                    custom.list_cluster_custom_object,
                    GROUP,
                    VERSION,
                    plural,
                    _request_timeout=READ_TIMEOUT_S,
                )
            else:
                listing = await asyncio.to_thread(
                    custom.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    namespace,
                    plural,
                    _request_timeout=READ_TIMEOUT_S,
                )
        except ApiException as error:
            raise ReadError(f"listing {plural}: HTTP {error.status} {error.reason}") from error
        except Exception as error:  # connection refused, TLS, bad kubeconfig
            raise ReadError(f"listing {plural}: {error}") from error
        found[plural] = list(listing.get("items") or [])
    return found
