"""KV records, leases and the local PR provider against a real nats-server."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gitfixtures import make_remote, remote_log

from promoter.core.pipeline import is_local_location
from promoter.errors import ConfigurationError, TransientError
from promoter.runtime.bus import PIPELINE_BUCKET, Bus, connect, kv_values
from promoter.runtime.effects import Workspaces
from promoter.runtime.failpoints import Failpoints
from promoter.runtime.natsserver import EmbeddedServer, free_port, nats_server_path, wait_for_port
from promoter.runtime.store import Leases, Record, StaleRecordError, StateStore
from promoter.scm.base import PullRequestSpec, Review
from promoter.scm.local import LocalPullRequests

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_records_are_written_only_over_the_revision_read(bus: Bus) -> None:
    store = StateStore(bus.state, bus.js)
    record, revision = await store.load("shop")
    assert revision == 0
    first = await store.save(record, 0)
    with pytest.raises(StaleRecordError):
        await store.save(record, 0)
    record.decisions = 1
    second = await store.save(record, first)
    with pytest.raises(StaleRecordError):
        await store.save(record, first)  # a writer that read the old revision loses
    loaded, revision = await store.load("shop")
    assert (loaded.decisions, revision) == (1, second)
    assert [r.pipeline for r in await store.all()] == ["shop"]


async def test_concurrent_read_modify_write_loses_no_update(bus: Bus) -> None:
    store = StateStore(bus.state, bus.js)

    async def bump() -> None:
        for _ in range(25):
            while True:
                record, revision = await store.load("count")
                record.decisions += 1
                try:
                    await store.save(record, revision)
                    break
                except StaleRecordError:
                    continue

    await asyncio.gather(*(bump() for _ in range(4)))
    assert (await store.load("count"))[0].decisions == 100


async def test_leases_exclude_others_until_released_or_expired(bus: Bus) -> None:
    clock = [1000.0]
    a = Leases(bus.leases, "a", ttl=30, now=lambda: clock[0])
    b = Leases(bus.leases, "b", ttl=30, now=lambda: clock[0])
    held = await a.acquire("pipeline.shop")
    assert held is not None
    assert await b.acquire("pipeline.shop") is None
    await held.release()
    taken = await b.acquire("pipeline.shop")
    assert taken is not None
    clock[0] += 31  # b died without releasing; its lease lapses
    stolen = await a.acquire("pipeline.shop")
    assert stolen is not None
    assert await taken.renew() is False  # b learns it lost the lease
    await taken.release()  # releasing a lost lease must not free a's
    assert await b.acquire("pipeline.shop") is None


def _spec(head: str, bundle: str = "b1") -> PullRequestSpec:
    return PullRequestSpec(
        repository="/srv/gitops",
        pipeline="shop",
        environment="prod",
        base="main",
        branch="promoter/shop/prod",
        head=head,
        title="promote",
        body="body",
        bundle=bundle,
        versions={"api": "1.0.0"},
    )


async def test_local_prs_adopt_the_open_pr_of_a_branch(bus: Bus, tmp_path: Path) -> None:
    prs = LocalPullRequests(bus.prs, bus.js, Workspaces(tmp_path / "repos"), lambda: NOW)
    first = await prs.ensure(_spec("a" * 40))
    again = await prs.ensure(_spec("a" * 40))
    assert again == first
    moved = await prs.ensure(_spec("b" * 40, bundle="b2"))
    assert (moved.number, moved.head, moved.bundle) == (first.number, "b" * 40, "b2")
    assert [p.number for p in await prs.all()] == [first.number]
    closed = await prs.close(moved, "superseded")
    assert closed.state == "closed"
    assert closed.reviews[-1].body == "superseded"
    reopened = await prs.ensure(_spec("c" * 40, bundle="b3"))
    assert reopened.number == first.number + 1


async def test_a_crash_between_index_and_record_does_not_open_a_second_pr(
    bus: Bus, tmp_path: Path
) -> None:
    prs = LocalPullRequests(bus.prs, bus.js, Workspaces(tmp_path / "repos"), lambda: NOW)
    await bus.prs.put("next", b"7")
    await bus.prs.put("head.shop.prod", b"7")  # number reserved, record never written
    pr = await prs.ensure(_spec("a" * 40))
    assert pr.number == 7
    assert [p.number for p in await prs.all()] == [7]


async def test_reviews_count_for_the_head_they_were_given_on(bus: Bus, tmp_path: Path) -> None:
    prs = LocalPullRequests(bus.prs, bus.js, Workspaces(tmp_path / "repos"), lambda: NOW)
    with pytest.raises(ConfigurationError, match="no open PR to review"):
        await prs.review("shop", "prod", Review(user="alice", state="approved", head="", at=NOW))
    await prs.ensure(_spec("a" * 40))
    pr = await prs.review(
        "shop", "prod", Review(user="alice", teams=["sre"], state="approved", head="", at=NOW)
    )
    assert pr.approvals() == {"alice": ["sre"]}
    pr = await prs.ensure(_spec("b" * 40, bundle="b2"))
    assert pr.approvals() == {}, "an approval of an older head does not count"


async def test_local_merge_is_a_real_git_merge_and_idempotent(bus: Bus, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.txt": "1\n"})
    workspaces = Workspaces(tmp_path / "repos")
    workspace = workspaces(str(remote))

    def edit(root: Path) -> None:
        (root / "a.txt").write_text("2\n")

    branch = workspace.prepare_branch("promoter/shop/prod", "main", edit, "promote\n")
    prs = LocalPullRequests(bus.prs, bus.js, workspaces, lambda: NOW)
    spec = _spec(branch.head).model_copy(update={"repository": str(remote)})
    pr = await prs.ensure(spec)
    merged = await prs.merge(pr, "Merge #1: promote\n")
    assert merged.state == "merged" and merged.merged_sha
    assert sorted(remote_log(remote, "main")) == ["Merge #1: promote", "initial", "promote"]
    assert await prs.merge(pr, "Merge #1: promote\n") == merged
    assert len(remote_log(remote, "main")) == 3


def test_failpoints_parse_and_reject_unknown_points() -> None:
    assert Failpoints.parse("").remaining == {}
    assert Failpoints.parse("after-effect:2, before-ack:1").remaining == {
        "after-effect": 2,
        "before-ack": 1,
    }
    for bad in ("after-effect", "nowhere:1", "after-plan:0", "after-plan:x"):
        with pytest.raises(ConfigurationError, match="invalid failpoint"):
            Failpoints.parse(bad)


def test_local_urls() -> None:
    assert is_local_location("/srv/gitops")
    assert is_local_location("./gitops")
    assert is_local_location("file:///srv/gitops")
    assert is_local_location("gitops")
    assert not is_local_location("https://github.com/acme/gitops")
    assert not is_local_location("git@github.com:acme/gitops.git")


def test_record_keeps_a_bounded_list_of_applied_events() -> None:
    record = Record(pipeline="shop")
    for n in range(1500):
        record.mark_applied(f"e{n}")
    assert len(record.applied) == 1000
    assert record.applied[-1] == "e1499"


async def test_an_unreachable_nats_url_is_reported_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import promoter.runtime.bus as bus_module  # noqa: PLC0415

    monkeypatch.setattr(bus_module, "CONNECT_WAIT", 1.0)
    with pytest.raises(
        TransientError, match=r"cannot reach NATS at nats://\*\*\*@127\.0\.0\.1:9"
    ) as info:
        await bus_module.connect("nats://user:secret@127.0.0.1:9", name="test")
    assert "secret" not in str(info.value)


async def test_several_urls_connect_to_one_that_answers(tmp_path: Path) -> None:
    server = EmbeddedServer(tmp_path / "nats").start()
    try:
        seeds = f"nats://127.0.0.1:{free_port()}, {server.url}"  # the first one is down
        connected = await connect(seeds, name="test")
        assert connected.nc.connected_url is not None
        assert connected.nc.connected_url.port == server.port
        await connected.close()
    finally:
        server.stop()


@pytest.fixture
def nats_without_jetstream() -> Iterator[str]:
    """A plain nats-server (no JetStream) on 127.0.0.1; its URL."""
    port = free_port()
    server = subprocess.Popen(
        [nats_server_path(), "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=server)
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()


async def test_a_server_without_jetstream_is_reported_at_once(nats_without_jetstream: str) -> None:
    import promoter.runtime.bus as bus_module  # noqa: PLC0415

    started = asyncio.get_running_loop().time()
    with pytest.raises(TransientError, match="answers but JetStream does not"):
        await bus_module.connect(nats_without_jetstream, name="test")
    assert asyncio.get_running_loop().time() - started < bus_module.LAYOUT_WAIT / 2


async def test_a_kept_lease_outlives_its_ttl_until_the_block_ends(bus: Bus) -> None:
    clock = [1000.0]
    a = Leases(bus.leases, "a", ttl=0.3, now=lambda: clock[0])
    b = Leases(bus.leases, "b", ttl=0.3, now=lambda: clock[0])
    held = await a.acquire("pipeline.shop")
    assert held is not None
    async with held.kept():
        for _ in range(5):  # a long effect: time passes, the heartbeat renews
            clock[0] += 0.2
            await asyncio.sleep(0.15)
            assert await b.acquire("pipeline.shop") is None
    clock[0] += 0.31  # no heartbeat after the block: the lease lapses
    assert await b.acquire("pipeline.shop") is not None


async def test_kv_values_sees_every_value_just_written_and_no_deleted_key(bus: Bus) -> None:
    """A one-pass read right after writes holds them all (no "done" before the values arrive)."""
    for round_ in range(30):
        await bus.pipelines.put(f"p{round_}", f"body {round_}".encode())
        if round_ % 3 == 0:
            await bus.pipelines.delete(f"p{round_}")
        values = await kv_values(bus.js, PIPELINE_BUCKET)
        expected = {f"p{i}": f"body {i}".encode() for i in range(round_ + 1) if i % 3}
        assert values == expected
