"""Event -> PR latency and events/s on real NATS and git: `python tests/bench_runtime.py`."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from harness import FAST, Harness, digest

from promoter.log import configure_logging
from promoter.runtime.app import utc_now
from promoter.runtime.emit import health_event, image_event

APPROVAL_DEV = """apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  repository: {{url: "file://{repo}", branch: main}}
  artifacts:
    - {{name: api, image: ghcr.io/bench/{name}, select: {{semver: '>=0.1.0'}}}}
  environments:
    - name: dev
      gates: {{approvals: {{count: 1}}}}
      update: [{{file: envs/{name}/values.yaml, set: {{image.tag: "${{api.tag}}"}}}}]
"""

AUTO_DEV = APPROVAL_DEV.replace("      gates: {{approvals: {{count: 1}}}}\n", "      auto: true\n")


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def _world(root: Path, template: str, pipelines: int, *, sync: bool = True) -> Harness:
    world = await Harness(root).start(sync_always=sync)
    for i in range(pipelines):
        name = f"p{i}"
        (world.pipelines / f"{name}.yaml").write_text(template.format(name=name, repo=world.remote))
    await world.start_worker(options=FAST, clock=utc_now)
    return world


async def latency(root: Path, events: int, pipelines: int) -> list[float]:
    """Seconds from publish to the PR record carrying the event's version, one event at a time."""
    world = await _world(root, APPROVAL_DEV, pipelines)
    watcher = await world.bus.prs.watch("pr.*")
    samples = []
    try:
        for n in range(events):
            name, tag = f"p{n % pipelines}", f"1.0.{n}"
            event = image_event(f"ghcr.io/bench/{name}", digest(n), tag, {}, now=world.clock())
            started = time.perf_counter()
            await world.bus.publish_event(event)
            while True:
                entry = await watcher.updates(timeout=30)  # type: ignore[no-untyped-call]
                if entry is not None and entry.value and f'"api":"{tag}"' in entry.value.decode():
                    break
            samples.append(time.perf_counter() - started)
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: no annotations
        await world.close()
    return samples


async def throughput(
    root: Path, events: int, pipelines: int, *, health: bool, sync: bool = True
) -> float:
    """Events/s for a burst: builds that commit to dev, or health signals that only plan."""
    world = await _world(root, AUTO_DEV, pipelines, sync=sync)
    try:
        if health:  # every pipeline live first, then signals that change no file
            for i in range(pipelines):
                await world.image("1.0.0", i, f"ghcr.io/bench/p{i}")
            await world.quiet(within=300)
        started = time.perf_counter()
        for n in range(events):
            name = f"p{n % pipelines}"
            if health:
                state = "healthy" if n % 2 else "progressing"
                event = health_event(name, "dev", state, {}, f"probe {n}", now=world.clock())
            else:
                tag = f"2.0.{n}"
                event = image_event(
                    f"ghcr.io/bench/{name}", digest(10_000 + n), tag, {}, now=world.clock()
                )
            await world.bus.publish_event(event)
        await world.quiet(within=600)
        return events / (time.perf_counter() - started)
    finally:
        await world.close()


async def main() -> None:
    """Run the three measurements and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=20)
    args = parser.parse_args()
    configure_logging("error", "console")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = await latency(root / "latency", args.events, args.pipelines)
        print(
            f"event -> PR opened: n={len(samples)} p50={statistics.median(samples) * 1000:.0f} ms "
            f"p99={percentile(samples, 99) * 1000:.0f} ms max={max(samples) * 1000:.0f} ms"
        )
        for sync in (True, False):
            burst, spread = args.events * 2, args.pipelines * 5
            rate = await throughput(root / f"builds-{sync}", burst, spread, health=False, sync=sync)
            print(
                f"builds committed to dev (burst of {burst} over {spread} pipelines, one repo, "
                f"sync_interval {'always' if sync else 'default'}): {rate:.1f} events/s"
            )
        rate = await throughput(root / "health", args.events * 10, args.pipelines, health=True)
        print(f"health signals, planning only (burst of {args.events * 10}): {rate:.0f} events/s")


if __name__ == "__main__":
    asyncio.run(main())
