"""Pull request operations: list, create, get, update, check-if-merged and merge."""

from __future__ import annotations

from typing import Any

from promoter.testing.github_emulator import gitrepo, pullshapes
from promoter.testing.github_emulator.common import (
    closed_hook,
    find_pull,
    json_object,
    links,
    page,
    pull_shape,
    world_of,
)
from promoter.testing.github_emulator.merging import merge_pull
from promoter.testing.github_emulator.router import (
    Ctx,
    Reply,
    Route,
    not_found,
    unprocessable,
)
from promoter.testing.github_emulator.store import Pull, RepoState
from promoter.testing.github_emulator.world import World, stats_of

__all__ = ["ROUTES"]

_PULLS = "/repos/{owner}/{repo}/pulls"
_PULL = "/repos/{owner}/{repo}/pulls/{pull_number}"
_STATES = ("open", "closed", "all")


def _sort_key(sort: str) -> Any:
    def key(pr: Pull) -> tuple[float, int]:
        if sort == "updated":
            return (pr.updated_at, pr.number)
        return (pr.created_at, pr.number)

    return key


def list_pulls(ctx: Ctx) -> Reply:
    """GET /pulls: pull-request-simple items filtered by state, head and base, sorted, paged."""
    world = world_of(ctx)
    wanted = ctx.query.get("state", "open")
    if wanted not in _STATES:
        raise unprocessable(resource="Search", field="state", code="invalid")
    sort = ctx.query.get("sort", "created")
    default_direction = "desc" if sort == "created" else "asc"
    descending = ctx.query.get("direction", default_direction) == "desc"
    head_owner, _, head = ctx.query.get("head", "").rpartition(":")
    base = ctx.query.get("base")
    with world.repo(ctx) as state:
        found = []
        branches = world.branches(state)
        for pr in state.pulls.values():
            world.sync(state, pr, ctx.now, branches)
            if wanted not in {"all", pr.state}:
                continue
            if head_owner and (head_owner != state.owner or pr.head != head):
                continue  # a bare head (no "owner:") is ignored, as GitHub does
            if base and pr.base != base:
                continue
            found.append(pr)
        if sort == "popularity":
            counts = {p.number: sum(c.issue == p.number for c in state.comments) for p in found}
            found.sort(key=lambda p: (counts[p.number], p.number))
        else:
            found.sort(key=_sort_key(sort))
        if descending:
            found.reverse()
        repo = world.repo_shape(links(ctx), state, ctx.now, None)
        return page(ctx, [pull_shape(ctx, state, pr, full=False, repo=repo) for pr in found])


def _branch_sha(world: World, state: RepoState, field: str, branch: Any) -> str:
    if not isinstance(branch, str) or not branch:
        raise unprocessable(resource="PullRequest", field=field, code="missing_field")
    sha = gitrepo.ref_sha(world.git_dir(state), f"refs/heads/{branch}")
    if sha is None:
        raise unprocessable(resource="PullRequest", field=field, code="invalid")
    return sha


