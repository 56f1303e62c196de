"""CNCF Distribution (Docker Registry) notifications: tagged manifest pushes become image events."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from promoter.core.events import IMAGE_BUILT
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

__all__ = ["SOURCE", "normalize"]

SOURCE = "/hooks/docker-distribution"
ENVELOPE = "application/vnd.docker.distribution.events.v2+json"
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Turn one notification envelope into `promoter.image.built` events.

    Args:
        delivery: The request: raw body and headers.
        config: The source's secret and optional `registry` host.
        now: The receive time (unused: every event carries its own `timestamp`).

    Returns:
        One event per tagged manifest push; pulls, mounts, deletes, blobs and pushes by
        digest are ignored, with reasons.

    Raises:
        SignatureError: The `Authorization` header does not carry the source's secret.
        MediaTypeError: The Content-Type is not the notification envelope's.
        MalformedError: The body is not a notification envelope.
    """
    del now  # events carry their own timestamp; ids must not depend on when we received them
    verify_shared_secret(delivery, config.secret)
    delivery.require_media_type(ENVELOPE, "application/json")
    events = field_of(delivery.json(), "events", list)
    if not events:
        return ignored("envelope ignored: its events list is empty")
    result = Normalized()
    for index, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise MalformedError(f"events[{index}] must be a JSON object, got {kind_of(event)}")
        result += _event(event, f"events[{index}]", config)
    return result


def _event(event: Mapping[str, Any], path: str, config: SourceConfig) -> Normalized:
    with prefixed(f"{path}."):
        action = required_text(event, "action")
        media = text_of(event, "target.mediaType", optional=True)
        tag = text_of(event, "target.tag", optional=True)
    what = f"{path}: {action} of {_reference(event)}"
    if action != "push":
        return ignored(f"{what} ignored: only pushes announce new images")
    if media not in MANIFEST_TYPES:
        return ignored(
            f"{what} ignored: {media or 'no mediaType'} is not an image manifest (a blob push)"
        )
    if tag is None:
        return ignored(
            f"{what} ignored: pushed by digest without a tag, "
            "e.g. one platform of a multi-arch index"
        )
    with prefixed(f"{path}."):
        return _image(event, tag, config)


def _image(event: Mapping[str, Any], tag: str, config: SourceConfig) -> Normalized:
    name = required_text(event, "target.repository")
    digest = required_text(event, "target.digest")
    stamp = required_text(event, "timestamp")
    when = rfc3339(stamp, "timestamp")
    repository = f"{_host(event, config)}/{name}"
    event_id = text_of(event, "id", optional=True)
    event_id = event_id or stable_id("docker-distribution", repository, digest, tag, stamp)
    data = {"repository": repository, "tag": tag, "digest": digest, "labels": {}}
    try:
        built = cloud_event(IMAGE_BUILT, data, source=SOURCE, event_id=event_id, time=when)
    except MalformedError as exc:
        raise MalformedError(f"target does not describe an image: {exc}") from None
    return Normalized(events=(built,))


def _host(event: Mapping[str, Any], config: SourceConfig) -> str:
    """The registry's host[:port]: configured, else from target.url, else request.host."""
    if config.registry:
        return bare_host(config.registry)
    url = text_of(event, "target.url", optional=True)
    if url:
        try:
            netloc = urlsplit(url).netloc
        except ValueError:
            netloc = ""
        if host := netloc.rpartition("@")[2]:
            return host
    if fallback := text_of(event, "request.host", optional=True):
        return fallback
    raise MalformedError(
        "target.url and request.host are missing, so the registry host is unknown; set the "
        "source's `registry` setting (e.g. registry: registry.example.com)"
    )


def _reference(event: Mapping[str, Any]) -> str:
    """`repository:tag@digest` as far as the event says, for ignore reasons; never raises."""
    target = event.get("target")
    target = target if isinstance(target, Mapping) else {}
    parts = [_shown(target.get("repository"), "", "a repository")]
    parts.append(_shown(target.get("tag"), ":"))
    parts.append(_shown(target.get("digest"), "@"))
    return "".join(parts)


def _shown(value: object, prefix: str, default: str = "") -> str:
    return f"{prefix}{value}" if isinstance(value, str) and value else default
