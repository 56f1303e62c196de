"""Build the CloudEvents that `promoter emit`, `approve` and the operator commands publish."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from promoter.core.events import (
    HEALTH_SIGNAL,
    IMAGE_BUILT,
    MODEL_REGISTERED,
    OPERATOR_COMMAND,
    PR_REVIEWED,
    content_id,
    parse_event,
    structured_event,
)
from promoter.errors import ConfigurationError, EventError

__all__ = [
    "DEFAULT_SOURCE",
    "cloud_event",
    "command_event",
    "current_user",
    "health_event",
    "image_event",
    "model_event",
    "pairs",
    "review_event",
]

DEFAULT_SOURCE = "promoter/cli"


def current_user() -> str:
    """The login of whoever runs the command (for `by` fields)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def pairs(items: Sequence[str] | None, what: str) -> dict[str, str]:
    """`K=V` arguments to a dict; ConfigurationError names the bad one."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"{what} {item!r} must look like KEY=VALUE")
        out[key.strip()] = value
    return out


def _float_pairs(items: Sequence[str] | None, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in pairs(items, what).items():
        try:
            out[key] = float(value)
        except ValueError:
            raise ConfigurationError(
                f"{what} {key}={value!r}: the value must be a number"
            ) from None
    return out


def cloud_event(
    event_type: str,
    data: dict[str, Any],
    *,
    now: datetime,
    event_id: str | None = None,
    source: str | None = None,
    id_from_time: bool = False,
) -> dict[str, Any]:
    """A validated structured CloudEvent; the id defaults to a hash of the content.

    Builds and registrations omit the time from the id so that re-running the same CI step
    publishes a duplicate that dedupes; signals and commands include it, as each is new.
    """
    event = structured_event(
        event_type,
        data,
        event_id=event_id or content_id(event_type, data, now if id_from_time else None),
        source=source or DEFAULT_SOURCE,
        time=now,
    )
    try:
        parse_event(event)
    except EventError as exc:  # bad command-line input: a usage problem
        raise ConfigurationError(str(exc)) from None
    return event


def image_event(
    repository: str, digest: str, tag: str | None, labels: dict[str, str], **kw: Any
) -> dict[str, Any]:
    """`promoter.image.built`."""
    data: dict[str, Any] = {"repository": repository, "digest": digest, "labels": labels}
    if tag:
        data["tag"] = tag
    return cloud_event(IMAGE_BUILT, data, **kw)


def model_event(
    name: str,
    version: str,
    uri: str,
    metrics: Sequence[str] | None,
    labels: dict[str, str],
    **kw: Any,
) -> dict[str, Any]:
    """`promoter.model.registered`."""
    data = {
        "name": name,
        "version": version,
        "uri": uri,
        "metrics": _float_pairs(metrics, "--metric"),
        "labels": labels,
    }
    return cloud_event(MODEL_REGISTERED, data, **kw)


def health_event(
    pipeline: str,
    environment: str,
    status: str,
    versions: dict[str, str],
    reason: str | None,
    **kw: Any,
) -> dict[str, Any]:
    """`promoter.health.signal`."""
    data: dict[str, Any] = {"pipeline": pipeline, "environment": environment, "status": status}
    if versions:
        data["versions"] = versions
    if reason:
        data["reason"] = reason
    return cloud_event(HEALTH_SIGNAL, data, id_from_time=True, **kw)


def review_event(data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """`promoter.pr.reviewed`."""
    return cloud_event(PR_REVIEWED, data, id_from_time=True, **kw)


def command_event(data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """`promoter.operator.command`."""
    return cloud_event(
        OPERATOR_COMMAND, {k: v for k, v in data.items() if v is not None}, id_from_time=True, **kw
    )
