"""The `promoter gateway` and `promoter ingest` commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import structlog

from promoter.errors import ConfigurationError
from promoter.gateway.config import source_config, source_configs
from promoter.gateway.replays import kv_replays
from promoter.gateway.server import Gateway, serve
from promoter.runtime.app import on_stop_signals, utc_now
from promoter.runtime.bus import Bus
from promoter.runtime.commands import common_options, connected, publish_and_report
from promoter.settings import Settings, read_secret
from promoter.sources.base import Delivery, DeliveryError, SourceConfig
from promoter.sources.registry import SOURCES, normalize, source_named

__all__ = ["add_gateway_commands"]

log = structlog.get_logger("promoter.gateway")

EXIT_REJECTED = 2


def _gateway(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    configs = source_configs(settings)  # bad settings fail before any server starts
    host = args.host or settings.gateway_host
    port = settings.gateway_port if args.port is None else args.port

    async def serve_until_stopped(_args: argparse.Namespace, bus: Bus) -> int:
        stop = asyncio.Event()
        with on_stop_signals(stop.set):
            replays = await kv_replays(bus.js, settings.gateway_replay_window, bus.options.replicas)
            gateway = Gateway(
                bus, configs, utc_now, max_body=settings.gateway_max_body, replays=replays
            )
            async with serve(gateway, host, port) as bound:
                unsigned = sorted(n for n, c in configs.items() if c.secret is None)
                log.info("gateway listening", url=f"http://{host}:{bound}/hooks/<source>")
                if unsigned:
                    log.warning(
                        "sources without a secret accept any sender that reaches the gateway",
                        sources=unsigned,
                    )
                await stop.wait()
        log.info("gateway stopped", answered=gateway.counts)
        return 0

    return connected(serve_until_stopped, own=True)(args)


def _headers(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"--headers {path}: cannot read a JSON object: {exc}") from None
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ConfigurationError(f"--headers {path}: must be a JSON object of name -> string")
    return raw


def _body(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from None


def _delivery(name: str, body: bytes, headers: dict[str, str]) -> Delivery:
    """The delivery as the gateway would see it; a missing Content-Type is the source's own."""
    if not any(k.lower() == "content-type" for k in headers):
        media = source_named(name).media_type
        if name == "cloudevents" and body.lstrip()[:1] == b"[":
            media = "application/cloudevents-batch+json"
        headers = {**headers, "Content-Type": media}
    return Delivery.of(body, headers)


def _ingest_config(args: argparse.Namespace, settings: Settings) -> SourceConfig:
    secret = args.secret
    if args.secret_file is not None:
        secret = read_secret(Path(args.secret_file), "--secret-file")
    return source_config(args.source, settings.sources.get(args.source), secret=secret)


def _ingest(args: argparse.Namespace) -> int:
    settings: Settings = args.settings
    config = _ingest_config(args, settings)
    delivery = _delivery(args.source, _body(args.file), _headers(args.headers))
    try:
        result = normalize(args.source, delivery, config, utc_now())
    except DeliveryError as exc:
        print(f"promoter ingest: rejected ({exc.kind}): {exc}", file=sys.stderr)
        return EXIT_REJECTED
    for reason in result.ignored:
        print(f"ignored: {reason}", file=sys.stderr)
    if args.dry_run:
        for event in result.events:
            print(json.dumps(event, separators=(",", ":")))
        return 0
    if not result.events:
        return 0  # nothing to publish: no server is started

    async def publish(_args: argparse.Namespace, bus: Bus) -> int:
        for event in result.events:
            await publish_and_report(bus, event)
        return 0

    return connected(publish)(args)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=78)


def _source_list() -> str:
    return "\n".join(f"  {name:<20} {s.summary}" for name, s in SOURCES.items())


def add_gateway_commands(commands: Any) -> None:
    """Register `gateway` and `ingest` on the `promoter` parser."""
    gateway = commands.add_parser(
        "gateway",
        help="receive webhooks (registries, GitHub, MLflow, Alertmanager, Argo CD) into NATS",
        description=_wrap(
            "Serve POST /hooks/<source> and GET /healthz until SIGTERM/SIGINT. "
            "Answers: 202 published (ids), 200 valid but ignored, 400 malformed, "
            "401 bad or missing signature, 404 unknown source, 413 too large, "
            "415 wrong Content-Type, 503 NATS down "
            "(retry). Secrets: PROMOTER_SOURCES__<SOURCE>__SECRET_FILE (or __SECRET). Without a "
            "NATS URL it uses the state dir's embedded server, like `promoter run`. "
            "Set-up of each source: deploy/webhooks.md."
        ),
        epilog="sources:\n" + _source_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common_options(gateway)
    gateway.add_argument("--host", help="address to listen on (default: PROMOTER_GATEWAY_HOST)")
    gateway.add_argument(
        "--port", type=int, help="port (default: PROMOTER_GATEWAY_PORT or 8080; 0: any)"
    )
    gateway.set_defaults(handler=_gateway)

    ingest = commands.add_parser(
        "ingest",
        help="normalize one saved webhook delivery offline (and publish it)",
        description=_wrap(
            "Run a source's adapter on one delivery body, exactly as the gateway would, "
            "and publish the events (or print them with --dry-run, one CloudEvent per line). "
            "Exit 0 when accepted (even if every event was ignored; reasons go to stderr), "
            "2 when rejected (bad signature, malformed, wrong Content-Type). Without "
            "--headers, the Content-Type is the one the source sends."
        ),
        epilog="sources:\n" + _source_list(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common_options(ingest)
    ingest.add_argument(
        "--source", required=True, choices=sorted(SOURCES), metavar="NAME", help="see below"
    )
    ingest.add_argument(
        "--headers", metavar="FILE", help="JSON object of header name -> value, as delivered"
    )
    secret = ingest.add_mutually_exclusive_group()
    secret.add_argument(
        "--secret",
        metavar="S",
        help="verify with this secret (visible to other users in ps; prefer --secret-file)",
    )
    secret.add_argument("--secret-file", metavar="F", help="verify with the secret in this file")
    ingest.add_argument("--dry-run", action="store_true", help="print events, publish nothing")
    ingest.add_argument("file", metavar="FILE|-", help="the raw body ('-': standard input)")
    ingest.set_defaults(handler=_ingest)
