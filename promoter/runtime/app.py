"""Wiring: pipelines to targets, a bus (embedded or remote), the local provider, and a worker."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog
from nats.js.errors import KeyNotFoundError

from promoter.core.compiled import compile_pipeline
from promoter.core.loader import load_pipelines
from promoter.errors import ConfigurationError
from promoter.runtime.bus import Bus, BusOptions, connect
from promoter.runtime.effects import EffectRunner, Target, Workspaces, resolve_repository
from promoter.runtime.emit import review_event
from promoter.runtime.natsserver import StateDirServer
from promoter.runtime.options import WorkerOptions
from promoter.runtime.providers import GitHubSetup, Providers
from promoter.runtime.sync import PullSync
from promoter.runtime.worker import Worker
from promoter.scm.base import PullRequest, Review
from promoter.scm.local import LocalPullRequests
from promoter.settings import Settings

__all__ = [
    "Runtime",
    "load_targets",
    "on_stop_signals",
    "open_bus",
    "publish_pipelines",
    "run_worker",
    "utc_now",
    "worker_name",
]

log = structlog.get_logger(__name__)


_PUBLISHING = 64


def utc_now() -> datetime:
    """The wall clock, in UTC (the default clock; tests inject their own)."""
    return datetime.now(UTC)


def worker_name() -> str:
    """A unique worker id: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def load_targets(paths: Iterable[str | Path]) -> dict[str, Target]:
    """Load and compile pipelines (local repository paths are made absolute)."""
    targets: dict[str, Target] = {}
    for item in load_pipelines(paths):
        spec = item.pipeline.spec.repository
        repository = resolve_repository(spec.url, item.file)
        compiled = compile_pipeline(item.pipeline)
        targets[compiled.name] = Target(compiled, item.file, repository, spec.branch)
    if not targets:
        raise ConfigurationError("no pipelines found; pass --pipelines DIR with *.yaml files")
    return targets


def bus_options(settings: Settings) -> BusOptions:
    """Stream settings from the settings object."""
    return BusOptions(
        ack_wait=settings.ack_wait,
        max_deliver=settings.max_deliver,
        dedup_window=settings.dedup_window,
        replicas=settings.nats_replicas,
    )


def worker_options(settings: Settings) -> WorkerOptions:
    """Worker settings from the settings object."""
    return WorkerOptions(
        ack_wait=settings.ack_wait,
        max_deliver=settings.max_deliver,
        lease_ttl=settings.lease_ttl,
        failpoints=settings.failpoints,
        scm_poll_interval=settings.scm_poll_interval,
    )


@asynccontextmanager
async def open_bus(
    nats_url: str | None, state_dir: Path, options: BusOptions, *, name: str, own: bool = False
) -> AsyncIterator[Bus]:
    """Connect to `nats_url`, or to the state dir's embedded server (starting it if needed)."""
    async with AsyncExitStack() as stack:
        url = nats_url
        if url is None:
            server = StateDirServer(state_dir, lasting=own)
            url = await asyncio.to_thread(server.__enter__)
            stack.callback(server.__exit__, None, None, None)
        bus = await connect(url, name=name, options=options)
        stack.push_async_callback(bus.close)
        yield bus


async def publish_pipelines(bus: Bus, targets: dict[str, Target]) -> None:
    """Store the pipelines this worker runs, so status/explain can evaluate gates without files.

    Only changed ones are written (a restart writes nothing), `_PUBLISHING` at a time.
    """

    def read() -> dict[str, bytes]:
        return {t.name: Path(t.file).read_bytes() for t in targets.values()}

    limit = asyncio.Semaphore(_PUBLISHING)

    async def put(name: str, body: bytes) -> None:
        async with limit:
            try:
                if (await bus.pipelines.get(name)).value == body:
                    return
            except KeyNotFoundError:
                pass
            await bus.pipelines.put(name, body)

    bodies = await asyncio.to_thread(read)
    await asyncio.gather(*(put(name, body) for name, body in bodies.items()))


def publish_in_background(bus: Bus, targets: dict[str, Target]) -> asyncio.Task[None]:
    """`publish_pipelines` while the worker already consumes (only status/explain need them)."""

    async def publish() -> None:
        try:
            await publish_pipelines(bus, targets)
        except Exception:  # status/explain lack gates until the next start; the worker goes on
            log.exception("publishing the pipelines for status/explain failed")

    return asyncio.create_task(publish(), name="publish-pipelines")


class Runtime:
    """The pieces a worker and the PR commands share."""

    def __init__(
        self,
        bus: Bus,
        state_dir: Path,
        clock: Callable[[], datetime] = utc_now,
        github: GitHubSetup | None = None,
    ) -> None:
        self.bus = bus
        self.clock = clock
        self.providers = Providers(bus.budget, github)
        self.workspaces = Workspaces(state_dir / "repos", self.providers.token_for)
        self.prs = LocalPullRequests(bus.prs, bus.js, self.workspaces, clock)
        self.providers.local = self.prs
        self.runner = EffectRunner(self.workspaces, self.providers)

    async def review(
        self,
        pipeline: str,
        environment: str,
        user: str,
        verdict: Literal["approved", "changes_requested"],
        *,
        teams: Sequence[str] = (),
        comment: str = "",
    ) -> tuple[PullRequest, dict[str, Any]]:
        """Record a review on the environment's open local PR and publish it for the planner."""
        now = self.clock()
        review = Review(user=user, teams=list(teams), state=verdict, head="", body=comment, at=now)
        pr = await self.prs.review(pipeline, environment, review)
        data = {
            "pipeline": pipeline,
            "environment": environment,
            "reviewer": user,
            "teams": list(teams),
            "state": verdict,
            "bundle": pr.bundle,
            "pr": pr.number,
        }
        event = review_event(data, now=now)
        await self.bus.publish_event(event)
        return pr, event

    def worker(
        self, targets: dict[str, Target], options: WorkerOptions, name: str | None = None
    ) -> Worker:
        """A worker over `targets`; ConfigurationError if some need GitHub and it is not set up."""
        self.providers.check(targets)
        return Worker(
            self.bus,
            targets,
            self.runner,
            name=name or worker_name(),
            clock=self.clock,
            options=options,
            sync=PullSync(targets, self.providers.github),
        )


@contextmanager
def on_stop_signals(callback: Callable[[], object]) -> Iterator[None]:
    """Call `callback` on SIGTERM or SIGINT while the block runs (in the running event loop)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, callback)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run_worker(worker: Worker) -> None:
    """Run `worker` until SIGTERM or SIGINT, then drain: finish the batch in hand and ack it."""
    with on_stop_signals(worker.stop):
        await worker.run()
