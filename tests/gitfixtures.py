"""Real-git test fixtures: bare remotes seeded with files, concurrent writers, and readers."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from promoter.gitops.gitenv import PARENT_REPO_VARIABLES

__all__ = [
    "commit_to_remote",
    "install_hook",
    "make_remote",
    "read_remote_file",
    "remote_branches",
    "remote_log",
    "remote_sha",
    "run_git",
]

_GIT = shutil.which("git") or "git"
_IDENTITY = ("-c", "user.name=fixture", "-c", "user.email=fixture@localhost")
_PARENT_REPO_ENV = PARENT_REPO_VARIABLES


def run_git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run `git ARGS` in `cwd` (a worktree or a bare repository) and return stdout, stripped."""
    env = {k: v for k, v in os.environ.items() if k not in _PARENT_REPO_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    done = subprocess.run(
        [_GIT, *_IDENTITY, "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {done.stderr}")
    return done.stdout.strip()


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def make_remote(tmp_path: Path, files: dict[str, str], branch: str = "main") -> Path:
    """Create a bare repository under `tmp_path` whose `branch` has one commit ("initial")."""
    remote = Path(tempfile.mkdtemp(prefix="remote-", suffix=".git", dir=tmp_path))
    run_git(remote, "init", "--quiet", "--bare", f"--initial-branch={branch}")
    with tempfile.TemporaryDirectory(prefix="seed-", dir=tmp_path) as seed_dir:
        seed = Path(seed_dir)
        run_git(seed, "init", "--quiet", f"--initial-branch={branch}")
        _write(seed, files)
        run_git(seed, "add", "--all")
        run_git(seed, "commit", "--quiet", "--allow-empty", "-m", "initial")
        run_git(seed, "push", "--quiet", str(remote), f"HEAD:refs/heads/{branch}")
    return remote


def commit_to_remote(
    remote: Path,
    branch: str,
    files: Mapping[str, str],
    message: str,
    *,
    start: str = "main",
) -> str:
    """Push one commit writing `files` to `branch` (new ones start at `start`), as another writer.

    Returns:
        The sha of the pushed commit.
    """
    with tempfile.TemporaryDirectory(prefix="writer-") as work_dir:
        work = Path(work_dir)
        run_git(work, "clone", "--quiet", str(remote), ".")
        origin = branch if branch in remote_branches(remote) else start
        run_git(work, "checkout", "--quiet", "-B", branch, f"origin/{origin}")
        _write(work, files)
        run_git(work, "add", "--all")
        run_git(work, "commit", "--quiet", "-m", message)
        run_git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return run_git(work, "rev-parse", "HEAD")


def install_hook(remote: Path, name: str, script: str) -> Path:
    """Install an executable hook (`pre-receive`, `update`, ...) into a bare `remote`."""
    hook = remote / "hooks" / name
    hook.write_text(script, encoding="utf-8")
    hook.chmod(0o755)
    return hook


def read_remote_file(remote: Path, ref: str, path: str) -> str | None:
    """Return the text of `path` at `ref` in `remote`, or None if it is absent there."""
    spec = f"{ref}:{path}"
    if run_git(remote, "cat-file", "-t", spec, check=False) != "blob":
        return None
    env = {k: v for k, v in os.environ.items() if k not in _PARENT_REPO_ENV}
    done = subprocess.run(
        [_GIT, "cat-file", "blob", spec], cwd=remote, env=env, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


def remote_log(remote: Path, ref: str) -> list[str]:
    """Return the commit subjects reachable from `ref` in `remote`, newest first."""
    return run_git(remote, "log", "--format=%s", ref).splitlines()


def remote_branches(remote: Path) -> list[str]:
    """Return the branch names of `remote`, sorted."""
    out = run_git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads")
    return sorted(out.splitlines())


def remote_sha(remote: Path, ref: str) -> str | None:
    """Return the commit sha `ref` names in `remote`, or None."""
    sha = run_git(remote, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    return sha or None
