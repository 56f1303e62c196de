"""The JetStream bus: connection, streams, KV buckets, and publishing events with dedup ids."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError, ServiceUnavailableError
from nats.js.kv import KeyValue

from promoter.core.events import subject_for
from promoter.errors import TransientError

__all__ = [
    "AUDIT_STREAM",
    "CONSUMER",
    "DLQ_STREAM",
    "EVENTS_STREAM",
    "Bus",
    "BusOptions",
    "connect",
    "event_msg_id",
    "kv_values",
    "read_pending",
    "servers",
]

log = structlog.get_logger(__name__)

_READER_LINGER = 2.0  # seconds an abandoned one-pass reader stays on the server
_KV_REMOVED = frozenset({"KV-Operation", "Nats-Marker-Reason"})  # a delete, purge or expiry
_READ_TIMEOUT = 10.0  # seconds to wait for the next messages of a one-pass read

EVENTS_STREAM = "PROMOTER_EVENTS"
DLQ_STREAM = "PROMOTER_DLQ"
AUDIT_STREAM = "PROMOTER_AUDIT"
CONSUMER = "promoter-worker"
STATE_BUCKET = "promoter-state"
LEASE_BUCKET = "promoter-leases"
PR_BUCKET = "promoter-prs"
PIPELINE_BUCKET = "promoter-pipelines"
BUDGET_BUCKET = "promoter-budget"

_DAY = 86400.0
CONNECT_WAIT = 10.0
LAYOUT_WAIT = 30.0
_REASON_LIMIT = 2000
_DLQ_HEADROOM = 4096  # the record's other fields and headers; the data gets the rest


def _cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` characters and a note of how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass(frozen=True)
class BusOptions:
    """Stream and consumer settings (from Settings; tests shorten the times)."""

    ack_wait: float = 30.0
    max_deliver: int = 10
    dedup_window: float = 120.0
    event_retention_days: float = 30.0
    replicas: int = 1


@dataclass
class Bus:
    """A connection with the streams and buckets promoter uses."""

    nc: Client
    js: JetStreamContext
    state: KeyValue
    leases: KeyValue
    prs: KeyValue
    pipelines: KeyValue
    budget: KeyValue
    options: BusOptions

    @property
    def connected(self) -> bool:
        """Whether the connection to NATS is up right now."""
        return bool(self.nc.is_connected)

    async def publish_event(self, event: dict[str, Any]) -> bool:
        """Publish a CloudEvent on its subject; True if stored, False if a duplicate."""
        subject = subject_for(str(event["type"]))
        ack = await self.js.publish(
            subject,
            json.dumps(event, separators=(",", ":")).encode(),
            headers={"Nats-Msg-Id": event_msg_id(str(event["source"]), str(event["id"]))},
            stream=EVENTS_STREAM,
        )
        return not ack.duplicate

    async def dead_letter(
        self, reason: str, *, subject: str, data: bytes, seq: int, deliveries: int
    ) -> None:
        """Record an event that cannot be processed in PROMOTER_DLQ, with why.

        The record fits in one NATS message: a reason or data too long for it is cut, and
        `truncated` says how many bytes the event had (it stays in PROMOTER_EVENTS at
        `stream_seq`).
        """
        body: dict[str, Any] = {
            "reason": _cut(reason, _REASON_LIMIT),
            "subject": subject,
            "stream_seq": seq,
            "deliveries": deliveries,
            "at": datetime.now(UTC).isoformat(),
            "data": data.decode("utf-8", "replace"),
        }
        encoded = json.dumps(body).encode()
        room = self.nc.max_payload - _DLQ_HEADROOM
        if len(encoded) > room:
            text, body["data"], body["truncated"] = body["data"], "", len(data)
            # JSON writes a character in at most 12 bytes (a surrogate pair of \u escapes)
            body["data"] = text[: max(room - len(json.dumps(body)), 0) // 12]
            encoded = json.dumps(body).encode()
        await self.js.publish(
            "promoter.dlq." + subject.removeprefix("promoter.events."),
            encoded,
            headers={"Nats-Msg-Id": f"dlq-{seq}"},
            stream=DLQ_STREAM,
        )

    async def audit(self, pipeline: str, seq: int, entry: dict[str, Any]) -> None:
        """Append one decision record to PROMOTER_AUDIT (deduplicated by pipeline and seq)."""
        await self.js.publish(
            f"promoter.audit.{pipeline}",
            json.dumps(entry, separators=(",", ":")).encode(),
            headers={"Nats-Msg-Id": f"audit {pipeline} {seq}"},
            stream=AUDIT_STREAM,
        )

    async def close(self) -> None:
        """Flush and close the connection."""
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except Exception:
            log.info("drain failed; closing", exc_info=True)
            await self.nc.close()


async def kv_keys(js: JetStreamContext, bucket: str, prefix: str = "") -> list[str]:
    """Keys of a KV bucket (starting with `prefix`), sorted; deleted keys may be included.

    nats-py's `KeyValue.keys()` creates an ephemeral consumer per call that outlives the call;
    polled (as `status` is), they reach the server's consumer limit. Stream info lists the
    subjects without creating anything.
    """
    head = f"$KV.{bucket}."
    info = await js.stream_info(f"KV_{bucket}", subjects_filter=f"{head}{prefix}>")
    return sorted(subject.removeprefix(head) for subject in (info.state.subjects or {}))


async def read_pending(
    js: JetStreamContext, stream: str, subject: str, deliver: DeliverPolicy, start: int = 0
) -> list[Msg]:
    """The messages of `stream` on `subject` a new consumer would deliver now, in order.

    One ephemeral pull consumer, removed afterwards (a request per message would cost a round
    trip each). Its pending count is known before anything is delivered, so nothing is missed
    and the read ends without waiting for a timeout (nats-py's KV watcher can signal "no more"
    while the first values are still on their way).
    """
    sub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=deliver,
            opt_start_seq=start or None,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_READER_LINGER,
            mem_storage=True,
        ),
    )
    msgs: list[Msg] = []
    try:
        wanted = (await sub.consumer_info()).num_pending or 0
        while len(msgs) < wanted:
            msgs += await sub.fetch(min(wanted - len(msgs), 256), timeout=_READ_TIMEOUT)
    except nats.errors.TimeoutError:
        raise TransientError(
            f"reading {subject} from {stream} timed out after {_READ_TIMEOUT:g}s; "
            "is NATS reachable? Try again"
        ) from None
    finally:
        with contextlib.suppress(Exception):  # else it expires after _READER_LINGER seconds
            await js.delete_consumer(stream, (await sub.consumer_info()).name)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return msgs


async def kv_values(js: JetStreamContext, bucket: str, keys: str = ">") -> dict[str, bytes]:
    """The current value of every key of `bucket` matching `keys`, read in one pass."""
    head = f"$KV.{bucket}."
    msgs = await read_pending(js, f"KV_{bucket}", f"{head}{keys}", DeliverPolicy.LAST_PER_SUBJECT)
    return {
        msg.subject.removeprefix(head): msg.data
        for msg in msgs
        if msg.data and not (msg.headers or {}).keys() & _KV_REMOVED
    }


def servers(url: str) -> list[str]:
    """The server URLs in `url`: one, or several separated by commas (a cluster's seeds)."""
    return [part.strip() for part in url.split(",") if part.strip()]


def redact_url(url: str) -> str:
    """`url` without the password or token in its user part."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def event_msg_id(source: str, event_id: str) -> str:
    """The Nats-Msg-Id of an event: its CloudEvent source and id, so re-publishing dedupes."""
    return f"{source} {event_id}"


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(str(config.name))
    except NotFoundError:
        await js.add_stream(config)


async def _ensure_bucket(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    try:
        return await js.key_value(config.bucket)
    except BucketNotFoundError:
        return await js.create_key_value(config)


async def _ensure_layout(js: JetStreamContext, options: BusOptions) -> None:
    file, replicas = StorageType.FILE, options.replicas
    await _ensure_stream(
        js,
        StreamConfig(
            name=EVENTS_STREAM,
            description="promoter input events (CloudEvents); Nats-Msg-Id = source + id",
            subjects=["promoter.events.>"],
            storage=file,
            num_replicas=replicas,
            duplicate_window=options.dedup_window,
            max_age=options.event_retention_days * _DAY,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=DLQ_STREAM,
            description="events promoter could not process, with the reason",
            subjects=["promoter.dlq.>"],
            storage=file,
            num_replicas=replicas,
            duplicate_window=options.dedup_window,
        ),
    )
    await _ensure_stream(
        js,
        StreamConfig(
            name=AUDIT_STREAM,
            description="one record per promoter decision",
            subjects=["promoter.audit.>"],
            storage=file,
            num_replicas=replicas,
            duplicate_window=3600.0,
            discard=DiscardPolicy.OLD,
        ),
    )
    await js.add_consumer(
        EVENTS_STREAM,
        ConsumerConfig(
            durable_name=CONSUMER,
            description="promoter workers share this durable pull consumer",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=options.ack_wait,
            max_deliver=options.max_deliver,
            filter_subject="promoter.events.>",
            max_ack_pending=1000,
        ),
    )


async def connect(url: str, *, name: str, options: BusOptions | None = None) -> Bus:
    """Connect (reconnecting forever), create missing streams and buckets, return the Bus."""
    options = options or BusOptions()

    async def error(exc: Exception) -> None:
        log.info("nats connection problem", url=redact_url(url), error=str(exc) or repr(exc))

    async def disconnected() -> None:
        log.debug("nats disconnected", url=redact_url(url))  # also on every normal close

    async def reconnected() -> None:
        log.info("nats reconnected", url=redact_url(url))

    try:
        # Reconnect forever once connected; but a first connection that cannot be made within
        # CONNECT_WAIT is an error to report, not a loop to sit in.
        nc = await asyncio.wait_for(
            nats.connect(
                servers(url),
                name=name,
                connect_timeout=2,
                reconnect_time_wait=0.2,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                drain_timeout=5,
                error_cb=error,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
            ),
            CONNECT_WAIT,
        )
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise TransientError(
            f"cannot reach NATS at {redact_url(url)}: {str(exc) or 'no answer'}; check "
            "PROMOTER_NATS_URL / --nats-url, or leave both unset to use the embedded server"
        ) from None
    js = nc.jetstream(timeout=5)
    return await _layout_when_available(nc, js, options, redact_url(url))


async def _layout(nc: Client, js: JetStreamContext, options: BusOptions) -> Bus:
    """Create missing streams, the consumer and the buckets; the Bus over them."""
    await _ensure_layout(js, options)
    file = StorageType.FILE

    def bucket(name: str, description: str, history: int = 1) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=name,
            description=description,
            history=history,
            storage=file,
            replicas=options.replicas,
        )

    return Bus(
        nc=nc,
        js=js,
        state=await _ensure_bucket(js, bucket(STATE_BUCKET, "pipeline state + outbox")),
        leases=await _ensure_bucket(js, bucket(LEASE_BUCKET, "per-pipeline worker leases")),
        prs=await _ensure_bucket(js, bucket(PR_BUCKET, "local PR provider records", 5)),
        pipelines=await _ensure_bucket(js, bucket(PIPELINE_BUCKET, "pipelines workers run")),
        budget=await _ensure_bucket(js, bucket(BUDGET_BUCKET, "shared API write budgets")),
        options=options,
    )


def _electing(exc: Exception) -> bool:
    """Whether JetStream failed as it does while a cluster elects leaders (it passes in seconds).

    A 503 without an error code is "no responders": this server has no JetStream at all.
    """
    if isinstance(exc, ServiceUnavailableError):
        return exc.err_code is not None
    return isinstance(exc, TimeoutError)


async def _layout_when_available(
    nc: Client, js: JetStreamContext, options: BusOptions, url: str
) -> Bus:
    """`_layout`, retried for up to LAYOUT_WAIT while JetStream elects leaders."""
    deadline = asyncio.get_running_loop().time() + LAYOUT_WAIT
    while True:
        try:
            return await _layout(nc, js, options)
        except (TimeoutError, ServiceUnavailableError) as exc:
            if not _electing(exc) or asyncio.get_running_loop().time() >= deadline:
                await nc.close()
                raise TransientError(
                    f"NATS at {url} answers but JetStream does not "
                    f"({str(exc) or type(exc).__name__}); is JetStream enabled, and does the "
                    "cluster have a quorum?"
                ) from None
            log.info("JetStream not available yet; retrying", url=url, error=repr(exc))
            await asyncio.sleep(0.5)
