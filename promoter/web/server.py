"""The worker's HTTP server: /healthz, /readyz, /metrics, the dashboard and its JSON API."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import structlog
from aiohttp import web

from promoter.runtime.bus import Bus
from promoter.runtime.effects import Workspaces
from promoter.runtime.worker import Worker
from promoter.web.dashboard import add_dashboard
from promoter.web.probes import Reachability, Readiness
from promoter.web.serving import metrics, serve_app

__all__ = ["http_app", "worker_http"]

log = structlog.get_logger(__name__)


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o) + "\n")


def http_app(bus: Bus, readiness: Readiness, clock: Callable[[], datetime]) -> web.Application:
    """The application a worker serves with `--http-port`."""

    async def healthz(_request: web.Request) -> web.Response:
        return _json({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        checks = readiness.checks()
        ready = all(verdict == "ok" for verdict in checks.values())
        return _json(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    add_dashboard(app, bus, clock)
    return app


@asynccontextmanager
async def worker_http(
    worker: Worker, workspaces: Workspaces, host: str, port: int, *, check_every: float = 60.0
) -> AsyncIterator[int]:
    """Serve `worker`'s probes, metrics and dashboard while the block runs; yields the port.

    Readiness checks the worker's repositories every `check_every` seconds in the background.
    """
    repositories = {(t.repository, t.base) for t in worker.targets.values()}

    def probe(url: str, branch: str) -> str | None:
        return workspaces(url).reachable(branch)

    reach = Reachability(repositories, probe, interval=check_every)
    readiness = Readiness(worker.bus, worker.consumer_bound, reach)
    checking = asyncio.create_task(reach.run(), name="check-repositories")
    try:
        app = http_app(worker.bus, readiness, worker.clock)
        async with serve_app(app, host, port) as bound:
            log.info("http listening", url=f"http://{host}:{bound}/", probes="/healthz /readyz")
            yield bound
    finally:
        checking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checking
