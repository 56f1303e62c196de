"""GitHub deliveries for the github source tests: signed requests, payload builders, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial
from typing import Any

from webhooks import (
    adapter_event,
    fixture,
    fixture_json,
    headers_of,
    image_built,
)

from promoter.sources import github
from promoter.sources.base import (
    Delivery,
    Normalized,
    SourceConfig,
)
from promoter.sources.verify import github_signature

__all__ = [
    "CONFIG",
    "DELIVERY_ID",
    "FORM",
    "JSON",
    "LABELS",
    "MERGED",
    "NOW",
    "PR_BODY",
    "SECRET",
    "TRAILERS",
    "closed",
    "closed_event",
    "delivery",
    "encode",
    "image_event",
    "load",
    "pr_event",
    "raw",
    "review",
    "review_event",
    "review_with",
    "run",
]

SECRET = "s3cr3t"
CONFIG = SourceConfig(secret=SECRET)
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
LABELS = {
    "org.opencontainers.image.source": "https://github.com/acme/payments",
    "org.opencontainers.image.revision": "6de813bb999760c81f96f3cf5dbdcd51cead172f",
    "org.opencontainers.image.version": "1.4.2",
    "org.opencontainers.image.created": "2026-03-04T10:14:02Z",
}
TRAILERS = "Promoter-Pipeline: payments\nPromoter-Environment: prod\nPromoter-Bundle: 3c9f0e21b7aa"
PR_BODY = f"Promote payments to prod.\n\n| artifact | version |\n|---|---|\n\n{TRAILERS}\n"


raw = partial(fixture, "github")
load = partial(fixture_json, "github")


def encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def delivery(
    body: bytes,
    event: str | None,
    *,
    delivery_id: str | None = DELIVERY_ID,
    content_type: str | None = JSON,
    signature: str | None = None,
    secret: str | None = SECRET,
) -> Delivery:
    if signature is None and secret is not None:
        signature = github_signature(secret, body)
    headers = {
        "User-Agent": "GitHub-Hookshot/a1b2c3d",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "Content-Type": content_type,
        "X-Hub-Signature-256": signature,
    }
    return Delivery.of(body, headers_of(headers))


def run(body: bytes, event: str | None, config: SourceConfig = CONFIG, **kwargs: Any) -> Normalized:
    return github.normalize(delivery(body, event, **kwargs), config, NOW)


def image_event(**data: Any) -> dict[str, Any]:
    image = {"repository": "ghcr.io/acme/api", "labels": LABELS} | data
    return image_built(DELIVERY_ID, source="/hooks/github", time="2026-03-04T10:15:31Z", **image)


def review_event(**data: Any) -> dict[str, Any]:
    review = {
        "pipeline": "payments",
        "environment": "prod",
        "reviewer": "bob",
        "teams": [],
        "state": "approved",
        "pr": 42,
        "bundle": "3c9f0e21b7aa",
    }
    return pr_event("promoter.pr.reviewed", "2026-03-04T11:02:11Z", review | data)


def closed_event(data: dict[str, Any]) -> dict[str, Any]:
    return pr_event("promoter.pr.closed", "2026-03-04T11:05:40Z", data)


def pr_event(event_type: str, time: str, data: dict[str, Any]) -> dict[str, Any]:
    return adapter_event(event_type, DELIVERY_ID, source="/hooks/github", time=time, data=data)


def review(**changes: Any) -> dict[str, Any]:
    payload = load("pull_request_review-submitted-promoter.json")
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = payload
        for key in parents:
            target = target[key]
        target[last] = value
    return payload


def review_with(path: str, value: object) -> bytes:
    """A promoter review payload with one field (`a__b` = a.b) changed, encoded."""
    return encode(review(**{path: value}))


def closed(**changes: Any) -> dict[str, Any]:
    payload = load("pull_request-closed-promoter.json")
    payload["pull_request"].update(changes)
    return payload


MERGED = {
    "pipeline": "payments",
    "environment": "prod",
    "bundle": "3c9f0e21b7aa",
    "merged": True,
    "pr": 42,
    "sha": "8d0ee5ed10b141d4f05aab13aaa2745a22ea9fc1",
    "by": "bob",
}
