"""Bench results: percentiles, the goals they are held to, a table, and a terminal progress bar."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["GOALS", "Goal", "Progress", "goals_met", "render", "summary"]


def _rank(samples: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summary(seconds: Sequence[float], *, tail: bool = True) -> dict[str, Any]:
    """{p50, p99, n} in milliseconds, rounded to 0.1 ms (`tail=False`: p50 only)."""
    out: dict[str, Any] = {"p50": round(statistics.median(seconds) * 1000, 1)}
    if tail:
        out |= {"p99": round(_rank(seconds, 0.99) * 1000, 1), "n": len(seconds)}
    return out


@dataclass(frozen=True)
class Goal:
    """One target from issue 6: a name, the text shown, and the check over the results."""

    name: str
    text: str
    check: Callable[[dict[str, Any]], bool]
    needs: tuple[str, ...]


LATENCY_P50_MS, LATENCY_P99_MS, FLOOR_RATIO, GITHUB_P50_MS = 100, 300, 1.5, 250
EVENTS_PER_S, BURST_PUSHES, STARTUP_S, RSS_MB = 2000, 3, 3, 250
OPEN_CALLS, MERGE_CALLS, SCALE_RATIO, SCALE_SLACK_MS = 6, 3, 1.5, 2.0


def _latency(r: dict[str, Any]) -> bool:
    return bool(r["event_to_pr_ms"]["p50"] <= LATENCY_P50_MS)


def _near_floor(r: dict[str, Any]) -> bool:
    return bool(r["event_to_pr_ms"]["p50"] <= FLOOR_RATIO * r["floor_git_commit_push_ms"]["p50"])


def _tail(r: dict[str, Any]) -> bool:
    return bool(r["event_to_pr_ms"]["p99"] <= LATENCY_P99_MS)


def _github(r: dict[str, Any]) -> bool:
    return bool(r["event_to_pr_github_ms"]["p50"] <= GITHUB_P50_MS)


def _throughput(r: dict[str, Any]) -> bool:
    return bool(r["events_per_s"] >= EVENTS_PER_S)


def _burst(r: dict[str, Any]) -> bool:
    b = r["burst"]
    return bool(b["open_prs"] == 1 and b["pushes"] <= BURST_PUSHES and b["final_version_is_newest"])


def _startup(r: dict[str, Any]) -> bool:
    return bool(r["scale"]["startup_s"] <= STARTUP_S)


def _memory(r: dict[str, Any]) -> bool:
    return bool(r["scale"]["rss_mb"] <= RSS_MB)


def _flat(r: dict[str, Any]) -> bool:
    s = r["scale"]
    return bool(s["event_ms_p50"] <= SCALE_RATIO * s["baseline_event_ms_p50"] + SCALE_SLACK_MS)


def _calls(r: dict[str, Any]) -> bool:
    c = r["github_calls"]
    return bool(c["open_pr"] <= OPEN_CALLS and c["merge"] <= MERGE_CALLS)


GOALS = [
    Goal("event_to_pr_p50", f"event → PR p50 ≤ {LATENCY_P50_MS} ms", _latency, ("event_to_pr_ms",)),
    Goal("event_to_pr_floor", f"event → PR p50 ≤ {FLOOR_RATIO}x the git commit+push floor",
         _near_floor, ("event_to_pr_ms", "floor_git_commit_push_ms")),
    Goal("event_to_pr_p99", f"event → PR p99 ≤ {LATENCY_P99_MS} ms", _tail, ("event_to_pr_ms",)),
    Goal("github_p50", f"event → GitHub PR p50 ≤ {GITHUB_P50_MS} ms", _github,
         ("event_to_pr_github_ms",)),
    Goal("events_per_s", f"non-promoting events ≥ {EVENTS_PER_S:,}/s", _throughput,
         ("events_per_s",)),
    Goal("burst", f"burst: 1 open PR, ≤ {BURST_PUSHES} pushes, the newest version", _burst,
         ("burst",)),
    Goal("scale_startup", f"scale: startup ≤ {STARTUP_S} s", _startup, ("scale",)),
    Goal("scale_rss", f"scale: peak RSS ≤ {RSS_MB} MB", _memory, ("scale",)),
    Goal("scale_event", f"scale: event cost ≤ {SCALE_RATIO}x (+{SCALE_SLACK_MS:.0f} ms) the "
         "10-pipeline cost", _flat, ("scale",)),
    Goal("github_calls", f"GitHub requests: open ≤ {OPEN_CALLS}, merge ≤ {MERGE_CALLS}", _calls,
         ("github_calls",)),
]  # fmt: skip


def goals_met(results: dict[str, Any]) -> dict[str, bool]:
    """Each goal whose inputs were measured in this run: met or not."""
    return {g.name: g.check(results) for g in GOALS if all(k in results for k in g.needs)}


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "  ".join(f"{k}={_value(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def render(results: dict[str, Any]) -> str:
    """The human report: one line per measurement, then each goal with ✓ or ✗."""
    lines = ["promoter bench — this machine, one run", ""]
    width = max(len(k) for k in results)
    lines += [f"  {key:<{width}}  {_value(value)}" for key, value in results.items()
              if key != "goals"]  # fmt: skip
    met = results.get("goals", {})
    if met:
        lines += ["", "goals:"]
        lines += [f"  {'✓' if met[g.name] else '✗'} {g.text}" for g in GOALS if g.name in met]
    return "\n".join(lines)


class Progress:
    """A one-line progress bar on a terminal (stderr); silent when stderr is not a terminal."""

    def __init__(self, total: int, out: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.out = out if out is not None else sys.stderr
        self.shown = self.out.isatty()
        self.label = ""

    def stage(self, label: str) -> None:
        """Name what is being measured now."""
        self.label = label
        self._draw()

    def step(self, count: int = 1) -> None:
        """Count `count` units of work done."""
        self.done = min(self.total, self.done + count)
        self._draw()

    def close(self) -> None:
        """Clear the bar."""
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()

    def _draw(self) -> None:
        if not self.shown:
            return
        filled = round(30 * self.done / self.total)
        bar = "█" * filled + "·" * (30 - filled)
        percent = 100 * self.done // self.total
        self.out.write(f"\r\033[K{bar} {percent:3d}%  {self.label}")
        self.out.flush()
