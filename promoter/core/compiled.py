"""A validated Pipeline prepared for planning: environment order, compiled CEL, window specs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from promoter.core.checks import ARTIFACT_VARIABLES, GATE_VARIABLES
from promoter.core.expressions import Expression, compile_expression
from promoter.core.pipeline import Artifact, Environment, Pipeline
from promoter.core.windows import DAYS, WindowSpec

__all__ = ["CompiledPipeline", "EnvRules", "compile_pipeline", "normalize_image"]

_DOCKER_HUB = ("docker.io/", "index.docker.io/", "registry-1.docker.io/")


def normalize_image(repository: str) -> str:
    """Lower-case an image repository and drop Docker Hub's implicit prefixes."""
    name = repository.strip().lower().rstrip("/")
    for prefix in _DOCKER_HUB:
        if name.startswith(prefix):
            name = name.removeprefix(prefix)
            break
    return name.removeprefix("library/")


@dataclass(frozen=True)
class EnvRules:
    """The rules of one environment, ready for the planner."""

    name: str
    upstreams: tuple[str, ...]
    auto: bool
    jurisdiction: str | None
    soak: timedelta | None
    approval_count: int
    reviewers: tuple[str, ...]
    needs_approval: bool
    windows: tuple[WindowSpec, ...]
    when: Expression | None
    rollback_within: timedelta | None


@dataclass(frozen=True)
class CompiledPipeline:
    """A pipeline with everything the planner needs precomputed."""

    pipeline: Pipeline
    name: str
    artifacts: dict[str, Artifact]
    artifact_when: dict[str, Expression]
    envs: tuple[EnvRules, ...]

    def rules(self, environment: str) -> EnvRules | None:
        """The rules of `environment`, or None if the pipeline has no such environment."""
        return next((r for r in self.envs if r.name == environment), None)


def _rules(env: Environment) -> EnvRules:
    gates = env.gates
    windows = tuple(
        WindowSpec(
            days=frozenset(DAYS.index(d) for d in w.days),
            start=w.start,
            end=w.end,
            timezone=w.timezone,
        )
        for w in gates.windows
    )
    return EnvRules(
        name=env.name,
        upstreams=tuple(env.from_),
        auto=env.auto,
        jurisdiction=env.jurisdiction.lower() if env.jurisdiction else None,
        soak=gates.soak,
        approval_count=gates.approvals.count if gates.approvals else 1,
        reviewers=tuple(gates.approvals.reviewers) if gates.approvals else (),
        needs_approval=(not env.auto) or gates.approvals is not None,
        windows=windows,
        when=compile_expression(gates.when, GATE_VARIABLES) if gates.when else None,
        rollback_within=env.rollback.on_degraded_within if env.rollback else None,
    )


def _topological(envs: list[Environment]) -> list[Environment]:
    """Upstreams before downstreams, otherwise in file order (the loader rejected cycles)."""
    placed: list[Environment] = []
    names: set[str] = set()
    remaining = list(envs)
    while remaining:
        ready = [e for e in remaining if all(u in names for u in e.from_)]
        if not ready:
            raise ValueError("cyclic environments")  # unreachable after validation
        for env in ready:
            placed.append(env)
            names.add(env.name)
        remaining = [e for e in remaining if e.name not in names]
    return placed


def compile_pipeline(pipeline: Pipeline) -> CompiledPipeline:
    """Prepare a validated pipeline for the planner."""
    artifacts = {a.name: a for a in pipeline.spec.artifacts}
    artifact_when = {
        a.name: compile_expression(a.when, ARTIFACT_VARIABLES[a.kind])
        for a in pipeline.spec.artifacts
        if a.when
    }
    return CompiledPipeline(
        pipeline=pipeline,
        name=pipeline.metadata.name,
        artifacts=artifacts,
        artifact_when=artifact_when,
        envs=tuple(_rules(e) for e in _topological(list(pipeline.spec.environments))),
    )
