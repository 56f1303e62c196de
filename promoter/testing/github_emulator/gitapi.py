"""Git data over the API: refs, branches, commits and commit statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promoter.testing.github_emulator import gitrepo, pullshapes
from promoter.testing.github_emulator.common import json_object, links, page, world_of
from promoter.testing.github_emulator.router import (
    ApiError,
    Ctx,
    Reply,
    Route,
    not_found,
    unprocessable,
)
from promoter.testing.github_emulator.store import RepoState, Status

__all__ = ["ROUTES"]

_REPO = "/repos/{owner}/{repo}"
_STATES = ("error", "failure", "pending", "success")


def _ref(world: Any, state: RepoState, name: str) -> gitrepo.Ref | None:
    for ref in gitrepo.list_refs(world.git_dir(state)):
        if ref.name == name:
            return ref
    return None


def _valid_ref(path: Path, name: Any) -> str:
    ok = (
        isinstance(name, str)
        and name.startswith("refs/")
        and name.count("/") >= 2  # noqa: PLR2004 (refs/<kind>/<name>)
        and gitrepo.git(path, "check-ref-format", name, ok=(0, 1)).returncode == 0
    )
    if not ok:
        raise ApiError(422, f"{name} is not a valid ref name.")
    return str(name)


def create_ref(ctx: Ctx) -> Reply:
    """POST /git/refs: 201, or 422 when it exists or the object does not."""
    world = world_of(ctx)
    body = json_object(ctx)
    sha = body.get("sha")
    with world.repo(ctx, "write") as state:
        path = world.git_dir(state)
        name = _valid_ref(path, body.get("ref"))
        if not isinstance(sha, str) or gitrepo.object_type(path, sha) is None:
            raise ApiError(422, "Object does not exist")
        if not gitrepo.update_ref(path, name, sha, gitrepo.ZERO):
            raise ApiError(422, "Reference already exists")
        shape = pullshapes.git_ref(links(ctx), state, _ref(world, state, name) or _missing())
        return Reply(201, shape, {"Location": shape["url"]})


def _missing() -> gitrepo.Ref:
    raise ApiError(422, "Reference does not exist")


def get_ref(ctx: Ctx) -> Reply:
    """GET /git/ref/{ref}: exactly that ref."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        ref = _ref(world, state, f"refs/{ctx.param('ref')}")
        if ref is None:
            raise not_found()
        return Reply(200, pullshapes.git_ref(links(ctx), state, ref))


def _matching(ctx: Ctx, state: RepoState, prefix: str) -> list[dict[str, Any]]:
    world = world_of(ctx)
    refs = gitrepo.list_refs(world.git_dir(state))
    return [pullshapes.git_ref(links(ctx), state, r) for r in refs if r.name.startswith(prefix)]


def get_refs_legacy(ctx: Ctx) -> Reply:
    """GET /git/refs/{ref}: the ref, or an array of refs it prefixes; 404 when none."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        name = f"refs/{ctx.param('ref')}"
        ref = _ref(world, state, name)
        if ref is not None:
            return Reply(200, pullshapes.git_ref(links(ctx), state, ref))
        found = _matching(ctx, state, name)
        if not found:
            raise not_found()
        return Reply(200, found)


def list_refs(ctx: Ctx) -> Reply:
    """GET /git/refs: every ref."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        return page(ctx, _matching(ctx, state, "refs/"))


def matching_refs(ctx: Ctx) -> Reply:
    """GET /git/matching-refs/{ref}: refs whose name starts with `refs/{ref}`."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        return Reply(200, _matching(ctx, state, f"refs/{ctx.param('ref')}"))


def update_ref(ctx: Ctx) -> Reply:
    """PATCH /git/refs/{ref}: move it; 422 unless a fast-forward or `force`."""
    world = world_of(ctx)
    body = json_object(ctx)
    sha = body.get("sha")
    with world.repo(ctx, "write") as state:
        path = world.git_dir(state)
        ref = _ref(world, state, f"refs/{ctx.param('ref')}") or _missing()
        if not isinstance(sha, str) or gitrepo.object_type(path, sha) is None:
            raise ApiError(422, "Object does not exist")
        forward = ref.type == "commit" and gitrepo.is_ancestor(path, ref.sha, sha)
        if not body.get("force") and not forward:
            raise ApiError(422, "Update is not a fast forward")
        if not gitrepo.update_ref(path, ref.name, sha, ref.sha):
            raise ApiError(422, "Reference cannot be updated")
        return Reply(
            200, pullshapes.git_ref(links(ctx), state, _ref(world, state, ref.name) or _missing())
        )


def delete_ref(ctx: Ctx) -> Reply:
    """DELETE /git/refs/{ref}: 204, or 422 when there is no such ref."""
    world = world_of(ctx)
    with world.repo(ctx, "write") as state:
        ref = _ref(world, state, f"refs/{ctx.param('ref')}") or _missing()
        if not gitrepo.update_ref(world.git_dir(state), ref.name, gitrepo.ZERO, ref.sha):
            raise ApiError(422, "Reference cannot be updated")
        return Reply(204)


def get_branch(ctx: Ctx) -> Reply:
    """GET /branches/{branch}: 404 "Branch not found" when missing."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        name = ctx.param("branch")
        path = world.git_dir(state)
        sha = gitrepo.ref_sha(path, f"refs/heads/{name}")
        if sha is None:
            raise not_found("Branch not found")
        info = gitrepo.commit_info(path, sha)
        protected = state.settings.required_approvals > 0
        return Reply(200, pullshapes.branch(links(ctx), state, name, info, protected=protected))


def _commit_sha(ctx: Ctx, state: RepoState, rev: str) -> str:
    sha = gitrepo.resolve_commit(world_of(ctx).git_dir(state), rev)
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {rev}")
    return sha


def get_commit(ctx: Ctx) -> Reply:
    """GET /commits/{ref}: a sha, branch or tag (`?page=1` accepted)."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        sha = _commit_sha(ctx, state, ctx.param("ref"))
        info = gitrepo.commit_info(world.git_dir(state), sha)
        return Reply(200, pullshapes.commit(links(ctx), state, info))


def create_status(ctx: Ctx) -> Reply:
    """POST /statuses/{sha}: 201 with Location."""
    world = world_of(ctx)
    body = json_object(ctx)
    wanted = body.get("state")
    if wanted not in _STATES:
        raise unprocessable(
            resource="Status",
            field="state",
            code="custom",
            message="state is not included in the list",
        )
    with world.repo(ctx, "write") as state:
        sha = ctx.param("sha")
        if len(sha) != 40 or _commit_sha(ctx, state, sha) != sha:  # noqa: PLR2004 (full sha)
            raise ApiError(422, f"No commit found for SHA: {sha}")
        item = Status(
            id=state.new_id(),
            sha=sha,
            state=wanted,
            context=str(body.get("context") or "default"),
            description=body.get("description"),
            target_url=body.get("target_url"),
            creator=ctx.login,
            created_at=ctx.now,
            updated_at=ctx.now,
        )
        state.statuses.append(item)
        shape = pullshapes.status(links(ctx), state, item)
        return Reply(201, shape, {"Location": shape["url"]})


def combined_status(ctx: Ctx) -> Reply:
    """GET /commits/{ref}/status: the state from the latest status of each context."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        sha = gitrepo.resolve_commit(world.git_dir(state), ctx.param("ref"))
        if sha is None:
            raise not_found()
        repo = world.repo_shape(links(ctx), state, ctx.now, None)
        return Reply(200, pullshapes.combined_status(links(ctx), state, sha, repo))


def list_statuses(ctx: Ctx) -> Reply:
    """GET /commits/{ref}/statuses (and the legacy /statuses/{sha}): newest first."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        sha = _commit_sha(ctx, state, ctx.params.get("ref") or ctx.param("sha"))
        items = [s for s in reversed(state.statuses) if s.sha == sha]
        return page(ctx, [pullshapes.status(links(ctx), state, s) for s in items])


ROUTES = [
    Route("POST", f"{_REPO}/git/refs", create_ref, "git/refs#create-a-reference"),
    Route("GET", f"{_REPO}/git/refs", list_refs, "git/refs"),
    Route("GET", f"{_REPO}/git/ref/{{ref}}", get_ref, "git/refs#get-a-reference"),
    Route("GET", f"{_REPO}/git/refs/{{ref}}", get_refs_legacy, "git/refs#get-a-reference"),
    Route(
        "GET",
        f"{_REPO}/git/matching-refs/{{ref}}",
        matching_refs,
        "git/refs#list-matching-references",
    ),
    Route("PATCH", f"{_REPO}/git/refs/{{ref}}", update_ref, "git/refs#update-a-reference"),
    Route("PATCH", f"{_REPO}/git/ref/{{ref}}", update_ref, "git/refs#update-a-reference"),
    Route("DELETE", f"{_REPO}/git/refs/{{ref}}", delete_ref, "git/refs#delete-a-reference"),
    Route("DELETE", f"{_REPO}/git/ref/{{ref}}", delete_ref, "git/refs#delete-a-reference"),
    Route("GET", f"{_REPO}/branches/{{branch}}", get_branch, "branches/branches#get-a-branch"),
    Route(
        "GET",
        f"{_REPO}/commits/{{ref}}/status",
        combined_status,
        "commits/statuses#get-the-combined-status-for-a-specific-reference",
    ),
    Route(
        "GET",
        f"{_REPO}/commits/{{ref}}/statuses",
        list_statuses,
        "commits/statuses#list-commit-statuses-for-a-reference",
    ),
    Route("GET", f"{_REPO}/commits/{{ref}}", get_commit, "commits/commits#get-a-commit"),
    Route(
        "GET",
        f"{_REPO}/statuses/{{sha}}",
        list_statuses,
        "commits/statuses#list-commit-statuses-for-a-reference",
    ),
    Route(
        "POST",
        f"{_REPO}/statuses/{{sha}}",
        create_status,
        "commits/statuses#create-a-commit-status",
    ),
]
