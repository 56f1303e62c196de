"""Builders for tests: pipelines from YAML text, events, and a planner driver on virtual time."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from promoter.core.compiled import CompiledPipeline, compile_pipeline
from promoter.core.events import HealthSignal, ImageBuilt, ModelRegistered
from promoter.core.loader import load_text
from promoter.core.observations import (
    Decision,
    HealthObserved,
    ImageObserved,
    ModelObserved,
    Observation,
    Tick,
)
from promoter.core.planner import plan
from promoter.core.state import PipelineState
from promoter.simulate import merge_confirmations

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # a Monday


def compiled(text: str) -> CompiledPipeline:
    loaded, problems = load_text(text, "test.yaml")
    assert not problems, problems
    assert len(loaded) == 1
    return compile_pipeline(loaded[0].pipeline)


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def image(
    repo: str, tag: str | None, *, at: datetime = T0, labels: dict[str, str] | None = None
) -> ImageObserved:
    return ImageObserved(
        ImageBuilt(repository=repo, tag=tag, digest=digest(f"{repo}:{tag}"), labels=labels or {}),
        at,
    )


def model(
    name: str,
    version: str,
    *,
    at: datetime = T0,
    metrics: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
) -> ModelObserved:
    data = ModelRegistered(
        name=name,
        version=version,
        uri=f"s3://m/{name}/{version}",
        metrics=metrics or {},
        labels=labels or {},
    )
    return ModelObserved(data, at)


def health(
    pipeline: str, env: str, status: str, versions: dict[str, str] | None = None
) -> HealthObserved:
    return HealthObserved(
        HealthSignal.model_validate(
            {"pipeline": pipeline, "environment": env, "status": status, "versions": versions}
        )
    )


@dataclass
class Driver:
    """Feeds observations to the planner at virtual times, confirming merges like the simulator."""

    pipeline: CompiledPipeline
    now: datetime = T0
    state: PipelineState = field(default_factory=PipelineState)
    log: list[Decision] = field(default_factory=list)
    wakeup: datetime | None = None
    auto_merge: bool = True

    def feed(self, observation: Observation, at: datetime | None = None) -> list[Decision]:
        if at is not None:
            self.now = at
        out: list[Decision] = []
        pending = [observation]
        while pending:
            result = plan(self.pipeline, self.state, pending.pop(0), self.now)
            self.state = result.state
            self.wakeup = result.wakeup
            if self.auto_merge:
                pending += merge_confirmations(self.pipeline.name, result.decisions)
            out += result.decisions
        self.log += out
        return out

    def advance(self, delta: timedelta) -> list[Decision]:
        """Move time forward, firing the planner's wake-up at its exact time if one is due."""
        target = self.now + delta
        out: list[Decision] = []
        while self.wakeup is not None and self.wakeup <= target:
            out += self.feed(Tick(), self.wakeup)
        self.now = target
        out += self.feed(Tick())
        return out

    def live(self, env: str) -> dict[str, str] | None:
        state = self.state.envs.get(env)
        return state.live.summary() if state and state.live else None


def actions(decisions: list[Decision], env: str | None = None) -> list[str]:
    return [d.action for d in decisions if env is None or d.environment == env]
