"""Helpers handlers share: request bodies, pagination, PR lookup and rendering, webhooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from promoter.testing.github_emulator import pullshapes
from promoter.testing.github_emulator.router import ApiError, Ctx, HookEvent, Reply, not_found
from promoter.testing.github_emulator.shapes import Links, user
from promoter.testing.github_emulator.store import Pull, RepoState, Review
from promoter.testing.github_emulator.world import World, association, view

__all__ = [
    "closed_hook",
    "find_pull",
    "json_object",
    "links",
    "page",
    "pull_shape",
    "review_hook",
    "world_of",
]

T = TypeVar("T")
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100


def world_of(ctx: Ctx) -> World:
    """The emulator state the request runs against."""
    world: World = ctx.world
    return world


def links(ctx: Ctx) -> Links:
    """The URL prefixes for this request's answer."""
    return Links(ctx.api, ctx.html)


def json_object(ctx: Ctx) -> dict[str, Any]:
    """The request body as a JSON object (no body: {}); 400 for anything else."""
    if ctx.body is None:
        return {}
    if not isinstance(ctx.body, dict):
        raise ApiError(400, "Problems parsing JSON")
    return ctx.body


def _int(ctx: Ctx, name: str, default: int) -> int:
    value = ctx.query.get(name, "")
    return int(value) if value.isdigit() else default


def page(ctx: Ctx, items: Sequence[Any]) -> Reply:
    """One page of `items` per `page`/`per_page`, with GitHub's `Link` header."""
    per_page = min(max(_int(ctx, "per_page", DEFAULT_PER_PAGE), 1), MAX_PER_PAGE)
    current = max(_int(ctx, "page", 1), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    start = (current - 1) * per_page
    reply = Reply(200, list(items[start : start + per_page]))
    if last > 1:
        reply.headers["Link"] = _link_header(ctx, current, last)
    return reply


def _link_header(ctx: Ctx, current: int, last: int) -> str:
    def url(number: int) -> str:
        query = [(k, v) for k, v in ctx.query.items() if k != "page"]
        return f"<{ctx.api}{ctx.path}?{urlencode([*query, ('page', str(number))])}>"

    rels: list[str] = []
    if current > 1:
        rels.append(f'{url(current - 1)}; rel="prev"')
    if current < last:
        rels.append(f'{url(current + 1)}; rel="next"')
        rels.append(f'{url(last)}; rel="last"')
    if current > 1:
        rels.append(f'{url(1)}; rel="first"')
    return ", ".join(rels)


def find_pull(world: World, state: RepoState, ctx: Ctx, name: str = "pull_number") -> Pull:
    """The PR the path names, synced with its branches; 404 if there is none."""
    pr = state.pulls.get(ctx.number(name))
    if pr is None:
        raise not_found()
    world.sync(state, pr, ctx.now)
    return pr


def pull_shape(
    ctx: Ctx,
    state: RepoState,
    pr: Pull,
    *,
    full: bool,
    compute: bool = False,
    repo: Any = None,
) -> dict[str, Any]:
    """The PR as the API shows it (full: with mergeability, computed if `compute`)."""
    world = world_of(ctx)
    repo = repo or world.repo_shape(links(ctx), state, ctx.now, None)
    null = ctx.fault is not None and ctx.fault.kind == "mergeable-null"
    extras = view(world, state, pr, compute=compute, null=null) if full else None
    who = association(world, state, pr.user)
    return pullshapes.pull(links(ctx), state, pr, repo=repo, association=who, view=extras)


def _base_payload(ctx: Ctx, state: RepoState, pr: Pull) -> dict[str, Any]:
    world = world_of(ctx)
    repo = world.repo_shape(links(ctx), state, ctx.now, None)
    return {
        "pull_request": pull_shape(ctx, state, pr, full=True, repo=repo),
        "repository": repo,
        "sender": user(links(ctx), ctx.login),
    }


def closed_hook(ctx: Ctx, state: RepoState, pr: Pull) -> None:
    """Queue the `pull_request` closed delivery (merged or not)."""
    payload = {"action": "closed", "number": pr.number, **_base_payload(ctx, state, pr)}
    ctx.hooks.append(HookEvent("pull_request", payload))


def review_hook(ctx: Ctx, state: RepoState, pr: Pull, item: Review, action: str) -> None:
    """Queue a `pull_request_review` delivery (submitted or dismissed)."""
    world = world_of(ctx)
    shape = pullshapes.review(
        links(ctx), state, item, association(world, state, item.user), hook=True
    )
    payload = {"action": action, "review": shape, **_base_payload(ctx, state, pr)}
    ctx.hooks.append(HookEvent("pull_request_review", payload))
