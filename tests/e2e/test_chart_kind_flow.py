"""docs/install.md's kind walk-through, run as written against real servers.

The `kubectl` and `helm` commands of its shell block, and whatever `make -n kind-up` would run
besides creating the cluster, go to a fresh kube-apiserver (no CRDs, like a new kind cluster)
with the real helm and kubectl. Docker and kind are not on the test machines: `make image`
and `make kind-load` are checked through `make -n` to build and load the image that the
`helm install` deploys.

The "manage the key yourself" block of its Secrets section runs the same way, in bash as
written, on a release installed by its Install block.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from perfguard.local.binaries import binary
from perfguard.local.controlplane import ControlPlane
from tests.e2e.cluster import Cluster
from tests.e2e.test_chart import REPO

pytestmark = pytest.mark.e2e

INSTALL_MD = REPO / "docs" / "install.md"
SECTION = "### A local cluster with kind"


def _section(heading: str) -> str:
    text = INSTALL_MD.read_text()
    assert heading in text, f"docs/install.md lost its section {heading!r}"
    body = text.split(heading, 1)[1]
    return re.split(r"^#{1,3} ", body, maxsplit=1, flags=re.MULTILINE)[0]


def _first_block(section: str, language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no ```{language} block"
    return match.group(1)


def documented_commands(heading: str = SECTION) -> list[list[str]]:
    """The shell block's commands, continuation lines joined, comments dropped."""
    block = _first_block(_section(heading), "sh").replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def make_dry_run(*targets: str) -> list[list[str]]:
    result = subprocess.run(
        ["make", "--no-print-directory", "-n", *targets],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip()]


def chart_app_version() -> str:
    version: str = yaml.safe_load((REPO / "charts/perfguard/Chart.yaml").read_text())["appVersion"]
    return version


