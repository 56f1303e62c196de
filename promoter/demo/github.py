"""`promoter demo --provider github`: the same story, with PRs on the bundled GitHub emulator."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TextIO

from pydantic import SecretStr

from promoter.gateway.server import Gateway, serve
from promoter.runtime.app import utc_now
from promoter.runtime.bus import Bus
from promoter.runtime.providers import GitHubSetup
from promoter.scm.github.auth import Credentials
from promoter.sources.base import SourceConfig
from promoter.testing.github_emulator import Emulator, running
from promoter.testing.github_emulator.client import github_client

__all__ = ["GitHubStage", "github_stage"]

OWNER, REPO, BOT = "acme", "shop-gitops", "promoter-bot"
_REPOSITORY = re.compile(r"^  repository: \{url: \./gitops\.git, branch: main\}$", re.MULTILINE)


@dataclass
class GitHubStage:
    """The emulator, its repository, and what the demo does as people on GitHub."""

    emu: Emulator
    bare: Path
    setup: GitHubSetup

    def pipeline(self, text: str) -> str:
        """The demo pipeline pointed at the emulator's repository."""
        url, api = self.emu.git_url(OWNER, REPO), self.emu.api_url
        spec = f'  repository: {{url: "{url}", provider: github, apiUrl: "{api}", branch: main}}'
        return _REPOSITORY.sub(spec, text)

    def _review(self, env: str, user: str) -> int:
        repo = github_client(self.emu.api_url, user).get_repo(f"{OWNER}/{REPO}")
        [pull] = repo.get_pulls(state="open", head=f"{OWNER}:promoter/shop/{env}").get_page(0)
        pull.create_review(event="APPROVE", body="looks good")
        self.emu.wait_for_hooks()  # the webhook reached the gateway
        return int(pull.number)

    async def approve(self, env: str, user: str) -> int:
        """Approve the environment's open PR as `user` through the API; its PR number."""
        return await asyncio.to_thread(self._review, env, user)

    def summary(self) -> str:
        """What the engine cost in GitHub API requests."""
        calls = [c for c in self.emu.calls if c.login == BOT]
        writes = sum(1 for c in calls if c.write)
        merges = sum(
            1 for c in calls if c.route and c.route.endswith("/merge") and c.status == HTTPStatus.OK
        )
        return (
            f"GitHub API: promoter made {len(calls)} requests ({writes} writes) for {merges} "
            f"merged PRs; secondary-limit refusals: {self.emu.secondary_limit_hits}"
        )


@asynccontextmanager
async def github_stage(
    root: Path, bus: Bus, seed: Callable[[Path], None], out: TextIO
) -> AsyncIterator[GitHubStage]:
    """Start the emulator, `seed` its bare repository, and a gateway its webhooks reach."""
    async with AsyncExitStack() as stack:
        emu = stack.enter_context(running(root / "github"))
        bare = root / "github" / OWNER / f"{REPO}.git"
        bare.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(seed, bare)
        secret = secrets.token_hex(16)
        gateway = Gateway(bus, {"github": SourceConfig(secret=secret)}, utc_now)
        port = await stack.enter_async_context(serve(gateway, "127.0.0.1", 0))
        emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", secret)
        print(f"GitHub emulator at {emu.api_url}, webhooks to the gateway on :{port}", file=out)
        yield GitHubStage(emu, bare, GitHubSetup(Credentials(token=SecretStr(BOT))))
