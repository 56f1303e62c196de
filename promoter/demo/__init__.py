"""`promoter demo`: the whole loop on one machine — embedded NATS, a local gitops repo, a worker."""

from __future__ import annotations

import argparse
import asyncio
import sys

__all__ = ["add_demo_command"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from promoter.demo.story import run_demo  # noqa: PLC0415 (keep `promoter --help` fast)
    from promoter.log import configure_logging  # noqa: PLC0415 (same reason)

    if not args.worker_logs and args.log_level is None:
        configure_logging("warning", args.log_format or args.settings.log_format)

    return asyncio.run(
        run_demo(sys.stdout, keep=args.keep, provider=args.provider, http_port=args.http_port)
    )


def add_demo_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `promoter demo`."""
    demo = commands.add_parser(
        "demo",
        help="run the whole story locally: build -> dev -> staging -> approval -> prod -> rollback",
        description="Start an embedded nats-server, create a local bare gitops repository from "
        "the shipped example, run a worker, emit a scripted story (image built, model "
        "registered, health, approval, a degraded signal), print progress and the final status, "
        "clean up, and exit 0. Needs no arguments and no network.",
    )
    demo.add_argument(
        "--worker-logs", action="store_true", help="show the worker's logs (default: warnings only)"
    )
    demo.add_argument(
        "--keep", metavar="DIR", help="keep the gitops repository and state in DIR (must not exist)"
    )
    demo.add_argument(
        "--provider",
        choices=("local", "github"),
        default="local",
        help="where the PRs live: local (a bare repository and PR records in NATS) or github "
        "(the bundled GitHub REST emulator, driven through PyGithub, reviews by webhook)",
    )
    demo.add_argument(
        "--http-port",
        type=int,
        metavar="PORT",
        help="serve the dashboard, probes and metrics on 127.0.0.1:PORT (0: any free port) "
        "while the story plays, and afterwards until Ctrl-C",
    )
    demo.set_defaults(handler=_cmd_demo)
