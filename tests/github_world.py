"""GitHub test fixtures: the emulator with a seeded repository, PyGithub clients, providers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from github import Github

from promoter.scm.base import PullRequestSpec
from promoter.scm.github.client import GitHubClient
from promoter.scm.github.provider import GitHubPullRequests, RepoRef
from promoter.testing.github_emulator import Emulator, Users, running
from promoter.testing.github_emulator.client import github_client

__all__ = [
    "BOT",
    "GITOPS",
    "GitHubWorld",
    "VirtualTime",
    "environment",
    "github_world",
    "no_wait",
]

BOT = "promoter-bot"
GITOPS = {
    "envs/dev/values.yaml": "image:\n  tag: 0.0.0\n",
    "envs/staging/values.yaml": "image:\n  tag: 0.0.0\n",
    "envs/prod/values.yaml": "image:\n  tag: 0.0.0\n",
    "envs/eu/values.yaml": "image:\n  tag: 0.0.0\n",
}


def environment(
    name: str, *, upstream: str | None = None, auto: bool = False, gates: str = ""
) -> str:
    """One environment block of a test pipeline (it sets `image.tag` in envs/NAME)."""
    lines = [f"    - name: {name}"]
    if upstream:
        lines.append(f"      from: [{upstream}]")
    if auto:
        lines.append("      auto: true")
    if gates:
        lines.append(f"      gates: {gates}")
    lines.append(
        f'      update: [{{file: envs/{name}/values.yaml, set: {{image.tag: "${{api.tag}}"}}}}]'
    )
    return "\n".join(lines)


class VirtualTime:
    """Unix time that only sleeping moves: budget and rate-limit waits take no real time.

    Share it with the emulator (`clock=`) and the engine (`GitHubSetup(clock=, sleep=)`) so
    both count the same minutes.
    """

    def __init__(self) -> None:
        self.now = time.time()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


async def no_wait(_seconds: float) -> None:
    """A retry sleep that takes no time (tests assert the waits asked for, not wall time)."""
    await asyncio.sleep(0)


@dataclass
class GitHubWorld:
    """An emulator serving `acme/deploy`, whose bare repository is `bare`."""

    emu: Emulator
    bare: Path
    owner: str = "acme"
    name: str = "deploy"

    @property
    def git_url(self) -> str:
        return self.emu.git_url(self.owner, self.name)

    def github(self, login: str = BOT, *, lazy: bool = False) -> Github:
        """PyGithub as `login` (the emulator takes the token as the login)."""
        return github_client(self.emu.api_url, login, lazy=lazy, per_page=100)

    def provider(
        self, *, merge_method: str = "merge", attempts: int = 5, login: str = BOT
    ) -> GitHubPullRequests:
        """The provider as `login` (the bot), with retry waits that take no time."""
        client = GitHubClient(attempts=attempts, sleep=no_wait)
        ref = RepoRef(self.owner, self.name, self.git_url, self.emu.api_url, merge_method)
        return GitHubPullRequests(self.github(login, lazy=True), client, ref)

    def pipeline(self, *envs: str, merge_method: str = "merge") -> str:
        """Pipeline `shop` over acme/deploy on the emulator, api image, with `envs` blocks."""
        repository = (
            f'{{url: "{self.git_url}", provider: github, apiUrl: "{self.emu.api_url}", '
            f"mergeMethod: {merge_method}}}"
        )
        return (
            "apiVersion: promoter/v1\nkind: Pipeline\nmetadata: {name: shop}\nspec:\n"
            f"  repository: {repository}\n  artifacts:\n"
            '    - {name: api, image: ghcr.io/acme/api, select: {semver: ">=0.1.0"}}\n'
            "  environments:\n" + "\n".join(envs) + "\n"
        )

    def review(self, number: int, login: str, event: str) -> None:
        """Submit a review of PR `number` as `login` through the API, as a person would."""
        pull = self.github(login).get_repo(f"{self.owner}/{self.name}").get_pull(number)
        pull.create_review(event=event)

    def spec(self, env: str, head: str, bundle: str, version: str) -> PullRequestSpec:
        """The spec promoter would ask for after pushing `head` to the env's branch."""
        return PullRequestSpec(
            repository=self.git_url,
            pipeline="shop",
            environment=env,
            base="main",
            branch=f"promoter/shop/{env}",
            head=head,
            title=f"promote shop to {env}: api {version}",
            body=f"new bundle\n\n| artifact | version | reference |\n|---|---|---|\n"
            f"| api | {version} | `ghcr.io/acme/api:{version}` |\n\n"
            f"Promoter-Pipeline: shop\nPromoter-Environment: {env}\nPromoter-Bundle: {bundle}\n",
            bundle=bundle,
            versions={"api": version},
            gates={"approvals": "needs 1 approval(s) from alice; has 0"},
        )


@contextmanager
def github_world(root: Path, users: Users | None = None, **options: Any) -> Iterator[GitHubWorld]:
    """A running emulator under `root` with `acme/deploy` seeded with GITOPS."""
    with running(root / "github", users, **options) as emu:
        bare = emu.create_repo("acme", "deploy", files=GITOPS)
        yield GitHubWorld(emu, bare)
