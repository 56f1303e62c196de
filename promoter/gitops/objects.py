"""A clone's git objects read and written in-process: trees, blobs and commits as git makes them."""

from __future__ import annotations

import hashlib
import os
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from promoter.errors import GitError
from promoter.gitops.catfile import BatchReader, ReaderStoppedError
from promoter.gitops.gitcli import Commit
from promoter.gitops.messages import commit_text
from promoter.gitops.results import Author

__all__ = [
    "DIRECTORY",
    "FILE",
    "FILE_MODE",
    "GITLINK",
    "LINK",
    "Entry",
    "ObjectStore",
    "commit_data",
    "format_tree",
    "git_writes_differently",
    "object_id",
    "parse_commit",
    "parse_tree",
]

FILE, DIRECTORY, LINK, GITLINK = 0o100000, 0o040000, 0o120000, 0o160000
FILE_MODE, TREE_MODE = b"100644", b"40000"
_KEPT_BYTES = 8 << 20  # object contents cached per store (an id always names the same content)
_TREES_KEPT = 1024  # parsed trees cached per store
_SHA1_HEX = 40
# What git's UTF-8 check rewrites in a message (NUL cannot even be passed to it).
_REWRITTEN = re.compile(
    "[\0\ud800-\udfff"
    + "".join(chr(plane << 16 | low) for plane in range(17) for low in (0xFFFE, 0xFFFF))
    + "]"
)


@dataclass(frozen=True)
class Entry:
    """One tree entry: its mode as git stored it and its raw object id."""

    mode: bytes
    oid: bytes

    @property
    def kind(self) -> int:
        """FILE, DIRECTORY, LINK or GITLINK (the mode's type bits)."""
        return int(self.mode, 8) & 0o170000


def parse_tree(data: bytes, oid_size: int) -> dict[bytes, Entry]:
    """The entries of a raw tree object by name, in the tree's order."""
    entries: dict[bytes, Entry] = {}
    at = 0
    while at < len(data):
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        entries[data[space + 1 : nul]] = Entry(data[at:space], data[nul + 1 : nul + 1 + oid_size])
        at = nul + 1 + oid_size
    return entries


def format_tree(entries: Mapping[bytes, Entry]) -> bytes:
    """A raw tree object in git's order (a directory sorts as if its name ended in `/`)."""

    def key(name: bytes) -> bytes:
        return name + b"/" if entries[name].kind == DIRECTORY else name

    return b"".join(
        entries[name].mode + b" " + name + b"\0" + entries[name].oid
        for name in sorted(entries, key=key)
    )


def parse_commit(oid: str, data: bytes) -> Commit:
    """The tree and parents of raw commit `data` (id `oid`)."""
    fields = data.partition(b"\n\n")[0].decode("ascii", errors="replace").split("\n")
    tree = next(line[5:] for line in fields if line.startswith("tree "))
    parents = tuple(line[7:] for line in fields if line.startswith("parent "))
    return Commit(oid, tree, parents)


def git_writes_differently(message: str) -> bool:
    """Whether `git commit-tree` would not store `message` (and its date) exactly as given.

    git takes dates from `GIT_AUTHOR_DATE`/`GIT_COMMITTER_DATE`, and rewrites text it does not
    take as UTF-8: surrogates and the non-characters U+xxFFFE/U+xxFFFF. Such commits are left
    to git.
    """
    if "GIT_AUTHOR_DATE" in os.environ or "GIT_COMMITTER_DATE" in os.environ:
        return True
    return _REWRITTEN.search(message) is not None


def commit_data(tree: str, parent: str, message: str, author: Author, now: float) -> bytes:
    """The raw commit `git commit-tree TREE -p PARENT -m MESSAGE` makes for `author` at `now`.

    Raises:
        ValueError: The message is empty.
        GitError: The author's name is empty once git's delimiters are dropped.
    """
    text = commit_text(message)
    name = _without_crud(author.name)
    if not name:
        raise GitError(f"empty ident name (for <{author.email}>) not allowed; set a commit author")
    ident = f"{name} <{_without_crud(author.email)}> {int(now)} {_timezone(now):+05d}"
    header = f"tree {tree}\nparent {parent}\nauthor {ident}\ncommitter {ident}\n\n"
    return f"{header}{text}\n".encode()


def _without_crud(value: str) -> str:
    """`value` as git puts it in an ident line: outer crud and `<`, `>`, newlines dropped."""
    crud = "".join(map(chr, range(33))) + ".,:;<>\"\\'"
    return "".join(c for c in value.strip(crud) if c not in "<>\n")


