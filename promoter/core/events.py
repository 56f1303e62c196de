"""promoter's own events as CloudEvents 1.0 (structured JSON): models, decoding and ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from promoter.errors import EventError

__all__ = [
    "DIGEST_PATTERN",
    "EVENT_TYPES",
    "GITHUB_WEBHOOK_SOURCE",
    "HEALTH_SIGNAL",
    "IMAGE_BUILT",
    "MODEL_REGISTERED",
    "OPERATOR_COMMAND",
    "PR_CLOSED",
    "PR_REVIEWED",
    "CloudEvent",
    "HealthEvent",
    "HealthSignal",
    "ImageBuilt",
    "ImageEvent",
    "ModelEvent",
    "ModelRegistered",
    "OperatorCommand",
    "OperatorEvent",
    "PromoterEvent",
    "PullClosed",
    "PullClosedEvent",
    "PullReview",
    "ReviewEvent",
    "content_id",
    "parse_event",
    "structured_event",
    "subject_for",
]

IMAGE_BUILT = "promoter.image.built"
MODEL_REGISTERED = "promoter.model.registered"
HEALTH_SIGNAL = "promoter.health.signal"
PR_REVIEWED = "promoter.pr.reviewed"
PR_CLOSED = "promoter.pr.closed"
OPERATOR_COMMAND = "promoter.operator.command"
GITHUB_WEBHOOK_SOURCE = "/hooks/github"
"""The CloudEvent source of events the gateway makes from GitHub webhooks."""
DIGEST_PATTERN = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$"
_SURROGATE = re.compile("[\ud800-\udfff]")
_MAY_HOLD_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F]")
"""In JSON text: a surrogate, or the escape that makes one (a cheap scan before the walk)."""
HealthStatus = Literal["healthy", "progressing", "degraded", "unknown"]


class _Data(BaseModel):
    # Producers add fields over time; unknown data fields are ignored, never fatal.
    model_config = ConfigDict(extra="ignore", frozen=True)


class ImageBuilt(_Data):
    """A container image was pushed (data of `promoter.image.built`)."""

    repository: str = Field(min_length=1, description="Image repository, e.g. ghcr.io/acme/api.")
    tag: str | None = Field(None, min_length=1, description="Tag pushed with the image, if any.")
    digest: str = Field(pattern=DIGEST_PATTERN, description="Content digest, e.g. sha256:<hex>.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Image labels / annotations; `residency` is a comma list of jurisdictions.",
    )


class ModelRegistered(_Data):
    """A model version was registered (data of `promoter.model.registered`)."""

    name: str = Field(min_length=1, description="Registered model name.")
    version: str = Field(min_length=1, description="Model version as the registry names it.")
    uri: str = Field(
        min_length=1, description="Where the model lives, e.g. s3://... or models:/..."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Evaluation metrics.")
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Model tags; `residency` is a comma list of jurisdictions.",
    )


class HealthSignal(_Data):
    """Health of what is live in an environment (data of `promoter.health.signal`)."""

    pipeline: str = Field(min_length=1, description="Pipeline name.")
    environment: str = Field(min_length=1, description="Environment name.")
    status: HealthStatus = Field(description="healthy, progressing, degraded or unknown.")
    versions: dict[str, str] | None = Field(
        None,
        description="The bundle the signal is about, {artifact: version}; a signal for another "
        "bundle than the live one is ignored. Absent: the live bundle.",
    )
    reason: str | None = Field(None, description="Why, in words (shown in history).")


class PullReview(_Data):
    """A review of an environment's PR (data of `promoter.pr.reviewed`)."""

    pipeline: str = Field(min_length=1, description="Pipeline name.")
    environment: str = Field(min_length=1, description="Environment name.")
    reviewer: str = Field(min_length=1, description="Who reviewed (a user login).")
    teams: list[str] = Field(default_factory=list, description="Teams the reviewer is in.")
    state: Literal["approved", "changes_requested", "dismissed"] = Field(
        description="The verdict; dismissed withdraws the reviewer's earlier one."
    )
    bundle: str | None = Field(
        None, description="Bundle id the review is for; a review of an older bundle is ignored."
    )
    pr: int | None = Field(None, description="PR number, for the record.")


class PullClosed(_Data):
    """An environment's PR was merged or closed on the SCM (data of `promoter.pr.closed`)."""

    pipeline: str = Field(min_length=1, description="Pipeline name.")
    environment: str = Field(min_length=1, description="Environment name.")
    bundle: str = Field(min_length=1, description="Bundle id the PR carried.")
    merged: bool = Field(description="True if merged, false if closed without merging.")
    pr: int | None = Field(None, description="PR number, for the record.")
    sha: str | None = Field(None, description="The merge commit, when merged.")
    by: str | None = Field(None, description="Who merged or closed it.")


class OperatorCommand(_Data):
    """An operator's command for an environment (data of `promoter.operator.command`)."""

    pipeline: str = Field(min_length=1, description="Pipeline name.")
    environment: str = Field(min_length=1, description="Environment name.")
    action: Literal["hold", "resume", "promote", "rollback"] = Field(
        description="hold, resume, promote (skip waiting gates) or rollback (and hold)."
    )
    by: str = Field(min_length=1, description="Who gave the command.")
    reason: str | None = Field(None, description="Why, in words (shown in history).")
    bundle: str | None = Field(
        None, description="promote/rollback: the bundle id; absent: the candidate / previous."
    )


