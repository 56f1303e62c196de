"""Argo CD notifications rendered by promoter's template: an Application's health as a signal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from promoter.core.events import HEALTH_SIGNAL
from promoter.sources.base import (
    Delivery,
    MalformedError,
    Normalized,
    SourceConfig,
    cloud_event,
    ignored,
    json_kind,
    rfc3339,
    stable_id,
    text_of,
)
from promoter.sources.verify import verify_shared_secret

__all__ = ["SOURCE", "normalize"]

SOURCE = "/hooks/argocd"
TEMPLATE = "template.promoter-health in deploy/argocd/promoter-notifications.yaml"
PIPELINE_ANNOTATION = "promoter.dev/pipeline"
ENVIRONMENT_ANNOTATION = "promoter.dev/environment"
FAILED_PHASES = frozenset({"Failed", "Error"})
HEALTH = {
    "Degraded": "degraded",
    "Progressing": "progressing",
    "Suspended": "progressing",  # paused on purpose (e.g. a paused rollout), not a failure
    "Missing": "unknown",
    "Unknown": "unknown",
}
_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class _AppStatus:
    """The fields of one rendered notification body."""

    app: str
    pipeline: str | None
    environment: str | None
    health: str | None
    sync: str | None
    revision: str | None
    phase: str | None
    finished_at: str | None
    finished: datetime | None


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Turn one Argo CD notification into a health signal for the Application's environment.

    Args:
        delivery: The request as received.
        config: The source's shared secret.
        now: The current time; the signal's time when no sync has finished yet.

    Returns:
        One `promoter.health.signal`, or why the notification was ignored (an Application
        without promoter annotations).

    Raises:
        SignatureError: The shared secret is missing or wrong.
        MediaTypeError: The Content-Type is not application/json.
        MalformedError: The body is not what promoter's notification template renders.
    """
    verify_shared_secret(delivery, config.secret)
    delivery.require_media_type("application/json", missing_ok=True)
    try:
        status = _read(delivery.json("Argo CD notification body"))
    except MalformedError as exc:
        raise MalformedError(f"{exc}; render the body with {TEMPLATE}") from None
    if not status.pipeline or not status.environment:
        return ignored(_unannotated(status))
    data = {
        "pipeline": status.pipeline,
        "environment": status.environment,
        "status": _health(status),
        "reason": _reason(status),
    }
    event_id = stable_id(
        "argocd",
        status.app,
        status.revision,
        status.health,
        status.sync,
        status.phase,
        status.finished_at,
    )
    when = status.finished or now
    event = cloud_event(HEALTH_SIGNAL, data, source=SOURCE, event_id=event_id, time=when)
    return Normalized(events=(event,))


def _read(body: Any) -> _AppStatus:
    """The body's fields; MalformedError names the field that is not what the template renders."""
    if not isinstance(body, Mapping):
        raise MalformedError(
            f"Argo CD notification body must be a JSON object, got {json_kind(body)}"
        )
    app = text_of(body, "app", optional=True)
    if app is None or not app.strip():
        raise MalformedError("app (the Application's name) is missing or empty")
    finished_at = text_of(body, "finishedAt", optional=True)
    return _AppStatus(
        app=app,
        pipeline=text_of(body, "pipeline", optional=True),
        environment=text_of(body, "environment", optional=True),
        health=text_of(body, "health", optional=True),
        sync=text_of(body, "sync", optional=True),
        revision=text_of(body, "revision", optional=True),
        phase=text_of(body, "phase", optional=True),
        finished_at=finished_at,
        finished=rfc3339(finished_at, "finishedAt") if finished_at else None,
    )


def _unannotated(status: _AppStatus) -> str:
    missing = [
        name
        for name, value in (
            (PIPELINE_ANNOTATION, status.pipeline),
            (ENVIRONMENT_ANNOTATION, status.environment),
        )
        if not value
    ]
    return (
        f"Argo CD app {status.app} has no {' and no '.join(missing)} annotation, so promoter "
        f"cannot tell which environment it runs; annotate the Application with "
        f"{PIPELINE_ANNOTATION} and {ENVIRONMENT_ANNOTATION} to send its health to promoter"
    )


def _health(status: _AppStatus) -> str:
    """The promoter health status for an Application's health, sync status and last phase."""
    if status.phase in FAILED_PHASES:
        return "degraded"
    if status.health == "Healthy":
        return "healthy" if status.sync == "Synced" else "progressing"
    return HEALTH.get(status.health or "", "unknown")


def _reason(status: _AppStatus) -> str:
    revision = status.revision
    if revision and _SHA.fullmatch(revision):
        revision = revision[:7]
    shown = (
        ("health", status.health),
        ("sync", status.sync),
        ("phase", status.phase),
        ("revision", revision),
    )
    details = ", ".join(f"{name} {value}" for name, value in shown if value) or "no status yet"
    failed = "sync failed; " if status.phase in FAILED_PHASES else ""
    return f"Argo CD app {status.app}: {failed}{details}"
