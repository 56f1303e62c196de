"""The aiohttp application: API dispatch (auth, rate limits, faults, call log), git, control."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import structlog
from aiohttp import web

from promoter.testing.github_emulator import gitapi, misc, pulls, reviews
from promoter.testing.github_emulator.auth import Caller, authenticate, verify_jwt
from promoter.testing.github_emulator.calls import Call, CallLog
from promoter.testing.github_emulator.faults import Fault
from promoter.testing.github_emulator.githttp import serve_git
from promoter.testing.github_emulator.hooks import HookSender
from promoter.testing.github_emulator.ratelimit import Budget
from promoter.testing.github_emulator.router import DOCS, ApiError, Ctx, Reply, Route, Router
from promoter.testing.github_emulator.users import stable_id
from promoter.testing.github_emulator.world import World

__all__ = ["API_PREFIX", "API_VERSION", "Server"]

log = structlog.get_logger("promoter.testing.github_emulator")

API_PREFIX = "/api/v3"
API_VERSION = "2022-11-28"
ANONYMOUS_LIMIT = 60
RATE_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
SECONDARY_DOCS = f"{RATE_DOCS}#about-secondary-rate-limits"
JSON_TYPE = "application/json; charset=utf-8"
_GIT_PATH = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)\.git(?P<tail>/.*)?$")
ROUTES: list[Route] = [*misc.ROUTES, *pulls.ROUTES, *reviews.ROUTES, *gitapi.ROUTES]


def secondary_message(request_id: str) -> str:
    """GitHub's secondary rate limit message (PyGithub classifies it by its first words)."""
    return (
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
        "again. If you reach out to GitHub Support for help, please include the request ID "
        f"{request_id}."
    )


@dataclass
class _Exchange:
    """One API request on its way through the dispatcher."""

    method: str
    path: str
    query: str
    request_id: str
    now: float
    route: Route | None
    params: dict[str, str]
    caller: Caller | None = None
    budget: Budget | None = None
    fault: Fault | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def who(self) -> str:
        """The rate-limit identity."""
        if self.caller is None:
            return "anonymous"
        if self.route is not None and self.route.auth == "jwt":
            return f"app:{self.caller.app_id}"
        return self.caller.login


