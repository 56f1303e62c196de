"""End to end on a real nats-server and real git: events in, commits and PRs out."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest
from gitfixtures import read_remote_file, remote_branches
from harness import FAST, Harness, digest

from promoter.core.events import parse_event
from promoter.runtime.app import load_targets, publish_pipelines
from promoter.runtime.background import _exhausted as exhausted
from promoter.runtime.bus import DLQ_STREAM, BusOptions, event_msg_id
from promoter.runtime.options import WorkerOptions
from promoter.runtime.report import explain, history
from promoter.runtime.store import Leases, StateStore


def promote_commits(subjects: list[str], env: str) -> list[str]:
    return [s for s in subjects if s.startswith(f"promote shop to {env}:")]


async def test_image_event_commits_to_dev_then_prs_climb_the_chain(world: Harness) -> None:
    world.write_pipeline("shop", model="ranker", soak="10m")
    await world.start_worker()
    await world.model("ranker", "7")
    await world.image("1.2.0", 1)

    await world.live("shop", "dev", "1.2.0")
    values = read_remote_file(world.remote, "main", "envs/dev/values.yaml")
    assert (
        values == "# dev\nimage:\n  tag: 1.2.0  # promoter\nmodel:\n  uri: s3://models/ranker/7\n"
    )
    assert len(promote_commits(world.main_log(), "dev")) == 1

    await world.health("shop", "dev")
    await world.until(lambda: _healthy(world, "dev"), "dev is healthy")
    await world.until(
        lambda: _blocked_by(world, "staging", "soak"), "staging reports the soak block"
    )
    assert (await world.env("shop", "staging"))["live"] == {}
    why = await explain(world.bus, "shop", "staging", world.clock())
    assert "  live: nothing yet" in why
    assert "  blocked by soak: soaking in dev for 10m, until 2026-03-02T09:10:00Z" in why
    assert "  re-checked in 10m" in why
    world.clock.advance(minutes=10)  # the timer fires without another event
    await world.live("shop", "staging", "1.2.0")

    await world.health("shop", "staging")
    await world.until(lambda: _healthy(world, "staging"), "staging is healthy")
    world.clock.advance(minutes=10)
    pending = await world.pending("shop", "prod", "1.2.0")
    branch = "promoter/shop/prod"
    assert branch in remote_branches(world.remote)
    assert "tag: 1.2.0" in (read_remote_file(world.remote, branch, "envs/prod/values.yaml") or "")
    assert "tag: 0.0.0" in (read_remote_file(world.remote, "main", "envs/prod/values.yaml") or "")
    assert pending["approvals"] == []

    pr = await world.approve("shop", "prod")
    assert pr.number == pending["pr"]
    await world.live("shop", "prod", "1.2.0")
    assert "tag: 1.2.0" in (read_remote_file(world.remote, "main", "envs/prod/values.yaml") or "")
    merged = [p for p in await world.prs() if p.state == "merged"]
    assert [p.environment for p in merged] == ["dev", "staging", "prod"]


async def _healthy(world: Harness, env: str) -> bool:
    return bool((await world.env("shop", env))["health"] == "healthy")


async def test_changes_requested_blocks_the_merge_until_approved(world: Harness) -> None:
    world.write_pipeline("shop")
    await world.start_worker()
    await world.image("1.0.0", 1)
    await world.pending("shop", "prod", "1.0.0")
    await world.approve("shop", "prod", "bob", "changes_requested")
    world.clock.advance(seconds=1)
    await world.approve("shop", "prod", "alice")
    await world.until(
        lambda: _blocked_by(world, "prod", "changes-requested"), "bob's change request blocks"
    )
    assert (await world.env("shop", "prod"))["live"] == {}
    world.clock.advance(seconds=1)
    await world.approve("shop", "prod", "bob")  # bob changes his mind
    await world.live("shop", "prod", "1.0.0")
    [pr] = [p for p in await world.prs() if p.environment == "prod"]
    assert [r.state for r in pr.reviews] == ["changes_requested", "approved", "approved"]


async def _blocked_by(world: Harness, env: str, code: str) -> bool:
    return any(b.startswith(code) for b in (await world.env("shop", env))["blocked"])


async def test_duplicate_event_makes_no_second_commit(world: Harness) -> None:
    world.write_pipeline("shop")
    await world.start_worker()
    assert await world.image("1.0.0", 1) is True
    await world.live("shop", "dev", "1.0.0")
    assert await world.image("1.0.0", 1) is False  # same source + id: deduplicated on publish
    await world.quiet()
    before = world.main_log()
    # the same build again under a new id reaches the worker, which sees nothing new
    event_id = await world.bus.publish_event(
        {
            "specversion": "1.0",
            "id": "rerun-1",
            "source": "ci/rerun",
            "type": "promoter.image.built",
            "data": {
                "repository": "ghcr.io/acme/api",
                "tag": "1.0.0",
                "digest": "sha256:" + "0" * 63 + "1",
            },
        }
    )
    assert event_id is True
    await world.quiet()
    assert world.main_log() == before
    assert len(promote_commits(before, "dev")) == 1


async def test_burst_of_100_builds_ends_with_one_open_pr_on_the_newest(world: Harness) -> None:
    world.write_pipeline("shop")
    await world.start_worker()
    await asyncio.gather(*(world.image(f"1.0.{n}", n) for n in range(100)))
    await world.live("shop", "staging", "1.0.99", within=60)
    await world.pending("shop", "prod", "1.0.99", within=60)
    await world.quiet(within=60)
    open_prs = [p for p in await world.prs() if p.state == "open"]
    assert [(p.environment, p.versions) for p in open_prs] == [("prod", {"api": "1.0.99"})]
    # bundles arriving while a merge was in flight were coalesced, not committed one by one
    assert len(promote_commits(world.main_log(), "dev")) < 100


async def test_malformed_event_is_dead_lettered_and_the_worker_goes_on(world: Harness) -> None:
    world.write_pipeline("shop")
    await world.start_worker()
    await world.bus.js.publish(
        "promoter.events.image.built", b"{not json", headers={"Nats-Msg-Id": "bad-1"}
    )
    bad_type = {
        "specversion": "1.0",
        "id": "x",
        "source": "s",
        "type": "promoter.image.built",
        "data": {},
    }
    await world.bus.js.publish("promoter.events.image.built", json.dumps(bad_type).encode())
    await world.image("1.0.0", 1)
    await world.live("shop", "dev", "1.0.0")

    sub = await world.bus.js.pull_subscribe("promoter.dlq.>", stream=DLQ_STREAM)
    letters = [json.loads(m.data) for m in await sub.fetch(10, timeout=2)]
    reasons = sorted(letter["reason"] for letter in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith("event is not valid JSON")
    assert reasons[1].startswith("invalid promoter.image.built event: data.repository")
    assert {letter["data"] for letter in letters} >= {"{not json"}


async def test_an_event_with_a_lone_surrogate_is_dead_lettered_at_once(world: Harness) -> None:
    # regression (found by tests/test_fuzz_consumer.py): JSON's "\ud800" parsed, then saving
    # the record failed (no UTF-8 for it), the whole batch was redelivered until max_deliver
    world.write_pipeline("shop", prod_approval=False)
    await world.start_worker()
    labels = {"team": "\ud800"}
    data = {"repository": "ghcr.io/acme/api", "tag": "2.0.0", "digest": digest(2), "labels": labels}
    event = {"specversion": "1.0", "id": "x", "source": "s", "type": "promoter.image.built"}
    body = json.dumps({**event, "data": data}).encode()
    await world.bus.js.publish("promoter.events.image.built", body)
    await world.image("1.0.0", 1)
    await world.live("shop", "dev", "1.0.0")
    [letter] = await _dead_letters(world, 1)
    assert "lone UTF-16 surrogate" in str(letter["reason"])
    assert letter["deliveries"] == 1


async def test_a_huge_undecodable_event_is_dead_lettered_cut_to_fit(world: Harness) -> None:
    # regression (found by tests/test_fuzz_consumer.py): each byte became a 6-byte "\ufffd" in
    # the DLQ record, which outgrew max_payload; the publish failed and the batch looped
    world.write_pipeline("shop")
    await world.start_worker()
    await world.bus.js.publish("promoter.events.image.built", b"\xff" * 500_000)
    [letter] = await _dead_letters(world, 1)
    assert str(letter["reason"]).startswith("event is not valid JSON: not UTF-8 text")
    assert (letter["deliveries"], letter["truncated"]) == (1, 500_000)
    assert 0 < len(str(letter["data"])) < 500_000


async def test_two_workers_share_the_load_without_duplicate_effects(world: Harness) -> None:
    names = [f"svc{i}" for i in range(6)]
    for name in names:
        world.write_pipeline(name, image=f"ghcr.io/acme/{name}", prod_approval=False)
    w1 = await world.start_worker("w1")
    w2 = await world.start_worker("w2")
    for round_ in range(3):
        await asyncio.gather(
            *(
                world.image(f"1.0.{round_}", 100 * i + round_, f"ghcr.io/acme/{n}")
                for i, n in enumerate(names)
            )
        )
    for name in names:
        await world.live(name, "prod", "1.0.2", within=60)
    await world.quiet()
    assert w1.processed > 0
    assert w2.processed > 0
    subjects = world.main_log()
    for name in names:
        for env in ("dev", "staging", "prod"):
            ours = [s for s in subjects if s.startswith(f"promote {name} to {env}:")]
            merges = [
                s for s in subjects if s.startswith("Merge #") and f"promote {name} to {env}:" in s
            ]
            assert len(ours) == len(merges), (name, env, ours, merges)
            assert len(set(ours)) == len(ours), f"duplicate commit for {name}/{env}: {ours}"
    prs = await world.prs()
    assert len({(p.pipeline, p.environment, p.bundle) for p in prs}) == len(prs)


async def test_restarting_nats_server_loses_nothing(world: Harness) -> None:
    world.write_pipeline("shop", prod_approval=False)
    await world.start_worker()
    await world.image("1.0.0", 1)
    await world.live("shop", "prod", "1.0.0")

    world.server.stop()
    await asyncio.sleep(0.3)
    world.server.start()  # same port, same store
    await world.until(lambda: _connected(world), "the test client reconnected", within=20)
    await world.image("1.1.0", 2)
    await world.live("shop", "prod", "1.1.0", within=30)
    await world.quiet()
    assert len(promote_commits(world.main_log(), "prod")) == 2


@pytest.mark.slow
async def test_killing_nats_server_during_a_burst_loses_nothing(world: Harness) -> None:
    names = [f"svc{i}" for i in range(5)]
    for name in names:
        world.write_pipeline(name, image=f"ghcr.io/acme/{name}", prod_approval=False)
    await world.start_worker()
    for round_ in range(4):
        for i, name in enumerate(names):
            await world.image(f"1.0.{round_}", 10 * i + round_, f"ghcr.io/acme/{name}")
    world.server.stop(kill=True)  # mid-run: effects and acks in flight fail
    await asyncio.sleep(0.5)
    world.server.start()
    await world.until(lambda: _connected(world), "the test client reconnected", within=20)
    for name in names:
        await world.live(name, "prod", "1.0.3", within=60)
    await world.quiet(within=60)
    subjects = world.main_log()
    for name in names:
        ours = [s for s in subjects if s.startswith(f"promote {name} to prod:")]
        assert len(set(ours)) == len(ours), f"duplicate commit for {name}: {ours}"


async def _connected(world: Harness) -> bool:
    return bool(world.bus.nc.is_connected)


async def test_operator_hold_promote_and_rollback(world: Harness) -> None:
    from promoter.runtime.emit import command_event  # noqa: PLC0415

    world.write_pipeline("shop", soak="1h")
    await world.start_worker(options=WorkerOptions(**FAST.__dict__))
    await world.image("1.0.0", 1)
    await world.live("shop", "dev", "1.0.0")

    async def command(env: str, action: str, **extra: str) -> None:
        data = {"pipeline": "shop", "environment": env, "action": action, "by": "ops", **extra}
        await world.bus.publish_event(command_event(data, now=world.clock()))
        world.clock.advance(seconds=1)  # a new command time, so a new id

    await command("staging", "promote")  # skips the soak
    await world.live("shop", "staging", "1.0.0")
    await command("prod", "hold", reason="freeze")
    await command("prod", "promote")
    await world.until(lambda: _blocked_history(world), "the refused promote is recorded")
    assert (await world.env("shop", "prod"))["live"] == {}
    await command("prod", "resume")
    await command("prod", "promote")
    await world.live("shop", "prod", "1.0.0")

    await world.image("1.1.0", 2)
    await world.live("shop", "dev", "1.1.0")
    await command("dev", "rollback")
    await world.until(lambda: _held(world, "dev"), "dev is held after the rollback")
    await world.live("shop", "dev", "1.0.0")
    await world.quiet()
    assert "tag: 1.0.0" in (read_remote_file(world.remote, "main", "envs/dev/values.yaml") or "")
    assert world.main_log()[0].startswith("roll back shop in dev to api 1.0.0")


async def _held(world: Harness, env: str) -> bool:
    return bool((await world.env("shop", env))["held"])


async def _blocked_history(world: Harness) -> bool:
    entries = await history(world.bus, "shop")
    return any(e["action"] == "block" and "promote by ops refused" in e["reason"] for e in entries)


async def test_an_event_whose_pipeline_stays_busy_is_dead_lettered(tmp_path: Path) -> None:
    harness = await Harness(tmp_path).start(BusOptions(ack_wait=1.0, max_deliver=2))
    try:
        harness.write_pipeline("shop")
        options = WorkerOptions(**{**FAST.__dict__, "ack_wait": 1.0, "max_deliver": 2})
        # another owner holds the pipeline's lease at every delivery
        blocker = Leases(harness.bus.leases, "someone-else", ttl=3600)
        assert await blocker.acquire("pipeline.shop") is not None
        await harness.start_worker(options=options)
        await harness.image("1.0.0", 1)
        [letter] = await _dead_letters(harness, 1)
        assert letter["reason"] == "gave up after 2 deliveries (pipeline busy or failing)"
        assert letter["deliveries"] == 2
    finally:
        await harness.close()


async def test_an_event_never_settled_is_dead_lettered_from_the_advisory(tmp_path: Path) -> None:
    harness = await Harness(tmp_path).start(BusOptions(ack_wait=1.0, max_deliver=2))
    try:
        harness.write_pipeline("shop")
        await harness.image("1.0.0", 1)
        # two deliveries that are never settled, as if each one crashed its worker
        thief = await harness.bus.js.pull_subscribe_bind(
            durable="promoter-worker", stream="PROMOTER_EVENTS"
        )
        for attempt in (1, 2):
            [msg] = await thief.fetch(1, timeout=5)
            assert msg.metadata.num_delivered == attempt
        await thief.unsubscribe()
        await harness.start_worker(options=WorkerOptions(**{**FAST.__dict__, "ack_wait": 1.0}))
        [letter] = await _dead_letters(harness, 1)
        assert str(letter["reason"]).startswith("not processed after 2 deliveries")
        assert json.loads(str(letter["data"]))["data"]["tag"] == "1.0.0"
        assert (await harness.env("shop", "dev"))["live"] == {}
    finally:
        await harness.close()


async def test_an_exhausted_event_its_pipeline_already_planned_is_not_dead_lettered(
    world: Harness,
) -> None:
    world.write_pipeline("shop")
    await publish_pipelines(world.bus, load_targets([world.pipelines]))
    await world.image("1.0.0", 1)  # planned, then its workers were killed before the ack
    await world.image("1.1.0", 2)  # never planned
    planned = parse_event((await world.bus.js.get_msg("PROMOTER_EVENTS", 1)).data or b"")
    store = StateStore(world.bus.state, world.bus.js)
    record, revision = await store.load("shop")
    record.mark_applied(event_msg_id(planned.source, planned.id))
    await store.save(record, revision)

    await exhausted(world.bus, 1, 10)
    await exhausted(world.bus, 2, 10)

    assert (await world.bus.js.stream_info(DLQ_STREAM)).state.messages == 1
    [letter] = await _dead_letters(world, 1)
    assert json.loads(str(letter["data"]))["data"]["tag"] == "1.1.0"


async def _dead_letters(world: Harness, count: int) -> list[dict[str, object]]:
    sub = await world.bus.js.pull_subscribe("promoter.dlq.>", stream=DLQ_STREAM)
    letters: list[dict[str, object]] = []
    for _ in range(100):
        with contextlib.suppress(TimeoutError):
            letters += [json.loads(m.data) for m in await sub.fetch(10, timeout=0.2)]
        if len(letters) >= count:
            return letters
    raise AssertionError(f"expected {count} dead letters, got {letters}")


async def test_a_burst_for_an_approval_gate_pushes_the_newest_bundle_not_each(
    world: Harness,
) -> None:
    (world.pipelines / "gated.yaml").write_text(f"""apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: gated}}
spec:
  repository: {{url: "file://{world.remote}", branch: main}}
  artifacts:
    - {{name: api, image: ghcr.io/acme/api, select: {{semver: '>=0.1.0'}}}}
  environments:
    - name: dev
      gates: {{approvals: {{count: 1}}}}
      update: [{{file: envs/dev/values.yaml, set: {{image.tag: "${{api.tag}}"}}}}]
""")
    for n in range(40):  # all waiting in the stream before the worker starts
        await world.image(f"1.0.{n}", n)
    await world.start_worker()
    await world.quiet()
    entries = await history(world.bus, "gated")
    proposals = [e for e in entries if e["action"] in ("open-pr", "update-pr")]
    skipped = [e for e in proposals if str(e.get("detail", "")).startswith("skipped")]
    assert len(proposals) == 40
    assert len(skipped) >= 30, "superseded proposals in one outbox must not be pushed"
    [pr] = await world.prs()
    assert (pr.state, pr.versions) == ("open", {"api": "1.0.39"})
