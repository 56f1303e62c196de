"""Update targets stay inside their clone, and only counted approvals merge (local and GitHub)."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gitfixtures import make_remote, remote_branches, remote_log, run_git
from github import GithubException
from github_world import BOT, VirtualTime, environment, github_world
from harness import GITOPS, Harness, pipeline_yaml
from pydantic import SecretStr
from test_effects import bundle, effect, target
from test_gateway import Client
from test_github_e2e import World
from webhooks import fixture_json

from promoter.core.loader import load_pipelines
from promoter.errors import ConfigurationError, PipelineError, UpdateError
from promoter.gateway.server import Gateway, serve
from promoter.gitops.repo import Edit, TreeEdit, Workspace
from promoter.runtime.app import Runtime
from promoter.runtime.bus import Bus
from promoter.runtime.effects import Target
from promoter.runtime.emit import review_event
from promoter.runtime.providers import GitHubSetup
from promoter.scm.github.auth import Credentials
from promoter.sources.base import SourceConfig
from promoter.sources.verify import github_signature
from promoter.testing.github_emulator import Users
from promoter.testing.github_emulator.store import Review as EmulatedReview

pytestmark = pytest.mark.security

CANARY = "image:\n  tag: host-owned\n"
SECRET = "gh-hook-secret"
TRAVERSALS = {
    "parent": ("../values.yaml", "leaves the repository with '..'"),
    "deeper": ("envs/../../values.yaml", "leaves the repository with '..'"),
    "absolute": ("/etc/values.yaml", "is absolute"),
    "home": ("~/values.yaml", "is absolute"),
    "drive": ("C:/values.yaml", "is absolute"),
    "backslashes": ("envs\\\\..\\\\..\\\\values.yaml", "backslashes or NUL"),
    "nul": ("envs/dev/values.yaml\\0.txt", "backslashes or NUL"),
    "git config": (".git/config", "inside .git"),
    "git hooks in any case": ("envs/.Git/hooks/post-checkout", "inside .git"),
    "a directory": ("envs/dev/", "names a directory"),
}


@pytest.mark.parametrize("case", TRAVERSALS, ids=list(TRAVERSALS))
def test_validation_refuses_update_targets_outside_the_repository(
    tmp_path: Path, case: str
) -> None:
    path, message = TRAVERSALS[case]
    pipeline = tmp_path / "shop.yaml"
    text = pipeline_yaml("shop", tmp_path / "gitops.git")
    pipeline.write_text(text.replace("file: envs/dev/values.yaml", f'file: "{path}"'))
    with pytest.raises(PipelineError, match=message):
        load_pipelines([pipeline])


def _writes_to(path: str) -> tuple[Edit, Edit]:
    """An edit of the worktree and an edit in memory, each writing `path`."""

    def in_worktree(root: Path) -> None:
        (root / path).write_text(CANARY)

    return in_worktree, TreeEdit(lambda files: files.write_text(path, CANARY))


def test_the_clone_refuses_escapes_even_when_validation_was_bypassed(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, GITOPS)
    workspace = Workspace(str(remote), tmp_path / "repos")
    workspace.sync("main")
    config = (workspace.path / ".git" / "config").read_bytes()
    outside = tmp_path / "outside.yaml"
    for path in ("../../outside.yaml", str(outside), "envs/../../../outside.yaml", ".git/config",
                 "envs/dev/.git/x", "envs/dev/values.yaml\0"):  # fmt: skip
        for edit in _writes_to(path):
            with pytest.raises(UpdateError, match="fix the update in the pipeline"):
                workspace.prepare_branch("promoter/shop/dev", "main", edit, "escape")
    assert not outside.exists()
    assert (workspace.path / ".git" / "config").read_bytes() == config
    assert remote_branches(remote) == ["main"]


def remote_with_links(root: Path, links: dict[str, str]) -> Path:
    """A gitops remote (the harness files) where each path in `links` is a symbolic link."""
    remote = make_remote(root, GITOPS)
    work = root / f"links-{remote.name}"
    run_git(root, "clone", "--quiet", str(remote), str(work))
    for name, points_to in links.items():
        path = work / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        path.symlink_to(points_to)
    run_git(work, "add", "--all")
    run_git(work, "commit", "--quiet", "-m", "links")
    run_git(work, "push", "--quiet", "origin", "HEAD:main")
    return remote


def _snapshot(paths: list[Path]) -> dict[Path, bytes | None]:
    return {p: p.read_bytes() if p.is_file() else None for p in paths}


async def _escape_attempt(
    tmp_path: Path, runtime: Runtime, links: dict[str, str], watched: list[Path]
) -> tuple[Target, Path]:
    """Promote into a repository holding `links`; returns the pipeline and its remote."""
    remote = remote_with_links(tmp_path, links)
    before = _snapshot(watched)
    shop = target(tmp_path, remote)
    with pytest.raises(UpdateError, match="promoter does not write through links"):
        await runtime.runner.carry_out(shop, effect("open-pr", "dev", bundle("1.0.0", 1)))
    assert _snapshot(watched) == before
    assert remote_branches(remote) == ["main"]
    return shop, remote


@pytest.mark.parametrize(
    "link",
    ["a file on the host", "a file the host does not have yet", "a directory on the host",
     "git's own config", "the state dir"],
)  # fmt: skip
async def test_a_symbolic_link_never_leads_an_update_outside_the_clone(
    bus: Bus, tmp_path: Path, link: str
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "values.yaml").write_text(CANARY)
    state = tmp_path / "state"
    runtime = Runtime(bus, state)
    links, watched = {
        "a file on the host": ({"envs/dev/values.yaml": str(host / "values.yaml")},
                               [host / "values.yaml"]),
        "a file the host does not have yet": ({"envs/dev/values.yaml": str(host / "new.yaml")},
                                              [host / "new.yaml"]),
        "a directory on the host": ({"envs/dev": str(host)}, [host / "values.yaml"]),
        "git's own config": ({"envs/dev/values.yaml": "../../.git/config"}, []),
        "the state dir": ({"envs/dev": str(state)}, [state / "values.yaml"]),
    }[link]  # fmt: skip
    shop, _ = await _escape_attempt(tmp_path, runtime, links, watched)
    clone = runtime.workspaces(shop.repository).path
    assert "[core]" in (clone / ".git" / "config").read_text()  # git's config is untouched


async def test_a_pipeline_cannot_write_into_another_pipelines_clone(
    bus: Bus, tmp_path: Path
) -> None:
    runtime = Runtime(bus, tmp_path / "state")
    other = make_remote(tmp_path, GITOPS)
    runtime.workspaces(str(other)).sync("main")  # the other pipeline's clone exists
    victim = runtime.workspaces(str(other)).path / "envs" / "dev" / "values.yaml"
    links = {"envs/dev/values.yaml": str(victim)}
    await _escape_attempt(tmp_path, runtime, links, [victim])
    assert run_git(victim.parent, "status", "--porcelain") == ""


async def test_an_escape_is_shown_in_status_and_nothing_is_committed(world: Harness) -> None:
    host = world.root / "host.yaml"
    host.write_text(CANARY)
    world.remote = remote_with_links(world.root, {"envs/dev/values.yaml": str(host)})
    world.write_pipeline("shop")
    await world.start_worker()
    before = world.main_log()

    await world.image("1.0.0", 1)

    async def blocked() -> bool:
        found = await world.maybe_env("shop", "dev")
        return bool(found and any("symbolic link" in b for b in found["blocked"]))

    await world.until(blocked, "the dev update is refused")
    assert host.read_text() == CANARY
    assert world.main_log() == before
    assert not (await world.env("shop", "dev"))["live"]
    assert remote_log(world.remote, "main") == before


# --- approvals --------------------------------------------------------------------------


async def _prod_pr(world: Harness) -> str:
    """Promote 1.0.0 to prod's PR (alice the only listed reviewer); the pending bundle's id."""
    path = world.pipelines / "shop.yaml"
    text = pipeline_yaml("shop", world.remote).replace(
        "approvals: {count: 1}", "approvals: {count: 1, reviewers: [alice]}"
    )
    path.write_text(text)
    await world.start_worker()
    await world.image("1.0.0", 1)
    await world.pending("shop", "prod", "1.0.0")
    pr = next(p for p in await world.prs() if p.environment == "prod")
    return pr.bundle


async def _not_merged(world: Harness) -> None:
    await world.quiet()
    prod = await world.env("shop", "prod")
    assert prod["live"] == {}, "prod went live"
    assert prod["pending"] is not None and not prod["pending"]["merging"]


async def test_local_approvals_by_the_author_by_unlisted_users_or_of_a_stale_bundle_never_merge(
    world: Harness,
) -> None:
    bundle_one = await _prod_pr(world)
    with pytest.raises(ConfigurationError, match="author cannot approve"):
        await world.approve("shop", "prod", "promoter")
    await world.approve("shop", "prod", "mallory")
    await _not_merged(world)
    await world.image("1.1.0", 2)
    await world.pending("shop", "prod", "1.1.0")
    stale = {"pipeline": "shop", "environment": "prod", "reviewer": "alice", "teams": [],
             "state": "approved", "bundle": bundle_one, "pr": 1}  # fmt: skip
    await world.bus.publish_event(review_event(stale, now=world.clock()))  # sent before 1.1.0
    await _not_merged(world)

    await world.approve("shop", "prod", "alice")  # the control: a listed, current approval

    await world.live("shop", "prod", "1.1.0")


async def test_github_webhooks_never_approve_or_merge_a_local_pipelines_pr(
    world: Harness,
) -> None:
    bundle_id = await _prod_pr(world)
    gateway = Gateway(world.bus, {"github": SourceConfig(secret=SECRET)}, world.clock)
    async with serve(gateway, "127.0.0.1", 0) as port, aiohttp.ClientSession() as session:
        client = Client(session, f"http://127.0.0.1:{port}")
        for event, payload in (("pull_request_review", _review(bundle_id)),
                               ("pull_request", _merged(bundle_id))):  # fmt: skip
            body = json.dumps(payload).encode()
            status, _ = await client.post("github", body, _signed(event, body))
            assert status == 202  # genuine GitHub deliveries, about some promoter/shop/prod
    await _not_merged(world)
    assert (await world.env("shop", "prod"))["pending"]["approvals"] == []


def _signed(event: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": f"d-{event}",
        "X-Hub-Signature-256": github_signature(SECRET, body),
    }


def _review(bundle_id: str) -> dict[str, Any]:
    payload = fixture_json("github", "pull_request_review-submitted-promoter.json")
    payload["review"]["user"]["login"] = "alice"
    return _retarget(payload, bundle_id)


def _merged(bundle_id: str) -> dict[str, Any]:
    return _retarget(fixture_json("github", "pull_request-closed-promoter.json"), bundle_id)


def _retarget(payload: dict[str, Any], bundle_id: str) -> dict[str, Any]:
    """The payload about branch promoter/shop/prod, carrying `bundle_id`."""
    payload["pull_request"]["head"]["ref"] = "promoter/shop/prod"
    trailers = f"Promoter-Pipeline: shop\nPromoter-Environment: prod\nPromoter-Bundle: {bundle_id}"
    payload["pull_request"]["body"] = f"Promote shop to prod.\n\n{trailers}\n"
    return payload


@pytest.fixture
async def on_github(tmp_path: Path) -> AsyncIterator[World]:
    """Pipeline `shop` on the emulator, webhooks to the gateway; the bot is a listed reviewer."""
    harness = await Harness(tmp_path).start()
    try:
        with github_world(tmp_path, Users(teams={"acme/deployers": [BOT]})) as github:
            gateway = Gateway(harness.bus, {"github": SourceConfig(secret=SECRET)}, harness.clock)
            async with serve(gateway, "127.0.0.1", 0) as port:
                github.emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", SECRET)
                gates = '{approvals: {count: 1, reviewers: [alice, "@acme/deployers"]}}'
                prod = environment("prod", upstream="dev", gates=gates)
                shop = github.pipeline(environment("dev", auto=True), prod)
                (harness.pipelines / "shop.yaml").write_text(shop)
                time = VirtualTime()
                credentials = Credentials(token=SecretStr(BOT))
                harness.github = GitHubSetup(credentials, clock=time.clock, sleep=time.sleep)
                yield World(harness, github, await harness.start_worker())
                await harness.stop_workers()
    finally:
        await harness.close()


async def test_github_approvals_by_the_author_by_unlisted_users_or_of_a_stale_head_never_merge(
    on_github: World,
) -> None:
    harness, emu = on_github.harness, on_github.github.emu
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    number = on_github.open_pr("prod")
    head = on_github.repo.get_pull(number).head.sha
    with pytest.raises(GithubException, match="Can not approve your own pull request"):
        await on_github.review("prod", BOT, "APPROVE")
    with emu.world.store.open("acme", "deploy", emu.world.clock()) as state:  # as if GitHub
        state.reviews.append(  # had let the author approve (it never does)
            EmulatedReview(id=state.new_id(), pull=number, user=BOT, state="APPROVED",
                           commit_id=head, submitted_at=emu.world.clock())
        )  # fmt: skip
    assert await on_github.worker.poller.poll("shop") == 1
    await _not_merged(harness)
    await on_github.review("prod", "mallory", "APPROVE")
    await _not_merged(harness)
    await harness.image("1.1.0", 2)
    await harness.pending("shop", "prod", "1.1.0")
    assert on_github.open_pr("prod") == number  # the same PR, at a new head
    await on_github.review("prod", "alice", "APPROVE", commit=head)
    await _not_merged(harness)
    assert emu.pull("acme", "deploy", number)["merged"] is False

    await on_github.review("prod", "alice", "APPROVE")  # the control: listed, current head

    await harness.live("shop", "prod", "1.1.0")
