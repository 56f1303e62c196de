"""Which PR provider serves a pipeline: the local one, or GitHub (one connection per repository)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nats.js.kv import KeyValue
from pydantic import SecretStr

from promoter.core.pipeline import github_slug, is_local_location
from promoter.errors import ConfigurationError
from promoter.runtime.budget import KvTokenBucket, github_rates
from promoter.runtime.effects import Target
from promoter.scm.base import PullRequests
from promoter.scm.github.credentials import Credentials
from promoter.settings import Settings, read_secret

if TYPE_CHECKING:
    from promoter.scm.github.provider import GitHubPullRequests

__all__ = ["GitHubSetup", "Providers", "github_setup", "require_github"]


@dataclass(frozen=True)
class GitHubSetup:
    """How to reach GitHub: credentials, the shared write budget, the retry layer."""

    credentials: Credentials
    writes_per_minute: float = 60.0
    writes_per_hour: float = 450.0
    attempts: int = 5
    max_wait: float = 30.0
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)


def github_setup(settings: Settings) -> GitHubSetup | None:
    """The GitHub setup the settings describe; None when no GitHub credentials are set."""
    token = settings.github_token
    if settings.github_token_file is not None:
        if token is not None:
            raise ConfigurationError("set PROMOTER_GITHUB_TOKEN or _TOKEN_FILE, not both")
        token = SecretStr(read_secret(settings.github_token_file, "PROMOTER_GITHUB_TOKEN_FILE"))
    key = None
    if settings.github_app_private_key_file is not None:
        path = settings.github_app_private_key_file
        key = SecretStr(read_secret(path, "PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE"))
    if token is None and settings.github_app_id is None:
        return None
    if token is not None and settings.github_app_id is not None:
        raise ConfigurationError(
            "set a GitHub token (PROMOTER_GITHUB_TOKEN[_FILE]) or a GitHub App "
            "(PROMOTER_GITHUB_APP_ID), not both"
        )
    credentials = Credentials(
        token=token,
        app_id=settings.github_app_id,
        private_key=key,
        installation_id=settings.github_app_installation_id,
    )
    return GitHubSetup(
        credentials,
        writes_per_minute=settings.github_writes_per_minute,
        writes_per_hour=settings.github_writes_per_hour,
    )


def require_github(targets: dict[str, Target], setup: GitHubSetup | None) -> None:
    """ConfigurationError naming the pipelines on GitHub when no GitHub credentials are set."""
    remote = sorted(t.name for t in targets.values() if t.hosted_on == "github")
    if remote and setup is None:
        raise ConfigurationError(
            f"pipelines {', '.join(remote)} open PRs on GitHub: set PROMOTER_GITHUB_TOKEN "
            "(or PROMOTER_GITHUB_TOKEN_FILE, or a GitHub App: PROMOTER_GITHUB_APP_ID and "
            "PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE)"
        )


def _identity(credentials: Credentials) -> str:
    """A budget key for whom GitHub counts writes against (a token's hash, never the token)."""
    if credentials.token is None:
        return f"app-{credentials.app_id}"
    digest = hashlib.sha256(credentials.token.get_secret_value().encode()).hexdigest()
    return f"token-{digest[:12]}"


class Providers:
    """Gives each pipeline its PR provider; GitHub connections are made once per repository."""

    def __init__(
        self, budget: KeyValue, github: GitHubSetup | None, local: PullRequests | None = None
    ) -> None:
        self.local = local
        self.budget = budget
        self.setup = github
        self._github: dict[str, tuple[GitHubPullRequests, Callable[[], str]]] = {}

    async def __call__(self, target: Target) -> PullRequests:
        """The provider of `target`'s repository."""
        if target.hosted_on == "local":
            if self.local is None:
                raise ConfigurationError("no local PR provider was set up")
            return self.local
        return await self.github(target)

    def check(self, targets: dict[str, Target]) -> None:
        """ConfigurationError naming pipelines on GitHub when no GitHub credentials are set."""
        require_github(targets, self.setup)

    async def github(self, target: Target) -> GitHubPullRequests:
        """The GitHub provider of `target`, connected on first use.

        Connecting runs in a thread: a GitHub App may look up its installation over HTTP.
        """
        if target.repository not in self._github:
            await asyncio.to_thread(self._connection, target.repository, target)
        return self._github[target.repository][0]

    def token_for(self, url: str) -> Callable[[], str] | None:
        """What gives git the token for `url`: None for local repositories.

        The connection is made by the first provider call, which comes before any git work.
        """
        if is_local_location(url):
            return None

        def token() -> str:
            found = self._github.get(url)
            if found is None:
                raise ConfigurationError(f"no GitHub connection for {url} yet")
            return found[1]()

        return token

    def _connection(self, url: str, target: Target) -> tuple[GitHubPullRequests, Callable[[], str]]:
        # PyGithub (and requests) load with the first GitHub pipeline, not with every command
        from promoter.scm.github.auth import connect  # noqa: PLC0415
        from promoter.scm.github.client import GitHubClient  # noqa: PLC0415
        from promoter.scm.github.provider import GitHubPullRequests, RepoRef  # noqa: PLC0415

        if url in self._github:
            return self._github[url]
        if self.setup is None:
            self.check({target.name: target})
        setup = self.setup
        assert setup is not None  # noqa: S101 (check raised otherwise)
        slug = github_slug(url)
        if slug is None:
            raise ConfigurationError(f"{url!r} is not a GitHub repository URL")
        _, owner, name = slug
        spec = target.compiled.pipeline.spec.repository
        github, token = connect(setup.credentials, spec.github_api, owner, name)
        bucket = KvTokenBucket(
            self.budget,
            f"github.{_identity(setup.credentials)}",
            github_rates(setup.writes_per_minute, setup.writes_per_hour),
            max_wait=setup.max_wait,
            clock=setup.clock,
            sleep=setup.sleep,
        )
        client = GitHubClient(
            budget=bucket,
            attempts=setup.attempts,
            max_wait=setup.max_wait,
            sleep=setup.sleep,
            clock=setup.clock,
            rate_limit=lambda: github.requester.rate_limiting,
        )
        repo = RepoRef(owner, name, url, spec.github_api, spec.merge_method)
        self._github[url] = (GitHubPullRequests(github, client, repo), token)
        return self._github[url]
