"""The read-only dashboard: a pipeline x environment matrix and the JSON API it reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from promoter.runtime.bus import Bus
from promoter.runtime.report import status

__all__ = ["add_dashboard"]


def add_dashboard(app: web.Application, bus: Bus, clock: Callable[[], datetime]) -> None:
    """Add `/` and `/api/...` to `app` (placeholder until the dashboard lands)."""
    del clock

    async def api_status(_request: web.Request) -> web.Response:
        return web.json_response(await status(bus))

    app.router.add_get("/api/status", api_status)
