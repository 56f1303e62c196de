"""The GitHub provider on real PyGithub against the emulator: open, adopt, merge, close, review."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gitfixtures import commit_to_remote, remote_branches, remote_log
from github import Github
from github_world import BOT, GitHubWorld, github_world

from promoter.errors import ConfigurationError, HeadMovedError, RateLimitedError, TransientError
from promoter.gitops.results import MergeConflict
from promoter.scm.github.client import counting
from promoter.testing.github_emulator import Users


@pytest.fixture
def world(tmp_path: Path) -> Iterator[GitHubWorld]:
    users = Users(teams={"acme/sre": ["carol"]}, permissions={"acme/deploy": {"dave": "read"}})
    with github_world(tmp_path, users) as made:
        yield made


def push(world: GitHubWorld, env: str, version: str, start: str = "main") -> str:
    files = {f"envs/{env}/values.yaml": f"image:\n  tag: {version}\n"}
    return commit_to_remote(
        world.bare, f"promoter/shop/{env}", files, f"api {version}", start=start
    )


async def test_opening_makes_one_labelled_pr_with_a_pending_gates_status(
    world: GitHubWorld,
) -> None:
    provider = world.provider()
    head = push(world, "prod", "1.0.0")
    with counting() as calls:
        pr = await provider.ensure(world.spec("prod", head, "b1", "1.0.0"))
    assert calls.total <= 6
    assert (calls.reads, calls.writes) == (1, 3)
    stored = world.emu.pull("acme", "deploy", pr.number)
    assert {label["name"] for label in stored["labels"]} == {"promoter", "env:prod"}
    assert stored["head"]["sha"] == head
    assert "Promoter-Bundle: b1" in stored["body"]
    status = world.github().get_repo("acme/deploy").get_commit(head).get_combined_status()
    gates = [s for s in status.statuses if s.context == "promoter/gates"]
    assert [(s.state, s.description) for s in gates] == [
        ("pending", "waiting: approvals: needs 1 approval(s) from alice; has 0")
    ]
    assert pr.state == "open" and pr.bundle == "b1" and pr.author == BOT


async def test_ensuring_again_changes_nothing_and_a_newer_bundle_updates_the_same_pr(
    world: GitHubWorld,
) -> None:
    provider = world.provider()
    first = await provider.ensure(world.spec("prod", push(world, "prod", "1.0.0"), "b1", "1.0.0"))
    with counting() as calls:
        again = await provider.ensure(world.spec("prod", first.head, "b1", "1.0.0"))
    assert again.number == first.number
    assert (calls.reads, calls.writes) == (1, 0)
    head = push(world, "prod", "1.1.0")
    updated = await provider.ensure(world.spec("prod", head, "b2", "1.1.0"))
    assert updated.number == first.number
    stored = world.emu.pull("acme", "deploy", first.number)
    assert stored["title"] == "promote shop to prod: api 1.1.0"
    assert stored["head"]["sha"] == head
    assert len(world.github().get_repo("acme/deploy").get_pulls(state="all").get_page(0)) == 1


async def test_a_create_that_landed_but_timed_out_is_adopted_not_duplicated(
    world: GitHubWorld,
) -> None:
    world.emu.faults.script("POST", "/repos/acme/deploy/pulls", "5xx-after")
    provider = world.provider()
    pr = await provider.ensure(world.spec("dev", push(world, "dev", "1.0.0"), "b1", "1.0.0"))
    pulls = world.github().get_repo("acme/deploy").get_pulls(state="all").get_page(0)
    assert [p.number for p in pulls] == [pr.number]
    assert {label.name for label in pulls[0].labels} == {"promoter", "env:dev"}


async def test_likely_new_creates_at_once_and_still_adopts_an_open_pr(
    world: GitHubWorld,
) -> None:
    provider = world.provider()
    with counting() as calls:
        first = await provider.ensure(
            world.spec("prod", push(world, "prod", "1.0.0"), "b1", "1.0.0"), likely_new=True
        )
    assert (calls.reads, calls.writes) == (0, 3), "no lookup before the create"
    # a run that crashed after creating it left no record: the PR is adopted, not duplicated
    head = push(world, "prod", "1.1.0")
    with counting() as calls:
        adopted = await provider.ensure(world.spec("prod", head, "b2", "1.1.0"), likely_new=True)
    assert adopted.number == first.number
    assert calls.reads == 1, "'already exists' made it look the PR up"
    pulls = world.github().get_repo("acme/deploy").get_pulls(state="all").get_page(0)
    assert [(p.number, p.title) for p in pulls] == [
        (first.number, "promote shop to prod: api 1.1.0")
    ]


async def test_merge_is_guarded_by_the_head_and_deletes_the_branch(world: GitHubWorld) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("dev", push(world, "dev", "1.0.0"), "b1", "1.0.0"))
    with counting() as calls:
        merged = await provider.merge(pr, "Merge #1: promote\n\nauto: all gates passed")
    assert calls.total <= 3
    assert merged.state == "merged" and merged.merged_sha
    assert "promoter/shop/dev" not in remote_branches(world.bare)
    assert remote_log(world.bare, "main")[0] == "Merge #1: promote"
    current = await provider.current("shop", "dev")
    assert current is not None and current.state == "merged"
    assert await provider.merge(current, "again") == current  # idempotent


async def test_a_head_that_moved_after_approval_is_not_merged(world: GitHubWorld) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("prod", push(world, "prod", "1.0.0"), "b1", "1.0.0"))
    push(world, "prod", "6.6.6")  # someone pushes to promoter's branch
    with pytest.raises(HeadMovedError, match="head moved"):
        await provider.merge(pr, "Merge")
    assert world.emu.pull("acme", "deploy", pr.number)["merged"] is False


async def test_a_conflict_is_a_merge_conflict_and_not_mergeable_yet_is_transient(
    world: GitHubWorld,
) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("dev", push(world, "dev", "1.0.0"), "b1", "1.0.0"))
    commit_to_remote(world.bare, "main", {"envs/dev/values.yaml": "image:\n  tag: 9.9.9\n"}, "x")
    with pytest.raises(MergeConflict, match="conflicts with main"):
        await provider.merge(pr, "Merge")
    pr = await provider.ensure(
        world.spec("staging", push(world, "staging", "1.0.0"), "b1", "1.0.0")
    )
    world.emu.faults.script("PUT", r"/pulls/\d+/merge$", "base-modified")
    with pytest.raises(TransientError, match="not mergeable yet"):
        await provider.merge(pr, "Merge")
    assert (await provider.merge(pr, "Merge")).state == "merged"


async def test_rate_limits_are_waited_out_when_short_and_deferred_when_long(
    world: GitHubWorld,
) -> None:
    provider = world.provider()
    world.emu.faults.script("GET", "/repos/acme/deploy/pulls", "429")
    world.emu.faults.script("GET", "/repos/acme/deploy/pulls", "secondary")
    assert await provider.current("shop", "dev") is None
    world.emu.faults.script("GET", "/repos/acme/deploy/pulls", "5xx", times=2)
    assert await provider.current("shop", "dev") is None
    world.emu.faults.script("GET", "/repos/acme/deploy/pulls", "primary")
    slow = world.provider()
    slow.client.max_wait = 0.5  # the primary fault resets in 1 s: longer than we block
    with pytest.raises(RateLimitedError) as caught:
        await slow.current("shop", "dev")
    assert caught.value.retry_after >= 1


async def test_bad_credentials_are_a_configuration_error(world: GitHubWorld) -> None:
    provider = world.provider()
    anonymous = Github(base_url=world.emu.api_url, lazy=True, retry=None)
    provider.repo = anonymous.get_repo("acme/deploy")
    with pytest.raises(ConfigurationError, match="401"):
        await provider.current("shop", "dev")


async def test_reviews_count_per_github_rules(world: GitHubWorld) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("prod", push(world, "prod", "1.0.0"), "b1", "1.0.0"))
    reviewers = ("alice", "@acme/sre")
    world.review(pr.number, "mallory", "APPROVE")  # not listed
    world.review(pr.number, "carol", "APPROVE")  # listed through @acme/sre
    world.review(pr.number, "bob", "REQUEST_CHANGES")
    status = await provider.review_status("shop", "prod", reviewers)
    assert status is not None
    assert status.stance.approvals == ("carol", "mallory")
    assert status.teams == {"carol": ("@acme/sre",), "mallory": ()}
    assert status.stance.rejections == ("bob",)
    head = push(world, "prod", "1.1.0")  # a newer bundle: earlier approvals are stale
    await provider.ensure(world.spec("prod", head, "b2", "1.1.0"))
    status = await provider.review_status("shop", "prod", reviewers)
    assert status is not None and status.stance.approvals == ()
    assert status.stance.stale == ("carol", "mallory")


async def test_with_no_reviewers_listed_only_writers_count(world: GitHubWorld) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("prod", push(world, "prod", "1.0.0"), "b1", "1.0.0"))
    world.review(pr.number, "dave", "APPROVE")  # read access only
    world.review(pr.number, "erin", "APPROVE")
    status = await provider.review_status("shop", "prod", ())
    assert status is not None and status.stance.approvals == ("erin",)


async def test_closing_comments_and_closes_once(world: GitHubWorld) -> None:
    provider = world.provider()
    pr = await provider.ensure(world.spec("dev", push(world, "dev", "1.0.0"), "b1", "1.0.0"))
    closed = await provider.close(pr, "Closed by promoter: superseded")
    assert closed.state == "closed"
    again = await provider.close(pr, "Closed by promoter: superseded")
    assert again.state == "closed"
    comments = world.github().get_repo("acme/deploy").get_pull(pr.number).get_issue_comments()
    assert [c.body for c in comments] == ["Closed by promoter: superseded"]


async def test_a_token_without_write_access_is_a_configuration_error(world: GitHubWorld) -> None:
    reader = world.provider(login="dave")  # read access only
    head = push(world, "dev", "1.0.0")
    with pytest.raises(ConfigurationError, match="403 Resource not accessible"):
        await reader.ensure(world.spec("dev", head, "b1", "1.0.0"))
