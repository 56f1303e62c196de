"""A bench world: embedded nats-server, a bare gitops remote, pipelines and in-process workers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from promoter.errors import ConfigurationError, TransientError
from promoter.runtime.app import Runtime, load_targets, publish_pipelines, utc_now
from promoter.runtime.bus import CONSUMER, EVENTS_STREAM, Bus, BusOptions, connect
from promoter.runtime.effects import Target
from promoter.runtime.natsserver import EmbeddedServer
from promoter.runtime.options import WorkerOptions
from promoter.runtime.providers import GitHubSetup
from promoter.runtime.store import StateStore
from promoter.runtime.worker import Worker

__all__ = ["PIPELINE", "BenchWorld", "digest", "environment", "git", "seed_remote"]

VALUES = "image:\n  tag: 0.0.0\n"

PIPELINE = """apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: {name}}}
spec:
  repository: {{url: "{url}", branch: main{extra}}}
  artifacts:
    - {{name: api, image: {image}, select: {{semver: '>=0.1.0'}}}}
  environments:
{environments}
"""

IDENTITY = (
    "-c",
    "user.name=bench",
    "-c",
    "user.email=bench@localhost",
    "-c",
    "commit.gpgsign=false",
)


def digest(n: int) -> str:
    """A valid sha256 digest for build number `n`."""
    return f"sha256:{n:064x}"


def git(cwd: Path, *args: str) -> str:
    """Run git in `cwd`; its stdout."""
    binary = shutil.which("git")
    if binary is None:
        raise ConfigurationError("git is not installed; promoter bench needs it")
    done = subprocess.run(
        [binary, *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout


def seed_remote(bare: Path, files: dict[str, str]) -> Path:
    """Create bare repository `bare` whose `main` has one commit holding `files`.

    Ref updates are logged (`core.logAllRefUpdates=always`) so the bench can count pushes.
    """
    work = bare.with_suffix(".seed")
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text, encoding="utf-8")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial gitops layout")
    git(work.parent, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "config", "core.logAllRefUpdates", "always")
    shutil.rmtree(work)
    return bare


def environment(name: str, *, upstream: str | None = None, gates: str = "") -> str:
    """One environment block setting `image.tag` in envs/NAME.yaml (auto unless gated)."""
    lines = [f"    - name: {name}"]
    if upstream:
        lines.append(f"      from: [{upstream}]")
    lines.append(f"      gates: {gates}" if gates else "      auto: true")
    lines.append(f'      update: [{{file: envs/{name}.yaml, set: {{image.tag: "${{api.tag}}"}}}}]')
    return "\n".join(lines)


@dataclass
class BenchWorld:
    """One scenario's world; `close()` stops workers, the bus and the server."""

    root: Path
    sync_always: bool = True
    server: EmbeddedServer = field(init=False)
    bus: Bus = field(init=False)
    pipelines: Path = field(init=False)
    workers: list[tuple[Worker, asyncio.Task[None]]] = field(default_factory=list)

    async def start(self) -> BenchWorld:
        """Start nats-server (as `promoter run` embeds it) and connect."""
        self.server = EmbeddedServer(self.root / "nats", sync_always=self.sync_always).start()
        self.bus = await connect(self.server.url, name="bench", options=BusOptions())
        self.pipelines = self.root / "pipelines"
        self.pipelines.mkdir(parents=True, exist_ok=True)
        return self

    def remote(self, name: str, environments: list[str]) -> Path:
        """A bare remote `name`.git with envs/ENV.yaml for each environment."""
        files = {f"envs/{env}.yaml": VALUES for env in environments}
        return seed_remote(self.root / f"{name}.git", files)

    def write_pipeline(
        self, name: str, url: str, image: str, environments: list[str], extra: str = ""
    ) -> None:
        """Write pipeline `name` over repository `url`, watching `image`."""
        text = PIPELINE.format(
            name=name, url=url, image=image, environments="\n".join(environments), extra=extra
        )
        (self.pipelines / f"{name}.yaml").write_text(text, encoding="utf-8")

    async def start_worker(
        self, options: WorkerOptions | None = None, github: GitHubSetup | None = None
    ) -> Worker:
        """Run a worker in this process over every pipeline written so far."""
        targets = load_targets([self.pipelines])
        await publish_pipelines(self.bus, targets)
        worker = self.worker(options, github, targets)
        self.run(worker)
        return worker

    def worker(
        self,
        options: WorkerOptions | None = None,
        github: GitHubSetup | None = None,
        targets: dict[str, Target] | None = None,
    ) -> Worker:
        """A worker over `targets` (default: every pipeline written so far), not yet running."""
        runtime = Runtime(self.bus, self.root / "state", utc_now, github)
        chosen = targets if targets is not None else load_targets([self.pipelines])
        return runtime.worker(chosen, options or WorkerOptions(), "bench")

    def run(self, worker: Worker) -> None:
        """Start consuming with `worker`."""
        self.workers.append((worker, asyncio.create_task(worker.run())))

    async def stop_workers(self) -> None:
        """Stop the running workers (each finishes its batch first)."""
        for worker, task in self.workers:
            worker.stop()
            await asyncio.wait_for(task, 60)
        self.workers.clear()

    async def until(self, check: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
        """Poll `check` every 5 ms until true; TransientError naming `what` after `within` s."""
        deadline = time.monotonic() + within
        while not await check():
            if time.monotonic() > deadline:
                raise TransientError(
                    f"timed out waiting until {what}; is the machine overloaded? run again"
                )
            await asyncio.sleep(0.005)

    async def idle(self) -> bool:
        """No event pending or unacked and no outbox holding work."""
        info = await self.bus.js.consumer_info(EVENTS_STREAM, CONSUMER)
        if info.num_pending or info.num_ack_pending:
            return False
        return not any(r.outbox for r in await StateStore(self.bus.state, self.bus.js).all())

    async def quiet(self, within: float = 120.0) -> None:
        """Wait until all work is done."""
        await self.until(self.idle, "all work is done", within)

    async def close(self) -> None:
        """Stop everything (workers finish their batch first)."""
        await self.stop_workers()
        await self.bus.close()
        self.server.stop()
