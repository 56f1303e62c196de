"""SIGKILL a worker between any two effects; the restarted one loses and repeats nothing."""

from __future__ import annotations

import asyncio
import signal

import pytest
from gitfixtures import remote_branches
from harness import Harness

from promoter.runtime.report import history

# The image event leads to: plan, then open+merge dev, open+merge staging, open prod (5 effects).
CRASH_POINTS = [
    "after-plan:1",
    *(f"after-effect:{n}" for n in range(1, 6)),
    *(f"after-record:{n}" for n in range(1, 6)),
    "before-ack:1",
]


async def _wait_exit(child: object, within: float = 30.0) -> int:
    import subprocess  # noqa: PLC0415

    assert isinstance(child, subprocess.Popen)
    for _ in range(int(within / 0.05)):
        code = child.poll()
        if code is not None:
            return int(code)
        await asyncio.sleep(0.05)
    raise AssertionError("worker did not exit")


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_sigkill_between_effects_loses_and_duplicates_nothing(
    world: Harness, point: str
) -> None:
    world.write_pipeline("shop")
    doomed = world.spawn_worker({"PROMOTER_FAILPOINTS": point})
    await world.image("1.0.0", 1)
    assert await _wait_exit(doomed) == -signal.SIGKILL, "the failpoint did not fire"

    survivor = world.spawn_worker()
    await world.live("shop", "staging", "1.0.0", within=60)
    await world.pending("shop", "prod", "1.0.0", within=60)
    await world.quiet(within=60)

    subjects = world.main_log()
    for env in ("dev", "staging"):
        assert sum(s.startswith(f"promote shop to {env}:") for s in subjects) == 1, subjects
        assert sum(s.startswith("Merge #") and f"to {env}:" in s for s in subjects) == 1, subjects
    assert not any("to prod" in s for s in subjects)
    assert "promoter/shop/prod" in remote_branches(world.remote)
    prs = await world.prs()
    assert sorted((p.environment, p.state) for p in prs) == [
        ("dev", "merged"),
        ("prod", "open"),
        ("staging", "merged"),
    ]
    entries = await history(world.bus, "shop")
    seqs = [e["seq"] for e in entries]
    assert len(seqs) == len(set(seqs)), "an audit record was written twice"
    assert [e["action"] for e in entries][:4] == ["open-pr", "merge", "open-pr", "merge"]

    survivor.send_signal(signal.SIGTERM)
    assert await _wait_exit(survivor) == 0
    world.children.clear()


@pytest.mark.slow
async def test_two_worker_processes_share_the_load_without_duplicate_effects(
    world: Harness,
) -> None:
    names = [f"svc{i}" for i in range(8)]
    for name in names:
        world.write_pipeline(name, image=f"ghcr.io/acme/{name}", prod_approval=False)
    world.spawn_worker()
    world.spawn_worker()

    async def both_pulling() -> bool:
        info = await world.bus.js.consumer_info("PROMOTER_EVENTS", "promoter-worker")
        return (info.num_waiting or 0) >= 2

    await world.until(both_pulling, "both workers are pulling")
    for round_ in range(3):
        for i, name in enumerate(names):
            await world.image(f"1.0.{round_}", 100 * i + round_, f"ghcr.io/acme/{name}")
    for name in names:
        await world.live(name, "prod", "1.0.2", within=90)
    await world.quiet(within=60)

    workers = set()
    for name in names:
        entries = await history(world.bus, name)
        workers |= {e["worker"] for e in entries}
        seqs = [e["seq"] for e in entries]
        assert len(seqs) == len(set(seqs)), f"{name}: an audit record was written twice"
    assert len(workers) == 2, f"one worker did all the work: {workers}"
    subjects = world.main_log()
    for name in names:
        for env in ("dev", "staging", "prod"):
            ours = [s for s in subjects if s.startswith(f"promote {name} to {env}:")]
            assert len(set(ours)) == len(ours), f"duplicate commit for {name}/{env}: {ours}"
    prs = await world.prs()
    assert len({(p.pipeline, p.environment, p.bundle) for p in prs}) == len(prs)
