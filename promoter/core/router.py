"""Which pipelines an observation concerns."""

from __future__ import annotations

from collections.abc import Iterable

from promoter.core.compiled import CompiledPipeline, normalize_image
from promoter.core.observations import (
    EnvObservation,
    HealthObserved,
    ImageObserved,
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
        if compiled is None or compiled.rules(env) is None:
            return []
        return [name]
