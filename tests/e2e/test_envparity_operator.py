"""EnvParity end to end: real kube-apiserver, the operator under KopfRunner.

No kubelet runs here, so the test writes pod status (the digests a kubelet would report)
itself. Every case gets its own pair of namespaces; one operator serves them all, watching
the namespaces by a glob on this module's prefix.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets as secrets_module
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from tests.e2e.cluster import Cluster, condition, wait_for

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).parent / "manifests"
D1 = "sha256:" + "a1" * 32
D2 = "sha256:" + "b2" * 32
PLANTED_SECRET = "planted-" + secrets_module.token_hex(8)
HASH_KEY = secrets_module.token_bytes(32)


def container(
    name: str, image: str, env: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "image": image, **extra}
    if env:
        body["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return body


def deployment(
    name: str,
    containers: list[dict[str, Any]],
    *,
    labels: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    kind: str = "Deployment",
) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": containers}
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "argoproj.io/v1alpha1" if kind == "Rollout" else "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "labels": {"app": name, **(labels or {})}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def rollout_ref(name: str, deployment_name: str) -> dict[str, Any]:
    """An Argo Rollout that runs a Deployment's template (`spec.workloadRef`)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name},
        },
    }


@dataclass
class Side:
    workloads: list[dict[str, Any]] = field(default_factory=list)
    # (workload name, {container: digest}) for each running pod
    pods: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Case:
    reference: Side
    target: Side
    spec: dict[str, Any] = field(default_factory=dict)


def app(image: str = "registry.example/app:1.0", **env: str) -> list[dict[str, Any]]:
    return [container("app", image, env)]


def _planted() -> tuple[str, ...]:
    """The secret value, and the hash key in the forms it could leak in."""
    return (PLANTED_SECRET, base64.b64encode(HASH_KEY).decode(), HASH_KEY.hex())


def cases() -> dict[str, Case]:
    same = Side([deployment("api", app())], [("api", {"app": D1})])
    pinned = f"registry.example/app@{D1}"
    config_volumes = [{"name": "settings", "configMap": {"name": "settings"}}]
    secret_volumes = [{"name": "creds", "secret": {"secretName": "creds"}}]
    sidecar = [
        container("app", pinned, {"HOSTNAME": "a", "MODE": "fast"}),
        container("istio-proxy", "proxy:1"),
    ]
    sidecar_prod = [
        container("app", pinned, {"HOSTNAME": "b", "MODE": "fast"}),
        container("istio-proxy", "proxy:1"),
    ]

    def bulk(changed: int) -> Side:
        # 50 workloads × (1 pinned image + 9 env vars) = 500 compared items
        return Side(
            [
                deployment(
                    f"w{w:02d}",
                    app(
                        pinned,
                        **{
                            f"V{i}": ("changed" if w < changed and i == 0 else "same")
                            for i in range(9)
                        },
                    ),
                )
                for w in range(50)
            ]
        )

    return {
        "identical": Case(same, Side([deployment("api", app())], [("api", {"app": D1})])),
        "digest": Case(
            Side(
                [deployment("api", app()), deployment("worker", app())],
                [("api", {"app": D1}), ("worker", {"app": D1})],
            ),
            Side(
                [deployment("api", app()), deployment("worker", app())],
                [("api", {"app": D1}), ("worker", {"app": D2})],
            ),
        ),
        "tags": Case(
            Side([deployment("api", app("registry.example/app:1.0"))], [("api", {"app": D1})]),
            Side([deployment("api", app("registry.example/app:latest"))], [("api", {"app": D1})]),
        ),
        "pinned": Case(
            Side([deployment("api", app(pinned))]),
            Side([deployment("api", app(f"mirror.example/app:1.0@{D1}"))]),
        ),
        "unresolvable": Case(
            Side([deployment("api", app("registry.example/app:1.0"))]),
            Side([deployment("api", app("registry.example/app:1.0"))]),
        ),
        "configmap": Case(
            Side(
                [deployment("api", app(pinned), volumes=config_volumes)],
                config_maps={"settings": {"batch": "batch-size-32-staging"}},
            ),
            Side(
                [deployment("api", app(pinned), volumes=config_volumes)],
                config_maps={"settings": {"batch": "batch-size-64-production"}},
            ),
        ),
        "secret": Case(
            Side(
                [deployment("api", app(pinned), volumes=secret_volumes)],
                secrets={"creds": {"password": PLANTED_SECRET + "-staging"}},
            ),
            Side(
                [deployment("api", app(pinned), volumes=secret_volumes)],
                secrets={"creds": {"password": PLANTED_SECRET}},
            ),
        ),
        "membership": Case(
            Side([deployment("api", app(pinned)), deployment("worker", app(pinned))]),
            Side([deployment("api", app(pinned)), deployment("debug", app(pinned))]),
        ),
        "ignored": Case(
            Side([deployment("api", sidecar)], [("api", {"istio-proxy": D1})]),
            Side([deployment("api", sidecar_prod)], [("api", {"istio-proxy": D2})]),
            {"ignore": {"env": ["HOSTNAME"], "containers": ["istio-proxy"]}},
        ),
        "matchby": Case(
            Side([deployment("api-staging", app(pinned), labels={"component": "api"})]),
            Side([deployment("api-production", app(pinned), labels={"component": "api"})]),
            {"workloads": {"matchBy": "component"}},
        ),
        "within": Case(bulk(0), bulk(1), {"maxDriftPercent": 0.5}),
        "beyond": Case(bulk(0), bulk(3), {"maxDriftPercent": 0.5}),
        "rollout": Case(
            Side([deployment("api", app(pinned), kind="Rollout")]),
            Side([deployment("api", app(f"registry.example/app@{D2}"), kind="Rollout")]),
            {"workloads": {"kinds": ["Rollout"]}},
        ),
        "workloadref": Case(
            Side([deployment("api-template", app(pinned)), rollout_ref("api", "api-template")]),
            Side(
                [
                    deployment("api-template", app(f"registry.example/app@{D2}")),
                    rollout_ref("api", "api-template"),
                ]
            ),
            {"workloads": {"kinds": ["Rollout"]}},
        ),
        "workloadref-missing": Case(
            Side([deployment("api-template", app(pinned)), rollout_ref("api", "api-template")]),
            Side([rollout_ref("api", "gone")]),
            {"workloads": {"kinds": ["Rollout"]}},
        ),
        "selector": Case(
            Side([deployment("api", app(pinned))]),
            Side([deployment("api", app(pinned))], labels={"perfguard-e2e-env": "prod"}),
            {"namespaceSelector": {"matchLabels": {"perfguard-e2e-env": "prod"}}},
        ),
        "live": Case(
            Side([deployment("api", app(pinned))]),
            Side([deployment("api", app(pinned))]),
            {"interval": "1h"},
        ),
    }


CAPTURED_LOGGERS = ("kopf", "perfguard", "kubernetes", "urllib3", "aiohttp", "asyncio")


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class World:
    prefix: str
    cluster: Cluster
    api: kubernetes.client.ApiClient
    runner: Any = None
    log: LogCapture = field(default_factory=LogCapture)

    def ns(self, case: str, side: str) -> str:
        return f"{self.prefix}-{case}-{side}"

    def status(self, case: str) -> dict[str, Any]:
        return dict(self.cluster.get("envp", case, self.ns(case, "stg")).get("status") or {})


