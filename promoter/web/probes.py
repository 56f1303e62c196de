"""Liveness and readiness: NATS connected, consumer bound, repositories reachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from promoter.errors import PromoterError
from promoter.runtime.bus import Bus

__all__ = ["Reachability", "Readiness"]

log = structlog.get_logger(__name__)

Probe = Callable[[str, str], str | None]
"""Checks one repository (url, branch): None if reachable, else what is wrong."""


@dataclass
class Reachability:
    """Checks every distinct repository in the background; remembers the last verdicts.

    One `git ls-remote` per repository and branch every `interval` seconds, at most
    `parallel` at a time, so a thousand pipelines on one gitops repository cost one check.
    """

    repositories: set[tuple[str, str]]
    probe: Probe
    interval: float = 60.0
    parallel: int = 8
    problems: dict[str, str] = field(default_factory=dict)
    checked_at: float | None = None

    @property
    def checked(self) -> bool:
        """Whether every repository has been checked at least once."""
        return self.checked_at is not None

    async def check_once(self) -> None:
        """Check every repository now."""
        limit = asyncio.Semaphore(self.parallel)
        problems: dict[str, str] = {}

        async def one(url: str, branch: str) -> None:
            async with limit:
                try:
                    problem = await asyncio.to_thread(self.probe, url, branch)
                except PromoterError as exc:
                    problem = str(exc)
            if problem is not None:
                problems[f"{url}#{branch}"] = problem

        await asyncio.gather(*(one(u, b) for u, b in sorted(self.repositories)))
        if problems.keys() != self.problems.keys():
            report = log.warning if problems else log.info
            report("repository reachability changed", unreachable=sorted(problems))
        self.problems = problems
        self.checked_at = time.monotonic()

    async def run(self) -> None:
        """Check every `interval` seconds until cancelled."""
        while True:
            try:
                await self.check_once()
            except Exception:  # the last verdicts stand; the next round tries again
                log.warning("checking the repositories failed", exc_info=True)
            await asyncio.sleep(self.interval)


@dataclass
class Readiness:
    """What `/readyz` reports; every part must hold for the process to take traffic."""

    bus: Bus
    consumer_bound: Callable[[], bool] | None = None
    reachability: Reachability | None = None

    def checks(self) -> dict[str, str]:
        """Each check's verdict: "ok" or what is wrong."""
        out = {"nats": "ok" if self.bus.connected else "disconnected"}
        if self.consumer_bound is not None:
            out["consumer"] = "ok" if self.consumer_bound() else "not bound"
        if self.reachability is not None:
            out["repositories"] = _repositories(self.reachability)
        return out


def _repositories(reach: Reachability) -> str:
    if not reach.checked:
        return "not checked yet"
    if not reach.problems:
        return "ok"
    first = next(iter(sorted(reach.problems.items())))
    more = f" (and {len(reach.problems) - 1} more)" if len(reach.problems) > 1 else ""
    return f"unreachable: {first[0]}: {first[1]}{more}"
