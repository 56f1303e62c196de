"""Cached working clones of remote repositories, with checked and retried pushes."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from promoter.errors import GitError, PromoterError, PushRejectedError
from promoter.gitops.gitcli import CloneLock, GitRunner, Redactor, clone_dir_name, git_environment
from promoter.gitops.messages import format_message, parse_trailers

__all__ = [
    "DEFAULT_AUTHOR",
    "PUSH_ATTEMPTS",
    "Author",
    "BranchResult",
    "Edit",
    "MergeConflict",
    "MergeResult",
    "Workspace",
    "format_message",
    "parse_trailers",
]

log = structlog.get_logger(__name__)

PUSH_ATTEMPTS = 5
"""How often a rejected push is redone on the fresh remote state before giving up."""

_BACKOFF = 0.1  # first retry waits up to 0.1 s, doubling, full jitter
_BACKOFF_MAX = 2.0
_SHA = re.compile(r"[0-9a-f]{7,64}")

_T = TypeVar("_T")

Edit = Callable[[Path], None]
"""Writes files inside the given worktree root; must be repeatable (retries call it again)."""


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


class Workspace:
    """A cached working clone of one remote, reused across events (fetch + reset, never re-clone).

    The clone lives in `cache_root/<slug>-<hash>` (both from the URL with credentials removed,
    so a rotated token reuses the clone). Every public method holds the clone's lock: a
    thread lock plus `flock` on `<clone>.lock`, so threads and processes sharing
    `cache_root` take turns. Branch, merge and direct commits are pushed checked; a rejected
    push is redone on the fresh remote state up to `PUSH_ATTEMPTS` times.

    Args:
        url: Local path, `file://` or https URL (credentials inside it never reach errors or logs).
        cache_root: Directory holding the clones.
        author: Author and committer of the commits made here.
    """

    def __init__(self, url: str, cache_root: Path, *, author: Author = DEFAULT_AUTHOR) -> None:
        self._url = url
        self._redact = Redactor.for_url(url)
        self._name = self._redact(url)
        self._root = Path(cache_root).absolute()
        self._path = self._root / clone_dir_name(self._name)
        self._lock = CloneLock(self._root / f"{self._path.name}.lock")
        self._author = author
        self._env = git_environment(
            {
                "GIT_AUTHOR_NAME": author.name,
                "GIT_AUTHOR_EMAIL": author.email,
                "GIT_COMMITTER_NAME": author.name,
                "GIT_COMMITTER_EMAIL": author.email,
            }
        )
        self._git = self._runner(self._path)
        self._origin_checked = False

    def __repr__(self) -> str:
        return f"Workspace({self._name!r}, {str(self._root)!r})"

    @property
    def path(self) -> Path:
        """The working clone's directory (its worktree root)."""
        return self._path

    def sync(self, base: str) -> str:
        """Fetch, reset the worktree to `origin/<base>` and return that sha.

        Raises:
            GitError: The base branch does not exist on the remote, or git failed.
            TransientError: The remote is unreachable (every method may raise this).
        """
        with self._session():
            tip = self._fetch_base(base)
            self._checkout(tip)
            return tip

    def prepare_branch(self, branch: str, base: str, edit: Edit, message: str) -> BranchResult:
        """Make `branch` exactly one commit (`edit` applied, `message`) on the newest base.

        Idempotent: no change pushes nothing, and a remote branch that already is this
        content on this base is returned as is. Otherwise the branch is rebuilt and pushed
        with a lease on the tip seen at fetch; rejections are redone on fresh state.

        Raises:
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
            GitError: The base branch is missing or git failed.
        """

        def attempt() -> BranchResult:
            base_sha = self._fetch_base(base)
            seen = self._git.sha(f"refs/remotes/origin/{branch}")
            self._checkout(base_sha)
            tree = self._stage(edit)
            if tree == self._git.tree(base_sha):
                return BranchResult(branch, base_sha, base_sha, changed=False, pushed=False)
            if (
                seen is not None
                and self._git.parents(seen) == [base_sha]
                and self._git.tree(seen) == tree
            ):
                return BranchResult(branch, seen, base_sha, changed=True, pushed=False)
            head = self._git.commit_tree(tree, base_sha, message)
            self._git.push(head, f"refs/heads/{branch}", lease=seen or "")
            return BranchResult(branch, head, base_sha, changed=True, pushed=True)

        with self._session():
            return _retrying(attempt)

    def merge(self, head: str, base: str, message: str) -> MergeResult:
        """Merge `head` into `base` with a merge commit (`--no-ff`) and push it.

        Idempotent: a head already contained in the base is not merged again.

        Raises:
            MergeConflict: The merge conflicts (the branch must be rebuilt on the new base).
            GitError: The head or base is unknown, or git failed.
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
        """

        def attempt() -> MergeResult:
            tip = self._fetch_base(base)
            head_sha = self._resolve(head)
            if self._git.is_ancestor(head_sha, tip):
                return MergeResult(tip, merged=False)
            self._checkout(tip)
            merging = self._git.call(
                *("merge", "--no-ff", "--no-edit", "--no-log", "--cleanup=whitespace"),
                *("-m", message, head_sha),
            )
            if merging.status != 0:
                self._merge_failed(head_sha, base, merging.stderr)
            merged = self._git.run("rev-parse", "HEAD")
            self._git.push(merged, f"refs/heads/{base}", lease=None)
            return MergeResult(merged, merged=True)

        with self._session():
            return _retrying(attempt)

    def commit_to_base(self, base: str, edit: Edit, message: str) -> str | None:
        """Commit `edit` directly on `base` and push it (used for rollbacks).

        Returns:
            The new commit's sha, or None when the edit changed nothing.

        Raises:
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
            GitError: The base branch is missing or git failed.
        """

        def attempt() -> str | None:
            tip = self._fetch_base(base)
            self._checkout(tip)
            tree = self._stage(edit)
            if tree == self._git.tree(tip):
                return None
            sha = self._git.commit_tree(tree, tip, message)
            self._git.push(sha, f"refs/heads/{base}", lease=None)
            return sha

        with self._session():
            return _retrying(attempt)

    def remote_branch(self, branch: str) -> str | None:
        """Fetch and return the sha of `origin/<branch>`, or None if it does not exist."""
        with self._session():
            self._git.fetch()
            return self._git.sha(f"refs/remotes/origin/{branch}")

    def read_file(self, ref: str, path: str) -> str | None:
        """Return the text of `path` at `ref` (`origin/main`, a sha), or None if absent.

        Does not fetch unless `ref` is unknown locally; call `sync` first for the newest state.

        Raises:
            GitError: `ref` is not a commit even after a fetch, or the file is not UTF-8.
        """
        with self._session():
            spec = f"{self._resolve(ref)}:{path.lstrip('/')}"
            if self._git.call("cat-file", "-t", spec).text != "blob":
                return None
            data = self._git.output("cat-file", "blob", spec)
            try:
                return data.decode("utf-8")
            except UnicodeDecodeError:
                raise GitError(
                    f"{path} at {ref} in {self._name} is not UTF-8 text; promoter edits text files"
                ) from None

    def commit_message(self, sha: str) -> str:
        """Return the full message of commit `sha` (fetched if unknown locally).

        Raises:
            GitError: `sha` is not a commit even after a fetch.
        """
        with self._session():
            raw = self._git.output("cat-file", "commit", self._resolve(sha))
            return raw.partition(b"\n\n")[2].decode("utf-8", errors="replace")

    # -- clone life cycle ---------------------------------------------------------------

    @contextmanager
    def _session(self) -> Iterator[None]:
        with self._lock.hold():
            self._open()
            yield

    def _open(self) -> None:
        if not (self._path / ".git" / "HEAD").is_file():
            self._clone()
            return
        # We hold the clone exclusively: an index lock is a leftover of a killed git process.
        (self._path / ".git" / "index.lock").unlink(missing_ok=True)
        if not self._origin_checked:
            current = self._git.call("config", "--get", "remote.origin.url").text
            if current != self._url:  # e.g. a rotated token
                self._git.run("remote", "set-url", "origin", self._url)
            self._origin_checked = True

    def _clone(self) -> None:
        """Clone into `<clone>.cloning`, then rename it into place (a half clone is never used).

        Done as init + config + fetch rather than `git clone`, which follows an inherited
        `GIT_WORK_TREE` and cannot be pointed elsewhere by options; `GitRunner` pins the rest.
        """
        staging = self._path.with_name(f"{self._path.name}.cloning")
        for leftover in (self._path, staging):  # an interrupted clone or a foreign directory
            shutil.rmtree(leftover, ignore_errors=True)
        settings = {
            "user.name": self._author.name,
            "user.email": self._author.email,
            "commit.gpgsign": "false",
            "tag.gpgsign": "false",
            "core.hooksPath": os.devnull,
            "core.autocrlf": "false",
            "gc.autoDetach": "false",
        }
        staging.mkdir(parents=True)
        git = self._runner(staging)
        try:
            git.run("init", "--quiet")
            for key, value in settings.items():
                git.run("config", key, value)
            git.run("remote", "add", "--no-tags", "origin", self._url)
            git.fetch(label="clone")
        except PromoterError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        staging.rename(self._path)
        self._origin_checked = True
        log.info("git.cloned", repo=self._name, path=str(self._path))

    def _fetch_base(self, base: str) -> str:
        self._git.fetch()
        tip = self._git.sha(f"refs/remotes/origin/{base}")
        if tip is None:
            raise GitError(
                f"branch {base!r} does not exist on {self._name}; "
                "create it there or fix the base branch in the pipeline"
            )
        return tip

    def _checkout(self, sha: str) -> None:
        self._git.run("checkout", "--quiet", "--force", "--detach", sha)
        self._git.run("reset", "--quiet", "--hard", sha)
        self._git.run("clean", "-ffdxq")

    # -- helpers ----------------------------------------------------------------------

    def _runner(self, root: Path) -> GitRunner:
        return GitRunner(root, env=self._env, redact=self._redact, repo=self._name)

    def _resolve(self, ref: str) -> str:
        sha = self._git.sha(ref)
        if sha is None:
            self._git.fetch()
            sha = self._git.sha(ref)
        if sha is None and _SHA.fullmatch(ref):  # an unadvertised commit the server may serve
            self._git.call("fetch", "--quiet", "origin", ref, network=True)
            sha = self._git.sha(ref)
        if sha is None:
            raise GitError(
                f"{ref!r} is not a commit in {self._name}; check the sha or branch, "
                "and that it was pushed"
            )
        return sha

    def _stage(self, edit: Edit) -> str:
        edit(self._path)
        self._git.run("add", "--all")
        return self._git.run("write-tree")

    # -- merging and pushing --------------------------------------------------------------

    def _merge_failed(self, head: str, base: str, stderr: str) -> NoReturn:
        unmerged = self._git.output("diff", "--name-only", "-z", "--diff-filter=U")
        conflicts = [
            name.decode("utf-8", errors="replace") for name in unmerged.split(b"\0") if name
        ]
        self._git.call("merge", "--abort")
        self._git.run("reset", "--quiet", "--hard")
        if conflicts:
            raise MergeConflict(
                f"merging {head[:12]} into {base} of {self._name} conflicts in "
                f"{', '.join(conflicts)}; rebuild the branch on the new base and merge again",
                conflicts,
            )
        raise GitError(f"git merge of {head[:12]} into {base} of {self._name} failed: {stderr}")


def _retrying(attempt: Callable[[], _T]) -> _T:
    """Run `attempt`, redoing it while pushes are rejected, at most `PUSH_ATTEMPTS` times."""
    retrying = Retrying(
        stop=stop_after_attempt(PUSH_ATTEMPTS),
        wait=wait_random_exponential(multiplier=_BACKOFF, max=_BACKOFF_MAX),
        retry=retry_if_exception_type(PushRejectedError),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except PushRejectedError as exc:
        raise PushRejectedError(f"{exc} (gave up after {PUSH_ATTEMPTS} attempts)") from None


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("git.push_retry", attempt=state.attempt_number, error=str(error))
