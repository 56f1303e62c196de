"""Git plumbing for working clones, run through GitPython: a checked runner and typed helpers."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from promoter.errors import GitError, PushRejectedError, TransientError
from promoter.gitops.gitenv import (
    TOKEN_VARIABLE,
    CloneLock,
    Redactor,
    clone_dir_name,
    credential_environment,
    git_environment,
    pinned_environment,
)
from promoter.gitops.messages import commit_text, format_message, parse_trailers

__all__ = [
    "FETCH_HINT",
    "LOCAL_TIMEOUT",
    "NETWORK_TIMEOUT",
    "TOKEN_VARIABLE",
    "AtomicPushUnsupportedError",
    "CloneLock",
    "Commit",
    "GitResult",
    "GitRunner",
    "Redactor",
    "clone_dir_name",
    "credential_environment",
    "format_message",
    "git_environment",
    "parse_trailers",
]

log = structlog.get_logger(__name__)

NETWORK_TIMEOUT = 300.0
"""Seconds a clone, fetch or push may take before it is killed."""

LOCAL_TIMEOUT = 120.0
"""Seconds a local git command may take before it is killed."""


# Failures of a network command that say the remote is wrong or refuses us: retrying cannot help.
# Checked first: an ssh or local remote that is missing also says "Could not read from remote".
_REFUSED = re.compile(
    r"authentication failed|permission denied|access denied|invalid username or password"
    r"|could not read (?:username|password)|repository\b.*\bnot found"
    r"|does not appear to be a git repository|returned error: 4(?!08|29)\d\d",
    re.IGNORECASE,
)
# Failures that say the network or the remote is down for now: worth retrying later.
_UNREACHABLE = re.compile(
    r"could not resolve (?:host|proxy)|temporary failure in name resolution"
    r"|name or service not known|connection refused|connection reset|timed out"
    r"|failed to connect|couldn't connect|network is unreachable|no route to host"
    r"|could not read from remote repository|remote end hung up unexpectedly|early eof"
    r"|unexpected disconnect|empty reply from server|operation too slow"
    r"|returned error: (?:5\d\d|408|429)|\bHTTP (?:5\d\d|408|429)\b"
    r"|gnutls_handshake|ssl_connect|tls connection was non-properly terminated",
    re.IGNORECASE,
)

_ATOMIC_UNSUPPORTED = "does not support --atomic"
_COMMIT_FIELDS = "%(refname)%00%(objecttype)%00%(objectname)%00%(tree)%00%(parent)"

_DEFAULT_HINT = "inspect the working clone; deleting it makes the next call clone afresh"
FETCH_HINT = "check the URL, the credentials and that the remote is reachable"
_RETRY_HINT = "the network or the remote seems down; the operation will be retried"


@dataclass(frozen=True)
class GitResult:
    """The outcome of one git command; `stderr` is already redacted."""

    status: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """Standard output as text without the trailing newline."""
        return self.stdout.decode("utf-8", errors="replace").rstrip("\n")


class AtomicPushUnsupportedError(GitError):
    """The remote does not take `git push --atomic`; nothing was pushed."""


@dataclass(frozen=True)
class Commit:
    """A commit a ref points at, with the fields promoter compares."""

    sha: str
    tree: str
    parents: tuple[str, ...]


class GitRunner:
    """Runs git (through GitPython) on the clone in `root`; failures become `GitError`.

    Every command gets `--git-dir=<root>/.git --work-tree=<root>`, runs in `root`, and sees
    the inherited environment with `env` and the pinned repository variables on top.
    Failures of network commands (`network=True`) that look like an unreachable remote raise
    `TransientError` instead, so the caller retries later.

    Args:
        root: The clone's worktree root (not yet a repository before `git init`).
        env: Variables to set for the commands (see `git_environment`).
        redact: Applied to every message that leaves this class.
        repo: Redacted name of the repository, used in error messages.
    """

    def __init__(self, root: Path, *, env: Mapping[str, str], redact: Redactor, repo: str) -> None:
        self._root = root
        pinned = pinned_environment(root)
        if "GIT_CONFIG_COUNT" in env:  # promoter's own config entries (credential helper)
            del pinned["GIT_CONFIG_COUNT"]
        self._env = {**env, **pinned}
        self._options = (f"--git-dir={root / '.git'}", f"--work-tree={root}")
        self._redact = redact
        self._repo = repo

    def call(self, *args: str, timeout: float | None = None, network: bool = False) -> GitResult:
        """Run `git ARGS` and return its result whatever the exit status.

        Args:
            args: The git command and its arguments.
            timeout: Seconds before the command is killed; `NETWORK_TIMEOUT` for network
                commands, else `LOCAL_TIMEOUT`.
            network: The command talks to the remote (clone, fetch, push).

        Raises:
            GitError: git is not installed, the directory is missing, or a local command
                timed out.
            TransientError: A network command timed out.
        """
        limit = timeout or (NETWORK_TIMEOUT if network else LOCAL_TIMEOUT)
        status, stdout, stderr = self._execute(args, limit)
        if status == -signal.SIGKILL and stderr.startswith("Timeout:"):
            late = f"git {args[0]} for {self._repo} did not finish within {limit:g}s"
            if network:
                raise TransientError(f"{late}; {_RETRY_HINT}")
            raise GitError(f"{late}; check the network and the remote, then retry")
        return GitResult(status, stdout, self._redact(stderr.strip()))

    def _execute(self, args: tuple[str, ...], timeout: float) -> tuple[int, bytes, str]:
        """Run `git ARGS` through GitPython: (exit status, stdout bytes, stderr text).

        A command killed after `timeout` seconds returns status `-SIGKILL` and GitPython's
        `Timeout: ...` text as its standard error.
        """
        missing = "git is not installed or not on PATH; install git 2.30 or newer"
        try:
            # Imported on first use: importing GitPython runs `git version` (and fails
            # without git), which commands that never touch a repository need not pay for.
            from git.cmd import Git  # noqa: PLC0415
            from git.exc import GitCommandError, GitCommandNotFound  # noqa: PLC0415
        except ImportError:
            raise GitError(missing) from None
        if not self._root.is_dir():  # GitPython would silently run in the current directory
            raise GitError(
                self._redact(f"cannot run git {args[0]} in {self._root}: no such directory")
            )
        command = [os.fspath(Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), *self._options, *args]
        try:
            return Git(self._root).execute(
                command,
                with_extended_output=True,
                with_exceptions=False,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
                kill_after_timeout=timeout,
                env=self._env,
            )
        except GitCommandNotFound:
            raise GitError(missing) from None
        except (GitCommandError, OSError) as exc:
            raise GitError(
                self._redact(f"cannot run git {args[0]} in {self._root}: {exc}")
            ) from None

    def run(
        self,
        *args: str,
        timeout: float | None = None,
        hint: str = _DEFAULT_HINT,
        network: bool = False,
        label: str | None = None,
    ) -> str:
        """Run `git ARGS` and return its standard output (trailing newline removed).

        `label` names the operation in errors (default: the git command).

        Raises:
            GitError: The command failed; the message has git's (redacted) words and `hint`.
            TransientError: A network command failed because the remote is unreachable.
        """
        result = self.call(*args, timeout=timeout, network=network)
        return self.check(result, label or args[0], hint, network=network).text

    def output(self, *args: str) -> bytes:
        """Run `git ARGS` and return its exact standard output bytes.

        Raises:
            GitError: The command failed.
        """
        return self.check(self.call(*args), args[0], _DEFAULT_HINT).stdout

    def check(
        self, result: GitResult, command: str, hint: str, *, network: bool = False
    ) -> GitResult:
        """Return `result` if it succeeded, else raise naming `command` and `hint`.

        Raises:
            TransientError: `network` is set and git's words say the remote is unreachable.
            GitError: The command failed otherwise.
        """
        if result.status == 0:
            return result
        said = " ".join(line.strip() for line in result.stderr.splitlines() if line.strip())
        said = said or "no message"
        if network and _UNREACHABLE.search(said) and not _REFUSED.search(said):
            raise TransientError(
                f"git {command} for {self._repo} failed (exit {result.status}): {said}; "
                f"{_RETRY_HINT}"
            )
        raise GitError(
            f"git {command} failed for {self._repo} (exit {result.status}): {said}; {hint}"
        )

    # -- typed helpers for the operations working clones need --------------------------

    def fetch(self, *, label: str = "fetch") -> None:
        """Fetch all branches of `origin`, pruning deleted ones (tags are not needed)."""
        self.run(
            *("fetch", "--quiet", "--prune", "--no-tags", "origin"),
            hint=FETCH_HINT,
            network=True,
            label=label,
        )

    def sha(self, ref: str) -> str | None:
        """Return the commit sha `ref` names locally, or None."""
        found = self.call(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
        )
        return found.text if found.status == 0 else None

    def commits(self, *refs: str) -> dict[str, Commit]:
        """Return the commits that the full ref names `refs` (`refs/...`) point at, by name.

        One `for-each-ref` instead of a `rev-parse` per ref and field. Absent refs are left
        out; a ref to another kind of object (an annotated tag) is peeled to its commit.
        """
        wanted = set(refs)
        if not wanted:  # no pattern would list every ref
            return {}
        out = self.output("for-each-ref", f"--format={_COMMIT_FIELDS}", *wanted)
        found: dict[str, Commit] = {}
        for line in out.decode("utf-8", errors="surrogateescape").split("\n"):
            if not line:
                continue
            name, kind, sha, tree, parents = line.split("\0")
            if name not in wanted:  # a pattern also matches the refs below it
                continue
            if kind != "commit":
                peeled = self.sha(name)
                if peeled is None:
                    continue
                sha, tree, parents = peeled, self.tree(peeled), " ".join(self.parents(peeled))
            found[name] = Commit(sha, tree, tuple(parents.split()))
        return found

    def tree(self, sha: str) -> str:
        """Return the tree sha of commit `sha`."""
        return self.run("rev-parse", f"{sha}^{{tree}}")

    def parents(self, sha: str) -> list[str]:
        """Return the parent shas of commit `sha`."""
        return self.run("rev-list", "--parents", "--max-count=1", sha).split()[1:]

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Return whether `ancestor` is `descendant` or one of its ancestors."""
        found = self.call("merge-base", "--is-ancestor", ancestor, descendant)
        if found.status > 1:
            self.check(found, "merge-base", _DEFAULT_HINT)
        return found.status == 0

    def commit_tree(self, tree: str, parent: str, message: str) -> str:
        """Create a commit of `tree` on `parent` (no hooks; message as given, one final newline).

        Raises:
            ValueError: The message is empty.
        """
        return self.run("commit-tree", tree, "-p", parent, "-m", commit_text(message))

    def push(
        self, sha: str, ref: str, *, lease: str | None, guard: tuple[str, str] | None = None
    ) -> None:
        """Push `sha` to `ref` on origin and check the remote accepted it.

        Args:
            sha: The commit to push.
            ref: The full remote ref (`refs/heads/...`).
            lease: None for a plain (fast-forward only) push; otherwise force with a lease
                on the tip seen at fetch, `""` meaning the ref must not exist yet.
            guard: `(other_ref, other_sha)`: push only if `other_ref` is still `other_sha` on
                the remote. Pushed atomically as a no-op update with a lease (it can never
                move `other_ref`), so a moved `other_ref` rejects the whole push.

        Raises:
            PushRejectedError: The remote refused the ref (moved, lease failed, a hook refused,
                the guard ref moved).
            AtomicPushUnsupportedError: `guard` was given but the remote has no atomic pushes.
            TransientError: The remote is unreachable.
            GitError: The push failed otherwise (credentials, a missing repository).
        """
        args = ["push", "--porcelain"]
        refspecs = [f"{sha}:{ref}"]
        if lease is not None:
            args.append(f"--force-with-lease={ref}:{lease}")
        if guard is not None:
            guard_ref, guard_sha = guard
            args += ["--atomic", f"--force-with-lease={guard_ref}:{guard_sha}"]
            refspecs.append(f"{guard_sha}:{guard_ref}")
        result = self.call(*args, "origin", *refspecs, network=True)
        if guard is not None and result.status != 0 and _ATOMIC_UNSUPPORTED in result.stderr:
            raise AtomicPushUnsupportedError(
                f"{self._repo} does not support atomic pushes; nothing was pushed"
            )
        flag, summary = _porcelain_status(result.text, ref)
        if result.status == 0 and flag not in {None, "!"}:
            log.info("git.pushed", repo=self._repo, ref=ref, sha=sha, status=summary)
            return
        if flag == "!":
            if guard is not None:
                guard_flag, guard_summary = _porcelain_status(result.text, guard[0])
                if guard_flag == "!":
                    summary = f"{summary}; {guard[0]} {guard_summary}"
            said = _remote_said(result.stderr)
            detail = f"{summary}; the remote said: {said}" if said else summary
            raise PushRejectedError(
                self._redact(f"{self._repo} rejected the push of {sha[:12]} to {ref}: {detail}")
            )
        self.check(result, "push", FETCH_HINT, network=True)
        raise GitError(f"git push to {ref} of {self._repo} reported no status: {result.stderr}")


def _porcelain_status(out: str, ref: str) -> tuple[str | None, str]:
    """Return (flag, summary) of `ref`'s line in `git push --porcelain` output."""
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].endswith(f":{ref}"):  # noqa: PLR2004 (flag, refs, summary)
            return fields[0], fields[2]
    return None, ""


def _remote_said(stderr: str) -> str:
    """Join the `remote:` lines (hook output) of a push's standard error."""
    hook_lines = [line for line in stderr.splitlines() if line.startswith("remote:")]
    said = (line.removeprefix("remote:").strip() for line in hook_lines)
    return "; ".join(text for text in said if text)