def _rfc3339(value: Any) -> Any:
    if value is None or isinstance(value, str | datetime):
        return value
    raise ValueError("time must be an RFC 3339 string, e.g. 2026-03-02T07:00:00Z")


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope; extension attributes are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"] = Field(description="Always the string 1.0.")
    id: str = Field(min_length=1, description="Unique per source; source+id dedupes.")
    source: str = Field(min_length=1, description="URI-reference of the producer.")
    type: str = Field(min_length=1, description="Event type.")
    time: Annotated[AwareDatetime | None, BeforeValidator(_rfc3339)] = Field(
        None, description="When it happened (RFC 3339 string with a zone)."
    )
    subject: str | None = Field(None, description="Subject of the event.")
    datacontenttype: str | None = Field(None, description="Media type of data (JSON).")
    dataschema: str | None = Field(None, description="URI of the data schema.")
    data: Any = Field(None, description="The payload.")


class ImageEvent(CloudEvent):
    """`promoter.image.built`."""

    type: Literal["promoter.image.built"] = Field(description="promoter.image.built")
    data: ImageBuilt


class ModelEvent(CloudEvent):
    """`promoter.model.registered`."""

    type: Literal["promoter.model.registered"] = Field(description="promoter.model.registered")
    data: ModelRegistered


class HealthEvent(CloudEvent):
    """`promoter.health.signal`."""

    type: Literal["promoter.health.signal"] = Field(description="promoter.health.signal")
    data: HealthSignal


class ReviewEvent(CloudEvent):
    """`promoter.pr.reviewed`."""

    type: Literal["promoter.pr.reviewed"] = Field(description="promoter.pr.reviewed")
    data: PullReview


class PullClosedEvent(CloudEvent):
    """`promoter.pr.closed`."""

    type: Literal["promoter.pr.closed"] = Field(description="promoter.pr.closed")
    data: PullClosed


class OperatorEvent(CloudEvent):
    """`promoter.operator.command`."""

    type: Literal["promoter.operator.command"] = Field(description="promoter.operator.command")
    data: OperatorCommand


PromoterEvent = (
    ImageEvent | ModelEvent | HealthEvent | ReviewEvent | PullClosedEvent | OperatorEvent
)
EVENT_TYPES: dict[str, type[PromoterEvent]] = {
    IMAGE_BUILT: ImageEvent,
    MODEL_REGISTERED: ModelEvent,
    HEALTH_SIGNAL: HealthEvent,
    PR_REVIEWED: ReviewEvent,
    PR_CLOSED: PullClosedEvent,
    OPERATOR_COMMAND: OperatorEvent,
}


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _lone_surrogate(value: Any) -> str | None:
    r"""The first lone UTF-16 surrogate in the strings and keys of `value` (JSON has `\ud800`)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            found = _SURROGATE.search(item)
            if found:
                return found.group()
        elif isinstance(item, Mapping):
            pending += [*item.keys(), *item.values()]
        elif isinstance(item, list | tuple):
            pending += item
    return None


def _decode(raw: bytes | str) -> tuple[Any, bool]:
    """JSON text (bytes must be UTF-8) to Python values, and whether a surrogate may be in them.

    EventError says why the text is not JSON.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise EventError(f"event is not valid JSON: not UTF-8 text ({exc})") from None
    try:
        return json.loads(text), _MAY_HOLD_SURROGATE.search(text) is not None
    except ValueError as exc:
        raise EventError(f"event is not valid JSON: {exc}") from None
    except RecursionError:
        raise EventError("event JSON is nested too deeply") from None


def parse_event(raw: bytes | str | Mapping[str, Any]) -> PromoterEvent:
    """Decode and validate one structured-mode CloudEvent; EventError says what is wrong."""
    suspect = True
    if isinstance(raw, bytes | str):
        raw, suspect = _decode(raw)
    if not isinstance(raw, Mapping):
        raise EventError("event must be a JSON object (a structured-mode CloudEvent)")
    surrogate = _lone_surrogate(raw) if suspect else None
    if surrogate is not None:
        raise EventError(
            f"event text has a lone UTF-16 surrogate ({surrogate!r}); it cannot be stored as UTF-8"
        )
    kind = raw.get("type")
    model = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise EventError(
            f"unsupported event type {kind!r}; expected one of {', '.join(sorted(EVENT_TYPES))}"
        )
    contenttype = raw.get("datacontenttype")
    if isinstance(contenttype, str) and "json" not in contenttype.lower():
        raise EventError(f"datacontenttype {contenttype!r} is not JSON")
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        raise EventError(f"invalid {kind} event: {_describe(exc)}") from None
    except RecursionError:
        raise EventError(f"invalid {kind} event: nested too deeply") from None


def structured_event(
    event_type: str, data: Mapping[str, Any], *, event_id: str, source: str, time: datetime
) -> dict[str, Any]:
    """A structured-mode CloudEvent as promoter writes it (not yet validated: see parse_event)."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(data),
    }


def subject_for(event_type: str) -> str:
    """The NATS subject an event type is published on, e.g. promoter.events.image.built."""
    return "promoter.events." + event_type.removeprefix("promoter.")


def content_id(event_type: str, data: Mapping[str, Any], when: datetime | None = None) -> str:
    """A deterministic id from the event's content, so re-sending the same facts dedupes."""
    body = json.dumps(
        {"type": event_type, "data": data, "time": when.isoformat() if when else None},
        sort_keys=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()[:32]
