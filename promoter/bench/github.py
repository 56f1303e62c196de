"""The GitHub scenario: build event → PR on the bundled emulator, review → merge, calls per step."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any

from pydantic import SecretStr

from promoter.bench.report import Progress, summary
from promoter.bench.world import VALUES, BenchWorld, digest, environment
from promoter.errors import TransientError
from promoter.gateway.server import Gateway, serve
from promoter.runtime.app import utc_now
from promoter.runtime.emit import image_event
from promoter.runtime.providers import GitHubSetup
from promoter.runtime.report import history
from promoter.scm.github.auth import Credentials
from promoter.sources.base import SourceConfig
from promoter.testing.github_emulator import Emulator, running
from promoter.testing.github_emulator.client import github_client

__all__ = ["github_rounds"]

OWNER, REPO, BOT, REVIEWER = "acme", "deploy", "promoter-bot", "alice"
_CREATE = "POST /repos/{owner}/{repo}/pulls"

# The shared write budget paces a burst to one write a second by default (github.com's own
# secondary limits); the bench lifts it so the numbers are the engine's, not the policy's.
_UNPACED_PER_MINUTE, _UNPACED_PER_HOUR = 1_000_000.0, 10_000_000.0


async def _until(check: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TransientError(
                f"timed out waiting until {what}; is the machine overloaded? run again"
            )
        await asyncio.sleep(0.002)


def _created_since(emu: Emulator, mark: int) -> bool:
    return any(c.route == _CREATE and c.status == HTTPStatus.CREATED for c in emu.calls[mark:])


def _merged(emu: Emulator, number: int) -> bool:
    return bool(emu.pull(OWNER, REPO, number)["merged"])


def _approve_open_pr(emu: Emulator) -> int:
    repo = github_client(emu.api_url, REVIEWER).get_repo(f"{OWNER}/{REPO}")
    [pull] = repo.get_pulls(state="open").get_page(0)
    pull.create_review(event="APPROVE")
    return int(pull.number)


def _calls(entries: list[dict[str, Any]], action: str) -> int:
    """The most API requests one effect of `action` made (from the audit records)."""
    return max((e.get("api_calls", 0) for e in entries if e["action"] == action), default=0)


async def github_rounds(
    world: BenchWorld, rounds: int, progress: Progress
) -> tuple[dict[str, Any], dict[str, int]]:
    """`rounds` promotions: event → PR created on GitHub (timed), then a review merges it.

    The first round (the clone, PyGithub's first connection) is a warm-up and not timed.
    Returns the latency summary and the requests an open and a merge cost.
    """
    with running(world.root / "github", secondary_writes_per_minute=1_000_000) as emu:
        emu.create_repo(OWNER, REPO, files={"envs/prod.yaml": VALUES})
        secret = secrets.token_hex(16)
        gateway = Gateway(world.bus, {"github": SourceConfig(secret=secret)}, utc_now)
        async with serve(gateway, "127.0.0.1", 0) as port:
            emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", secret)
            extra = f', provider: github, apiUrl: "{emu.api_url}"'
            gates = f"{{approvals: {{count: 1, reviewers: [{REVIEWER}]}}}}"
            world.write_pipeline(
                "gh",
                emu.git_url(OWNER, REPO),
                "ghcr.io/bench/gh",
                [environment("prod", gates=gates)],
                extra,
            )
            setup = GitHubSetup(
                Credentials(token=SecretStr(BOT)), _UNPACED_PER_MINUTE, _UNPACED_PER_HOUR
            )
            await world.start_worker(github=setup)
            seconds = []
            for n in range(rounds + 1):
                mark = len(emu.calls)
                started = time.perf_counter()
                event = image_event("ghcr.io/bench/gh", digest(n), f"2.0.{n}", {}, now=utc_now())
                await world.bus.publish_event(event)
                await _until(partial(_created_since, emu, mark), "the PR is created")
                if n:
                    seconds.append(time.perf_counter() - started)
                number = await asyncio.to_thread(_approve_open_pr, emu)
                await _until(partial(_merged, emu, number), "the PR is merged")
                await world.quiet()
                progress.step()
            entries = await history(world.bus, "gh")
    calls = {"open_pr": _calls(entries, "open-pr"), "merge": _calls(entries, "merge")}
    return summary(seconds), calls
