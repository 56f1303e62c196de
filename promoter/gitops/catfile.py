"""One lasting `git cat-file --batch` on a clone: objects read without a git process per read."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
import weakref
from pathlib import Path

from promoter.errors import GitError
from promoter.gitops.gitcli import LOCAL_TIMEOUT
from promoter.gitops.gitenv import git_environment, pinned_environment

__all__ = ["BatchReader", "ReaderStoppedError", "git_executable"]

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MISSING_GIT = "git is not installed or not on PATH; install git 2.30 or newer"
_HEADER_FIELDS = 3  # "<id> <type> <size>"; a missing object gives "<id> missing"


class ReaderStoppedError(GitError):
    """`git cat-file` stopped answering (it exited or its pipe broke); a new one may do."""


def git_executable() -> str:
    """The git GitPython runs (tests may point it elsewhere).

    Raises:
        GitError: GitPython cannot be imported (it runs `git version` on import).
    """
    try:
        from git.cmd import Git  # noqa: PLC0415 (importing GitPython runs git once)
    except ImportError:
        raise GitError(_MISSING_GIT) from None
    return os.fspath(Git.GIT_PYTHON_GIT_EXECUTABLE or "git")


class BatchReader:
    """`git cat-file --batch` on the clone in `root`, pinned to it as `GitRunner` pins git.

    An answer slower than `LOCAL_TIMEOUT` kills the process; so does a broken pipe. The
    process ends on `close()` or when the reader is dropped.

    Raises:
        GitError: git cannot be started.
    """

    def __init__(self, root: Path, repo: str) -> None:
        self._repo = repo
        self._buffer = bytearray()
        command = [git_executable(), f"--git-dir={root / '.git'}", "cat-file", "--batch"]
        environment = {**os.environ, **git_environment({}), **pinned_environment(root)}
        try:
            self._process = subprocess.Popen(
                command,
                cwd=root,
                env=environment,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                bufsize=0,
            )
        except FileNotFoundError:
            missing = _MISSING_GIT if root.is_dir() else f"{root} does not exist"
            raise GitError(f"cannot run git cat-file for {repo}: {missing}") from None
        except OSError as exc:
            raise GitError(f"cannot run git cat-file for {repo}: {exc}") from None
        self._stop = weakref.finalize(self, _stop, self._process)

    @property
    def pid(self) -> int:
        """The process id of `git cat-file`."""
        return self._process.pid

    def close(self) -> None:
        """End the process: its input is closed, so it exits (killed if it does not)."""
        self._stop()

    def read(self, oid: str) -> tuple[str, bytes]:
        """The type and content of object `oid`.

        Raises:
            ReaderStoppedError: The process exited or its pipe broke.
            GitError: The object is missing, or no answer came in time (the process is then
                killed).
        """
        if _OID.fullmatch(oid) is None:
            raise GitError(f"{oid!r} is not an object id")
        deadline = time.monotonic() + LOCAL_TIMEOUT
        stdin = self._process.stdin
        assert stdin is not None  # noqa: S101 (opened with a pipe)
        try:
            stdin.write(f"{oid}\n".encode())
            header = self._line(deadline).decode("ascii", errors="replace").split()
            if len(header) != _HEADER_FIELDS:
                raise GitError(f"object {oid} is missing from {self._repo}")
            data = self._take(int(header[2]) + 1, deadline)  # and the newline after it
        except TimeoutError as exc:
            self._process.kill()
            raise GitError(f"git cat-file for {self._repo} reading {oid}: {exc}") from None
        except (OSError, EOFError, ValueError) as exc:
            self._process.kill()
            raise ReaderStoppedError(
                f"git cat-file for {self._repo} failed reading {oid}: {exc!r}"
            ) from None
        return header[1], data[:-1]

    def _line(self, deadline: float) -> bytes:
        while (end := self._buffer.find(b"\n")) < 0:
            self._fill(deadline)
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line

    def _take(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(deadline)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _fill(self, deadline: float) -> None:
        stdout = self._process.stdout
        assert stdout is not None  # noqa: S101 (opened with a pipe)
        ready, _, _ = select.select([stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no answer within {LOCAL_TIMEOUT:g}s")
        chunk = os.read(stdout.fileno(), 1 << 16)
        if not chunk:
            raise EOFError("git cat-file stopped")
        self._buffer += chunk


def _stop(process: subprocess.Popen[bytes]) -> None:
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
