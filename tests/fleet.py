"""A fleet of `promoter run` children, a monkey that SIGKILLs them, and a feeder of image builds."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import nats.errors
from harness import digest

from promoter.runtime.bus import CONSUMER, EVENTS_STREAM, Bus
from promoter.runtime.emit import image_event
from promoter.runtime.report import status
from promoter.runtime.store import StateStore

__all__ = [
    "ENVS",
    "Feeder",
    "Fleet",
    "Scale",
    "Stopwatch",
    "chaos_run",
    "fleet_pipeline",
    "local_repository",
    "patiently",
    "settled",
    "title",
    "version",
    "write_pipelines",
]

ENVS = ("dev", "staging", "prod")
CHILD_ENV = {"PROMOTER_ACK_WAIT": "3", "PROMOTER_LEASE_TTL": "2", "PROMOTER_LOG_FORMAT": "json"}
T = TypeVar("T")


def version(round_: int) -> str:
    """The image tag a pipeline gets in build round `round_`."""
    return f"1.{round_}.0"


def title(pipeline: str, env: str, tag: str) -> str:
    """The subject of the commit (and the PR title) that promotes `tag` into `env`."""
    return f"promote {pipeline} to {env}: api {tag}"


@dataclass
class Stopwatch:
    """Elapsed times of a run's phases, for the report printed at the end of a test."""

    started: float = field(default_factory=time.monotonic)
    marks: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        """Note that `what` happened now."""
        self.marks.append(f"{time.monotonic() - self.started:.1f}s {what}")


@dataclass(frozen=True)
class Scale:
    """How big a run is: pipelines, builds per pipeline (each goes dev -> staging -> prod), and
    how long the builds may take to get through before the run fails."""

    pipelines: int
    rounds: int
    within: float

    @property
    def names(self) -> list[str]:
        """The pipeline names."""
        return [f"svc{i:02d}" for i in range(self.pipelines)]


def write_pipelines(directory: Path, names: list[str], repository: str) -> None:
    """One pipeline file per name, all over `repository`."""
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / f"{name}.yaml").write_text(fleet_pipeline(name, repository))


def local_repository(remote: Path) -> str:
    """The `repository` block for a bare remote on disk (local PR provider)."""
    return f'{{url: "file://{remote}", branch: main}}'


def fleet_pipeline(name: str, repository: str) -> str:
    """Pipeline `name`: image ghcr.io/acme/NAME, auto dev -> staging -> prod, apps/NAME/ENV.yaml."""
    blocks = []
    for i, env in enumerate(ENVS):
        upstream = f"\n      from: [{ENVS[i - 1]}]" if i else ""
        blocks.append(
            f"    - name: {env}{upstream}\n      auto: true\n"
            f"      update: [{{file: apps/{name}/{env}.yaml, "
            f'set: {{image.tag: "${{api.tag}}"}}}}]'
        )
    return (
        f"apiVersion: promoter/v1\nkind: Pipeline\nmetadata: {{name: {name}}}\nspec:\n"
        f"  repository: {repository}\n  artifacts:\n"
        f"    - {{name: api, image: ghcr.io/acme/{name}, select: {{semver: '>=0.1.0'}}}}\n"
        "  environments:\n" + "\n".join(blocks) + "\n"
    )


