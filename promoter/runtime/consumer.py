"""The pull loop: fetch batches, survive reconnects, and re-subscribe when a pull goes silent."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from promoter.runtime.bus import CONSUMER, EVENTS_STREAM, Bus
from promoter.runtime.options import WorkerOptions

__all__ = ["Consumer"]

log = structlog.get_logger(__name__)

Handler = Callable[[list[Msg]], Awaitable[None]]


class Consumer:
    """Fetches from the shared durable consumer until `stopping` is set.

    nats-py pull subscriptions can stay subscribed yet receive nothing after a server restart
    (nats.py #504): when fetches stay empty for `stall_after` seconds while the consumer reports
    pending messages, the subscription is dropped and bound again.
    """

    def __init__(self, bus: Bus, options: WorkerOptions, stopping: asyncio.Event) -> None:
        self.bus = bus
        self.options = options
        self.stopping = stopping
        self.bound = False  # subscribed, and the last fetch did not fail

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        return await self.bus.js.pull_subscribe_bind(durable=CONSUMER, stream=EVENTS_STREAM)

    async def _stalled(self, sub: JetStreamContext.PullSubscription) -> bool:
        try:
            info = await sub.consumer_info()
        except Exception:  # noqa: BLE001 (no answer while reconnecting: treat as stalled)
            return True
        return bool(info.num_pending)

    async def run(self, handler: Handler) -> None:
        """Fetch and hand batches to `handler` until stopped."""
        sub: JetStreamContext.PullSubscription | None = None
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            try:
                if sub is None:
                    sub = await self._subscribe()
                    self.bound = True
                msgs = await sub.fetch(self.options.batch, timeout=self.options.fetch_timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                msgs = []  # nothing to fetch right now
            except Exception as exc:  # noqa: BLE001 (disconnects surface as many error types)
                log.info("fetch failed; re-subscribing", error=repr(exc))
                self.bound = False
                await self._drop(sub)
                sub = None
                await asyncio.sleep(0.2)
                continue
            if msgs:
                idle_since = time.monotonic()
                try:
                    await handler(msgs)
                except Exception:
                    log.exception("batch failed; its messages will be redelivered")
                continue
            if time.monotonic() - idle_since > self.options.stall_after:
                idle_since = time.monotonic()
                if sub is not None and await self._stalled(sub):
                    log.warning("pull subscription went silent; re-subscribing")
                    self.bound = False
                    await self._drop(sub)
                    sub = None
        self.bound = False
        await self._drop(sub)

    async def _drop(self, sub: JetStreamContext.PullSubscription | None) -> None:
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)
