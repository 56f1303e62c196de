"""The worker: pull events, plan under a lease, record, carry out the outbox, then ack."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from promoter.core.observations import (
    Merged,
    MergeRefused,
    Observation,
    PullSynced,
    Tick,
)
from promoter.core.planner import Plan, apply
from promoter.core.router import Router
from promoter.errors import PromoterError, RateLimitedError
from promoter.runtime.background import dead_letter_exhausted, watch_records
from promoter.runtime.bus import Bus
from promoter.runtime.consumer import Consumer
from promoter.runtime.effects import EffectRunner, Outcome, Target
from promoter.runtime.failpoints import Failpoints
from promoter.runtime.intake import Intake, Item
from promoter.runtime.metrics import (
    EVENT_TO_PR,
    GATE_BLOCKS,
    PROMOTIONS,
    block_reason,
)
from promoter.runtime.options import WorkerOptions
from promoter.runtime.outbox import audit_entry, superseded
from promoter.runtime.store import Effect, Lease, Leases, Record, StaleRecordError, StateStore
from promoter.runtime.sync import PullPoller, PullSync, report_gates
from promoter.runtime.timers import Timers

__all__ = ["Worker"]

log = structlog.get_logger(__name__)

_PR_ACTIONS = frozenset({"open-pr", "update-pr"})


def _note_head(record: Record, observation: Observation) -> None:
    """A PR snapshot tells the recorded PR's current head."""
    if isinstance(observation, PullSynced):
        known = record.prs.get(observation.environment)
        if known is not None and known.bundle == observation.bundle:
            record.prs[observation.environment] = known.model_copy(
                update={"head": observation.head}
            )


@dataclass(frozen=True)
class _Caused:
    """Effects from decision `first` on were planned from events that reached NATS `arrived`."""

    first: int
    arrived: datetime

    def observe(self, effect: Effect, outcome: Outcome) -> None:
        """Time event -> PR when `effect` opened or updated the PR those events asked for."""
        if effect.seq >= self.first and effect.action in _PR_ACTIONS and outcome.pr is not None:
            EVENT_TO_PR.observe(max(0.0, time.time() - self.arrived.timestamp()))


