"""SIGKILL a worker between any two GitHub effects; the restarted one repeats nothing on GitHub."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gitfixtures import remote_branches, remote_log
from github_world import BOT, GitHubWorld, environment, github_world
from harness import Harness
from test_chaos import CRASH_POINTS, _wait_exit

from promoter.runtime.report import history

CHILD = {"PROMOTER_GITHUB_TOKEN": BOT, "PROMOTER_GITHUB_WRITES_PER_MINUTE": "68"}


@dataclass
class World:
    harness: Harness
    github: GitHubWorld


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    harness = await Harness(tmp_path).start()
    try:
        with github_world(tmp_path) as github:
            (harness.pipelines / "shop.yaml").write_text(
                github.pipeline(
                    environment("dev", auto=True),
                    environment("staging", upstream="dev", auto=True),
                    environment("prod", upstream="staging", gates="{approvals: {count: 1}}"),
                )
            )
            yield World(harness, github)
            await harness.stop_workers()
    finally:
        await harness.close()


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_sigkill_between_github_effects_repeats_nothing(world: World, point: str) -> None:
    harness, github = world.harness, world.github
    doomed = harness.spawn_worker({**CHILD, "PROMOTER_FAILPOINTS": point})
    await harness.image("1.0.0", 1)
    assert await _wait_exit(doomed) == -signal.SIGKILL, "the failpoint did not fire"

    survivor = harness.spawn_worker(CHILD)
    await harness.live("shop", "staging", "1.0.0", within=60)
    await harness.pending("shop", "prod", "1.0.0", within=60)
    await harness.quiet(within=60)

    pulls = github.github().get_repo("acme/deploy").get_pulls(state="all").get_page(0)
    assert sorted((p.head.ref, p.state, bool(p.merged_at)) for p in pulls) == [
        ("promoter/shop/dev", "closed", True),
        ("promoter/shop/prod", "open", False),
        ("promoter/shop/staging", "closed", True),
    ]
    subjects = remote_log(github.bare, "main")
    for env in ("dev", "staging"):
        assert sum(s.startswith("Merge #") and f"to {env}:" in s for s in subjects) == 1, subjects
    assert not any("to prod" in s for s in subjects)
    assert "promoter/shop/prod" in remote_branches(github.bare)
    entries = await history(harness.bus, "shop")
    seqs = [e["seq"] for e in entries]
    assert len(seqs) == len(set(seqs)), "an audit record was written twice"

    survivor.send_signal(signal.SIGTERM)
    assert await _wait_exit(survivor) == 0
    harness.children.clear()
