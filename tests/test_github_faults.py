"""Under injected GitHub faults every promotion completes, and the write budget always holds."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from github_world import BOT, VirtualTime, environment, github_world
from harness import FAST, Harness
from pydantic import SecretStr

from promoter.runtime.providers import GitHubSetup
from promoter.scm.github.auth import Credentials
from promoter.testing.github_emulator import KINDS, Emulator

ENVS = ("dev", "staging", "prod")
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0")


async def test_ten_percent_faults_every_promotion_completes_within_the_write_budget(
    tmp_path: Path,
) -> None:
    time = VirtualTime()
    harness = await Harness(tmp_path).start()
    try:
        with github_world(tmp_path, clock=time.clock, secondary_writes_per_minute=80) as github:
            emu = github.emu
            envs = [
                environment(n, upstream=ENVS[i - 1] if i else None, auto=True)
                for i, n in enumerate(ENVS)
            ]
            (harness.pipelines / "shop.yaml").write_text(github.pipeline(*envs))
            harness.github = GitHubSetup(
                Credentials(token=SecretStr(BOT)), clock=time.clock, sleep=time.sleep
            )
            await harness.start_worker(options=replace(FAST, retry_max=0.5))
            emu.faults.random(rate=0.1, seed=5, kinds=KINDS)
            started = time.now
            for number, version in enumerate(VERSIONS, 1):
                await harness.image(version, number)
                await harness.live("shop", "prod", version, within=60)
            await harness.quiet()
            calls = emu.calls
            pulls = [emu.pull("acme", "deploy", n) for n in range(1, 40) if _exists(emu, n)]
    finally:
        await harness.stop_workers()
        await harness.close()
    faults = Counter(c.fault for c in calls if c.fault)
    writes = sum(1 for c in calls if c.write)
    assert sum(faults.values()) >= len(calls) * 0.05, faults  # the faults really happened
    assert len(faults) >= 4, faults  # of several kinds
    assert emu.secondary_limit_hits == 0  # GitHub's 80 writes a minute never exceeded...
    assert writes > 80  # ...although more than a minute's worth were made,
    assert time.now - started >= 60  # so the shared budget paced them
    assert len(pulls) == len(VERSIONS) * len(ENVS)  # one PR per promotion and environment,
    assert all(p["merged"] for p in pulls)  # each merged
    assert len({(p["head"]["ref"], p["title"]) for p in pulls}) == len(pulls)  # no duplicates


def _exists(emu: Emulator, number: int) -> bool:
    try:
        emu.pull("acme", "deploy", number)
    except KeyError:
        return False
    return True
