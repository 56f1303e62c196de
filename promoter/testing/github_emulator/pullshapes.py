"""JSON renderers for pull requests, reviews, comments, labels, refs, commits and statuses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from promoter.testing.github_emulator.gitrepo import CommitInfo, Identity, Ref
from promoter.testing.github_emulator.shapes import Links, iso, node_id, user
from promoter.testing.github_emulator.store import (
    Comment,
    Label,
    Pull,
    RepoState,
    Review,
    Status,
)
from promoter.testing.github_emulator.users import stable_id

__all__ = [
    "PullView",
    "branch",
    "combined_status",
    "comment",
    "commit",
    "git_ref",
    "label",
    "pull",
    "review",
    "status",
]


@dataclass(frozen=True)
class PullView:
    """What the full PR shape adds: mergeability and diff statistics."""

    mergeable: bool | None
    mergeable_state: str
    merge_commit_sha: str | None
    commits: int = 0
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    comments: int = 0


def label(links: Links, state: RepoState, item: Label, *, simple: bool = False) -> dict[str, Any]:
    """A label (in PR lists GitHub's schema wants a string description)."""
    description = item.description if item.description is not None or not simple else ""
    return {
        "id": item.id,
        "node_id": node_id("LA", item.id),
        "url": f"{links.repo(state.owner, state.name)}/labels/{quote(item.name, safe='')}",
        "name": item.name,
        "description": description,
        "color": item.color,
        "default": False,
    }


def _side(links: Links, repo: dict[str, Any], owner: str, ref: str, sha: str) -> dict[str, Any]:
    return {
        "label": f"{owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(links, owner, kind=repo["owner"]["type"]),
        "repo": repo,
    }


def pull(
    links: Links,
    state: RepoState,
    pr: Pull,
    *,
    repo: dict[str, Any],
    association: str,
    view: PullView | None = None,
) -> dict[str, Any]:
    """A pull-request-simple, or the full pull-request when `view` is given."""
    api = links.repo(state.owner, state.name)
    html = f"{links.repo_html(state.owner, state.name)}/pull/{pr.number}"
    url = f"{api}/pulls/{pr.number}"
    issue = f"{api}/issues/{pr.number}"
    labels = [label(links, state, state.label(n), simple=view is None) for n in pr.labels]
    shape: dict[str, Any] = {
        "url": url,
        "id": pr.id,
        "node_id": node_id("PR", pr.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue,
        "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": f"{api}/statuses/{pr.head_sha}",
        "number": pr.number,
        "state": pr.state,
        "locked": False,
        "title": pr.title,
        "user": user(links, pr.user),
        "body": pr.body,
        "labels": labels,
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(pr.created_at),
        "updated_at": iso(pr.updated_at),
        "closed_at": iso(pr.closed_at) if pr.closed_at is not None else None,
        "merged_at": iso(pr.merged_at) if pr.merged_at is not None else None,
        "merge_commit_sha": pr.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _side(links, repo, state.owner, pr.head, pr.head_sha),
        "base": _side(links, repo, state.owner, pr.base, pr.base_sha),
        "_links": {
            name: {"href": href}
            for name, href in {
                "self": url,
                "html": html,
                "issue": issue,
                "comments": f"{issue}/comments",
                "review_comments": f"{url}/comments",
                "review_comment": f"{api}/pulls/comments{{/number}}",
                "commits": f"{url}/commits",
                "statuses": f"{api}/statuses/{pr.head_sha}",
            }.items()
        },
        "author_association": association,
        "auto_merge": None,
        "draft": pr.draft,
    }
    if view is None:
        return shape
    shape.update(
        merge_commit_sha=pr.merge_commit_sha if pr.merged else view.merge_commit_sha,
        merged=pr.merged,
        mergeable=view.mergeable,
        rebaseable=view.mergeable,
        mergeable_state=view.mergeable_state,
        merged_by=user(links, pr.merged_by) if pr.merged_by else None,
        comments=view.comments,
        review_comments=0,
        maintainer_can_modify=pr.maintainer_can_modify,
        commits=view.commits,
        additions=view.additions,
        deletions=view.deletions,
        changed_files=view.changed_files,
    )
    return shape


def review(
    links: Links, state: RepoState, item: Review, association: str, *, hook: bool = False
) -> dict[str, Any]:
    """A pull-request-review (`hook`: the webhook form with a lower-case state)."""
    api = f"{links.repo(state.owner, state.name)}/pulls/{item.pull}"
    html = f"{links.repo_html(state.owner, state.name)}/pull/{item.pull}"
    html += f"#pullrequestreview-{item.id}"
    shape: dict[str, Any] = {
        "id": item.id,
        "node_id": node_id("PRR", item.id),
        "user": user(links, item.user),
        "body": item.body,
        "state": item.state.lower() if hook else item.state,
        "html_url": html,
        "pull_request_url": api,
        "_links": {"html": {"href": html}, "pull_request": {"href": api}},
        "commit_id": item.commit_id,
        "author_association": association,
    }
    if item.submitted_at is not None:
        shape["submitted_at"] = iso(item.submitted_at)
    return shape


def comment(links: Links, state: RepoState, item: Comment, association: str) -> dict[str, Any]:
    """An issue-comment."""
    api = links.repo(state.owner, state.name)
    url = f"{api}/issues/comments/{item.id}"
    html = f"{links.repo_html(state.owner, state.name)}/pull/{item.issue}#issuecomment-{item.id}"
    reactions = dict.fromkeys(
        ("total_count", "+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket"), 0
    )
    return {
        "id": item.id,
        "node_id": node_id("IC", item.id),
        "url": url,
        "html_url": html,
        "body": item.body,
        "user": user(links, item.user),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "issue_url": f"{api}/issues/{item.issue}",
        "author_association": association,
        "reactions": {"url": f"{url}/reactions", **reactions},
        "performed_via_github_app": None,
    }


def git_ref(links: Links, state: RepoState, ref: Ref) -> dict[str, Any]:
    """A git-ref; its `url` always uses the plural `/git/refs/`."""
    api = links.repo(state.owner, state.name)
    short = quote(ref.name.removeprefix("refs/"), safe="/")
    return {
        "ref": ref.name,
        "node_id": node_id("REF", stable_id(ref.name)),
        "url": f"{api}/git/refs/{short}",
        "object": {"sha": ref.sha, "type": ref.type, "url": f"{api}/git/{ref.type}s/{ref.sha}"},
    }


def _git_user(who: Identity) -> dict[str, str]:
    when = datetime.fromisoformat(who.date)
    return {"name": who.name, "email": who.email, "date": iso(when.timestamp())}


def _linked_user(links: Links, who: Identity) -> dict[str, Any]:
    """The GitHub user of a noreply address (`<id>+<login>@users.noreply.github.com`), else {}."""
    local, _, domain = who.email.partition("@")
    if domain != "users.noreply.github.com":
        return {}
    return user(links, local.split("+", 1)[-1])


def commit(links: Links, state: RepoState, info: CommitInfo) -> dict[str, Any]:
    """A commit."""
    api = links.repo(state.owner, state.name)
    html = links.repo_html(state.owner, state.name)
    url = f"{api}/commits/{info.sha}"
    return {
        "sha": info.sha,
        "node_id": node_id("C", int(info.sha[:12], 16)),
        "commit": {
            "author": _git_user(info.author),
            "committer": _git_user(info.committer),
            "message": info.message,
            "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
            "url": f"{api}/git/commits/{info.sha}",
            "comment_count": 0,
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        },
        "url": url,
        "html_url": f"{html}/commit/{info.sha}",
        "comments_url": f"{url}/comments",
        "author": _linked_user(links, info.author),
        "committer": _linked_user(links, info.committer),
        "parents": [
            {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"}
            for p in info.parents
        ],
    }


def branch(
    links: Links, state: RepoState, name: str, info: CommitInfo, *, protected: bool
) -> dict[str, Any]:
    """A branch-with-protection."""
    api = f"{links.repo(state.owner, state.name)}/branches/{quote(name)}"
    checks = {"enforcement_level": "off", "contexts": [], "checks": []}
    return {
        "name": name,
        "commit": commit(links, state, info),
        "_links": {"self": api, "html": f"{links.repo_html(state.owner, state.name)}/tree/{name}"},
        "protected": protected,
        "protection": {"enabled": protected, "required_status_checks": checks},
        "protection_url": f"{api}/protection",
    }


def status(links: Links, state: RepoState, item: Status) -> dict[str, Any]:
    """A status (its creator included)."""
    creator = user(links, item.creator)
    return {
        "url": f"{links.repo(state.owner, state.name)}/statuses/{item.sha}",
        "avatar_url": creator["avatar_url"],
        "id": item.id,
        "node_id": node_id("SC", item.id),
        "state": item.state,
        "description": item.description,
        "target_url": item.target_url,
        "context": item.context,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "creator": creator,
    }


def combined_status(
    links: Links, state: RepoState, sha: str, repo: dict[str, Any]
) -> dict[str, Any]:
    """A combined-commit-status from the latest status of each context."""
    latest: dict[str, Status] = {}
    for item in state.statuses:
        if item.sha == sha:
            latest[item.context] = item
    states = {item.state for item in latest.values()}
    if states & {"error", "failure"}:
        overall = "failure"
    elif not states or "pending" in states:
        overall = "pending"
    else:
        overall = "success"
    api = links.repo(state.owner, state.name)
    statuses = []
    for item in latest.values():
        shape = status(links, state, item)
        del shape["creator"]
        shape["required"] = False
        statuses.append(shape)
    return {
        "state": overall,
        "statuses": statuses,
        "sha": sha,
        "total_count": len(statuses),
        "repository": repo,
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }
