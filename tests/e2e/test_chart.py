"""The Helm chart with the real helm binary, and its RBAC and install against a real apiserver.

What each test proves is in its name and docstring. Rendering tests need only helm; the RBAC
and install tests use the session's kube-apiserver (RBAC enforced, no kubelet).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.local.binaries import binary
from tests.e2e.cluster import Cluster

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "perfguard"
PEERING_CRDS = CHART / "charts" / "kopf-peering" / "crds" / "kopf.dev_peerings.yaml"
ARGO_ROLLOUTS_CRD = REPO / "tests" / "e2e" / "manifests" / "argo-rollouts-crd.yaml"

# Every optional feature on: what `helm lint` and `helm template` must also accept.
EVERYTHING_ON: dict[str, Any] = {
    "replicaCount": 2,
    "watchNamespaces": [],
    "envParity": {"compareSecrets": True},
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    "prometheusRule": {"enabled": True, "additionalAlertLabels": {"team": "platform"}},
    "grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "Platform"}},
    "podDisruptionBudget": {"enabled": True},
    "networkPolicy": {
        "enabled": True,
        "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}],
        "egress": [{}],
    },
    "argoRollouts": {"analysisTemplates": {"enabled": True}, "namespaces": ["ml-prod"]},
}


def helm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary("helm")), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def _values_file(values: dict[str, Any] | None) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)  # noqa: SIM115
    with handle:
        yaml.safe_dump(values or {}, handle)
    return handle.name


def render_text(
    values: dict[str, Any] | None = None,
    *,
    release: str = "perfguard",
    namespace: str = "perfguard-system",
    extra: Iterable[str] = (),
) -> str:
    result = helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "-f",
        _values_file(values),
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render_text(values, **kwargs)) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(docs, "Deployment")
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


# ----------------------------------------------------------------- lint and render


def test_helm_lint_passes_with_defaults_and_with_everything_on() -> None:
    for values in ({}, EVERYTHING_ON):
        result = helm("lint", str(CHART), "--strict", "-f", _values_file(values))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 chart(s) failed" in result.stdout


def test_defaults_render_the_operator_and_nothing_optional() -> None:
    docs = render()
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "CustomResourceDefinition",
            "Deployment",
            "Role",
            "RoleBinding",
            "Secret",
            "Service",
            "ServiceAccount",
        ]
    )
    assert "PERFGUARD_PEERING" not in env_of(docs)


def test_everything_on_renders_every_optional_object() -> None:
    docs = render(EVERYTHING_ON)
    kinds = {d["kind"] for d in docs}
    for kind in (
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ClusterAnalysisTemplate",
        "ClusterKopfPeering",
    ):
        assert kind in kinds, kind
    dashboard = one(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["perfguard.json"])["uid"] == "perfguard-overview"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0] == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
        "scrapeTimeout": "10s",
        "honorLabels": True,
    }
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    policy = one(docs, "NetworkPolicy")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_prometheus_rule_without_the_service_monitor_needs_an_operator_selector() -> None:
    """PerfguardOperatorDown selects the ServiceMonitor's target (job=<fullname>, namespace):
    alone, the PrometheusRule would alert forever, so the chart refuses it, saying what to do."""
    result = helm("template", "pg", str(CHART), "-n", "ops", "--set", "prometheusRule.enabled=true")
    assert result.returncode != 0, "a PrometheusRule whose OperatorDown can never resolve"
    assert "prometheusRule.enabled=true needs serviceMonitor.enabled=true" in result.stderr
    assert 'job="pg-perfguard", namespace="ops"' in result.stderr
    assert "set prometheusRule.operatorSelector" in result.stderr

    def operator_down(values: dict[str, Any]) -> str:
        rule = one(render(values, release="pg", namespace="ops"), "PrometheusRule")
        rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
        expr: str = next(r for r in rules if r.get("alert") == "PerfguardOperatorDown")["expr"]
        return expr

    own_job = {"prometheusRule": {"enabled": True, "operatorSelector": 'job="perfguard-own"'}}
    assert operator_down(own_job) == 'absent(up{job="perfguard-own"} == 1)'
    with_monitor = {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    assert operator_down(with_monitor) == 'absent(up{job="pg-perfguard", namespace="ops"} == 1)'


# ----------------------------------------------------------------- names

# Every object the chart renders, in one namespace, so that namespaced names meet as well.
EVERY_OBJECT: dict[str, Any] = EVERYTHING_ON | {
    "watchNamespaces": ["ops"],
    "argoRollouts": {"analysisTemplates": {"enabled": True}, "namespaces": ["ops"]},
}
DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# The objects named after the full name with a suffix, uncut (these kinds take names of up
# to 253 characters; cutting them renamed objects on upgrade).
SUFFIXED = [
    ("Role", "-hash-key"),
    ("RoleBinding", "-hash-key"),
    ("Role", "-peering"),
    ("RoleBinding", "-peering"),
    ("ConfigMap", "-dashboard"),
    ("ClusterAnalysisTemplate", "-perfbaseline"),
    ("ClusterAnalysisTemplate", "-envparity"),
    ("ClusterAnalysisTemplate", "-perfbaseline-prometheus"),
]


def _cut(fullname: str, suffix: str) -> str:
    """`<fullname><suffix>` cut to 63 characters, as the hash-key Secret and the analysis
    ClusterRole have always been named."""
    return (fullname + suffix)[:63].removesuffix("-")


def _analysis_reader(fullname: str) -> str:
    """The analysis ClusterRole's name: cut to 63, unless that cut is the full name itself
    (a 62-63 character one), where the full name is cut to make room for the suffix."""
    name = _cut(fullname, "-analysis-reader")
    return name if name != fullname else fullname[:47].rstrip("-") + "-analysis-reader"


@pytest.mark.parametrize(
    ("release", "fullname"),
    [
        pytest.param("r" * 53, "r" * 53 + "-perfguard", id="release-53"),
        pytest.param("perfguard", "perfguard", id="perfguard"),
    ]
    + [pytest.param("pg", "p" * n, id=f"override-{n}") for n in (40, 47, 48, 54, 55, 56, 62, 63)],
)
def test_every_object_has_a_name_of_its_own(release: str, fullname: str) -> None:
    """No two objects of a kind in a namespace share a name, every name is one its kind
    takes, and names stay what they were: a 62-63 character full name (a 53-character
    release name, the longest Helm takes, or a long fullnameOverride) cut
    `<fullname>-analysis-reader` to the full name itself, and the analysis ClusterRole
    replaced the operator's; only that name now cuts the full name instead. Every reference
    follows the name it refers to."""
    values = EVERY_OBJECT if release != "pg" else EVERY_OBJECT | {"fullnameOverride": fullname}
    docs = [
        d
        for d in render(values, release=release, namespace="ops")
        if d["kind"] != "CustomResourceDefinition"
    ]
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
    for kind, _, name in keys:
        assert len(name) <= 253 and DNS_1123_SUBDOMAIN.fullmatch(name), f"{kind} {name}"
    assert one(docs, "Service")["metadata"]["name"] == fullname
    assert one(docs, "ClusterRole", fullname)["rules"][0]["resources"][0] == "perfbaselines"
    for kind, suffix in SUFFIXED:
        one(docs, kind, fullname + suffix)
    reader = one(docs, "ClusterRole", _analysis_reader(fullname))
    assert (
        reader["rules"][0]["resources"]
        != one(docs, "ClusterRole", fullname)["rules"][0]["resources"]
    )
    for binding in by_kind(docs, "RoleBinding") + by_kind(docs, "ClusterRoleBinding"):
        ref = binding["roleRef"]
        role = one(docs, ref["kind"], ref["name"])
        assert role["metadata"].get("namespace") in (None, binding["metadata"].get("namespace"))
    secret = _cut(fullname, "-hash-key")
    one(docs, "Secret", secret)
    assert env_of(docs)["PERFGUARD_HASH_KEY_SECRET"] == f"ops/{secret}"
    role = one(docs, "Role", fullname + "-hash-key")
    assert role["rules"][0]["resourceNames"] == [secret]


DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("release", "service"),
    [
        ("pg", "pg-perfguard"),
        ("perfguard", "perfguard"),
        ("pg-1", "pg-1-perfguard"),
        ("ml-perfguard", "ml-perfguard"),
        ("ml-perfguard.v2", None),
        ("1pg", None),
        ("pg.prod", None),
        ("2024-perfguard", None),
    ],
)
def test_a_release_name_that_cannot_name_the_service_is_refused(
    release: str, service: str | None
) -> None:
    """Helm takes release names (DNS-1123 subdomains: a leading digit, dots) that make a
    full name the Service cannot have (a DNS-1035 label); the API server would refuse it
    half-way through `helm install`. The chart refuses such a release at render time, naming
    fullnameOverride and a name that works; a release whose full name is a label renders."""
    result = helm("template", release, str(CHART), "-n", "ops")
    if service is not None:
        assert result.returncode == 0, result.stderr
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        assert one(docs, "Service")["metadata"]["name"] == service
        return
    assert result.returncode != 0, f"release {release!r} was accepted"
    assert "is not a DNS-1035 label" in result.stderr, result.stderr
    match = re.search(
        r"set fullnameOverride to one, e\.g\. --set fullnameOverride=(\S+)", result.stderr
    )
    assert match, result.stderr
    docs = render({"fullnameOverride": match.group(1)}, release=release, namespace="ops")
    assert DNS_1035_LABEL.fullmatch(one(docs, "Service")["metadata"]["name"])


def _string_values(names: list[str]) -> dict[str, Any]:
    """Values putting the given names (in order) wherever the chart writes a string from its
    values: namespaces, object and ServiceAccount names, labels."""
    n = iter(names)
    return {
        "nameOverride": next(n),
        "fullnameOverride": "pg",
        "replicaCount": 2,
        "watchNamespaces": [next(n), next(n)],
        "peering": {"name": next(n)},
        "priorityClassName": next(n),
        "serviceAccount": {"name": next(n)},
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, **{alert: {"severity": next(n)} for alert in ALERTS}},
        "grafanaDashboard": {"enabled": True, "namespace": next(n)},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "argoRollouts": {
            "analysisTemplates": {"enabled": True},
            "namespaces": [next(n)],
            "serviceAccountName": next(n),
            "tokenSecretName": next(n),
        },
    }


def _scalar_types(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _scalar_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_scalar_types(v) for v in node]
    return type(node).__name__


def test_strings_from_the_values_stay_strings_whatever_yaml_would_read_in_them() -> None:
    """A value the schema takes as a string but YAML reads as something else (`2024`, `on`,
    `true`, `null`, `1.5`), written unquoted, became a number, a boolean or null in the
    manifest: a namespace `2024` or `on` (watchNamespaces, argoRollouts.namespaces), a
    severity label `1`, which the API server and Prometheus refuse (label values and names
    are strings). The chart quotes every string it writes: rendered with such values, every
    field has the type it has when rendered with plain names, and holds the string given."""
    yaml_reads_otherwise = ["4711", "2024", "on", "2029", "4712", "4713"]
    yaml_reads_otherwise += ["1", "true", "null", "off", "1.5", "~", "yes", "0x1F"][: len(ALERTS)]
    yaml_reads_otherwise += ["2028", "2025", "4714", "4715"]
    plain = [f"name-{i}" for i in range(len(yaml_reads_otherwise))]
    tricky_docs = render(_string_values(yaml_reads_otherwise), release="2027", namespace="2026")
    plain_docs = render(_string_values(plain), release="rel", namespace="ops")
    assert [d["kind"] for d in tricky_docs] == [d["kind"] for d in plain_docs]
    for tricky, plain_doc in zip(tricky_docs, plain_docs, strict=True):
        assert _scalar_types(tricky) == _scalar_types(plain_doc), (
            f"{tricky['kind']} {tricky['metadata']['name']}"
        )
    namespaces = {d["metadata"].get("namespace") for d in tricky_docs} - {None}
    assert namespaces == {"2026", "2024", "on", "2028", "2025"}
    rule = one(tricky_docs, "PrometheusRule")
    severities = [r["labels"]["severity"] for g in rule["spec"]["groups"] for r in g["rules"]
                  if "alert" in r]  # fmt: skip
    assert severities == yaml_reads_otherwise[6 : 6 + len(ALERTS)]
    assert one(tricky_docs, "Deployment")["metadata"]["labels"]["app.kubernetes.io/instance"] == (
        "2027"
    )


# ----------------------------------------------------------------- values and schema


@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("replicaCount=two", "replicaCount"),
        ("envParity.compareSecrets=yes", "compareSecrets"),
        ("crds.keep=sometimes", "keep"),
        ("http.port=99999", "port"),
        ("prometheus.url=prometheus:9090", "url"),
        ("watchNamespaces[0]=Not_A_Namespace", "watchNamespaces"),
        ("logging.level=LOUD", "level"),
        ("statusRefresh=5 minutes", "statusRefresh"),
        ("replicaCoutn=2", "replicaCoutn"),
        ("argoRollouts.analysisTemplates.count=0", "count"),
    ],
)
def test_schema_rejects_wrong_values_with_a_clear_message(flag: str, field: str) -> None:
    _, _, value = flag.partition("=")
    option = "--set-string" if not value.isdigit() else "--set"
    result = helm("template", "x", str(CHART), option, flag)
    assert result.returncode != 0, f"{flag} was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


@pytest.mark.parametrize(
    "name", ["perfguard", "pg.ops-1", "", "a..b", "a.-b", "b-.c", "-a", "A", "a" * 254]
)
def test_schema_takes_the_peering_names_perfguard_run_takes(name: str) -> None:
    """helm must not install a peering name `perfguard run` refuses at start (a DNS-1123
    subdomain): the operator would crash-loop on a values file helm accepted. Empty means
    the release's name."""
    from perfguard.config import parse_peering

    try:
        parse_peering(name)
        run_takes = True
    except ValueError:
        run_takes = False
    result = helm("template", "x", str(CHART), "--set-string", f"peering.name={name}")
    assert (result.returncode == 0) == (run_takes or name == ""), result.stderr
    if result.returncode != 0:
        assert "values don't meet the specifications of the schema" in result.stderr


