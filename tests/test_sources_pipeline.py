"""Webhook events through the planner: what deploy/webhooks.md promises pipelines can do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from builders import Driver, compiled

from promoter.core.events import parse_event
from promoter.core.observations import observe_event
from promoter.sources.base import Delivery, SourceConfig
from promoter.sources.registry import normalize

WEBHOOKS = Path(__file__).parent / "data" / "webhooks"
NOW = datetime(2026, 3, 4, 12, 30, tzinfo=UTC)

PIPELINE = """
apiVersion: promoter/v1
kind: Pipeline
metadata: {name: fraud}
spec:
  repository: {url: ./repo}
  artifacts:
    - {name: api, image: registry.example.com/payments/api, select: {semver: ">=1.0.0"}}
    - name: detector
      model: fraud-detector
      select: {newest: true}
      when: "model.labels['validation_status'] == 'passed'"
  environments:
    - name: dev
      auto: true
      update: [{file: dev.yaml, set: {tag: "${api.tag}", model: "${detector.uri}"}}]
"""


def feed(driver: Driver, source: str, fixture: str) -> None:
    """Normalize a saved delivery and feed every event it stands for to the planner."""
    body = (WEBHOOKS / source / fixture).read_bytes()
    media = {"docker-distribution": "application/vnd.docker.distribution.events.v2+json"}
    headers = {"Content-Type": media.get(source, "application/json")}
    result = normalize(source, Delivery.of(body, headers), SourceConfig(), NOW)
    for event in result.events:
        driver.feed(observe_event(parse_event(event), NOW))


def test_a_registry_push_and_a_validated_model_version_form_a_bundle() -> None:
    driver = Driver(compiled(PIPELINE))
    feed(driver, "docker-distribution", "push-index-tagged.json")
    feed(driver, "mlflow", "model_version-created.json")
    assert driver.live("dev") is None  # version 7 is not validated yet: no candidate

    feed(driver, "mlflow", "model_version_tag-set.json")

    assert driver.live("dev") == {"api": "1.4.2", "detector": "7"}
    live = driver.state.envs["dev"].live
    assert live is not None
    assert live.versions["detector"].uri == "models:/fraud-detector/7"
    assert live.versions["api"].digest == (
        "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
    )
