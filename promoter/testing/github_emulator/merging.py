"""Merging a PR for real in the bare repository: merge commit, squash or rebase, then CAS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promoter.testing.github_emulator import gitrepo
from promoter.testing.github_emulator.faults import Fault
from promoter.testing.github_emulator.router import ApiError, unprocessable
from promoter.testing.github_emulator.store import Pull, RepoState
from promoter.testing.github_emulator.world import World, identity, stats_of

__all__ = ["NOT_MERGEABLE", "merge_pull"]

NOT_MERGEABLE = "Pull Request is not mergeable"
BASE_MODIFIED = "Base branch was modified. Review and try the merge again."
HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
_DISALLOWED = {
    "merge": ("allow_merge_commit", "Merge commits are not allowed on this repository."),
    "squash": ("allow_squash_merge", "Squash merges are not allowed on this repository."),
    "rebase": ("allow_rebase_merge", "Rebase merges are not allowed on this repository."),
}


def merge_pull(
    world: World,
    state: RepoState,
    pr: Pull,
    *,
    body: dict[str, Any],
    login: str,
    now: float,
    fault: Fault | None,
) -> str:
    """Merge `pr` as `login` asks in `body` and return the sha the base branch now points at.

    Raises:
        ApiError: 405 when the PR cannot be merged (closed, draft, conflict, method not allowed,
            approvals missing, base moved meanwhile), 409 when `sha` is not the head, 422 for
            an unknown merge method.
    """
    world.sync(state, pr, now)
    method = body.get("merge_method") or "merge"
    if method not in _DISALLOWED:
        raise unprocessable(resource="PullRequest", field="merge_method", code="invalid")
    _check(world, state, pr, body=body, method=method, fault=fault)
    path = world.git_dir(state)
    new = _merge(path, state.owner, pr, method=method, body=body, login=login, now=now)
    if not gitrepo.update_ref(path, f"refs/heads/{pr.base}", new, pr.base_sha):
        raise ApiError(405, BASE_MODIFIED)
    pr.frozen_stats = stats_of(world, state, pr)
    pr.state, pr.closed_at, pr.updated_at = "closed", now, now
    pr.merged_at, pr.merged_by, pr.merge_commit_sha = now, login, new
    return new


def _check(
    world: World,
    state: RepoState,
    pr: Pull,
    *,
    body: dict[str, Any],
    method: str,
    fault: Fault | None,
) -> None:
    if pr.state != "open":
        raise ApiError(405, NOT_MERGEABLE)
    setting, refusal = _DISALLOWED[method]
    if not getattr(state.settings, setting):
        raise ApiError(405, refusal)
    expected = body.get("sha")
    if expected is not None and expected != pr.head_sha:
        raise ApiError(409, HEAD_MODIFIED)
    if fault is not None and fault.kind == "conflict":
        pr.dirty_once = True
        raise ApiError(405, NOT_MERGEABLE)
    if fault is not None and fault.kind == "base-modified":
        raise ApiError(405, BASE_MODIFIED)
    if pr.draft:
        raise ApiError(405, NOT_MERGEABLE)
    needed = state.settings.required_approvals
    if world.approvals(state, pr) < needed:
        reviews = "review is" if needed == 1 else "reviews are"
        raise ApiError(
            405, f"At least {needed} approving {reviews} required by reviewers with write access."
        )
    result = world.mergeability(state, pr)
    if result.conflict:
        raise ApiError(405, NOT_MERGEABLE)
    if state.settings.require_up_to_date and result.behind:
        raise ApiError(405, "Head branch is not up to date with the base branch")


def _merge(
    path: Path,
    owner: str,
    pr: Pull,
    *,
    method: str,
    body: dict[str, Any],
    login: str,
    now: float,
) -> str:
    committer = gitrepo.Identity("GitHub", "noreply@github.com", f"@{int(now)} +0000")
    if method == "rebase":
        new = gitrepo.rebase_onto(path, pr.base_sha, pr.head_sha, committer)
        if new is None:
            raise ApiError(405, "This branch can't be rebased")
        return new
    tree = gitrepo.merge_trees(path, pr.base_sha, pr.head_sha)
    if tree is None:
        raise ApiError(405, NOT_MERGEABLE)
    if method == "merge":
        title = f"Merge pull request #{pr.number} from {owner}/{pr.head}"
        message = _message(body, title, pr.title)
        author = identity(login, now)
        parents = (pr.base_sha, pr.head_sha)
        return gitrepo.commit_tree(
            path, tree, parents=parents, message=message, author=author, committer=committer
        )
    subjects = gitrepo.git(
        path, "log", "--reverse", "--format=* %s", f"{pr.base_sha}..{pr.head_sha}"
    ).stdout.strip()
    message = _message(body, f"{pr.title} (#{pr.number})", subjects)
    author = identity(pr.user, now)
    return gitrepo.commit_tree(
        path, tree, parents=(pr.base_sha,), message=message, author=author, committer=committer
    )


def _message(body: dict[str, Any], title: str, text: str) -> str:
    title = str(body.get("commit_title") or title)
    given = body.get("commit_message")
    text = str(given) if given is not None else text
    return f"{title}\n\n{text}\n" if text else f"{title}\n"
