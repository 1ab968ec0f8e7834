"""EnvParity's pure parts: items from API objects, comparison, verdict, Events."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from perfguard.analysis.parity import Environment, compare, fingerprint, judge
from perfguard.api.envparity import EnvParitySpec, EnvParityStatus, ParityVerdict
from perfguard.engine.envparity import judge_environments, read_failed
from perfguard.engine.envparity_snapshot import (
    CONFIGMAP_CONTENT,
    NOT_READ,
    SECRET_CONTENT,
    SHOWN_VALUE,
    NamespaceObjects,
    canonical_content,
    config_references,
    digest_of,
    env_value,
    environment,
    keyed_hasher,
    selector_matches,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
HASHER = keyed_hasher(b"k" * 32)


def spec(**overrides: Any) -> EnvParitySpec:
    body: dict[str, Any] = {"reference": {"namespace": "stg"}, "targets": [{"namespace": "prd"}]}
    body.update(overrides)
    return EnvParitySpec.model_validate(body)


def deployment(
    name: str,
    *,
    image: str = "registry/app:1.0",
    env: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    sidecar: str | None = None,
    init_image: str | None = None,
) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "app", "image": image, "env": env or []}]
    if sidecar:
        containers.append({"name": sidecar, "image": f"proxy:{sidecar}"})
    pod_spec: dict[str, Any] = {"containers": containers, "volumes": volumes or []}
    if init_image:
        pod_spec["initContainers"] = [{"name": "init", "image": init_image}]
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def pod(app: str, digests: dict[str, str], *, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": c, "imageID": f"docker-pullable://registry/app@{d}"}
                for c, d in digests.items()
            ],
        },
    }


def objects(
    namespace: str,
    workloads: list[dict[str, Any]],
    pods: list[dict[str, Any]] | None = None,
    config_maps: dict[str, dict[str, Any]] | None = None,
    secrets: dict[str, dict[str, Any]] | None = None,
) -> NamespaceObjects:
    return NamespaceObjects(namespace, workloads, pods or [], config_maps or {}, secrets)


def envs(
    s: EnvParitySpec, ref: NamespaceObjects, tgt: NamespaceObjects
) -> tuple[Environment, Environment]:
    return environment(ref, s, HASHER), environment(tgt, s, HASHER)


# -- items -----------------------------------------------------------------------------


def test_digest_is_read_from_image_ids_and_pinned_references() -> None:
    assert digest_of(f"docker-pullable://r/app@{D1}") == D1
    assert digest_of(f"r/app:1.0@{D2}") == D2
    assert digest_of("r/app:1.0") is None
    assert digest_of("") is None


def test_selector_semantics() -> None:
    labels = {"app": "a", "tier": "web"}
    assert selector_matches({"matchLabels": {"app": "a"}}, labels)
    assert not selector_matches({"matchLabels": {"app": "b"}}, labels)
    assert selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, labels
    )
    assert not selector_matches(
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels
    )
    assert selector_matches(
        {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}, labels
    )
    assert not selector_matches({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, labels)
    assert not selector_matches({}, labels)  # an empty selector owns no pods


def test_env_values_compare_references_not_resolved_values() -> None:
    assert env_value({"name": "A", "value": "1"}) == "1"
    assert (
        env_value({"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}})
        == "configMapKeyRef:cm/k"
    )
    assert (
        env_value({"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}})
        == "fieldRef:metadata.namespace"
    )
    optional = {"name": "cm", "key": "k", "optional": True}
    assert (
        env_value({"name": "A", "valueFrom": {"configMapKeyRef": optional}})
        == "configMapKeyRef:cm/k optional=true"
    )


def test_a_resource_field_ref_is_compared_with_its_divisor() -> None:
    def entry(**divisor: str) -> dict[str, Any]:
        ref = {"containerName": "app", "resource": "limits.memory", **divisor}
        return {"name": "MEM", "valueFrom": {"resourceFieldRef": ref}}

    assert env_value(entry(divisor="1Mi")) == "resourceFieldRef:app/limits.memory divisor=1Mi"
    assert env_value(entry(divisor="1Mi")) != env_value(entry(divisor="1Gi"))
    assert (
        env_value(entry()) == env_value(entry(divisor="1")) == "resourceFieldRef:app/limits.memory"
    )


@pytest.mark.parametrize("divisor", ["0", "", "1", "1.0", "1000m", "1e0"])
def test_an_unset_divisor_as_the_api_server_serves_it_is_a_divisor_of_one(divisor: str) -> None:
    # The API server serves an unset divisor as "0" (a Quantity is never omitted), and the
    # kubelet divides by 1 then: a manifest's `divisor: 1` against none is no drift.
    def build(value: str | None) -> dict[str, Any]:
        ref = {"containerName": "app", "resource": "limits.memory"}
        if value is not None:
            ref["divisor"] = value
        return deployment(
            "api", image=f"r@{D1}", env=[{"name": "M", "valueFrom": {"resourceFieldRef": ref}}]
        )

    for other in (None, "0", "1"):
        ref, tgt = envs(spec(), objects("stg", [build(divisor)]), objects("prd", [build(other)]))
        assert judge([compare(ref, tgt)], 0.0).verdict == ParityVerdict.IN_SYNC, (divisor, other)
    (item,) = [i for i in ref.items if i.field == "env/M"]
    assert item.value == "resourceFieldRef:app/limits.memory"
    ref, tgt = envs(spec(), objects("stg", [build(divisor)]), objects("prd", [build("1Mi")]))
    (difference,) = judge([compare(ref, tgt)], 0.0).differences
    assert difference.target == "resourceFieldRef:app/limits.memory divisor=1Mi"


@pytest.mark.parametrize("where", ["env", "annotation"])
def test_long_values_are_compared_whole_and_shown_cut_with_a_hash(where: str) -> None:
    # Two values alike for their first 300 characters: the cut shown in status is the same,
    # the values are not, and status must say so.
    key = "perfguard.dev/model-version"
    s = spec(compare={"annotations": [key]})

    def build(tail: str) -> dict[str, Any]:
        value = "x" * 300 + tail
        if where == "env":
            return deployment("api", image=f"r@{D1}", env=[{"name": "OPTS", "value": value}])
        return deployment("api", image=f"r@{D1}", annotations={key: value})

    ref, tgt = envs(s, objects("stg", [build("-Xmx4g")]), objects("prd", [build("-Xmx512m")]))
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.DRIFTED
    (difference,) = result.differences
    assert difference.reference is not None and difference.target is not None
    assert difference.reference != difference.target
    for shown in (difference.reference, difference.target):
        assert shown.startswith("x" * 255 + "… (hmac:")
        assert len(shown) < 300
    assert fingerprint(ref) != fingerprint(tgt)
    same = envs(s, objects("stg", [build("-Xmx4g")]), objects("prd", [build("-Xmx4g")]))
    assert judge([compare(*same)], 0.0).verdict == ParityVerdict.IN_SYNC


def _with_env_from(*sources: dict[str, Any], env: list[dict[str, Any]] | None = None) -> Any:
    workload = deployment("api", image=f"r@{D1}", env=env)
    workload["spec"]["template"]["spec"]["containers"][0]["envFrom"] = list(sources)
    return workload


def _env_from_outcome(
    ref: dict[str, Any],
    tgt: dict[str, Any],
    *,
    config_maps: dict[str, dict[str, Any]] | None = None,
    secrets: dict[str, dict[str, Any]] | None = None,
    **overrides: Any,
) -> Any:
    pair = envs(
        spec(**overrides),
        objects("stg", [ref], config_maps=config_maps, secrets=secrets),
        objects("prd", [tgt], config_maps=config_maps, secrets=secrets),
    )
    return judge([compare(*pair)], 0.0)


def test_env_from_sources_are_compared_by_identity_with_prefix_and_optional() -> None:
    # Same ConfigMap, another prefix: the container sees LEGACY_DB_HOST instead of DB_HOST.
    cms = {"db": {"data": {"HOST": "db.svc"}}}
    db = {"configMapRef": {"name": "db"}}
    result = _env_from_outcome(
        _with_env_from({**db, "prefix": "DB_"}),
        _with_env_from({**db, "prefix": "LEGACY_DB_"}),
        config_maps=cms,
    )
    assert result.verdict == ParityVerdict.DRIFTED
    assert {(d.container, d.field, d.reference, d.target) for d in result.differences} == {
        ("app", "envFrom/configMapRef:db prefix=DB_", "required", "<absent>"),
        ("app", "envFrom/configMapRef:db prefix=LEGACY_DB_", "<absent>", "required"),
    }
    assert _env_from_outcome(_with_env_from(db), _with_env_from(db)).verdict == (
        ParityVerdict.IN_SYNC
    )
    optional = {"configMapRef": {"name": "db", "optional": True}}
    (difference,) = _env_from_outcome(_with_env_from(db), _with_env_from(optional)).differences
    assert (difference.field, difference.reference, difference.target) == (
        "envFrom/configMapRef:db",
        "required",
        "optional",
    )


def test_env_from_sources_in_another_order_without_overlap_are_in_sync() -> None:
    # The same two ConfigMaps, no key in common: every container sees the same variables,
    # whichever comes first. One source added in front is one difference, not a shift of
    # every later position.
    cms = {
        "db": {"data": {"DB_HOST": "db.svc"}},
        "cache": {"data": {"REDIS_URL": "redis://r"}},
        "feat": {"data": {"FLAG_X": "1"}},
    }
    db, cache, feat = ({"configMapRef": {"name": n}} for n in ("db", "cache", "feat"))
    result = _env_from_outcome(
        _with_env_from(db, cache), _with_env_from(cache, db), config_maps=cms
    )
    assert result.verdict == ParityVerdict.IN_SYNC, result.differences
    result = _env_from_outcome(
        _with_env_from(db, cache), _with_env_from(feat, db, cache), config_maps=cms
    )
    assert [(d.field, d.reference, d.target) for d in result.differences] == [
        ("configmap/feat", "<absent>", result.differences[0].target),
        ("envFrom/configMapRef:feat", "<absent>", "required"),
    ]


def test_env_from_order_is_compared_where_sources_are_known_to_overlap() -> None:
    # Both ConfigMaps give HOST: the later source wins it, so their order is compared, as
    # one item. Names the container's env sets win over every source: no overlap there.
    cms = {"db": {"data": {"HOST": "db.svc", "A": "1"}}, "cache": {"data": {"HOST": "r"}}}
    db, cache = {"configMapRef": {"name": "db"}}, {"configMapRef": {"name": "cache"}}
    result = _env_from_outcome(
        _with_env_from(db, cache), _with_env_from(cache, db), config_maps=cms
    )
    assert result.verdict == ParityVerdict.DRIFTED
    (difference,) = result.differences
    assert (difference.container, difference.field) == ("app", "envFrom/order")
    assert (difference.reference, difference.target) == (
        "configMapRef:db, configMapRef:cache",
        "configMapRef:cache, configMapRef:db",
    )
    host = [{"name": "HOST", "value": "h"}]
    overridden = _env_from_outcome(
        _with_env_from(db, cache, env=host), _with_env_from(cache, db, env=host), config_maps=cms
    )
    assert overridden.verdict == ParityVerdict.IN_SYNC, overridden.differences
    ignored = _env_from_outcome(
        _with_env_from(db, cache),
        _with_env_from(cache, db),
        config_maps=cms,
        ignore={"env": ["HO*"]},
    )
    assert ignored.verdict == ParityVerdict.IN_SYNC, ignored.differences
    prefixed = {**cache, "prefix": "CACHE_"}
    result = _env_from_outcome(
        _with_env_from(db, prefixed), _with_env_from(prefixed, db), config_maps=cms
    )
    assert result.verdict == ParityVerdict.IN_SYNC, result.differences


@pytest.mark.parametrize("read", [False, True], ids=["secrets-not-read", "secrets-read"])
def test_env_from_order_is_not_claimed_from_secret_keys_not_read(read: bool) -> None:
    # A Secret and a ConfigMap in another order: with Secret contents not read, whether
    # they overlap is unknown, and no order drift is claimed; read, the overlap is known.
    cms = {"db": {"data": {"PASSWORD": "none"}}}
    creds = {"data": {"PASSWORD": base64.b64encode(b"s3cr3t").decode()}}
    db, sec = {"configMapRef": {"name": "db"}}, {"secretRef": {"name": "creds"}}
    result = _env_from_outcome(
        _with_env_from(db, sec),
        _with_env_from(sec, db),
        config_maps=cms,
        secrets={"creds": creds} if read else None,
    )
    if read:
        (difference,) = result.differences
        assert difference.field == "envFrom/order"
        assert "s3cr3t" not in repr(result) and "PASSWORD" not in repr(result)
    else:
        assert result.verdict == ParityVerdict.IN_SYNC, result.differences


def test_config_references_cover_volumes_projections_env_from_and_value_from() -> None:
    pod_spec = {
        "volumes": [
            {"name": "a", "configMap": {"name": "cm-vol"}},
            {"name": "b", "secret": {"secretName": "sec-vol"}},
            {
                "name": "c",
                "projected": {
                    "sources": [
                        {"configMap": {"name": "cm-proj"}},
                        {"secret": {"name": "sec-proj"}},
                    ]
                },
            },
        ],
        "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "cm-init"}}]}],
        "containers": [
            {
                "name": "app",
                "envFrom": [{"secretRef": {"name": "sec-from"}}],
                "env": [
                    {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "x"}}},
                    {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "sec-key", "key": "y"}}},
                ],
            }
        ],
    }
    config_maps, secrets = config_references(pod_spec)
    assert config_maps == {"cm-vol", "cm-proj", "cm-init", "cm-key"}
    assert secrets == {"sec-vol", "sec-proj", "sec-from", "sec-key"}


def test_what_ignore_leaves_out_references_no_config() -> None:
    # The user said: not the log shipper, not DEBUG_*. Their ConfigMaps and Secrets are
    # theirs; a volume the app mounts too, or that nobody mounts, still counts.
    def volume(name: str) -> dict[str, Any]:
        return {"name": name, "configMap": {"name": f"cm-{name}"}}

    pod_spec = {
        "volumes": [
            volume("shipper-only"),
            volume("shared"),
            volume("unmounted"),
            {"name": "shipper-creds", "secret": {"secretName": "sec-shipper"}},
        ],
        "containers": [
            {
                "name": "app",
                "volumeMounts": [{"name": "shared", "mountPath": "/a"}],
                "env": [
                    {"name": "DEBUG_FLAGS", "valueFrom": {"configMapKeyRef": {"name": "cm-debug"}}},
                    {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cm-mode"}}},
                ],
            },
            {
                "name": "log-shipper",
                "volumeMounts": [
                    {"name": "shipper-only", "mountPath": "/s"},
                    {"name": "shared", "mountPath": "/a"},
                    {"name": "shipper-creds", "mountPath": "/c"},
                ],
                "envFrom": [{"configMapRef": {"name": "cm-shipper-env"}}],
                "env": [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "sec-k"}}}],
            },
        ],
    }
    ignore = spec(ignore={"containers": ["log-*"], "env": ["DEBUG_*"]}).ignore
    assert config_references(pod_spec, ignore) == ({"cm-shared", "cm-unmounted", "cm-mode"}, set())
    everything = config_references(pod_spec)
    assert everything[0] >= {"cm-shipper-only", "cm-shipper-env", "cm-debug"}
    assert everything[1] == {"sec-shipper", "sec-k"}

    # End to end: what only the ignored parts reference differs, and is not drift.
    def build(env: str) -> dict[str, Any]:
        workload = deployment("api", image=f"r@{D1}")
        containers = workload["spec"]["template"]["spec"]["containers"]
        containers[0]["env"] = [
            {"name": "DEBUG_FLAGS", "valueFrom": {"configMapKeyRef": {"name": f"dbg-{env}"}}}
        ]
        containers.append(
            {
                "name": "log-shipper",
                "image": "fluentbit:2",
                "envFrom": [{"configMapRef": {"name": f"sh-{env}"}}],
            }
        )
        return workload

    s = spec(ignore={"containers": ["log-shipper"], "env": ["DEBUG_*"]})
    ref, tgt = envs(s, objects("stg", [build("stg")]), objects("prd", [build("prd")]))
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.IN_SYNC, result.differences
    assert (result.compared, result.differing) == (1, 0)


def test_canonical_content_is_order_independent_and_unambiguous() -> None:
    a = canonical_content({"data": {"x": "1", "y": "2"}}, secret=False)
    b = canonical_content({"data": {"y": "2", "x": "1"}}, secret=False)
    assert a == b
    assert canonical_content({"data": {"ab": "c"}}, secret=False) != canonical_content(
        {"data": {"a": "bc"}}, secret=False
    )
    encoded = {"data": {"pw": base64.b64encode(b"hunter2").decode()}}
    assert canonical_content(encoded, secret=True) == canonical_content(
        {"data": {"pw": "hunter2"}}, secret=False
    )


def test_hashes_are_keyed() -> None:
    content = canonical_content({"data": {"pw": "hunter2"}}, secret=False)
    for domain in (CONFIGMAP_CONTENT, SECRET_CONTENT, SHOWN_VALUE):
        assert keyed_hasher(b"a" * 32)(domain, content) != keyed_hasher(b"b" * 32)(domain, content)
        assert HASHER(domain, content) == HASHER(domain, content)
        assert "hunter2" not in HASHER(domain, content)


def test_a_shown_digest_is_no_oracle_for_secret_or_config_map_contents() -> None:
    # Whoever can set an env literal (or an annotation, or a ConfigMap) in a compared
    # namespace must not be able to confirm a guess of a Secret's content by finding the
    # digest status shows for the guess equal to the Secret's hash. A Secret of known
    # fields and a weak password: its canonical content is over 256 characters, so an env
    # value holding it is shown cut, with a digest of the whole.
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    fields = {f"field{i}": b64("known-" + "x" * 40) for i in range(5)}
    real = {"data": {**fields, "password": b64("4711")}}
    guess = canonical_content(real, secret=True).decode()
    assert len(guess) > 256
    volumes = [{"name": "s", "secret": {"secretName": "db"}}]

    def build(env: list[dict[str, Any]]) -> dict[str, Any]:
        return deployment("api", image=f"r@{D1}", env=env, volumes=volumes)

    key = "perfguard.dev/guess"
    s = spec(compare={"annotations": [key]})
    guessing = build([{"name": "GUESS", "value": guess}])
    guessing["metadata"]["annotations"] = {key: guess}
    guessing["spec"]["template"]["spec"]["volumes"].append(
        {"name": "c", "configMap": {"name": "guess"}}
    )
    as_config_map = {"data": {k: base64.b64decode(v).decode() for k, v in real["data"].items()}}
    ref, tgt = envs(
        s,
        objects("stg", [guessing], config_maps={"guess": as_config_map}, secrets={"db": {}}),
        objects("prd", [build([])], secrets={"db": real}),
    )
    result = judge([compare(ref, tgt)], 0.0)
    by_field = {d.field: d for d in result.differences}
    secret_hash = by_field["secret/db"].target
    assert secret_hash is not None and secret_hash.startswith("hmac:")
    shown = [by_field["env/GUESS"].reference, by_field[f"annotation/{key}"].reference]
    assert all(v is not None and v.endswith(")") and "(hmac:" in v for v in shown)
    assert all(secret_hash not in str(v) for v in shown)
    # A ConfigMap holding the Secret's content does not hash alike either.
    assert by_field["configmap/guess"].reference != secret_hash
    elsewhere = [d.reference for d in result.differences] + [
        d.target for d in result.differences if d.field != "secret/db"
    ]
    assert not any(secret_hash in str(v) for v in elsewhere)


# -- comparison ------------------------------------------------------------------------


def test_identical_environments_are_in_sync_with_equal_fingerprints() -> None:
    s = spec()
    workloads = [deployment("api", env=[{"name": "MODE", "value": "fast"}])]
    ref, tgt = envs(
        s,
        objects("stg", workloads, [pod("api", {"app": D1})]),
        objects("prd", workloads, [pod("api", {"app": D1})]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.IN_SYNC
    assert (result.compared, result.differing, result.unverified) == (2, 0, 0)
    assert fingerprint(ref) == fingerprint(tgt)


def test_same_tag_different_digest_is_drift_and_different_tags_same_digest_are_equal() -> None:
    s = spec()
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image="r/app:1.0")], [pod("api", {"app": D1})]),
        objects("prd", [deployment("api", image="r/app:1.0")], [pod("api", {"app": D2})]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.DRIFTED
    (difference,) = result.differences
    assert (difference.name, difference.container, difference.field) == ("api", "app", "image")
    assert difference.reference is not None and D1 in difference.reference
    assert difference.target is not None and D2 in difference.target
    assert fingerprint(ref) != fingerprint(tgt)

    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image="r/app:1.0")], [pod("api", {"app": D1})]),
        objects("prd", [deployment("api", image="r/app:stable")], [pod("api", {"app": D1})]),
    )
    assert judge([compare(ref, tgt)], 0.0).verdict == ParityVerdict.IN_SYNC


def test_pinned_digest_counts_without_pods_and_nothing_resolvable_is_unverified() -> None:
    s = spec()
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image=f"r/app@{D1}")]),
        objects("prd", [deployment("api", image=f"r/app:1.0@{D1}")]),
    )
    assert judge([compare(ref, tgt)], 0.0).verdict == ParityVerdict.IN_SYNC

    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image="r/app:1.0")]),
        objects("prd", [deployment("api", image="r/app:1.0")]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.UNVERIFIED
    assert result.unverified == 1 and result.compared == 0
    assert fingerprint(ref) != fingerprint(
        environment(objects("x", [deployment("api", image=f"r/app@{D1}")]), s, HASHER)
    )


def test_pods_of_an_old_replicaset_are_reported_as_mid_rollout() -> None:
    s = spec()
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api")], [pod("api", {"app": D2})]),
        objects("prd", [deployment("api")], [pod("api", {"app": D1}), pod("api", {"app": D2})]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    (difference,) = result.differences
    assert difference.note == "mid-rollout: 2 digests running"
    assert difference.target is not None and "on 1 pod(s)" in difference.target
    # Finished pods do not count.
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api")], [pod("api", {"app": D2})]),
        objects(
            "prd",
            [deployment("api")],
            [pod("api", {"app": D1}, phase="Succeeded"), pod("api", {"app": D2})],
        ),
    )
    assert judge([compare(ref, tgt)], 0.0).verdict == ParityVerdict.IN_SYNC


def test_init_containers_are_compared() -> None:
    s = spec()
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image=f"r@{D1}", init_image=f"i@{D1}")]),
        objects("prd", [deployment("api", image=f"r@{D1}", init_image=f"i@{D2}")]),
    )
    (difference,) = judge([compare(ref, tgt)], 0.0).differences
    assert difference.container == "init"


def test_missing_and_extra_workloads_are_one_difference_each() -> None:
    s = spec()
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image=f"r@{D1}"), deployment("worker", image=f"r@{D1}")]),
        objects("prd", [deployment("api", image=f"r@{D1}"), deployment("debug", image=f"r@{D1}")]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    found = {(d.name, d.reference, d.target) for d in result.differences}
    assert found == {("worker", "present", "missing"), ("debug", "missing", "present")}
    assert (result.compared, result.differing) == (3, 2)


def test_ignored_env_and_sidecar_do_not_count_but_other_env_does() -> None:
    s = spec(ignore={"env": ["HOSTNAME", "POD_*"], "containers": ["istio-proxy"]})
    ref, tgt = envs(
        s,
        objects(
            "stg",
            [
                deployment(
                    "api",
                    image=f"r@{D1}",
                    env=[{"name": "HOSTNAME", "value": "a"}, {"name": "POD_IP", "value": "1"}],
                    sidecar="istio-proxy",
                )
            ],
            [pod("api", {"istio-proxy": D1})],
        ),
        objects(
            "prd",
            [
                deployment(
                    "api",
                    image=f"r@{D1}",
                    env=[{"name": "HOSTNAME", "value": "b"}, {"name": "POD_IP", "value": "2"}],
                    sidecar="istio-proxy",
                )
            ],
            [pod("api", {"istio-proxy": D2})],
        ),
    )
    assert judge([compare(ref, tgt)], 0.0).verdict == ParityVerdict.IN_SYNC
    ref, tgt = envs(
        spec(),
        objects(
            "stg", [deployment("api", image=f"r@{D1}", env=[{"name": "HOSTNAME", "value": "a"}])]
        ),
        objects(
            "prd", [deployment("api", image=f"r@{D1}", env=[{"name": "HOSTNAME", "value": "b"}])]
        ),
    )
    (difference,) = judge([compare(ref, tgt)], 0.0).differences
    assert (difference.field, difference.reference, difference.target) == ("env/HOSTNAME", "a", "b")


def test_env_present_on_one_side_only_is_compared_with_absent() -> None:
    ref, tgt = envs(
        spec(),
        objects("stg", [deployment("api", image=f"r@{D1}", env=[{"name": "X", "value": "1"}])]),
        objects("prd", [deployment("api", image=f"r@{D1}")]),
    )
    (difference,) = judge([compare(ref, tgt)], 0.0).differences
    assert (difference.field, difference.target) == ("env/X", "<absent>")


def test_unresolved_container_on_one_side_only_is_drift_not_unverified() -> None:
    # prod runs an extra `debug` container whose tag has no digest anywhere: its value is
    # unknown, but that it exists only in prod is known drift.
    sp = spec()
    ref, tgt = envs(
        sp,
        objects("stg", [deployment("api")], [pod("api", {"app": D1})]),
        objects("prd", [deployment("api", sidecar="debug")], [pod("api", {"app": D1})]),
    )
    outcome = judge_environments(sp, ref, [tgt], {})
    assert outcome.verdict == ParityVerdict.DRIFTED
    fields = outcome.fields
    assert (fields["compared"], fields["differing"], fields["unverified"]) == (2, 1, 0)
    (difference,) = fields["differences"]
    assert (difference["container"], difference["field"], difference["reference"]) == (
        "debug",
        "image",
        "<absent>",
    )
    assert difference["target"] == "proxy:debug (no digest)"


def test_unresolved_on_both_sides_stays_unverified() -> None:
    ref, tgt = envs(
        spec(),
        objects("stg", [deployment("api", sidecar="debug")], [pod("api", {"app": D1})]),
        objects("prd", [deployment("api", sidecar="debug")], [pod("api", {"app": D1})]),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert (result.verdict, result.compared, result.unverified) == (
        ParityVerdict.UNVERIFIED,
        1,
        1,
    )


def test_match_by_label_pairs_differently_named_workloads() -> None:
    s = spec(workloads={"matchBy": "app.kubernetes.io/name"})
    label = "app.kubernetes.io/name"
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api-staging", image=f"r@{D1}", labels={label: "api"})]),
        objects(
            "prd",
            [
                deployment("api-prod", image=f"r@{D1}", labels={label: "api"}),
                deployment("unlabelled", image=f"r@{D2}"),
            ],
        ),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.IN_SYNC
    assert result.compared == 1


def test_workloads_sharing_a_match_value_are_unverified_not_guessed() -> None:
    s = spec(workloads={"matchBy": "app"})
    ref, tgt = envs(
        s,
        objects("stg", [deployment("a", image=f"r@{D1}", labels={"app": "x"})]),
        objects(
            "prd",
            [
                deployment("a", image=f"r@{D1}", labels={"app": "x"}),
                deployment("b", image=f"r@{D2}", labels={"app": "x"}),
            ],
        ),
    )
    result = judge([compare(ref, tgt)], 0.0)
    assert result.verdict == ParityVerdict.UNVERIFIED


def test_config_maps_differ_by_hash_and_secrets_never_show_plaintext() -> None:
    volumes = [
        {"name": "c", "configMap": {"name": "settings"}},
        {"name": "s", "secret": {"secretName": "creds"}},
    ]
    secret_ref = {"data": {"password": base64.b64encode(b"s3cr3t-reference").decode()}}
    secret_tgt = {"data": {"password": base64.b64encode(b"s3cr3t-target").decode()}}
    ref, tgt = envs(
        spec(),
        objects(
            "stg",
            [deployment("api", image=f"r@{D1}", volumes=volumes)],
            config_maps={"settings": {"data": {"batch": "batch-size-32"}}},
            secrets={"creds": secret_ref},
        ),
        objects(
            "prd",
            [deployment("api", image=f"r@{D1}", volumes=volumes)],
            config_maps={"settings": {"data": {"batch": "64"}}},
            secrets={"creds": secret_tgt},
        ),
    )
    result = judge([compare(ref, tgt)], 0.0)
    by_field = {d.field: d for d in result.differences}
    assert set(by_field) == {"configmap/settings", "secret/creds"}
    for difference in by_field.values():
        assert difference.reference is not None and difference.reference.startswith("hmac:")
        assert difference.target is not None and difference.target.startswith("hmac:")
        assert difference.reference != difference.target
    assert "s3cr3t" not in repr(result) and "batch-size" not in str(by_field["configmap/settings"])


def test_unread_secrets_with_the_same_name_are_in_sync_without_their_contents() -> None:
    volumes = [{"name": "s", "secret": {"secretName": "creds"}}]
    ref, tgt = envs(
        spec(),
        objects("stg", [deployment("api", image=f"r@{D1}", volumes=volumes)], secrets=None),
        objects("prd", [deployment("api", image=f"r@{D1}", volumes=volumes)], secrets=None),
    )
    secret_items = [i for i in (*ref.items, *tgt.items) if i.field.startswith("secret/")]
    assert [(i.field, i.value) for i in secret_items] == [("secret/creds", NOT_READ)] * 2
    result = judge([compare(ref, tgt)], 0.0)
    # The image only: a Secret whose contents were not read was not compared.
    assert (result.verdict, result.compared, result.differing) == (ParityVerdict.IN_SYNC, 1, 0)


def test_unread_secrets_do_not_dilute_the_drift_percentage() -> None:
    # One env var differs; three Secrets of the same names are mounted on both sides. Counted
    # as compared and equal, they took driftPercent from 50 % to 20 %, under a 30 % limit.
    volumes = [{"name": f"s{i}", "secret": {"secretName": f"creds-{i}"}} for i in range(3)]
    sp = spec(maxDriftPercent=30)
    ref, tgt = envs(
        sp,
        objects(
            "stg",
            [
                deployment(
                    "api", image=f"r@{D1}", env=[{"name": "MODE", "value": "a"}], volumes=volumes
                )
            ],
            secrets=None,
        ),
        objects(
            "prd",
            [
                deployment(
                    "api", image=f"r@{D1}", env=[{"name": "MODE", "value": "b"}], volumes=volumes
                )
            ],
            secrets=None,
        ),
    )
    outcome = judge_environments(sp, ref, [tgt], {})
    assert (outcome.fields["compared"], outcome.fields["differing"]) == (2, 1)
    assert outcome.verdict == ParityVerdict.DRIFTED


def _mounted(name: str) -> list[dict[str, Any]]:
    return [{"name": "creds", "secret": {"secretName": name}}]


def _projected(name: str) -> list[dict[str, Any]]:
    return [{"name": "creds", "projected": {"sources": [{"secret": {"name": name}}]}}]


def _env_from(workload: dict[str, Any], name: str) -> dict[str, Any]:
    workload["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"secretRef": {"name": name}}
    ]
    return workload


@pytest.mark.parametrize(
    "build",
    [
        lambda name: deployment("api", volumes=_mounted(name)),
        lambda name: deployment("api", volumes=_projected(name)),
        lambda name: _env_from(deployment("api"), name),
    ],
    ids=["volume", "projected", "envFrom"],
)
def test_unread_secrets_with_different_names_are_drift(build: Any) -> None:
    # Secrets not read (the operator's default): the names are known all the same, and a
    # differently named Secret is drift, as a differently named ConfigMap or secretKeyRef is.
    # (env off: the envFrom source's own item, envFrom/secretRef:NAME, is another test's.)
    sp = spec(compare={"env": False})
    ref, tgt = envs(
        sp,
        objects("stg", [build("db-staging-creds")], [pod("api", {"app": D1})], secrets=None),
        objects("prd", [build("db-other-team-creds")], [pod("api", {"app": D1})], secrets=None),
    )
    outcome = judge_environments(sp, ref, [tgt], {})
    assert outcome.verdict == ParityVerdict.DRIFTED
    assert (outcome.fields["compared"], outcome.fields["differing"]) == (3, 2)
    assert {(d["field"], d["reference"], d["target"]) for d in outcome.fields["differences"]} == {
        ("secret/db-other-team-creds", "<absent>", NOT_READ),
        ("secret/db-staging-creds", NOT_READ, "<absent>"),
    }


def test_annotations_come_from_workload_labels_or_template() -> None:
    key = "perfguard.dev/model-version"
    s = spec(compare={"annotations": [key]})
    ref, tgt = envs(
        s,
        objects("stg", [deployment("api", image=f"r@{D1}", annotations={key: "v2"})]),
        objects("prd", [deployment("api", image=f"r@{D1}", labels={key: "v1"})]),
    )
    (difference,) = judge([compare(ref, tgt)], 0.0).differences
    assert (difference.field, difference.reference, difference.target) == (
        f"annotation/{key}",
        "v2",
        "v1",
    )


@pytest.mark.parametrize(("differing", "verdict"), [(1, "InSync"), (3, "Drifted")])
def test_threshold_counts_items(differing: int, verdict: str) -> None:
    # 50 workloads × (1 image + 9 env vars) = 500 items.
    def namespace(name: str, changed: int) -> NamespaceObjects:
        workloads = []
        for w in range(50):
            env = [
                {"name": f"V{i}", "value": "changed" if w < changed and i == 0 else "same"}
                for i in range(9)
            ]
            workloads.append(deployment(f"w{w:02d}", image=f"r@{D1}", env=env))
        return objects(name, workloads)

    s = spec(maxDriftPercent=0.5)
    ref, tgt = envs(s, namespace("stg", 0), namespace("prd", differing))
    result = judge([compare(ref, tgt)], s.max_drift_percent)
    assert result.compared == 500
    assert result.differing == differing
    assert result.verdict == verdict
    assert len(result.differences) == differing  # listed even when within the limit


# -- status, conditions and Events ------------------------------------------------------


def _status(outcome: Any) -> dict[str, Any]:
    from perfguard.status import merge, to_wire

    return {
        **outcome.fields,
        "conditions": to_wire(merge([], outcome.conditions, generation=1)),
    }


def test_events_pair_up_across_unverified_evaluations() -> None:
    s = spec()
    drifted = envs(
        s,
        objects("stg", [deployment("api", image=f"r@{D1}")]),
        objects("prd", [deployment("api", image=f"r@{D2}")]),
    )
    fixed = envs(
        s,
        objects("stg", [deployment("api", image=f"r@{D1}")]),
        objects("prd", [deployment("api", image=f"r@{D1}")]),
    )
    first = judge_environments(s, drifted[0], [drifted[1]], {})
    assert [e.reason for e in first.events] == ["DriftDetected"]
    assert "api" in first.events[0].message and "image" in first.events[0].message
    again = judge_environments(s, drifted[0], [drifted[1]], _status(first))
    assert again.events == []
    outage = read_failed("NamespaceNotFound", "namespace prd does not exist", _status(first))
    assert outage.verdict == "Unverified"
    in_sync = {c.type: c for c in outage.conditions}["InSync"]
    assert (in_sync.status.value, in_sync.reason) == ("False", "DriftUnconfirmed")
    resolved = judge_environments(s, fixed[0], [fixed[1]], _status(outage))
    assert [e.reason for e in resolved.events] == ["DriftResolved"]
    quiet = judge_environments(s, fixed[0], [fixed[1]], _status(resolved))
    assert quiet.events == []


def test_status_caps_differences_at_50_with_the_total() -> None:
    s = spec()
    many = [deployment(f"w{i:03d}", image=f"r@{D1}") for i in range(80)]
    other = [deployment(f"w{i:03d}", image=f"r@{D2}") for i in range(80)]
    ref, tgt = envs(s, objects("stg", many), objects("prd", other))
    outcome = judge_environments(s, ref, [tgt], {})
    assert len(outcome.fields["differences"]) == 50
    assert outcome.fields["totalDifferences"] == 80
    assert outcome.fields["driftPercent"] == 100.0


def test_status_lists_stay_within_the_crd_bounds_with_many_targets() -> None:
    # A namespaceSelector matching 70 namespaces: 71 fingerprints would exceed the CRD's
    # maxItems and the API server would refuse the whole status patch.
    s = spec(targets=None, namespaceSelector={"matchLabels": {"env": "prod"}})
    workloads = [deployment(f"w{i}", image=f"r@{D1}") for i in range(3)]
    drifted = [deployment(f"w{i}", image=f"r@{D2}") for i in range(3)]
    reference = environment(objects("stg", workloads), s, HASHER)
    targets = [environment(objects(f"prod-{i:02d}", drifted), s, HASHER) for i in range(70)]
    outcome = judge_environments(s, reference, targets, {})
    listed = [f["namespace"] for f in outcome.fields["fingerprints"]]
    assert listed == ["stg"] + [f"prod-{i:02d}" for i in range(64)]
    assert outcome.fields["omittedFingerprints"] == 6
    assert outcome.fields["totalDifferences"] == 210
    status = EnvParityStatus.model_validate(outcome.fields)  # the CRD's bounds, in the model
    assert status.fingerprints is not None and status.differences is not None
    assert len(status.differences) == 50

    few = judge_environments(s, reference, targets[:64], {})
    assert len(few.fields["fingerprints"]) == 65
    assert few.fields["omittedFingerprints"] is None  # removed from status


def test_nothing_to_compare_is_unverified() -> None:
    s = spec()
    ref, tgt = envs(s, objects("stg", []), objects("prd", []))
    outcome = judge_environments(s, ref, [tgt], {})
    assert outcome.verdict == "Unverified"
    assert outcome.fields["reason"] == "NothingCompared"
    assert (
        "no workloads of kinds Deployment, StatefulSet, DaemonSet matched in stg, prd"
        in (outcome.fields["message"])
    )


@pytest.mark.parametrize(
    ("compare_spec", "why"),
    [
        # The Secret is read by name only, and is the same on both sides.
        ({"images": False, "env": False}, "their only items are Secrets whose contents"),
        # Annotations nobody carries.
        (
            {"images": False, "env": False, "config": False, "annotations": ["a/b"]},
            "spec.compare and spec.ignore leave none",
        ),
    ],
)
def test_nothing_compared_says_workloads_matched_when_they_did(
    compare_spec: dict[str, Any], why: str
) -> None:
    s = spec(compare=compare_spec)
    workload = _env_from(deployment("api"), "db-creds")
    ref, tgt = envs(s, objects("stg", [workload]), objects("prd", [workload]))
    outcome = judge_environments(s, ref, [tgt], {})
    assert outcome.fields["reason"] == "NothingCompared"
    message = outcome.fields["message"]
    assert "no workloads" not in message
    assert "matched (stg: 1, prd: 1) but gave no item to compare" in message
    assert why in message
