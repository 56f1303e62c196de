"""Observations the planner reacts to (events, reviews, operator commands) and its decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from promoter.core.events import (
    GITHUB_WEBHOOK_SOURCE,
    HealthEvent,
    HealthSignal,
    ImageBuilt,
    ImageEvent,
    ModelEvent,
    ModelRegistered,
    OperatorCommand,
    PromoterEvent,
    PullClosedEvent,
    PullReview,
    ReviewEvent,
)
from promoter.core.state import Bundle

__all__ = [
    "Action",
    "Approved",
    "ChangesRequested",
    "Closed",
    "Decision",
    "Dismissed",
    "EnvObservation",
    "HealthObserved",
    "Held",
    "ImageObserved",
    "MergeRefused",
    "Merged",
    "ModelObserved",
    "Observation",
    "Promote",
    "PullSynced",
    "Resumed",
    "Rollback",
    "Tick",
    "observe_event",
]


@dataclass(frozen=True)
class ImageObserved:
    """An image was built; `built_at` is the event time, `event` its CloudEvent source and id."""

    data: ImageBuilt
    built_at: datetime
    event: str | None = None


@dataclass(frozen=True)
class ModelObserved:
    """A model version was registered; `built_at` is the event time."""

    data: ModelRegistered
    built_at: datetime
    event: str | None = None


@dataclass(frozen=True)
class HealthObserved:
    """A health signal for an environment."""

    data: HealthSignal


@dataclass(frozen=True)
class Approved:
    """A reviewer approved the environment's PR (for `bundle`, when given)."""

    pipeline: str
    environment: str
    by: str
    teams: tuple[str, ...] = ()
    bundle: str | None = None
    via: str | None = None
    """The SCM whose webhook reported it (`github`); None for promoter's own commands."""


@dataclass(frozen=True)
class ChangesRequested:
    """A reviewer rejected the environment's PR (for `bundle`, when given)."""

    pipeline: str
    environment: str
    by: str
    bundle: str | None = None
    via: str | None = None
    """The SCM whose webhook reported it (`github`); None for promoter's own commands."""


@dataclass(frozen=True)
class Dismissed:
    """A reviewer's earlier verdict on the environment's PR was dismissed."""

    pipeline: str
    environment: str
    by: str
    bundle: str | None = None
    via: str | None = None
    """The SCM whose webhook reported it (`github`); None for promoter's own commands."""


@dataclass(frozen=True)
class Held:
    """An operator froze the environment."""

    pipeline: str
    environment: str
    reason: str | None = None


@dataclass(frozen=True)
class Resumed:
    """An operator lifted a hold."""

    pipeline: str
    environment: str


@dataclass(frozen=True)
class Merged:
    """The SCM confirmed the PR carrying `bundle` merged."""

    pipeline: str
    environment: str
    bundle: str
    via: str | None = None
    """The SCM whose webhook reported it (`github`); None for promoter's own commands."""


@dataclass(frozen=True)
class Closed:
    """The PR carrying `bundle` was closed without merging by someone else."""

    pipeline: str
    environment: str
    bundle: str
    via: str | None = None
    """The SCM whose webhook reported it (`github`); None for promoter's own commands."""


@dataclass(frozen=True)
class Promote:
    """An operator asked to promote now, skipping the gates that wait (soak, approvals, window)."""

    pipeline: str
    environment: str
    by: str
    bundle: str | None = None


@dataclass(frozen=True)
class Rollback:
    """An operator asked to roll back to an earlier bundle (default: the previous) and hold."""

    pipeline: str
    environment: str
    by: str
    bundle: str | None = None


@dataclass(frozen=True)
class PullSynced:
    """What the SCM says about the PR carrying `bundle` now (its reviews are the truth).

    `approvals` pairs each user whose approval counts on `head` with their teams; it and
    `rejections` replace what earlier review events said.
    """

    pipeline: str
    environment: str
    bundle: str
    state: Literal["open", "merged", "closed"]
    head: str
    approvals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rejections: tuple[str, ...] = ()


@dataclass(frozen=True)
class MergeRefused:
    """The SCM refused to merge `bundle` at the head that was approved (it moved meanwhile)."""

    pipeline: str
    environment: str
    bundle: str
    reason: str


@dataclass(frozen=True)
class Tick:
    """Time passed; re-evaluate timers (soak ends, windows opening)."""


EnvObservation = (
    Approved
    | ChangesRequested
    | Dismissed
    | Held
    | Resumed
    | Merged
    | Closed
    | PullSynced
    | MergeRefused
    | Promote
    | Rollback
)
"""Observations about one environment of one pipeline (they carry both names)."""

Observation = ImageObserved | ModelObserved | HealthObserved | EnvObservation | Tick

Action = Literal["open-pr", "update-pr", "merge", "close-pr", "rollback", "hold", "resume", "block"]


@dataclass(frozen=True)
class Decision:
    """One thing the planner decided for an environment; effects for the runtime to carry out."""

    action: Action
    pipeline: str
    environment: str
    bundle: Bundle | None
    reason: str
    head: str | None = None
    """For a merge: the PR head the approvals were given on (None: whatever the head is)."""

    def to_json(self, at: datetime) -> dict[str, Any]:
        """The simulate/audit output line."""
        return {
            "at": at.isoformat().replace("+00:00", "Z"),
            "pipeline": self.pipeline,
            "environment": self.environment,
            "action": self.action,
            "versions": self.bundle.summary() if self.bundle else {},
            "reason": self.reason,
        }


_SCM_SOURCES = {GITHUB_WEBHOOK_SOURCE: "github"}


def _review(review: PullReview, via: str | None) -> Observation:
    pipeline, env, by = review.pipeline, review.environment, review.reviewer
    if review.state == "approved":
        return Approved(pipeline, env, by, tuple(review.teams), review.bundle, via)
    kind = ChangesRequested if review.state == "changes_requested" else Dismissed
    return kind(pipeline, env, by, review.bundle, via)


def _command(command: OperatorCommand) -> Observation:
    pipeline, env = command.pipeline, command.environment
    if command.action == "hold":
        return Held(pipeline, env, command.reason or f"held by {command.by}")
    if command.action == "resume":
        return Resumed(pipeline, env)
    if command.action == "promote":
        return Promote(pipeline, env, command.by, command.bundle)
    return Rollback(pipeline, env, command.by, command.bundle)


def observe_event(event: PromoterEvent, now: datetime) -> Observation:
    """The observation an event stands for; the event time (or `now`) dates builds."""
    when = event.time or now
    if isinstance(event, ImageEvent):
        return ImageObserved(event.data, when, f"{event.source} {event.id}")
    if isinstance(event, ModelEvent):
        return ModelObserved(event.data, when, f"{event.source} {event.id}")
    if isinstance(event, HealthEvent):
        return HealthObserved(event.data)
    via = _SCM_SOURCES.get(event.source)
    if isinstance(event, ReviewEvent):
        return _review(event.data, via)
    if isinstance(event, PullClosedEvent):
        closed = event.data
        kind = Merged if closed.merged else Closed
        return kind(closed.pipeline, closed.environment, closed.bundle, via)
    return _command(event.data)
