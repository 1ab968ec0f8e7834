"""`perfguard run | crds | evaluate | report` — the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perfguard import __version__


def _cmd_crds(args: argparse.Namespace) -> int:
    from perfguard.api.crdgen import render_all

    outputs = [Path(p) for p in args.output]
    rendered = render_all()
    if args.check:
        stale = [
            str(out / name)
            for out in outputs
            for name, text in rendered.items()
            if not (out / name).exists() or (out / name).read_text() != text
        ]
        if stale:
            print("CRDs are out of date (run `make crds`): " + ", ".join(stale), file=sys.stderr)
            return 1
        return 0
    for out in outputs:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (out / name).write_text(text)
            print(f"wrote {out / name}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio
    import os

    import kopf

    from perfguard.config import OperatorConfig

    if args.prometheus:
        os.environ["PERFGUARD_PROMETHEUS_URL"] = args.prometheus
    if args.log_level:
        os.environ["PERFGUARD_LOG_LEVEL"] = args.log_level
    if args.http_port is not None:
        os.environ["PERFGUARD_HTTP_PORT"] = str(args.http_port)
    if args.namespace:
        os.environ["PERFGUARD_NAMESPACES"] = ",".join(args.namespace)
    if args.peering:
        os.environ["PERFGUARD_PEERING"] = args.peering
    config = OperatorConfig.from_env()

    import perfguard.handlers  # noqa: F401 - registers the handlers

    asyncio.run(
        kopf.operator(
            clusterwide=not config.namespaces,
            namespaces=list(config.namespaces),
            standalone=config.standalone,
            peering_name=config.peering,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="perfguard",
        description="perfguard: performance baselines, environment parity "
        "and GPU capacity for Kubernetes workloads.",
    )
    parser.add_argument("--version", action="version", version=f"perfguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator (in a cluster, or against KUBECONFIG)")
    run.add_argument("--prometheus", help="default Prometheus URL [PERFGUARD_PROMETHEUS_URL]")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable) [PERFGUARD_NAMESPACES]",
    )
    run.add_argument("--log-level", help="DEBUG, INFO, WARNING [PERFGUARD_LOG_LEVEL]")
    run.add_argument(
        "--http-port",
        type=int,
        help="port of /healthz, /readyz, /metrics [PERFGUARD_HTTP_PORT, 8080]",
    )
    run.add_argument(
        "--peering",
        help="Kopf peering name for an HA pair [PERFGUARD_PEERING]; standalone without it",
    )
    run.set_defaults(func=_cmd_run)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API models")
    crds.add_argument(
        "-o",
        "--output",
        action="append",
        default=None,
        help="directory to write to (repeatable; default: crds/ and the chart's)",
    )
    crds.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the files differ from what the models generate",
    )
    crds.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "output", "unset") is None:
        args.output = ["crds", "charts/perfguard/crds"]
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