def _values_at(path: str, value: Any) -> dict[str, Any]:
    """The values file setting only `path` ("a.b") to `value`."""
    *parents, last = path.split(".")
    values: dict[str, Any] = {last: value}
    for key in reversed(parents):
        values = {key: values}
    return values


# The variable each value becomes in the operator's container, written the way
# templates/deployment.yaml writes it (release pg in namespace ops).
_AS_VARIABLE: dict[str, tuple[str, Any]] = {
    "prometheus.url": ("PERFGUARD_PROMETHEUS_URL", lambda v: v),
    "prometheus.allowedUrls": ("PERFGUARD_PROMETHEUS_ALLOWED_URLS", ",".join),
    "envParity.hashKeySecret.existingSecret": (
        "PERFGUARD_HASH_KEY_SECRET",
        lambda v: f"ops/{v}" if v else "ops/pg-perfguard-hash-key",
    ),
}
_LONGEST_URL = "http://prometheus.monitoring:9090/" + "p" * (2048 - 34)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("prometheus.url", url, id=f"url:{url[:48]}")
        for url in [
            "http://prometheus.monitoring:9090",
            "https://thanos.example.com/prefix/",
            "http://[fd00::1]:9090/prometheus",
            "http://10.0.0.1:65535/",
            "http://prom_a.monitoring",
            _LONGEST_URL,
            _LONGEST_URL + "p",
            "http://user:pw@prometheus.monitoring:9090",
            "http://prometheus.monitoring:9090/?x=1",
            "http://prometheus.monitoring:9090/#frag",
            "https://",
            "http://prometheus.monitoring:99999",
            "http://prometheus.monitoring:0",
            "http://prometheus.monitoring:",
            "prometheus:9090",
            "ftp://prometheus.monitoring",
            "http://prom etheus",
            "",
        ]
    ]
    + [
        pytest.param("prometheus.allowedUrls", urls, id=f"allowedUrls:{','.join(urls)[:48]}")
        for urls in [
            ["https://prom.example/", "http://prometheus.monitoring:9090/"],
            ["https://prom.example/?tenant=a"],
            ["https://prom.example/a,b"],
            ["http://prometheus.monitoring:9090", "http://user@prom.example"],
            ["https://"],
        ]
    ]
    + [
        pytest.param("envParity.hashKeySecret.existingSecret", name, id=f"secret:{name[:48]}")
        for name in [
            "my-key",
            "keys.v2",
            "",
            "a" * 253,
            "My_Key",
            "-key",
            "key-",
            "a..b",
            "a" * 254,
        ]
    ],
)
def test_schema_takes_the_values_perfguard_run_takes(path: str, value: Any) -> None:
    """helm accepts a value iff `perfguard run` accepts the variable the chart makes of it
    (OperatorConfig.from_env, exit 2 at start otherwise): the operator's own patterns
    (PROMETHEUS_URL, a Secret's DNS-1123 subdomain) are in the schema, so a values file helm
    installed never crash-loops the operator. An empty variable is unset to the operator (its
    default URL would be used silently): the schema refuses an empty URL."""
    from perfguard.config import OperatorConfig

    variable, write = _AS_VARIABLE[path]
    env = {
        k: v for k, v in env_of(render(release="pg", namespace="ops")).items() if isinstance(v, str)
    }
    env[variable] = write(value)
    try:
        OperatorConfig.from_env(env)
        run_takes = env[variable] != ""
    except ValueError:
        run_takes = False
    result = helm(
        "template", "pg", str(CHART), "-n", "ops", "-f", _values_file(_values_at(path, value))
    )
    assert (result.returncode == 0) == run_takes, result.stderr or f"helm accepted {value!r}"
    if result.returncode == 0:  # and the variable is the one given to the operator above
        rendered = env_of([d for d in yaml.safe_load_all(result.stdout) if d])
        assert rendered[variable] == env[variable]
    else:
        assert "values don't meet the specifications of the schema" in result.stderr


