"""End to end on GitHub: events in, PRs on the emulator, approval by review, merges, next env.

A real nats-server, the real worker, real PyGithub against the emulator (real git behind it),
and the emulator's webhooks delivered to the real gateway: nothing is mocked.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from gitfixtures import commit_to_remote, remote_branches
from github import GithubException
from github_world import BOT, GitHubWorld, VirtualTime, environment, github_world
from harness import Harness
from pydantic import SecretStr

from promoter.errors import ConfigurationError
from promoter.gateway.server import Gateway, serve
from promoter.runtime.commands import _review
from promoter.runtime.emit import command_event
from promoter.runtime.providers import GitHubSetup
from promoter.runtime.store import Effect
from promoter.runtime.worker import Worker
from promoter.scm.github.auth import Credentials
from promoter.sources.base import SourceConfig
from promoter.testing.github_emulator import Call, Users

SECRET = "hook-secret"


class World:
    """The harness (NATS, worker) plus the emulator and a gateway its webhooks reach."""

    def __init__(self, harness: Harness, github: GitHubWorld, worker: Worker) -> None:
        self.harness = harness
        self.github = github
        self.worker = worker
        self.repo = github.github("observer").get_repo("acme/deploy")  # not counted as promoter

    def open_pr(self, env: str) -> int:
        pulls = self.repo.get_pulls(state="open", head=f"acme:promoter/shop/{env}").get_page(0)
        assert pulls, f"no open {env} PR"
        return int(pulls[0].number)

    async def review(self, env: str, login: str, event: str, commit: str | None = None) -> None:
        number = self.open_pr(env)
        pull = self.github.github(login).get_repo("acme/deploy").get_pull(number)
        if commit is None:
            pull.create_review(event=event)
        else:
            pull.create_review(commit=self.repo.get_commit(commit), event=event)
        await asyncio.to_thread(self.github.emu.wait_for_hooks)

    async def pending(self, env: str) -> dict[str, object]:
        record, _ = await self.worker.store.load("shop")
        pending = record.state.env(env).pending
        return pending.model_dump() if pending else {}


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    harness = await Harness(tmp_path).start()
    users = Users(teams={"acme/sre": ["carol"]})
    try:
        with github_world(tmp_path, users) as github:
            gateway = Gateway(harness.bus, {"github": SourceConfig(secret=SECRET)}, harness.clock)
            async with serve(gateway, "127.0.0.1", 0) as port:
                github.emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", SECRET)
                approvals = '{approvals: {count: 1, reviewers: [alice, "@acme/sre"]}}'
                only_alice = "{approvals: {count: 1, reviewers: [alice]}}"
                (harness.pipelines / "shop.yaml").write_text(
                    github.pipeline(
                        environment("dev", auto=True),
                        environment("prod", upstream="dev", gates=approvals),
                        environment("eu", upstream="prod", gates=only_alice),
                        merge_method="squash",
                    )
                )
                time = VirtualTime()
                harness.github = GitHubSetup(
                    Credentials(token=SecretStr(BOT)), clock=time.clock, sleep=time.sleep
                )
                worker = await harness.start_worker()
                yield World(harness, github, worker)
                await harness.stop_workers()
    finally:
        await harness.close()


async def test_a_build_reaches_prod_through_a_reviewed_pr(world: World) -> None:
    harness, emu = world.harness, world.github.emu
    await harness.image("1.0.0", 1)
    await harness.live("shop", "dev", "1.0.0")
    await harness.pending("shop", "prod", "1.0.0")
    number = world.open_pr("prod")
    pr = emu.pull("acme", "deploy", number)
    assert {label["name"] for label in pr["labels"]} == {"promoter", "env:prod"}
    assert "**approvals**: needs 1 approval(s) from alice, @acme/sre; has 0" in pr["body"]
    assert "| api | 1.0.0 |" in pr["body"]
    record, _ = await world.worker.store.load("shop")
    pending = record.state.env("prod").pending
    assert pending is not None
    event = pending.bundle.versions["api"].event  # the CloudEvent that brought the build
    assert event is not None and f"`{event}`" in pr["body"]
    status = world.repo.get_commit(pr["head"]["sha"]).get_combined_status()
    assert [(s.context, s.state) for s in status.statuses] == [("promoter/gates", "pending")]

    await world.review("prod", "mallory", "APPROVE")  # not a listed reviewer
    with pytest.raises(GithubException, match="Can not approve your own pull request"):
        await world.review("prod", BOT, "APPROVE")  # the author cannot approve
    await world.review("prod", "bob", "REQUEST_CHANGES")
    await harness.until(
        lambda: _has(world, "prod", rejections=["bob"]), "bob's change request is seen"
    )
    await world.review("prod", "alice", "APPROVE")
    await harness.until(
        lambda: _has(world, "prod", approvals={"alice": [], "mallory": []}), "alice's approval"
    )
    assert emu.pull("acme", "deploy", number)["merged"] is False  # bob still blocks

    [bobs] = [r for r in world.repo.get_pull(number).get_reviews() if r.user.login == "bob"]
    bobs.dismiss("addressed")  # the dismissal webhook wakes the engine
    await asyncio.to_thread(emu.wait_for_hooks)
    await harness.live("shop", "prod", "1.0.0")
    merged = emu.pull("acme", "deploy", number)
    assert merged["merged"] is True and merged["head"]["sha"] == pr["head"]["sha"]
    assert "promoter/shop/prod" not in remote_branches(world.github.bare)
    await harness.pending("shop", "eu", "1.0.0")  # and on to the next environment


async def test_a_stale_approval_does_not_merge_and_a_newer_bundle_updates_the_same_pr(
    world: World,
) -> None:
    harness = world.harness
    await harness.image("1.1.0", 1)
    await harness.pending("shop", "prod", "1.1.0")
    first = world.open_pr("prod")
    old_head = world.repo.get_pull(first).head.sha
    await harness.image("1.2.0", 2)
    await harness.pending("shop", "prod", "1.2.0")
    assert world.open_pr("prod") == first  # one PR per environment, updated in place
    await world.review("prod", "alice", "APPROVE", commit=old_head)
    await harness.quiet()
    assert not (await harness.env("shop", "prod"))["live"]
    await world.review("prod", "carol", "APPROVE")  # @acme/sre, on the current head
    await harness.live("shop", "prod", "1.2.0")


async def test_the_slow_poll_finds_what_no_webhook_said(world: World) -> None:
    harness, emu = world.harness, world.github.emu
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    emu._hooks.hooks.clear()  # webhooks lost
    await world.review("prod", "alice", "APPROVE")
    await harness.quiet()
    assert not (await harness.env("shop", "prod"))["live"]
    assert await world.worker.poller.poll("shop") == 1
    await harness.live("shop", "prod", "1.0.0")


async def test_a_bundle_declined_upstream_closes_its_prod_pr_with_a_comment(world: World) -> None:
    harness = world.harness
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    number = world.open_pr("prod")
    rollback = {"pipeline": "shop", "environment": "dev", "action": "rollback", "by": "ops"}
    await harness.bus.publish_event(command_event(rollback, now=harness.clock()))
    await harness.until(lambda: _closed(world, number), "the prod PR is closed")
    comments = [c.body for c in world.repo.get_pull(number).get_issue_comments()]
    assert comments == ["Closed by promoter: bundle was rolled back or declined upstream"]


async def _has(world: World, env: str, **expected: object) -> bool:
    pending = await world.pending(env)
    return all(pending.get(k) == v for k, v in expected.items())


async def _says(read: Callable[[], str], text: str) -> bool:
    return text in await asyncio.to_thread(read)


async def _closed(world: World, number: int) -> bool:
    return bool(world.repo.get_pull(number).state == "closed")


async def test_promoter_approve_points_github_pipelines_to_github(world: World) -> None:
    args = argparse.Namespace(pipeline="shop", environment="prod", state_dir=None)
    with pytest.raises(ConfigurationError, match="review the prod PR there"):
        await _review(args, world.harness.bus)


async def test_api_requests_per_promotion_as_the_emulator_counts_them(world: World) -> None:
    harness, emu = world.harness, world.github.emu
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    await asyncio.to_thread(emu.wait_for_hooks)
    await harness.quiet()
    opened = _routes(emu.calls)
    emu.reset_calls()
    await world.review("prod", "alice", "APPROVE")
    await harness.live("shop", "prod", "1.0.0")
    await asyncio.to_thread(emu.wait_for_hooks)
    await harness.quiet()
    approved = _routes(emu.calls)
    # dev: create (no PR known: no list first), label (no gates block: no pending status),
    # then status, merge, delete; its merge webhook wakes a sync (1 list); prod: create, label,
    # pending status
    assert opened == {
        "GET /repos/{owner}/{repo}/pulls": 1,
        "POST /repos/{owner}/{repo}/pulls": 2,
        "POST /repos/{owner}/{repo}/issues/{issue_number}/labels": 2,
        "POST /repos/{owner}/{repo}/statuses/{sha}": 2,
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge": 1,
        "DELETE /repos/{owner}/{repo}/git/refs/{ref}": 1,
    }
    # the review webhook wakes a sync (list + reviews), then status, merge, delete; the merge
    # webhook wakes one more sync (1 list); then eu's PR opens (create, label, status)
    assert approved == {
        "GET /repos/{owner}/{repo}/pulls": 2,
        "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews": 1,
        "POST /repos/{owner}/{repo}/statuses/{sha}": 2,
        "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge": 1,
        "DELETE /repos/{owner}/{repo}/git/refs/{ref}": 1,
        "POST /repos/{owner}/{repo}/pulls": 1,
        "POST /repos/{owner}/{repo}/issues/{issue_number}/labels": 1,
    }


def _routes(calls: list[Call]) -> dict[str, int]:
    """Requests promoter made, by route (what reviewers did through the API is left out)."""
    return dict(Counter(str(c.route) for c in calls if c.login == BOT))


async def test_a_merge_at_a_head_that_moved_is_refused_then_the_pr_is_read_again(
    world: World,
) -> None:
    harness, worker = world.harness, world.worker
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    await harness.quiet()  # the worker idles; the merge is carried out by hand, at a set moment
    record, _ = await worker.store.load("shop")
    known, pending = record.prs["prod"], record.state.env("prod").pending
    assert pending is not None
    target = worker.targets["shop"]
    files = {"envs/prod/values.yaml": "image:\n  tag: hotfix\n"}
    moved = commit_to_remote(world.github.bare, "promoter/shop/prod", files, "hotfix")
    merge = Effect(
        seq=99,
        action="merge",
        environment="prod",
        bundle=pending.bundle,
        reason="approved by alice",
        at=harness.clock(),
        head=known.head,
    )
    refused = await worker.runner.carry_out(target, merge, {}, known)
    assert refused.refused is not None and "head moved" in refused.refused
    assert world.github.emu.pull("acme", "deploy", known.number)["merged"] is False
    unknown = known.model_copy(update={"head": ""})
    auto = merge.model_copy(update={"head": None})  # e.g. an auto environment
    merged = await worker.runner.carry_out(target, auto, {}, unknown)
    assert merged.merged
    assert world.github.emu.pull("acme", "deploy", known.number)["head"]["sha"] == moved


async def test_the_gates_status_follows_the_blocks_while_the_pr_waits(world: World) -> None:
    harness = world.harness
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    head = world.repo.get_pull(world.open_pr("prod")).head.sha

    def gates() -> str:
        status = world.repo.get_commit(head).get_combined_status()
        return str(next(s.description for s in status.statuses if s.context == "promoter/gates"))

    assert gates().startswith("waiting: approvals: needs 1 approval(s)")
    hold = {"pipeline": "shop", "environment": "prod", "action": "hold", "by": "ops"}
    await harness.bus.publish_event(command_event(hold, now=harness.clock()))
    await harness.until(lambda: _says(gates, "held: environment is held"), "the status says held")
