"""`promoter bench`: every scenario runs on real NATS, git and the emulator and reports its keys."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from promoter.bench import SCENARIOS
from promoter.bench.report import GOALS, Progress, goals_met, render
from promoter.bench.runner import Sizes, run_bench

TINY = Sizes(samples=5, rounds=2, events=400, builds=100, pipelines=30, scale_events=5)
KEYS = {
    "floor_git_commit_push_ms": {"p50"},
    "floor_nats_roundtrip_ms": {"p50"},
    "event_to_pr_ms": {"p50", "p99", "n"},
    "event_to_pr_github_ms": {"p50", "p99", "n"},
    "burst": {"builds", "open_prs", "pushes", "final_version_is_newest"},
    "scale": {"pipelines", "environments", "startup_s", "rss_mb", "event_ms_p50"},
    "github_calls": {"open_pr", "merge"},
}


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    """`promoter bench ARGS` as a subprocess."""
    argv = [sys.executable, "-m", "promoter", "bench", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    import asyncio  # noqa: PLC0415

    return asyncio.run(run_bench(SCENARIOS, TINY, Progress(TINY.steps(SCENARIOS), io.StringIO())))


@pytest.mark.slow
def test_every_scenario_reports_the_keys_the_issue_names(results: dict[str, Any]) -> None:
    for key, fields in KEYS.items():
        assert fields <= set(results[key]), key
    assert results["event_to_pr_ms"]["n"] == TINY.samples
    assert results["event_to_pr_github_ms"]["n"] == TINY.rounds
    assert results["events_per_s"] > 0
    assert results["floor_nats_consume_per_s"] > 0
    assert results["scale"]["pipelines"] == TINY.pipelines
    assert results["scale"]["environments"] == 3
    assert set(results["goals"]) == {g.name for g in GOALS}


@pytest.mark.slow
def test_a_burst_of_builds_ends_in_one_pr_with_the_newest_version(results: dict[str, Any]) -> None:
    burst = results["burst"]
    assert (burst["builds"], burst["open_prs"], burst["final_version_is_newest"]) == (100, 1, True)
    assert 1 <= burst["pushes"] < burst["builds"], "builds were not coalesced into fewer pushes"


@pytest.mark.slow
def test_github_requests_per_open_and_merge_are_counted(results: dict[str, Any]) -> None:
    calls = results["github_calls"]
    assert 2 <= calls["open_pr"] <= 6
    assert 1 <= calls["merge"] <= 3


def test_the_cli_prints_one_json_object_for_the_chosen_scenarios() -> None:
    done = _bench("--json", "--quick", "--scenario", "floors", "--samples", "3")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert set(results) == {"machine", "floor_git_commit_push_ms", "floor_nats_roundtrip_ms",
                            "floor_nats_consume_per_s", "goals"}  # fmt: skip
    assert results["goals"] == {}, "no goal is judged without what it compares"
    assert done.stderr == "", "no progress bar when stderr is not a terminal"


def test_an_unknown_scenario_is_refused_with_the_choices() -> None:
    done = _bench("--scenario", "nope")
    assert done.returncode == 2
    assert "invalid choice: 'nope'" in done.stderr and "latency" in done.stderr


def test_zero_samples_are_refused() -> None:
    done = _bench("--samples", "0")
    assert done.returncode == 2
    assert "--samples: 0 is too few; give at least 1" in done.stderr


def test_the_progress_bar_draws_on_a_terminal_only() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    for out in (terminal, pipe):
        bar = Progress(4, out)
        bar.stage("latency")
        bar.step(2)
        bar.close()
    assert " 50%  latency" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_goals_are_judged_only_when_measured_and_shown_met_or_not() -> None:
    measured = {
        "event_to_pr_ms": {"p50": 40.0, "p99": 90.0, "n": 100},
        "floor_git_commit_push_ms": {"p50": 25.0},
        "events_per_s": 1500,
    }
    met = goals_met(measured)
    assert met == {"event_to_pr_p50": True, "event_to_pr_floor": False,
                   "event_to_pr_p99": True, "events_per_s": False}  # fmt: skip
    text = render({**measured, "goals": met})
    assert "✓ event → PR p50 ≤ 100 ms" in text
    assert "✗ non-promoting events ≥ 2,000/s" in text
