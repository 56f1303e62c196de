"""Background duties of a worker: follow every pipeline record, dead-letter exhausted events."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime

import structlog
from nats.aio.msg import Msg
from nats.js.kv import KeyValue

from promoter.core.events import parse_event
from promoter.core.observations import observe_event
from promoter.core.router import Router
from promoter.errors import EventError
from promoter.runtime.bus import CONSUMER, EVENTS_STREAM, Bus, event_msg_id
from promoter.runtime.metrics import DEAD_LETTERS
from promoter.runtime.report import compiled_pipelines
from promoter.runtime.store import Record, StateStore
from promoter.runtime.timers import Timers

__all__ = ["dead_letter_exhausted", "watch_records"]

log = structlog.get_logger(__name__)


async def watch_records(
    state: KeyValue, timers: Timers, lease_ttl: float, stopping: asyncio.Event
) -> None:
    """Learn timers and outboxes written by other workers (and left behind by dead ones)."""
    while not stopping.is_set():
        watcher = None
        try:
            watcher = await state.watchall()
            async for entry in watcher:
                if entry is None or not entry.value:
                    continue
                try:
                    record = Record.model_validate_json(entry.value)
                except ValueError:
                    log.warning("unreadable pipeline record ignored", key=entry.key)
                    continue
                timers.observe(record, lease_ttl)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.info("record watch interrupted; restarting", exc_info=True)
            await asyncio.sleep(0.5)
        finally:
            if watcher is not None:
                with contextlib.suppress(Exception):
                    await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py: no annotations


async def dead_letter_exhausted(bus: Bus) -> None:
    """Dead-letter events the server gave up on (the MAX_DELIVERIES advisory).

    This catches what settling cannot: an event whose last delivery was never settled, for
    example because it crashed the worker each time. An event every pipeline it concerns has
    already planned is not lost (its outbox is in their records, which any worker finishes), so
    it is not dead-lettered. One worker of the queue group handles each advisory; the DLQ
    record is deduplicated by stream sequence.
    """
    subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{EVENTS_STREAM}.{CONSUMER}"
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    async def received(msg: Msg) -> None:
        await queue.put(msg.data)

    sub = await bus.nc.subscribe(subject, queue="promoter-dlq", cb=received)
    try:
        while True:
            advisory = json.loads(await queue.get())
            await _exhausted(bus, int(advisory["stream_seq"]), int(advisory["deliveries"]))
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _exhausted(bus: Bus, seq: int, deliveries: int) -> None:
    try:
        stored = await bus.js.get_msg(EVENTS_STREAM, seq)
    except Exception:  # noqa: BLE001 (the event may have aged out of the stream)
        log.warning("exhausted event is gone from the stream", stream_seq=seq)
        return
    if await _planned_everywhere(bus, stored.data or b""):
        log.info("exhausted event was planned already; its outbox is carried out", stream_seq=seq)
        return
    reason = f"not processed after {deliveries} deliveries (the worker failed or stopped each time)"
    log.warning("event dead-lettered", reason=reason, stream_seq=seq)
    DEAD_LETTERS.labels(cause="max_deliveries").inc()
    await bus.dead_letter(
        reason,
        subject=stored.subject or "",
        data=stored.data or b"",
        seq=seq,
        deliveries=deliveries,
    )


async def _planned_everywhere(bus: Bus, data: bytes) -> bool:
    """Whether every pipeline the event concerns has its key among the events it planned."""
    try:
        event = parse_event(data)
    except EventError:
        return False
    router = Router((await compiled_pipelines(bus)).values())
    names = router.route(observe_event(event, datetime.now(UTC)))
    key = event_msg_id(event.source, event.id)
    store = StateStore(bus.state, bus.js)
    for name in names:
        if not await store.planned(name, [key]):
            return False
    return bool(names)
