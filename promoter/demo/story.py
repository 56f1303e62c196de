"""The scripted demo story, played against a real worker, NATS server and git repository."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from promoter.demo.github import GitHubStage, github_stage
from promoter.errors import ConfigurationError, TransientError
from promoter.runtime.app import (
    Runtime,
    load_targets,
    on_stop_signals,
    publish_pipelines,
    utc_now,
)
from promoter.runtime.bus import Bus, connect
from promoter.runtime.emit import health_event, image_event, model_event
from promoter.runtime.natsserver import EmbeddedServer
from promoter.runtime.options import WorkerOptions
from promoter.runtime.report import status, status_table
from promoter.web.server import worker_http

__all__ = ["run_demo", "seed_repository"]

_TIMEOUT = 30.0
_DIGEST = "sha256:" + "{:064x}"
Check = Callable[[dict[str, Any]], bool]


def _git(*args: str, cwd: Path) -> str:
    git = shutil.which("git")
    if git is None:
        raise ConfigurationError("git is not installed; the demo needs it")
    done = subprocess.run([git, *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def seed_repository(bare: Path, files: Path) -> None:
    """Create bare repository `bare` whose `main` holds a copy of the directory `files`."""
    work = bare.with_suffix(".seed")
    shutil.copytree(files, work)
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "-A", cwd=work)
    _git(
        "-c",
        "user.name=demo",
        "-c",
        "user.email=demo@localhost",
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-q",
        "-m",
        "initial gitops layout",
        cwd=work,
    )
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=work.parent)
    shutil.rmtree(work)


def _env(document: dict[str, Any], env: str) -> dict[str, Any]:
    pipeline = next(p for p in document["pipelines"] if p["name"] == "shop")
    found: dict[str, Any] = next(e for e in pipeline["environments"] if e["name"] == env)
    return found


def live(env: str, api: str) -> Check:
    """The environment runs api version `api`."""
    return lambda doc: (_env(doc, env)["live"] or {}).get("api") == api


def pending(env: str, api: str) -> Check:
    """The environment has a PR open for api version `api`."""

    def check(doc: dict[str, Any]) -> bool:
        pr = _env(doc, env)["pending"]
        return bool(pr and pr["pr"] and pr["versions"].get("api") == api)

    return check


class Story:
    """Emits the story's events and waits for the worker to act on each."""

    def __init__(
        self, bus: Bus, runtime: Runtime, out: TextIO, github: GitHubStage | None = None
    ) -> None:
        self.bus = bus
        self.runtime = runtime
        self.out = out
        self.github = github
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        """One progress line, stamped with seconds since the start."""
        print(f"[{time.monotonic() - self.started:5.1f}s] {text}", file=self.out, flush=True)

    async def wait(self, check: Check, what: str) -> None:
        """Poll status until `check` holds."""
        deadline = time.monotonic() + _TIMEOUT
        while time.monotonic() < deadline:
            if check(await status(self.bus)):
                self.say(f"  ✓ {what}")
                return
            await asyncio.sleep(0.05)
        raise TransientError(f"demo: timed out after {_TIMEOUT:.0f}s waiting until {what}")

    async def emit(self, event: dict[str, Any]) -> None:
        """Publish an event."""
        await self.bus.publish_event(event)

    async def healthy(self, env: str) -> None:
        """Report `env` healthy."""
        await self.emit(health_event("shop", env, "healthy", {}, "probes green", now=utc_now()))

    async def approve(self, env: str, user: str) -> None:
        """Approve the env's PR as `user`: a review on GitHub, else as `promoter approve` does."""
        if self.github is not None:
            number = await self.github.approve(env, user)
            self.say(f"{user} approves PR #{number} on GitHub (webhook -> gateway -> worker)")
            return
        pr, _ = await self.runtime.review("shop", env, user, "approved")
        self.say(f"{user} approves PR #{pr.number}")

    async def release(self, version: str, number: int) -> None:
        """An image goes from build to prod: dev, soak, staging, soak, approval, prod."""
        self.say(f"image ghcr.io/acme/shop-api:{version} built")
        await self.emit(
            image_event("ghcr.io/acme/shop-api", _DIGEST.format(number), version, {}, now=utc_now())
        )
        await self.wait(live("dev", version), f"dev runs api {version} (auto-merged)")
        await self.healthy("dev")
        self.say("dev reports healthy; staging waits out a 2s soak")
        await self.wait(live("staging", version), f"staging runs api {version}")
        await self.healthy("staging")
        await self.wait(pending("prod", version), f"prod PR open for api {version}, needs approval")
        await self.approve("prod", "alice")
        await self.wait(live("prod", version), f"prod runs api {version}")

    async def play(self) -> None:
        """The whole story."""
        self.say("model shop-ranker v1 registered (no image yet: nothing to promote)")
        await self.emit(
            model_event(
                "shop-ranker", "1", "s3://models/shop-ranker/1", ["auc=0.91"], {}, now=utc_now()
            )
        )
        await self.release("1.0.0", 1)
        await self.release("1.1.0", 2)
        self.say("prod reports degraded: error rate 7%")
        await self.emit(
            health_event("shop", "prod", "degraded", {}, "error rate 7%", now=utc_now())
        )
        await self.wait(
            lambda doc: live("prod", "1.0.0")(doc) and bool(_env(doc, "prod")["held"]),
            "prod rolled back to api 1.0.0 and held",
        )
        await self.wait(
            lambda doc: all(p["outbox"] == 0 for p in doc["pipelines"]),
            "every decision carried out (the rollback commit is on main)",
        )


