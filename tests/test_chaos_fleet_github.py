"""The worker-killing fleet run against the GitHub emulator injecting 10% faults."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fleet import Feeder, Fleet, Scale, Stopwatch, chaos_run, patiently, settled, write_pipelines
from fleet_checks import (
    check_audit,
    check_github_prs,
    check_live,
    check_main,
    dead_letters_of_planned_events,
)
from github_world import BOT, GitHubWorld, github_world

from promoter.runtime.bus import Bus, BusOptions, connect
from promoter.runtime.natsserver import EmbeddedServer
from promoter.testing.github_emulator import KINDS

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

SHORT = Scale(pipelines=4, rounds=2, within=180)
LONG = Scale(pipelines=20, rounds=4, within=600)
# GitHub Enterprise has no secondary limit: the budget is opened wide so that faults, not
# pacing, are what the workers fight (test_github_faults covers the budget).
CHILD = {
    "PROMOTER_GITHUB_TOKEN": BOT,
    "PROMOTER_GITHUB_WRITES_PER_MINUTE": "100000",
    "PROMOTER_GITHUB_WRITES_PER_HOUR": "1000000",
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    embedded = EmbeddedServer(tmp_path / "nats").start()
    try:
        yield embedded
    finally:
        embedded.stop(kill=True)


@pytest.fixture
async def nats_bus(server: EmbeddedServer) -> AsyncIterator[Bus]:
    connection = await connect(server.url, name="test", options=BusOptions(ack_wait=3.0))
    try:
        yield connection
    finally:
        await connection.close()


def _repository(github: GitHubWorld) -> str:
    return (
        f'{{url: "{github.git_url}", provider: github, apiUrl: "{github.emu.api_url}", '
        "mergeMethod: merge}"
    )


async def _restart_nats_midway(server: EmbeddedServer, feeder: Feeder, clock: Stopwatch) -> None:
    await feeder.reached(feeder.expected // 2, within=600)
    clock.mark(f"nats-server SIGKILLed at {feeder.promotions} promotions")
    server.stop(kill=True)
    await asyncio.sleep(1.0)  # an outage every worker notices
    server.start()


async def _verify(bus: Bus, github: GitHubWorld, scale: Scale) -> str:
    """Every end-of-run invariant, GitHub's PRs included; returns what was counted."""
    await settled(bus)
    github.emu.faults.clear()
    await patiently(lambda: check_live(bus, scale.names, scale.rounds))
    check_main(github.bare, scale.names, scale.rounds)
    faults = check_github_prs(github.emu, scale.names, scale.rounds)
    audited, refused = await patiently(lambda: check_audit(bus, scale.names, scale.rounds))
    false_alarms = await patiently(lambda: dead_letters_of_planned_events(bus))
    assert false_alarms == 0, f"{false_alarms} events were dead-lettered though planned"
    calls = len(github.emu.calls)
    assert faults >= calls * 0.05, f"only {faults} faults in {calls} calls"
    return (
        f"{audited} audit records ({refused} refused merges), {false_alarms} planned events "
        f"dead-lettered, {faults} faults in {calls} API calls"
    )


async def test_github_with_ten_percent_faults_and_workers_killed_opens_and_merges_each_pr_once(
    tmp_path: Path, server: EmbeddedServer, nats_bus: Bus, long_run: bool
) -> None:
    scale = LONG if long_run else SHORT
    clock = Stopwatch()
    feeder = Feeder(nats_bus, scale.names, scale.rounds)
    with github_world(tmp_path, secondary_writes_per_minute=1_000_000) as github:
        write_pipelines(tmp_path / "pipelines", scale.names, _repository(github))
        github.emu.faults.random(rate=0.1, seed=11, kinds=KINDS)
        url = server.url
        with Fleet(tmp_path, tmp_path / "pipelines", lambda _slot: url, env=CHILD) as fleet:
            restart = functools.partial(_restart_nats_midway, server, feeder, clock)
            await chaos_run(fleet, feeder, restart, within=scale.within, seed=3)
            clock.mark("all fed")
            counted = await _verify(nats_bus, github, scale)
    print(
        f"\n{feeder.expected} promotions, {counted}, {fleet.kills} SIGKILLs, "
        f"crashes {fleet.crashes}; {'; '.join(clock.marks)}"
    )
    assert fleet.kills >= 2
    assert fleet.crashes == []
