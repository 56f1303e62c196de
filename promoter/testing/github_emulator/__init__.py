"""A protocol-faithful GitHub REST emulator backed by real bare git repositories.

PyGithub talks to it unchanged (`Github(base_url=emu.api_url, ...)`), git clones and pushes over
smart HTTP (`emu.git_url(owner, repo)`), and tests steer it through faults, clocks and limits::

    with running(tmp_path, Users(tokens={"t": "alice"})) as emu:
        emu.create_repo("acme", "deploy", files={"app.yaml": "image: v1"})
        gh = Github(base_url=emu.api_url, auth=Auth.Token("t"), retry=None,
                    seconds_between_requests=None, seconds_between_writes=None)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from promoter.testing.github_emulator import gitrepo
from promoter.testing.github_emulator.app import API_PREFIX, Server
from promoter.testing.github_emulator.calls import Call, CallLog
from promoter.testing.github_emulator.common import pull_shape
from promoter.testing.github_emulator.faults import KINDS, Faults
from promoter.testing.github_emulator.hooks import Delivered, Hook, HookSender
from promoter.testing.github_emulator.ratelimit import RateLimits
from promoter.testing.github_emulator.router import Ctx, Reply, Route
from promoter.testing.github_emulator.store import RepoSettings
from promoter.testing.github_emulator.users import App, Users
from promoter.testing.github_emulator.world import World, identity

__all__ = [
    "KINDS",
    "App",
    "Call",
    "Delivered",
    "Emulator",
    "Faults",
    "Users",
    "running",
    "serve",
]

HOOK_WAIT = 10.0


class Emulator:
    """One emulated GitHub over the bare repositories `root/<owner>/<repo>.git`.

    Args:
        root: Directory holding the bare repositories (and their `emulator.json` state).
        users: Tokens, teams, permissions and Apps; default: any token is its own login.
        clock: Unix time source, injectable so tests move time without sleeping.
        rate_limit: The hourly `core` budget of each identity.
        secondary_writes_per_minute: Content-creating requests one identity may send in any
            sliding minute before the secondary limit refuses them.
    """

    def __init__(
        self,
        root: Path,
        users: Users | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rate_limit: int = 5000,
        secondary_writes_per_minute: int = 80,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        limits = RateLimits(rate_limit, secondary_writes_per_minute)
        self.world = World(self.root, users or Users(), clock, limits)
        self._calls = CallLog()
        self._hooks = HookSender()
        self.server = Server(self.world, self._calls, self._hooks)
        self.base_url = ""
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def api_url(self) -> str:
        """The API base URL for PyGithub: `http://127.0.0.1:PORT/api/v3`."""
        return self.base_url + API_PREFIX

    @property
    def users(self) -> Users:
        """Who the emulator knows."""
        return self.world.users

    @property
    def faults(self) -> Faults:
        """Failures to inject into API requests."""
        return self.world.faults

    @property
    def calls(self) -> list[Call]:
        """Every API request handled so far (git and control requests excluded)."""
        return self._calls.snapshot()

    @property
    def secondary_limit_hits(self) -> int:
        """How many requests the secondary (content-creation) limit refused."""
        return self.world.limits.secondary_hits

    @property
    def record_bodies(self) -> bool:
        """Whether calls keep the parsed JSON body of each answer (`Call.body`)."""
        return self.server.record_bodies

    @record_bodies.setter
    def record_bodies(self, value: bool) -> None:
        self.server.record_bodies = value

    @property
    def deliveries(self) -> list[Delivered]:
        """Webhook deliveries attempted so far."""
        return list(self._hooks.delivered)

    def reset_calls(self) -> None:
        """Forget the calls recorded so far."""
        self._calls.clear()

    def git_url(self, owner: str, repo: str) -> str:
        """The smart-HTTP clone URL, `http://127.0.0.1:PORT/owner/repo.git`."""
        return f"{self.base_url}/{owner}/{repo}.git"

    def create_repo(
        self,
        owner: str,
        repo: str,
        files: Mapping[str, str] | None = None,
        default_branch: str = "main",
    ) -> Path:
        """Create the bare repository with one commit of `files` on `default_branch`."""
        path = self.world.store.path(owner, repo)
        if path.exists():
            raise FileExistsError(f"{path} exists already; pick another name or remove it")
        who = gitrepo.Identity(
            "emulator", "emulator@localhost", f"@{int(self.world.clock())} +0000"
        )
        gitrepo.init_bare(path, files or {}, default_branch, who)
        return path

    def commit(
        self,
        owner: str,
        repo: str,
        branch: str,
        files: Mapping[str, str | None],
        message: str = "Update files",
        *,
        start: str | None = None,
        author: str = "emulator",
    ) -> str:
        """Commit `files` (None deletes) on `branch`, as a push would; returns the new sha.

        A missing `branch` starts from branch `start` (default: the default branch).
        """
        path = self.world.store.path(owner, repo)
        parent = gitrepo.ref_sha(path, f"refs/heads/{branch}")
        if parent is None:
            origin = start or gitrepo.default_branch(path)
            parent = gitrepo.ref_sha(path, f"refs/heads/{origin}")
            if parent is None:
                raise ValueError(f"{owner}/{repo} has no branch {origin!r} to start from")
        who = identity(author, self.world.clock())
        sha = gitrepo.commit_files(path, branch, files, message, who, parent=parent)
        if sha is None:
            raise RuntimeError(f"{branch} moved while committing; try again")
        return sha

    def configure_repo(
        self,
        owner: str,
        repo: str,
        *,
        required_approvals: int = 0,
        allow_merge_commit: bool = True,
        allow_squash_merge: bool = True,
        allow_rebase_merge: bool = True,
        require_up_to_date: bool = False,
    ) -> None:
        """Set the repository's merge methods and branch protection (persisted)."""
        settings = RepoSettings(
            allow_merge_commit=allow_merge_commit,
            allow_squash_merge=allow_squash_merge,
            allow_rebase_merge=allow_rebase_merge,
            required_approvals=required_approvals,
            require_up_to_date=require_up_to_date,
        )
        with self.world.store.open(owner, repo, self.world.clock()) as state:
            state.settings = settings

    def add_hook(self, url: str, secret: str | None = None) -> None:
        """Deliver `pull_request_review` and `pull_request` (closed) events to `url`."""
        self._hooks.hooks.append(Hook(url, secret))

    def pull(self, owner: str, repo: str, number: int) -> dict[str, Any]:
        """The stored PR in the full API shape, without starting a mergeability computation."""
        ctx = self._ctx(owner, repo)
        with self.world.store.open(owner, repo, ctx.now) as state:
            pr = state.pulls[number]
            self.world.sync(state, pr, ctx.now)
            return pull_shape(ctx, state, pr, full=True)

    def _ctx(self, owner: str, repo: str) -> Ctx:
        def nothing(_ctx: Ctx) -> Reply:
            return Reply(204)

        return Ctx(
            world=self.world,
            method="GET",
            path=f"/repos/{owner}/{repo}",
            params={"owner": owner, "repo": repo},
            query={},
            body=None,
            login=owner,
            api=self.api_url,
            html=self.base_url,
            now=self.world.clock(),
            route=Route("GET", "/repos/{owner}/{repo}", nothing),
        )

    async def drain_hooks(self) -> None:
        """Wait until every webhook delivery scheduled so far has finished."""
        await self._hooks.drain()

    def wait_for_hooks(self, timeout: float = HOOK_WAIT) -> None:
        """`drain_hooks` from another thread (the one using a `running` emulator)."""
        loop = self._loop
        if loop is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run_coroutine_threadsafe(self._hooks.drain(), loop).result(timeout)
            return
        raise RuntimeError("wait_for_hooks blocks; on the emulator's loop use drain_hooks()")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host:port` (0: a free port) on the running event loop."""
        runner = web.AppRunner(self.server.app(), auto_decompress=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        self._runner, self._loop = runner, asyncio.get_running_loop()
        self.base_url = f"http://{host}:{bound}"
        self.server.origin = self.base_url

    async def stop(self) -> None:
        """Finish webhook deliveries and stop listening."""
        await self._hooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@asynccontextmanager
async def serve(
    root: Path,
    users: Users | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
    rate_limit: int = 5000,
    secondary_writes_per_minute: int = 80,
) -> AsyncIterator[Emulator]:
    """An emulator served on the current event loop (the other arguments as for `Emulator`)."""
    emulator = Emulator(
        root,
        users,
        clock=clock,
        rate_limit=rate_limit,
        secondary_writes_per_minute=secondary_writes_per_minute,
    )
    await emulator.start(host, port)
    try:
        yield emulator
    finally:
        await emulator.stop()


@contextmanager
def running(
    root: Path,
    users: Users | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] = time.time,
    rate_limit: int = 5000,
    secondary_writes_per_minute: int = 80,
) -> Iterator[Emulator]:
    """An emulator served by its own thread and event loop; usable from sync and async code.

    The other arguments are as for `Emulator`.
    """
    emulator = Emulator(
        root,
        users,
        clock=clock,
        rate_limit=rate_limit,
        secondary_writes_per_minute=secondary_writes_per_minute,
    )
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failures: list[BaseException] = []

    def serve_forever() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(emulator.start(host, port))
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread)
            failures.append(exc)
            started.set()
            loop.close()
            return
        started.set()
        loop.run_forever()
        loop.run_until_complete(emulator.stop())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()

    thread = threading.Thread(target=serve_forever, name="github-emulator", daemon=True)
    thread.start()
    started.wait()
    if failures:
        raise failures[0]
    try:
        yield emulator
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