@pytest.mark.parametrize(
    ("path", "value", "valid"),
    [
        ("fullnameOverride", "pg", True),
        ("fullnameOverride", "my-perfguard", True),
        ("fullnameOverride", "Perfguard", False),
        ("fullnameOverride", "pg_main", False),
        ("fullnameOverride", "1pg", False),
        ("fullnameOverride", "pg-", False),
        ("fullnameOverride", "p" * 64, False),
        ("nameOverride", "guard", True),
        ("nameOverride", "Guard", False),
        ("nameOverride", "guard.io", False),
    ],
)
def test_schema_takes_only_override_names_the_apiserver_and_perfguard_run_take(
    cluster: Cluster, path: str, value: str, valid: bool
) -> None:
    """The full name names the Service (a DNS-1035 label: a leading letter) and every other
    object, the hash key Secret among them (PERFGUARD_HASH_KEY_SECRET, which `perfguard run`
    checks at start); nameOverride goes into the full name. helm refuses a name the API server
    or the operator would; what it accepts, both take (server-side dry run)."""
    from perfguard.config import OperatorConfig

    result = helm("template", "pg", str(CHART), "-n", "default", "--set-string", f"{path}={value}")
    assert (result.returncode == 0) == valid, result.stderr or f"helm accepted {path}={value}"
    if not valid:
        assert "values don't meet the specifications of the schema" in result.stderr
        return
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    OperatorConfig.from_env({k: v for k, v in env_of(docs).items() if isinstance(v, str)})
    objects = [one(docs, "Service"), one(docs, "Deployment"), one(docs, "Secret")]
    cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(objects))


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[str, ...]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def test_values_yaml_documents_every_value_in_a_comment_above_it() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z0-9_.-]+:", line):
            continue
        above = next((p for p in reversed(lines[:number]) if p.strip()), "")
        if not above.strip().startswith("#"):
            undocumented.append(f"{number + 1}: {line.strip()}")
    assert not undocumented, "values without a comment above them:\n" + "\n".join(undocumented)


def test_values_schema_describes_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path in _leaves(values):
        node = schema
        for key in path:
            if key in node.get("properties", {}):
                node = node["properties"][key]
            else:  # a free-form map (labels, annotations): its values' schema
                assert isinstance(node.get("additionalProperties"), dict), ".".join(path)
                node = node["additionalProperties"]
        assert "type" in node, ".".join(path)


# ----------------------------------------------------------------- durations

PROMETHEUS_OPERATOR_CRDS = REPO / "tests" / "e2e" / "manifests" / "prometheus-operator-crds.yaml"
# Alerts with a `for` in values.yaml.
ALERTS = [
    name
    for name, value in yaml.safe_load((CHART / "values.yaml").read_text())["prometheusRule"].items()
    if isinstance(value, dict) and "for" in value
]


def _durations(duration: str) -> dict[str, Any]:
    """Values putting `duration` into every duration prometheus-operator reads."""
    return {
        "serviceMonitor": {"enabled": True, "interval": duration, "scrapeTimeout": duration},
        "prometheusRule": {"enabled": True, **{alert: {"for": duration} for alert in ALERTS}},
    }


