"""Prometheus metrics: every series the issue names, counted by real workers on NATS and git."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Harness, digest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from promoter.runtime.emit import image_event
from promoter.runtime.metrics import REGISTRY, block_reason
from promoter.runtime.store import Record, StaleRecordError, StateStore

ROOT = Path(__file__).resolve().parents[1]


def value(name: str, **labels: str) -> float:
    """A sample of the worker's registry (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def samples(text: str) -> dict[str, list[Sample]]:
    """Parse Prometheus text with prometheus-client's own parser: family name -> samples."""
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


@pytest.fixture
def github_demo(tmp_path: Path) -> Iterator[str]:
    """`promoter demo --provider github --http-port 0`, finished and still serving: its URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "promoter", "demo", "--provider", "github", "--http-port", "0"]
    with (tmp_path / "demo.err").open("wb") as err:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
    assert child.stdout is not None
    url = None
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("dashboard still at "):
            url = line.split()[3]
            break
    try:
        assert url, "the demo ended without serving:\n" + "".join(lines)
        yield url.rstrip("/")
    finally:
        child.send_signal(signal.SIGTERM)
        child.stdout.close()
        assert child.wait(30) == 0, (tmp_path / "demo.err").read_text()


def get(url: str) -> tuple[int, str, str]:
    """GET `url`: status, content type and body (error statuses too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback only)
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


@pytest.mark.timeout(120)
def test_metrics_after_a_demo_run_hold_every_series(github_demo: str) -> None:
    status, kind, text = get(github_demo + "/metrics")
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    families = samples(text)

    def total(family: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[family]
            if s.name.endswith("_total") and labels.items() <= s.labels.items()
        )

    # events by type and outcome: every event of the story was recorded
    assert total("promoter_events", type="promoter.image.built", outcome="applied") == 2
    assert total("promoter_events", type="promoter.model.registered", outcome="applied") == 1
    assert total("promoter_events", type="promoter.health.signal", outcome="applied") >= 5
    assert total("promoter_events", type="promoter.pr.reviewed", outcome="applied") >= 2
    assert "promoter_dead_letters" in families  # none in the story: counted in the test below
    # promotions by environment and action: two releases reach prod, the last is rolled back
    for env in ("dev", "staging", "prod"):
        assert total("promoter_promotions", environment=env, action="open-pr") == 2
        assert total("promoter_promotions", environment=env, action="merge") == 2
    assert total("promoter_promotions", environment="prod", action="rollback") == 1
    # gate blocks by reason: staging soaks, prod waits for an approval
    assert total("promoter_gate_blocks", reason="soak") >= 2
    assert total("promoter_gate_blocks", reason="approvals") == 2
    # event -> PR latency: one observation per PR opened by an event (6 PRs)
    latency = {s.name: s for s in families["promoter_event_to_pr_seconds"]}
    assert latency["promoter_event_to_pr_seconds_count"].value >= 2
    assert latency["promoter_event_to_pr_seconds_sum"].value > 0
    # GitHub calls and budgets, as the emulator answered them
    assert total("promoter_github_requests", kind="read") > 0
    assert total("promoter_github_requests", kind="write") >= 12  # 6 PRs opened and merged
    (remaining,) = families["promoter_github_rate_limit_remaining"]
    assert 0 < remaining.value < 5000
    (budget,) = families["promoter_github_write_budget_remaining"]
    assert budget.value >= 0
    buckets = {s.labels["bucket"] for s in families["promoter_kv_cas_conflicts"]}
    assert buckets == {"state", "leases", "prs", "budget", "replays"}
    assert "process_resident_memory_bytes" in families


async def test_invalid_and_unwanted_events_are_counted(world: Harness) -> None:
    world.write_pipeline("shop")
    invalid = value("promoter_events_total", type="invalid", outcome="dead_lettered")
    dead = value("promoter_dead_letters_total", cause="invalid")
    ignored = value("promoter_events_total", type="promoter.image.built", outcome="ignored")
    await world.start_worker()
    await world.bus.js.publish(
        "promoter.events.image.built", b"{not json", stream="PROMOTER_EVENTS"
    )
    stray = image_event("ghcr.io/acme/other", digest(9), "1.0.0", {}, now=world.clock())
    await world.bus.publish_event(stray)

    async def counted() -> bool:
        return (
            value("promoter_events_total", type="invalid", outcome="dead_lettered") == invalid + 1
            and value("promoter_dead_letters_total", cause="invalid") == dead + 1
            and value("promoter_events_total", type="promoter.image.built", outcome="ignored")
            == ignored + 1
        )

    await world.until(counted, "the bad event dead-lettered and the stray one ignored")


async def test_event_to_pr_latency_is_observed_for_each_pr_an_event_opens(
    world: Harness,
) -> None:
    world.write_pipeline("shop")  # no soak: one image event opens dev, staging and prod PRs
    before = value("promoter_event_to_pr_seconds_count")
    await world.start_worker()
    await world.image("1.0.0", 1)

    async def prod_pending() -> bool:
        env = await world.maybe_env("shop", "prod")
        return env is not None and env["pending"] is not None and bool(env["pending"]["pr"])

    await world.until(prod_pending, "a prod PR waits for its approval")
    assert value("promoter_event_to_pr_seconds_count") == before + 3
    await world.approve("shop", "prod")

    async def prod_live() -> bool:
        env = await world.maybe_env("shop", "prod")
        return env is not None and env["live"].get("api") == "1.0.0"

    await world.until(prod_live, "prod runs api 1.0.0")
    assert value("promoter_event_to_pr_seconds_count") == before + 3  # a review opens no PR


async def test_a_refused_compare_and_set_is_counted(world: Harness) -> None:
    store = StateStore(world.bus.state, world.bus.js)
    revision = await store.save(Record(pipeline="p"), 0)
    await store.save(Record(pipeline="p"), revision)
    before = value("promoter_kv_cas_conflicts_total", bucket="state")
    with pytest.raises(StaleRecordError):
        await store.save(Record(pipeline="p"), revision)
    assert value("promoter_kv_cas_conflicts_total", bucket="state") == before + 1


@pytest.mark.parametrize(
    ("reason", "label"),
    [
        ("soak: soaking in staging for 5m, until 2026-03-02T09:05:00Z", "soak"),
        ("approvals: 0 of 1 approvals", "approvals"),
        ("upstream-degraded: staging is degraded", "upstream-degraded"),
        ("refused: rolled back here", "refused"),
        ("merge refused: the PR has conflicts", "merge-refused"),
        ("promote by bob refused: nothing to promote", "promote-refused"),
        ("rollback by bob: nothing live", "rollback-refused"),
        ("something new: a reason no code knows", "other"),
    ],
)
def test_block_reasons_become_bounded_labels(reason: str, label: str) -> None:
    assert block_reason(reason) == label


def test_every_gate_code_the_gates_use_is_a_label() -> None:
    from promoter.core.gates import GATE_CODES  # noqa: PLC0415 (the subject of this test)

    source = (ROOT / "promoter" / "core" / "gates.py").read_text()
    used = set(re.findall(r'blocks\["([a-z-]+)"\]', source))
    planner = (ROOT / "promoter" / "core" / "planner.py").read_text()
    used |= set(re.findall(r'\{"([a-z-]+)": _REFUSED\}', planner))
    assert used, "no gate codes found: the pattern no longer matches gates.py"
    assert used == GATE_CODES
