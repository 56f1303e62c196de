"""The worktree root handed to edits: joining a path to it refuses links, `.git` and escapes."""

from __future__ import annotations

import os
from pathlib import Path, PosixPath, PurePosixPath
from typing import Self

from promoter.core.pipeline import repo_path_problem
from promoter.errors import UpdateError

__all__ = ["WorktreeRoot", "contained_path"]


def contained_path(root: Path, relative: str | os.PathLike[str]) -> Path:
    """`root / relative` when that stays a regular file inside the worktree `root`.

    Every component is checked with `lstat`, so a symbolic link anywhere on the way (to a file
    outside, a directory, or git's own files) is refused before anything is read or written.

    Raises:
        UpdateError: The path is absolute, leaves the worktree, is inside `.git`, goes through
            a symbolic link, or names something other than a regular file.
    """
    text = os.fspath(relative)
    problem = repo_path_problem(text)
    if problem is not None:
        raise UpdateError(f"{text}:1:1: {problem}; fix the update in the pipeline")
    current = root
    for part in PurePosixPath(text).parts:
        current /= part
        if current.is_symlink():
            raise UpdateError(_through_link(text, current, root))
        if not current.exists():
            break  # the rest is created by the edit
    if current.exists() and not current.is_file():
        raise UpdateError(f"{text}:1:1: not a regular file in the repository; name a file")
    return root / text


def _through_link(text: str, link: Path, root: Path) -> str:
    where = link.relative_to(root).as_posix()
    what = f"{where} is a symbolic link" if where == text else f"it goes through link {where}"
    return (
        f"{text}:1:1: {what} (to {link.readlink()}); promoter does not write through links, "
        "which could reach outside the repository: update the file the link names instead"
    )


class WorktreeRoot(PosixPath):
    """A clone's worktree root whose `/` and `joinpath` are `contained_path`.

    Edits receive this root, so every file they open by joining a repository path to it is
    checked before it is read or written (and so is anything joined to what they get back).
    """

    def __truediv__(self, key: str | os.PathLike[str]) -> Self:
        return type(self)(contained_path(Path(self), key))

    def joinpath(self, *parts: str | os.PathLike[str]) -> Self:
        """`root / a / b ...`, checked as one repository path."""
        return self / "/".join(os.fspath(p) for p in parts)
