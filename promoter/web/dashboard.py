"""The read-only dashboard: a pipeline x environment matrix and the JSON API it reads."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import structlog
from aiohttp import web

from promoter.core.pipeline import NAME_PATTERN
from promoter.runtime.bus import Bus
from promoter.web.dashboard_audit import Decisions
from promoter.web.dashboard_html import page
from promoter.web.dashboard_model import matrix

__all__ = ["add_dashboard"]

log = structlog.get_logger(__name__)

MAX_LIMIT = 500
PAGE_DECISIONS = 15
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_STATIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\.(css|js|svg)")
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _json(body: Any, status: int = 200) -> web.Response:
    response = web.json_response(body, status=status, dumps=lambda o: json.dumps(o) + "\n")
    response.headers.update(_HEADERS)
    return response


def _problem(exc: Exception) -> str:
    log.warning("dashboard cannot read state", error=repr(exc))
    return f"cannot read state from NATS: {str(exc) or type(exc).__name__}"


@cache
def _static(name: str) -> bytes | None:
    """A file of promoter/web/static, or None if there is no such file."""
    if not _STATIC_NAME.fullmatch(name):
        return None
    entry = resources.files("promoter.web").joinpath("static", name)
    return entry.read_bytes() if entry.is_file() else None


class _Shared:
    """One computation at a time: requests arriving meanwhile share its answer."""

    def __init__(self, make: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        self._make = make
        self._task: asyncio.Future[dict[str, Any]] | None = None

    async def get(self) -> dict[str, Any]:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._make())
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return await asyncio.shield(self._task)


def _query(request: web.Request) -> tuple[int, str | None]:
    """`limit` and `pipeline` of /api/decisions; ValueError says what is wrong."""
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, not {raw[:40]!r}")
    pipeline = request.query.get("pipeline") or None
    if pipeline is not None and not re.fullmatch(NAME_PATTERN, pipeline):
        raise ValueError(f"pipeline must be a pipeline name ({NAME_PATTERN})")
    return int(raw), pipeline


class _Dashboard:
    """The handlers, over one bus and clock."""

    def __init__(self, bus: Bus, clock: Callable[[], datetime]) -> None:
        self.decisions = Decisions(bus)
        self.matrix = _Shared(lambda: matrix(bus, clock()))

    async def index(self, _request: web.Request) -> web.Response:
        document: dict[str, Any] | None = None
        records: list[dict[str, Any]] = []
        problem = None
        try:
            document = await self.matrix.get()
            records = await self.decisions.last(PAGE_DECISIONS)
        except Exception as exc:  # noqa: BLE001 (the page loads anyway; its script retries)
            problem = _problem(exc)
        response = web.Response(
            text=page(document, records, problem), content_type="text/html", charset="utf-8"
        )
        response.headers.update(_HEADERS)
        return response

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = _static(name)
        if body is None:
            raise web.HTTPNotFound(text="not found\n")
        response = web.Response(body=body)
        response.headers.update(_HEADERS)
        response.headers["Content-Type"] = _TYPES[name[name.rindex(".") :]]
        return response

    async def status(self, _request: web.Request) -> web.Response:
        try:
            return _json(await self.matrix.get())
        except Exception as exc:  # noqa: BLE001 (disconnects surface as many error types)
            return _json({"error": _problem(exc)}, status=503)

    async def recent(self, request: web.Request) -> web.Response:
        try:
            limit, pipeline = _query(request)
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        try:
            return _json({"decisions": await self.decisions.last(limit, pipeline)})
        except Exception as exc:  # noqa: BLE001 (disconnects surface as many error types)
            return _json({"error": _problem(exc)}, status=503)

    async def other(self, request: web.Request) -> web.Response:
        if request.method not in ("GET", "HEAD"):
            response = _json({"error": "read-only: only GET is allowed"}, status=405)
            response.headers["Allow"] = "GET, HEAD"
            return response
        return _json({"error": f"no such API: {request.path}"}, status=404)


def add_dashboard(app: web.Application, bus: Bus, clock: Callable[[], datetime]) -> None:
    """Add `/`, `/static/<file>` and the read-only `/api/...` to `app`."""
    dashboard = _Dashboard(bus, clock)
    app.router.add_get("/", dashboard.index)
    app.router.add_get("/static/{name}", dashboard.static)
    app.router.add_get("/api/status", dashboard.status)
    app.router.add_get("/api/decisions", dashboard.recent)
    app.router.add_route("*", "/api/{tail:.*}", dashboard.other)
