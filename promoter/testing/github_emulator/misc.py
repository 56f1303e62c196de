"""Repository, collaborator permission, organizations and teams, rate limit and App tokens."""

from __future__ import annotations

from typing import Any

from promoter.testing.github_emulator import shapes
from promoter.testing.github_emulator.auth import Caller
from promoter.testing.github_emulator.common import json_object, links, world_of
from promoter.testing.github_emulator.router import ApiError, Ctx, Reply, Route, not_found
from promoter.testing.github_emulator.users import stable_id

__all__ = ["ROUTES"]

_TEAM = "/orgs/{org}/teams/{team_slug}"
# What an installation token may do unless the App asks for less.
_INSTALLATION_PERMISSIONS = {
    "contents": "write",
    "issues": "write",
    "metadata": "read",
    "members": "read",
    "pull_requests": "write",
    "statuses": "write",
}


def get_repo(ctx: Ctx) -> Reply:
    """GET /repos/{owner}/{repo}: full-repository with the caller's permissions."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        return Reply(200, world.repo_shape(links(ctx), state, ctx.now, ctx.login))


def collaborator_permission(ctx: Ctx) -> Reply:
    """GET /collaborators/{username}/permission: needs push access, as on GitHub."""
    world = world_of(ctx)
    with world.repo(ctx) as state:
        if not world.users.can(state.owner, state.name, ctx.login, "write"):
            raise ApiError(403, "Must have push access to view collaborator permission.")
        login = ctx.param("username")
        role = world.users.role(state.owner, state.name, login)
        if role == "none":
            raise not_found(f"{login} is not a user")
        return Reply(200, shapes.permission(links(ctx), login, role))


def _org_exists(ctx: Ctx, org: str) -> bool:
    world = world_of(ctx)
    return world.users.has_org(org) or (world.root / org).is_dir()


def get_org(ctx: Ctx) -> Reply:
    """GET /orgs/{org}: an organization known from teams or from the repositories root."""
    org = ctx.param("org")
    if not _org_exists(ctx, org):
        raise not_found()
    return Reply(200, shapes.org(links(ctx), org, ctx.now))


def get_team(ctx: Ctx) -> Reply:
    """GET /orgs/{org}/teams/{team_slug}: a configured team."""
    org, slug = ctx.param("org"), ctx.param("team_slug")
    if world_of(ctx).users.team(org, slug) is None:
        raise not_found()
    return Reply(200, shapes.team(links(ctx), org, slug, ctx.now))


def _membership(ctx: Ctx, org: str, slug: str) -> Reply:
    members = world_of(ctx).users.team(org, slug)
    login = ctx.param("username")
    if members is None or login not in members:
        raise not_found()
    url = f"{shapes.team_url(links(ctx), org, slug)}/memberships/{login}"
    return Reply(200, {"url": url, "role": "member", "state": "active"})


def team_membership(ctx: Ctx) -> Reply:
    """GET /orgs/{org}/teams/{team_slug}/memberships/{username}."""
    return _membership(ctx, ctx.param("org"), ctx.param("team_slug"))


def team_membership_by_id(ctx: Ctx) -> Reply:
    """GET /organizations/{org_id}/team/{team_id}/memberships/{username} (a team's own URL)."""
    for key in world_of(ctx).users.teams:
        org, _, slug = key.partition("/")
        ids = (str(stable_id(org)), str(stable_id(key)))
        if ids == (ctx.param("org_id"), ctx.param("team_id")):
            return _membership(ctx, org, slug)
    raise not_found()


def team_by_id(ctx: Ctx) -> Reply:
    """GET /organizations/{org_id}/team/{team_id}: the URL a team object carries."""
    for key in world_of(ctx).users.teams:
        org, _, slug = key.partition("/")
        if (str(stable_id(org)), str(stable_id(key))) == (
            ctx.param("org_id"),
            ctx.param("team_id"),
        ):
            return Reply(200, shapes.team(links(ctx), org, slug, ctx.now))
    raise not_found()


def get_user(ctx: Ctx) -> Reply:
    """GET /users/{username}: every login exists (bots included)."""
    return Reply(200, shapes.public_user(links(ctx), ctx.param("username"), ctx.now))


def authenticated_user(ctx: Ctx) -> Reply:
    """GET /user: the caller; installation tokens are refused as on GitHub."""
    if ctx.login.endswith("[bot]"):
        raise ApiError(403, "Resource not accessible by integration")
    return Reply(200, shapes.public_user(links(ctx), ctx.login, ctx.now))


def rate_limit(ctx: Ctx) -> Reply:
    """GET /rate_limit: the caller's budgets; not charged."""
    budget = world_of(ctx).limits.budget(ctx.login, ctx.now)
    return Reply(200, shapes.rate_limit(budget))


def access_token(ctx: Ctx) -> Reply:
    """POST /app/installations/{installation_id}/access_tokens: a `ghs_` token for the bot."""
    world = world_of(ctx)
    caller: Caller = ctx.caller
    if caller.app is None or str(caller.app.installation_id) != ctx.param("installation_id"):
        raise not_found()
    body = json_object(ctx)
    asked: Any = body.get("permissions") or {}
    granted = {k: v for k, v in _INSTALLATION_PERMISSIONS.items() if not asked or k in asked}
    expires = ctx.now + world.users.token_ttl
    token = world.tokens.mint(caller.app_id or 0, caller.app, expires)
    answer = {
        "token": token,
        "expires_at": shapes.iso(expires),
        "permissions": granted,
        "repository_selection": "all",
    }
    return Reply(201, answer)


def repo_installation(ctx: Ctx) -> Reply:
    """GET /repos/{owner}/{repo}/installation: the calling App's installation (all repos)."""
    world = world_of(ctx)
    caller: Caller = ctx.caller
    owner, name = ctx.param("owner"), ctx.param("repo")
    if caller.app is None or not world.store.exists(owner, name):
        raise not_found()
    install = caller.app.installation_id
    api = links(ctx).api
    answer = {
        "id": install,
        "account": shapes.user(links(ctx), owner),
        "app_id": caller.app_id,
        "app_slug": caller.app.slug,
        "client_id": f"Iv1.{caller.app_id}",
        "target_id": stable_id(owner),
        "target_type": "Organization" if world.users.has_org(owner) else "User",
        "repository_selection": "all",
        "access_tokens_url": f"{api}/app/installations/{install}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{links(ctx).html}/settings/installations/{install}",
        "permissions": _INSTALLATION_PERMISSIONS,
        "events": ["pull_request", "pull_request_review"],
        "created_at": shapes.iso(ctx.now),
        "updated_at": shapes.iso(ctx.now),
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_at": None,
        "suspended_by": None,
    }
    return Reply(200, answer)


ROUTES = [
    Route(
        "GET",
        "/rate_limit",
        rate_limit,
        "rate-limit/rate-limit#get-rate-limit-status-for-the-authenticated-user",
        charged=False,
    ),
    Route(
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        access_token,
        "apps/apps#create-an-installation-access-token-for-an-app",
        auth="jwt",
    ),
    Route(
        "GET",
        "/repos/{owner}/{repo}/installation",
        repo_installation,
        "apps/apps#get-a-repository-installation-for-the-authenticated-app",
        auth="jwt",
    ),
    Route("GET", "/repos/{owner}/{repo}", get_repo, "repos/repos#get-a-repository"),
    Route(
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        collaborator_permission,
        "collaborators/collaborators#get-repository-permissions-for-a-user",
    ),
    Route("GET", "/orgs/{org}", get_org, "orgs/orgs#get-an-organization"),
    Route("GET", "/user", authenticated_user, "users/users#get-the-authenticated-user"),
    Route("GET", "/users/{username}", get_user, "users/users#get-a-user"),
    Route(
        "GET",
        "/organizations/{org_id}/team/{team_id}",
        team_by_id,
        "teams/teams#get-a-team-legacy",
    ),
    Route("GET", _TEAM, get_team, "teams/teams#get-a-team-by-name"),
    Route(
        "GET",
        f"{_TEAM}/memberships/{{username}}",
        team_membership,
        "teams/members#get-team-membership-for-a-user",
    ),
    Route(
        "GET",
        "/organizations/{org_id}/team/{team_id}/memberships/{username}",
        team_membership_by_id,
        "teams/members#get-team-membership-for-a-user-legacy",
    ),
]
