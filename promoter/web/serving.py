"""Serve an aiohttp application on a host and port for the length of a block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from promoter.runtime.metrics import CONTENT_TYPE, exposition

__all__ = ["metrics", "serve_app"]


async def metrics(_request: web.Request) -> web.Response:
    """`GET /metrics`: the process's metrics in Prometheus text format."""
    response = web.Response(body=exposition())
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


@asynccontextmanager
async def serve_app(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve `app` on host:port until the block exits; yields the bound port (port 0: any)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound: int = runner.addresses[0][1]
        yield bound
    finally:
        await runner.cleanup()
