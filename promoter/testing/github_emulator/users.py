"""Who the emulator knows: tokens, teams, repository permissions and GitHub Apps."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ROLES", "App", "Role", "Users", "stable_id"]

Role = Literal["admin", "maintain", "write", "triage", "read", "none"]
ROLES: tuple[Role, ...] = ("none", "read", "triage", "write", "maintain", "admin")
"""Repository roles from least to most access."""


def stable_id(name: str, *, base: int = 1000) -> int:
    """A positive integer id that is the same for `name` in every run of the emulator."""
    return base + zlib.crc32(name.encode()) % 100_000_000


class App(BaseModel):
    """A GitHub App: its JWT public key, its one installation and its bot's slug."""

    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(description="PEM public key that verifies the App's RS256 JWTs.")
    installation_id: int
    slug: str

    @property
    def bot(self) -> str:
        """The login the App's installation tokens act as."""
        return f"{self.slug}[bot]"


class Users(BaseModel):
    """Identities and access; loadable from the `--users` JSON file with the same keys."""

    model_config = ConfigDict(extra="forbid")

    tokens: dict[str, str] = Field(
        default_factory=dict,
        description="token -> login. When empty, any token authenticates as the login it spells.",
    )
    teams: dict[str, list[str]] = Field(
        default_factory=dict, description='"org/team-slug" -> member logins.'
    )
    permissions: dict[str, dict[str, Role]] = Field(
        default_factory=dict,
        description='"owner/repo" -> {login: role}. Default: the owner is admin, others write.',
    )
    apps: dict[int, App] = Field(default_factory=dict, description="App id -> App.")
    token_ttl: int = Field(3600, description="Installation token lifetime in seconds.", gt=0)

    @classmethod
    def load(cls, path: Path) -> Users:
        """Users from a JSON file."""
        return cls.model_validate_json(path.read_bytes())

    def role(self, owner: str, repo: str, login: str) -> Role:
        """The role `login` holds on `owner/repo`."""
        configured = self.permissions.get(f"{owner}/{repo}", {})
        if login in configured:
            return configured[login]
        return "admin" if login == owner else "write"

    def can(self, owner: str, repo: str, login: str, needed: Role) -> bool:
        """Whether `login` holds at least role `needed` on `owner/repo`."""
        return ROLES.index(self.role(owner, repo, login)) >= ROLES.index(needed)

    def team(self, org: str, slug: str) -> list[str] | None:
        """The members of team `org/slug`, or None when there is no such team."""
        return self.teams.get(f"{org}/{slug}")

    def has_org(self, org: str) -> bool:
        """Whether some configured team belongs to `org`."""
        return any(key.split("/", 1)[0] == org for key in self.teams)
