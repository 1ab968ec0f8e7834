"""`make demo`: the main job end to end on local data.

1. Generates 7 days of telemetry for a GPU inference service whose canary carries a
   sustained +8 ms regression in the inference stage, a thermally throttling GPU and a
   GPU load that +20 % traffic would bring near its limit, and backfills it into
   Debian's Prometheus.
2. Starts a local control plane (etcd + kube-apiserver), applies the CRDs, two GPU Nodes
   and staging/production Deployments, and starts the operator against both.
3. Applies two PerfBaselines (the regressing canary and the clean stable track), an
   EnvParity and a CapacityPlan, waits for their status with visible progress, and prints
   what an on-call engineer would look at.

The servers keep running afterwards so you can explore; `make demo-stop` stops them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml

from perfguard.local.binaries import binary
from perfguard.local.controlplane import ControlPlane
from perfguard.local.processes import Stopped, free_port, stop_groups
from perfguard.local.prometheus import LocalPrometheus, backfill
from perfguard.synthetic import Injection, InjectionKind, Scenario, SeriesFamily, generate_file

STATE = Path(".cache/demo")
NAMESPACE = "ml-prod"
DEMO_KINDS = (
    "perfbaselines.perfguard.dev",
    "envparities.perfguard.dev",
    "capacityplans.perfguard.dev",
)
REGRESSION_MINUTES = 45


def styled(stream: TextIO) -> bool:
    """Whether to write terminal escapes to `stream`: only to a terminal, and not when
    NO_COLOR is set to anything (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def say(message: str) -> None:
    arrow = "\033[1m==>\033[0m" if styled(sys.stdout) else "==>"
    print(f"{arrow} {message}", flush=True)


def perfguard_command() -> list[str]:
    """How to run `perfguard` from here, as a user would type it: the virtualenv's script
    (`.venv/bin/perfguard` from the repository root: the virtualenv is not on PATH), or
    this interpreter with `-m perfguard.cli` where there is no script."""
    script = Path(sys.executable).parent / "perfguard"
    if not os.access(script, os.X_OK):
        return [sys.executable, "-m", "perfguard.cli"]
    relative = os.path.relpath(script)
    return [relative if not relative.startswith("..") else str(script)]


def explore_hints(kubeconfig: Path, prometheus_url: str, canary_file: Path) -> list[str]:
    """The commands the demo closes with, each to be run as printed, in order."""
    perfguard = shlex.join(perfguard_command())
    return [
        f"export KUBECONFIG={shlex.quote(str(kubeconfig))}",
        f"{shlex.quote(str(binary('kubectl')))} get perfguard -A",
        f"{perfguard} report -n {NAMESPACE}",
        f"{perfguard} evaluate -f {shlex.quote(str(canary_file))} --prometheus {prometheus_url}",
    ]


AHEAD = timedelta(minutes=30)


def scenario(end: datetime) -> Scenario:
    """History up to `end`, which lies AHEAD of now: Prometheus serves backfilled blocks
    as time reaches them, so the operator always has a full window to judge."""
    days = 7.0
    start_of_regression = timedelta(days=days) - AHEAD - timedelta(minutes=REGRESSION_MINUTES)
    return Scenario(
        service="resnet",
        days=days,
        end=end,
        seed=7,
        nodes=2,
        gpus_per_node=4,
        cpus_per_node=4,
        # The fleet's GPU load is such that +20 % traffic at peak lands within 5 points of
        # the 90 % threshold (NearLimit) while +5 % stays well within capacity.
        gpu_util_at_base=53.0,
        injections=(
            Injection(
                InjectionKind.LATENCY_SHIFT,
                start=start_of_regression,
                magnitude=8.0,
                track="canary",
                stage="inference",
            ),
            Injection(
                InjectionKind.THERMAL_THROTTLING,
                start=timedelta(days=days - 0.5),
                magnitude=12.0,
                node="gpu-node-2",
                gpu=1,
            ),
        ),
        include=frozenset(SeriesFamily),
    )


def resources(prometheus_url: str) -> list[dict[str, Any]]:
    examples = Path("docs/examples")
    canary = yaml.safe_load((examples / "perfbaseline.yaml").read_text())
    canary["metadata"] = {"name": "resnet-canary", "namespace": NAMESPACE}
    canary["spec"]["prometheus"] = {"url": prometheus_url, "timeout": "10s"}
    # DCGM series carry no service/track labels; the demo judges the request metrics.
    canary["spec"]["metrics"] = [m for m in canary["spec"]["metrics"] if m["type"] != "Query"]
    for metric in canary["spec"]["metrics"]:
        if metric["type"] == "Throughput":
            # Judged against the same time on earlier days, whose level differs by several
            # percent (weekday effects): a relative limit fits a ~230 req/s service better
            # than the example's 20 req/s.
            metric["thresholds"] = {"rate": {"maxDecreasePercent": 20}}
    # Quicker than production defaults, so the demo reaches its verdicts in minutes.
    canary["spec"]["analysis"]["interval"] = "15s"
    canary["spec"]["analysis"]["sustainFor"] = "1m"
    stable = json.loads(json.dumps(canary))
    stable["metadata"]["name"] = "resnet-stable"
    stable["spec"]["selector"] = {"service": "resnet", "track": "stable"}
    for key in ("candidate", "stable"):
        stable["spec"].pop(key)
    stable["spec"]["comparison"] = "Historical"
    parity = yaml.safe_load((examples / "envparity.yaml").read_text())
    parity["metadata"]["namespace"] = NAMESPACE
    plan = yaml.safe_load((examples / "capacityplan.yaml").read_text())
    plan["metadata"]["namespace"] = NAMESPACE
    plan["spec"]["prometheus"] = {"url": prometheus_url}
    return [canary, stable, parity, plan]


REFERENCE_NAMESPACE = "ml-staging"
GPU_NODE_LABEL = "nvidia.com/gpu.present"
PINNED = "registry.example/resnet-server@sha256:" + "4f" * 32


def cluster_objects() -> list[dict[str, Any]]:
    """What a kubelet-less cluster needs for the demo: GPU Nodes for the CapacityPlan and
    the staging/production workloads EnvParity compares (production runs a newer model)."""
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": {GPU_NODE_LABEL: "true"}},
        }
        for name in ("gpu-node-1", "gpu-node-2")
    ]
    workloads = []
    for namespace, model in ((REFERENCE_NAMESPACE, "resnet50-v7"), (NAMESPACE, "resnet50-v8")):
        for name in ("resnet-server", "resnet-preprocess"):
            workloads.append(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": {"tier": "inference"},
                        "annotations": {
                            "perfguard.dev/model-version": model
                            if name == "resnet-server"
                            else "n/a",
                            "perfguard.dev/dataset-version": "imagenet-2012",
                        },
                    },
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": name}},
                        "template": {
                            "metadata": {"labels": {"app": name}},
                            "spec": {
                                "containers": [
                                    {
                                        "name": "server",
                                        "image": PINNED,
                                        "env": [
                                            {"name": "BATCH_SIZE", "value": "32"},
                                            {"name": "HOSTNAME", "value": namespace},
                                        ],
                                    }
                                ]
                            },
                        },
                    },
                }
            )
    return [*nodes, *workloads]


