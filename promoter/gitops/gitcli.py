"""Git plumbing for working clones, run through GitPython: redaction, a checked runner, the lock."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import structlog

from promoter.errors import GitError, PushRejectedError, TransientError
from promoter.gitops.messages import format_message, parse_trailers

__all__ = [
    "FETCH_HINT",
    "LOCAL_TIMEOUT",
    "NETWORK_TIMEOUT",
    "CloneLock",
    "GitResult",
    "GitRunner",
    "Redactor",
    "clone_dir_name",
    "format_message",
    "git_environment",
    "parse_trailers",
]

log = structlog.get_logger(__name__)

NETWORK_TIMEOUT = 300.0
"""Seconds a clone, fetch or push may take before it is killed."""

LOCAL_TIMEOUT = 120.0
"""Seconds a local git command may take before it is killed."""

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")

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

_DEFAULT_HINT = "inspect the working clone; deleting it makes the next call clone afresh"
FETCH_HINT = "check the URL, the credentials and that the remote is reachable"
_RETRY_HINT = "the network or the remote seems down; the operation will be retried"


@dataclass(frozen=True)
class Redactor:
    """Hides credentials in text meant for errors and logs.

    Userinfo in any URL (`https://user:token@host`) becomes `https://***@host`; each of
    `secrets` (the password or token of the workspace URL) is also replaced wherever it occurs.
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def for_url(cls, url: str) -> Redactor:
        """Build a redactor that also hides the literal password or token inside `url`."""
        try:
            parts = urlsplit(url)
            password, username = parts.password, parts.username
        except ValueError:
            return cls()
        if password:
            secret = password
        elif username and parts.scheme in {"http", "https"}:
            secret = username  # a token passed as the user name (https://TOKEN@host)
        else:
            return cls()
        return cls(tuple(dict.fromkeys((secret, unquote(secret)))))

    def __call__(self, text: str) -> str:
        """Return `text` with credentials replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _USERINFO.sub(r"\g<scheme>***@", text)


def clone_dir_name(name: str) -> str:
    """Return `<slug>-<hash>` for a redacted URL: filesystem-safe, short, and unique per URL."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().replace("***@", "")).strip("-")
    return f"{slug[-40:].lstrip('-') or 'repo'}-{digest}"


def git_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """Return the variables git runs with on top of the inherited environment.

    Prompts are off and messages are in English (they are parsed). GitPython starts every
    command from `os.environ` plus these; `GitRunner` adds the variables that pin the
    repository (see `_pinned`).

    Args:
        overrides: Variables to set on top (author identity and the like).
    """
    return {
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GCM_INTERACTIVE": "never",
        **overrides,
    }


def _pinned(root: Path) -> dict[str, str]:
    """Variables that point every repository lookup at the clone in `root`.

    A parent git process (a hook running the tests, say) exports `GIT_DIR`, `GIT_INDEX_FILE`
    and the like. GitPython can add variables to the child environment but not remove them,
    so each is set to the clone's own value (or to an empty, harmless one) instead; the
    `--git-dir` and `--work-tree` options `GitRunner` passes win over the environment too.
    `GIT_QUARANTINE_PATH` (set only inside a receive hook) cannot be neutralised this way.
    """
    git_dir = root / ".git"
    return {
        "GIT_DIR": str(git_dir),
        "GIT_WORK_TREE": str(root),
        "GIT_INDEX_FILE": str(git_dir / "index"),
        "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
        "GIT_COMMON_DIR": str(git_dir),
        "GIT_CONFIG": str(git_dir / "config"),  # read by `git config` alone
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_NAMESPACE": "",
        "GIT_PREFIX": "",
        "GIT_CONFIG_PARAMETERS": "",
        "GIT_CONFIG_COUNT": "0",
    }


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
        self._env = {**env, **_pinned(root)}
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
        text = message.strip("\n").rstrip()
        if not text:
            raise ValueError("a commit message must not be empty")
        return self.run("commit-tree", tree, "-p", parent, "-m", text)

    def push(self, sha: str, ref: str, *, lease: str | None) -> None:
        """Push `sha` to `ref` on origin and check the remote accepted it.

        Args:
            sha: The commit to push.
            ref: The full remote ref (`refs/heads/...`).
            lease: None for a plain (fast-forward only) push; otherwise force with a lease
                on the tip seen at fetch, `""` meaning the ref must not exist yet.

        Raises:
            PushRejectedError: The remote refused the ref (moved, lease failed, a hook refused).
            TransientError: The remote is unreachable.
            GitError: The push failed otherwise (credentials, a missing repository).
        """
        args = ["push", "--porcelain"]
        if lease is not None:
            args.append(f"--force-with-lease={ref}:{lease}")
        result = self.call(*args, "origin", f"{sha}:{ref}", network=True)
        flag, summary = _porcelain_status(result.text, ref)
        if result.status == 0 and flag not in {None, "!"}:
            log.info("git.pushed", repo=self._repo, ref=ref, sha=sha, status=summary)
            return
        if flag == "!":
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


class CloneLock:
    """Exclusive access to one clone: a thread lock, then `flock` on a file beside the clone.

    The lock file is opened anew for each acquisition, so two `CloneLock` objects on the
    same file (two workspaces, or two processes) exclude each other too.

    Args:
        lock_file: The file to `flock`; created (with its directory) when missing.
    """

    def __init__(self, lock_file: Path) -> None:
        self._file = lock_file
        self._thread_lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the `with` block."""
        with self._thread_lock:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            with self._file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
