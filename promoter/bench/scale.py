"""The scale scenario: `promoter run` over 1,000 pipelines — startup, memory, per-event cost."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nats.errors

from promoter.bench.report import Progress, summary
from promoter.bench.world import PIPELINE, BenchWorld, environment
from promoter.errors import TransientError
from promoter.runtime.app import utc_now
from promoter.runtime.emit import health_event

__all__ = ["scale"]

_ENVIRONMENTS = ["dev", "staging", "prod"]
_GATED = "{approvals: {count: 1}}"
_TIMED = 10  # pipelines that get the timed events (spread over all of them)


def _write_pipelines(directory: Path, prefix: str, count: int, url: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    envs = "\n".join(
        environment(env, upstream=up, gates=_GATED if env == "prod" else "")
        for env, up in zip(_ENVIRONMENTS, [None, *_ENVIRONMENTS], strict=False)
    )
    for i in range(count):
        name = f"{prefix}{i}"
        text = PIPELINE.format(
            name=name, url=url, image=f"ghcr.io/scale/{name}", environments=envs, extra=""
        )
        (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


def _rss_mb(pid: int) -> float:
    """Peak resident memory of process `pid` in MB (VmHWM; `ps` where there is no /proc)."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    ps = shutil.which("ps") or "ps"
    out = subprocess.run(
        [ps, "-o", "rss=", "-p", str(pid)], check=False, capture_output=True, text=True
    )
    return round(int(out.stdout.strip() or 0) / 1024, 1)


class _Records:
    """Watches the state bucket: which pipeline records changed, and when."""

    def __init__(self, world: BenchWorld) -> None:
        self.world = world
        self.seen: dict[str, int] = {}

    async def start(self) -> _Records:
        self.watcher = await self.world.bus.state.watch("pipeline.*")
        return self

    async def changed(self, pipeline: str, within: float = 60.0) -> None:
        """Wait for the next write of `pipeline`'s record."""
        key, before = f"pipeline.{pipeline}", self.seen.get(f"pipeline.{pipeline}", 0)
        deadline = time.monotonic() + within
        while self.seen.get(key, 0) <= before:
            if time.monotonic() > deadline:
                raise TransientError(
                    f"{pipeline}'s record was not written within {within:g} s; run again"
                )
            try:
                entry = await self.watcher.updates(timeout=1.0)  # type: ignore[no-untyped-call]
            except nats.errors.TimeoutError:
                continue
            if entry is not None:
                self.seen[entry.key] = int(entry.revision or 0)

    async def stop(self) -> None:
        await self.watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: no annotations


async def _health(world: BenchWorld, pipeline: str, n: int) -> None:
    event = health_event(pipeline, "dev", "healthy", {}, f"probe {n}", now=utc_now())
    await world.bus.publish_event(event)


async def _run_worker(
    world: BenchWorld, prefix: str, count: int, events: int, progress: Progress
) -> dict[str, Any]:
    """Start `promoter run` over `count` pipelines; time its first event, then `events` more."""
    directory = world.root / f"scale-{prefix}"
    _write_pipelines(directory, prefix, count, str(world.root / "scale.git"))
    records = await _Records(world).start()
    env = {**os.environ, "PROMOTER_LOG_FORMAT": "json", "PROMOTER_LOG_LEVEL": "warning"}
    state = str(world.root / f"state-{prefix}")
    argv = [sys.executable, "-m", "promoter", "run", "--pipelines", str(directory),
            "--nats-url", world.server.url, "--state-dir", state]  # fmt: skip
    await _health(world, f"{prefix}0", 0)
    started = time.perf_counter()
    child = subprocess.Popen(  # noqa: ASYNC220 (started, never waited on here)
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await records.changed(f"{prefix}0")
        startup = time.perf_counter() - started
        # the same 10 pipelines get the events at any scale, each touched once first: what
        # differs between the runs is only how many pipelines the worker holds
        step = max(1, count // _TIMED)
        names = [f"{prefix}{i * step}" for i in range(min(_TIMED, count))]
        for n, name in enumerate(names, start=1):
            await _health(world, name, -n)
            await records.changed(name)
        seconds = []
        for n in range(1, events + 1):
            name = names[n % len(names)]
            sent = time.perf_counter()
            await _health(world, name, n)
            await records.changed(name)
            seconds.append(time.perf_counter() - sent)
            progress.step()
        rss = _rss_mb(child.pid)
    finally:
        await records.stop()
        child.terminate()
        await asyncio.to_thread(child.wait, 30)
    return {"startup_s": round(startup, 2), "rss_mb": rss, "event_ms_p50": summary(seconds)["p50"]}


async def scale(
    world: BenchWorld, pipelines: int, events: int, progress: Progress
) -> dict[str, Any]:
    """`pipelines` x 3 environments in one `promoter run`, beside a 10-pipeline baseline."""
    world.remote("scale", _ENVIRONMENTS)
    big = await _run_worker(world, "s", pipelines, events, progress)
    small = await _run_worker(world, "b", 10, events, progress)
    return {
        "pipelines": pipelines,
        "environments": len(_ENVIRONMENTS),
        **big,
        "baseline_event_ms_p50": small["event_ms_p50"],
    }
