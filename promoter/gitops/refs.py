"""Ref tips read from a clone's own files (a loose ref, else `packed-refs`) without running git."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from promoter.gitops.gitcli import Commit
from promoter.gitops.objects import ObjectStore

__all__ = ["read_commits", "read_refs"]

_FULL_SHA = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
_COMPONENT = re.compile(r"[A-Za-z0-9_+@-][A-Za-z0-9._+@-]*")


class _AskGitError(Exception):
    """The files do not answer plainly: git must be asked."""


def read_refs(git_dir: Path, names: Iterable[str]) -> dict[str, str] | None:
    """The object ids the full ref `names` (`refs/...`) point at; absent refs are left out.

    Read as git's files backend stores them: a loose ref file wins over its `packed-refs`
    line. None when only git can tell: refs kept in a reftable, a name outside the plain
    form (letters, digits, `._+@-`; nothing git would refuse), a symbolic ref, or a file
    that does not parse. Callers must hold the clone's lock, as for any git command.
    """
    try:
        return _read(git_dir, list(names))
    except _AskGitError:
        return None


def read_commits(
    git_dir: Path, objects: ObjectStore, names: Iterable[str]
) -> dict[str, Commit] | None:
    """The commits the full ref `names` point at, as `GitRunner.commits` gives them.

    None when only git can tell (see `read_refs`), or a ref names a tag git would peel.
    """
    tips = read_refs(git_dir, names)
    if tips is None:
        return None
    found = {name: objects.commit(sha) for name, sha in tips.items()}
    if any(commit is None for commit in found.values()):
        return None
    return {name: commit for name, commit in found.items() if commit is not None}


def _read(git_dir: Path, names: list[str]) -> dict[str, str]:
    if (git_dir / "reftable").exists() or not all(map(_plain, names)):
        raise _AskGitError
    found: dict[str, str] = {}
    packed: dict[str, str] | None = None
    for name in names:
        sha = _loose(git_dir / name)
        if sha is None:
            packed = _packed(git_dir / "packed-refs") if packed is None else packed
            sha = packed.get(name)
        if sha is not None:
            found[name] = sha
    return found


def _plain(name: str) -> bool:
    """`refs/...` made of plain components: no `..`, no leading dot, no `.lock` or `.` end."""
    parts = name.split("/")
    return (
        len(parts) > 1
        and parts[0] == "refs"
        and all(_COMPONENT.fullmatch(part) for part in parts[1:])
        and not any(part.endswith((".lock", ".")) or ".." in part for part in parts)
    )


def _loose(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None  # no loose ref (a directory holds refs below this name)
    except OSError:
        raise _AskGitError from None
    sha = data.rstrip()
    if _FULL_SHA.fullmatch(sha) is None:  # a symbolic ref or a damaged file
        raise _AskGitError
    return sha.decode()


def _packed(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError:
        raise _AskGitError from None
    refs: dict[str, str] = {}
    for line in data.split(b"\n"):
        if not line or line.startswith((b"#", b"^")):  # the header, a peeled tag
            continue
        sha, _, name = line.partition(b" ")
        if _FULL_SHA.fullmatch(sha) is None:
            raise _AskGitError
        refs[name.decode("utf-8", "surrogateescape")] = sha.decode()
    return refs