async def patiently(call: Callable[[], Awaitable[T]], within: float = 60.0) -> T:
    """`call()`, retried while NATS is unreachable or electing a leader, for up to `within` s."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except (nats.errors.Error, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@dataclass
class Fleet:
    """`size` worker processes; a killed or exited one is started again in its slot.

    Each slot keeps its own state dir (its git clone cache) across restarts, as a pod would
    keep its volume. `url(slot)` names the server a (re)started worker connects to.
    """

    root: Path
    pipelines: Path
    url: Callable[[int], str]
    env: dict[str, str] = field(default_factory=dict)
    size: int = 3
    slots: list[subprocess.Popen[bytes]] = field(default_factory=list)
    spawned: int = 0
    kills: int = 0
    crashes: list[str] = field(default_factory=list)
    _generation: dict[int, int] = field(default_factory=dict)

    def __enter__(self) -> Self:
        """Start every slot's worker."""
        self.slots = [self._spawn(slot) for slot in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        """SIGKILL every worker."""
        for child in self.slots:
            if child.poll() is None:
                child.kill()
            child.wait(10)

    def _spawn(self, slot: int) -> subprocess.Popen[bytes]:
        self.spawned += 1
        self._generation[slot] = self.spawned
        argv = [sys.executable, "-m", "promoter", "run", "--pipelines", str(self.pipelines)]
        argv += ["--nats-url", self.url(slot), "--state-dir", str(self.root / f"state-{slot}")]
        with (self.root / f"worker-{slot}-{self.spawned}.log").open("wb") as log:
            return subprocess.Popen(
                argv,
                env={**os.environ, **CHILD_ENV, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def restart(self, slot: int) -> None:
        """SIGKILL the slot's worker (if alive) and start a new one."""
        child = self.slots[slot]
        if child.poll() is None:
            child.kill()
            child.wait(10)
            self.kills += 1
        else:
            self.crashes.append(f"worker-{slot}-{self._generation[slot]}.log: {child.returncode}")
        self.slots[slot] = self._spawn(slot)

    def revive(self) -> None:
        """Start again any worker that exited on its own (recorded in `crashes`)."""
        for slot, child in enumerate(self.slots):
            if child.poll() is not None:
                self.restart(slot)

    async def monkey(self, stopping: asyncio.Event, seed: int, interval: float = 2.0) -> None:
        """Every ~`interval` s, SIGKILL a random worker and restart it, until `stopping`."""
        rng = random.Random(seed)
        while not stopping.is_set():
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval * rng.uniform(0.5, 1.5))
            if not stopping.is_set():
                self.revive()
                self.restart(rng.randrange(self.size))


@dataclass
class Feeder:
    """Publishes `rounds` image builds per pipeline, the next once the last is live in prod.

    So every build is expected in every environment, in order, each by its own PR.
    """

    bus: Bus
    names: list[str]
    rounds: int
    sent: dict[str, int] = field(default_factory=dict)
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    @property
    def promotions(self) -> int:
        """(pipeline, env, version) seen live so far (status is sampled, so a lower bound)."""
        return len(self.seen)

    @property
    def expected(self) -> int:
        """Promotions the whole run makes."""
        return len(self.names) * self.rounds * len(ENVS)

    async def _publish(self, name: str) -> None:
        n = self.sent.get(name, 0)
        event = image_event(
            f"ghcr.io/acme/{name}",
            digest(self.names.index(name) * 1000 + n + 1),
            version(n),
            {},
            now=datetime.now(UTC),
        )
        await patiently(lambda: self.bus.publish_event(event))
        self.sent[name] = n + 1

    def _finished(self, name: str) -> bool:
        return (name, ENVS[-1], version(self.rounds - 1)) in self.seen

    def _observe(self, document: dict[str, Any]) -> None:
        for pipeline in document["pipelines"]:
            for env in pipeline["environments"]:
                tag = (env["live"] or {}).get("api")
                if tag:
                    self.seen.add((pipeline["name"], env["name"], tag))

    async def run(self, within: float) -> None:
        """Feed builds until every pipeline has its last one live in prod; fail after `within` s."""
        deadline = time.monotonic() + within
        for name in self.names:
            await self._publish(name)
        while not all(self._finished(n) for n in self.names):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.promotions}/{self.expected} promotions in {within}s")
            with suppress(nats.errors.Error, TimeoutError, OSError):
                self._observe(await status(self.bus))
            for name in self.names:
                n = self.sent[name]
                if n < self.rounds and (name, ENVS[-1], version(n - 1)) in self.seen:
                    await self._publish(name)
            await asyncio.sleep(0.2)

    async def reached(self, count: int, within: float) -> None:
        """Wait until at least `count` promotions were seen."""
        deadline = time.monotonic() + within
        while self.promotions < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.promotions}/{count} promotions in {within}s")
            await asyncio.sleep(0.1)


async def settled(bus: Bus, within: float = 60.0) -> None:
    """Wait until no event is pending or unacked and no outbox holds work."""
    deadline = time.monotonic() + within

    async def idle() -> bool:
        info = await bus.js.consumer_info(EVENTS_STREAM, CONSUMER)
        if info.num_pending or info.num_ack_pending:
            return False
        return not any(r.outbox for r in await StateStore(bus.state, bus.js).all())

    while not await patiently(idle):
        if time.monotonic() > deadline:
            raise AssertionError(f"work still pending after {within:.0f}s")
        await asyncio.sleep(0.1)


async def chaos_run(
    fleet: Fleet,
    feeder: Feeder,
    disruption: Callable[[], Coroutine[Any, Any, None]],
    *,
    within: float,
    seed: int,
) -> None:
    """Feed every build through while the monkey kills workers and `disruption` runs alongside."""
    stopping = asyncio.Event()
    monkey = asyncio.create_task(fleet.monkey(stopping, seed))
    feeding = asyncio.create_task(feeder.run(within))
    disrupting = asyncio.create_task(disruption())
    try:
        await asyncio.gather(feeding, disrupting)
    finally:
        stopping.set()
        for task in (feeding, disrupting):
            task.cancel()
        await asyncio.gather(feeding, disrupting, return_exceptions=True)
        await monkey
    fleet.revive()
