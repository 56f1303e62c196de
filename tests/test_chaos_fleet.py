"""Three `promoter run` processes SIGKILLed every ~2 s, through a NATS restart and a leader loss."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fleet import (
    Feeder,
    Fleet,
    Scale,
    Stopwatch,
    chaos_run,
    local_repository,
    patiently,
    settled,
    write_pipelines,
)
from fleet_checks import (
    check_audit,
    check_live,
    check_local_prs,
    check_main,
    dead_letters_of_planned_events,
)
from gitfixtures import make_remote
from natscluster import NatsCluster, new_leader

from promoter.runtime.app import Runtime
from promoter.runtime.bus import EVENTS_STREAM, Bus, BusOptions, connect
from promoter.runtime.natsserver import EmbeddedServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900)]

SHORT = Scale(pipelines=6, rounds=2, within=180)
LONG = Scale(pipelines=20, rounds=4, within=600)
STREAMS = ("PROMOTER_EVENTS", "PROMOTER_DLQ", "PROMOTER_AUDIT")
BUCKETS = ("promoter-state", "promoter-leases", "promoter-prs", "promoter-pipelines")
LAST_BUCKET = "promoter-budget"  # `promoter run` creates it last


@dataclass
class Gitops:
    """A bare gitops remote and a pipelines dir over it."""

    remote: Path
    pipelines: Path
    scale: Scale


@pytest.fixture
def gitops(tmp_path: Path, long_run: bool) -> Gitops:
    scale = LONG if long_run else SHORT
    remote = make_remote(tmp_path, {"README.md": "gitops\n"})
    pipelines = tmp_path / "pipelines"
    write_pipelines(pipelines, scale.names, local_repository(remote))
    return Gitops(remote, pipelines, scale)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    embedded = EmbeddedServer(tmp_path / "nats").start()
    try:
        yield embedded
    finally:
        embedded.stop(kill=True)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "cluster").start()
    try:
        await nodes.wait_ready()
        yield nodes
    finally:
        nodes.stop()


async def _verify(bus: Bus, gitops: Gitops, root: Path) -> str:
    """Every end-of-run invariant; returns what was counted."""
    names, rounds = gitops.scale.names, gitops.scale.rounds
    await settled(bus)
    await patiently(lambda: check_live(bus, names, rounds))
    check_main(gitops.remote, names, rounds)
    prs = await patiently(Runtime(bus, root / "state-cli").prs.all)
    check_local_prs(prs, names, rounds)
    audited, refused = await patiently(lambda: check_audit(bus, names, rounds))
    false_alarms = await patiently(lambda: dead_letters_of_planned_events(bus))
    assert false_alarms == 0, f"{false_alarms} events were dead-lettered though planned"
    return (
        f"{audited} audit records ({refused} refused merges), "
        f"{false_alarms} planned events dead-lettered"
    )


def _report(feeder: Feeder, fleet: Fleet, counted: str, clock: Stopwatch) -> None:
    print(
        f"\n{feeder.expected} promotions, {counted}, {fleet.kills} SIGKILLs, "
        f"{fleet.spawned} workers started, crashes {fleet.crashes}; {'; '.join(clock.marks)}"
    )


@asynccontextmanager
async def _test_bus(url: str) -> AsyncIterator[Bus]:
    bus = await connect(url, name="test", options=BusOptions(ack_wait=3.0))
    try:
        yield bus
    finally:
        await bus.close()


async def _restart_nats_midway(server: EmbeddedServer, feeder: Feeder, clock: Stopwatch) -> None:
    await feeder.reached(feeder.expected // 2, within=600)
    clock.mark(f"nats-server SIGKILLed at {feeder.promotions} promotions")
    server.stop(kill=True)
    await asyncio.sleep(1.0)  # an outage every worker notices
    server.start()  # same port, same store
    clock.mark("nats-server restarted")


async def test_workers_killed_every_two_seconds_and_a_nats_restart_lose_and_repeat_nothing(
    tmp_path: Path, gitops: Gitops, server: EmbeddedServer
) -> None:
    clock = Stopwatch()
    async with _test_bus(server.url) as bus:
        feeder = Feeder(bus, gitops.scale.names, gitops.scale.rounds)
        with Fleet(tmp_path, gitops.pipelines, lambda _slot: server.url) as fleet:
            restart = functools.partial(_restart_nats_midway, server, feeder, clock)
            await chaos_run(fleet, feeder, restart, within=gitops.scale.within, seed=1)
            clock.mark("all fed")
            counted = await _verify(bus, gitops, tmp_path)
    _report(feeder, fleet, counted, clock)
    assert fleet.kills >= 2
    assert "nats-server restarted" in clock.marks[1]
    assert fleet.crashes == []


async def _kill_the_leader_and_bring_it_back(
    cluster: NatsCluster, bus: Bus, feeder: Feeder, leaders: list[str], clock: Stopwatch
) -> None:
    await feeder.reached(feeder.expected // 3, within=600)
    leaders.append(await new_leader(bus.js, EVENTS_STREAM, old=""))  # whoever leads now
    cluster.kill(leaders[0])
    clock.mark(f"leader {leaders[0]} SIGKILLed at {feeder.promotions} promotions")
    leaders.append(await new_leader(bus.js, EVENTS_STREAM, old=leaders[0]))
    clock.mark(f"{leaders[1]} leads")
    await feeder.reached(2 * feeder.expected // 3, within=600)
    cluster.restart(leaders[0])
    await cluster.wait_healthy(leaders[0])
    clock.mark(f"{leaders[0]} back and healthy at {feeder.promotions} promotions")


async def test_a_three_node_cluster_losing_the_events_stream_leader_loses_and_repeats_nothing(
    tmp_path: Path, gitops: Gitops, cluster: NatsCluster
) -> None:
    clock, leaders = Stopwatch(), list[str]()
    replicated = {"PROMOTER_NATS_REPLICAS": "3"}
    # The workers create the streams and buckets (R3), not the test.
    with Fleet(tmp_path, gitops.pipelines, cluster.live_url, env=replicated) as fleet:
        await cluster.wait_for_stream(f"KV_{LAST_BUCKET}")
        async with _test_bus(cluster.urls[0]) as bus:
            feeder = Feeder(bus, gitops.scale.names, gitops.scale.rounds)
            loss = functools.partial(
                _kill_the_leader_and_bring_it_back, cluster, bus, feeder, leaders, clock
            )
            await chaos_run(fleet, feeder, loss, within=gitops.scale.within, seed=2)
            clock.mark("all fed")
            counted = await _verify(bus, gitops, tmp_path)
            names = [*STREAMS, *(f"KV_{b}" for b in (*BUCKETS, LAST_BUCKET))]
            replicas = {s: (await bus.js.stream_info(s)).config.num_replicas for s in names}
    _report(feeder, fleet, counted, clock)
    assert set(replicas.values()) == {3}, replicas
    assert len(leaders) == 2 and leaders[0] != leaders[1]
    assert fleet.crashes == []
