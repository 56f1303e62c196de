"""End-to-end harness: a real nats-server, a real bare gitops repo, in-process or child workers."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from gitfixtures import make_remote, remote_log

from promoter.core.loader import load_pipelines
from promoter.runtime.app import Runtime, load_targets, publish_pipelines
from promoter.runtime.bus import Bus, BusOptions, connect
from promoter.runtime.emit import health_event, image_event, model_event
from promoter.runtime.natsserver import EmbeddedServer
from promoter.runtime.options import WorkerOptions
from promoter.runtime.providers import GitHubSetup
from promoter.runtime.report import status
from promoter.runtime.store import StateStore
from promoter.runtime.worker import Worker
from promoter.scm.base import PullRequest

__all__ = ["FakeClock", "Harness", "pipeline_yaml"]

GITOPS = {
    "envs/dev/values.yaml": "# dev\nimage:\n  tag: 0.0.0  # promoter\nmodel:\n  uri: none\n",
    "envs/staging/values.yaml": "image:\n  tag: 0.0.0\nmodel:\n  uri: none\n",
    "envs/prod/values.yaml": "image:\n  tag: 0.0.0\nmodel:\n  uri: none\n",
}

FAST = WorkerOptions(
    ack_wait=5.0,
    max_deliver=10,
    lease_ttl=2.0,
    fetch_timeout=0.2,
    tick_interval=0.05,
    retry_delay=0.2,
    retry_max=1.0,
    stall_after=1.0,
)


class FakeClock:
    """A clock tests move by hand; soak and windows never need real waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


def pipeline_yaml(
    name: str,
    repo: Path,
    *,
    image: str = "ghcr.io/acme/api",
    model: str | None = None,
    soak: str | None = None,
    prod_approval: bool = True,
) -> str:
    """A dev -> staging -> prod pipeline over `repo`."""
    artifacts = [f"    - {{name: api, image: {image}, select: {{semver: '>=0.1.0'}}}}"]
    sets = '{image.tag: "${api.tag}"}'
    if model:
        artifacts.append(f"    - {{name: ranker, model: {model}, select: {{newest: true}}}}")
        sets = '{image.tag: "${api.tag}", model.uri: "${ranker.uri}"}'
    soak_gate = f"soak: {soak}" if soak else ""
    prod_gates = (
        "{"
        + ", ".join(g for g in (soak_gate, "approvals: {count: 1}" if prod_approval else "") if g)
        + "}"
    )
    return f"""apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  repository: {{url: "file://{repo}", branch: main}}
  artifacts:
{chr(10).join(artifacts)}
  environments:
    - name: dev
      auto: true
      update: [{{file: envs/dev/values.yaml, set: {sets}}}]
    - name: staging
      from: [dev]
      auto: true
      gates: {{{soak_gate}}}
      update: [{{file: envs/staging/values.yaml, set: {sets}}}]
    - name: prod
      from: [staging]
      auto: {"false" if prod_approval else "true"}
      gates: {prod_gates}
      rollback: {{onDegradedWithin: 1h}}
      update: [{{file: envs/prod/values.yaml, set: {sets}}}]
"""


def digest(n: int) -> str:
    """A valid sha256 digest for build number `n`."""
    return f"sha256:{n:064x}"


