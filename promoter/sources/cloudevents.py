"""CloudEvents over HTTP (structured, batch and binary mode): promoter's and Harbor's events."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from promoter.core.events import EVENT_TYPES, parse_event
from promoter.errors import EventError
from promoter.sources import harbor
from promoter.sources.base import (
    Delivery,
    MalformedError,
    MediaTypeError,
    Normalized,
    SourceConfig,
    ignored,
    kind_of,
    parse_json,
    prefixed,
)
from promoter.sources.verify import verify_shared_secret

__all__ = ["SOURCE", "normalize"]

SOURCE = "/hooks/cloudevents"
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
REQUIRED = ("id", "source", "type")
_ATTRIBUTE = re.compile(r"^[a-z0-9]+$")
_NOT_FROM_HEADERS = frozenset({"data", "data_base64", "datacontenttype"})


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Turn one CloudEvents HTTP request into promoter events.

    Promoter event types are validated and passed on as sent (the producer's own id, source
    and time, so redeliveries dedupe); `harbor.*` types are normalized as Harbor's
    CloudEvents format; any other type is ignored.

    Args:
        delivery: The request: raw body and headers.
        config: The source's secret (and `registry`, for Harbor events).
        now: The receive time, passed on to the Harbor normalization.

    Returns:
        The promoter events, and why the rest was ignored.

    Raises:
        SignatureError: The `Authorization` header does not carry the source's secret.
        MediaTypeError: The request is in no CloudEvents mode, or a binary-mode promoter
            event's data is not JSON.
        MalformedError: An event is invalid; in a batch, the message names its index.
    """
    verify_shared_secret(delivery, config.secret)
    media = delivery.media_type
    if media == STRUCTURED:
        return _event(delivery.json(), config, now)
    if media == BATCH:
        return _batch(delivery.json(), config, now)
    if delivery.header("ce-specversion") is not None:
        return _event(_binary(delivery), config, now)
    shown = media or "no Content-Type"
    raise MediaTypeError(
        f"{shown} without a ce-specversion header is no CloudEvents request; send "
        f"{STRUCTURED}, {BATCH}, or binary mode with ce-* headers"
    )


def _batch(events: Any, config: SourceConfig, now: datetime) -> Normalized:
    if not isinstance(events, list):
        raise MalformedError(
            f"a {BATCH} body must be a JSON array of events, got {kind_of(events)}; "
            f"send a single event as {STRUCTURED}"
        )
    if not events:
        return ignored("empty batch: the array held no events")
    result = Normalized()
    for index, event in enumerate(events):
        with prefixed(f"event {index}: "):
            result += _event(event, config, now)
    return result


def _event(obj: Any, config: SourceConfig, now: datetime) -> Normalized:
    if not isinstance(obj, Mapping):
        raise MalformedError(
            f"a CloudEvent must be a JSON object with specversion, id, source and type, "
            f"got {kind_of(obj)}"
        )
    attributes = {key: value for key, value in obj.items() if value is not None}
    _check_envelope(attributes)
    kind = attributes["type"]
    if kind in EVENT_TYPES:
        return Normalized(events=(_promoter_event(attributes),))
    if kind.startswith("harbor."):
        return harbor.from_cloudevent(attributes, config, now)
    return ignored(
        f"event {attributes['source']}/{attributes['id']}: type {kind!r} is not a promoter "
        "event type"
    )


def _check_envelope(attributes: Mapping[str, Any]) -> None:
    version = attributes.get("specversion")
    if version is None:
        raise MalformedError('specversion is missing; a CloudEvent needs "specversion": "1.0"')
    if version != "1.0":
        raise MalformedError(
            f'specversion must be the string "1.0", got {version!r} ({kind_of(version)}); '
            "promoter speaks CloudEvents 1.0"
        )
    for name in REQUIRED:
        value = attributes.get(name)
        if not isinstance(value, str) or not value:
            got = "missing" if value is None else f"{value!r}"
            raise MalformedError(
                f"{name} must be a non-empty string, got {got}; every CloudEvent has one"
            )


def _promoter_event(attributes: dict[str, Any]) -> dict[str, Any]:
    if "data_base64" in attributes:
        attributes = _decoded(attributes)
    try:
        event = parse_event(attributes)
    except EventError as exc:
        raise MalformedError(str(exc)) from None
    return event.model_dump(mode="json", exclude_none=True)


def _decoded(attributes: dict[str, Any]) -> dict[str, Any]:
    """The event with `data_base64` decoded into `data` (promoter data is always JSON)."""
    encoded = attributes.pop("data_base64")
    if "data" in attributes:
        raise MalformedError("data and data_base64 are both set; send only one of them")
    content_type = attributes.get("datacontenttype")
    if not isinstance(content_type, str) or not _is_json(content_type):
        raise MalformedError(
            f"data_base64 with datacontenttype {content_type!r} is not JSON; promoter events "
            'carry JSON: send "data" as a JSON object (or datacontenttype application/json)'
        )
    if not isinstance(encoded, str):
        raise MalformedError(f"data_base64 must be a base64 string, got {kind_of(encoded)}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedError(
            "data_base64 is not valid base64 (RFC 4648); or send the JSON as data"
        ) from None
    attributes["data"] = parse_json(raw, "decoded data_base64")
    return attributes


def _binary(delivery: Delivery) -> dict[str, Any]:
    """The event of a binary-mode request: attributes from ce-* headers, data from the body."""
    attributes: dict[str, Any] = {}
    for header, value in delivery.headers.items():
        name = header.lower().removeprefix("ce-")
        if name != header.lower() and _ATTRIBUTE.match(name) and name not in _NOT_FROM_HEADERS:
            attributes[name] = _header_value(value)
    kind = attributes.get("type")
    if kind in EVENT_TYPES or (isinstance(kind, str) and kind.startswith("harbor.")):
        content_type = delivery.header("content-type")
        if content_type is None or not _is_json(content_type):
            raise MediaTypeError(
                f"binary-mode {kind} event with {content_type or 'no Content-Type'}: its data "
                "must be JSON; send Content-Type: application/json"
            )
        attributes["datacontenttype"] = content_type
        attributes["data"] = delivery.json("body (the event's data)")
    return attributes


def _header_value(value: str) -> str:
    """A ce-* header value: legacy surrounding quotes dropped, then percent-decoded once."""
    if len(value) > 1 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return unquote(value)


def _is_json(content_type: str) -> bool:
    """Whether a media type is JSON: `*/json` or `*/*+json`, parameters ignored."""
    media = content_type.split(";", 1)[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    return bool(kind and slash) and (subtype == "json" or subtype.endswith("+json"))
