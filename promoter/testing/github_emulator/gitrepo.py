"""Plumbing on the emulator's bare repositories: refs, commits and objects, via the git CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from promoter.gitops.gitenv import PARENT_REPO_VARIABLES

__all__ = [
    "ZERO",
    "CommitInfo",
    "GitFailedError",
    "Identity",
    "Ref",
    "commit_files",
    "commit_info",
    "commit_tree",
    "default_branch",
    "git",
    "git_env",
    "init_bare",
    "is_ancestor",
    "list_refs",
    "merge_trees",
    "object_type",
    "rebase_onto",
    "ref_sha",
    "resolve_commit",
    "update_ref",
]

GIT = shutil.which("git") or "git"
ZERO = "0" * 40
TIMEOUT = 60.0
_PARENT_REPO_ENV = frozenset(PARENT_REPO_VARIABLES)


class GitFailedError(RuntimeError):
    """A git command the emulator ran failed unexpectedly."""


@dataclass(frozen=True)
class Identity:
    """A git author or committer."""

    name: str
    email: str
    date: str = ""


@dataclass(frozen=True)
class Ref:
    """One ref: full name, the object it points at and that object's type."""

    name: str
    sha: str
    type: str


@dataclass(frozen=True)
class CommitInfo:
    """What the API shows of a commit."""

    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Identity
    committer: Identity
    message: str


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for git commands: no parent repository, no user or system config."""
    env = {k: v for k, v in os.environ.items() if k not in _PARENT_REPO_ENV}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="GitHub",
        GIT_AUTHOR_EMAIL="noreply@github.com",
        GIT_COMMITTER_NAME="GitHub",
        GIT_COMMITTER_EMAIL="noreply@github.com",
    )
    env.update(extra or {})
    return env


def git(
    repo: Path,
    *args: str,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    ok: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run `git ARGS` against the repository `repo` (bare or worktree).

    Raises:
        GitFailedError: The exit code is not in `ok`.
    """
    done = subprocess.run(
        [GIT, *args],
        cwd=repo,
        input=stdin,
        env=git_env(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode not in ok:
        raise GitFailedError(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done


def _identity_env(author: Identity, committer: Identity) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_AUTHOR_DATE": author.date,
        "GIT_COMMITTER_NAME": committer.name,
        "GIT_COMMITTER_EMAIL": committer.email,
        "GIT_COMMITTER_DATE": committer.date,
    }


def init_bare(path: Path, files: Mapping[str, str], branch: str, who: Identity) -> None:
    """Create the bare repository `path` with one commit of `files` on `branch`."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", "--bare", f"--initial-branch={branch}", ".")
    commit_files(path, branch, files, "Initial commit", who, parent=None)


def commit_files(
    path: Path,
    branch: str,
    files: Mapping[str, str | None],
    message: str,
    who: Identity,
    *,
    parent: str | None,
) -> str | None:
    """Commit `files` (None deletes a path) on top of `parent` and point `branch` at it.

    Returns:
        The new commit, or None when `branch` moved while the commit was written.
    """
    with tempfile.TemporaryDirectory(prefix="emulator-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if parent is None:
            git(path, "read-tree", "--empty", env=index)
        else:
            git(path, "read-tree", parent, env=index)
        for name, text in sorted(files.items()):
            if text is None:
                git(path, "update-index", "--force-remove", "--", name, env=index)
                continue
            blob = git(path, "hash-object", "-w", "--stdin", stdin=text).stdout.strip()
            git(path, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=index)
        tree = git(path, "write-tree", env=index).stdout.strip()
    parents = (parent,) if parent else ()
    sha = commit_tree(path, tree, parents=parents, message=message, author=who, committer=who)
    old = ref_sha(path, f"refs/heads/{branch}")
    return sha if update_ref(path, f"refs/heads/{branch}", sha, old or ZERO) else None


def default_branch(repo: Path) -> str:
    """The branch HEAD names."""
    done = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", ok=(0, 1))
    return done.stdout.strip() or "main"


def ref_sha(repo: Path, name: str) -> str | None:
    """The sha the full ref `name` points at, or None."""
    if not name.startswith("refs/"):
        return None
    done = git(repo, "show-ref", "--verify", "--hash", "--", name, ok=(0, 1, 128))
    return done.stdout.strip() or None


def resolve_commit(repo: Path, rev: str) -> str | None:
    """The commit a sha, short sha, branch or tag names, or None."""
    if rev.startswith("-") or not rev:
        return None
    for candidate in (rev, f"refs/heads/{rev}", f"refs/tags/{rev}"):
        done = git(repo, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", ok=(0, 1))
        if done.stdout.strip():
            return done.stdout.strip()
    return None


def object_type(repo: Path, sha: str) -> str | None:
    """The type of object `sha` (commit, tree, blob, tag), or None if it does not exist."""
    if not sha or sha.startswith("-"):
        return None
    done = git(repo, "cat-file", "-t", sha, ok=(0, 1, 128))
    return done.stdout.strip() or None if done.returncode == 0 else None


def list_refs(repo: Path) -> list[Ref]:
    """Every ref of the repository, sorted by name."""
    fmt = "%(refname)%00%(objectname)%00%(objecttype)"
    done = git(repo, "for-each-ref", f"--format={fmt}")
    refs = [Ref(*line.split("\0")) for line in done.stdout.splitlines() if line]
    return sorted(refs, key=lambda r: r.name)


def update_ref(repo: Path, name: str, new: str, old: str) -> bool:
    """Compare-and-set `name` from `old` (ZERO: must not exist) to `new` (ZERO: delete it)."""
    args = ("update-ref", "-d", name, old) if new == ZERO else ("update-ref", name, new, old)
    return git(repo, *args, ok=(0, 1, 128)).returncode == 0


def is_ancestor(repo: Path, ancestor: str, descendant: str) -> bool:
    """Whether commit `ancestor` is reachable from `descendant` (or equal to it)."""
    done = git(repo, "merge-base", "--is-ancestor", ancestor, descendant, ok=(0, 1))
    return done.returncode == 0


def merge_trees(repo: Path, ours: str, theirs: str) -> str | None:
    """The tree of merging `theirs` into `ours`, or None when they conflict."""
    done = git(repo, "merge-tree", "--write-tree", "--no-messages", ours, theirs, ok=(0, 1))
    return done.stdout.split()[0] if done.returncode == 0 else None


def commit_tree(
    repo: Path,
    tree: str,
    *,
    parents: Sequence[str],
    message: str,
    author: Identity,
    committer: Identity,
) -> str:
    """Write a commit object and return its sha."""
    args = ["commit-tree", tree]
    for parent in parents:
        args += ["-p", parent]
    env = _identity_env(author, committer)
    return git(repo, *args, stdin=message, env=env).stdout.strip()


def commit_info(repo: Path, sha: str) -> CommitInfo:
    """A commit's tree, parents, author, committer and message."""
    fields = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
    out = git(repo, "show", "-s", f"--format={fields}", sha).stdout
    sha, tree, parents, an, ae, ad, cn, ce, cd, message = out.split("\0", 9)
    return CommitInfo(
        sha=sha,
        tree=tree,
        parents=tuple(parents.split()),
        author=Identity(an, ae, ad),
        committer=Identity(cn, ce, cd),
        message=message.rstrip("\n"),
    )


def rebase_onto(repo: Path, onto: str, head: str, committer: Identity) -> str | None:
    """Replay the commits of `head` that `onto` lacks on top of `onto`; None on conflict."""
    scratch = Path(tempfile.mkdtemp(prefix="emulator-rebase-"))
    tree = scratch / "tree"
    try:
        git(repo, "worktree", "add", "--quiet", "--detach", str(tree), head)
        env = {
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": committer.date,
        }
        done = git(
            tree,
            "rebase",
            "--quiet",
            "--force-rebase",
            "--no-autosquash",
            onto,
            env=env,
            ok=(0, 1, 128),
        )
        if done.returncode != 0:
            git(tree, "rebase", "--abort", ok=(0, 1, 128))
            return None
        return git(tree, "rev-parse", "HEAD").stdout.strip()
    finally:
        git(repo, "worktree", "remove", "--force", str(tree), ok=(0, 128))
        git(repo, "worktree", "prune")
        shutil.rmtree(scratch, ignore_errors=True)
