"""The runtime commands: run, emit, status, explain, history, prs, reviews and operator commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

from promoter.errors import ConfigurationError
from promoter.runtime.app import (
    Runtime,
    bus_options,
    load_targets,
    open_bus,
    publish_in_background,
    run_worker,
    utc_now,
    worker_name,
    worker_options,
)
from promoter.runtime.bus import Bus
from promoter.runtime.emit import (
    command_event,
    current_user,
    health_event,
    image_event,
    model_event,
    pairs,
)
from promoter.runtime.providers import github_setup, require_github
from promoter.runtime.report import (
    compiled_pipelines,
    explain,
    history,
    pr_rows,
    status,
    status_table,
)
from promoter.settings import Settings

__all__ = ["add_runtime_commands", "common_options", "connected", "publish_and_report"]

Action = Callable[[argparse.Namespace, Bus], Awaitable[int]]


def connected(action: Action, *, own: bool = False) -> Callable[[argparse.Namespace], int]:
    """A command handler that runs `action` on a bus: --nats-url, else the embedded server."""

    def handler(args: argparse.Namespace) -> int:
        settings: Settings = args.settings
        url = args.nats_url or settings.nats_url
        state_dir = Path(args.state_dir or settings.state_dir)

        async def go() -> int:
            async with open_bus(
                url, state_dir, bus_options(settings), name=f"promoter-{args.command}", own=own
            ) as bus:
                return await action(args, bus)

        return asyncio.run(go())

    return handler


def _run(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    targets = load_targets([args.pipelines])  # bad pipelines fail before a server starts
    github = github_setup(settings)
    require_github(targets, github)
    options = worker_options(settings)
    port = settings.http_port if args.http_port is None else args.http_port
    host = args.http_host or settings.http_host

    async def work(_args: argparse.Namespace, bus: Bus) -> int:
        publishing = publish_in_background(bus, targets)  # events need not wait for it
        runtime = Runtime(bus, Path(args.state_dir or settings.state_dir), github=github)
        worker = runtime.worker(targets, options, worker_name())
        try:
            async with contextlib.AsyncExitStack() as stack:
                if port is not None:
                    from promoter.web.server import worker_http  # noqa: PLC0415 (only with HTTP)

                    http = worker_http(
                        worker,
                        runtime.workspaces,
                        host,
                        port,
                        check_every=settings.repo_check_interval,
                    )
                    await stack.enter_async_context(http)
                await run_worker(worker)
        finally:
            publishing.cancel()  # done long before, unless NATS went away: the next start redoes it
            with contextlib.suppress(asyncio.CancelledError):
                await publishing
        return 0

    return connected(work, own=True)(args)


async def publish_and_report(bus: Bus, event: dict[str, Any]) -> int:
    """Publish `event` and print whether it was stored or a duplicate."""
    stored = await bus.publish_event(event)
    note = "published" if stored else "duplicate (already published; ignored)"
    print(f"{event['type']} {event['id']}: {note}")
    return 0


def _event_kw(args: argparse.Namespace) -> dict[str, Any]:
    return {"now": utc_now(), "event_id": args.id, "source": args.source}


def _build_event(args: argparse.Namespace) -> dict[str, Any]:
    labels = pairs(getattr(args, "label", None), "--label")
    if args.kind == "image":
        return image_event(args.repository, args.digest, args.tag, labels, **_event_kw(args))
    if args.kind == "model":
        return model_event(
            args.name, args.version, args.uri, args.metric, labels, **_event_kw(args)
        )
    versions = pairs(args.version, "--version")
    return health_event(
        args.pipeline, args.environment, args.status, versions, args.reason, **_event_kw(args)
    )


def _emit(args: argparse.Namespace) -> int:
    event = _build_event(args)  # invalid input fails before any server is started

    async def publish(_args: argparse.Namespace, bus: Bus) -> int:
        return await publish_and_report(bus, event)

    return connected(publish)(args)


async def _status(args: argparse.Namespace, bus: Bus) -> int:
    document = await status(bus)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print("\n".join(status_table(document)))
    return 0


async def _explain(args: argparse.Namespace, bus: Bus) -> int:
    print("\n".join(await explain(bus, args.pipeline, args.environment, utc_now())))
    return 0


async def _history(args: argparse.Namespace, bus: Bus) -> int:
    for entry in await history(bus, args.pipeline):
        if args.json:
            print(json.dumps(entry))
        else:
            pr = f" PR #{entry['pr']}" if entry.get("pr") else ""
            versions = ", ".join(f"{k} {v}" for k, v in entry["versions"].items())
            print(
                f"{entry['at']}  {entry['pipeline']}/{entry['environment']}  {entry['action']}"
                f"{pr}  [{versions}]  {entry['reason']}"
            )
    return 0


async def _prs(args: argparse.Namespace, bus: Bus) -> int:
    runtime = Runtime(bus, Path(args.state_dir or args.settings.state_dir))
    prs = await runtime.prs.all()
    if args.state != "all":
        prs = [p for p in prs if p.state == args.state]
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in prs], indent=2))
    else:
        print("\n".join(pr_rows(prs)))
    return 0


async def _review(args: argparse.Namespace, bus: Bus) -> int:
    compiled = (await compiled_pipelines(bus)).get(args.pipeline)
    repository = compiled.pipeline.spec.repository if compiled else None
    if repository is not None and repository.provider == "github":
        raise ConfigurationError(
            f"{args.pipeline}'s PRs are on GitHub ({repository.url}): review the "
            f"{args.environment} PR there; promoter reads GitHub's reviews"
        )
    runtime = Runtime(bus, Path(args.state_dir or args.settings.state_dir))
    verdict: Literal["approved", "changes_requested"] = (
        "approved" if args.command == "approve" else "changes_requested"
    )
    user = args.as_user or current_user()
    pr, event = await runtime.review(
        args.pipeline,
        args.environment,
        user,
        verdict,
        teams=args.team or [],
        comment=args.comment or "",
    )
    print(f"PR #{pr.number} {verdict.replace('_', ' ')} by {user}")
    print(f"{event['type']} {event['id']}: published")
    return 0


async def _operate(args: argparse.Namespace, bus: Bus) -> int:
    data = {
        "pipeline": args.pipeline,
        "environment": args.environment,
        "action": args.command,
        "by": args.as_user or current_user(),
        "reason": args.reason,
        "bundle": getattr(args, "bundle", None),
    }
    return await publish_and_report(bus, command_event(data, now=utc_now()))


def common_options(parser: argparse.ArgumentParser) -> None:
    """Add --nats-url and --state-dir, which every command that talks to NATS takes."""
    parser.add_argument(
        "--nats-url",
        metavar="URL",
        help="NATS server, or several separated by commas (a cluster) (default: "
        "PROMOTER_NATS_URL, else the state dir's embedded server, started if none runs)",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", help="local state (default: PROMOTER_STATE_DIR or .promoter/)"
    )


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline name")
    parser.add_argument("environment", help="environment name")


def _event_options(parser: argparse.ArgumentParser, *, signal: bool = False) -> None:
    common_options(parser)
    derived = (
        "the content and the time: every signal counts"
        if signal
        else "the content, so re-running the same CI step is deduplicated"
    )
    parser.add_argument("--id", help=f"event id (default: derived from {derived})")
    parser.add_argument("--source", help="CloudEvent source (default: promoter/cli)")
    if not signal:
        parser.add_argument(
            "--label", action="append", metavar="K=V", help="label, e.g. residency=eu (repeatable)"
        )


def _add_emit(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emit = commands.add_parser(
        "emit",
        help="publish one CloudEvent (from any CI job)",
        description="Publish one event to PROMOTER_EVENTS.",
    )
    kinds = emit.add_subparsers(dest="kind", required=True, metavar="KIND")
    image = kinds.add_parser("image", help="an image was built and pushed")
    image.add_argument("--repository", required=True, help="e.g. ghcr.io/acme/api")
    image.add_argument("--digest", required=True, help="sha256:<hex>")
    image.add_argument("--tag", help="tag pushed with it")
    _event_options(image)
    model = kinds.add_parser("model", help="a model version was registered")
    model.add_argument("--name", required=True, help="registered model name")
    model.add_argument("--version", required=True, help="model version")
    model.add_argument("--uri", required=True, help="where the model lives (s3://, models:/...)")
    model.add_argument("--metric", action="append", metavar="K=V", help="metric (repeatable)")
    _event_options(model)
    health = kinds.add_parser(
        "health",
        help="health of what is live in an environment "
        "(the default id includes the time: every signal counts)",
    )
    health.add_argument("--pipeline", required=True)
    health.add_argument("--environment", required=True)
    health.add_argument(
        "--status", required=True, choices=["healthy", "progressing", "degraded", "unknown"]
    )
    health.add_argument(
        "--version",
        action="append",
        metavar="ARTIFACT=VERSION",
        help="the bundle the signal is about (default: the live one)",
    )
    health.add_argument("--reason", help="why, in words")
    _event_options(health, signal=True)
    emit.set_defaults(handler=_emit)


def add_runtime_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the runtime commands on the `promoter` parser."""
    run = commands.add_parser(
        "run",
        help="run a worker: consume events, promote by PR",
        description="Run a worker until SIGTERM/SIGINT (then finish the "
        "batch in hand). Without a NATS URL it starts the embedded server.",
    )
    common_options(run)
    run.add_argument("--pipelines", required=True, metavar="DIR", help="pipeline file or directory")
    run.add_argument(
        "--http-port",
        type=int,
        metavar="PORT",
        help="serve /healthz, /readyz, /metrics and the dashboard on PORT "
        "(default: PROMOTER_HTTP_PORT; unset: no HTTP server)",
    )
    run.add_argument(
        "--http-host",
        metavar="ADDR",
        help="address for --http-port (default: PROMOTER_HTTP_HOST or 127.0.0.1)",
    )
    run.set_defaults(handler=_run)
    _add_emit(commands)

    st = commands.add_parser("status", help="what is live, pending and blocked, per environment")
    common_options(st)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.set_defaults(handler=connected(_status))

    ex = commands.add_parser("explain", help="why an environment holds what it holds")
    common_options(ex)
    _target(ex)
    ex.set_defaults(handler=connected(_explain))

    hi = commands.add_parser("history", help="the audit trail: one record per decision")
    common_options(hi)
    hi.add_argument("pipeline", nargs="?", help="only this pipeline")
    hi.add_argument("--json", action="store_true", help="JSON Lines output")
    hi.set_defaults(handler=connected(_history))

    prs = commands.add_parser("prs", help="PRs of the local provider")
    common_options(prs)
    prs.add_argument("--state", choices=["open", "merged", "closed", "all"], default="all")
    prs.add_argument("--json", action="store_true", help="machine-readable output")
    prs.set_defaults(handler=connected(_prs))

    for name, what in (("approve", "approve"), ("reject", "request changes on")):
        review = commands.add_parser(
            name, help=f"{what} the environment's open PR (local provider)"
        )
        common_options(review)
        _target(review)
        review.add_argument("--as", dest="as_user", metavar="USER", help="reviewer (default: you)")
        review.add_argument("--team", action="append", metavar="TEAM", help="reviewer's team")
        review.add_argument("--comment", "-m", help="review comment")
        review.set_defaults(handler=connected(_review))

    helps = {
        "hold": "freeze an environment: nothing is proposed or merged until resume",
        "resume": "lift a hold",
        "promote": "promote now, skipping gates that wait (soak, approvals, window)",
        "rollback": "revert to the previous bundle (or --bundle) and hold",
    }
    for name, text in helps.items():
        op = commands.add_parser(name, help=text, description=text)
        common_options(op)
        _target(op)
        if name in ("promote", "rollback"):
            op.add_argument("--bundle", help="bundle id (see `promoter explain`)")
        op.add_argument("--reason", help="why (recorded in history)")
        op.add_argument("--as", dest="as_user", metavar="USER", help="who (default: you)")
        op.set_defaults(handler=connected(_operate))
