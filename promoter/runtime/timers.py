"""When to look at a pipeline again: planner wake-ups (clock time) and retries (monotonic)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from promoter.runtime.options import WorkerOptions
from promoter.runtime.store import Record

__all__ = ["Timers"]

log = structlog.get_logger(__name__)


class Timers:
    """Due visits per pipeline; `run` starts a visit when one comes due."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.wakeups: dict[str, datetime] = {}
        self.retries: dict[str, float] = {}
        self.running: dict[str, asyncio.Task[None]] = {}

    def schedule(self, record: Record) -> None:
        """Follow the record's planner wake-up."""
        if record.wakeup is None:
            self.wakeups.pop(record.pipeline, None)
        else:
            self.wakeups[record.pipeline] = record.wakeup

    def retry(self, name: str, delay: float) -> None:
        """Visit `name` again in `delay` seconds (the earliest request wins)."""
        due = time.monotonic() + delay
        self.retries[name] = min(self.retries.get(name, due), due)

    def done(self, name: str) -> None:
        """The outbox of `name` is empty: no retry needed."""
        self.retries.pop(name, None)

    def observe(self, record: Record, lease_ttl: float) -> None:
        """A record written anywhere: follow its wake-up; finish its outbox if left behind."""
        self.schedule(record)
        if record.outbox and record.pipeline not in self.running:
            self.retry(record.pipeline, lease_ttl)

    def _finished(self, name: str, _task: asyncio.Task[None]) -> None:
        self.running.pop(name, None)

    def _due(self) -> set[str]:
        now, mono = self.clock(), time.monotonic()
        due = {n for n, at in self.wakeups.items() if at <= now}
        due |= {n for n, at in self.retries.items() if at <= mono}
        return {n for n in due if n not in self.running}

    def _sleep(self, options: WorkerOptions) -> float:
        waits = [options.tick_interval]
        if self.retries:
            waits.append(min(self.retries.values()) - time.monotonic())
        if self.wakeups:
            waits.append((min(self.wakeups.values()) - self.clock()).total_seconds())
        return max(0.01, min(waits))

    async def _guarded(
        self, visit: Callable[[str], Awaitable[None]], name: str, options: WorkerOptions
    ) -> None:
        try:
            await visit(name)
        except Exception:
            log.warning("visit failed; will retry", pipeline=name, exc_info=True)
            self.retry(name, options.retry_delay)

    async def run(
        self,
        visit: Callable[[str], Awaitable[None]],
        stopping: asyncio.Event,
        options: WorkerOptions,
    ) -> None:
        """Start visits as they come due until `stopping` is set; then let running ones end."""
        try:
            while not stopping.is_set():
                for name in sorted(self._due()):
                    self.wakeups.pop(name, None)
                    self.retries.pop(name, None)
                    task = asyncio.create_task(self._guarded(visit, name, options))
                    self.running[name] = task
                    task.add_done_callback(functools.partial(self._finished, name))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), self._sleep(options))
        finally:
            if self.running:
                await asyncio.gather(*self.running.values(), return_exceptions=True)
