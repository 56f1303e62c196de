"""`promoter simulate`: replay a JSON Lines timeline through the planner on virtual time."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from promoter.core.compiled import CompiledPipeline
from promoter.core.events import parse_event
from promoter.core.observations import (
    Approved,
    ChangesRequested,
    Decision,
    Held,
    Merged,
    Observation,
    Resumed,
    Tick,
    observe_event,
)
from promoter.core.planner import plan
from promoter.core.router import Router
from promoter.core.state import PipelineState
from promoter.errors import EventError, TimelineError

__all__ = ["Simulator", "TimelineEntry", "merge_confirmations", "read_timeline"]

HORIZON = timedelta(days=30)


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(min_length=1)
    environment: str = Field(min_length=1)


class _Review(_Target):
    by: str = Field(min_length=1)
    teams: list[str] = Field(default_factory=list)


class _Hold(_Target):
    reason: str | None = None


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime
    event: dict[str, Any] | None = None
    approve: _Review | None = None
    reject: _Review | None = None
    hold: _Hold | None = None
    resume: _Target | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline line: when, what, and where it was written."""

    at: datetime
    observation: Observation
    line: int
    dedupe_key: str | None = None


def _observation(line: _Line, where: str) -> tuple[Observation, str | None]:
    given = [
        k for k in ("event", "approve", "reject", "hold", "resume") if getattr(line, k) is not None
    ]
    if len(given) != 1:
        raise TimelineError(
            f"{where}: a line needs exactly one of event, approve, reject, hold, resume"
        )
    if line.event is not None:
        try:
            event = parse_event(line.event)
        except EventError as exc:
            raise TimelineError(f"{where}: {exc}") from None
        return observe_event(event, line.at), f"{event.source}\x00{event.id}"
    if line.approve is not None:
        a = line.approve
        return Approved(a.pipeline, a.environment, a.by, tuple(a.teams)), None
    if line.reject is not None:
        return ChangesRequested(line.reject.pipeline, line.reject.environment, line.reject.by), None
    if line.hold is not None:
        return Held(line.hold.pipeline, line.hold.environment, line.hold.reason), None
    assert line.resume is not None  # noqa: S101 (exactly one key was given)
    return Resumed(line.resume.pipeline, line.resume.environment), None


def read_timeline(path: Path) -> list[TimelineEntry]:
    """Parse a timeline file, sorted by time (stable); TimelineError names file and line."""
    entries: list[TimelineEntry] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TimelineError(f"{path}: cannot read timeline: {exc}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            line = _Line.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "line"
            raise TimelineError(f"{where}: {loc}: {first['msg']}") from None
        observation, key = _observation(line, where)
        entries.append(TimelineEntry(line.at, observation, number, key))
    entries.sort(key=lambda e: e.at)
    return entries


def merge_confirmations(pipeline: str, decisions: Iterable[Decision]) -> list[Observation]:
    """What the SCM reports back in simulation: every merge decided is merged at once."""
    return [
        Merged(pipeline, d.environment, d.bundle.id)
        for d in decisions
        if d.action == "merge" and d.bundle is not None
    ]


class Simulator:
    """Runs the planner over pipelines in memory; in simulation a merge is confirmed at once."""

    def __init__(self, pipelines: Iterable[CompiledPipeline]) -> None:
        self.router = Router(pipelines)
        self.states: dict[str, PipelineState] = {
            name: PipelineState() for name in self.router.pipelines
        }
        self.timers: list[tuple[datetime, str]] = []
        self.seen: set[str] = set()
        self.unrouted: list[TimelineEntry] = []

    def _plan(self, name: str, observation: Observation, now: datetime) -> Iterator[Decision]:
        pending: list[Observation] = [observation]
        while pending:
            result = plan(self.router.pipelines[name], self.states[name], pending.pop(0), now)
            self.states[name] = result.state
            if result.wakeup is not None:
                heapq.heappush(self.timers, (result.wakeup, name))
            pending += merge_confirmations(name, result.decisions)
            yield from result.decisions

    def advance(self, until: datetime) -> Iterator[tuple[datetime, Decision]]:
        """Fire every timer due at or before `until`, each at its exact time."""
        while self.timers and self.timers[0][0] <= until:
            at, name = heapq.heappop(self.timers)
            for decision in self._plan(name, Tick(), at):
                yield at, decision

    def observe(self, entry: TimelineEntry) -> Iterator[tuple[datetime, Decision]]:
        """Fire due timers, then apply one timeline entry."""
        yield from self.advance(entry.at)
        if entry.dedupe_key is not None:
            if entry.dedupe_key in self.seen:
                return  # the bus dedupes on source+id; so does the simulation
            self.seen.add(entry.dedupe_key)
        names = self.router.route(entry.observation)
        if not names:
            self.unrouted.append(entry)
        for name in names:
            for decision in self._plan(name, entry.observation, entry.at):
                yield entry.at, decision

    def run(
        self, entries: list[TimelineEntry], until: datetime | None = None
    ) -> Iterator[tuple[datetime, Decision]]:
        """Replay `entries`, then let timers run until `until` (default: 30 days after the last)."""
        for entry in entries:
            if until is not None and entry.at > until:
                break
            yield from self.observe(entry)
        if until is None:
            if not entries:
                return
            until = entries[-1].at + HORIZON
        yield from self.advance(until)


def decision_lines(decisions: Iterable[tuple[datetime, Decision]]) -> Iterator[str]:
    """One JSON object per decision, as `promoter simulate` prints them."""
    for at, decision in decisions:
        yield json.dumps(decision.to_json(at), sort_keys=False)