@pytest.fixture(scope="module")
def monitoring_namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace of the session's apiserver, with prometheus-operator's two CRDs."""
    cluster.kubectl("apply", "-f", str(PROMETHEUS_OPERATOR_CRDS))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=30s",
        "crd/prometheusrules.monitoring.coreos.com", "crd/servicemonitors.monitoring.coreos.com",
    )  # fmt: skip
    namespace = f"promop-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    yield namespace
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _server_takes(cluster: Cluster, obj: dict[str, Any]) -> bool:
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(obj), check=False
    )
    assert result.returncode == 0 or "Invalid value" in result.stderr, result.stderr
    return result.returncode == 0


def _promtool_takes(rule: dict[str, Any], work: Path) -> bool:
    from perfguard.local.prometheus import promtool_binary

    (work / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    result = subprocess.run(
        [str(promtool_binary()), "check", "rules", "rules.yaml"],
        cwd=work, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.returncode == 0


@pytest.mark.parametrize(
    ("duration", "taken"),
    [(d, True) for d in ["0", "0s", "30s", "1m30s", "1h30m", "2d", "1w", "1y", "500ms"]]
    + [("1y2w3d4h5m6s7ms", True)]
    + [(d, False) for d in ["1.5m", "30s5m", "1m1m", "", "1M", "90", "-1m", "1 m", "1us"]],
)
def test_prometheus_durations_are_the_ones_prometheus_operator_and_prometheus_take(
    cluster: Cluster, monitoring_namespace: str, tmp_path: Path, duration: str, taken: bool
) -> None:
    """Every alert's `for` and the ServiceMonitor's interval and scrapeTimeout: helm takes a
    duration iff prometheus-operator's CRDs (its Duration pattern: whole numbers, units in the
    order y w d h m s ms) and Prometheus (promtool check rules) take it, within the digits
    the schema allows each unit (test_prometheus_durations_stay_within_what_prometheus_holds).
    The PrometheusRule and ServiceMonitor helm renders are accepted by a real apiserver with
    those CRDs; a duration helm refuses, put into the objects, is refused there or by promtool
    (an empty `for`, which the CRD's pattern matches). An empty interval would be Prometheus'
    global one to prometheus-operator; the chart always writes one, and its schema asks for
    one."""
    result = helm(
        "template", "pg", str(CHART), "-n", monitoring_namespace, "-f",
        _values_file(_durations(duration)),
    )  # fmt: skip
    assert (result.returncode == 0) == taken, result.stderr or f"helm accepted {duration!r}"
    if taken:
        docs = [d for d in yaml.safe_load_all(result.stdout) if d]
        rule, monitor = one(docs, "PrometheusRule"), one(docs, "ServiceMonitor")
    else:
        assert "values don't meet the specifications of the schema" in result.stderr
        for alert in ALERTS:
            assert f"/prometheusRule/{alert}/for" in result.stderr, result.stderr
        assert "/serviceMonitor/interval" in result.stderr, result.stderr
        assert "/serviceMonitor/scrapeTimeout" in result.stderr, result.stderr
        # The objects a good duration renders, with this one put in as helm would write it.
        docs = render(_durations("1m"), release="pg", namespace=monitoring_namespace)
        rule, monitor = one(docs, "PrometheusRule"), one(docs, "ServiceMonitor")
        for group in rule["spec"]["groups"]:
            for entry in group["rules"]:
                if "for" in entry:
                    entry["for"] = duration
        monitor["spec"]["endpoints"][0].update(interval=duration, scrapeTimeout=duration)
    fors = [r["for"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert fors == [duration] * len(ALERTS)
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["interval"] == endpoint["scrapeTimeout"] == duration
    rule_taken = _server_takes(cluster, rule) and _promtool_takes(rule, tmp_path)
    assert rule_taken == taken, f"{duration!r} in the PrometheusRule"
    if duration:
        assert _server_takes(cluster, monitor) == taken, f"{duration!r} in the ServiceMonitor"


_LONGEST_PROMETHEUS_DURATION = "99y999w9999d99999h9999999m999999999s999999999999ms"


@pytest.mark.parametrize(
    ("duration", "taken", "prometheus_takes"),
    [
        (_LONGEST_PROMETHEUS_DURATION, True, True),
        ("99y", True, True),
        ("293y", False, False),
        ("15251w", False, False),
        ("106752d", False, False),
        ("99999999999999999999s", False, False),
        ("9223372036855ms", False, False),
        ("100y", False, True),  # the schema's bound is per unit, under Prometheus' 292 years
    ],
)
def test_prometheus_durations_stay_within_what_prometheus_holds(
    tmp_path: Path, duration: str, taken: bool, prometheus_takes: bool
) -> None:
    """Prometheus holds a duration in int64 nanoseconds (about 292 years) and refuses a
    longer one ("duration out of range"): the rules file of the PrometheusRule would not
    load. prometheus-operator's CRD pattern takes any number of digits, and so did the
    schema; the chart's own scrapeTimeout <= interval check also read a duration past int64
    as 0. The schema bounds each unit's digits (99y, 999w, 9999d, 99999h, 7 digits of
    minutes, 9 of seconds, 12 of milliseconds), so the longest it takes, all units at once,
    is under 240 years and promtool takes it."""
    result = helm(
        "template", "pg", str(CHART), "-n", "ops", "-f", _values_file(_durations(duration))
    )
    assert (result.returncode == 0) == taken, result.stderr or f"helm accepted {duration!r}"
    if not taken:
        assert "values don't meet the specifications of the schema" in result.stderr
        for field in [f"/prometheusRule/{a}/for" for a in ALERTS] + ["/serviceMonitor/interval"]:
            assert field in result.stderr, result.stderr
        rule = one(render(_durations("1m"), release="pg", namespace="ops"), "PrometheusRule")
        for entry in (r for g in rule["spec"]["groups"] for r in g["rules"] if "for" in r):
            entry["for"] = duration
    else:
        rule = one([d for d in yaml.safe_load_all(result.stdout) if d], "PrometheusRule")
    assert _promtool_takes(rule, tmp_path) == prometheus_takes


@pytest.mark.parametrize(
    ("interval", "timeout", "taken"),
    [
        ("30s", "10s", True),
        ("30s", "30s", True),
        ("1m30s", "1m", True),
        ("1h", "59m59s999ms", True),
        ("1d", "23h", True),
        ("1m", "61s", False),
        ("10s", "1m", False),
        ("500ms", "1s", False),
        ("1w", "6d24h1ms", False),
    ],
)
def test_scrape_timeout_is_at_most_the_interval(interval: str, timeout: str, taken: bool) -> None:
    """prometheus-operator rejects a ServiceMonitor whose scrapeTimeout is longer than its
    interval (the operator would then never be scraped): the chart refuses it, naming both."""
    values = {"serviceMonitor": {"enabled": True, "interval": interval, "scrapeTimeout": timeout}}
    result = helm("template", "pg", str(CHART), "-n", "ops", "-f", _values_file(values))
    assert (result.returncode == 0) == taken, result.stderr or "helm accepted it"
    if taken:
        (endpoint,) = one(render(values), "ServiceMonitor")["spec"]["endpoints"]
        assert (endpoint["interval"], endpoint["scrapeTimeout"]) == (interval, timeout)
    else:
        assert (
            f"serviceMonitor.scrapeTimeout ({timeout}) must not be longer than "
            f"serviceMonitor.interval ({interval})"
        ) in result.stderr, result.stderr


_LONGEST_GO_HOURS = "99999.999999999h" * 6
_REFRESH_TAKEN = ["5m", "0s", "2m", "12s", "1h30m", "1h30m15s", "36h", "7d", "2w", "99999d"]
_REFRESH_TAKEN += ["99999w", "1.5h", "250ms", "300000ms", "999999s", "30m1h", _LONGEST_GO_HOURS]
_REFRESH_REFUSED = ["999999h999999h999999h", "999999h", "2562048h", "99999h" * 26, "1h" * 7]
_REFRESH_REFUSED += ["", "0", "5 minutes", "1d12h", "1.5d", "1y", "-1m", "1µs"]


@pytest.mark.parametrize(
    ("duration", "taken"),
    [
        pytest.param(d, d in _REFRESH_TAKEN, id=d if len(d) < 24 else f"{d[:10]}..{len(d)}")
        for d in _REFRESH_TAKEN + _REFRESH_REFUSED
    ],
)
def test_status_refresh_is_one_perfguard_run_takes(duration: str, taken: bool) -> None:
    """`perfguard run` refuses a PERFGUARD_STATUS_REFRESH longer than a Go duration holds
    (about 2562047h) and exits 2 at start: a crash loop after a clean install. The schema
    used to take any number of parts of up to six digits (999999h999999h999999h). It takes
    at most six parts, hours of at most five digits (6 x 99999.999999999h is under 600000h),
    or whole days or weeks: every value it takes is one the operator takes, the documented
    ones (5m, 0s, 2m, 1h30m, 7d) among them."""
    from perfguard.config import OperatorConfig

    result = helm(
        "template", "pg", str(CHART), "-n", "ops", "-f",
        _values_file({"statusRefresh": duration}),
    )  # fmt: skip
    assert (result.returncode == 0) == taken, result.stderr or f"helm accepted {duration!r}"
    if not taken:
        assert "values don't meet the specifications of the schema" in result.stderr
        assert "/statusRefresh" in result.stderr, result.stderr
        return
    env = env_of([d for d in yaml.safe_load_all(result.stdout) if d])
    assert env["PERFGUARD_STATUS_REFRESH"] == duration
    OperatorConfig.from_env({k: v for k, v in env.items() if isinstance(v, str)})


def test_every_status_refresh_the_schema_takes_is_one_perfguard_run_takes() -> None:
    """The same over random durations, long ones most (up to 8 parts of up to 7 digits, and
    days and weeks): the operator takes each one the schema's pattern takes, and the pattern
    takes most of those of up to six parts within its digits."""
    import random

    from perfguard.api.quantities import parse_duration

    schema = json.loads((CHART / "values.schema.json").read_text())
    pattern = re.compile(schema["properties"]["statusRefresh"]["pattern"])
    rng = random.Random(20261205)

    def number(decimals: bool) -> str:
        digits = rng.choice([1, 2, 3, 4, 5, 5, 6, 6, 6, 7])
        whole = "9" * digits if rng.random() < 0.7 else str(rng.randrange(10**digits))
        return whole + ("." + "9" * rng.randint(1, 9) if decimals and rng.random() < 0.3 else "")

    taken = 0
    for _ in range(20000):
        if rng.random() < 0.1:
            duration = number(False) + rng.choice(["d", "w"])
        else:
            units = rng.choices(["ns", "us", "ms", "s", "m", "h"], [1, 1, 1, 1, 2, 6], k=8)
            duration = "".join(number(True) + u for u in units[: rng.randint(1, 8)])
        if pattern.fullmatch(duration):
            taken += 1
            parse_duration(duration)  # ValueError past a Go duration
    assert taken > 5000


@pytest.mark.parametrize(
    ("duration", "taken"),
    [(d, True) for d in ["0", "0s", "1m", "1.5m", "1h30m", "30m1h", "500ms", "90s"]]
    + [(d, False) for d in ["1d", "1w", "1y", "1.5d", "", "99999999h", "1 m", "1M", "-1m"]],
)
def test_argo_durations_are_go_durations(duration: str, taken: bool) -> None:
    """Argo Rollouts parses a metric's interval and initialDelay with Go's
    time.ParseDuration (its ValidateMetric refuses the AnalysisRun otherwise), which knows
    h, m, s, ms, us and ns but no d, w or y, takes decimals and any order, and overflows
    past about 2,562,047 h. The schema's pattern (at most six parts of five digits) takes
    only what it parses: checked against Go's own time.ParseDuration on 2 million random
    strings when it was written; a negative delay is refused as well."""
    values = {
        "argoRollouts": {
            "analysisTemplates": {"enabled": True, "interval": duration, "initialDelay": duration}
        }
    }
    result = helm("template", "pg", str(CHART), "-n", "ops", "-f", _values_file(values))
    assert (result.returncode == 0) == taken, result.stderr or f"helm accepted {duration!r}"
    if not taken:
        assert "values don't meet the specifications of the schema" in result.stderr
        assert "/argoRollouts/analysisTemplates/interval" in result.stderr, result.stderr
        assert "/argoRollouts/analysisTemplates/initialDelay" in result.stderr, result.stderr
        return
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    metrics = [m for t in by_kind(docs, "ClusterAnalysisTemplate") for m in t["spec"]["metrics"]]
    assert len(metrics) == 3
    assert all(m["interval"] == m["initialDelay"] == duration for m in metrics)


@pytest.mark.parametrize(
    ("count", "failure_limit", "inconclusive_limit"),
    [
        *[(1, 0, 0), (1, 1, 0), (1, 0, 1), (3, 3, 2), (3, 2, 3)],  # Argo takes them
        *[(1, 0, 2), (1, 2, 0), (2, 3, 1), (2, 1, 3), (4, 5, 5)],  # Argo refuses them
    ],
)
def test_argo_count_is_at_least_both_limits(
    count: int, failure_limit: int, inconclusive_limit: int
) -> None:
    """Argo Rollouts' ValidateMetric refuses a metric with count < failureLimit or count <
    inconclusiveLimit, so no analysis from such templates would run: the chart refuses the
    values, naming the three numbers and what to do, and renders the ones Argo takes."""
    argo_takes = count >= failure_limit and count >= inconclusive_limit
    at = {
        "enabled": True,
        "count": count,
        "failureLimit": failure_limit,
        "inconclusiveLimit": inconclusive_limit,
    }
    values = {"argoRollouts": {"analysisTemplates": at}}
    result = helm("template", "pg", str(CHART), "-n", "ops", "-f", _values_file(values))
    assert (result.returncode == 0) == argo_takes, result.stderr or "helm accepted it"
    if not argo_takes:
        assert (
            f"argoRollouts.analysisTemplates.count ({count}) must be at least failureLimit "
            f"({failure_limit}) and inconclusiveLimit ({inconclusive_limit})"
        ) in result.stderr, result.stderr
        assert "Raise count with the limits" in result.stderr
        return
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    metrics = [m for t in by_kind(docs, "ClusterAnalysisTemplate") for m in t["spec"]["metrics"]]
    assert len(metrics) == 3
    for metric in metrics:
        assert metric["count"] == count
        assert metric["failureLimit"] == failure_limit
        assert metric["inconclusiveLimit"] == inconclusive_limit


def test_gating_md_inconclusive_example_is_values_the_chart_takes() -> None:
    """docs/gating.md's advice to allow inconclusive measurements raises count with the limit:
    its example renders (a larger inconclusiveLimit alone would be refused, as tested above)."""
    text = (REPO / "docs" / "gating.md").read_text().replace("\n", " ")
    match = re.search(r"`count: (\d+)`,\s+`inconclusiveLimit: (\d+)`,\s+`interval: (\w+)`", text)
    assert match, "docs/gating.md lost its count/inconclusiveLimit example"
    count, limit, interval = int(match.group(1)), int(match.group(2)), match.group(3)
    at = {"enabled": True, "count": count, "inconclusiveLimit": limit, "interval": interval}
    docs = render({"argoRollouts": {"analysisTemplates": at}})
    for template in by_kind(docs, "ClusterAnalysisTemplate"):
        (metric,) = template["spec"]["metrics"]
        assert (metric["count"], metric["inconclusiveLimit"]) == (count, limit)
        assert metric["interval"] == interval


# ----------------------------------------------------------------- CRDs


def _generated_crds() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((REPO / "crds").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        found[doc["metadata"]["name"]] = doc
    assert len(found) == 3
    return found


def test_templated_crds_equal_the_generated_ones_plus_the_keep_annotation() -> None:
    rendered = {d["metadata"]["name"]: d for d in by_kind(render(), "CustomResourceDefinition")}
    generated = _generated_crds()
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        annotations = crd["metadata"].pop("annotations")
        assert annotations == {"helm.sh/resource-policy": "keep"}, name
        assert crd == generated[name], f"{name} differs from crds/{name}"


def test_crds_keep_false_drops_the_annotation_and_install_false_drops_the_crds() -> None:
    rendered = by_kind(render({"crds": {"keep": False}}), "CustomResourceDefinition")
    generated = _generated_crds()
    assert {d["metadata"]["name"]: d for d in rendered} == generated
    assert by_kind(render({"crds": {"install": False}}), "CustomResourceDefinition") == []


def test_chart_copies_of_the_crds_are_byte_identical_to_the_generated_ones() -> None:
    """files/crds/ is what the templates render: a stale copy is drift."""
    copies = sorted(p.name for p in (CHART / "files" / "crds").glob("*.yaml"))
    assert copies == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    for name in copies:
        assert (CHART / "files" / "crds" / name).read_text() == (
            REPO / "crds" / name
        ).read_text(), f"charts/perfguard/files/crds/{name} is stale: run `make crds`"


def test_perfguard_crds_are_not_also_in_helms_native_crds_folder() -> None:
    """Helm installs crds/ before templates: the CRDs there would collide with templates/crds.yaml
    on `helm install` (the kopf-peering subchart's crds/ holds Kopf's CRDs only)."""
    assert not list((CHART / "crds").glob("perfguard.dev_*.yaml")), (
        "charts/perfguard/crds/ still holds perfguard CRDs: the chart installs them from "
        "templates/crds.yaml (files/crds/); remove charts/perfguard/crds/"
    )


def test_kopf_peering_crds_ship_in_the_subcharts_crds_folder() -> None:
    docs = list(yaml.safe_load_all(PEERING_CRDS.read_text()))
    crds = {d["metadata"]["name"]: d["spec"]["scope"] for d in docs if d}
    assert crds == {
        "clusterkopfpeerings.kopf.dev": "Cluster",
        "kopfpeerings.kopf.dev": "Namespaced",
    }
    # Off: Helm drops a disabled dependency, its crds/ included.
    result = helm(
        "template", "x", str(CHART), "--include-crds", "--set", "kopfPeering.enabled=false"
    )
    assert result.returncode == 0, result.stderr
    assert "kopf.dev" not in result.stdout.replace("kopf.dev/v1", "")


# ----------------------------------------------------------------- Deployment


def test_deployment_runs_perfguard_hardened_with_probes() -> None:
    docs = render()
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    main = container(docs)
    assert "command" not in main and "args" not in main  # the image's ENTRYPOINT runs
    security = main["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsUser"] == 65532
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert main["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    assert main["image"] == "ghcr.io/perfguard/perfguard:0.1.0"


def test_environment_follows_the_values() -> None:
    env = env_of(
        render(
            {
                "prometheus": {"url": "http://thanos-query.monitoring:9090"},
                "watchNamespaces": ["ml-prod", "ml-staging"],
                "logging": {"level": "DEBUG", "json": False},
                "http": {"port": 9000},
                "envParity": {"compareSecrets": True},
                "image": {"digest": "sha256:" + "a" * 64},
                "statusRefresh": "2m",
            },
            release="pg",
            namespace="ops",
        )
    )
    assert env["PERFGUARD_PROMETHEUS_URL"] == "http://thanos-query.monitoring:9090"
    assert env["PERFGUARD_NAMESPACES"] == "ml-prod,ml-staging"
    assert env["PERFGUARD_LOG_LEVEL"] == "DEBUG"
    assert env["PERFGUARD_LOG_JSON"] == "false"
    assert env["PERFGUARD_HTTP_PORT"] == "9000"
    assert env["PERFGUARD_HASH_KEY_SECRET"] == "ops/pg-perfguard-hash-key"
    assert env["PERFGUARD_COMPARE_SECRETS"] == "true"
    assert env["PERFGUARD_STATUS_REFRESH"] == "2m"
    assert env["POD_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "PERFGUARD_PEERING" not in env


def test_two_replicas_peer_cluster_wide() -> None:
    docs = render({"replicaCount": 2})
    assert env_of(docs)["PERFGUARD_PEERING"] == "perfguard"
    peering = one(docs, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == "perfguard"
    rules = one(docs, "ClusterRole", "perfguard")["rules"]
    assert {
        "apiGroups": ["kopf.dev"],
        "resources": ["clusterkopfpeerings"],
        "verbs": ["get", "list", "watch", "patch"],
    } in rules


def test_two_replicas_limited_to_namespaces_peer_in_each_namespace() -> None:
    docs = render({"replicaCount": 2, "watchNamespaces": ["a", "b"]})
    peerings = by_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["a", "b"]
    assert not by_kind(docs, "ClusterKopfPeering")
    roles = [r for r in by_kind(docs, "Role") if r["metadata"]["name"] == "perfguard-peering"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    assert all(r["rules"][0]["resources"] == ["kopfpeerings"] for r in roles)


@pytest.mark.parametrize(
    ("values", "strategy"),
    [
        ({}, {"type": "Recreate"}),
        ({"replicaCount": 0}, {"type": "Recreate"}),
        ({"replicaCount": 2}, None),
        ({"peering": {"enabled": True}}, None),
        ({"replicaCount": 3, "watchNamespaces": ["a"]}, None),
    ],
    ids=["one-replica", "none", "two-replicas", "one-replica-peering", "three-namespaced"],
)
def test_without_peering_an_upgrade_stops_the_old_pod_before_starting_the_new(
    values: dict[str, Any], strategy: dict[str, str] | None
) -> None:
    """Without peering each pod is a standalone Kopf operator: under Kubernetes' default
    RollingUpdate (maxSurge 1, maxUnavailable 0 for one replica) every upgrade that changes
    the pod ran the new one beside the old until it was ready, both evaluating, patching
    status and posting Events. The Deployment recreates its pod then; with peering it keeps
    the default RollingUpdate (no strategy written), the peering letting one pod evaluate."""
    docs = render(values)
    assert one(docs, "Deployment")["spec"].get("strategy") == strategy
    assert ("PERFGUARD_PEERING" in env_of(docs)) == (strategy is None)


def test_hash_key_secret_is_random_kept_and_named_in_the_environment() -> None:
    docs = render()
    secret = one(docs, "Secret")
    assert secret["metadata"]["name"] == "perfguard-hash-key"
    assert secret["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    import base64

    assert len(base64.b64decode(secret["data"]["key"])) == 32
    assert one(render(), "Secret")["data"]["key"] != secret["data"]["key"]
    existing = render({"envParity": {"hashKeySecret": {"existingSecret": "mine"}}})
    assert not by_kind(existing, "Secret")
    assert env_of(existing)["PERFGUARD_HASH_KEY_SECRET"] == "perfguard-system/mine"
    role = one(existing, "Role", "perfguard-hash-key")
    assert role["rules"][0]["resourceNames"] == ["mine"]


def test_hash_key_secret_not_created_needs_an_existing_one() -> None:
    """create=false renders no Secret: without existingSecret the operator would read
    <fullname>-hash-key, which nothing creates, and every EnvParity would be Unverified
    (HashKeyUnavailable). The chart refuses that, saying what to set; with existingSecret it
    points the operator and its Role at that Secret."""
    result = helm(
        "template", "pg", str(CHART), "-n", "ops", "--set", "envParity.hashKeySecret.create=false"
    )
    assert result.returncode != 0, "create=false without existingSecret was accepted"
    assert (
        "envParity.hashKeySecret.create=false needs envParity.hashKeySecret.existingSecret"
        in result.stderr
    ), result.stderr
    assert "ops/pg-perfguard-hash-key, which nothing creates" in result.stderr
    assert "HashKeyUnavailable" in result.stderr
    for rbac in (True, False):  # the Deployment alone names the Secret too
        result = helm(
            "template", "pg", str(CHART), "-n", "ops",
            "--set", "envParity.hashKeySecret.create=false", "--set", f"rbac.create={rbac}",
        )  # fmt: skip
        assert result.returncode != 0, f"rbac.create={rbac}"

    docs = render(
        {"envParity": {"hashKeySecret": {"create": False, "existingSecret": "keys.v2"}}},
        release="pg",
        namespace="ops",
    )
    assert not by_kind(docs, "Secret")
    assert env_of(docs)["PERFGUARD_HASH_KEY_SECRET"] == "ops/keys.v2"
    assert one(docs, "Role", "pg-perfguard-hash-key")["rules"][0]["resourceNames"] == ["keys.v2"]


# ----------------------------------------------------------------- RBAC


def test_every_rbac_rule_says_why_it_is_there() -> None:
    text = render_text(EVERYTHING_ON | {"watchNamespaces": ["a"]})
    lines = text.splitlines()
    rules = 0
    for number, line in enumerate(lines):
        if re.match(r"^\s*- apiGroups:", line):
            rules += 1
            assert lines[number - 1].strip().startswith("#"), f"uncommented rule: {line}"
    assert rules >= 15


# What the operator does, as (verb, resource[/name][#subresource], namespace or None for
# every namespace), and what it must not be able to do.
OPERATOR_CAN = [
    ("list", "perfbaselines.perfguard.dev", None),
    ("watch", "envparities.perfguard.dev", None),
    ("get", "capacityplans.perfguard.dev", "ml-prod"),
    ("patch", "perfbaselines.perfguard.dev", "ml-prod"),
    ("patch", "perfbaselines.perfguard.dev#status", "ml-prod"),
    ("patch", "envparities.perfguard.dev#status", "ml-prod"),
    ("patch", "capacityplans.perfguard.dev#status", "ml-prod"),
    ("create", "events", "ml-prod"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("get", "namespaces", None),
    ("list", "namespaces", None),
    ("watch", "namespaces", None),
    ("get", "deployments.apps", "ml-prod"),
    ("list", "statefulsets.apps", None),
    ("watch", "daemonsets.apps", None),
    ("list", "replicasets.apps", "ml-prod"),
    ("get", "rollouts.argoproj.io", "ml-prod"),
    ("watch", "rollouts.argoproj.io", None),
    ("list", "pods", "ml-staging"),
    ("list", "configmaps", None),
    ("watch", "configmaps", None),
    ("list", "nodes", None),
]
OPERATOR_CANNOT = [
    ("list", "secrets", "ml-prod"),
    ("get", "secrets", "ml-prod"),
    ("delete", "deployments.apps", "ml-prod"),
    ("patch", "deployments.apps", "ml-prod"),
    ("create", "pods", "ml-prod"),
    ("get", "pods#log", "ml-prod"),
    ("create", "pods#exec", "ml-prod"),
    ("update", "configmaps", "ml-prod"),
    ("delete", "perfbaselines.perfguard.dev", "ml-prod"),
    ("create", "perfbaselines.perfguard.dev", "ml-prod"),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("patch", "nodes", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("patch", "clusterkopfpeerings.kopf.dev", None),
]


def can_i(cluster: Cluster, user: str, verb: str, resource: str, namespace: str | None) -> bool:
    resource, _, subresource = resource.partition("#")
    args = ["auth", "can-i", verb, resource, f"--as={user}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = cluster.kubectl(*args, check=False)
    answer = result.stdout.strip()
    assert answer in {"yes", "no"}, f"kubectl {shlex.join(args)}: {result.stdout}{result.stderr}"
    return answer == "yes"


def apply_rbac(
    cluster: Cluster, docs: list[dict[str, Any]], namespaces: Iterable[str] = ()
) -> None:
    # kubectl auth can-i resolves resources through discovery: the CRDs of every resource
    # asked about must exist (Argo Rollouts', Kopf's peering CRDs as the chart ships them).
    cluster.kubectl("apply", "-f", str(ARGO_ROLLOUTS_CRD), "-f", str(PEERING_CRDS))
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=30s",
        "crd/rollouts.argoproj.io", "crd/clusterkopfpeerings.kopf.dev", "crd/kopfpeerings.kopf.dev",
    )  # fmt: skip
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    objects = [d for d in docs if d["kind"] in wanted]
    for name in {*namespaces, *(d["metadata"].get("namespace") for d in objects)} - {None}:
        cluster.kubectl("create", "namespace", str(name), check=False)
    manifest = yaml.safe_dump_all(objects)
    cluster.kubectl("apply", "-f", "-", input=manifest)


def check_all(
    cluster: Cluster, user: str, expected: list[tuple[tuple[str, str, str | None], bool]]
) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda e: can_i(cluster, user, *e[0]), expected))
    wrong = [
        f"{'cannot' if want else 'CAN'} {verb} {resource} in {ns or 'all namespaces'}"
        for ((verb, resource, ns), want), got in zip(expected, answers, strict=True)
        if got != want
    ]
    assert not wrong, f"{user}:\n" + "\n".join(wrong)


def test_operator_rbac_is_sufficient_and_least_privilege_in_a_real_apiserver(
    cluster: Cluster,
) -> None:
    """The rendered RBAC, applied to an RBAC-enforcing apiserver: kubectl auth can-i as the
    operator's ServiceAccount allows each thing the operator does and nothing else we check;
    Secrets stay unreadable except the one hash-key Secret, by name."""
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-system"
    docs = render(release=release, namespace=namespace)
    apply_rbac(cluster, docs, [namespace])
    user = f"system:serviceaccount:{namespace}:{release}-perfguard"
    hash_key = ("get", f"secrets/{release}-perfguard-hash-key", namespace)
    other_secret = ("get", "secrets/other", namespace)
    check_all(
        cluster,
        user,
        [(e, True) for e in OPERATOR_CAN]
        + [(e, False) for e in OPERATOR_CANNOT]
        + [(hash_key, True), (other_secret, False), (("list", "secrets", namespace), False)],
    )


def test_compare_secrets_grants_list_on_secrets_only_when_enabled(cluster: Cluster) -> None:
    release = f"sec-{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-system"
    docs = render(
        {"envParity": {"compareSecrets": True}, "replicaCount": 2},
        release=release,
        namespace=namespace,
    )
    apply_rbac(cluster, docs, [namespace])
    user = f"system:serviceaccount:{namespace}:{release}-perfguard"
    check_all(
        cluster,
        user,
        [
            (("list", "secrets", "ml-prod"), True),
            (("list", "secrets", None), True),
            (("get", "secrets", "ml-prod"), False),
            (("watch", "secrets", "ml-prod"), False),
            (("patch", "clusterkopfpeerings.kopf.dev", None), True),
            (("watch", "clusterkopfpeerings.kopf.dev", None), True),
            (("create", "clusterkopfpeerings.kopf.dev", None), False),
        ],
    )


def test_analysis_service_account_reads_only_verdicts_in_its_namespace(cluster: Cluster) -> None:
    release = f"ana-{uuid.uuid4().hex[:6]}"
    app_namespace = f"{release}-app"
    docs = render(
        {"argoRollouts": {"analysisTemplates": {"enabled": True}, "namespaces": [app_namespace]}},
        release=release,
        namespace=f"{release}-system",
    )
    apply_rbac(cluster, docs)
    user = f"system:serviceaccount:{app_namespace}:perfguard-analysis"
    check_all(
        cluster,
        user,
        [
            (("get", "perfbaselines.perfguard.dev", app_namespace), True),
            (("get", "envparities.perfguard.dev", app_namespace), True),
            (("get", "perfbaselines.perfguard.dev", "default"), False),
            (("list", "perfbaselines.perfguard.dev", app_namespace), False),
            (("get", "capacityplans.perfguard.dev", app_namespace), False),
            (("patch", "perfbaselines.perfguard.dev#status", app_namespace), False),
            (("get", "secrets", app_namespace), False),
        ],
    )


# ----------------------------------------------------------------- install


def _kubectl_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(cluster.kubectl(*args, "-o", "json").stdout)
    return out


def test_helm_install_creates_every_object_keeps_the_hash_key_and_peers(cluster: Cluster) -> None:
    """helm install (no --wait: no kubelet) of an HA release into the real apiserver: every
    object exists, the Kopf peering CRDs come from the subchart's crds/ so the peering object
    is created in the same install, an upgrade keeps the hash key, uninstall leaves it."""
    release = f"inst-{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-system"
    env = cluster.env()
    values = {
        "replicaCount": 2,
        # The session cluster's CRDs were applied by kubectl, not by a Helm release.
        "crds": {"install": False},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
    values_file = _values_file(values)
    result = helm(
        "install", release, str(CHART), "-n", namespace, "--create-namespace", "-f", values_file,
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # NOTES.txt: where the gates are, whether Secrets are read.
    assert f"http://{release}-perfguard.{namespace}:8080/gates/flagger/" in result.stdout
    assert "Kopf peering" in result.stdout and "compared by EnvParity: no" in result.stdout
    try:
        manifest = helm("get", "manifest", release, "-n", namespace, env=env).stdout
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        assert {d["kind"] for d in objects} >= {
            "Deployment",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Secret",
            "ClusterKopfPeering",
            "PodDisruptionBudget",
            "NetworkPolicy",
            "ConfigMap",
        }
        for obj in objects:
            meta = obj["metadata"]
            args = ["get", obj["kind"], meta["name"]]
            if "namespace" in meta:
                args += ["-n", meta["namespace"]]
            assert cluster.kubectl(*args, check=False).returncode == 0, f"missing {args}"
        secret = f"{release}-perfguard-hash-key"
        key = _kubectl_json(cluster, "get", "secret", secret, "-n", namespace)["data"]["key"]
        result = helm("upgrade", release, str(CHART), "-n", namespace, "-f", values_file, env=env)
        assert result.returncode == 0, result.stderr
        after = _kubectl_json(cluster, "get", "secret", secret, "-n", namespace)["data"]["key"]
        assert after == key, "the HMAC key changed on upgrade: every fingerprint would change"
    finally:
        result = helm("uninstall", release, "-n", namespace, env=env)
    assert result.returncode == 0, result.stderr
    assert "hash-key" in result.stdout  # "These resources were kept due to the resource policy"
    kept = _kubectl_json(cluster, "get", "secret", secret, "-n", namespace)["data"]["key"]
    assert kept == key
    cluster.kubectl("delete", "secret", secret, "-n", namespace)
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_deployment_strategy_follows_peering_through_upgrades(cluster: Cluster) -> None:
    """Upgrades between peering and none change the Deployment's strategy in the real API
    server: from RollingUpdate, which the API server fills in with rollingUpdate parameters
    (as on every release installed before the chart wrote a strategy), to Recreate, which
    must drop them (the Deployment is refused if they stay), and back."""
    release = f"strat-{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-system"
    env = cluster.env()

    def upgrade(replicas: int) -> dict[str, Any]:
        values = {"replicaCount": replicas, "crds": {"install": False}}
        result = helm(
            "upgrade", "--install", release, str(CHART), "-n", namespace, "--create-namespace",
            "-f", _values_file(values), env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        deployment = _kubectl_json(
            cluster, "get", "deployment", f"{release}-perfguard", "-n", namespace
        )
        strategy: dict[str, Any] = deployment["spec"]["strategy"]
        return strategy

    try:
        rolling = upgrade(2)
        assert rolling["type"] == "RollingUpdate" and "rollingUpdate" in rolling
        assert upgrade(1) == {"type": "Recreate"}
        assert upgrade(2)["type"] == "RollingUpdate"
    finally:
        helm("uninstall", release, "-n", namespace, env=env)
        secret = f"{release}-perfguard-hash-key"
        cluster.kubectl("delete", "secret", secret, "-n", namespace, check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_documented_network_policy_values_render_and_the_apiserver_accepts_them(
    cluster: Cluster,
) -> None:
    """docs/install.md's networkPolicy example: valid values (schema), rendered as written,
    and a NetworkPolicy the real apiserver accepts (server-side dry run)."""
    text = (REPO / "docs" / "install.md").read_text()
    section = text.split("## Network policy", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert match, "docs/install.md's Network policy section lost its values example"
    values = yaml.safe_load(match.group(1))
    namespace = f"netpol-{uuid.uuid4().hex[:6]}"
    policy = one(render(values, namespace=namespace), "NetworkPolicy")
    assert policy["spec"]["egress"] == values["networkPolicy"]["egress"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert (
        "kubectl get endpointslice -n default -l kubernetes.io/service-name=kubernetes" in section
    )
    cluster.kubectl("create", "namespace", namespace)
    try:
        cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(policy))
    finally:
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ----------------------------------------------------------------- docs/install.md's values

INSTALL_MD = REPO / "docs" / "install.md"


def _install_md_section(heading: str) -> str:
    text = INSTALL_MD.read_text()
    assert f"\n{heading}\n" in text, f"docs/install.md lost its section {heading!r}"
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _yaml_blocks(text: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def _documented_extra_env() -> tuple[dict[str, Any], list[str], int]:
    """The extraEnv example of "The most used values": its values block, its --set flags and
    the number of evaluations its prose promises."""
    section = _install_md_section("## The most used values")
    blocks = [yaml.safe_load(b) for b in _yaml_blocks(section)]
    (values,) = [b for b in blocks if isinstance(b, dict) and "extraEnv" in b]
    flags = re.search(r"`(--set [^`]*extraEnv[^`]*)`", section)
    assert flags, "the extraEnv example lost its --set form"
    promised = re.search(r"to let (\d+)\s+evaluations", section)
    assert promised, "the extraEnv example no longer says how many evaluations it allows"
    return values, shlex.split(flags.group(1)), int(promised.group(1))


def test_every_yaml_block_in_install_md_is_a_values_file_the_chart_accepts() -> None:
    """Each ```yaml example renders with helm template: the schema (no unknown keys, right
    types) and the templates accept it as written."""
    blocks = _yaml_blocks(INSTALL_MD.read_text())
    assert len(blocks) >= 2  # networkPolicy and extraEnv
    for block in blocks:
        values = yaml.safe_load(block)
        assert isinstance(values, dict) and values, block
        render(values)


def test_documented_extra_env_reaches_the_container_as_a_string_the_operator_reads() -> None:
    """The values block and the --set flags of docs/install.md's extraEnv example render the
    same container env: each variable once, after the chart's own, its value the documented
    string; the operator reads it as the number of evaluation slots the prose promises. The
    variable is none the chart sets itself (what extraEnv is for), and the unquoted number the
    doc warns about is refused by the schema."""
    from perfguard.config import OperatorConfig

    values, flags, promised = _documented_extra_env()
    documented = values["extraEnv"]
    assert documented and all(isinstance(e["value"], str) for e in documented), documented
    own = {e["name"] for e in container(render())["env"]}
    assert not own & {e["name"] for e in documented}, "extraEnv repeats a variable of the chart"

    env = container(render(values))["env"]
    assert env[-len(documented) :] == documented
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), names
    assert container(render(extra=flags))["env"] == env  # the --set form says the same

    config = OperatorConfig.from_env({e["name"]: e["value"] for e in env if "value" in e})
    assert config.evaluation_slots == promised

    unquoted = {"extraEnv": [{**e, "value": int(e["value"])} for e in documented]}
    result = helm("template", "x", str(CHART), "-f", _values_file(unquoted))
    assert result.returncode != 0, "an unquoted number was accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert "/extraEnv/0/value" in result.stderr, result.stderr


def test_documented_extra_env_installs_into_the_real_apiserver(cluster: Cluster) -> None:
    """helm install with docs/install.md's extraEnv values: the Deployment the API server
    stores carries the variable as written."""
    values, _, _ = _documented_extra_env()
    release = f"env-{uuid.uuid4().hex[:6]}"
    namespace = f"{release}-system"
    env = cluster.env()
    installed = {**values, "crds": {"install": False}}  # the session's CRDs are kubectl's
    result = helm(
        "install", release, str(CHART), "-n", namespace, "--create-namespace",
        "-f", _values_file(installed), env=env,
    )  # fmt: skip
    try:
        assert result.returncode == 0, result.stderr
        assert "hides previous definition" not in result.stderr, result.stderr
        deployment = _kubectl_json(
            cluster, "get", "deployment", f"{release}-perfguard", "-n", namespace
        )
        (main,) = deployment["spec"]["template"]["spec"]["containers"]
        for variable in values["extraEnv"]:
            assert [e for e in main["env"] if e["name"] == variable["name"]] == [variable]
    finally:
        helm("uninstall", release, "-n", namespace, env=env)
        cluster.kubectl(
            "delete", "secret", f"{release}-perfguard-hash-key", "-n", namespace, check=False
        )
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# ----------------------------------------------------------------- Dockerfile


def test_dockerfile_matches_the_chart_defaults() -> None:
    """The image cannot be built here; its contract with the chart is checked instead."""
    dockerfile = (REPO / "Dockerfile").read_text()
    instructions = [
        line.strip()
        for line in dockerfile.replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    bases = [i.split()[1] for i in instructions if i.startswith("FROM ")]
    args = dict(
        i.split(None, 1)[1].split("=", 1) for i in instructions if i.startswith("ARG ") and "=" in i
    )
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], b) for b in bases]
    for base in resolved:
        # Pinned: an exact patch version (a digest is better still), slim, Python 3.11.
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), (
            f"unpinned base image {base}"
        )
    final_stage = instructions[max(i for i, x in enumerate(instructions) if x.startswith("FROM")) :]
    users = [i.split()[1] for i in final_stage if i.startswith("USER ")]
    assert users and users[-1] in {"65532", "65532:65532"}, users
    entrypoint = next(i for i in final_stage if i.startswith("ENTRYPOINT "))
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["perfguard", "run"]
    exposed = [i.split()[1] for i in final_stage if i.startswith("EXPOSE ")]
    docs = render()
    main = container(docs)
    assert exposed == [str(main["ports"][0]["containerPort"])]
    assert "PERFGUARD_HTTP_PORT=8080" in dockerfile
    assert env_of(docs)["PERFGUARD_HTTP_PORT"] == "8080"
    pod_user = one(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert users[-1].split(":")[0] == str(pod_user)
    # The console script the ENTRYPOINT names exists, and what the image copies exists.
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'perfguard = "perfguard.cli:main"' in pyproject
    for instruction in instructions:
        if instruction.startswith("COPY ") and "--from" not in instruction:
            for source in instruction.split()[1:-1]:
                assert (REPO / source).exists(), source
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("operator", "pyproject.toml", "README.md"):
        assert needed not in ignored
    for heavy in (".venv", ".cache", ".git"):
        assert heavy in ignored


def test_prometheus_credentials_and_allowlist_values() -> None:
    default = render()
    rules = [r for role in by_kind(default, "ClusterRole") for r in role.get("rules") or []]
    assert not any("secrets" in r.get("resources", []) and "get" in r["verbs"] for r in rules)
    assert "PERFGUARD_PROMETHEUS_ALLOWED_URLS" not in env_of(default)
    opted = render(
        {
            "prometheus": {
                "url": "http://prometheus.monitoring:9090",
                "credentialsFromSecrets": True,
                "allowedUrls": ["https://prom.example/", "http://prometheus.monitoring:9090/"],
            }
        }
    )
    rules = [r for role in by_kind(opted, "ClusterRole") for r in role.get("rules") or []]
    assert any(
        r.get("resources") == ["secrets"] and r["verbs"] == ["get"] and "resourceNames" not in r
        for r in rules
    )
    assert (
        env_of(opted)["PERFGUARD_PROMETHEUS_ALLOWED_URLS"]
        == "https://prom.example/,http://prometheus.monitoring:9090/"
    )


@pytest.mark.parametrize(
    "values",
    [
        {},
        EVERYTHING_ON,
        {
            "prometheus": {"url": "http://thanos-query.monitoring:9090"},
            "watchNamespaces": ["ml-prod", "ml-staging"],
            "logging": {"level": "DEBUG", "json": False},
            "http": {"port": 9000},
            "envParity": {"compareSecrets": True},
            "statusRefresh": "2m",
        },
        {
            "fullnameOverride": "pg-main",
            "prometheus": {
                "url": "http://[fd00::1]:65535/prometheus/",
                "allowedUrls": ["https://prom_a.example/", "http://10.0.0.1:9090/api"],
            },
            "envParity": {"hashKeySecret": {"existingSecret": "keys.v2"}},
        },
    ],
    ids=["defaults", "everything-on", "values-set", "edge-values"],
)
def test_the_rendered_environment_is_one_perfguard_run_accepts(values: dict[str, Any]) -> None:
    """`perfguard run` refuses a bad variable at start (exit 2): whatever the chart writes must
    pass the same parser, or the operator would crash-loop on a values file helm accepted."""
    from perfguard.config import OperatorConfig

    env = env_of(render(values, release="pg", namespace="ops"))
    plain = {k: v for k, v in env.items() if isinstance(v, str)}  # not valueFrom
    config = OperatorConfig.from_env(plain)
    assert config.http_port == int(plain.get("PERFGUARD_HTTP_PORT", "8080"))
