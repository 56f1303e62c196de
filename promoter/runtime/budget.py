"""A write budget shared by every worker: a token bucket in NATS KV, changed by compare-and-set."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from promoter.errors import TransientError
from promoter.runtime.metrics import GITHUB_WRITE_BUDGET, cas_conflict

__all__ = ["KvTokenBucket", "Rate", "github_rates"]

log = structlog.get_logger(__name__)

_CAS_TRIES = 200


@dataclass(frozen=True)
class Rate:
    """One limit: at most `capacity + per_second * T` takes in any window of T seconds."""

    capacity: float
    per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.per_second <= 0:
            raise ValueError(f"a rate needs capacity >= 1 and per_second > 0, not {self}")


def github_rates(per_minute: float, per_hour: float) -> tuple[Rate, Rate]:
    """Two buckets that keep writes under `per_minute + per_minute/6` a minute and the hourly twin.

    With the defaults (60/min, 450/h) no 60 s window sees more than 70 writes and no hour more
    than 495: inside GitHub's secondary limits of 80 content-creating requests a minute and 500
    an hour.
    """
    return (
        Rate(capacity=max(1.0, per_minute / 6), per_second=per_minute / 60),
        Rate(capacity=max(1.0, per_hour / 10), per_second=per_hour / 3600),
    )


class KvTokenBucket:
    """Token buckets (one per `Rate`) stored as one KV entry, so every process shares them.

    `take()` removes a token from each bucket in one compare-and-set, waiting for a refill
    when one is empty; a wait longer than `max_wait` raises TransientError so the caller's
    work is retried later instead of holding a worker.
    """

    def __init__(
        self,
        kv: KeyValue,
        key: str,
        rates: Sequence[Rate],
        *,
        max_wait: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.kv = kv
        self.key = key
        self.rates = tuple(rates)
        self.max_wait = max_wait
        self.clock = clock
        self.sleep = sleep

    async def _load(self) -> tuple[list[float], float, int]:
        try:
            entry = await self.kv.get(self.key)
        except KeyNotFoundError:
            return [r.capacity for r in self.rates], self.clock(), 0
        stored = json.loads(entry.value or b"{}")
        levels = [float(x) for x in stored.get("levels", [])]
        if len(levels) != len(self.rates):  # the limits were reconfigured: start full
            levels = [r.capacity for r in self.rates]
        return levels, float(stored.get("at", self.clock())), int(entry.revision or 0)

    async def _store(self, levels: list[float], at: float, revision: int) -> bool:
        body = json.dumps({"levels": levels, "at": at}).encode()
        try:
            if revision == 0:
                await self.kv.create(self.key, body)
            else:
                await self.kv.update(self.key, body, last=revision)
        except KeyWrongLastSequenceError:
            cas_conflict("budget")
            return False
        return True

    async def take(self) -> None:
        """Spend one write; wait for a refill if the budget is empty."""
        waited = 0.0
        for _ in range(_CAS_TRIES):
            levels, at, revision = await self._load()
            now = max(self.clock(), at)
            levels = [
                min(r.capacity, level + (now - at) * r.per_second)
                for level, r in zip(levels, self.rates, strict=True)
            ]
            short = max(
                ((1 - level) / r.per_second for level, r in zip(levels, self.rates, strict=True)),
                default=0.0,
            )
            if short <= 0:
                if await self._store([level - 1 for level in levels], now, revision):
                    GITHUB_WRITE_BUDGET.set(min(levels) - 1)
                    return
                continue
            if waited + short > self.max_wait:
                raise TransientError(
                    f"write budget {self.key} is spent (waited {waited:.0f}s, the next write "
                    f"is {short:.0f}s away); the work will be retried. Raise "
                    "PROMOTER_GITHUB_WRITES_PER_MINUTE / _PER_HOUR only if GitHub allows"
                )
            log.info("write budget empty; waiting", key=self.key, seconds=round(short, 2))
            await self.sleep(short)
            waited += short
        raise TransientError(f"write budget {self.key}: too much contention; try again")
