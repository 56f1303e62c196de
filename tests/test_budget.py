"""The shared GitHub write budget: a token bucket in NATS KV that no set of workers can overrun."""

from __future__ import annotations

import asyncio

import pytest
from github_world import VirtualTime

from promoter.errors import TransientError
from promoter.runtime.budget import KvTokenBucket, Rate, github_rates
from promoter.runtime.bus import Bus


def most_in_window(times: list[float], window: float) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_many_takers_never_exceed_the_minute_and_hour_limits(bus: Bus) -> None:
    time = VirtualTime()
    takes: list[float] = []
    rates = github_rates(60, 450)

    def bucket() -> KvTokenBucket:
        return KvTokenBucket(
            bus.budget, "github.test", rates, max_wait=3600, clock=time.clock, sleep=time.sleep
        )

    async def worker(count: int) -> None:
        mine = bucket()  # each worker has its own object, as separate processes would
        for _ in range(count):
            await mine.take()
            takes.append(time.now)

    await asyncio.gather(*(worker(60) for _ in range(5)))
    assert len(takes) == 300
    assert most_in_window(takes, 60) <= 70  # GitHub's secondary limit is 80 a minute
    assert most_in_window(takes, 3600) <= 495  # and 500 an hour


async def test_a_full_bucket_allows_a_burst_then_paces(bus: Bus) -> None:
    time = VirtualTime()
    bucket = KvTokenBucket(
        bus.budget, "github.burst", [Rate(5, 1.0)], clock=time.clock, sleep=time.sleep
    )
    start = time.now
    for _ in range(5):
        await bucket.take()
    assert time.now == start
    await bucket.take()
    assert time.now == pytest.approx(start + 1.0)


async def test_a_wait_longer_than_max_wait_is_a_transient_error(bus: Bus) -> None:
    time = VirtualTime()
    bucket = KvTokenBucket(
        bus.budget, "github.slow", [Rate(1, 0.01)], max_wait=5, clock=time.clock, sleep=time.sleep
    )
    await bucket.take()
    with pytest.raises(TransientError, match=r"write budget github\.slow is spent"):
        await bucket.take()


def test_a_rate_must_make_sense() -> None:
    with pytest.raises(ValueError, match="capacity >= 1"):
        Rate(0, 1.0)
