"""The floors: what bare git and bare NATS cost on this machine, measured beside promoter."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from promoter.bench.report import Progress, summary
from promoter.bench.world import BenchWorld, git
from promoter.runtime.bus import Bus

__all__ = ["git_floor", "nats_consume_floor", "nats_roundtrip_floor"]

_STREAM, _SUBJECT = "BENCH_FLOOR", "bench.floor"


def _commit_push(work: Path, n: int) -> float:
    started = time.perf_counter()
    (work / "envs" / "dev.yaml").write_text(f"image:\n  tag: 9.9.{n}\n", encoding="utf-8")
    git(work, "commit", "-q", "-a", "-m", f"floor {n}")
    git(work, "push", "-q", "origin", "HEAD:main")
    return time.perf_counter() - started


async def git_floor(world: BenchWorld, samples: int, progress: Progress) -> dict[str, float]:
    """Edit one file, `git commit -a` and `git push` to a local bare remote, `samples` times."""
    bare = world.remote("floor", ["dev"])
    work = world.root / "floor-clone"
    git(world.root, "clone", "-q", str(bare), str(work))
    seconds = []
    for n in range(samples):
        seconds.append(await asyncio.to_thread(_commit_push, work, n))
        progress.step()
    return summary(seconds, tail=False)


async def _floor_stream(bus: Bus, name: str) -> None:
    config = StreamConfig(name=_STREAM, subjects=[f"{_SUBJECT}.>"], storage=StorageType.FILE)
    await bus.js.add_stream(config)
    await bus.js.add_consumer(
        _STREAM, ConsumerConfig(durable_name=name, ack_policy=AckPolicy.EXPLICIT)
    )


async def nats_roundtrip_floor(bus: Bus, samples: int, progress: Progress) -> dict[str, float]:
    """Publish (JetStream ack) → fetch → ack (confirmed), one message at a time."""
    await _floor_stream(bus, "roundtrip")
    sub = await bus.js.pull_subscribe_bind(durable="roundtrip", stream=_STREAM)
    seconds = []
    try:
        for n in range(samples):
            started = time.perf_counter()
            await bus.js.publish(f"{_SUBJECT}.rt", b'{"n": %d}' % n)
            [msg] = await sub.fetch(1, timeout=5)
            await msg.ack_sync()
            seconds.append(time.perf_counter() - started)
            progress.step()
    finally:
        await sub.unsubscribe()
        await bus.js.delete_stream(_STREAM)
    return summary(seconds, tail=False)


async def nats_consume_floor(bus: Bus, count: int, batch: int, progress: Progress) -> float:
    """Messages per second a bare pull consumer fetches and acks (`batch` at a time)."""
    await _floor_stream(bus, "consume")
    sub = await bus.js.pull_subscribe_bind(durable="consume", stream=_STREAM)
    try:
        for start in range(0, count, 500):
            await asyncio.gather(
                *(bus.js.publish(f"{_SUBJECT}.c", b"{}") for _ in range(min(500, count - start)))
            )
        started, seen = time.perf_counter(), 0
        while seen < count:
            msgs = await sub.fetch(batch, timeout=5)
            for msg in msgs:
                await msg.ack()
            seen += len(msgs)
        await bus.nc.flush()
        elapsed = time.perf_counter() - started
        progress.step()
    finally:
        await sub.unsubscribe()
        await bus.js.delete_stream(_STREAM)
    return round(count / elapsed)