def kubectl(kubeconfig: Path, *args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(binary("kubectl")), *args],
        input=input,
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        check=False,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


# How long `make demo-stop` waits for the servers to exit after SIGTERM before it sends
# SIGKILL: kube-apiserver takes 20-25 s to shut down.
STOP_TIMEOUT = 30.0


def stop(state: Path = STATE, timeout: float = STOP_TIMEOUT, kill_timeout: float = 5.0) -> int:
    """Stop the servers a demo left running; its state goes only once they have exited
    (while one runs, the state file is how to find it). 1 if one could not be stopped."""
    state_file = state / "state.json"
    if not state_file.exists():
        print("no demo is running")
        return 0
    pids: dict[str, int] = json.loads(state_file.read_text()).get("pids", {})
    if pids:
        print(f"stopping {', '.join(pids)} (SIGTERM; SIGKILL after {timeout:g} s)", flush=True)
    outcome = stop_groups(pids, timeout=timeout, kill_timeout=kill_timeout)
    for name, ended in outcome.items():
        pid = pids[name]
        print(
            {
                Stopped.STOPPED: f"stopped {name} (pid {pid})",
                Stopped.KILLED: f"killed {name} (pid {pid}): still running {timeout:g} s "
                "after SIGTERM",
                Stopped.GONE: f"{name} (pid {pid}) had already exited",
                Stopped.NOT_OURS: f"{name}: pid {pid} belongs to another user now; left alone",
                Stopped.ALIVE: f"could not stop {name} (pid {pid}), not even with SIGKILL",
            }[ended]
        )
    if Stopped.ALIVE in outcome.values():
        print(f"kept {state} so that `make demo-stop` can try again", file=sys.stderr)
        return 1
    shutil.rmtree(state, ignore_errors=True)
    return 0


