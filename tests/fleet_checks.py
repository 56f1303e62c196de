"""What a fleet run must end with: every build live everywhere, one PR each, nothing twice."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, TypeVar

from fleet import ENVS, title, version
from gitfixtures import read_remote_file, remote_log

from promoter.core.events import ImageBuilt, parse_event
from promoter.runtime.bus import DLQ_STREAM, Bus, event_msg_id
from promoter.runtime.report import history, status
from promoter.runtime.store import StateStore
from promoter.scm.base import PullRequest
from promoter.testing.github_emulator import Emulator

__all__ = [
    "check_audit",
    "check_github_prs",
    "check_live",
    "check_local_prs",
    "check_main",
    "dead_letters_of_planned_events",
    "expected_titles",
]

K = TypeVar("K")
_MERGE = re.compile(r"Merge #(?P<number>\d+): (?P<title>.*)")


def expected_titles(names: list[str], rounds: int) -> Counter[str]:
    """Each promotion of the run once: (pipeline, env, version) as its commit subject."""
    return Counter(
        title(name, env, version(r)) for name in names for env in ENVS for r in range(rounds)
    )


async def check_live(bus: Bus, names: list[str], rounds: int) -> None:
    """Every pipeline runs its last build in every environment, with nothing left to do."""
    document = await status(bus)
    last = version(rounds - 1)
    found = {p["name"]: p for p in document["pipelines"]}
    assert sorted(found) == sorted(names)
    for name in names:
        pipeline = found[name]
        assert pipeline["outbox"] == 0, pipeline
        for env in pipeline["environments"]:
            assert env["live"] == {"api": last}, (name, env)
            assert env["pending"] is None, (name, env)
            assert env["blocked"] == [], (name, env)


async def dead_letters_of_planned_events(bus: Bus) -> int:
    """How many dead-lettered builds had been planned anyway; fails on one that was not (lost).

    A build is planned when its pipeline's record lists its event key. Dead-lettering one of
    those is a false alarm (see the report on worker.py), not a lost promotion.
    """
    info = await bus.js.stream_info(DLQ_STREAM)
    if not info.state.messages:
        return 0
    store = StateStore(bus.state, bus.js)
    planned = 0
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        letter = json.loads((await bus.js.get_msg(DLQ_STREAM, seq)).data or b"{}")
        event = parse_event(letter["data"])
        assert isinstance(event.data, ImageBuilt), letter
        pipeline = event.data.repository.rsplit("/", 1)[-1]  # ghcr.io/acme/<pipeline>
        record, _ = await store.load(pipeline)
        assert event_msg_id(event.source, event.id) in record.applied, f"lost: {letter}"
        planned += 1
    return planned


def check_main(remote: Path, names: list[str], rounds: int) -> None:
    """Main holds each promotion's commit and merge exactly once, and the last files."""
    subjects = remote_log(remote, "main")
    expected = expected_titles(names, rounds)
    promotes = Counter(s for s in subjects if s.startswith("promote "))
    merges = [m for s in subjects if (m := _MERGE.fullmatch(s))]
    assert promotes == expected, _difference(promotes, expected)
    merged = Counter(m["title"] for m in merges)
    assert merged == expected, _difference(merged, expected)
    numbers = Counter(m["number"] for m in merges)
    assert all(n == 1 for n in numbers.values()), "a PR was merged twice"
    assert len(subjects) == len(promotes) + len(merges) + 1  # + "initial": nothing else
    for name in names:
        for env in ENVS:
            text = read_remote_file(remote, "main", f"apps/{name}/{env}.yaml")
            assert text == f"image:\n  tag: {version(rounds - 1)}\n", (name, env, text)


def check_local_prs(prs: list[PullRequest], names: list[str], rounds: int) -> None:
    """Local provider: one PR record per promotion, each merged, numbers unique."""
    opened = Counter(title(p.pipeline, p.environment, p.versions["api"]) for p in prs)
    expected = expected_titles(names, rounds)
    assert opened == expected, _difference(opened, expected)
    assert all(p.state == "merged" and p.merged_sha for p in prs)
    assert len({p.number for p in prs}) == len(prs)


def check_github_prs(emu: Emulator, names: list[str], rounds: int) -> int:
    """GitHub: one PR per (branch, promotion), each merged once; returns how many faults hit."""
    with emu.world.store.open("acme", "deploy", emu.world.clock()) as state:
        pulls = [p.model_copy() for p in state.pulls.values()]
    opened = Counter(p.title for p in pulls)
    expected = expected_titles(names, rounds)
    assert opened == expected, _difference(opened, expected)
    for pull in pulls:
        pipeline, env = pull.title.split(" ")[1], pull.title.split(" ")[3].rstrip(":")
        assert pull.head == f"promoter/{pipeline}/{env}", pull
        assert pull.merged and pull.state == "closed", pull
    return sum(1 for call in emu.calls if call.fault)


async def check_audit(bus: Bus, names: list[str], rounds: int) -> tuple[int, int]:
    """Every decision is in the audit stream once (seqs 1..N); each promotion opened, merged once.

    A merge the SCM refused (an injected 409) is a decision too: it must be followed by its
    block and a merge that went through. Returns (audit records, refused merges).
    """
    store = StateStore(bus.state, bus.js)
    total = refused = 0
    for name in names:
        entries = await history(bus, name)
        record, _ = await store.load(name)
        seqs = sorted(e["seq"] for e in entries)
        assert seqs == list(range(1, record.decisions + 1)), f"{name}: audit seqs {seqs}"
        assert not [e for e in entries if "error" in e], entries
        refused += _check_decisions(name, entries, rounds)
        total += len(entries)
    return total, refused


def _check_decisions(name: str, entries: list[dict[str, Any]], rounds: int) -> int:
    """One open and one merge per (env, version); refusals each with its block. How many refused."""

    def promotions(action: str, *, merged: bool | None = None) -> Counter[tuple[str, str]]:
        return Counter(
            (e["environment"], e["versions"]["api"])
            for e in entries
            if e["action"] == action and (merged is None or bool(e.get("sha")) == merged)
        )

    expected = Counter((env, version(r)) for env in ENVS for r in range(rounds))
    opened, merged = promotions("open-pr"), promotions("merge", merged=True)
    assert opened == expected, (name, "opened", _difference(opened, expected))
    assert merged == expected, (name, "merged", _difference(merged, expected))
    refusals, blocks = promotions("merge", merged=False), promotions("block")
    assert refusals == blocks, (name, "a refused merge without its block", entries)
    kinds = {e["action"] for e in entries}
    assert kinds <= {"open-pr", "merge", "block"}, (name, kinds)
    return refusals.total()


def _difference(found: Counter[K], expected: Counter[K]) -> str:
    extra = found - expected
    missing = expected - found
    return f"extra (or repeated): {dict(extra)}; missing: {dict(missing)}"
