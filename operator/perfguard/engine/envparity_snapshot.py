"""Turn one namespace's API objects into EnvParity items (pure: dicts in, items out).

What an item's value is:

- image: the digest the running pods report (`status.containerStatuses[].imageID`, init
  containers too). Pods are the workload's by its label selector, so pods of an old
  ReplicaSet still running during a rollout are included: two digests running at once are
  reported as both ("mid-rollout"), not averaged away. Without a reporting pod, a digest
  pinned in the image reference; otherwise unresolved.
- env/NAME: a literal value, or what a `valueFrom` references (`configMapKeyRef:cm/key`),
  so environment-specific values such as `fieldRef:metadata.namespace` compare equal.
  Values are compared whole; a long one is shown cut, with a keyed hash of the whole (in
  a domain of its own, see `Hasher`).
- envFrom/SOURCE: each `envFrom` source of a container, by what it is: the object it reads
  and the prefix (`configMapRef:NAME prefix=P_`), valued `required` or `optional`. Listing
  order alone changes nothing: sources that give no name in common can come in any order.
- envFrom/order: the order of the sources that give a variable name another source gives
  too (the later one wins it), when their keys are known (ConfigMaps; Secrets only when
  read). No such overlap known: no item.
- configmap/NAME, secret/NAME: a keyed hash (HMAC) of the object's canonical content, in
  the domain of its kind; the content itself never leaves this module. The name is part of
  the item, so a workload that references a differently named object differs (against
  "<absent>"). When Secrets are not read, secret/NAME is still an item, valued
  "<contents not read>": names compared, contents not.
- annotation/KEY: the workload's annotation, else its label, else the pod template's.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

from perfguard.analysis.parity import ABSENT, NOT_READ, Environment, Item, WorkloadKey
from perfguard.api.envparity import EnvParitySpec, IgnoreSpec

Hasher = Callable[[str, bytes], str]
"""Keyed hash of (domain, bytes) -> printable digest (e.g. 'hmac:…').

Each use hashes in its own domain, under a key of its own: a digest shown for a literal
value must never equal the hash of a Secret (or ConfigMap) whose content is those bytes,
or whoever can set an env value in a compared namespace could confirm guesses of a
Secret's content by reading status."""

CONFIGMAP_CONTENT = "configmap content"
SECRET_CONTENT = "secret content"
SHOWN_VALUE = "shown value"

MISSING = "<missing>"
# NOT_READ (from parity) is a referenced Secret's value when Secrets are not read: the
# reference (by name) is still compared, so a workload using a differently named Secret
# differs; its contents are not, and the same name on both sides is not counted as compared.
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_SHOWN = 256


@dataclass(frozen=True)
class NamespaceObjects:
    """What one namespace holds, as the API returned it (plain dicts)."""

    namespace: str
    workloads: Sequence[Mapping[str, Any]]  # each with "kind" set
    pods: Sequence[Mapping[str, Any]]
    config_maps: Mapping[str, Mapping[str, Any]]
    secrets: Mapping[str, Mapping[str, Any]] | None  # None: Secrets are not read


