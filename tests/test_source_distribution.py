"""Distribution notifications: tagged manifest pushes are image events; the rest says why not."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st
from webhooks import INDEX, fixture, fixture_json, image_built, send

from promoter.sources import docker_distribution
from promoter.sources.base import (
    MalformedError,
    MediaTypeError,
    Normalized,
    SourceConfig,
    stable_id,
)

ENVELOPE = "application/vnd.docker.distribution.events.v2+json"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
AMD64 = "sha256:5861314d7fccb39c2192173240eab44fa35ca66426201ca2acd0630a6258dd51"
MODELKIT = "sha256:98f3ae1ef67113d8140d4f6cb8d2830070e21ea48f091be519659846c771a374"
TAGGED_INDEX = image_built(
    "a49071e5-3593-4185-9c3c-48b82d09edae",
    source="/hooks/docker-distribution",
    time="2026-03-04T10:15:30.112093Z",
    repository="registry.example.com/payments/api",
)


raw = partial(fixture, "docker-distribution")
envelope = partial(fixture_json, "docker-distribution")


def run(
    body: bytes | dict[str, Any] | list[Any],
    config: SourceConfig | None = None,
    media: str | None = ENVELOPE,
    **headers: str,
) -> Normalized:
    return send(docker_distribution.normalize, body, media, now=NOW, config=config, headers=headers)


def test_source_name() -> None:
    assert docker_distribution.SOURCE == "/hooks/docker-distribution"


def test_fixtures_are_pretty_printed_like_the_registry_sends_them() -> None:
    assert raw("push-index-tagged.json").startswith(b'{\n   "events": [\n      {\n         "id"')


def test_tagged_index_push_is_an_image_event() -> None:
    assert run(raw("push-index-tagged.json")) == Normalized(events=(TAGGED_INDEX,))


def test_media_type_parameters_and_plain_json_are_accepted() -> None:
    body = raw("push-index-tagged.json")
    assert run(body, media=f"{ENVELOPE}; charset=utf-8").events == (TAGGED_INDEX,)
    assert run(body, media="application/json").events == (TAGGED_INDEX,)


def test_untagged_platform_manifest_is_ignored_as_a_push_by_digest() -> None:
    result = run(raw("push-manifest-untagged.json"))
    assert result.events == ()
    assert result.ignored == (
        (
            f"events[0]: push of payments/api@{AMD64} ignored: pushed by digest without a tag, "
            "e.g. one platform of a multi-arch index"
        ),
    )


def test_blob_push_is_ignored_as_not_a_manifest() -> None:
    result = run(raw("push-blob.json"))
    assert result.events == ()
    (reason,) = result.ignored
    assert reason.startswith("events[0]: push of payments/api@sha256:3b9e")
    assert reason.endswith("application/octet-stream is not an image manifest (a blob push)")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("pull.json", [f"events[0]: pull of payments/api:1.4.2@{INDEX} ignored"]),
        ("mount.json", ["events[0]: mount of payments/worker@sha256:3b9e"]),
        (
            "delete.json",
            [
                f"events[0]: delete of payments/api@{AMD64} ignored",
                "events[1]: delete of payments/api:1.4.1 ignored",
                "events[2]: delete of payments/old-api ignored",
            ],
        ),
    ],
)
def test_pulls_mounts_and_deletes_are_ignored(fixture: str, expected: list[str]) -> None:
    result = run(raw(fixture))
    assert result.events == ()
    assert len(result.ignored) == len(expected)
    for reason, start in zip(result.ignored, expected, strict=True):
        assert reason.startswith(start)
        assert reason.endswith("only pushes announce new images")


def test_multi_event_envelope_yields_only_the_tagged_index() -> None:
    result = run(raw("push-multi-arch-mixed.json"))
    assert result.events == (TAGGED_INDEX,)
    assert [reason.split(" ignored")[0] for reason in result.ignored] == [
        (
            "events[0]: push of payments/api@sha256:"
            "3b9e3e5a2d1f4c6e8a7b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f"
        ),
        f"events[1]: push of payments/api@{AMD64}",
        f"events[3]: pull of payments/api:1.4.2@{INDEX}",
    ]


def test_modelkit_push_is_an_image_event_and_nanoseconds_are_truncated() -> None:
    assert run(raw("push-modelkit.json")).events == (
        image_built(
            "4cb4039d-4c9e-4271-90e2-68ab35eabdc0",
            source="/hooks/docker-distribution",
            time="2026-03-04T12:30:00Z",
            repository="registry.example.com/ml/fraud-detector",
            tag="v7",
            digest=MODELKIT,
        ),
    )


def test_docker_v2_manifest_with_offset_timestamp_and_port_in_url() -> None:
    (event,) = run(raw("push-docker-v2-offset.json")).events
    assert event["time"] == "2016-03-09T22:44:26.402973Z"
    assert event["id"] == "asdf-asdf-asdf-asdf-0"
    assert event["data"] == {
        "repository": "example.com:5000/library/test",
        "tag": "latest",
        "digest": "sha256:" + "0123456789abcdef" * 4,
        "labels": {},
    }


@pytest.mark.parametrize(
    ("registry", "host"),
    [
        ("mirror.internal:5000", "mirror.internal:5000"),
        ("https://mirror.internal/", "mirror.internal"),
    ],
)
def test_configured_registry_wins_over_the_url(registry: str, host: str) -> None:
    (event,) = run(raw("push-index-tagged.json"), SourceConfig(registry=registry)).events
    assert event["data"]["repository"] == f"{host}/payments/api"


def test_request_host_is_the_fallback_when_the_url_is_missing() -> None:
    body = envelope("push-docker-v2-offset.json")
    del body["events"][0]["target"]["url"]
    (event,) = run(body).events
    assert event["data"]["repository"] == "registrycluster.local/library/test"


def test_no_host_at_all_asks_for_the_registry_setting() -> None:
    body = envelope("push-index-tagged.json")
    del body["events"][0]["target"]["url"]
    del body["events"][0]["request"]["host"]
    with pytest.raises(MalformedError, match=r"^events\[0\]\.target\.url and request\.host .*"
                       r"set the source's `registry` setting"):  # fmt: skip
        run(body)


def test_missing_event_id_falls_back_to_a_stable_id() -> None:
    body = envelope("push-index-tagged.json")
    del body["events"][0]["id"]
    first = run(body).events
    assert first[0]["id"] == stable_id(
        "docker-distribution",
        "registry.example.com/payments/api",
        INDEX,
        "1.4.2",
        "2026-03-04T10:15:30.112093311Z",
    )
    assert run(body).events == first


def test_empty_events_list_is_ignored() -> None:
    assert run({"events": []}) == Normalized(
        ignored=("envelope ignored: its events list is empty",)
    )


def test_empty_tag_counts_as_no_tag() -> None:
    body = envelope("push-index-tagged.json")
    body["events"][0]["target"]["tag"] = ""
    result = run(body)
    assert result.events == ()
    assert "pushed by digest without a tag" in result.ignored[0]


@pytest.mark.parametrize("media", ["text/plain", "application/cloudevents+json", None])
def test_other_content_types_are_415(media: str | None) -> None:
    shown = re.escape(media or "no Content-Type")
    wanted = rf"^{shown} is not accepted here; send {re.escape(ENVELOPE)} or application/json$"
    with pytest.raises(MediaTypeError, match=wanted):
        run(raw("push-index-tagged.json"), media=media)


def _push(target: Any, **event: Any) -> dict[str, Any]:
    base = envelope("push-index-tagged.json")["events"][0]
    return {"events": [{**base, "target": target, **event}]}


TARGET = envelope("push-index-tagged.json")["events"][0]["target"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", r"^body is not valid JSON: "),
        (b'{"events": "\xff"}', r"^body is not UTF-8 text"),
        (b"[" * 100_000, r"^body (JSON is nested too deeply|is not valid JSON)"),
        ([], r"^body must be a JSON object, got list"),
        (None, r"^body must be a JSON object, got null"),
        (3, r"^body must be a JSON object, got int"),
        ({}, r"^events is missing"),
        ({"events": {}}, r"^events must be list, got dict"),
        ({"events": [1]}, r"^events\[0\] must be a JSON object, got int"),
        ({"events": [None]}, r"^events\[0\] must be a JSON object, got null"),
        ({"events": [{}]}, r"^events\[0\]\.action is missing or empty"),
        ({"events": [{"action": 7}]}, r"^events\[0\]\.action must be str, got int"),
        (_push([]), r"^events\[0\]\.target must be a JSON object, got list"),
        (_push(None), r"^events\[0\]\.target must be a JSON object, got null"),
        (_push({**TARGET, "tag": 1}), r"^events\[0\]\.target\.tag must be str, got int"),
        (_push({**TARGET, "digest": None}), r"^events\[0\]\.target\.digest is missing"),
        (_push({**TARGET, "repository": ""}), r"^events\[0\]\.target\.repository is missing"),
        (_push(TARGET, timestamp=None), r"^events\[0\]\.timestamp is missing"),
        (_push(TARGET, timestamp="yesterday"), r"^events\[0\]\.timestamp 'yesterday' is not"),
        (_push(TARGET, timestamp="2026-03-04T10:15:30"), r"timestamp .* has no time zone"),
        (_push(TARGET, id=5), r"^events\[0\]\.id must be str, got int"),
        (_push(TARGET, request=[]), None),  # the url names the host: request is not needed
        (
            _push({**TARGET, "digest": "sha256:xyz"}),
            r"^events\[0\]\.target does not describe an image: .*data\.digest",
        ),
    ],
)
def test_malformed_bodies_are_400_with_the_path(body: Any, message: str | None) -> None:
    if message is None:
        assert run(body).events
        return
    with pytest.raises(MalformedError, match=message) as caught:
        run(body)
    assert caught.value.status == 400


def test_second_event_is_named_by_its_index() -> None:
    body = envelope("push-multi-arch-mixed.json")
    body["events"][2]["target"]["digest"] = 42
    with pytest.raises(MalformedError, match=r"^events\[2\]\.target\.digest must be str"):
        run(body)


@given(st.data())
def test_mangled_envelopes_are_events_ignores_or_rejections(data: st.DataObject) -> None:
    body = envelope("push-multi-arch-mixed.json")
    mangled = replaced(body, data.draw(st.sampled_from(paths(body))), data.draw(json_values))
    result = outcome(lambda: run(mangled))
    check_outcome(result, {400})
    if isinstance(result, Normalized):
        assert all(event["type"] == "promoter.image.built" for event in result.events)