def _create_side(world: World, namespace: str, side: Side) -> None:
    core = kubernetes.client.CoreV1Api(world.api)
    apps = kubernetes.client.AppsV1Api(world.api)
    custom = kubernetes.client.CustomObjectsApi(world.api)
    core.create_namespace({"metadata": {"name": namespace, "labels": side.labels}})
    for name, data in side.config_maps.items():
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": data})
    for name, data in side.secrets.items():
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": name}, "stringData": data, "type": "Opaque"}
        )
    for workload in side.workloads:
        if workload["kind"] == "Rollout":
            custom.create_namespaced_custom_object(
                "argoproj.io", "v1alpha1", namespace, "rollouts", workload
            )
        else:
            apps.create_namespaced_deployment(namespace, workload)
    for index, (owner, digests) in enumerate(side.pods):
        template = next(w for w in side.workloads if w["metadata"]["name"] == owner)
        pod_spec = template["spec"]["template"]["spec"]
        name = f"{owner}-{index}"
        core.create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": name, "labels": {"app": owner}},
                "spec": {"containers": pod_spec["containers"]},
            },
        )
        statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": f"registry.example/app@{digests.get(c['name'], D1)}",
                "ready": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": "2026-11-28T00:00:00Z"}},
            }
            for c in pod_spec["containers"]
        ]
        core.patch_namespaced_pod_status(
            name, namespace, {"status": {"phase": "Running", "containerStatuses": statuses}}
        )


