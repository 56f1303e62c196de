"""Harbor webhooks (Default and CloudEvents formats): artifact pushes become image events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from promoter.core.events import DIGEST_PATTERN, IMAGE_BUILT
from promoter.sources.base import (
    Delivery,
    MalformedError,
    Normalized,
    SourceConfig,
    bare_host,
    cloud_event,
    field_of,
    ignored,
    kind_of,
    prefixed,
    required_text,
    rfc3339,
    stable_id,
    text_of,
)
from promoter.sources.verify import verify_shared_secret

__all__ = ["SOURCE", "from_cloudevent", "normalize"]

SOURCE = "/hooks/harbor"
DEFAULT_FORMAT = "application/json"
CLOUDEVENTS_FORMAT = "application/cloudevents+json"
PUSH = "PUSH_ARTIFACT"
CE_PUSH = "harbor.artifact.pushed"
_DIGEST = re.compile(DIGEST_PATTERN)


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Turn one Harbor webhook delivery into `promoter.image.built` events.

    Args:
        delivery: The request: raw body and headers.
        config: The source's secret and optional `registry` host.
        now: The receive time (unused: Harbor payloads carry their own time).

    Returns:
        One event per tagged artifact of a push; everything else is ignored, with reasons.

    Raises:
        SignatureError: The `Authorization` header does not carry the source's secret.
        MediaTypeError: The body is neither Harbor's Default nor CloudEvents format.
        MalformedError: The body is not a Harbor payload.
    """
    verify_shared_secret(delivery, config.secret)
    media = delivery.require_media_type(DEFAULT_FORMAT, CLOUDEVENTS_FORMAT)
    payload = delivery.json()
    if not isinstance(payload, Mapping):
        raise MalformedError(
            f"body must be a JSON object (a Harbor webhook payload), got {kind_of(payload)}"
        )
    if media == CLOUDEVENTS_FORMAT:
        return from_cloudevent(payload, config, now)
    return _from_default(payload, config)


def from_cloudevent(obj: Mapping[str, Any], config: SourceConfig, now: datetime) -> Normalized:
    """Normalize one Harbor event in CloudEvents format (`harbor.*` types).

    Args:
        obj: The structured-mode CloudEvent, as parsed JSON.
        config: The source's optional `registry` host.
        now: The receive time (unused: the event's `time` is when Harbor saw the push).

    Returns:
        Image events for `harbor.artifact.pushed`; any other type is ignored, with the reason.

    Raises:
        MalformedError: The event or its `data` is not what Harbor sends.
    """
    del now  # Harbor always sets `time`; the ids must not depend on when we received it
    if obj.get("specversion") != "1.0":
        raise MalformedError(
            f'specversion must be the string "1.0", got {obj.get("specversion")!r}; '
            "Harbor's CloudEvents format sends 1.0"
        )
    kind = required_text(obj, "type")
    if kind != CE_PUSH:
        event_id = obj.get("id")
        return ignored(
            f"Harbor event {event_id}: type {kind!r} ignored; only {CE_PUSH} announces a new image"
        )
    when = rfc3339(required_text(obj, "time"), "time")
    return _pushed(obj, "data", when, config)


def _from_default(payload: Mapping[str, Any], config: SourceConfig) -> Normalized:
    kind = required_text(payload, "type")
    if kind != PUSH:
        return ignored(
            f"Harbor {kind} event at occur_at {payload.get('occur_at')} ignored; "
            f"only {PUSH} announces a new image"
        )
    occur_at = field_of(payload, "occur_at", int)
    try:
        when = datetime.fromtimestamp(occur_at, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedError(f"occur_at {occur_at} is not a Unix time in seconds") from None
    return _pushed(payload, "event_data", when, config)


def _pushed(
    root: Mapping[str, Any], where: str, when: datetime, config: SourceConfig
) -> Normalized:
    """Events for the resources of a push; `where` is the member holding `event_data`."""
    full_name = required_text(root, f"{where}.repository.repo_full_name")
    resources = field_of(root, f"{where}.resources", list)
    if not resources:
        return ignored(f"Harbor push to {full_name} ignored: {where}.resources is empty")
    result = Normalized()
    for index, resource in enumerate(resources):
        path = f"{where}.resources[{index}]"
        if not isinstance(resource, Mapping):
            raise MalformedError(f"{path} must be a JSON object, got {kind_of(resource)}")
        result += _resource(resource, path, full_name, when, config)
    return result


def _resource(
    resource: Mapping[str, Any], path: str, full_name: str, when: datetime, config: SourceConfig
) -> Normalized:
    with prefixed(f"{path}."):
        tag = text_of(resource, "tag", optional=True)
    if tag is None or tag.startswith("sha256:") or _DIGEST.match(tag):
        shown = resource.get("digest") or tag or "an artifact"
        return ignored(
            f"Harbor push of {full_name}@{shown} ignored: pushed without a tag (Harbor then "
            "puts the digest in `tag`); only tagged pushes are promoted"
        )
    with prefixed(f"{path}."):
        digest = required_text(resource, "digest")
        host = _host(resource, config)
    seconds = int(when.timestamp())
    with prefixed(f"{path}: "):
        event = cloud_event(
            IMAGE_BUILT,
            {"repository": f"{host}/{full_name}", "tag": tag, "digest": digest, "labels": {}},
            source=SOURCE,
            event_id=stable_id("harbor", full_name, digest, tag, seconds),
            time=when,
        )
    return Normalized(events=(event,))


def _host(resource: Mapping[str, Any], config: SourceConfig) -> str:
    if config.registry:
        return bare_host(config.registry)
    url = text_of(resource, "resource_url", optional=True) or ""
    host, slash, _ = url.partition("/")
    if not slash or not host:
        raise MalformedError(
            f"resource_url {url or None!r} does not start with the registry host; set the "
            "source's `registry` setting (e.g. registry: harbor.example.com)"
        )
    return host
