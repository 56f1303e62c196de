"""Cached working clones of remote repositories, with checked and retried pushes."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, Protocol, TypeVar

import structlog

from promoter.errors import GitError, PromoterError, PushRejectedError, TransientError
from promoter.gitops.gitcli import (
    TOKEN_VARIABLE,
    AtomicPushUnsupportedError,
    CloneLock,
    Commit,
    GitRunner,
    Redactor,
    clone_dir_name,
    credential_environment,
    git_environment,
)
from promoter.gitops.messages import format_message, parse_trailers
from promoter.gitops.objects import ObjectStore, git_writes_differently
from promoter.gitops.refs import read_commits
from promoter.gitops.results import (
    DEFAULT_AUTHOR,
    PUSH_ATTEMPTS,
    Author,
    BranchResult,
    Edit,
    Files,
    MergeConflict,
    MergeResult,
    TreeEdit,
    WorktreeEdit,
    retrying,
)
from promoter.gitops.treefiles import TreeFiles
from promoter.gitops.worktree import WorktreeRoot

__all__ = [
    "DEFAULT_AUTHOR",
    "FRESH_FOR",
    "PUSH_ATTEMPTS",
    "Author",
    "BranchResult",
    "Edit",
    "Files",
    "MergeConflict",
    "MergeResult",
    "TreeEdit",
    "Workspace",
    "WorktreeEdit",
    "format_message",
    "parse_trailers",
]

log = structlog.get_logger(__name__)

FRESH_FOR = 1.0
"""Seconds after a fetch or an accepted push during which the next call may skip its fetch."""

_SHA = re.compile(r"[0-9a-f]{7,64}")
_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_LS_REMOTE_NO_MATCH = 2  # `git ls-remote --exit-code`: the remote answered without that ref

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


class _UnconfirmedError(Exception):
    """An attempt on an unfetched view reached an outcome that no push checked."""


class _Attempt(Protocol[_T_co]):
    """One try of an operation; `fetched` says whether the view of the remote was just fetched."""

    def __call__(self, *, fetched: bool) -> _T_co: ...


class Workspace:
    """A cached working clone of one remote, reused across events (fetch + reset, never re-clone).

    The clone lives in `cache_root/<slug>-<hash>` (both from the URL with credentials removed,
    so a rotated token reuses the clone). Every public method holds the clone's lock: a
    thread lock plus `flock` on `<clone>.lock`, so threads and processes sharing
    `cache_root` take turns. Branch, merge and direct commits are pushed checked; a rejected
    push is redone on the fresh remote state up to `PUSH_ATTEMPTS` times.

    Every push is checked against the exact remote state it was built on: a branch push has a
    lease on the branch tip it saw and, when the base was not just fetched, an atomic no-op
    lease on the base tip; a push to the base has a lease on the base tip. That lets a call
    made within `fresh_for` seconds of this workspace's last fetch or accepted push skip its
    fetch: if the remote moved meanwhile, the push is rejected and the call is redone at once
    on a fetched view. An outcome no push checks (nothing to change, already merged, a
    conflict, an error) is never taken from an unfetched view: it is redone on a fetched one.
    Retries after a rejected push always fetch.

    A `TreeEdit` is made in memory: the base commit's files are read from the clone's objects,
    and the new blobs, trees and commit are written there, never through the worktree or the
    index. Only merges and worktree edits use the worktree, and they reset it first. `close()`
    stops the object reader this keeps between calls.

    Args:
        url: Local path, `file://` or https URL (credentials inside it never reach errors or logs).
        cache_root: Directory holding the clones.
        author: Author and committer of the commits made here.
        fresh_for: Seconds a fetch or accepted push lets the next call skip its fetch (0: never).
    """

    def __init__(
        self,
        url: str,
        cache_root: Path,
        *,
        author: Author = DEFAULT_AUTHOR,
        fresh_for: float = FRESH_FOR,
        token: Callable[[], str] | None = None,
    ) -> None:
        self._url = url
        self._token = token
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
        if token is not None:
            self._env.update(credential_environment())
        self._git = self._runner(self._path)
        self._objects = ObjectStore(self._path, repo=self._name)
        self._origin_checked = False
        self._fresh_for = fresh_for
        self._fresh_until = 0.0  # time.monotonic() before which the view counts as fresh
        self._atomic = True  # False once the remote turned down an atomic push

    def __repr__(self) -> str:
        return f"Workspace({self._name!r}, {str(self._root)!r})"

    @property
    def path(self) -> Path:
        """The working clone's directory (its worktree root)."""
        return self._path

    def close(self) -> None:
        """Stop the clone's object reader (a later call starts another)."""
        with self._lock.hold():
            self._objects.close()

    def refresh(self) -> None:
        """Fetch now: the remote moved without this clone (a merge made through an SCM's API).

        The next call then starts from a fresh view instead of pushing on a stale one, having
        the push refused, fetching and pushing again.
        """
        with self._session():
            self._fetch()

    def sync(self, base: str) -> str:
        """Fetch, reset the worktree to `origin/<base>` and return that sha.

        Raises:
            GitError: The base branch does not exist on the remote, or git failed.
            TransientError: The remote is unreachable (every method may raise this).
        """
        with self._session():
            self._fetch()
            tip = self._base_tip(base)
            self._checkout(tip)
            return tip

    def prepare_branch(self, branch: str, base: str, edit: Edit, message: str) -> BranchResult:
        """Make `branch` exactly one commit (`edit` applied, `message`) on the newest base.

        Idempotent: no change pushes nothing, and a remote branch that already is this
        content on this base is returned as is. Otherwise the branch is rebuilt and pushed
        with a lease on the tip seen (and, on an unfetched view, on the base tip too);
        rejections are redone on fresh state.

        Raises:
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
            GitError: The base branch is missing or git failed.
        """
        base_ref, branch_ref = f"refs/remotes/origin/{base}", f"refs/remotes/origin/{branch}"

        def attempt(*, fetched: bool) -> BranchResult:
            found = self._commits(base_ref, branch_ref)
            tip = found.get(base_ref) or self._missing_base(base)
            seen = found.get(branch_ref)
            tree = self._edited_tree(tip, edit)
            if tree == tip.tree:
                self._confirm(fetched)
                return BranchResult(branch, tip.sha, tip.sha, changed=False, pushed=False)
            if seen is not None and seen.parents == (tip.sha,) and seen.tree == tree:
                self._confirm(fetched)
                return BranchResult(branch, seen.sha, tip.sha, changed=True, pushed=False)
            head = self._commit(tree, tip.sha, message)
            guard = None if fetched else (f"refs/heads/{base}", tip.sha)
            self._push(head, f"refs/heads/{branch}", lease=seen.sha if seen else "", guard=guard)
            return BranchResult(branch, head, tip.sha, changed=True, pushed=True)

        with self._session():
            # The branch's lease does not cover the base: skipping the fetch needs the guard.
            return self._attempts(attempt, reuse=self._atomic and branch != base)

    def merge(self, head: str, base: str, message: str) -> MergeResult:
        """Merge `head` into `base` with a merge commit (`--no-ff`) and push it.

        Idempotent: a head already contained in the base is not merged again.

        Raises:
            MergeConflict: The merge conflicts (the branch must be rebuilt on the new base).
            GitError: The head or base is unknown, or git failed.
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
        """

        def attempt(*, fetched: bool) -> MergeResult:
            tip = self._base_tip(base)
            head_sha = self._resolve(head) if fetched else self._git.sha(head)
            if head_sha is None:  # unknown locally: fetch and look again
                raise _UnconfirmedError
            if self._git.is_ancestor(head_sha, tip):
                self._confirm(fetched)
                return MergeResult(tip, merged=False)
            self._checkout(tip)
            merging = self._git.call(
                *("merge", "--no-ff", "--no-edit", "--no-log", "--cleanup=whitespace"),
                *("-m", message, head_sha),
            )
            if merging.status != 0:
                self._merge_failed(head_sha, base, merging.stderr)
            merged = self._detached_head() or self._git.run("rev-parse", "HEAD")
            self._push(merged, f"refs/heads/{base}", lease=tip)
            return MergeResult(merged, merged=True)

        with self._session():
            # Only a full sha names the same commit whatever the view; a ref name needs a fetch.
            return self._attempts(attempt, reuse=_FULL_SHA.fullmatch(head) is not None)

    def commit_to_base(self, base: str, edit: Edit, message: str) -> str | None:
        """Commit `edit` directly on `base` and push it (used for rollbacks).

        Returns:
            The new commit's sha, or None when the edit changed nothing.

        Raises:
            PushRejectedError: The remote still refused after `PUSH_ATTEMPTS` attempts.
            GitError: The base branch is missing or git failed.
        """

        def attempt(*, fetched: bool) -> str | None:
            tip = self._base_commit(base)
            tree = self._edited_tree(tip, edit)
            if tree == tip.tree:
                self._confirm(fetched)
                return None
            sha = self._commit(tree, tip.sha, message)
            self._push(sha, f"refs/heads/{base}", lease=tip.sha)
            return sha

        with self._session():
            return self._attempts(attempt, reuse=True)

    def remote_branch(self, branch: str) -> str | None:
        """Fetch and return the sha of `origin/<branch>`, or None if it does not exist."""
        with self._session():
            self._fetch()
            return self._git.sha(f"refs/remotes/origin/{branch}")

    def reachable(self, branch: str) -> str | None:
        """None if the remote answers and has `branch`, else what is wrong (no clone, no lock).

        Raises:
            TransientError: The remote did not answer in time.
        """
        self._root.mkdir(parents=True, exist_ok=True)
        result = self._runner(self._root).call(
            "ls-remote", "--exit-code", "--heads", self._url, f"refs/heads/{branch}", network=True
        )
        if result.status == 0:
            return None
        if result.status == _LS_REMOTE_NO_MATCH:
            return f"{self._name} has no branch {branch}"
        said = result.stderr.splitlines()[-1] if result.stderr else f"exit {result.status}"
        return f"{self._name}: {said}"

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
            if self._token is not None:
                self._git = self._runner(self._path)
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
        self._objects.close()  # it may have read a clone that is removed now
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
        self._mark_fresh()
        log.info("git.cloned", repo=self._name, path=str(self._path))

    # -- the view of the remote --------------------------------------------------------

    def _fetch(self) -> None:
        self._git.fetch()
        self._mark_fresh()

    def _mark_fresh(self) -> None:
        self._fresh_until = time.monotonic() + self._fresh_for

    def _attempts(self, attempt: _Attempt[_T], *, reuse: bool) -> _T:
        """Run `attempt` until its push is accepted, fetching before it as needed.

        The first try runs without a fetch (`fetched=False`) when `reuse` is set and the
        view is fresh. Its result is kept only if it ends in an accepted push (every push is
        checked against the state it was built on); anything else, including a rejection or
        an error other than an unreachable remote, is redone at once on a fetched view. Later
        tries (after a rejected push) always fetch. Any failure makes the view stale.
        """
        tries = 0

        def once() -> _T:
            nonlocal tries
            tries += 1
            if tries == 1 and reuse and time.monotonic() < self._fresh_until:
                try:
                    return attempt(fetched=False)
                except PushRejectedError as exc:
                    reason: Exception = exc
                except TransientError:  # the remote is unreachable: a fetch would not help
                    raise
                except Exception as exc:  # noqa: BLE001 (redone on a fetched view, raised again if real)
                    reason = exc
                log.debug("git.unfetched_view_redone", repo=self._name, reason=repr(reason))
            self._fetch()
            return attempt(fetched=True)

        try:
            return retrying(once)
        except BaseException:
            self._fresh_until = 0.0
            raise

    @staticmethod
    def _confirm(fetched: bool) -> None:
        """Refuse an outcome that pushes nothing unless the view was just fetched."""
        if not fetched:
            raise _UnconfirmedError

    def _push(
        self, sha: str, ref: str, *, lease: str | None, guard: tuple[str, str] | None = None
    ) -> None:
        try:
            self._git.push(sha, ref, lease=lease, guard=guard)
        except AtomicPushUnsupportedError:
            self._atomic = False  # branch calls fetch from now on
            log.info("git.no_atomic_push", repo=self._name)
            raise
        self._mark_fresh()

    def _base_tip(self, base: str) -> str:
        return self._base_commit(base).sha

    def _base_commit(self, base: str) -> Commit:
        ref = f"refs/remotes/origin/{base}"
        return self._commits(ref).get(ref) or self._missing_base(base)

    def _commits(self, *refs: str) -> dict[str, Commit]:
        """`GitRunner.commits`, read from the clone's files and objects when they are plain."""
        found = read_commits(self._path / ".git", self._objects, refs)
        return self._git.commits(*refs) if found is None else found

    def _missing_base(self, base: str) -> NoReturn:
        raise GitError(
            f"branch {base!r} does not exist on {self._name}; "
            "create it there or fix the base branch in the pipeline"
        )

    # -- the worktree -------------------------------------------------------------------

    def _checkout(self, sha: str) -> None:
        if self._detached_head() is None:  # a new clone's unborn branch: detach once
            self._git.run("checkout", "--quiet", "--force", "--detach", sha)
        self._git.run("reset", "--quiet", "--hard", sha)
        self._git.run("clean", "-ffdxq")

    def _detached_head(self) -> str | None:
        """The sha in `.git/HEAD` when HEAD is detached (as this clone keeps it), else None.

        Read from the file to save a git call; a symbolic HEAD, or one kept in another ref
        storage format, gives None and the caller asks git.
        """
        try:
            text = (self._path / ".git" / "HEAD").read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if _FULL_SHA.fullmatch(text) else None

    # -- helpers ----------------------------------------------------------------------

    def _runner(self, root: Path) -> GitRunner:
        env = self._env
        if self._token is not None:  # read per runner and session: App tokens are refreshed
            env = {**env, TOKEN_VARIABLE: self._token()}
        return GitRunner(root, env=env, redact=self._redact, repo=self._name)

    def _resolve(self, ref: str) -> str:
        sha = self._git.sha(ref)
        if sha is None:
            self._fetch()
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

    def _edited_tree(self, tip: Commit, edit: Edit) -> str:
        """The tree of `tip` with `edit` applied: in memory for a `TreeEdit`."""
        if isinstance(edit, TreeEdit):
            files = TreeFiles(self._objects, tip.tree)  # refuses links, `.git` and escapes
            edit.apply(files)
            return files.write_tree()
        self._checkout(tip.sha)
        return self._stage(edit)

    def _stage(self, edit: WorktreeEdit) -> str:
        edit(WorktreeRoot(self._path))  # joins refuse links, `.git` and escapes
        self._git.run("add", "--all")
        return self._git.run("write-tree")

    def _commit(self, tree: str, parent: str, message: str) -> str:
        """Commit `tree` on `parent` as `git commit-tree` does, written in-process if it can be."""
        if git_writes_differently(message):
            return self._git.commit_tree(tree, parent, message)
        return self._objects.write_commit(tree, parent, message, self._author)

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
