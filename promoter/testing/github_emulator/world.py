"""The emulator's shared state and the repository rules every handler applies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promoter.testing.github_emulator import gitrepo
from promoter.testing.github_emulator.auth import InstallationTokens
from promoter.testing.github_emulator.faults import Faults
from promoter.testing.github_emulator.pullshapes import PullView
from promoter.testing.github_emulator.ratelimit import RateLimits
from promoter.testing.github_emulator.router import ApiError, Ctx, not_found
from promoter.testing.github_emulator.shapes import Links, repository
from promoter.testing.github_emulator.store import (
    Mergeability,
    NoSuchRepoError,
    Pull,
    RepoState,
    Store,
)
from promoter.testing.github_emulator.users import Role, Users, stable_id

__all__ = ["World", "association", "identity", "stats_of", "view"]


@dataclass
class World:
    """Everything handlers share: repositories, identities, limits, faults and the clock."""

    root: Path
    users: Users
    clock: Callable[[], float]
    limits: RateLimits
    store: Store = field(init=False)
    faults: Faults = field(default_factory=Faults)
    tokens: InstallationTokens = field(default_factory=InstallationTokens)

    def __post_init__(self) -> None:
        self.store = Store(self.root)

    def git_dir(self, state: RepoState) -> Path:
        """The bare repository behind `state`."""
        return self.store.path(state.owner, state.name)

    @contextmanager
    def repo(self, ctx: Ctx, needed: Role = "read") -> Iterator[RepoState]:
        """The locked state of the request's `{owner}/{repo}`.

        Raises:
            ApiError: 404 when it does not exist or the caller cannot see it; 403 when the
                caller lacks role `needed`.
        """
        owner, name = ctx.param("owner"), ctx.param("repo")
        if not self.users.can(owner, name, ctx.login, "read"):
            raise not_found()
        if not self.users.can(owner, name, ctx.login, needed):
            who = "integration" if ctx.login.endswith("[bot]") else "personal access token"
            raise ApiError(403, f"Resource not accessible by {who}")
        try:
            with self.store.open(owner, name, ctx.now) as state:
                yield state
        except NoSuchRepoError:
            raise not_found() from None

    def repo_shape(self, links: Links, state: RepoState, now: float, login: str | None) -> Any:
        """The repository object (with the caller's `permissions` when `login` is given)."""
        role = self.users.role(state.owner, state.name, login) if login else None
        kind = "Organization" if self.users.has_org(state.owner) else "User"
        branch = gitrepo.default_branch(self.git_dir(state))
        return repository(links, state, branch, now, role=role, owner_kind=kind)

    def branches(self, state: RepoState) -> dict[str, str]:
        """Every branch of the repository and the sha it points at."""
        refs = gitrepo.list_refs(self.git_dir(state))
        return {
            r.name.removeprefix("refs/heads/"): r.sha
            for r in refs
            if r.name.startswith("refs/heads/")
        }

    def sync(
        self, state: RepoState, pr: Pull, now: float, branches: dict[str, str] | None = None
    ) -> None:
        """Bring an open PR's shas up to date with its branches; close it if one is gone.

        Args:
            state: The PR's repository.
            pr: The PR.
            now: The current time.
            branches: The repository's branches, when the caller already listed them.
        """
        if pr.state != "open":
            return
        known = self.branches(state) if branches is None else branches
        head, base = known.get(pr.head), known.get(pr.base)
        if head is None or base is None:
            pr.frozen_stats = stats_of(self, state, pr)
            pr.state, pr.closed_at, pr.updated_at = "closed", now, now
            return
        if head != pr.head_sha:
            pr.updated_at = now
        pr.head_sha, pr.base_sha = head, base

    def approvals(self, state: RepoState, pr: Pull) -> int:
        """Approvals that count: latest verdict per user, on the head, not by the author."""
        latest: dict[str, str] = {}
        commits: dict[str, str] = {}
        for item in state.reviews:
            if item.pull == pr.number and item.state not in ("PENDING", "COMMENTED"):
                latest[item.user] = item.state
                commits[item.user] = item.commit_id
        return sum(
            1
            for login, verdict in latest.items()
            if verdict == "APPROVED"
            and login != pr.user
            and commits[login] == pr.head_sha
            and self.users.can(state.owner, state.name, login, "write")
        )

    def mergeability(self, state: RepoState, pr: Pull) -> Mergeability:
        """The test merge of the PR's current head into its current base."""
        path = self.git_dir(state)
        computed = pr.computed
        if computed and (computed.head, computed.base) == (pr.head_sha, pr.base_sha):
            return computed
        tree = gitrepo.merge_trees(path, pr.base_sha, pr.head_sha)
        test_sha = None
        if tree is not None:
            who = gitrepo.Identity("GitHub", "noreply@github.com", "@0 +0000")
            message = f"Merge {pr.head_sha} into {pr.base_sha}"
            parents = (pr.base_sha, pr.head_sha)
            test_sha = gitrepo.commit_tree(
                path, tree, parents=parents, message=message, author=who, committer=who
            )
        behind = not gitrepo.is_ancestor(path, pr.base_sha, pr.head_sha)
        pr.computed = Mergeability(
            head=pr.head_sha,
            base=pr.base_sha,
            conflict=tree is None,
            behind=behind,
            test_sha=test_sha,
        )
        return pr.computed


def identity(login: str, when: float) -> gitrepo.Identity:
    """The git identity GitHub gives a user: their noreply address."""
    email = f"{stable_id(login)}+{login}@users.noreply.github.com"
    return gitrepo.Identity(login, email, f"@{int(when)} +0000")


def association(world: World, state: RepoState, login: str) -> str:
    """The author_association of `login` on the repository."""
    if login == state.owner:
        return "OWNER"
    if any(
        login in members
        for key, members in world.users.teams.items()
        if key.split("/", 1)[0] == state.owner
    ):
        return "MEMBER"
    if world.users.can(state.owner, state.name, login, "write"):
        return "COLLABORATOR"
    return "NONE"


def view(world: World, state: RepoState, pr: Pull, *, compute: bool, null: bool) -> PullView:
    """The full shape's extras; `compute` lets a GET answer unknown-then-computed like GitHub.

    Args:
        world: The emulator.
        state: The PR's repository.
        pr: The PR, already synced.
        compute: Whether this read may start or finish the mergeability computation.
        null: Answer `mergeable: null` whatever is known (the "mergeable-null" fault).
    """
    comments = sum(1 for c in state.comments if c.issue == pr.number)
    stats = stats_of(world, state, pr)
    unknown = PullView(None, "unknown", None, comments=comments, **stats)
    if pr.state != "open" or null:
        return unknown
    if pr.dirty_once and compute:
        pr.dirty_once = False
        return PullView(
            mergeable=False,
            mergeable_state="dirty",
            merge_commit_sha=None,
            comments=comments,
            **stats,
        )
    pair = (pr.head_sha, pr.base_sha)
    known = pr.computed is not None and (pr.computed.head, pr.computed.base) == pair
    if not known:
        if not compute:
            return unknown
        if pr.unknown_shown_for != pair:
            pr.unknown_shown_for = pair
            return unknown
    result = world.mergeability(state, pr)
    return PullView(
        not result.conflict,
        _merge_state(world, state, pr, result),
        result.test_sha,
        comments=comments,
        **stats,
    )


def _merge_state(world: World, state: RepoState, pr: Pull, result: Mergeability) -> str:
    if result.conflict:
        return "dirty"
    if pr.draft:
        return "draft"
    if world.approvals(state, pr) < state.settings.required_approvals:
        return "blocked"
    if state.settings.require_up_to_date and result.behind:
        return "behind"
    return "clean"


def stats_of(world: World, state: RepoState, pr: Pull) -> dict[str, int]:
    """Commits and diff statistics of the PR (frozen when it was closed)."""
    if pr.state != "open" and pr.frozen_stats is not None:
        return dict(pr.frozen_stats)
    path = world.git_dir(state)
    span = f"{pr.base_sha}..{pr.head_sha}"
    count = gitrepo.git(path, "rev-list", "--count", span, ok=(0, 128)).stdout.strip()
    diff = gitrepo.git(path, "diff", "--numstat", f"{pr.base_sha}...{pr.head_sha}", ok=(0, 128))
    added = deleted = files = 0
    for line in diff.stdout.splitlines():
        parts = line.split("\t")
        files += 1
        added += int(parts[0]) if parts[0].isdigit() else 0
        deleted += int(parts[1]) if parts[1].isdigit() else 0
    return {
        "commits": int(count or 0),
        "additions": added,
        "deletions": deleted,
        "changed_files": files,
    }
