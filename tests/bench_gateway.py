"""Webhook -> PR latency and gateway deliveries/s, real HTTP and NATS: `python bench_gateway.py`."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from harness import FAST, Harness, digest

from promoter.gateway.server import Gateway, serve
from promoter.log import configure_logging
from promoter.runtime.app import utc_now

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


ENVELOPE = "application/vnd.docker.distribution.events.v2+json"


def push(name: str, tag: str, n: int) -> bytes:
    """The envelope Distribution sends for a tagged manifest push of `bench/<name>:<tag>`."""
    event = {
        "id": f"push-{n}",
        "timestamp": "2026-03-04T10:15:30.112093311Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest(n),
            "size": 1611,
            "repository": f"bench/{name}",
            "url": f"https://ghcr.io/v2/bench/{name}/manifests/{digest(n)}",
            "tag": tag,
        },
        "request": {"id": f"r{n}", "host": "ghcr.io", "method": "PUT", "useragent": "bench"},
        "actor": {"name": "ci"},
    }
    return json.dumps({"events": [event]}, indent=3).encode()


async def latency(world: Harness, base: str, events: int, pipelines: int) -> list[float]:
    """Seconds from POSTing a registry push to the PR record carrying its tag."""
    watcher = await world.bus.prs.watch("pr.*")
    samples = []
    async with aiohttp.ClientSession() as session:
        for n in range(events):
            name, tag = f"p{n % pipelines}", f"1.0.{n}"
            started = time.perf_counter()
            async with session.post(
                f"{base}/hooks/docker-distribution",
                data=push(name, tag, n),
                headers={"Content-Type": ENVELOPE},
            ) as response:
                assert response.status == 202, await response.text()
            while True:
                entry = await watcher.updates(timeout=30)  # type: ignore[no-untyped-call]
                if entry is not None and entry.value and f'"api":"{tag}"' in entry.value.decode():
                    break
            samples.append(time.perf_counter() - started)
    await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: no annotations
    return samples


async def intake(base: str, deliveries: int, clients: int) -> tuple[float, list[float]]:
    """Deliveries/s the gateway verifies and publishes, and each request's seconds."""
    times: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(deliveries):
        queue.put_nowait(100_000 + n)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(
                f"{base}/hooks/docker-distribution",
                data=push(f"p{n % 20}", f"3.0.{n}", n),
                headers={"Content-Type": ENVELOPE},
            ) as response:
                assert response.status == 202, await response.text()
            times.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return deliveries / (time.perf_counter() - started), times


async def main() -> None:
    """Run both measurements and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--pipelines", type=int, default=20)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    configure_logging("error", "console")
    with tempfile.TemporaryDirectory() as tmp:
        world = await _world(Path(tmp), APPROVAL_DEV, args.pipelines)
        gateway = Gateway(world.bus, {}, utc_now)
        try:
            async with serve(gateway, "127.0.0.1", 0) as port:
                base = f"http://127.0.0.1:{port}"
                samples = await latency(world, base, args.events, args.pipelines)
                print(
                    f"webhook POST -> PR opened: n={len(samples)} "
                    f"p50={statistics.median(samples) * 1000:.0f} ms "
                    f"p99={percentile(samples, 99) * 1000:.0f} ms "
                    f"max={max(samples) * 1000:.0f} ms"
                )
                await world.stop_workers()
                rate, times = await intake(base, args.deliveries, args.clients)
                print(
                    f"gateway intake ({args.deliveries} pushes, {args.clients} clients): "
                    f"{rate:.0f} deliveries/s, p50={statistics.median(times) * 1000:.1f} ms "
                    f"p99={percentile(times, 99) * 1000:.1f} ms"
                )
        finally:
            await world.close()


if __name__ == "__main__":
    asyncio.run(main())
