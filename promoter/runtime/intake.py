"""Event intake: route a fetched batch, plan it per pipeline, settle each message early."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from nats.aio.msg import Msg

from promoter.core.events import parse_event
from promoter.core.observations import Observation, observe_event
from promoter.core.router import Router
from promoter.errors import EventError, PromoterError, RateLimitedError
from promoter.runtime.bus import Bus, event_msg_id
from promoter.runtime.failpoints import Failpoints
from promoter.runtime.metrics import DEAD_LETTERS, EVENTS
from promoter.runtime.options import WorkerOptions
from promoter.runtime.sync import PullSync, Wake

__all__ = ["Intake", "Item"]

log = structlog.get_logger(__name__)

Item = tuple[str | None, Observation]
"""An observation and its event key (None: not an event, e.g. a poll; never deduplicated)."""

Process = Callable[[str, Sequence[Item], datetime | None], Awaitable[bool]]
"""Plans items for one pipeline and records them; True once recorded (`Worker.process`)."""


@dataclass
class Intake:
    """Turns fetched messages into per-pipeline work and acks, naks or dead-letters each one."""

    bus: Bus
    router: Router
    pipelines: frozenset[str]
    process: Process
    options: WorkerOptions
    clock: Callable[[], datetime]
    failpoints: Failpoints
    sync: PullSync | None = None
    processed: int = field(default=0, init=False)

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Plan every message of a fetched batch and carry out effects; settle each one early.

        A message is acked (or nakked) as soon as every pipeline it concerns is done, so a
        slow pipeline holds back only its own events, not the whole batch.
        """
        work: dict[str, list[Item]] = {}
        arrived: dict[str, datetime] = {}  # per pipeline: its earliest event's time in NATS
        waiting: list[tuple[Msg, list[str], str]] = []
        for msg in msgs:
            routed = await self._route(msg)
            if routed is None:
                continue
            key, observation, names, kind = routed
            at = msg.metadata.timestamp
            for name in names:
                work.setdefault(name, []).append((key, observation))
                arrived[name] = min(arrived.get(name, at), at)
            waiting.append((msg, names, kind))
        done: dict[str, bool] = {}

        async def finished(name: str, recorded: bool) -> None:
            done[name] = recorded
            for entry in [w for w in waiting if all(n in done for n in w[1])]:
                if entry in waiting:  # another pipeline's finish may have settled it meanwhile
                    waiting.remove(entry)
                    await self._settle(entry[0], all(done[n] for n in entry[1]), entry[2])

        heartbeat = asyncio.create_task(self._keep_alive(waiting))
        try:
            await self._process_all(work, finished, arrived)
        finally:
            heartbeat.cancel()

    async def _route(self, msg: Msg) -> tuple[str, Observation, list[str], str] | None:
        try:
            event = parse_event(msg.data)
        except EventError as exc:
            await self._dead_letter(msg, str(exc), "invalid", "invalid")
            return None
        observation = observe_event(event, self.clock())
        if self.sync is not None and self.sync.wants(observation):
            woken = await self._wake(msg, observation, event.type)
            if woken is None:
                return None
            observation = woken
        names = [n for n in self.router.route(observation) if n in self.pipelines]
        if not names:
            log.info("no pipeline wants this event", type=event.type, event_id=event.id)
            EVENTS.labels(type=event.type, outcome="ignored").inc()
            await msg.ack()  # nothing to record; a lost ack only brings it back once more
            return None
        return event_msg_id(event.source, event.id), observation, names, event.type

    async def _wake(self, msg: Msg, observation: Wake, kind: str) -> Observation | None:
        """A PR webhook for a GitHub pipeline: what GitHub says now replaces what it said."""
        assert self.sync is not None  # noqa: S101 (only called with a sync)
        pipeline, env = observation.pipeline, observation.environment
        try:
            synced = await self.sync.snapshot(pipeline, env)
        except PromoterError as exc:
            if not exc.retryable:
                reason = f"reading {pipeline}/{env}'s PR failed: {exc}"
                await self._dead_letter(msg, reason, kind, "scm")
                return None
            log.warning("reading the PR failed", pipeline=pipeline, env=env, error=str(exc))
            wait = exc.retry_after if isinstance(exc, RateLimitedError) else 0.0
            EVENTS.labels(type=kind, outcome="retried").inc()
            await msg.nak(delay=max(self.options.retry_delay, wait))
            return None
        if synced is None:
            log.info("the PR event names no PR promoter has", pipeline=pipeline, env=env)
            EVENTS.labels(type=kind, outcome="ignored").inc()
            await msg.ack_sync()
        return synced

    async def _dead_letter(self, msg: Msg, reason: str, kind: str, cause: str) -> None:
        meta = msg.metadata
        log.warning("event dead-lettered", reason=reason, stream_seq=meta.sequence.stream)
        EVENTS.labels(type=kind, outcome="dead_lettered").inc()
        DEAD_LETTERS.labels(cause=cause).inc()
        await self.bus.dead_letter(
            reason,
            subject=msg.subject,
            data=msg.data,
            seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
        )
        await msg.term()

    async def _keep_alive(self, waiting: list[tuple[Msg, list[str], str]]) -> None:
        """Tell the server the messages not settled yet are still being worked on."""
        while True:
            await asyncio.sleep(self.options.ack_wait / 3)
            for msg, _, _ in list(waiting):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    async def _process_all(
        self,
        work: dict[str, list[Item]],
        finished: Callable[[str, bool], Awaitable[None]],
        arrived: dict[str, datetime],
    ) -> None:
        limit = asyncio.Semaphore(self.options.concurrency)

        async def one(name: str, items: list[Item]) -> None:
            async with limit:
                try:
                    recorded = await self.process(name, items, arrived.get(name))
                except Exception:  # one pipeline's crash must not fail the others' events
                    log.exception("planning crashed; its events will be retried", pipeline=name)
                    recorded = False
            await finished(name, recorded)

        await asyncio.gather(*(one(n, i) for n, i in work.items()))

    async def _settle(self, msg: Msg, recorded: bool, kind: str) -> None:
        self.failpoints.hit("before-ack")
        if recorded:
            self.processed += 1
            EVENTS.labels(type=kind, outcome="applied").inc()
            with contextlib.suppress(Exception):  # a lost ack only means a harmless redelivery
                await msg.ack()  # recorded already: the ack need not wait for the server
            return
        if msg.metadata.num_delivered >= self.options.max_deliver:
            await self._dead_letter(
                msg,
                f"gave up after {msg.metadata.num_delivered} deliveries (pipeline busy or failing)",
                kind,
                "gave_up",
            )
            return
        EVENTS.labels(type=kind, outcome="retried").inc()
        await msg.nak(delay=self.options.retry_delay)
