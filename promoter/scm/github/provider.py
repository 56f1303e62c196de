"""The GitHub PR provider: one labelled PR per environment, guarded merges, review tallies."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import structlog
from github import Github, GithubException
from github.GitRef import GitRef
from github.PullRequest import PullRequest as GhPull

from promoter.core.reviews import Stance, SubmittedReview, tally
from promoter.errors import ConfigurationError, GitError, HeadMovedError, TransientError
from promoter.gitops.results import MergeConflict
from promoter.scm.base import PullRequest, PullRequestSpec, branch_name
from promoter.scm.github.client import GitHubClient
from promoter.scm.github.shapes import (
    GATES_CONTEXT,
    gates_status,
    pull_from_github,
    split_message,
)

__all__ = ["GitHubPullRequests", "PullStatus", "RepoRef"]

log = structlog.get_logger(__name__)

_ADOPT_TRIES = 3
_CACHE_SECONDS = 300.0
_WRITE_ROLES = frozenset({"admin", "write"})
_NOT_READY = frozenset({"blocked", "behind", "unstable", "has_hooks", "clean", "unknown"})
_PERMANENT_405 = ("not allowed", "merge method", "not authorized", "protected branch")


@dataclass(frozen=True)
class RepoRef:
    """Which repository, where its API is, and how its PRs merge."""

    owner: str
    name: str
    url: str
    api_url: str
    merge_method: str = "merge"

    @property
    def full_name(self) -> str:
        """owner/name."""
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class PullStatus:
    """The environment's newest PR and who counts as approving it now."""

    pr: PullRequest
    stance: Stance = field(default_factory=Stance)
    teams: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _already_exists(exc: GithubException) -> bool:
    """A 422 saying the branch already has an open PR (in `message` or in `errors[]`)."""
    if exc.status != HTTPStatus.UNPROCESSABLE_ENTITY or not isinstance(exc.data, dict):
        return False
    texts = [str(exc.data.get("message", ""))]
    texts += [str(e.get("message", "")) for e in exc.data.get("errors", []) if isinstance(e, dict)]
    return any("pull request already exists" in text.lower() for text in texts)


