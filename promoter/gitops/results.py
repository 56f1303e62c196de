"""What workspace operations return and raise, and how rejected pushes are retried."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from promoter.errors import GitError, PushRejectedError

__all__ = [
    "DEFAULT_AUTHOR",
    "PUSH_ATTEMPTS",
    "Author",
    "BranchResult",
    "Edit",
    "Files",
    "MergeConflict",
    "MergeResult",
    "TreeEdit",
    "WorktreeEdit",
    "retrying",
]

log = structlog.get_logger("promoter.gitops.repo")

PUSH_ATTEMPTS = 5
"""How often a rejected push is redone on the fresh remote state before giving up."""

_BACKOFF = 0.1  # first retry waits up to 0.1 s, doubling, full jitter
_BACKOFF_MAX = 2.0
_T = TypeVar("_T")


class Files(Protocol):
    """A commit's files as an edit sees them, by repository path (`envs/dev/values.yaml`)."""

    def read_text(self, path: str) -> str:
        """The file's UTF-8 text, line endings as stored ('' when it does not exist)."""
        ...

    def write_text(self, path: str, text: str) -> None:
        """Set the file's content to `text` as UTF-8, line endings as given."""
        ...


@dataclass(frozen=True)
class TreeEdit:
    """An edit made in memory on the base commit's files; must be repeatable (retries redo it)."""

    apply: Callable[[Files], None]


WorktreeEdit = Callable[[Path], None]
"""Writes files inside the given worktree root; must be repeatable (retries call it again)."""

Edit = TreeEdit | WorktreeEdit
"""What `Workspace` applies on the base: in memory (`TreeEdit`) or in the worktree."""


@dataclass(frozen=True)
class Author:
    """Identity for commits promoter makes (author and committer)."""

    name: str = "promoter"
    email: str = "promoter@localhost"


@dataclass(frozen=True)
class BranchResult:
    """Outcome of `Workspace.prepare_branch`.

    Attributes:
        branch: The branch name (without `refs/heads/`).
        head: Sha of the branch tip after the call (== `base` when `changed` is False).
        base: Sha of the base tip the branch was built on.
        changed: The edit changed at least one file relative to base.
        pushed: This call pushed (False when the remote already had this content on this base).
    """

    branch: str
    head: str
    base: str
    changed: bool
    pushed: bool


@dataclass(frozen=True)
class MergeResult:
    """Outcome of `Workspace.merge`.

    Attributes:
        sha: The base tip that contains the head.
        merged: False if the head was already contained in the base (nothing done).
    """

    sha: str
    merged: bool


DEFAULT_AUTHOR = Author()


class MergeConflict(GitError):  # noqa: N818 (the name the runtime catches)
    """A merge has content conflicts: rebuild the branch on the new base and merge again.

    Attributes:
        files: The conflicting paths, relative to the worktree root.
    """

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message)
        self.files = files

    def __reduce__(self) -> tuple[type[MergeConflict], tuple[str, list[str]]]:
        return type(self), (str(self), self.files)


def retrying(attempt: Callable[[], _T]) -> _T:
    """Run `attempt`, redoing it while pushes are rejected, at most `PUSH_ATTEMPTS` times."""
    policy = Retrying(
        stop=stop_after_attempt(PUSH_ATTEMPTS),
        wait=wait_random_exponential(multiplier=_BACKOFF, max=_BACKOFF_MAX),
        retry=retry_if_exception_type(PushRejectedError),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return policy(attempt)
    except PushRejectedError as exc:
        raise PushRejectedError(f"{exc} (gave up after {PUSH_ATTEMPTS} attempts)") from None


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("git.push_retry", attempt=state.attempt_number, error=str(error))
