"""JSON renderers for users, repositories, organizations, teams and rate limits, as GitHub sends."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote

from promoter.testing.github_emulator.ratelimit import Budget
from promoter.testing.github_emulator.store import RepoState
from promoter.testing.github_emulator.users import ROLES, Role, stable_id

__all__ = [
    "Links",
    "iso",
    "node_id",
    "org",
    "permission",
    "permissions",
    "public_user",
    "rate_limit",
    "repository",
    "team",
    "user",
]


class Links:
    """The emulator's two URL prefixes: the API (`…/api/v3`) and the web pages (`html_url`)."""

    def __init__(self, api: str, html: str) -> None:
        self.api = api
        self.html = html

    def repo(self, owner: str, name: str) -> str:
        """The repository's API URL."""
        return f"{self.api}/repos/{quote(owner)}/{quote(name)}"

    def repo_html(self, owner: str, name: str) -> str:
        """The repository's web URL."""
        return f"{self.html}/{quote(owner)}/{quote(name)}"


def iso(when: float) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ` for a Unix time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def node_id(prefix: str, number: int) -> str:
    """A GraphQL-style node id, e.g. `PR_kwDO…`."""
    return f"{prefix}_kwDO" + base64.b64encode(str(number).encode()).decode().rstrip("=")


def user(links: Links, login: str, *, kind: str | None = None) -> dict[str, Any]:
    """A simple-user; `kind` is User, Bot or Organization (Bot for `…[bot]` logins)."""
    uid = stable_id(login)
    api = f"{links.api}/users/{quote(login, safe='')}"
    bot = login.endswith("[bot]")
    html = f"{links.html}/apps/{login[:-5]}" if bot else f"{links.html}/{quote(login)}"
    return {
        "login": login,
        "id": uid,
        "node_id": node_id("BOT" if bot else "U", uid),
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": html,
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind or ("Bot" if bot else "User"),
        "user_view_type": "public",
        "site_admin": False,
    }


def public_user(links: Links, login: str, now: float) -> dict[str, Any]:
    """A public-user (what `GET /users/{username}` answers)."""
    return {
        **user(links, login),
        "name": login,
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "twitter_username": None,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": iso(now),
        "updated_at": iso(now),
    }


def permissions(role: Role) -> dict[str, bool]:
    """The `permissions` object of a role."""
    level = ROLES.index(role)
    names = ("pull", "triage", "push", "maintain", "admin")
    return {name: level >= ROLES.index(r) for name, r in zip(names, ROLES[1:], strict=True)}


def _repo_urls(base: str) -> dict[str, str]:
    named = {
        "archive_url": "/{archive_format}{/ref}",
        "assignees_url": "/assignees{/user}",
        "blobs_url": "/git/blobs{/sha}",
        "branches_url": "/branches{/branch}",
        "collaborators_url": "/collaborators{/collaborator}",
        "comments_url": "/comments{/number}",
        "commits_url": "/commits{/sha}",
        "compare_url": "/compare/{base}...{head}",
        "contents_url": "/contents/{+path}",
        "contributors_url": "/contributors",
        "deployments_url": "/deployments",
        "downloads_url": "/downloads",
        "events_url": "/events",
        "forks_url": "/forks",
        "git_commits_url": "/git/commits{/sha}",
        "git_refs_url": "/git/refs{/sha}",
        "git_tags_url": "/git/tags{/sha}",
        "hooks_url": "/hooks",
        "issue_comment_url": "/issues/comments{/number}",
        "issue_events_url": "/issues/events{/number}",
        "issues_url": "/issues{/number}",
        "keys_url": "/keys{/key_id}",
        "labels_url": "/labels{/name}",
        "languages_url": "/languages",
        "merges_url": "/merges",
        "milestones_url": "/milestones{/number}",
        "notifications_url": "/notifications{?since,all,participating}",
        "pulls_url": "/pulls{/number}",
        "releases_url": "/releases{/id}",
        "stargazers_url": "/stargazers",
        "statuses_url": "/statuses/{sha}",
        "subscribers_url": "/subscribers",
        "subscription_url": "/subscription",
        "tags_url": "/tags",
        "teams_url": "/teams",
        "trees_url": "/git/trees{/sha}",
    }
    return {key: base + suffix for key, suffix in named.items()}


def repository(
    links: Links,
    state: RepoState,
    default_branch: str,
    now: float,
    *,
    role: Role | None = None,
    owner_kind: str = "User",
) -> dict[str, Any]:
    """A full-repository (also valid as `repository` and `minimal-repository`)."""
    api = links.repo(state.owner, state.name)
    html = links.repo_html(state.owner, state.name)
    host = links.html.split("://", 1)[-1]
    settings = state.settings
    shape: dict[str, Any] = {
        "id": state.id,
        "node_id": node_id("R", state.id),
        "name": state.name,
        "full_name": state.full_name,
        "owner": user(links, state.owner, kind=owner_kind),
        "private": True,
        "html_url": html,
        "description": None,
        "fork": False,
        "url": api,
        **_repo_urls(api),
        "git_url": f"git://{host}/{state.full_name}.git",
        "ssh_url": f"git@{host.split(':')[0]}:{state.full_name}.git",
        "clone_url": f"{links.html}/{quote(state.owner)}/{quote(state.name)}.git",
        "svn_url": html,
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "forks": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "watchers": 0,
        "size": 0,
        "default_branch": default_branch,
        "open_issues_count": sum(1 for p in state.pulls.values() if p.state == "open"),
        "is_template": False,
        "topics": [],
        "has_issues": True,
        "has_projects": False,
        "has_wiki": False,
        "has_pages": False,
        "has_downloads": False,
        "has_discussions": False,
        "archived": False,
        "disabled": False,
        "visibility": "private",
        "pushed_at": iso(now),
        "created_at": iso(state.created_at),
        "updated_at": iso(now),
        "allow_rebase_merge": settings.allow_rebase_merge,
        "allow_squash_merge": settings.allow_squash_merge,
        "allow_merge_commit": settings.allow_merge_commit,
        "allow_auto_merge": False,
        "delete_branch_on_merge": False,
        "allow_update_branch": False,
        "allow_forking": True,
        "web_commit_signoff_required": False,
        "license": None,
        "subscribers_count": 0,
        "network_count": 0,
    }
    shape["open_issues"] = shape["open_issues_count"]
    if role is not None:
        shape["permissions"] = permissions(role)
    return shape


def permission(links: Links, login: str, role: Role) -> dict[str, Any]:
    """A repository-collaborator-permission: `maintain` folds to write, `triage` to read."""
    folded = {"maintain": "write", "triage": "read"}.get(role, role)
    collaborator = {**user(links, login), "permissions": permissions(role), "role_name": role}
    return {"permission": folded, "role_name": role, "user": collaborator}


def org(links: Links, login: str, now: float) -> dict[str, Any]:
    """An organization-full."""
    oid = stable_id(login)
    api = f"{links.api}/orgs/{quote(login)}"
    return {
        "login": login,
        "id": oid,
        "node_id": node_id("O", oid),
        "url": api,
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events",
        "hooks_url": f"{api}/hooks",
        "issues_url": f"{api}/issues",
        "members_url": f"{api}/members{{/member}}",
        "public_members_url": f"{api}/public_members{{/member}}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{oid}?v=4",
        "description": None,
        "html_url": f"{links.html}/{quote(login)}",
        "type": "Organization",
        "has_organization_projects": False,
        "has_repository_projects": False,
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": iso(now),
        "updated_at": iso(now),
        "archived_at": None,
    }


def team_url(links: Links, org_login: str, slug: str) -> str:
    """The team's canonical API URL, `/organizations/{org_id}/team/{team_id}` like GitHub's."""
    return (
        f"{links.api}/organizations/{stable_id(org_login)}/team/{stable_id(org_login + '/' + slug)}"
    )


def team(links: Links, org_login: str, slug: str, now: float) -> dict[str, Any]:
    """A team-full."""
    tid = stable_id(f"{org_login}/{slug}")
    url = team_url(links, org_login, slug)
    return {
        "id": tid,
        "node_id": node_id("T", tid),
        "url": url,
        "html_url": f"{links.html}/orgs/{quote(org_login)}/teams/{quote(slug)}",
        "name": slug,
        "slug": slug,
        "description": None,
        "privacy": "closed",
        "notification_setting": "notifications_enabled",
        "permission": "pull",
        "members_url": f"{url}/members{{/member}}",
        "repositories_url": f"{url}/repos",
        "parent": None,
        "type": "organization",
        "members_count": 0,
        "repos_count": 0,
        "created_at": iso(now),
        "updated_at": iso(now),
        "organization": org(links, org_login, now),
    }


def rate_limit(core: Budget) -> dict[str, Any]:
    """A rate-limit-overview; only `core` is counted, the other buckets stay full."""

    def bucket(limit: int) -> dict[str, int]:
        return {"limit": limit, "used": 0, "remaining": limit, "reset": core.reset}

    counted = {"limit": core.limit, "used": core.used, "remaining": core.remaining}
    resources = {
        "core": {**counted, "reset": core.reset},
        "search": bucket(30),
        "graphql": bucket(5000),
        "integration_manifest": bucket(5000),
        "code_search": bucket(10),
    }
    return {"resources": resources, "rate": resources["core"]}