class GitHubPullRequests:
    """PRs on GitHub through PyGithub; each method is idempotent and makes few requests.

    Opening costs one list, one create, one label and (while gates block) one status request;
    merging one status, one merge and one branch delete. The `promoter/gates` status is
    pending while gates block and success just before the merge, so branch protection can
    require it. A create answered by 422 "already exists" (say after a
    timeout whose request did land) adopts the open PR instead.
    """

    def __init__(
        self,
        github: Github,
        client: GitHubClient,
        repo: RepoRef,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ref = repo
        self.repo = github.get_repo(repo.full_name)  # a lazy client: no request
        self.github = github
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    # --- reading ------------------------------------------------------------------------

    async def _pulls(self, branch: str, state: str) -> list[PullRequest]:
        head = f"{self.ref.owner}:{branch}"

        def call() -> list[PullRequest]:
            page = self.repo.get_pulls(
                state=state, head=head, sort="created", direction="desc"
            ).get_page(0)
            return [pull_from_github(p, self.ref.url) for p in page]

        return await self.client.read(f"list PRs of {branch}", call)

    async def current(self, pipeline: str, environment: str) -> PullRequest | None:
        """The newest PR of the environment's branch, open or not."""
        pulls = await self._pulls(branch_name(pipeline, environment), "all")
        return pulls[0] if pulls else None

    # --- opening ------------------------------------------------------------------------

    async def ensure(self, spec: PullRequestSpec, *, likely_new: bool = False) -> PullRequest:
        """Adopt the branch's open PR and bring it up to `spec`, or open one.

        `likely_new` skips the first lookup: the PR is created at once, and GitHub's "already
        exists" answer (a PR opened by a run that crashed before recording it) adopts it.
        """
        look = not likely_new
        for _ in range(_ADOPT_TRIES):
            open_prs = await self._pulls(spec.branch, "open") if look else []
            look = True
            if open_prs:
                return await self._update(open_prs[0], spec)
            try:
                created = await self._create(spec)
            except GithubException as exc:
                if _already_exists(exc):
                    log.info("PR already exists; adopting it", branch=spec.branch)
                    continue
                raise self._refused("open a PR", exc) from exc
            await self._label(created.number, spec.environment)
            await self._pending(spec)
            return created
        raise TransientError(f"the open PR of {spec.branch} could not be found or created; retry")

    async def _create(self, spec: PullRequestSpec) -> PullRequest:
        def call() -> PullRequest:
            made = self.repo.create_pull(
                base=spec.base, head=spec.branch, title=spec.title, body=spec.body
            )
            made_pr = pull_from_github(made, self.ref.url)
            return made_pr.model_copy(update={"head": spec.head, "gates": spec.gates})

        return await self.client.write(f"create PR for {spec.branch}", call)

    async def _update(self, pr: PullRequest, spec: PullRequestSpec) -> PullRequest:
        changed = pr.title != spec.title or pr.body.strip() != spec.body.strip()
        if changed:

            def call() -> None:
                self.repo.get_pull(pr.number).edit(title=spec.title, body=spec.body)

            await self.client.write(f"update PR #{pr.number}", call)
        if not _labelled(pr, spec.environment):
            await self._label(pr.number, spec.environment)
            changed = True
        if changed:
            await self._pending(spec)
        return pr.model_copy(update={**spec.model_dump(), "updated_at": datetime.now(UTC)})

    async def _label(self, number: int, environment: str) -> None:
        labels = ("promoter", f"env:{environment}")
        await self.client.write(
            f"label PR #{number}", lambda: self.repo.get_issue(number).add_to_labels(*labels)
        )

    async def _pending(self, spec: PullRequestSpec) -> None:
        """Mark the head pending while gates block; the merge itself marks it success."""
        if spec.gates:
            await self._status(spec.head, spec.gates)

    async def report_gates(self, sha: str, gates: dict[str, str]) -> None:
        """Set the `promoter/gates` status of `sha` to what blocks now (success: nothing)."""
        await self._status(sha, gates)

    async def _status(self, sha: str, gates: dict[str, str]) -> None:
        state, description = gates_status(gates)
        await self.client.write(
            f"set {GATES_CONTEXT} on {sha[:12]}",
            lambda: self.repo.get_commit(sha).create_status(
                state=state, description=description, context=GATES_CONTEXT
            ),
        )

    # --- merging and closing ------------------------------------------------------------

    async def merge(self, pr: PullRequest, message: str) -> PullRequest:
        """Merge `pr` at exactly `pr.head` with the configured method, then delete its branch.

        Raises HeadMovedError when GitHub's head is no longer `pr.head` (409), MergeConflict
        when the PR conflicts with its base, TransientError when GitHub is not ready yet
        (mergeability being computed, draft, required checks or reviews pending).
        """
        if pr.state == "merged":
            return pr
        if pr.state == "closed":
            raise GitError(f"PR #{pr.number} ({pr.url}) was closed; promote again to reopen")
        await self._status(pr.head, {})
        title, body = split_message(message)

        def call() -> str:
            result = self.repo.get_pull(pr.number).merge(
                commit_title=title,
                commit_message=body,
                merge_method=self.ref.merge_method,
                sha=pr.head,
            )
            return str(result.sha)

        try:
            sha = await self.client.write(f"merge PR #{pr.number}", call)
        except GithubException as exc:
            merged = await self._explain_refusal(pr, exc)
            if merged is None:
                raise
            return merged
        await self._delete_branch(pr.branch)
        return pr.model_copy(
            update={"state": "merged", "merged_sha": sha, "updated_at": datetime.now(UTC)}
        )

    async def _explain_refusal(self, pr: PullRequest, exc: GithubException) -> PullRequest | None:
        """Turn a refused merge into the right error, or the PR if it did merge after all."""
        if exc.status == HTTPStatus.CONFLICT:
            raise HeadMovedError(
                f"PR #{pr.number} head moved away from {pr.head[:12]}: {exc.data}"
            ) from exc
        if exc.status != HTTPStatus.METHOD_NOT_ALLOWED:
            raise self._refused(f"merge PR #{pr.number}", exc) from exc
        message = str(exc.data.get("message", "") if isinstance(exc.data, dict) else exc.data)
        full = await self.client.read(
            f"read PR #{pr.number}", lambda: _full_state(self.repo.get_pull(pr.number))
        )
        if full["merged"]:  # a retried merge whose first try landed
            await self._delete_branch(pr.branch)
            return pr.model_copy(update={"state": "merged", "merged_sha": full["sha"]})
        raise _why_not_merged(pr, full, message, self.ref.merge_method) from exc

    async def _delete_branch(self, branch: str) -> None:
        url = f"{self.repo.url}/git/refs/heads/{quote(branch)}"

        def call() -> None:
            try:
                GitRef(self.repo.requester, url=url).delete()
            except GithubException as exc:
                if exc.status not in (HTTPStatus.NOT_FOUND, HTTPStatus.UNPROCESSABLE_ENTITY):
                    raise

        await self.client.write(f"delete branch {branch}", call)

    async def close(self, pr: PullRequest, comment: str) -> PullRequest:
        """Comment on `pr` and close it; closing a closed or merged PR does nothing."""
        current = await self.current(pr.pipeline, pr.environment)
        if current is None or current.number != pr.number or current.state != "open":
            return current if current is not None and current.number == pr.number else pr
        number = pr.number
        await self.client.write(
            f"comment on PR #{number}", lambda: self.repo.get_issue(number).create_comment(comment)
        )
        await self.client.write(
            f"close PR #{number}", lambda: self.repo.get_pull(number).edit(state="closed")
        )
        return current.model_copy(update={"state": "closed", "updated_at": datetime.now(UTC)})

    # --- reviews ------------------------------------------------------------------------

    async def review_status(
        self, pipeline: str, environment: str, reviewers: Sequence[str]
    ) -> PullStatus | None:
        """The newest PR and its tally: latest review per user, on the head, author excluded.

        Approvers are given the listed `@org/team`s they belong to; with no reviewers listed,
        only approvers with write access count (as GitHub's required reviews).
        """
        pr = await self.current(pipeline, environment)
        if pr is None or pr.state != "open":
            return None if pr is None else PullStatus(pr)
        number = pr.number

        def call() -> list[SubmittedReview]:
            return [_review(r) for r in self.repo.get_pull(number).get_reviews()]

        reviews = await self.client.read(f"list reviews of PR #{number}", call)
        stance = tally(reviews, pr.head, pr.author or "")
        teams = [r[1:] for r in reviewers if r.startswith("@")]
        named = {r.lower() for r in reviewers if not r.startswith("@")}
        memberships = {
            u: await self._teams_of(u, teams) for u in stance.approvals if u.lower() not in named
        }
        if not reviewers:
            writers = [u for u in stance.approvals if await self._can_write(u)]
            stance = Stance(tuple(writers), stance.rejections, stance.stale)
        return PullStatus(pr, stance, memberships)

    async def _teams_of(self, user: str, teams: Sequence[str]) -> tuple[str, ...]:
        return tuple(["@" + team for team in teams if await self._is_member(team, user)])

    async def _is_member(self, team: str, user: str) -> bool:
        return await self._cached(("team " + team, user), lambda: self._member(team, user))

    async def _member(self, team: str, user: str) -> bool:
        org, _, slug = team.partition("/")
        if not slug:
            raise ConfigurationError(f"reviewer team {team!r} must be written @org/team-slug")

        def call() -> bool:
            try:
                membership = (
                    self.github.get_organization(org)
                    .get_team_by_slug(slug)
                    .get_team_membership(user)
                )
            except GithubException as exc:
                if exc.status == HTTPStatus.NOT_FOUND:  # not a member
                    return False
                raise
            return str(membership.state) == "active"

        return await self.client.read(f"team {team} membership of {user}", call)

    async def _can_write(self, user: str) -> bool:
        def call() -> bool:
            return self.repo.get_collaborator_permission(user) in _WRITE_ROLES

        return await self._cached(
            ("permission", user), lambda: self.client.read(f"permission of {user}", call)
        )

    async def _cached(self, key: tuple[str, str], load: Callable[[], Any]) -> bool:
        hit = self._cache.get(key)
        now = self.clock()
        if hit is not None and hit[1] > now:
            return hit[0]
        value = bool(await load())
        self._cache[key] = (value, now + _CACHE_SECONDS)
        return value

    def _refused(self, what: str, exc: GithubException) -> Exception:
        return GitError(
            f"GitHub refused to {what} in {self.ref.full_name}: {exc.status} {exc.data}"
        )


def _why_not_merged(pr: PullRequest, full: dict[str, Any], message: str, method: str) -> Exception:
    """The error for a 405 on an unmerged PR, from its full state (GitHub's mergeable_state)."""
    state = full["mergeable_state"]
    if full["state"] == "closed":
        return GitError(f"PR #{pr.number} ({pr.url}) was closed without merging: {message}")
    if full["head"] != pr.head:
        return HeadMovedError(f"PR #{pr.number} head moved away from {pr.head[:12]}")
    if state == "dirty" or full["mergeable"] is False:
        return MergeConflict(f"PR #{pr.number} conflicts with {pr.base}: {message}", [])
    if any(word in message.lower() for word in _PERMANENT_405):
        return ConfigurationError(
            f"GitHub will not merge PR #{pr.number}: {message}; check the repository's merge "
            f"settings and spec.repository.mergeMethod ({method})"
        )
    if full["mergeable"] is None:
        detail = "GitHub is still computing whether it can merge"
    elif state == "draft":
        detail = "it is a draft"
    elif state in _NOT_READY:
        detail = f"GitHub says {state}"
    else:
        detail = f"mergeable_state {state}"
    return TransientError(f"PR #{pr.number} not mergeable yet ({detail}): {message}")


def _labelled(pr: PullRequest, environment: str) -> bool:
    return {"promoter", f"env:{environment}"} <= set(pr.labels)


def _review(review: Any) -> SubmittedReview:
    user = review.user.login if review.user is not None else "ghost"
    return SubmittedReview(
        user=user,
        state=review.state,
        commit=review.commit_id or "",
        submitted_at=review.submitted_at,
        id=int(review.id),
    )


def _full_state(pull: GhPull) -> dict[str, Any]:
    return {
        "merged": bool(pull.merged),
        "state": pull.state,
        "sha": pull.merge_commit_sha,
        "head": pull.head.sha,
        "mergeable": pull.mergeable,
        "mergeable_state": pull.mergeable_state,
    }
