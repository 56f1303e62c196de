"""Which pipelines an observation concerns."""

from __future__ import annotations

from collections.abc import Iterable

from promoter.core.compiled import CompiledPipeline, normalize_image
from promoter.core.observations import (
    Approved,
    ChangesRequested,
    Closed,
    Dismissed,
    EnvObservation,
    HealthObserved,
    ImageObserved,
    Merged,
    ModelObserved,
    Observation,
    Tick,
)

__all__ = ["Router"]


class Router:
    """Indexes pipelines by image repository, model name and pipeline name."""

    def __init__(self, pipelines: Iterable[CompiledPipeline]) -> None:
        self.pipelines = {p.name: p for p in pipelines}
        self.images: dict[str, list[str]] = {}
        self.models: dict[str, list[str]] = {}
        for compiled in self.pipelines.values():
            for artifact in compiled.artifacts.values():
                index, key = (
                    (self.images, normalize_image(artifact.image))
                    if artifact.image
                    else (self.models, artifact.model or "")
                )
                names = index.setdefault(key, [])
                if compiled.name not in names:
                    names.append(compiled.name)

    def route(self, observation: Observation) -> list[str]:
        """Names of the pipelines `observation` is about (every pipeline for a Tick)."""
        if isinstance(observation, ImageObserved):
            return list(self.images.get(normalize_image(observation.data.repository), []))
        if isinstance(observation, ModelObserved):
            return list(self.models.get(observation.data.name, []))
        if isinstance(observation, Tick):
            return list(self.pipelines)
        if isinstance(observation, HealthObserved):
            name, env = observation.data.pipeline, observation.data.environment
        elif isinstance(observation, EnvObservation):
            name, env = observation.pipeline, observation.environment
        compiled = self.pipelines.get(name)
        if compiled is None or compiled.rules(env) is None or _elsewhere(observation, compiled):
            return []
        return [name]


def _elsewhere(observation: Observation, compiled: CompiledPipeline) -> bool:
    """An SCM webhook about a PR of a pipeline whose PRs that SCM does not host.

    A GitHub review or close of some `promoter/<pipeline>/<env>` branch says nothing about a
    local pipeline's PR; taking it would let anyone who can review on any repository sending
    webhooks to the gateway approve (or mark merged) the local PR.
    """
    if not isinstance(observation, Approved | ChangesRequested | Dismissed | Merged | Closed):
        return False
    host = compiled.pipeline.spec.repository.provider or "local"
    return observation.via is not None and observation.via != host
