"""Runs the bench scenarios, each in a fresh world, and collects one result object."""

from __future__ import annotations

import os
import platform
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promoter.bench.floors import git_floor, nats_consume_floor, nats_roundtrip_floor
from promoter.bench.github import github_rounds
from promoter.bench.report import Progress, goals_met
from promoter.bench.scale import scale
from promoter.bench.scenarios import burst, event_to_pr, events_per_s
from promoter.bench.world import BenchWorld

__all__ = ["QUICK", "Sizes", "run_bench"]


@dataclass(frozen=True)
class Sizes:
    """How much each scenario measures (`--quick` shrinks everything but the burst)."""

    samples: int = 100
    rounds: int = 30
    events: int = 10_000
    builds: int = 100
    pipelines: int = 1000
    scale_events: int = 100

    def steps(self, scenarios: list[str]) -> int:
        """Progress units for `scenarios`."""
        per = {
            "floors": 2 * self.samples + 1,
            "latency": self.samples,
            "github": self.rounds,
            "throughput": self.events,
            "burst": self.builds,
            "scale": 2 * self.scale_events,
        }
        return sum(per[s] for s in scenarios)


QUICK = Sizes(samples=20, rounds=5, events=2000, pipelines=100, scale_events=20)
Measure = Callable[[BenchWorld, Sizes, Progress], Awaitable[dict[str, Any]]]


async def _floors(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    return {
        "floor_git_commit_push_ms": await git_floor(world, sizes.samples, progress),
        "floor_nats_roundtrip_ms": await nats_roundtrip_floor(world.bus, sizes.samples, progress),
        "floor_nats_consume_per_s": await nats_consume_floor(world.bus, sizes.events, 32, progress),
    }


async def _latency(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    return {"event_to_pr_ms": await event_to_pr(world, sizes.samples, 20, progress)}


async def _github(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    latency, calls = await github_rounds(world, sizes.rounds, progress)
    return {"event_to_pr_github_ms": latency, "github_calls": calls}


async def _throughput(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    return {"events_per_s": await events_per_s(world, sizes.events, 20, progress)}


async def _burst(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    return {"burst": await burst(world, sizes.builds, progress)}


async def _scale(world: BenchWorld, sizes: Sizes, progress: Progress) -> dict[str, Any]:
    return {"scale": await scale(world, sizes.pipelines, sizes.scale_events, progress)}


_MEASURES: dict[str, Measure] = {
    "floors": _floors, "latency": _latency, "github": _github,
    "throughput": _throughput, "burst": _burst, "scale": _scale,
}  # fmt: skip


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


async def run_bench(scenarios: list[str], sizes: Sizes, progress: Progress) -> dict[str, Any]:
    """Run `scenarios` (each in a fresh world under one temporary directory); the results."""
    results: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="promoter-bench-") as tmp:
        for name in scenarios:
            progress.stage(name)
            world = await BenchWorld(Path(tmp) / name).start()
            try:
                results |= await _MEASURES[name](world, sizes, progress)
            finally:
                await world.close()
    results["goals"] = goals_met(results)
    return results
