"""Local-provider scenarios: event → PR latency, events/s through one worker, a burst of builds."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats.errors

from promoter.bench.report import Progress, summary
from promoter.bench.world import BenchWorld, digest, environment
from promoter.errors import TransientError
from promoter.runtime.app import utc_now
from promoter.runtime.bus import CONSUMER, EVENTS_STREAM, PR_BUCKET, kv_keys
from promoter.runtime.emit import health_event, image_event

__all__ = ["burst", "event_to_pr", "events_per_s"]

GATED = "{approvals: {count: 1}}"


def _image(name: str) -> str:
    return f"ghcr.io/bench/{name}"


async def _build(world: BenchWorld, name: str, tag: str, n: int) -> None:
    event = image_event(_image(name), digest(n), tag, {}, now=utc_now())
    await world.bus.publish_event(event)


async def _pr_carries(watcher: Any, wanted: str, within: float = 30.0) -> None:
    """Wait for a PR record update whose JSON contains `wanted`."""
    try:
        while True:
            entry = await watcher.updates(timeout=within)
            if entry is not None and entry.value and wanted in entry.value.decode():
                return
    except nats.errors.TimeoutError:
        raise TransientError(f"no PR carried {wanted} within {within:g} s; run again") from None


async def event_to_pr(
    world: BenchWorld, samples: int, pipelines: int, progress: Progress
) -> dict[str, Any]:
    """Publish one build at a time; seconds until the local PR record carries its version.

    Dev is approval-gated so each PR stays open and the next build updates it. The first
    build (which clones the repository) is a warm-up and not counted.
    """
    bare = world.remote("latency", ["dev"])
    for i in range(pipelines):
        world.write_pipeline(
            f"lat{i}", str(bare), _image(f"lat{i}"), [environment("dev", gates=GATED)]
        )
    await world.start_worker()
    watcher = await world.bus.prs.watch("pr.*")
    seconds = []
    try:
        for n in range(samples + 1):
            name, tag = f"lat{n % pipelines}", f"1.0.{n}"
            started = time.perf_counter()
            await _build(world, name, tag, n)
            await _pr_carries(watcher, f'"api":"{tag}"')
            if n:
                seconds.append(time.perf_counter() - started)
                progress.step()
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: no annotations
    return summary(seconds)


async def _drained(world: BenchWorld) -> bool:
    info = await world.bus.js.consumer_info(EVENTS_STREAM, CONSUMER)
    return not (info.num_pending or info.num_ack_pending)


async def events_per_s(world: BenchWorld, count: int, pipelines: int, progress: Progress) -> float:
    """Non-promoting events (health signals for live pipelines, unmatched images) per second.

    The events are published while no worker runs; the clock runs from a fresh worker's start
    until it has acked them all, so publishing does not compete with consuming.
    """
    bare = world.remote("throughput", ["dev"])
    for i in range(pipelines):
        world.write_pipeline(f"tp{i}", str(bare), _image(f"tp{i}"), [environment("dev")])
    await world.start_worker()
    for i in range(pipelines):
        await _build(world, f"tp{i}", "1.0.0", i)
    await world.quiet()
    await world.stop_workers()
    now = utc_now()
    events = [
        health_event(f"tp{n % pipelines}", "dev", "healthy", {}, f"probe {n}", now=now)
        if n % 2
        else image_event(_image("unwatched"), digest(n), f"0.0.{n}", {}, now=now)
        for n in range(count)
    ]
    for start in range(0, count, 500):
        await asyncio.gather(*(world.bus.publish_event(e) for e in events[start : start + 500]))
        progress.step(min(500, count - start) // 2)
    worker = world.worker()
    started = time.perf_counter()
    world.run(worker)
    await world.until(lambda: _drained(world), "the events are consumed", 300)
    elapsed = time.perf_counter() - started
    progress.step(count - count // 2)
    return round(count / elapsed)


def _pushes(world: BenchWorld, branch: str) -> int:
    """Updates of `branch` on the bench remote, from its reflog (one line per push)."""
    log = world.root / "burst.git" / "logs" / "refs" / "heads" / branch
    return len(log.read_text(encoding="utf-8").splitlines()) if log.exists() else 0


async def _open_prs(world: BenchWorld, pipeline: str) -> list[dict[str, Any]]:
    found = []
    for key in await kv_keys(world.bus.js, PR_BUCKET, "pr."):
        entry = await world.bus.prs.get(key)
        pr = json.loads(entry.value or b"{}")
        if pr.get("pipeline") == pipeline and pr.get("state") == "open":
            found.append(pr)
    return found


async def burst(world: BenchWorld, builds: int, progress: Progress) -> dict[str, Any]:
    """`builds` builds of one image back to back: how many PRs and pushes, and which version."""
    bare = world.remote("burst", ["dev"])
    world.write_pipeline("burst", str(bare), _image("burst"), [environment("dev", gates=GATED)])
    await world.start_worker()
    newest = f"3.0.{builds - 1}"
    for n in range(builds):
        await _build(world, "burst", f"3.0.{n}", 50_000 + n)
        progress.step()
    await world.quiet()
    open_prs = await _open_prs(world, "burst")
    return {
        "builds": builds,
        "open_prs": len(open_prs),
        "pushes": _pushes(world, "promoter/burst/dev"),
        "final_version_is_newest": [pr["versions"].get("api") for pr in open_prs] == [newest],
    }