def run(argv: list[str], kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """A documented kubectl or helm command, with the test servers' binaries."""
    assert argv[0] in {"kubectl", "helm"}, argv
    return subprocess.run(
        [str(binary(argv[0])), *argv[1:]],
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A kube-apiserver of its own: the session's already holds CRDs applied by kubectl."""
    try:
        plane = ControlPlane(workdir=tmp_path / "controlplane").start()
    except Exception as error:  # a missing server is a failure, never a skip
        pytest.fail(f"could not start a control plane: {error}", pytrace=False)
    try:
        yield Cluster(plane.kubeconfig)
    finally:
        plane.stop()


def _set_flags(argv: list[str]) -> dict[str, str]:
    flags = {}
    for i, arg in enumerate(argv):
        if arg == "--set":
            key, _, value = argv[i + 1].partition("=")
            flags[key] = value
    return flags


def test_make_image_and_kind_load_name_the_image_the_documented_install_deploys() -> None:
    commands = documented_commands()
    assert [c[:2] for c in commands[:3]] == [
        ["make", "kind-up"],
        ["make", "image"],
        ["make", "kind-load"],
    ]
    tag = chart_app_version()
    assert make_dry_run("image") == [["docker", "build", "-t", f"perfguard:{tag}", "."]]
    assert make_dry_run("kind-load") == [
        ["kind", "load", "docker-image", f"perfguard:{tag}", "--name", "perfguard"]
    ]
    cluster_name = yaml.safe_load((REPO / "kind-config.yaml").read_text())["name"]
    assert make_dry_run("kind-up") == [
        ["kind", "create", "cluster", "--name", cluster_name, "--config", "kind-config.yaml"]
    ]
    (install,) = [c for c in commands if c[:2] == ["helm", "install"]]
    flags = _set_flags(install)
    assert f"{flags['image.repository']}:{flags['image.tag']}" == f"perfguard:{tag}"
    # `make help` lists the targets the walk-through names.
    listed = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    listed = re.sub(r"\x1b\[[0-9;]*m", "", listed)  # the colours
    for target in ("kind-up", "image", "kind-load"):
        assert re.search(rf"^\s+{target}\s", listed, re.MULTILINE), target


def test_documented_kind_flow_installs_on_a_cluster_without_crds(fresh_cluster: Cluster) -> None:
    """kind-up's commands (minus `kind create`), then the documented helm install and the
    first resources: the chart installs the CRDs, the examples apply once their namespaces
    exist, and the e2e fixture's `kubectl apply -f crds/` on the Helm-owned CRDs still works."""
    kubeconfig = fresh_cluster.kubeconfig
    for argv in make_dry_run("kind-up"):
        if argv[:3] == ["kind", "create", "cluster"]:
            continue  # the fresh kube-apiserver stands in for the kind cluster
        result = run(argv, kubeconfig)  # e.g. a `kubectl apply -f crds/` would run here
        assert result.returncode == 0, f"{shlex.join(argv)}: {result.stderr}"

    namespaces_checked = False
    for argv in documented_commands():
        if argv[0] == "make":
            continue  # Docker and kind: checked by the make -n test above
        if argv[:3] == ["kubectl", "create", "namespace"] and not namespaces_checked:
            # Why the walk-through creates them: the examples' namespace must exist.
            early = run(["kubectl", "apply", "-f", "docs/examples/"], kubeconfig)
            assert early.returncode != 0, "the examples applied without their namespaces"
            assert 'namespaces "ml-prod" not found' in early.stderr, early.stderr
            namespaces_checked = True
        result = run(argv, kubeconfig)
        assert result.returncode == 0, f"{shlex.join(argv)}:\n{result.stdout}{result.stderr}"
    assert namespaces_checked

    crds: dict[str, Any] = json.loads(fresh_cluster.kubectl("get", "crd", "-o", "json").stdout)
    ours = {
        c["metadata"]["name"]: c for c in crds["items"] if c["spec"]["group"] == "perfguard.dev"
    }
    assert set(ours) == {
        "perfbaselines.perfguard.dev",
        "envparities.perfguard.dev",
        "capacityplans.perfguard.dev",
    }
    for crd in ours.values():
        assert crd["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert crd["metadata"]["annotations"]["meta.helm.sh/release-name"] == "perfguard"
    deployment = fresh_cluster.get("deployment", "perfguard", "perfguard-system")
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    assert main["image"] == f"perfguard:{chart_app_version()}"
    assert main["imagePullPolicy"] == "IfNotPresent"  # the image kind-load put on the nodes
    listed = fresh_cluster.kubectl("get", "perfguard", "-n", "ml-prod", "-o", "name").stdout
    assert sorted(listed.split()) == [
        "capacityplan.perfguard.dev/gpu-fleet",
        "envparity.perfguard.dev/inference",
        "perfbaseline.perfguard.dev/resnet",
    ]

    # USE_EXISTING_CLUSTER=true make e2e applies crds/ with kubectl: fine on Helm's CRDs, and
    # the release still upgrades afterwards.
    fresh_cluster.kubectl("apply", "-f", str(REPO / "crds"))
    upgrade = run(
        ["helm", "upgrade", "perfguard", "charts/perfguard", "-n", "perfguard-system",
         "--reuse-values"],
        kubeconfig,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr


def test_install_over_kubectl_applied_crds_fails_as_documented_and_the_flag_fixes_it(
    cluster: Cluster,
) -> None:
    """The session's cluster holds CRDs applied with kubectl (as after the e2e fixture ran
    against kind): the documented install fails with the error docs/install.md quotes, and
    passes with the `--set crds.install=false` it recommends."""
    (install,) = [c for c in documented_commands() if c[:2] == ["helm", "install"]]
    release = "kindflow"
    install = [*install[:2], release, *install[3:]]
    index = install.index("perfguard-system")
    install[index] = f"{release}-system"
    failed = run(install, cluster.kubeconfig)
    assert failed.returncode != 0, "helm took over CRDs that kubectl applied"
    quoted = _first_block(_section(SECTION), "text").strip()
    expected = quoted.removesuffix("...").rstrip()
    assert expected.startswith("Error: INSTALLATION FAILED")
    quoted_pattern = re.escape(expected).replace(
        re.escape('"capacityplans.perfguard.dev"'), r'"\w+\.perfguard\.dev"'
    )
    assert re.search(quoted_pattern, failed.stderr), failed.stderr
    assert "--set crds.install=false" in _section(SECTION)
    fixed = run([*install, "--set", "crds.install=false"], cluster.kubeconfig)
    try:
        assert fixed.returncode == 0, fixed.stderr
    finally:
        run(["helm", "uninstall", release, "-n", f"{release}-system"], cluster.kubeconfig)
        cluster.kubectl(
            "delete", "secret", f"{release}-perfguard-hash-key", "-n", f"{release}-system",
            check=False,
        )  # fmt: skip
        cluster.kubectl("delete", "namespace", f"{release}-system", "--wait=false", check=False)


def run_shell(script: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    """A documented shell block, as written (pipes, `$(...)`), with the test servers' kubectl
    and helm first on PATH."""
    tools = binary("kubectl").parent
    assert binary("helm").parent == tools
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{tools}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_documented_own_hash_key_replaces_the_generated_one_on_an_installed_release(
    fresh_cluster: Cluster,
) -> None:
    """docs/install.md's "To manage it yourself", run as written on a release installed by
    its Install block: the commands succeed, the operator and its Role are pointed at the new
    Secret, which holds the new key and is not the release's, and the chart renders no Secret
    any more. The prose's reason for another name holds: the release owns the generated one."""
    kubeconfig = fresh_cluster.kubeconfig
    installed = run_shell(_first_block(_section("## Install"), "sh"), kubeconfig)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    namespace, generated_name = "perfguard-system", "perfguard-hash-key"
    generated = fresh_cluster.get("secret", generated_name, namespace)["data"]["key"]

    section = _section("## Secrets are opt-in")
    (block,) = [
        b for b in re.findall(r"```sh\n(.*?)```", section, re.DOTALL) if "existingSecret" in b
    ]
    result = run_shell(block, kubeconfig)
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"existingSecret=([-.a-z0-9]+)", block)
    assert match, block
    name = match.group(1)
    assert name != generated_name, "the release already owns the generated Secret's name"
    taken = run(
        ["kubectl", "create", "secret", "generic", generated_name, "-n", namespace,
         "--from-literal=key=0123456789abcdef"],
        kubeconfig,
    )  # fmt: skip
    assert taken.returncode != 0 and "already exists" in taken.stderr, taken.stderr
    own = fresh_cluster.get("secret", name, namespace)
    key = base64.b64decode(own["data"]["key"])
    assert len(key) >= 16 and own["data"]["key"] != generated
    assert "meta.helm.sh/release-name" not in own["metadata"].get("annotations", {})
    deployment = fresh_cluster.get("deployment", "perfguard", namespace)
    (main,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["PERFGUARD_HASH_KEY_SECRET"] == f"{namespace}/{name}"
    role = fresh_cluster.get("role", "perfguard-hash-key", namespace)
    assert role["rules"][0]["resourceNames"] == [name]
    manifest = run(["helm", "get", "manifest", "perfguard", "-n", namespace], kubeconfig)
    assert "kind: Secret" not in manifest.stdout
    # Later upgrades keep it: --reuse-values carries existingSecret, nothing touches the key.
    upgrade = run(
        ["helm", "upgrade", "perfguard", "charts/perfguard", "-n", namespace, "--reuse-values"],
        kubeconfig,
    )  # fmt: skip
    assert upgrade.returncode == 0, upgrade.stderr
    assert fresh_cluster.get("secret", name, namespace)["data"] == own["data"]
    # The generated Secret, left behind by its keep policy, can go, as the doc says.
    assert f"kubectl delete secret -n {namespace} {generated_name}" in section