def digest_of(reference: str | None) -> str | None:
    """The sha256 digest in an image reference or a reported imageID, if any."""
    if not reference:
        return None
    found = _DIGEST.findall(reference)
    return found[-1] if found else None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label selector semantics; an empty or missing selector matches nothing
    here (a workload without a selector owns no pods)."""
    if not selector:
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in expressions:
        key = expression.get("key", "")
        operator = expression.get("operator")
        values = set(expression.get("values") or [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def canonical_content(obj: Mapping[str, Any], *, secret: bool) -> bytes:
    """A stable byte encoding of a ConfigMap's or Secret's content (keys sorted,
    length-prefixed so that no two contents encode alike)."""
    parts: list[tuple[str, str, bytes]] = []
    for key, value in (obj.get("data") or {}).items():
        raw = base64.b64decode(value) if secret else str(value).encode()
        parts.append(("data", key, raw))
    for key, value in (obj.get("binaryData") or {}).items():
        parts.append(("binaryData", key, base64.b64decode(value)))
    out = bytearray()
    for section, key, raw in sorted(parts):
        for chunk in (section.encode(), key.encode(), raw):
            out += len(chunk).to_bytes(8, "big") + chunk
    return bytes(out)


def _ignored(name: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _short(value: str) -> str:
    return value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 1] + "…"


def shown_value(value: str, hasher: Hasher) -> str | None:
    """What status shows for a compared text value: None (the value itself) when it is
    short; else its start and a keyed hash of the whole, so two values that differ only
    after the cut still read as different (the value compared is always the whole)."""
    if len(value) <= _MAX_SHOWN:
        return None
    return f"{_short(value)} ({hasher(SHOWN_VALUE, value.encode())})"


def env_value(entry: Mapping[str, Any]) -> str:
    """The whole value compared for an env entry (shortened only for display, see
    `shown_value`)."""
    if "valueFrom" not in entry or entry.get("valueFrom") is None:
        return str(entry.get("value") or "")
    source = entry["valueFrom"]
    for kind in ("configMapKeyRef", "secretKeyRef"):
        if kind in source:
            ref = source[kind] or {}
            return f"{kind}:{ref.get('name', '')}/{ref.get('key', '')}{_optional(ref)}"
    if "fieldRef" in source:
        return f"fieldRef:{(source['fieldRef'] or {}).get('fieldPath', '')}"
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"] or {}
        value = f"resourceFieldRef:{ref.get('containerName', '')}/{ref.get('resource', '')}"
        # The divisor scales what the container reads (4096 with 1Mi, 4 with 1Gi). Unset,
        # the API server serves it as "0" (a Quantity is never omitted), which the kubelet
        # reads as 1: "0", "1" and unset are the same divisor. The API server writes other
        # quantities in canonical form, so they compare as served.
        divisor = str(ref.get("divisor") or "")
        return value if _unit_divisor(divisor) else f"{value} divisor={divisor}"
    return "valueFrom:" + ",".join(sorted(source))


_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_SUFFIXES = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate("kMGTPE")},
    **{s: Decimal(1000) ** -(i + 1) for i, s in enumerate("mun")},
}
_EXACT = Context(prec=200, Emax=MAX_EMAX, Emin=MIN_EMIN)


def quantity(text: str) -> Decimal | None:
    """A Kubernetes quantity's value ("1Mi" -> 1048576, "1000m" -> 1), None if not one."""
    found = _QUANTITY.fullmatch(text)
    if found is None:
        return None
    value = Decimal(found["number"])
    try:
        if found["suffix"]:
            return _EXACT.multiply(value, _SUFFIXES[found["suffix"]])
        if found["exponent"]:
            return _EXACT.scaleb(value, int(found["exponent"]))
    except (ArithmeticError, ValueError):  # an exponent beyond Decimal's (or int's) range
        return None
    return value


def _unit_divisor(divisor: str) -> bool:
    """Whether a resourceFieldRef divisor divides by 1: unset, 0 (how the API server
    serves an unset one) or any spelling of 1 ("1.0", "1000m")."""
    return not divisor or quantity(divisor) in (0, 1)


def _optional(ref: Mapping[str, Any]) -> str:
    # An optional reference lets the pod start without the object; a required one does not.
    return " optional=true" if ref.get("optional") else ""


def env_from_source(source: Mapping[str, Any]) -> tuple[str, bool]:
    """An `envFrom` source's identity (the object it reads and the prefix its variables'
    names get) and whether the object may be missing."""
    for kind in ("configMapRef", "secretRef"):
        if source.get(kind):
            ref = source[kind]
            identity, optional = f"{kind}:{ref.get('name', '')}", bool(ref.get("optional"))
            break
    else:
        identity = "envFrom:" + ",".join(sorted(k for k in source if k != "prefix"))
        optional = False
    prefix = source.get("prefix")
    return (f"{identity} prefix={prefix}" if prefix else identity), optional


