"""The emulator's API state per repository (PRs, reviews, comments, labels, statuses), persisted."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from promoter.testing.github_emulator.users import stable_id

__all__ = [
    "STATE_FILE",
    "Comment",
    "Label",
    "Mergeability",
    "NoSuchRepoError",
    "Pull",
    "RepoSettings",
    "RepoState",
    "Review",
    "Status",
    "Store",
]

STATE_FILE = "emulator.json"


class NoSuchRepoError(LookupError):
    """There is no bare repository `root/<owner>/<repo>.git`."""


class RepoSettings(BaseModel):
    """Merge settings and branch protection of a repository."""

    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = True
    required_approvals: int = 0
    require_up_to_date: bool = False


class Mergeability(BaseModel):
    """The result of a test merge of a PR's head into its base."""

    head: str
    base: str
    conflict: bool
    behind: bool
    test_sha: str | None = None


class Pull(BaseModel):
    """A pull request; head and base shas are the last ones seen (frozen once closed)."""

    number: int
    id: int
    title: str
    body: str | None = None
    user: str
    head: str
    base: str
    head_sha: str
    base_sha: str
    state: Literal["open", "closed"] = "open"
    draft: bool = False
    maintainer_can_modify: bool = False
    created_at: float
    updated_at: float
    closed_at: float | None = None
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    labels: list[str] = Field(default_factory=list)
    unknown_shown_for: tuple[str, str] | None = None
    computed: Mergeability | None = None
    dirty_once: bool = False
    frozen_stats: dict[str, int] | None = None

    @property
    def merged(self) -> bool:
        """Whether the PR was merged."""
        return self.merged_at is not None


class Review(BaseModel):
    """A review of a PR."""

    id: int
    pull: int
    user: str
    body: str = ""
    state: Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]
    commit_id: str
    submitted_at: float | None = None


class Comment(BaseModel):
    """A comment on an issue or PR conversation."""

    id: int
    issue: int
    user: str
    body: str
    created_at: float
    updated_at: float


class Label(BaseModel):
    """A repository label."""

    id: int
    name: str
    color: str = "ededed"
    description: str | None = None


class Status(BaseModel):
    """A commit status."""

    id: int
    sha: str
    state: Literal["error", "failure", "pending", "success"]
    context: str = "default"
    description: str | None = None
    target_url: str | None = None
    creator: str
    created_at: float
    updated_at: float


class RepoState(BaseModel):
    """Everything the API knows about one repository beyond its git objects."""

    owner: str
    name: str
    created_at: float
    settings: RepoSettings = Field(default_factory=RepoSettings)
    next_number: int = 1
    next_id: int = 1
    pulls: dict[int, Pull] = Field(default_factory=dict)
    reviews: list[Review] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    labels: dict[str, Label] = Field(default_factory=dict)
    statuses: list[Status] = Field(default_factory=list)

    @property
    def full_name(self) -> str:
        """`owner/name`."""
        return f"{self.owner}/{self.name}"

    @property
    def id(self) -> int:
        """The repository's id."""
        return stable_id(self.full_name, base=1)

    def new_id(self) -> int:
        """A fresh id for an object of this repository (unique across repositories in practice)."""
        value = stable_id(self.full_name, base=10_000) * 1000 + self.next_id
        self.next_id += 1
        return value

    def label(self, name: str) -> Label:
        """The label `name` (case-insensitive), created with GitHub's default color if missing."""
        for label in self.labels.values():
            if label.name.lower() == name.lower():
                return label
        label = Label(id=self.new_id(), name=name)
        self.labels[name] = label
        return label


class Store:
    """Repository states under `root`, loaded lazily, one lock each, saved after each change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._states: dict[tuple[str, str], RepoState] = {}
        self._locks: dict[tuple[str, str], threading.RLock] = {}
        self._guard = threading.Lock()

    def path(self, owner: str, name: str) -> Path:
        """The bare repository of `owner/name`."""
        return self.root / owner / f"{name}.git"

    def exists(self, owner: str, name: str) -> bool:
        """Whether `owner/name` is a bare repository under the root."""
        if not _safe(owner) or not _safe(name):
            return False
        return (self.path(owner, name) / "HEAD").is_file()

    def lock(self, owner: str, name: str) -> threading.RLock:
        """The lock that serializes changes to `owner/name`."""
        with self._guard:
            return self._locks.setdefault((owner, name), threading.RLock())

    @contextmanager
    def open(self, owner: str, name: str, now: float) -> Iterator[RepoState]:
        """Hold the repository's lock and yield its state; save it afterwards if it changed.

        Raises:
            NoSuchRepoError: There is no such bare repository.
        """
        if not self.exists(owner, name):
            raise NoSuchRepoError(f"{owner}/{name}")
        with self.lock(owner, name):
            state = self._load(owner, name, now)
            before = state.model_dump_json()
            try:
                yield state
            finally:
                if state.model_dump_json() != before:
                    self._save(state)

    def _load(self, owner: str, name: str, now: float) -> RepoState:
        key = (owner, name)
        if key not in self._states:
            file = self.path(owner, name) / STATE_FILE
            if file.is_file():
                self._states[key] = RepoState.model_validate_json(file.read_bytes())
            else:
                self._states[key] = RepoState(owner=owner, name=name, created_at=now)
        return self._states[key]

    def _save(self, state: RepoState) -> None:
        file = self.path(state.owner, state.name) / STATE_FILE
        scratch = file.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        scratch.write_text(state.model_dump_json(indent=1), encoding="utf-8")
        scratch.replace(file)


def _safe(part: str) -> bool:
    return bool(part) and part not in (".", "..") and "/" not in part and "\\" not in part
