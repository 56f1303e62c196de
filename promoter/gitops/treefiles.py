"""A commit's files edited in memory, refusing every path the worktree's checks refuse."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath

from promoter.core.pipeline import repo_path_problem
from promoter.errors import UpdateError
from promoter.gitops.objects import (
    DIRECTORY,
    FILE,
    FILE_MODE,
    GITLINK,
    LINK,
    TREE_MODE,
    Entry,
    ObjectStore,
    format_tree,
    object_id,
)

__all__ = ["TreeFiles", "read_file", "repo_parts", "write_tree"]

Parts = tuple[str, ...]

_FIX = "fix the update in the pipeline"
# Code points HFS+ ignores in names, so `.g\u200cit` is `.git` there (git refuses those too).
_HFS_IGNORED = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


def repo_parts(path: str) -> Parts:
    """The components of repository path `path` (`a//b` and `a/./b` are `a/b`).

    Raises:
        UpdateError: The path is empty, absolute, leaves the repository, names a directory or
            is inside `.git` (in any spelling a file system takes for `.git`).
    """
    problem = repo_path_problem(path)
    parts: Parts = PurePosixPath(path).parts if problem is None else ()
    if any(_is_dot_git(part) for part in parts):
        problem = f"file path {path!r} is inside .git; promoter edits only files git tracks"
    if problem is not None:
        raise UpdateError(f"{path}:1:1: {problem}; {_FIX}")
    return parts


def read_file(store: ObjectStore, tree: str, path: str) -> bytes | None:
    """The content of file `path` in `tree`, or None when there is none.

    Raises:
        UpdateError: `path` is refused (see `repo_parts`), is or goes through a symbolic link
            or a submodule, names a directory, or goes through a file.
    """
    entry = _entry(store, tree, repo_parts(path), path)
    return None if entry is None else store.blob(entry.oid.hex())


def write_tree(store: ObjectStore, tree: str, changes: Mapping[str, bytes]) -> str:
    """Write the tree that is `tree` with each file in `changes` set to its content; its id.

    Directories are created as needed; a new file gets mode 100644, an existing one keeps its
    mode. Content equal to what is there changes nothing: the same id comes back.

    Raises:
        UpdateError: A path is refused as `read_file` refuses it, or is both a file and a
            directory among `changes`.
    """
    files = TreeFiles(store, tree)
    for path, data in changes.items():
        files.write_bytes(path, data)
    return files.write_tree()


class TreeFiles:
    """The files of `tree` as one edit sees them (a `Files`): reads see the edit's writes.

    Nothing is stored until `write_tree`. Every path is checked against the tree first.
    """

    def __init__(self, store: ObjectStore, tree: str) -> None:
        self._store = store
        self._tree = tree
        self._written: dict[Parts, bytes] = {}

    def read_text(self, path: str) -> str:
        """The file's UTF-8 text, line endings as stored ('' when it does not exist).

        Raises:
            UpdateError: `path` is refused (see `read_file`).
            UnicodeDecodeError: The file is not UTF-8.
        """
        data = self.read_bytes(path)
        return "" if data is None else data.decode("utf-8")

    def read_bytes(self, path: str) -> bytes | None:
        """The file's content (as last written by this edit), or None when there is none."""
        parts, entry = self._checked(path)
        if parts in self._written:
            return self._written[parts]
        return None if entry is None else self._store.blob(entry.oid.hex())

    def write_text(self, path: str, text: str) -> None:
        """Set the file's content to `text` encoded as UTF-8, line endings as given."""
        self.write_bytes(path, text.encode("utf-8"))

    def write_bytes(self, path: str, data: bytes) -> None:
        """Set the file's content to `data`."""
        parts, _ = self._checked(path)
        self._written[parts] = data

    def write_tree(self) -> str:
        """Store the files written and the trees holding them; the new tree's id."""
        if not self._written:
            return self._tree
        return _rewrite(self._store, self._tree, self._written, like=self._tree)

    def _checked(self, path: str) -> tuple[Parts, Entry | None]:
        parts = repo_parts(path)
        entry = _entry(self._store, self._tree, parts, path)
        for written in self._written:
            _refuse_overlap(parts, written, path)
        return parts, entry