class Started:
    """The servers a demo started, in its state file from the moment each one starts:
    they run in sessions of their own, so this file is the only way `make demo-stop`
    finds them, even when the demo fails (or is interrupted) while they start up."""

    def __init__(self, state_file: Path) -> None:
        self.state_file = state_file
        self.pids: dict[str, int] = {}
        self.extra: dict[str, str] = {}

    def __call__(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.write()

    def write(self) -> None:
        self.state_file.write_text(json.dumps({"pids": self.pids, **self.extra}))


def start_control_plane(started: Started, port: int | None = None) -> ControlPlane | None:
    """The demo's etcd and kube-apiserver, each recorded in `started` as it starts; None
    (after saying why) when they do not come up, having stopped what did start."""
    workdir = (started.state_file.parent / "controlplane").resolve()
    plane = ControlPlane(workdir=workdir, on_start=started)
    if port is not None:
        plane.port = port
    try:
        return plane.start()
    except RuntimeError as error:
        print(f"the control plane did not start: {error}", file=sys.stderr)
    # start() stopped what it had started; a pid left in the state file could be another
    # process' by the time `make demo-stop` reads it.
    for process in plane._processes:
        if not process.alive():
            started.pids.pop(process.name, None)
    started.write()
    return None


def wait_for_status(kubeconfig: Path, timeout: float) -> bool:
    """Show each resource's verdict as it changes, until all are conclusive."""
    goals = {
        ("pb", "resnet-canary"): {"Fail"},
        ("pb", "resnet-stable"): {"Pass", "Fail"},
        ("envp", "inference"): {"Drifted", "InSync"},
        ("cplan", "gpu-fleet"): {"Sufficient", "NearLimit", "Insufficient"},
    }
    deadline = time.monotonic() + timeout
    seen: dict[tuple[str, str], str] = {}
    while time.monotonic() < deadline:
        done = True
        for (kind, name), goal in goals.items():
            raw = kubectl(kubeconfig, "get", kind, name, "-n", NAMESPACE, "-o", "json", check=False)
            status = json.loads(raw).get("status", {}) if raw else {}
            verdict = status.get("verdict") or "(pending)"
            shown = f"{verdict} ({status.get('reason', 'waiting for the first evaluation')})"
            if seen.get((kind, name)) != shown:
                say(f"  {kind}/{name}: {shown}")
                seen[(kind, name)] = shown
            done = done and verdict in goal
        if done:
            return True
        time.sleep(2)
    return False


def run() -> int:
    if (STATE / "state.json").exists():
        say("a previous demo is still running; stopping it first")
        if stop() != 0:
            return 1
    STATE.mkdir(parents=True, exist_ok=True)
    servers = Started(STATE / "state.json")

    end = datetime.now(UTC).replace(second=0, microsecond=0) + AHEAD
    say(
        "generating 7 days of telemetry (canary: +8 ms in the inference stage for the last "
        f"{REGRESSION_MINUTES} min; gpu-node-2 GPU 1 thermally throttling)"
    )
    started = time.monotonic()
    data_file = STATE / "history.om"
    summary = generate_file(scenario(end), data_file)
    say(
        f"  {summary.series} series, {summary.samples:,} samples "
        f"in {time.monotonic() - started:.0f}s"
    )
    say("backfilling Prometheus with promtool tsdb create-blocks-from openmetrics")
    started = time.monotonic()
    backfill(data_file, STATE / "prometheus-data")
    data_file.unlink()
    say(f"  done in {time.monotonic() - started:.0f}s")
    prometheus = LocalPrometheus(STATE / "prometheus-data", on_start=servers)
    prometheus.start()
    say(f"Prometheus ready at {prometheus.url}")

    say("starting the control plane (etcd + kube-apiserver)")
    plane = start_control_plane(servers)
    if plane is None:
        say("stop what is still running (Prometheus) with: make demo-stop")
        return 1
    kubeconfig = plane.kubeconfig
    kubectl(kubeconfig, "apply", "-f", "crds/")
    kubectl(kubeconfig, "wait", "--for=condition=Established", "crd", "--all")
    # Established comes before the API server's cache of the new kinds is filled; until
    # then it answers lists with 429 "storage is (re)initializing", which the operator
    # would log as errors at start. kubectl waits out those 429s (it honours Retry-After).
    kubectl(kubeconfig, "get", ",".join(DEMO_KINDS), "--all-namespaces", "-o", "name")
    kubectl(kubeconfig, "create", "namespace", NAMESPACE)
    kubectl(kubeconfig, "create", "namespace", REFERENCE_NAMESPACE)
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(cluster_objects()))
    say(f"API server ready at {plane.url}")

    port = free_port()
    log = (STATE / "operator.log").open("ab")
    operator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perfguard.cli",
            "run",
            "--namespace",
            NAMESPACE,
            # EnvParity reads only namespaces the operator serves: the reference too.
            "--namespace",
            REFERENCE_NAMESPACE,
            "--prometheus",
            prometheus.url,
            "--http-port",
            str(port),
        ],
        env={
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "PERFGUARD_LOG_JSON": "true",
            "PERFGUARD_HTTP_HOST": "127.0.0.1",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    servers.extra["kubeconfig"] = str(kubeconfig)
    servers("operator", operator.pid)
    say(
        f"operator started (metrics on http://127.0.0.1:{port}/metrics, "
        f"log in {STATE / 'operator.log'})"
    )

    docs = resources(prometheus.url)
    kubectl(kubeconfig, "apply", "-f", "-", input=yaml.safe_dump_all(docs))
    say(
        "applied: PerfBaseline resnet-canary (regressing), PerfBaseline resnet-stable (clean), "
        "EnvParity inference (production runs a newer model), CapacityPlan gpu-fleet"
    )
    say("waiting for verdicts (a breach must hold for sustainFor before it fails)")
    if not wait_for_status(kubeconfig, timeout=240):
        say(
            "not every verdict is conclusive after 4 minutes; showing the state as it is "
            f"(operator log: {STATE / 'operator.log'})"
        )
    time.sleep(3)
    print()
    say("kubectl get perfguard -n ml-prod -o wide")
    print(kubectl(kubeconfig, "get", "perfguard", "-n", NAMESPACE, "-o", "wide"))
    say("kubectl describe pb resnet-canary -n ml-prod")
    print(kubectl(kubeconfig, "describe", "pb", "resnet-canary", "-n", NAMESPACE))
    say("kubectl describe cplan gpu-fleet -n ml-prod")
    print(kubectl(kubeconfig, "describe", "cplan", "gpu-fleet", "-n", NAMESPACE))
    say("kubectl get envp inference -n ml-prod -o jsonpath='{.status.message}'")
    print(
        kubectl(
            kubeconfig,
            "get",
            "envp",
            "inference",
            "-n",
            NAMESPACE,
            "-o",
            "jsonpath={.status.message}",
        )
    )
    print()
    canary_file = STATE / "resnet-canary.yaml"
    canary_file.write_text(yaml.safe_dump(docs[0]))
    perfguard = perfguard_command()
    argv = [*perfguard, "evaluate", "-f", str(canary_file), "--prometheus", prometheus.url]
    say(shlex.join(argv))
    evaluate = subprocess.run(argv, capture_output=True, text=True, check=False)
    print(evaluate.stdout or evaluate.stderr)
    plan_file = STATE / "gpu-fleet.yaml"
    plan_file.write_text(yaml.safe_dump(docs[3]))
    argv = [*perfguard, "evaluate", "-f", str(plan_file), "--prometheus", prometheus.url]
    say(shlex.join(argv))
    evaluate = subprocess.run(argv, capture_output=True, text=True, check=False)
    print(evaluate.stdout or evaluate.stderr)
    argv = [*perfguard, "report", "-n", NAMESPACE]
    say(f"KUBECONFIG={shlex.quote(str(kubeconfig))} {shlex.join(argv)}")
    fleet = subprocess.run(
        argv,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        check=False,
    )
    print(fleet.stdout or fleet.stderr)
    say("the servers keep running so you can explore (from this directory):")
    for hint in explore_hints(kubeconfig, prometheus.url, canary_file):
        print(f"    {hint}")
    print(f"    open {prometheus.url} for the data")
    say("stop everything with: make demo-stop")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stop", action="store_true", help="stop a running demo")
    args = parser.parse_args(argv)
    return stop() if args.stop else run()


if __name__ == "__main__":
    sys.exit(main())
