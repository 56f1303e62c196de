"""The shared secret (`Authorization`, bare or as a bearer token) guards the sources that use it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from webhooks import fixture, send

from promoter.sources import alertmanager, argocd, cloudevents, docker_distribution, harbor
from promoter.sources.base import Adapter, Normalized, SignatureError, SourceConfig

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SECRET = "webhook-s3cret"
CONFIG = SourceConfig(secret=SECRET)
# Each source: its adapter, a delivery that stands for an event, and that delivery's media type.
SOURCES: dict[str, tuple[Adapter, bytes, str]] = {
    "cloudevents": (
        cloudevents.normalize,
        fixture("cloudevents", "image-built.json"),
        "application/cloudevents+json",
    ),
    "docker-distribution": (
        docker_distribution.normalize,
        fixture("docker-distribution", "push-index-tagged.json"),
        docker_distribution.ENVELOPE,
    ),
    "harbor": (harbor.normalize, fixture("harbor", "push-artifact.json"), "application/json"),
    "alertmanager": (
        alertmanager.normalize,
        fixture("alertmanager", "firing.json"),
        "application/json",
    ),
    "argocd": (argocd.normalize, fixture("argocd", "healthy-synced.json"), "application/json"),
}


def deliver(
    source: str,
    config: SourceConfig,
    authorization: str | None,
    body: bytes | None = None,
    media: str | None = None,
) -> Normalized:
    """The source's event delivery (or `body` as `media`), with `authorization` if not None."""
    adapter, event_body, event_media = SOURCES[source]
    headers = {} if authorization is None else {"Authorization": authorization}
    sent = event_body if body is None else body
    return send(adapter, sent, media or event_media, now=NOW, config=config, headers=headers)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("authorization", [f"Bearer {SECRET}", f"bearer  {SECRET}", SECRET])
def test_the_secret_is_taken_as_a_bearer_token_or_bare(source: str, authorization: str) -> None:
    unguarded = deliver(source, SourceConfig(), None)
    assert unguarded.events
    assert deliver(source, CONFIG, authorization) == unguarded


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, r"^Authorization header is missing; send 'Bearer <secret>'$"),
        ("", r"^Authorization header is missing"),
        ("Bearer wrong", r"^Authorization does not carry this source's secret$"),
        (f"Basic {SECRET}", r"^Authorization does not carry this source's secret$"),
        (f"Token {SECRET}", r"^Authorization does not carry this source's secret$"),
        (f"Bearer {SECRET}x", r"^Authorization does not carry this source's secret$"),
        (SECRET.upper(), r"^Authorization does not carry this source's secret$"),
    ],
)
def test_a_wrong_or_missing_secret_is_401(
    source: str, authorization: str | None, message: str
) -> None:
    with pytest.raises(SignatureError, match=message) as caught:
        deliver(source, CONFIG, authorization)
    assert caught.value.status == 401


@pytest.mark.parametrize("source", SOURCES)
def test_the_secret_is_checked_before_the_content_type_and_the_body(source: str) -> None:
    with pytest.raises(SignatureError):
        deliver(source, CONFIG, "Bearer wrong", b"\xff not even json", "text/plain")