def _entry(store: ObjectStore, tree: str, parts: Parts, path: str) -> Entry | None:
    """The file entry `parts` names in `tree` (None if absent), refusing anything else."""
    current = tree
    for depth, part in enumerate(parts, 1):
        entry = store.tree(current).get(_name(part))
        if entry is None:
            return None
        where, last = "/".join(parts[:depth]), depth == len(parts)
        if entry.kind == LINK:
            raise UpdateError(_through_link(path, where, last, store.blob(entry.oid.hex())))
        if entry.kind == GITLINK:
            raise UpdateError(_through_submodule(path, where, last))
        if last and entry.kind != FILE:
            raise UpdateError(f"{path}:1:1: not a regular file in the repository; name a file")
        if last:
            return entry
        if entry.kind != DIRECTORY:
            raise UpdateError(f"{path}:1:1: it goes through {where}, which is a file; {_FIX}")
        current = entry.oid.hex()
    return None


def _refuse_overlap(parts: Parts, written: Parts, path: str) -> None:
    """Refuse `parts` when it needs a file this edit wrote as a directory, or the reverse."""
    if parts == written:
        return
    if parts[: len(written)] == written:
        where = "/".join(written)
        raise UpdateError(f"{path}:1:1: it goes through {where}, which is a file; {_FIX}")
    if written[: len(parts)] == parts:
        raise UpdateError(f"{path}:1:1: not a regular file in the repository; name a file")


def _rewrite(
    store: ObjectStore, tree: str | None, changes: Mapping[Parts, bytes], *, like: str
) -> str:
    """`tree` (None: an empty one) with `changes` applied below it; its id, written if new."""
    before = store.tree(tree) if tree is not None else {}
    entries = dict(before)
    for name, data in _files_here(changes):
        old = entries.get(name)
        oid = object_id("blob", data, like=like)
        if old is None or old.oid.hex() != oid:
            store.write("blob", data, like=like)
            entries[name] = Entry(old.mode if old else FILE_MODE, bytes.fromhex(oid))
    for name, inner in _directories_here(changes).items():
        old = entries.get(name)
        oid = _rewrite(store, old.oid.hex() if old else None, inner, like=like)
        entries[name] = Entry(old.mode if old else TREE_MODE, bytes.fromhex(oid))
    if tree is not None and entries == before:
        return tree
    return store.write("tree", format_tree(entries), like=like)


def _files_here(changes: Mapping[Parts, bytes]) -> Iterable[tuple[bytes, bytes]]:
    return ((_name(parts[0]), data) for parts, data in changes.items() if len(parts) == 1)


def _directories_here(changes: Mapping[Parts, bytes]) -> dict[bytes, dict[Parts, bytes]]:
    below: dict[bytes, dict[Parts, bytes]] = {}
    for parts, data in changes.items():
        if len(parts) > 1:
            below.setdefault(_name(parts[0]), {})[parts[1:]] = data
    return below


def _name(part: str) -> bytes:
    """A path component as git stores it (the bytes the worktree's file name would have)."""
    return part.encode("utf-8", "surrogateescape")


def _is_dot_git(part: str) -> bool:
    """Whether a file system would take `part` for `.git` (any case, NTFS and HFS+ spellings)."""
    folded = part.translate(_HFS_IGNORED).lower().rstrip(". ")
    return folded in {".git", "git~1"}


def _through_link(path: str, where: str, last: bool, target: bytes) -> str:
    what = f"{where} is a symbolic link" if last else f"it goes through link {where}"
    return (
        f"{path}:1:1: {what} (to {target.decode('utf-8', 'replace')}); promoter does not write "
        "through links, which could reach outside the repository: update the file the link "
        "names instead"
    )


def _through_submodule(path: str, where: str, last: bool) -> str:
    what = f"{where} is a submodule" if last else f"it goes through submodule {where}"
    return (
        f"{path}:1:1: {what}; promoter edits only files this repository tracks: update the "
        "file in the submodule's own repository instead"
    )