def env_from_items(
    key: WorkloadKey,
    container: Mapping[str, Any],
    names_of: Callable[[Mapping[str, Any]], frozenset[str] | None],
    ignore_env: Sequence[str],
    hasher: Hasher,
) -> list[Item]:
    """A container's `envFrom` items: one per source, keyed by the source's identity (so a
    source added or removed is one difference, and a reordering none), and one for the
    order of the sources whose variables overlap, if any overlap is known.

    `names_of(source)` is the variable names a source gives (its keys with the prefix), or
    None when its keys are not known (a Secret not read): order is then not claimed.
    Names the container's own `env` sets (they win over every source) or that
    `ignore_env` leaves out do not make an overlap.
    """
    container_name = str(container.get("name", ""))
    own = {str(e.get("name", "")) for e in container.get("env") or []}
    listed: dict[str, list[str]] = {}
    given: list[tuple[str, frozenset[str]]] = []  # (identity, names), known names only
    for source in container.get("envFrom") or []:
        identity, optional = env_from_source(source)
        listed.setdefault(identity, []).append("optional" if optional else "required")
        names = names_of(source)
        if names is not None:
            given.append(
                (identity, frozenset(n for n in names - own if not _ignored(n, ignore_env)))
            )
    items = [
        # The same source listed twice is one item, valued e.g. "required,required".
        Item(key, container_name, f"envFrom/{identity}", ",".join(kinds))
        for identity, kinds in listed.items()
    ]
    overlapping = [
        identity
        for identity, names in given
        if any(other != identity and names & theirs for other, theirs in given)
    ]
    if overlapping:
        order = ", ".join(overlapping)
        items.append(
            Item(
                key,
                container_name,
                "envFrom/order",
                order,
                display=shown_value(order, hasher),
            )
        )
    return items


def config_references(
    pod_spec: Mapping[str, Any], ignore: IgnoreSpec | None = None
) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) a pod template mounts, projects or references.

    What `ignore` leaves out contributes nothing: the envFrom and valueFrom of an ignored
    container, the valueFrom of an ignored env var, and a volume that only ignored
    containers mount. A volume no container mounts still counts: the pod does not start
    without its object (unless optional), whoever reads it.
    """
    ignore = ignore or IgnoreSpec()
    config_maps: set[str] = set()
    secrets: set[str] = set()
    kept: list[Mapping[str, Any]] = []
    ignored: list[Mapping[str, Any]] = []
    for container in _containers(pod_spec):
        name = str(container.get("name", ""))
        (ignored if _ignored(name, ignore.containers) else kept).append(container)
    only_ignored = _mounted(ignored) - _mounted(kept)
    for volume in pod_spec.get("volumes") or []:
        if volume.get("name") in only_ignored:
            continue
        if volume.get("configMap"):
            config_maps.add(volume["configMap"].get("name", ""))
        if volume.get("secret"):
            secrets.add(volume["secret"].get("secretName", ""))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("configMap"):
                config_maps.add(source["configMap"].get("name", ""))
            if source.get("secret"):
                secrets.add(source["secret"].get("name", ""))
    for container in kept:
        for source in container.get("envFrom") or []:
            if source.get("configMapRef"):
                config_maps.add(source["configMapRef"].get("name", ""))
            if source.get("secretRef"):
                secrets.add(source["secretRef"].get("name", ""))
        for entry in container.get("env") or []:
            if _ignored(str(entry.get("name", "")), ignore.env):
                continue
            value_from = entry.get("valueFrom") or {}
            if value_from.get("configMapKeyRef"):
                config_maps.add(value_from["configMapKeyRef"].get("name", ""))
            if value_from.get("secretKeyRef"):
                secrets.add(value_from["secretKeyRef"].get("name", ""))
    config_maps.discard("")
    secrets.discard("")
    return config_maps, secrets


def _mounted(containers: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the volumes these containers mount."""
    return {
        str(mount.get("name", ""))
        for container in containers
        for mount in container.get("volumeMounts") or []
    }


