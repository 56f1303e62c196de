"""Scale: 1,000 pipelines x 3 environments replay 10,000 events through the simulator."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

import pytest
from builders import T0

from promoter.core.compiled import CompiledPipeline, compile_pipeline
from promoter.core.events import HealthSignal, ImageBuilt
from promoter.core.observations import HealthObserved, ImageObserved
from promoter.core.pipeline import Pipeline
from promoter.simulate import Simulator, TimelineEntry


def make_pipelines(count: int) -> list[CompiledPipeline]:
    out = []
    for i in range(count):
        envs = [
            {
                "name": "dev",
                "auto": True,
                "update": [{"file": "dev.yaml", "set": {"t": "${app.tag}"}}],
            },
            {
                "name": "staging",
                "from": ["dev"],
                "auto": True,
                "gates": {"soak": "10m"},
                "update": [{"file": "s.yaml", "set": {"t": "${app.tag}"}}],
            },
            {
                "name": "prod",
                "from": ["staging"],
                "gates": {"soak": "30m"},
                "update": [{"file": "p.yaml", "set": {"t": "${app.tag}"}}],
            },
        ]
        doc = {
            "apiVersion": "promoter/v1",
            "kind": "Pipeline",
            "metadata": {"name": f"svc-{i}"},
            "spec": {
                "repository": {"url": "./r"},
                "artifacts": [
                    {"name": "app", "image": f"reg/svc-{i}", "select": {"semver": ">=1.0.0"}}
                ],
                "environments": envs,
            },
        }
        out.append(compile_pipeline(Pipeline.model_validate(doc)))
    return out


def make_events(pipelines: int, count: int, seed: int = 7) -> list[TimelineEntry]:
    rng = random.Random(seed)
    entries = []
    for n in range(count):
        at = T0 + timedelta(seconds=30 * n)
        i = rng.randrange(pipelines)
        if rng.random() < 0.4:
            tag = f"1.{n}.0"
            data = ImageBuilt(
                repository=f"reg/svc-{i}",
                tag=tag,
                digest="sha256:" + hashlib.sha256(tag.encode()).hexdigest(),
            )
            entries.append(TimelineEntry(at, ImageObserved(data, at), n))
        else:
            env = rng.choice(["dev", "staging", "prod"])
            signal = HealthSignal(
                pipeline=f"svc-{i}",
                environment=env,
                status=rng.choice(["healthy", "healthy", "degraded"]),
            )
            entries.append(TimelineEntry(at, HealthObserved(signal), n))
    return entries


@pytest.mark.slow
def test_thousand_pipelines_ten_thousand_events_finish_and_promote() -> None:
    simulator = Simulator(make_pipelines(1000))
    decisions = list(simulator.run(make_events(1000, 10_000)))
    merged = {(d.pipeline, d.environment) for _, d in decisions if d.action == "merge"}
    assert {env for _, env in merged} == {"dev", "staging"}  # prod waits for approvals
    assert sum(1 for _, env in merged if env == "dev") > 900
    assert not simulator.unrouted
