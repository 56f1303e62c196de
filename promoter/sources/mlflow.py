"""MLflow model-registry webhooks (OSS MLflow >= 3.3): model versions, their tags and aliases."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from promoter.core.events import MODEL_REGISTERED
from promoter.sources.base import (
    Delivery,
    MalformedError,
    Normalized,
    SourceConfig,
    cloud_event,
    field_of,
    ignored,
    kind_of,
    rfc3339,
    stable_id,
)
from promoter.sources.verify import verify_mlflow

__all__ = ["SOURCE", "normalize"]

SOURCE = "/hooks/mlflow"

Labeler = Callable[[object], dict[str, str]]

_JSON_KINDS = (Mapping, list, str, int, float, bool)

_ACTED_ON = "model_version.created, model_version_tag.set and model_version_alias.created"
_WHY_NOT = {
    "registered_model.created": "a registered model without a version has nothing to promote",
    "model_version_tag.deleted": "promoter never takes labels back from a version it has seen",
    "model_version_alias.deleted": "an alias removed names no version to promote",
}


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Verify one MLflow delivery and turn it into promoter events.

    Args:
        delivery: The request: raw body and headers.
        config: The source's secret (`X-MLflow-Signature` is required when set) and `max_age`.
        now: The time the signature's timestamp is checked against.

    Returns:
        One `promoter.model.registered` event for a model version, its tag or its alias;
        or why the delivery stands for none.

    Raises:
        SignatureError: The signature is missing, wrong or too old.
        MediaTypeError: The Content-Type is not JSON.
        MalformedError: The body is not what MLflow sends.
    """
    verify_mlflow(delivery, config.secret, now, config.max_age)
    delivery.require_media_type("application/json")
    body = delivery.json("MLflow payload")
    entity = _text(body, "entity")
    action = _text(body, "action")
    name = f"{entity}.{action}"
    labeler = _LABELERS.get(name)
    if labeler is None:
        why = _WHY_NOT.get(name, f"promoter acts only on {_ACTED_ON}")
        return ignored(f"MLflow event {name!r} is not one promoter acts on: {why}")
    data = _object(body, "data") or {}
    model = _text(body, "data.name", nonempty=True)
    version = _version(body)
    registered = {
        "name": model,
        "version": version,
        "uri": f"models:/{model}/{version}",
        "metrics": {},
        "labels": labeler(body),
    }
    timestamp = _text(body, "timestamp")
    when = rfc3339(timestamp, "timestamp")
    event_id = _event_id(delivery, entity, action, timestamp, data)
    event = cloud_event(MODEL_REGISTERED, registered, source=SOURCE, event_id=event_id, time=when)
    return Normalized(events=(event,))


def _text(obj: object, path: str, *, nonempty: bool = False) -> str:
    value: str = field_of(obj, path, str)
    if nonempty and not value.strip():
        raise MalformedError(f"{path} is empty; MLflow always names it")
    return value


def _version(body: object) -> str:
    """`data.version`: a string on the wire; an int is accepted and written as one."""
    value = field_of(body, "data.version", (str, int))
    text = str(value).strip()
    if not text:
        raise MalformedError("data.version is empty; MLflow numbers every model version")
    return text


def _event_id(
    delivery: Delivery, entity: str, action: str, timestamp: str, data: Mapping[str, Any]
) -> str:
    """`X-MLflow-Delivery-Id` (kept on retries), else an id from the event's own content."""
    given = (delivery.header("x-mlflow-delivery-id") or "").strip()
    if given:
        return given
    try:
        content = json.dumps(data, sort_keys=True)
    except RecursionError:
        raise MalformedError("data cannot be read back as JSON; it is nested too deeply") from None
    return stable_id("mlflow", entity, action, timestamp, content)


def _object(obj: object, path: str, *, optional: bool = False) -> Mapping[str, Any] | None:
    """A JSON object field; MalformedError (naming the JSON kind found) if it is another."""
    value = field_of(obj, path, _JSON_KINDS, optional=optional)
    if value is None or isinstance(value, Mapping):
        return value
    raise MalformedError(f"{path} must be a JSON object, got {kind_of(value)}")


def _strings(obj: object, path: str) -> dict[str, str]:
    """The string values of an optional object field (others are skipped)."""
    found = _object(obj, path, optional=True) or {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def _created(body: object) -> dict[str, str]:
    """The version's tags, and where it came from: `mlflow.source` and `mlflow.run_id`."""
    labels = _strings(body, "data.tags")
    for label, key in (("mlflow.source", "source"), ("mlflow.run_id", "run_id")):
        value = field_of(body, f"data.{key}", str, optional=True)
        if value:
            labels[label] = value
    return labels


def _tag_set(body: object) -> dict[str, str]:
    return {_text(body, "data.key", nonempty=True): _text(body, "data.value")}


def _alias_created(body: object) -> dict[str, str]:
    return {"alias": _text(body, "data.alias", nonempty=True)}


_LABELERS: dict[str, Labeler] = {
    "model_version.created": _created,
    "model_version_tag.set": _tag_set,
    "model_version_alias.created": _alias_created,
}