class PodIndex:
    """Pods by label, so matching W workloads' selectors against P pods costs about
    W × (pods per workload) instead of W × P (measured: 75 % of an evaluation of 200
    workloads with 400 pods went into scanning every pod for every workload)."""

    def __init__(self, pods: Sequence[Mapping[str, Any]]) -> None:
        self._pods = pods
        self._labels = [(p.get("metadata") or {}).get("labels") or {} for p in pods]
        self._by_label: dict[tuple[str, str], list[int]] = {}
        for index, labels in enumerate(self._labels):
            for item in labels.items():
                self._by_label.setdefault(item, []).append(index)

    def select(self, selector: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        match_labels = (selector or {}).get("matchLabels") or {}
        if match_labels:
            lists: list[list[int]] = [
                self._by_label.get((k, str(v)), []) for k, v in match_labels.items()
            ]
            smallest = min(lists, key=len)
            candidates: Iterable[int] = smallest
        else:
            candidates = range(len(self._pods))
        return [self._pods[i] for i in candidates if selector_matches(selector, self._labels[i])]


def _unresolved_ref(ref: Mapping[str, Any]) -> str:
    kind, name = ref.get("kind"), ref.get("name")
    if kind != "Deployment":
        return f"workloadRef {kind}/{name}: only a Deployment is resolved"
    return f"workloadRef {kind}/{name} not found"


def _containers(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]


def _reported_digests(pods: Iterable[Mapping[str, Any]]) -> dict[str, Counter[str]]:
    """Container name -> digest -> number of live pods reporting it."""
    found: dict[str, Counter[str]] = {}
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            continue
        for entry in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            digest = digest_of(entry.get("imageID"))
            if digest:
                found.setdefault(entry.get("name", ""), Counter())[digest] += 1
    return found


def _abbreviated(digest: str) -> str:
    return digest[: len("sha256:") + 12]


def image_item(
    key: WorkloadKey, container: Mapping[str, Any], reported: Counter[str] | None
) -> Item:
    name = str(container.get("name", ""))
    image = str(container.get("image", ""))
    if reported:
        digests = sorted(reported)
        value = ",".join(digests)
        if len(digests) == 1:
            return Item(key, name, "image", value, display=f"{digests[0]} ({_short(image)})")
        counts = ", ".join(f"{_abbreviated(d)} on {reported[d]} pod(s)" for d in digests)
        return Item(
            key,
            name,
            "image",
            value,
            display=counts,
            note=f"mid-rollout: {len(digests)} digests running",
        )
    pinned = digest_of(image)
    if pinned:
        return Item(key, name, "image", pinned, display=f"{pinned} (pinned in spec)")
    return Item(key, name, "image", None, display=f"{_short(image)} (no digest)")


def _annotation(workload: Mapping[str, Any], key: str) -> str | None:
    meta = workload.get("metadata") or {}
    template = ((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}
    for source in (
        meta.get("annotations"),
        meta.get("labels"),
        template.get("annotations"),
        template.get("labels"),
    ):
        if source and key in source:
            return str(source[key])
    return None


def workload_key(workload: Mapping[str, Any], match_by: str) -> WorkloadKey | None:
    meta = workload.get("metadata") or {}
    kind = str(workload.get("kind", ""))
    if match_by == "name":
        return WorkloadKey(kind, str(meta.get("name", "")))
    value = (meta.get("labels") or {}).get(match_by)
    return None if value is None else WorkloadKey(kind, str(value))


def environment(objects: NamespaceObjects, spec: EnvParitySpec, hasher: Hasher) -> Environment:
    """The namespace's compared items, per the spec's `compare` and `ignore` lists."""
    workloads: dict[WorkloadKey, str] = {}
    items: list[Item] = []
    seen: Counter[WorkloadKey] = Counter()
    keyed = []
    for workload in objects.workloads:
        key = workload_key(workload, spec.workloads.match_by)
        if key is not None:
            seen[key] += 1
            keyed.append((key, workload))
    hashes: dict[tuple[str, str], str] = {}
    pods_by_label = PodIndex(objects.pods)

    def content_hash(kind: str, name: str) -> str:
        if (kind, name) not in hashes:
            source = objects.config_maps if kind == "configmap" else (objects.secrets or {})
            found = source.get(name)
            secret = kind == "secret"
            hashes[(kind, name)] = (
                MISSING
                if found is None
                else hasher(
                    SECRET_CONTENT if secret else CONFIGMAP_CONTENT,
                    canonical_content(found, secret=secret),
                )
            )
        return hashes[(kind, name)]

    def variable_names(source: Mapping[str, Any]) -> frozenset[str] | None:
        """The names an envFrom source gives, if its object's keys were read: ConfigMaps
        when config is compared, Secrets when they are read. A missing object gives none."""
        if not spec.compare.config:
            return None
        if source.get("configMapRef"):
            found = objects.config_maps.get(str(source["configMapRef"].get("name", "")))
        elif source.get("secretRef") and objects.secrets is not None:
            found = objects.secrets.get(str(source["secretRef"].get("name", "")))
        else:
            return None
        prefix = str(source.get("prefix") or "")
        # The kubelet takes `data` only (a ConfigMap's binaryData gives no variables).
        return frozenset(prefix + str(k) for k in ((found or {}).get("data") or {}))

    for key, workload in sorted(keyed, key=lambda pair: (pair[0], _name(pair[1]))):
        name = _name(workload)
        if seen[key] > 1:
            # Two workloads share the matchBy value: which one pairs with the other side
            # is a guess, so the pairing itself is reported as unresolved.
            if key not in workloads:
                workloads[key] = name
                items.append(
                    Item(key, None, "workload", None, display=f"{seen[key]} workloads share it")
                )
            continue
        workloads[key] = name
        spec_ = workload.get("spec") or {}
        pod_spec = (spec_.get("template") or {}).get("spec") or {}
        if not _containers(pod_spec):
            # E.g. a Rollout whose workloadRef names no Deployment here: nothing to compare
            # is not the same as nothing differing.
            ref = spec_.get("workloadRef")
            items.append(
                Item(
                    key,
                    None,
                    "workload",
                    None,
                    display=_unresolved_ref(ref) if isinstance(ref, dict) else "no pod template",
                )
            )
            continue
        containers = [
            c
            for c in _containers(pod_spec)
            if not _ignored(str(c.get("name", "")), spec.ignore.containers)
        ]
        if spec.compare.images:
            reported = _reported_digests(pods_by_label.select(spec_.get("selector")))
            items.extend(
                image_item(key, c, reported.get(str(c.get("name", "")))) for c in containers
            )
        if spec.compare.env:
            for container in containers:
                items.extend(
                    env_from_items(key, container, variable_names, spec.ignore.env, hasher)
                )
                for entry in container.get("env") or []:
                    env_name = str(entry.get("name", ""))
                    if _ignored(env_name, spec.ignore.env):
                        continue
                    value = env_value(entry)
                    items.append(
                        Item(
                            key,
                            str(container.get("name", "")),
                            f"env/{env_name}",
                            value,
                            display=shown_value(value, hasher),
                        )
                    )
        if spec.compare.config:
            config_maps, secrets = config_references(pod_spec, spec.ignore)
            for cm in sorted(config_maps):
                items.append(Item(key, None, f"configmap/{cm}", content_hash("configmap", cm)))
            for secret in sorted(secrets):
                # Not reading Secrets hides their contents, not which Secrets a workload
                # uses: the name stays part of the item, as for ConfigMaps and secretKeyRef.
                held = NOT_READ if objects.secrets is None else content_hash("secret", secret)
                items.append(Item(key, None, f"secret/{secret}", held))
        for annotation in spec.compare.annotations:
            carried = _annotation(workload, annotation)
            if carried is not None:
                items.append(
                    Item(
                        key,
                        None,
                        f"annotation/{annotation}",
                        carried,
                        display=shown_value(carried, hasher),
                    )
                )
    return Environment(objects.namespace, workloads, tuple(items))


def _name(workload: Mapping[str, Any]) -> str:
    return str((workload.get("metadata") or {}).get("name", ""))


__all__ = [
    "ABSENT",
    "CONFIGMAP_CONTENT",
    "MISSING",
    "NOT_READ",
    "SECRET_CONTENT",
    "SHOWN_VALUE",
    "Hasher",
    "NamespaceObjects",
    "canonical_content",
    "config_references",
    "digest_of",
    "env_from_items",
    "env_from_source",
    "env_value",
    "environment",
    "image_item",
    "selector_matches",
    "shown_value",
    "workload_key",
]


def keyed_hasher(key: bytes) -> Hasher:
    """HMAC-SHA256 under a key derived from the installation's for each domain, shortened
    to 64 bits for display: enough to tell contents apart, and a low-entropy secret cannot
    be guessed without the key. The same bytes hash differently in two domains."""
    keys: dict[str, bytes] = {}

    def digest(domain: str, content: bytes) -> str:
        if domain not in keys:
            label = b"perfguard envparity " + domain.encode()
            keys[domain] = hmac.new(key, label, hashlib.sha256).digest()
        return "hmac:" + hmac.new(keys[domain], content, hashlib.sha256).hexdigest()[:16]

    return digest
