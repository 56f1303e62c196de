"""The webhook sources by name, and the one entry point that normalizes a delivery."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from promoter.core.events import parse_event
from promoter.errors import EventError
from promoter.sources import (
    alertmanager,
    argocd,
    cloudevents,
    docker_distribution,
    github,
    harbor,
    mlflow,
)
from promoter.sources.base import (
    Adapter,
    Delivery,
    DeliveryError,
    MalformedError,
    Normalized,
    SourceConfig,
)

__all__ = ["SOURCES", "InternalError", "Source", "normalize", "source_named"]


@dataclass(frozen=True)
class Source:
    """A webhook source: its adapter, what it is and the Content-Type it sends."""

    name: str
    adapter: Adapter
    summary: str
    media_type: str
    signs: bool = False


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            "cloudevents",
            cloudevents.normalize,
            "promoter's own CloudEvents (structured, batch or binary mode)",
            "application/cloudevents+json",
        ),
        Source(
            "docker-distribution",
            docker_distribution.normalize,
            "CNCF Distribution (Docker Registry) notifications: tagged manifest pushes",
            "application/vnd.docker.distribution.events.v2+json",
        ),
        Source(
            "harbor",
            harbor.normalize,
            "Harbor webhooks, Default or CloudEvents format: PUSH_ARTIFACT with a tag",
            "application/json",
        ),
        Source(
            "github",
            github.normalize,
            "GitHub: container packages published, PR reviews and closed PRs",
            "application/json",
            signs=True,
        ),
        Source(
            "mlflow",
            mlflow.normalize,
            "MLflow model registry: versions created, tags set, aliases created",
            "application/json",
            signs=True,
        ),
        Source(
            "alertmanager",
            alertmanager.normalize,
            "Prometheus Alertmanager: firing alerts degrade, resolved alerts heal",
            "application/json",
        ),
        Source(
            "argocd",
            argocd.normalize,
            "Argo CD notifications (deploy/argocd template): application health",
            "application/json",
        ),
    )
}


class InternalError(MalformedError):
    """An adapter failed in a way it should have named; the message keeps the cause."""


def source_named(name: str) -> Source:
    """The source called `name`; EventError lists the known ones."""
    try:
        return SOURCES[name]
    except KeyError:
        raise EventError(
            f"unknown source {name!r}; known sources: {', '.join(sorted(SOURCES))}"
        ) from None


def normalize(name: str, delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Verify and normalize one delivery of source `name`; DeliveryError says why it is refused.

    Every event returned is a valid promoter CloudEvent. No exception other than
    DeliveryError (or EventError for an unknown source) leaves this function.
    """
    source = source_named(name)
    try:
        result = source.adapter(delivery, config, now)
        for event in result.events:
            parse_event(event)
    except DeliveryError:
        raise
    except EventError as exc:
        raise MalformedError(str(exc)) from None
    except Exception as exc:
        raise InternalError(
            f"{name}: could not read this delivery ({type(exc).__name__}: {exc}); "
            "please report it with the payload"
        ) from exc
    return result