def create_pull(ctx: Ctx) -> Reply:
    """POST /pulls: 201, or 422 for a missing branch, no commits, or a duplicate open PR."""
    world = world_of(ctx)
    body = json_object(ctx)
    with world.repo(ctx, "write") as state:
        head_owner, _, head = str(body.get("head") or "").rpartition(":")
        if head_owner and head_owner != state.owner:
            raise unprocessable(resource="PullRequest", field="head", code="invalid")
        base = body.get("base")
        title = body.get("title")
        if not isinstance(title, str) or not title:
            raise unprocessable(resource="PullRequest", field="title", code="missing_field")
        head_sha = _branch_sha(world, state, "head", head)
        base_sha = _branch_sha(world, state, "base", base)
        branches = world.branches(state)
        for other in state.pulls.values():
            world.sync(state, other, ctx.now, branches)
            if other.state == "open" and (other.head, other.base) == (head, base):
                raise unprocessable(
                    resource="PullRequest",
                    code="custom",
                    message=f"A pull request already exists for {state.owner}:{head}.",
                )
        if gitrepo.is_ancestor(world.git_dir(state), head_sha, base_sha):
            raise unprocessable(
                resource="PullRequest",
                code="custom",
                message=f"No commits between {base} and {head}",
            )
        pr = Pull(
            number=state.next_number,
            id=state.new_id(),
            title=title,
            body=body.get("body"),
            user=ctx.login,
            head=head,
            base=str(base),
            head_sha=head_sha,
            base_sha=base_sha,
            draft=bool(body.get("draft", False)),
            maintainer_can_modify=bool(body.get("maintainer_can_modify", False)),
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        state.pulls[pr.number] = pr
        state.next_number += 1
        shape = pull_shape(ctx, state, pr, full=True)
        return Reply(201, shape, {"Location": shape["url"]})


def get_pull(ctx: Ctx) -> Reply:
    """GET /pulls/{n}: the full shape; mergeability is unknown on the first read after a change."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx)
        return Reply(200, pull_shape(ctx, state, pr, full=True, compute=True))


def _set_state(ctx: Ctx, world: World, state: RepoState, pr: Pull, wanted: Any) -> None:
    if wanted not in ("open", "closed"):
        raise unprocessable(resource="PullRequest", field="state", code="invalid")
    if wanted == pr.state:
        return
    if wanted == "closed":
        pr.frozen_stats = stats_of(world, state, pr)
        pr.state, pr.closed_at = "closed", ctx.now
        closed_hook(ctx, state, pr)
        return
    if pr.merged:
        raise unprocessable(
            resource="PullRequest",
            field="state",
            code="custom",
            message="state cannot be changed. The pull request has already been merged.",
        )
    pr.state, pr.closed_at, pr.frozen_stats = "open", None, None
    world.sync(state, pr, ctx.now)
    if pr.state != "open":
        raise unprocessable(
            resource="PullRequest",
            field="state",
            code="custom",
            message="state cannot be changed. The head or base branch was deleted.",
        )


def update_pull(ctx: Ctx) -> Reply:
    """PATCH /pulls/{n}: title, body, state, base, maintainer_can_modify."""
    world = world_of(ctx)
    body = json_object(ctx)
    with world.repo(ctx, "write") as state:
        pr = find_pull(world, state, ctx)
        if "base" in body:
            _branch_sha(world, state, "base", body["base"])
            pr.base = body["base"]
        if isinstance(body.get("title"), str):
            pr.title = body["title"]
        if "body" in body:
            pr.body = body["body"]
        if "maintainer_can_modify" in body:
            pr.maintainer_can_modify = bool(body["maintainer_can_modify"])
        pr.updated_at = ctx.now
        if "state" in body:
            _set_state(ctx, world, state, pr, body["state"])
        world.sync(state, pr, ctx.now)
        return Reply(200, pull_shape(ctx, state, pr, full=True))


def list_commits(ctx: Ctx) -> Reply:
    """GET /pulls/{n}/commits: the PR's commits, oldest first."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx)
        path = world.git_dir(state)
        span = f"{pr.base_sha}..{pr.head_sha}"
        shas = gitrepo.git(path, "rev-list", "--reverse", span).stdout.split()
        infos = [gitrepo.commit_info(path, sha) for sha in shas]
        return page(ctx, [pullshapes.commit(links(ctx), state, info) for info in infos])


def check_merged(ctx: Ctx) -> Reply:
    """GET /pulls/{n}/merge: 204 when merged, else 404."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        pr = find_pull(world, state, ctx)
        if not pr.merged:
            raise not_found()
        return Reply(204)


def merge(ctx: Ctx) -> Reply:
    """PUT /pulls/{n}/merge: merge, squash or rebase in the bare repository."""
    world = world_of(ctx)
    body = json_object(ctx)
    with world.repo(ctx, "write") as state:
        pr = find_pull(world, state, ctx)
        sha = merge_pull(world, state, pr, body=body, login=ctx.login, now=ctx.now, fault=ctx.fault)
        closed_hook(ctx, state, pr)
        return Reply(
            200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}
        )


ROUTES = [
    Route("GET", _PULLS, list_pulls, "pulls/pulls#list-pull-requests"),
    Route("POST", _PULLS, create_pull, "pulls/pulls#create-a-pull-request"),
    Route("GET", _PULL, get_pull, "pulls/pulls#get-a-pull-request"),
    Route("PATCH", _PULL, update_pull, "pulls/pulls#update-a-pull-request"),
    Route("GET", f"{_PULL}/commits", list_commits, "pulls/pulls#list-commits-on-a-pull-request"),
    Route(
        "GET", f"{_PULL}/merge", check_merged, "pulls/pulls#check-if-a-pull-request-has-been-merged"
    ),
    Route("PUT", f"{_PULL}/merge", merge, "pulls/pulls#merge-a-pull-request"),
]