def envparity(world: World, case: str, extra: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "reference": {"namespace": world.ns(case, "stg")},
        "targets": [{"namespace": world.ns(case, "prd")}],
        "interval": "5m",
    }
    spec.update(extra)
    if "namespaceSelector" in spec:
        del spec["targets"]
    return {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "EnvParity",
        "metadata": {"name": case, "namespace": world.ns(case, "stg")},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def world(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from kopf.testing import KopfRunner

    from perfguard.local.processes import free_port

    prefix = f"ep{uuid.uuid4().hex[:6]}"
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    world = World(prefix, cluster, api)
    cluster.kubectl("apply", "-f", str(MANIFESTS / "argo-rollouts-crd.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/rollouts.argoproj.io")
    core = kubernetes.client.CoreV1Api(api)
    key_namespace = f"{prefix}-system"
    core.create_namespace({"metadata": {"name": key_namespace}})
    core.create_namespaced_secret(
        key_namespace,
        {
            "metadata": {"name": "perfguard-hash-key"},
            "data": {"key": base64.b64encode(HASH_KEY).decode()},
        },
    )
    all_cases = cases()
    for case, spec in all_cases.items():
        _create_side(world, world.ns(case, "stg"), spec.reference)
        _create_side(world, world.ns(case, "prd"), spec.target)
        cluster.kubectl("apply", "-f", "-", input=json.dumps(envparity(world, case, spec.spec)))

    env = {
        "KUBECONFIG": str(cluster.kubeconfig),
        "PERFGUARD_HTTP_PORT": str(free_port()),
        "PERFGUARD_HTTP_HOST": "127.0.0.1",
        "PERFGUARD_LOG_JSON": "true",
        "PERFGUARD_LOG_LEVEL": "DEBUG",
        "PERFGUARD_HASH_KEY_SECRET": f"{key_namespace}/perfguard-hash-key",
        "PERFGUARD_COMPARE_SECRETS": "true",
        # As the chart sets it from watchNamespaces: EnvParity reads only these.
        "PERFGUARD_NAMESPACES": f"{prefix}-*",
    }
    patcher = pytest.MonkeyPatch()
    for key, value in env.items():
        patcher.setenv(key, value)
    args = ["run", "--standalone", "--namespace", f"{prefix}-*", "-m", "perfguard.handlers"]
    try:
        with KopfRunner(args, timeout=120) as runner:
            world.runner = runner
            # The operator's startup replaces the root logger's handlers, so the capture
            # sits on the loggers that write: Kopf, ours, and the HTTP/Kubernetes clients.
            for name in CAPTURED_LOGGERS:
                logging.getLogger(name).addHandler(world.log)
            world.port = int(env["PERFGUARD_HTTP_PORT"])  # type: ignore[attr-defined]
            yield world
            # While the operator runs, so that it releases its finalizers.
            for case in all_cases:
                cluster.kubectl("delete", "envp", "--all", "-n", world.ns(case, "stg"))
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).removeHandler(world.log)
        assert runner.exception is None, runner.output
        # The operator's whole log (DEBUG) must not carry the planted secret or the key.
        log = "\n".join(world.log.lines)
        assert "envparity_daemon" in log, "the log was not captured"
        for secret in _planted():
            assert secret not in log, "a secret value reached the operator's log"
    finally:
        patcher.undo()
        for case in all_cases:
            for side in ("stg", "prd"):
                cluster.kubectl(
                    "delete", "namespace", world.ns(case, side), "--wait=false", check=False
                )


def verdict_of(world: World, name: str, namespace: str) -> dict[str, Any]:
    """The status of an EnvParity made outside the cases, once it has a verdict."""
    result: dict[str, Any] = wait_for(
        lambda: (
            (s := dict(world.cluster.get("envp", name, namespace).get("status") or {})).get(
                "verdict"
            )
            and s
        ),
        timeout=30,
        what=f"a verdict on {name}",
    )
    return result


def settled(world: World, case: str) -> dict[str, Any]:
    result: dict[str, Any] = wait_for(
        lambda: (s := world.status(case)).get("verdict") and s,
        timeout=60,
        what=f"a verdict on {case}",
    )
    return result


def test_identical_environments_are_in_sync(world: World) -> None:
    status = settled(world, "identical")
    assert status["verdict"] == "InSync", status
    assert status["driftPercent"] == 0
    assert status["compared"] == 1 and status["differing"] == 0
    fingerprints = {f["namespace"]: f["fingerprint"] for f in status["fingerprints"]}
    assert len(set(fingerprints.values())) == 1, fingerprints
    assert condition({"status": status}, "InSync")["status"] == "True"  # type: ignore[index]
    assert condition({"status": status}, "Ready")["status"] == "True"  # type: ignore[index]


def test_one_digest_differs_names_workload_and_container(world: World) -> None:
    status = settled(world, "digest")
    assert status["verdict"] == "Drifted", status
    assert status["driftPercent"] == 50.0
    (difference,) = status["differences"]
    assert difference["workload"] == "worker" and difference["container"] == "app"
    assert difference["field"] == "image"
    assert D1 in difference["reference"] and D2 in difference["target"]
    events = wait_for(
        lambda: [
            e
            for e in world.cluster.events(world.ns("digest", "stg"), "digest")
            if e["reason"] == "DriftDetected"
        ],
        timeout=20,
        what="DriftDetected",
    )
    assert "worker" in events[0]["message"] and "image" in events[0]["message"]
    described = world.cluster.kubectl(
        "get", "envp", "digest", "-n", world.ns("digest", "stg")
    ).stdout
    assert "Drifted" in described and "50" in described


def test_tags_resolving_to_the_same_digest_are_equal(world: World) -> None:
    assert settled(world, "tags")["verdict"] == "InSync"


def test_pinned_digests_are_compared_without_pods(world: World) -> None:
    status = settled(world, "pinned")
    assert status["verdict"] == "InSync", status
    assert status["unverified"] == 0


def test_nothing_resolvable_is_unverified_never_in_sync(world: World) -> None:
    status = settled(world, "unresolvable")
    assert status["verdict"] == "Unverified", status
    assert status["unverified"] == 1
    assert condition({"status": status}, "InSync")["status"] == "Unknown"  # type: ignore[index]


def test_config_map_difference_is_shown_by_hash(world: World) -> None:
    status = settled(world, "configmap")
    assert status["verdict"] == "Drifted"
    (difference,) = status["differences"]
    assert difference["field"] == "configmap/settings"
    assert difference["reference"].startswith("hmac:") and difference["target"].startswith("hmac:")
    shown = difference["reference"] + difference["target"]
    assert "batch-size" not in shown  # hashes only, never the content


def test_secret_difference_never_reveals_the_value(world: World) -> None:
    status = settled(world, "secret")
    assert status["verdict"] == "Drifted"
    (difference,) = status["differences"]
    assert difference["field"] == "secret/creds"
    # Scan everything the operator wrote or exported for the planted value.
    every_status = world.cluster.kubectl("get", "envp", "-A", "-o", "json").stdout
    every_event = world.cluster.kubectl("get", "events", "-A", "-o", "json").stdout
    with urllib.request.urlopen(f"http://127.0.0.1:{world.port}/metrics", timeout=5) as r:  # type: ignore[attr-defined]
        metrics = r.read().decode()
    for where, text in (("status", every_status), ("events", every_event), ("metrics", metrics)):
        for secret in _planted():
            assert secret not in text, f"a secret value was found in {where}"
    # The operator's log is scanned when it stops (see the `world` fixture).
    assert "DriftDetected" in every_event  # the scan covered real output


def test_missing_and_extra_workloads(world: World) -> None:
    status = settled(world, "membership")
    assert status["verdict"] == "Drifted"
    found = {(d["workload"], d["reference"], d["target"]) for d in status["differences"]}
    assert found == {("worker", "present", "missing"), ("debug", "missing", "present")}


def test_ignored_env_and_sidecar_do_not_count(world: World) -> None:
    status = settled(world, "ignored")
    assert status["verdict"] == "InSync", status
    assert status["compared"] == 2  # app image + MODE


def test_match_by_label(world: World) -> None:
    status = settled(world, "matchby")
    assert status["verdict"] == "InSync", status
    assert status["compared"] == 1


@pytest.mark.parametrize(
    ("case", "verdict", "differing"), [("within", "InSync", 1), ("beyond", "Drifted", 3)]
)
def test_threshold(world: World, case: str, verdict: str, differing: int) -> None:
    status = settled(world, case)
    assert status["compared"] == 500
    assert status["differing"] == differing
    assert status["verdict"] == verdict, status
    assert len(status["differences"]) == differing  # listed even within the limit


def test_argo_rollouts_are_compared(world: World) -> None:
    status = settled(world, "rollout")
    assert status["verdict"] == "Drifted"
    assert status["differences"][0]["kind"] == "Rollout"


def test_rollouts_with_workload_ref_compare_the_referenced_template(world: World) -> None:
    status = settled(world, "workloadref")
    assert status["verdict"] == "Drifted", status
    difference = status["differences"][0]
    assert difference["kind"] == "Rollout" and difference["field"] == "image", difference
    missing = settled(world, "workloadref-missing")
    assert missing["verdict"] == "Unverified", missing
    assert "workloadRef Deployment/gone not found" in missing["message"], missing["message"]


def test_namespace_selector_picks_targets(world: World) -> None:
    status = settled(world, "selector")
    assert status["verdict"] == "InSync", status
    assert {f["namespace"] for f in status["fingerprints"]} == {
        world.ns("selector", "stg"),
        world.ns("selector", "prd"),
    }


def test_workload_change_flips_verdict_without_waiting_for_the_timer(world: World) -> None:
    namespace = world.ns("live", "prd")
    assert settled(world, "live")["verdict"] == "InSync"
    image = f"registry.example/app@{D2}"
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    world.cluster.kubectl(
        "patch", "deployment", "api", "-n", namespace, "--type=strategic", "-p", json.dumps(patch)
    )
    # interval is 1h: only the watch on the Deployment can bring this within seconds.
    wait_for(lambda: world.status("live").get("verdict") == "Drifted", timeout=20, what="Drifted")
    fixed = {
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "app", "image": f"registry.example/app@{D1}"}]}
            }
        }
    }
    world.cluster.kubectl(
        "patch", "deployment", "api", "-n", namespace, "--type=strategic", "-p", json.dumps(fixed)
    )
    wait_for(
        lambda: world.status("live").get("verdict") == "InSync", timeout=20, what="InSync again"
    )
    reasons = wait_for(
        lambda: (
            (r := [e["reason"] for e in world.cluster.events(world.ns("live", "stg"), "live")])
            and "DriftResolved" in r
            and r
        ),
        timeout=20,
        what="DriftResolved",
    )
    assert reasons.count("DriftDetected") == 1