def _prepare(root: Path, *, local: bool) -> None:
    """The pipeline file and (for the local provider) the gitops repository."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise ConfigurationError(f"{root} is not empty; pick a new directory for --keep")
    demo = resources.files("promoter.demo")
    if local:
        with resources.as_file(demo / "gitops") as files:
            seed_repository(root / "gitops.git", files)
    (root / "shop.yaml").write_text((demo / "pipeline.yaml").read_text(encoding="utf-8"))


async def _github(stack: AsyncExitStack, root: Path, bus: Bus, out: TextIO) -> GitHubStage:
    """The emulator stage, with the pipeline file pointed at it."""
    with resources.as_file(resources.files("promoter.demo") / "gitops") as files:

        def seed(bare: Path) -> None:
            seed_repository(bare, files)

        stage = await stack.enter_async_context(github_stage(root, bus, seed, out))
    pipeline = root / "shop.yaml"
    pipeline.write_text(stage.pipeline(pipeline.read_text(encoding="utf-8")), encoding="utf-8")
    return stage


async def run_demo(
    out: TextIO, *, keep: str | None = None, provider: str = "local", http_port: int | None = None
) -> int:
    """Play the demo in a temporary directory (or `keep`); 0 when the story completed.

    With `http_port`, the worker's dashboard, probes and metrics are served on 127.0.0.1 while
    the story plays, and afterwards until SIGINT or SIGTERM.
    """
    async with AsyncExitStack() as stack:
        if keep:
            root = Path(keep)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="promoter-demo-")))
        await asyncio.to_thread(_prepare, root, local=provider == "local")
        server = EmbeddedServer(root / "nats").start()
        stack.callback(server.stop)
        bus = await connect(server.url, name="promoter-demo")
        stack.push_async_callback(bus.close)
        stage = await _github(stack, root, bus, out) if provider == "github" else None
        targets = load_targets([root / "shop.yaml"])
        await publish_pipelines(bus, targets)
        runtime = Runtime(bus, root / "state", github=stage.setup if stage else None)
        options = WorkerOptions(tick_interval=0.1, fetch_timeout=0.2, lease_ttl=5.0, ack_wait=10.0)
        worker = runtime.worker(targets, options, "demo-worker")
        task = asyncio.create_task(worker.run())
        story = Story(bus, runtime, out, stage)
        print(f"promoter demo in {root} (embedded NATS {server.url})", file=out)
        if http_port is not None:
            http = worker_http(worker, runtime.workspaces, "127.0.0.1", http_port, check_every=5.0)
            bound = await stack.enter_async_context(http)
            print(f"dashboard: http://127.0.0.1:{bound}/", file=out, flush=True)
        try:
            await story.play()
            await _report(out, bus, stage.bare if stage else root / "gitops.git", stage)
            if keep:
                print(f"\nkept in {root}: try `promoter status --state-dir {root}`", file=out)
            if http_port is not None:  # the worker goes on: the page stays live
                print(f"\ndashboard still at http://127.0.0.1:{bound}/ (Ctrl-C to stop)", file=out)
                out.flush()
                await _until_stopped()
        finally:
            worker.stop()
            await task
        return 0


async def _report(out: TextIO, bus: Bus, repo: Path, stage: GitHubStage | None) -> None:
    """The final status, the gitops log and (on GitHub) the API summary."""
    print("\nfinal status:", file=out)
    print("\n".join(status_table(await status(bus))), file=out)
    print("\ngitops main branch (first parent, newest first):", file=out)
    log = _git("log", "--first-parent", "--format=  %h %s", "main", cwd=repo)
    print(log, file=out, end="")
    if stage:
        print(f"\n{stage.summary()}", file=out)


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM."""
    stop = asyncio.Event()
    with on_stop_signals(stop.set):
        await stop.wait()
