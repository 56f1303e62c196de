"""Pipeline records in JetStream KV (compare-and-set) and per-pipeline leases.

Concurrency, written down: a worker must hold a pipeline's **lease** to plan or carry out
effects for it, so two workers never interleave on one pipeline. Leases expire (a SIGKILLed
worker's lease lapses after `lease_ttl`), so every record write is also a **compare-and-set** on
the revision the worker read: a worker that lost its lease without noticing fails its write and
drops its work instead of overwriting a newer record. Effects are idempotent (deterministic
branches, adopted PRs, merges that notice they already happened), so redoing an effect that a
dead worker had started is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from promoter.core.observations import Action
from promoter.core.state import Bundle, PipelineState
from promoter.errors import TransientError
from promoter.runtime.bus import STATE_BUCKET, kv_values
from promoter.runtime.metrics import cas_conflict

__all__ = ["Effect", "Lease", "Leases", "PullRef", "Record", "StaleRecordError", "StateStore"]

_APPLIED_KEPT = 1000


class StaleRecordError(TransientError):
    """Another worker wrote the record first; re-read it and decide again."""


class Effect(BaseModel):
    """A decision waiting in a pipeline's outbox to be carried out."""

    model_config = ConfigDict(extra="forbid")

    seq: int = Field(description="Decision number within the pipeline; the audit record id.")
    action: Action
    environment: str
    bundle: Bundle | None
    reason: str
    at: datetime
    head: str | None = Field(
        default=None, description="merge: the PR head the approvals were given on."
    )
    attempts: int = 0
    error: str | None = None


class PullRef(BaseModel):
    """The PR currently carrying an environment's pending bundle."""

    model_config = ConfigDict(extra="forbid")

    number: int
    url: str
    head: str
    bundle: str
    gates: dict[str, str] | None = Field(
        default=None, description="What the PR's gates status says (None: not known)."
    )


class Record(BaseModel):
    """Everything stored for one pipeline: planner state, outbox, and bookkeeping."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str
    state: PipelineState = Field(default_factory=PipelineState)
    outbox: list[Effect] = Field(default_factory=list)
    applied: list[str] = Field(default_factory=list, description="Event keys already planned.")
    decisions: int = 0
    wakeup: datetime | None = None
    prs: dict[str, PullRef] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict, description="env -> failed effect")
    updated_at: datetime | None = None

    def mark_applied(self, key: str) -> None:
        """Remember that the event `key` was planned (bounded)."""
        self.applied = [*self.applied, key][-_APPLIED_KEPT:]


def _key(pipeline: str) -> str:
    return f"pipeline.{pipeline}"


class StateStore:
    """Records keyed by pipeline name, written only with compare-and-set."""

    def __init__(self, kv: KeyValue, js: JetStreamContext) -> None:
        self.kv = kv
        self.js = js

    async def load(self, pipeline: str) -> tuple[Record, int]:
        """The record and its revision (0: none stored yet)."""
        try:
            entry = await self.kv.get(_key(pipeline))
        except KeyNotFoundError:
            return Record(pipeline=pipeline), 0
        if entry.value is None:
            return Record(pipeline=pipeline), 0
        return Record.model_validate_json(entry.value), int(entry.revision or 0)

    async def planned(self, pipeline: str, keys: Iterable[str | None]) -> bool:
        """Whether the pipeline's record lists every one of these event keys (None: never)."""
        record, _ = await self.load(pipeline)
        return all(key is not None and key in record.applied for key in keys)

    async def save(self, record: Record, revision: int) -> int:
        """Write if the stored revision is still `revision`; StaleRecordError otherwise."""
        body = record.model_dump_json().encode()
        try:
            if revision == 0:
                return int(await self.kv.create(_key(record.pipeline), body))
            return int(await self.kv.update(_key(record.pipeline), body, last=revision))
        except KeyWrongLastSequenceError:
            cas_conflict("state")
            raise StaleRecordError(f"pipeline {record.pipeline}: record changed under us") from None

    async def all(self) -> list[Record]:
        """Every stored record."""
        values = await kv_values(self.js, STATE_BUCKET, "pipeline.>")
        return [Record.model_validate_json(body) for _, body in sorted(values.items())]


class Lease:
    """A held lease; renew it while working, release it when done."""

    def __init__(self, leases: Leases, name: str, revision: int) -> None:
        self.leases = leases
        self.name = name
        self.revision = revision
        self.written = leases.now()

    async def renew(self) -> bool:
        """Extend the lease once a third of its time is used; False if it was lost meanwhile."""
        if self.leases.now() - self.written < self.leases.ttl / 3:
            return True  # the record's compare-and-set catches a takeover in between
        try:
            self.revision = await self.leases.write(self.name, self.revision)
        except KeyWrongLastSequenceError:
            cas_conflict("leases")
            return False
        self.written = self.leases.now()
        return True

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Renew the lease in the background while the block runs.

        One effect (a slow push, a merge with retries) may outlast the TTL, and another worker
        must not take the pipeline over while it runs.
        """
        done = asyncio.Event()

        async def beat() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), self.leases.ttl / 3)
                if done.is_set() or not await self.renew():
                    return  # a lost lease is caught by the record's compare-and-set

        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            done.set()
            await task  # never cancelled mid-write: the revision must stay known

    async def release(self) -> None:
        """Give the lease up (if still ours): it is marked expired, not deleted.

        Keeping the key lets the next `acquire` on this worker write over the revision it
        remembers, one round trip instead of a read and a create.
        """
        with contextlib.suppress(KeyWrongLastSequenceError):  # taken over: not ours to give up
            revision = await self.leases.write(self.name, self.revision, expires=0.0)
            self.leases.released[self.name] = revision


class Leases:
    """Expiring, owner-tagged leases in a KV bucket (wall-clock expiry, CAS transitions)."""

    def __init__(
        self, kv: KeyValue, owner: str, ttl: float, now: Callable[[], float] = time.time
    ) -> None:
        self.kv = kv
        self.owner = owner
        self.ttl = ttl
        self.now = now
        self.released: dict[str, int] = {}  # name -> revision of our own release

    async def write(self, name: str, revision: int, expires: float | None = None) -> int:
        """Write our lease on `name` over `revision` (0: must not exist), expiring at `expires`."""
        until = self.now() + self.ttl if expires is None else expires
        body = json.dumps({"owner": self.owner, "expires": until}).encode()
        if revision == 0:
            return int(await self.kv.create(name, body))
        return int(await self.kv.update(name, body, last=revision))

    async def acquire(self, name: str) -> Lease | None:
        """Take the lease on `name` if it is free or expired; None if busy (even if held by us).

        Not re-entrant: two tasks of one worker exclude each other like two workers do. A lease
        this worker released is retaken by writing over the revision it left, unread.
        """
        released = self.released.pop(name, None)
        if released is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):  # changed since: read it
                return Lease(self, name, await self.write(name, released))
        try:
            entry = await self.kv.get(name)
            revision = int(entry.revision or 0)
            holder = json.loads(entry.value or b"{}")
        except KeyDeletedError as exc:  # a tombstone: write over its revision
            revision, holder = int(exc.entry.revision or 0) if exc.entry else 0, {}
        except KeyNotFoundError:
            revision, holder = 0, {}
        expired = holder.get("expires", 0) <= self.now()
        if not expired:
            return None
        try:
            return Lease(self, name, await self.write(name, revision))
        except KeyWrongLastSequenceError:
            cas_conflict("leases")
            return None