def _timezone(now: float) -> int:
    """The local UTC offset at `now` as git writes it: +HHMM read as a decimal number."""
    offset = time.localtime(now).tm_gmtoff // 60
    minutes = abs(offset)
    return (1 if offset >= 0 else -1) * (minutes // 60 * 100 + minutes % 60)


class ObjectStore:
    """The objects of the clone in `root`, without a worktree or an index.

    Objects are read through one `git cat-file --batch`, started on first use and kept for
    later calls (git looks again for an object added since); contents are cached by id. New
    objects are written as loose objects, compressed and named as git does. The object format
    (SHA-1 or SHA-256) follows the length of the ids given. `close()` stops the reader; so
    does dropping the store.

    Args:
        root: The clone's worktree root (its objects are in `root/.git/objects`).
        repo: Redacted name of the repository, used in error messages.
    """

    def __init__(self, root: Path, *, repo: str) -> None:
        self._root = root
        self._repo = repo
        self._reader: BatchReader | None = None
        self._kept: dict[str, tuple[str, bytes]] = {}
        self._kept_bytes = 0
        self._trees: dict[str, dict[bytes, Entry]] = {}

    def close(self) -> None:
        """Stop the `git cat-file` process, if one runs (the next read starts another)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    def read(self, oid: str) -> tuple[str, bytes]:
        """The type and content of object `oid`.

        Raises:
            GitError: The object does not exist, or git failed.
        """
        found = self._kept.get(oid)
        if found is None:
            found = self._read(oid)
            if self._kept_bytes + len(found[1]) > _KEPT_BYTES:
                self._kept.clear()
                self._kept_bytes = 0
            self._kept[oid] = found
            self._kept_bytes += len(found[1])
        return found

    def tree(self, oid: str) -> dict[bytes, Entry]:
        """The entries of tree `oid` (do not change the mapping returned)."""
        found = self._trees.get(oid)
        if found is None:
            found = parse_tree(self._typed(oid, "tree"), len(oid) // 2)
            if len(self._trees) >= _TREES_KEPT:
                self._trees.clear()
            self._trees[oid] = found
        return found

    def blob(self, oid: str) -> bytes:
        """The content of blob `oid`."""
        return self._typed(oid, "blob")

    def commit(self, oid: str) -> Commit | None:
        """Commit `oid`, or None when `oid` is another kind of object (an annotated tag)."""
        kind, data = self.read(oid)
        return parse_commit(oid, data) if kind == "commit" else None

    def write(self, kind: str, data: bytes, *, like: str) -> str:
        """Store `data` as a loose `kind` object (unless already loose); its id.

        `like` is any id of this repository: its length gives the object format.
        """
        oid = object_id(kind, data, like=like)
        final = self._root / ".git" / "objects" / oid[:2] / oid[2:]
        if not final.exists():
            _write_loose(final, f"{kind} {len(data)}\0".encode() + data)
        return oid

    def write_commit(self, tree: str, parent: str, message: str, author: Author) -> str:
        """Write the commit `git commit-tree TREE -p PARENT -m MESSAGE` makes now; its id."""
        data = commit_data(tree, parent, message, author, time.time())
        return self.write("commit", data, like=tree)

    def _read(self, oid: str) -> tuple[str, bytes]:
        """Read through the lasting reader; one that stopped is replaced once."""
        try:
            return self._reading(oid)
        except ReaderStoppedError:
            return self._reading(oid)

    def _reading(self, oid: str) -> tuple[str, bytes]:
        if self._reader is None:
            self._reader = BatchReader(self._root, self._repo)
        try:
            return self._reader.read(oid)
        except GitError:
            self.close()
            raise

    def _typed(self, oid: str, kind: str) -> bytes:
        found, data = self.read(oid)
        if found != kind:
            raise GitError(f"{oid[:12]} in {self._repo} is a {found}, not a {kind}")
        return data


def object_id(kind: str, data: bytes, *, like: str) -> str:
    """The id git gives `data` as a `kind` object, in the format of the id `like`."""
    hasher = hashlib.sha1 if len(like) == _SHA1_HEX else hashlib.sha256
    return hasher(f"{kind} {len(data)}\0".encode() + data, usedforsecurity=False).hexdigest()


def _write_loose(final: Path, raw: bytes) -> None:
    """Write a loose object as git does: a read-only temporary file renamed into place."""
    temporary = final.with_name(f"tmp_obj_{os.urandom(6).hex()}")  # git's prune clears these
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        handle = os.open(temporary, flags, 0o444)
    except FileNotFoundError:  # the first object in this fan-out directory
        final.parent.mkdir(exist_ok=True)
        handle = os.open(temporary, flags, 0o444)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(zlib.compress(raw, 1))
        temporary.replace(final)
    finally:
        temporary.unlink(missing_ok=True)