def test_missing_target_namespace_is_unverified_with_a_reason(world: World) -> None:
    namespace = world.ns("identical", "stg")
    body = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "EnvParity",
        "metadata": {"name": "nowhere", "namespace": namespace},
        "spec": {
            "reference": {"namespace": namespace},
            "targets": [{"namespace": f"{world.prefix}-absent"}],
        },
    }
    world.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
    status = verdict_of(world, "nowhere", namespace)
    assert status["verdict"] == "Unverified"
    ready = condition({"status": status}, "Ready")
    assert (
        ready is not None and ready["status"] == "False" and ready["reason"] == "NamespaceNotFound"
    )


def test_a_namespace_the_operator_does_not_serve_is_never_read(world: World) -> None:
    """With watchNamespaces, an EnvParity cannot read (and show in its status) a namespace
    outside them: its literal env values, images and annotations stay private."""
    outside = f"outside-{world.prefix}"
    plain = "plain-value-" + uuid.uuid4().hex
    _create_side(
        world,
        outside,
        Side(
            workloads=[
                deployment(
                    "api",
                    [{"name": "api", "image": "api:1", "env": [{"name": "TOKEN", "value": plain}]}],
                )
            ]
        ),
    )
    namespace = world.ns("identical", "stg")
    body = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "EnvParity",
        "metadata": {"name": "peek", "namespace": namespace},
        "spec": {"reference": {"namespace": namespace}, "targets": [{"namespace": outside}]},
    }
    try:
        world.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        status = verdict_of(world, "peek", namespace)
        assert status["verdict"] == "Unverified"
        ready = condition({"status": status}, "Ready")
        assert ready is not None and ready["reason"] == "NamespaceNotWatched", ready
        assert outside in ready["message"] and f"{world.prefix}-*" in ready["message"]
        assert plain not in json.dumps(status)
    finally:
        world.cluster.kubectl("delete", "envp", "peek", "-n", namespace, check=False)
        world.cluster.kubectl("delete", "namespace", outside, "--wait=false", check=False)