class Server:
    """The API under `/api/v3`, git under `/<owner>/<repo>.git`, control under `/_emulator/`."""

    def __init__(self, world: World, calls: CallLog, hooks: HookSender) -> None:
        self.world = world
        self.calls = calls
        self.hooks = hooks
        self.router = Router(ROUTES)
        self.record_bodies = False
        self.origin = ""

    def app(self) -> web.Application:
        """The aiohttp application (every path goes through `handle`)."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request to the API, git, or the control endpoints."""
        raw = request.rel_url.raw_path
        if raw == API_PREFIX or raw.startswith(API_PREFIX + "/"):
            return await self._api(request, raw[len(API_PREFIX) :] or "/")
        if raw.startswith("/_emulator/"):
            return await self._control(request, raw)
        found = _GIT_PATH.match(raw)
        if found:
            owner, repo = unquote(found["owner"]), unquote(found["repo"])
            return await serve_git(request, self.world, owner, repo, found["tail"] or "")
        return _json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    async def _control(self, request: web.Request, raw: str) -> web.StreamResponse:
        if raw == "/_emulator/calls" and request.method == "GET":
            return _json(200, [c.as_json() for c in self.calls.snapshot()])
        if raw == "/_emulator/reset" and request.method == "POST":
            self.calls.clear()
            return _json(200, {"reset": True})
        if raw == "/_emulator/faults" and request.method == "POST":
            try:
                spec = json.loads(await request.read() or b"{}")
                self.world.faults.configure(spec)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                return _json(400, {"message": f"bad fault spec: {exc}"})
            return _json(200, {"configured": True})
        return _json(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})

    async def _api(self, request: web.Request, path: str) -> web.StreamResponse:
        matched = self.router.match(request.method, path)
        route, params = matched or (None, {})
        ex = _Exchange(
            method=request.method,
            path=path,
            query=request.rel_url.raw_query_string,
            request_id=_request_id(),
            now=self.world.clock(),
            route=route,
            params=params,
        )
        hooks: list[Any] = []
        try:
            reply = await self._dispatch(request, ex, hooks)
        except ApiError as exc:
            doc = f"{DOCS}/{route.doc}" if route and route.doc else DOCS
            ex.headers.update(exc.headers)
            reply = Reply(exc.status, exc.body(doc))
        if hooks:
            self.hooks.send(hooks)
        return self._respond(ex, reply)

    async def _dispatch(self, request: web.Request, ex: _Exchange, hooks: list[Any]) -> Reply:
        self._authenticate(request, ex)
        self._limit(ex)
        route = ex.route
        if route is None:
            raise ApiError(404, "Not Found")
        ex.fault = self.world.faults.pick(ex.method, route.name, ex.path)
        _inject_before(ex)
        ctx = Ctx(
            world=self.world,
            method=ex.method,
            path=ex.path,
            params=ex.params,
            query=request.query,
            body=await _body(request),
            login=ex.caller.login if ex.caller else "",
            api=self.origin + API_PREFIX,
            html=self.origin,
            now=ex.now,
            route=route,
            caller=ex.caller,
            fault=ex.fault,
        )
        try:
            reply = await asyncio.to_thread(route.handler, ctx)
        except ApiError:
            raise
        except Exception as exc:
            log.exception("handler failed", route=route.name, error=str(exc))
            raise ApiError(500, "Server Error") from exc
        finally:
            hooks.extend(ctx.hooks)
        if ex.fault is not None and ex.fault.kind == "5xx-after":
            raise ApiError(ex.fault.option("status", 502), "Server Error")
        return reply

    def _authenticate(self, request: web.Request, ex: _Exchange) -> None:
        header = request.headers.get("Authorization")
        if ex.route is None and not header:
            return
        users, now = self.world.users, ex.now
        if ex.route is not None and ex.route.auth == "jwt":
            ex.caller = verify_jwt(users, header, now)
        else:
            ex.caller = authenticate(users, self.world.tokens, header, now)

    def _limit(self, ex: _Exchange) -> None:
        limits = self.world.limits
        anonymous = ANONYMOUS_LIMIT if ex.caller is None else None
        if ex.route is not None and not ex.route.charged:
            ex.budget = limits.budget(ex.who, ex.now, anonymous)
            return
        ex.budget, ok = limits.charge(ex.who, ex.now, anonymous)
        if not ok:
            raise ApiError(403, _primary_message(ex.caller), doc=RATE_DOCS)
        route = ex.route
        counted = route is not None and route.write and route.auth != "jwt"
        if counted and not limits.write(ex.who, ex.now):
            message = secondary_message(ex.request_id)
            raise ApiError(403, message, doc=SECONDARY_DOCS, headers={"retry-after": "60"})

    def _respond(self, ex: _Exchange, reply: Reply) -> web.Response:
        headers = {
            "x-github-api-version-selected": API_VERSION,
            "x-github-request-id": ex.request_id,
            "x-github-media-type": "github.v3; format=json",
        }
        if ex.budget is None:  # refused before counting (401): show the bucket as it stands
            anonymous = ANONYMOUS_LIMIT if ex.caller is None else None
            ex.budget = self.world.limits.budget(ex.who, ex.now, anonymous)
        headers.update(ex.budget.headers())
        if ex.fault is not None and ex.fault.kind == "primary":
            reset = int(ex.now) + ex.fault.option("reset_in", 1)
            headers.update(
                {
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": str(ex.budget.limit),
                    "x-ratelimit-reset": str(reset),
                }
            )
        headers.update(ex.headers)
        headers.update(reply.headers)
        route = ex.route.name if ex.route else None
        call = Call(
            method=ex.method,
            path=ex.path,
            route=route,
            status=reply.status,
            login=ex.caller.login if ex.caller else None,
            write=ex.route.write if ex.route else ex.method in ("POST", "PATCH", "PUT", "DELETE"),
            fault=ex.fault.kind if ex.fault else None,
            query=ex.query,
            body=reply.body if self.record_bodies else None,
        )
        self.calls.add(call)
        if reply.body is None:
            return web.Response(status=reply.status, headers=headers)
        return _json(reply.status, reply.body, headers)


def _inject_before(ex: _Exchange) -> None:
    """Answer now for faults that stop a request before it is handled."""
    fault = ex.fault
    if fault is None:
        return
    retry = str(fault.option("retry_after", 1))
    if fault.kind == "5xx":
        raise ApiError(fault.option("status", 502), "Server Error")
    if fault.kind == "429":
        raise ApiError(
            429,
            secondary_message(ex.request_id),
            doc=SECONDARY_DOCS,
            headers={"Retry-After": retry},
        )
    if fault.kind == "secondary":
        raise ApiError(
            403,
            secondary_message(ex.request_id),
            doc=SECONDARY_DOCS,
            headers={"retry-after": retry},
        )
    if fault.kind == "primary":
        raise ApiError(403, _primary_message(ex.caller), doc=RATE_DOCS)


def _primary_message(caller: Caller | None) -> str:
    if caller is None:
        return "API rate limit exceeded for 127.0.0.1."
    if caller.installation_id is not None:
        return f"API rate limit exceeded for installation ID {caller.installation_id}."
    return f"API rate limit exceeded for user ID {stable_id(caller.login)}."


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "Problems parsing JSON") from None


def _request_id() -> str:
    parts = (secrets.token_hex(2), secrets.token_hex(2), secrets.token_hex(3), secrets.token_hex(3))
    return ":".join(p.upper() for p in parts) + f":{secrets.token_hex(4).upper()}"


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={**(headers or {}), "Content-Type": JSON_TYPE},
    )