class Worker:
    """One promoter worker; run several against one stream to share the load."""

    def __init__(
        self,
        bus: Bus,
        targets: dict[str, Target],
        runner: EffectRunner,
        *,
        name: str,
        clock: Callable[[], datetime],
        options: WorkerOptions | None = None,
        sync: PullSync | None = None,
    ) -> None:
        self.bus = bus
        self.targets = targets
        self.runner = runner
        self.name = name
        self.clock = clock
        self.options = options or WorkerOptions()
        self.router = Router(t.compiled for t in targets.values())
        self.store = StateStore(bus.state, bus.js)
        self.leases = Leases(bus.leases, name, self.options.lease_ttl)
        self.sync = sync
        self.poller = PullPoller(
            sync,
            self.store,
            Leases(bus.leases, name, self.options.scm_poll_interval),
            self.options.scm_poll_interval,
            self.process,
        )
        self.timers = Timers(self.clock)
        self.failpoints = Failpoints.parse(self.options.failpoints)
        self.stopping = asyncio.Event()
        self.intake = Intake(
            bus,
            self.router,
            frozenset(targets),
            lambda name, items, arrived: self.process(name, items, arrived),  # noqa: PLW0108 (late-bound: a subclass or swapped class overrides process)
            self.options,
            clock,
            self.failpoints,
            sync,
        )
        self.consumer: Consumer | None = None
        # Tasks of this worker queue for a pipeline here instead of polling its KV lease.
        self.local: dict[str, asyncio.Lock] = {}

    # --- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until `stop()`; the batch in hand is finished and acked before returning."""
        log.info("worker started", worker=self.name, pipelines=sorted(self.targets))
        consumer = self.consumer = Consumer(self.bus, self.options, self.stopping)
        tasks = [
            asyncio.create_task(consumer.run(self.intake.handle_batch), name="consume"),
            asyncio.create_task(
                self.timers.run(self.visit, self.stopping, self.options), name="timers"
            ),
            asyncio.create_task(
                watch_records(self.bus.state, self.timers, self.options.lease_ttl, self.stopping),
                name="watch",
            ),
            asyncio.create_task(dead_letter_exhausted(self.bus), name="advisories"),
            asyncio.create_task(self.poller.run(self.stopping), name="poll-prs"),
        ]
        await self.stopping.wait()
        await tasks[0]
        for task in tasks[1:]:
            task.cancel()
        for task in tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("worker stopped", worker=self.name, processed=self.processed)

    def stop(self) -> None:
        """Ask the worker to finish its current batch and return from `run()`."""
        self.stopping.set()

    @property
    def processed(self) -> int:
        """Events this worker recorded and acked."""
        return self.intake.processed

    def consumer_bound(self) -> bool:
        """Whether the worker is bound to the shared consumer (for readiness)."""
        return self.consumer is not None and self.consumer.bound

    # --- per pipeline -------------------------------------------------------------------

    async def _lease(self, name: str, wait: float) -> Lease | None:
        """The pipeline's lock in this process, then its KV lease; None if busy for `wait` s."""
        lock = self.local.setdefault(name, asyncio.Lock())
        if wait <= 0 and lock.locked():
            return None
        try:
            await asyncio.wait_for(lock.acquire(), max(wait, 0.001))
        except TimeoutError:
            return None
        deadline = time.monotonic() + wait
        while True:
            lease = await self.leases.acquire(f"pipeline.{name}")
            if lease is not None:
                return lease
            if time.monotonic() >= deadline:
                lock.release()
                return None
            await asyncio.sleep(0.02)

    async def _release(self, lease: Lease) -> None:
        try:
            await lease.release()
        finally:
            self.local[lease.name.removeprefix("pipeline.")].release()

    async def process(
        self, name: str, items: Sequence[Item], arrived: datetime | None = None
    ) -> bool:
        """Plan `items` for one pipeline under its lease and record; True once recorded.

        `arrived`: when the earliest of these events reached NATS (for the event -> PR metric).
        """
        lease = await self._lease(name, self.options.ack_wait / 2)
        if lease is None:
            if await self.store.planned(name, (key for key, _ in items)):
                return True  # recorded already: the lease holder carries out the outbox
            log.info("pipeline busy; will retry", pipeline=name)
            return False
        try:
            for _ in range(5):
                record, revision = await self.store.load(name)
                caused = _Caused(record.decisions + 1, arrived) if arrived else None
                fresh = [(k, o) for k, o in items if k is None or k not in record.applied]
                for key, observation in fresh:
                    _note_head(record, observation)
                    self._observe(record, observation)
                    if key is not None:
                        record.mark_applied(key)
                if fresh:
                    try:
                        revision = await self.store.save(record, revision)
                    except StaleRecordError:
                        continue
                    self.failpoints.hit("after-plan")
                await self._drain(record, revision, lease, caused)
                return True
            return False
        finally:
            await self._release(lease)

    def _observe(self, record: Record, observation: Observation) -> None:
        """Plan `observation` on the record's state, in place (the record is this call's own)."""
        compiled = self.targets[record.pipeline].compiled
        self._absorb(record, apply(compiled, record.state, observation, self.clock()))

    def _absorb(self, record: Record, result: Plan) -> None:
        now = self.clock()
        record.state = result.state
        for decision in result.decisions:
            record.decisions += 1
            record.outbox.append(
                Effect(
                    seq=record.decisions,
                    action=decision.action,
                    environment=decision.environment,
                    bundle=decision.bundle,
                    reason=decision.reason,
                    at=now,
                    head=decision.head,
                )
            )
        record.wakeup = result.wakeup
        record.updated_at = now
        self.timers.schedule(record)

    async def _drain(
        self, record: Record, revision: int, lease: Lease, caused: _Caused | None = None
    ) -> None:
        target = self.targets[record.pipeline]
        bound = log.bind(pipeline=record.pipeline, worker=self.name)
        while record.outbox:
            effect = record.outbox[0]
            if not await lease.renew():
                bound.warning("lease lost; leaving the outbox to its new holder")
                self.timers.retry(record.pipeline, self.options.lease_ttl)
                return
            try:
                if superseded(record.outbox):
                    outcome = Outcome(detail="skipped: a newer bundle follows in the outbox")
                else:
                    env_state = record.state.envs.get(effect.environment)
                    blocked = env_state.blocked if env_state is not None else {}
                    known = record.prs.get(effect.environment)
                    async with lease.kept():
                        outcome = await self.runner.carry_out(target, effect, blocked, known)
            except PromoterError as exc:
                if exc.retryable:
                    await self._retry(record, revision, effect, exc, bound)
                    return
                outcome = None
                record.errors[effect.environment] = f"{effect.action} failed: {exc}"
                bound.error(
                    "effect failed", env=effect.environment, action=effect.action, error=str(exc)
                )
            except Exception as exc:  # noqa: BLE001 (an unexpected failure must not kill the worker)
                bound.exception("effect crashed; will retry", env=effect.environment)
                await self._retry(record, revision, effect, exc, bound)
                return
            self.failpoints.hit("after-effect")
            if caused is not None and outcome is not None:
                caused.observe(effect, outcome)
            await self._audit(record.pipeline, effect, outcome)
            self._complete(record, effect, outcome)
            try:
                revision = await self.store.save(record, revision)
            except StaleRecordError:
                bound.warning("record changed under us; leaving the outbox to its new holder")
                self.timers.retry(record.pipeline, self.options.lease_ttl)
                return
            self.failpoints.hit("after-record")
        if self.sync is not None and await report_gates(self.sync, record):
            with contextlib.suppress(StaleRecordError):  # only a cache of what GitHub shows
                await self.store.save(record, revision)
        self.timers.done(record.pipeline)

    def _complete(self, record: Record, effect: Effect, outcome: Outcome | None) -> None:
        record.outbox.pop(0)
        env = effect.environment
        if outcome is None:
            return
        if effect.action not in ("block", "hold", "resume"):
            record.errors.pop(env, None)
        if outcome.pr is not None:
            record.prs[env] = outcome.pr
        if outcome.refused is not None and effect.bundle is not None:
            known = record.prs.get(env)
            if known is not None:  # its head is what was refused: read the PR next time
                record.prs[env] = known.model_copy(update={"head": ""})
            refusal = MergeRefused(record.pipeline, env, effect.bundle.id, outcome.refused)
            self._observe(record, refusal)
        elif outcome.merged and effect.bundle is not None:
            record.prs.pop(env, None)
            observation = Merged(record.pipeline, env, effect.bundle.id)
            self._observe(record, observation)
        elif effect.action == "close-pr":
            record.prs.pop(env, None)

    async def _retry(
        self,
        record: Record,
        revision: int,
        effect: Effect,
        exc: Exception,
        bound: structlog.typing.FilteringBoundLogger,
    ) -> None:
        """Back off exponentially; the attempt count and error are saved for `explain`."""
        delay = min(
            self.options.retry_delay * 2 ** min(effect.attempts, 10), self.options.retry_max
        )
        if isinstance(exc, RateLimitedError):  # the SCM said how long; sooner is refused
            delay = max(delay, exc.retry_after)
        effect.attempts += 1
        effect.error = str(exc) or type(exc).__name__
        bound.warning(
            "effect will be retried",
            env=effect.environment,
            action=effect.action,
            error=effect.error,
            attempt=effect.attempts,
            delay=delay,
        )
        with contextlib.suppress(StaleRecordError):
            await self.store.save(record, revision)
        self.timers.retry(record.pipeline, delay)

    async def _audit(self, pipeline: str, effect: Effect, outcome: Outcome | None) -> None:
        entry = audit_entry(pipeline, effect, outcome, self.name)
        await self.bus.audit(pipeline, effect.seq, entry)
        PROMOTIONS.labels(environment=effect.environment, action=effect.action).inc()
        if effect.action == "block":
            GATE_BLOCKS.labels(reason=block_reason(effect.reason)).inc()

    # --- timers and orphaned outboxes ---------------------------------------------------

    async def visit(self, name: str) -> None:
        """Fire due timers and finish a left-over outbox for `name` (if its lease is free)."""
        if name not in self.targets:
            return
        lease = await self._lease(name, 0)
        if lease is None:
            self.timers.retry(name, self.options.lease_ttl / 2)
            return
        try:
            record, revision = await self.store.load(name)
            now = self.clock()
            if record.wakeup is not None and record.wakeup <= now:
                self._absorb(record, apply(self.targets[name].compiled, record.state, Tick(), now))
                try:
                    revision = await self.store.save(record, revision)
                except StaleRecordError:
                    self.timers.retry(name, 0.1)
                    return
            await self._drain(record, revision, lease)
        finally:
            await self._release(lease)