@dataclass
class Harness:
    """One test's world: server, remote, pipelines dir, bus, runtime and workers."""

    root: Path
    clock: FakeClock = field(default_factory=FakeClock)
    server: EmbeddedServer = field(init=False)
    remote: Path = field(init=False)
    pipelines: Path = field(init=False)
    bus: Bus = field(init=False)
    workers: list[tuple[Worker, asyncio.Task[None]]] = field(default_factory=list)
    github: GitHubSetup | None = None
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def start(
        self, options: BusOptions | None = None, *, sync_always: bool = True
    ) -> Harness:
        """Start the server, create the remote, connect."""
        self.server = EmbeddedServer(self.root / "nats", sync_always=sync_always).start()
        self.remote = make_remote(self.root, GITOPS)
        self.pipelines = self.root / "pipelines"
        self.pipelines.mkdir()
        self.bus = await connect(
            self.server.url, name="test", options=options or BusOptions(ack_wait=5.0)
        )
        return self

    def write_pipeline(self, name: str, **kw: Any) -> Path:
        """Write a pipeline file for `name`."""
        path = self.pipelines / f"{name}.yaml"
        path.write_text(pipeline_yaml(name, self.remote, **kw))
        load_pipelines([path])  # fail fast on a bad test pipeline
        return path

    async def start_worker(
        self,
        name: str = "w1",
        options: WorkerOptions = FAST,
        clock: Callable[[], datetime] | None = None,
    ) -> Worker:
        """Run an in-process worker over every pipeline file written so far."""
        targets = load_targets([self.pipelines])
        await publish_pipelines(self.bus, targets)
        bus = await connect(self.server.url, name=name, options=self.bus.options)
        runtime = Runtime(bus, self.root / f"state-{name}", clock or self.clock, self.github)
        worker = runtime.worker(targets, options, name)
        self.workers.append((worker, asyncio.create_task(worker.run())))
        return worker

    def spawn_worker(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Run `promoter run` as a child process (real clock) against this server."""
        child_env = {
            **os.environ,
            "PROMOTER_ACK_WAIT": "3",
            "PROMOTER_LEASE_TTL": "2",
            "PROMOTER_LOG_FORMAT": "json",
            **(env or {}),
        }
        with (self.root / f"worker-{len(self.children)}.log").open("wb") as log:
            child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "promoter",
                    "run",
                    "--pipelines",
                    str(self.pipelines),
                    "--nats-url",
                    self.server.url,
                    "--state-dir",
                    str(self.root / "child-state"),
                ],
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.children.append(child)
        return child

    async def stop_workers(self) -> None:
        """Stop in-process workers (graceful) and child workers (SIGTERM)."""
        for worker, task in self.workers:
            worker.stop()
            await asyncio.wait_for(task, 30)
            await worker.bus.close()
        self.workers.clear()
        for child in self.children:
            if child.poll() is None:
                child.terminate()
                child.wait(30)
        self.children.clear()

    async def close(self) -> None:
        """Tear everything down."""
        await self.stop_workers()
        await self.bus.close()
        self.server.stop()

    # --- events ---------------------------------------------------------------------------

    async def image(self, tag: str, n: int, repository: str = "ghcr.io/acme/api") -> bool:
        """Publish an image build."""
        return await self.bus.publish_event(
            image_event(repository, digest(n), tag, {}, now=self.clock())
        )

    async def model(self, name: str, version: str) -> bool:
        """Publish a model registration."""
        event = model_event(
            name, version, f"s3://models/{name}/{version}", [], {}, now=self.clock()
        )
        return await self.bus.publish_event(event)

    async def health(self, pipeline: str, env: str, state: str = "healthy") -> bool:
        """Publish a health signal."""
        return await self.bus.publish_event(
            health_event(pipeline, env, state, {}, None, now=self.clock())
        )

    async def approve(
        self,
        pipeline: str,
        env: str,
        user: str = "alice",
        verdict: Literal["approved", "changes_requested"] = "approved",
    ) -> PullRequest:
        """Review the env's PR as `promoter approve` (or `reject`) does."""
        runtime = Runtime(self.bus, self.root / "state-cli", self.clock)
        pr, _ = await runtime.review(pipeline, env, user, verdict)
        return pr

    # --- observing --------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """`status --json`."""
        return await status(self.bus)

    async def maybe_env(self, pipeline: str, env: str) -> dict[str, Any] | None:
        """One environment of `status --json`, or None while no worker has published it."""
        try:
            return await self.env(pipeline, env)
        except AssertionError:
            return None

    async def env(self, pipeline: str, env: str) -> dict[str, Any]:
        """One environment of `status --json`."""
        doc = await self.status()
        for p in doc["pipelines"]:
            if p["name"] == pipeline:
                for e in p["environments"]:
                    if e["name"] == env:
                        found: dict[str, Any] = e
                        return found
        raise AssertionError(f"{pipeline}/{env} not in status: {doc}")

    async def until(
        self, check: Callable[[], Awaitable[bool]], what: str, within: float = 30.0
    ) -> None:
        """Poll `check` until true; fail with `what` and the status after `within` seconds."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting until {what}; status: {await self.status()}")

    async def live(self, pipeline: str, env: str, api: str, within: float = 30.0) -> None:
        """Wait until `env` runs api `api`."""

        async def check() -> bool:
            found = await self.maybe_env(pipeline, env)
            return bool(found and (found["live"] or {}).get("api") == api)

        await self.until(check, f"{pipeline}/{env} runs api {api}", within)

    async def pending(
        self, pipeline: str, env: str, api: str, within: float = 30.0
    ) -> dict[str, Any]:
        """Wait until `env` has a PR open for api `api`; return the pending entry."""

        async def check() -> bool:
            found = await self.maybe_env(pipeline, env)
            p = found["pending"] if found else None
            return bool(p and p["pr"] and p["versions"].get("api") == api)

        await self.until(check, f"{pipeline}/{env} has a PR for api {api}", within)
        found: dict[str, Any] = (await self.env(pipeline, env))["pending"]
        return found

    async def quiet(self, within: float = 30.0) -> None:
        """Wait until no outbox holds work and the consumer has nothing pending or unacked."""

        async def check() -> bool:
            info = await self.bus.js.consumer_info("PROMOTER_EVENTS", "promoter-worker")
            if info.num_pending or info.num_ack_pending:
                return False
            return not any(r.outbox for r in await StateStore(self.bus.state, self.bus.js).all())

        await self.until(check, "all work is done", within)

    def main_log(self) -> list[str]:
        """Commit subjects on the remote's main, newest first."""
        return remote_log(self.remote, "main")

    async def prs(self) -> list[PullRequest]:
        """Every local PR."""
        return await Runtime(self.bus, self.root / "state-cli", self.clock).prs.all()
