"""What the webhook source tests share: fixture payloads, sending them, the events expected."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from promoter.sources.base import Adapter, Delivery, Normalized, SourceConfig, stable_id

__all__ = [
    "HARBOR_PUSHED",
    "INDEX",
    "WEBHOOKS",
    "adapter_event",
    "fixture",
    "fixture_json",
    "headers_of",
    "image_built",
    "only_event",
    "only_reason",
    "send",
]

WEBHOOKS = Path(__file__).parent / "data" / "webhooks"
INDEX = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
"""The multi-arch index the fixtures push as payments/api:1.4.2."""


def fixture(source: str, name: str) -> bytes:
    """A fixture body exactly as the source sends it."""
    return (WEBHOOKS / source / name).read_bytes()


def fixture_json(source: str, name: str) -> dict[str, Any]:
    """A fixture body that is a JSON object, parsed (a fresh copy each call)."""
    loaded = json.loads(fixture(source, name))
    assert isinstance(loaded, dict)
    return loaded


def headers_of(values: Mapping[str, str | None]) -> dict[str, str]:
    """The headers that have a value: None leaves a header out."""
    return {name: value for name, value in values.items() if value is not None}


def send(
    adapter: Adapter,
    body: object,
    media: str | None,
    *,
    now: datetime,
    config: SourceConfig | None = None,
    headers: Mapping[str, str] | None = None,
) -> Normalized:
    """Deliver `body` to `adapter`: bytes as they are, anything else as JSON; no Content-Type
    header when `media` is None, and no secret unless `config` sets one."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = dict(headers or {})
    if media is not None:
        sent["Content-Type"] = media
    return adapter(Delivery.of(data, sent), config or SourceConfig(), now)


def adapter_event(
    event_type: str, event_id: str, *, source: str, time: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A promoter CloudEvent as the adapters write it: structured, with JSON data."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_type,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }


def image_built(
    event_id: str,
    *,
    source: str,
    time: str,
    repository: str,
    tag: str = "1.4.2",
    digest: str = INDEX,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A `promoter.image.built` event as the adapters write it (no labels unless given)."""
    data = {"repository": repository, "tag": tag, "digest": digest, "labels": labels or {}}
    return adapter_event("promoter.image.built", event_id, source=source, time=time, data=data)


HARBOR_PUSHED = image_built(
    # The recipe: Default and CloudEvents forms of one push, and redeliveries, share it.
    stable_id("harbor", "payments/api", INDEX, "1.4.2", 1772619330),
    source="/hooks/harbor",
    time="2026-03-04T10:15:30Z",
    repository="harbor.example.com/payments/api",
)
"""The event of the Harbor push fixtures, in either format and at either endpoint."""


def only_event(result: Normalized) -> dict[str, Any]:
    """The one event of a result that ignored nothing."""
    assert result.ignored == ()
    assert len(result.events) == 1
    return result.events[0]


def only_reason(result: Normalized) -> str:
    """The one reason of a result without events."""
    assert result.events == ()
    assert len(result.ignored) == 1
    return result.ignored[0]