def test_an_evaluation_that_raises_is_an_event_and_so_is_its_recovery(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluation that raises (a bug) turns Ready False (EvaluationError) with one
    Warning Event, none while it keeps raising, and a Normal one when evaluations succeed
    again. An exception carrying a huge text (a whole response body, not ASCII) still gives
    a status and an Event the API server takes: the message is cut to 1 KiB."""
    from perfguard.handlers.kinds import ENV_PARITY_LOOP

    real = ENV_PARITY_LOOP.evaluator
    failing = {"now": False}

    async def flaky(spec: Any, previous: Any, at: Any, ref: Any) -> Any:
        if ref.name == "flaky" and failing["now"]:
            raise RuntimeError("<html>" + "ü" * 100_000)
        return await real(spec, previous, at, ref)

    # The operator runs in this process (KopfRunner): only this resource's evaluations
    # raise, the others' run as before.
    monkeypatch.setattr(ENV_PARITY_LOOP, "evaluator", flaky)
    namespace = world.ns("identical", "stg")
    body = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "EnvParity",
        "metadata": {"name": "flaky", "namespace": namespace},
        "spec": {
            "reference": {"namespace": namespace},
            "targets": [{"namespace": world.ns("identical", "prd")}],
            "maxDriftPercent": 1,
        },
    }

    def ready_at(generation: int) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: (
                (c := condition(world.cluster.get("envp", "flaky", namespace), "Ready"))
                and c.get("observedGeneration") == generation
                and c.get("reason") != "Pending"  # first sight, before the evaluation
                and c
            ),
            timeout=30,
            what=f"Ready for generation {generation}",
        )
        return found

    def reasons() -> list[str]:
        return [e["reason"] for e in world.cluster.events(namespace, "flaky")]

    def bump(drift: int) -> None:
        patch = json.dumps({"spec": {"maxDriftPercent": drift}})  # wakes the daemon
        world.cluster.kubectl(
            "patch", "envp", "flaky", "-n", namespace, "--type=merge", "-p", patch
        )

    try:
        world.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        assert ready_at(1)["status"] == "True"
        failing["now"] = True
        bump(2)
        raised = ready_at(2)
        assert (raised["status"], raised["reason"]) == ("False", "EvaluationError"), raised
        assert raised["message"].startswith("RuntimeError: <html>üüü")
        assert len(raised["message"].encode()) <= 1024
        events = wait_for(
            lambda: [
                e
                for e in world.cluster.events(namespace, "flaky")
                if e["reason"] == "EvaluationError"
            ],
            timeout=20,
            what="the EvaluationError Event",
        )
        assert events[0]["type"] == "Warning" and events[0]["message"] == raised["message"]
        bump(3)  # still raising: no second Event
        assert ready_at(3)["reason"] == "EvaluationError"
        failing["now"] = False
        bump(4)
        assert ready_at(4)["status"] == "True"
        wait_for(lambda: "EvaluationRecovered" in reasons(), timeout=20, what="EvaluationRecovered")
        recovered = [
            e for e in world.cluster.events(namespace, "flaky") if e["reason"] != "EvaluationError"
        ]
        assert [(e["type"], e["reason"]) for e in recovered] == [("Normal", "EvaluationRecovered")]
        assert reasons().count("EvaluationError") == 1
    finally:
        world.cluster.kubectl("delete", "envp", "flaky", "-n", namespace, check=False)


def test_a_refused_spec_does_not_leave_in_sync_for_kubectl_wait(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spec the operator refuses (one stored before an upgrade made a rule stricter)
    turns InSync Unknown for that generation: `kubectl wait --for=condition=InSync` must
    not pass on the earlier spec's True while the verdict is Unverified."""
    import dataclasses

    from pydantic import model_validator

    from perfguard.api.envparity import EnvParitySpec
    from perfguard.handlers.kinds import ENV_PARITY_LOOP

    class Stricter(EnvParitySpec):
        @model_validator(mode="after")
        def _refuse_seven(self) -> Stricter:
            if self.max_drift_percent == 7:
                raise ValueError("maxDriftPercent 7 is refused by this operator version")
            return self

    # The operator runs in this process (KopfRunner): its EnvParity model becomes stricter
    # than the CRD the API server validated the object with.
    stricter = dataclasses.replace(ENV_PARITY_LOOP.resource, spec=Stricter)
    monkeypatch.setattr(ENV_PARITY_LOOP, "resource", stricter)
    namespace = world.ns("identical", "stg")
    body = {
        "apiVersion": "perfguard.dev/v1alpha1",
        "kind": "EnvParity",
        "metadata": {"name": "refused", "namespace": namespace},
        "spec": {
            "reference": {"namespace": namespace},
            "targets": [{"namespace": world.ns("identical", "prd")}],
            "maxDriftPercent": 1,
        },
    }

    def conditions_at(generation: int) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = wait_for(
            lambda: (
                (s := world.cluster.get("envp", "refused", namespace).get("status") or {})
                and s.get("observedGeneration") == generation
                and {c["type"]: c for c in s.get("conditions") or []}
            ),
            timeout=30,
            what=f"a status for generation {generation}",
        )
        return found

    def wait_in_sync() -> int:
        return world.cluster.kubectl(
            "wait",
            "--for=condition=InSync",
            "envp/refused",
            "-n",
            namespace,
            "--timeout=3s",
            check=False,
        ).returncode

    try:
        world.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(body))
        assert conditions_at(1)["InSync"]["status"] == "True"
        assert wait_in_sync() == 0
        patch = json.dumps({"spec": {"maxDriftPercent": 7}})
        world.cluster.kubectl(
            "patch", "envp", "refused", "-n", namespace, "--type=merge", "-p", patch
        )
        refused = conditions_at(2)
        assert (refused["Ready"]["status"], refused["Ready"]["reason"]) == (
            "False",
            "InvalidSpec",
        )
        in_sync = refused["InSync"]
        assert (in_sync["status"], in_sync["reason"]) == ("Unknown", "InvalidSpec"), in_sync
        assert in_sync["observedGeneration"] == 2
        assert world.cluster.get("envp", "refused", namespace)["status"]["verdict"] == "Unverified"
        assert wait_in_sync() != 0, "kubectl wait took the earlier spec's InSync"
    finally:
        world.cluster.kubectl("delete", "envp", "refused", "-n", namespace, check=False)
