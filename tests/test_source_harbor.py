"""Harbor webhooks, both formats: tagged pushes are image events with one id per push."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st
from webhooks import HARBOR_PUSHED, INDEX, fixture, fixture_json, send

from promoter.sources import harbor
from promoter.sources.base import (
    MalformedError,
    MediaTypeError,
    Normalized,
    SourceConfig,
    stable_id,
)

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
JSON = "application/json"
CE = "application/cloudevents+json"
ALPINE = "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4"


raw = partial(fixture, "harbor")
loaded = partial(fixture_json, "harbor")


def run(
    body: bytes | dict[str, Any] | list[Any] | None,
    media: str | None = JSON,
    config: SourceConfig | None = None,
    **headers: str,
) -> Normalized:
    return send(harbor.normalize, body, media, now=NOW, config=config, headers=headers)


def test_source_name() -> None:
    assert harbor.SOURCE == "/hooks/harbor"


def test_default_format_tagged_push_is_an_image_event() -> None:
    assert run(raw("push-artifact.json")) == Normalized(events=(HARBOR_PUSHED,))


def test_charset_parameter_is_fine() -> None:
    assert run(raw("push-artifact.json"), media="application/json; charset=UTF-8").events == (
        HARBOR_PUSHED,
    )


def test_cloudevents_format_is_the_same_event_with_the_same_id() -> None:
    assert run(raw("push-artifact-cloudevents.json"), media=CE) == Normalized(
        events=(HARBOR_PUSHED,)
    )


def test_from_cloudevent_directly() -> None:
    event = loaded("push-artifact-cloudevents.json")
    assert harbor.from_cloudevent(event, SourceConfig(), NOW).events == (HARBOR_PUSHED,)


def test_redelivery_gives_the_same_event() -> None:
    assert run(raw("push-artifact.json")) == run(raw("push-artifact.json"))


def test_digest_only_push_is_ignored_as_untagged() -> None:
    assert run(raw("push-artifact-digest-only.json")) == Normalized(
        ignored=(
            (
                f"Harbor push of harbor/alpine@{ALPINE} ignored: pushed without a tag (Harbor then "
                "puts the digest in `tag`); only tagged pushes are promoted"
            ),
        )
    )


@pytest.mark.parametrize(
    "tag", [None, "", "sha512:" + "ab" * 64, "sha256:" + "0" * 64, "blake3:" + "f" * 32]
)
def test_missing_or_digest_tags_are_ignored(tag: str | None) -> None:
    body = loaded("push-artifact.json")
    body["event_data"]["resources"][0]["tag"] = tag
    result = run(body)
    assert result.events == ()
    assert re.fullmatch(r"Harbor push of payments/api@sha256:1bc0\w+ ignored: pushed without .*",
                        result.ignored[0])  # fmt: skip


def test_each_resource_is_judged_on_its_own() -> None:
    body = loaded("push-artifact.json")
    resources = body["event_data"]["resources"]
    resources.append({"digest": ALPINE, "tag": ALPINE, "resource_url": "x/payments/api@" + ALPINE})
    resources.append({**resources[0], "tag": "latest"})
    result = run(body)
    latest = {
        **HARBOR_PUSHED,
        "id": stable_id("harbor", "payments/api", INDEX, "latest", 1772619330),
        "data": {**HARBOR_PUSHED["data"], "tag": "latest"},
    }
    assert result.events == (HARBOR_PUSHED, latest)
    assert len(result.ignored) == 1
    assert result.ignored[0].startswith(f"Harbor push of payments/api@{ALPINE} ignored")


def test_empty_resources_are_ignored() -> None:
    body = loaded("push-artifact.json")
    body["event_data"]["resources"] = []
    assert run(body) == Normalized(
        ignored=("Harbor push to payments/api ignored: event_data.resources is empty",)
    )


@pytest.mark.parametrize(
    ("fixture", "media", "reason"),
    [
        (
            "scanning-completed.json",
            JSON,
            (
                "Harbor SCANNING_COMPLETED event at occur_at 1772619375 ignored; "
                "only PUSH_ARTIFACT announces a new image"
            ),
        ),
        (
            "pull-artifact.json",
            JSON,
            (
                "Harbor PULL_ARTIFACT event at occur_at 1772619500 ignored; "
                "only PUSH_ARTIFACT announces a new image"
            ),
        ),
        (
            "scanning-completed-cloudevents.json",
            CE,
            (
                "Harbor event 0f9a3b55-5f5e-4c47-a3d4-0f3c1a2b3c4d: type 'harbor.scan.completed' "
                "ignored; only harbor.artifact.pushed announces a new image"
            ),
        ),
    ],
)
def test_scans_and_pulls_are_ignored(fixture: str, media: str, reason: str) -> None:
    assert run(raw(fixture), media=media) == Normalized(ignored=(reason,))


@pytest.mark.parametrize(
    ("registry", "repository"),
    [
        ("harbor.internal:8443", "harbor.internal:8443/payments/api"),
        ("https://harbor.internal/", "harbor.internal/payments/api"),
    ],
)
def test_configured_registry_replaces_the_resource_url_host(registry: str, repository: str) -> None:
    config = SourceConfig(registry=registry)
    for name, media in (("push-artifact.json", JSON), ("push-artifact-cloudevents.json", CE)):
        (event,) = run(raw(name), media=media, config=config).events
        assert event["data"]["repository"] == repository
        assert event["id"] == HARBOR_PUSHED["id"]


def test_occur_at_is_utc_seconds() -> None:
    body = loaded("push-artifact.json")
    body["occur_at"] = 0
    (event,) = run(body).events
    assert event["time"] == "1970-01-01T00:00:00Z"
    assert event["id"] == stable_id("harbor", "payments/api", INDEX, "1.4.2", 0)


def test_cloudevents_time_with_offset_and_fraction_keeps_the_second_in_the_id() -> None:
    event = loaded("push-artifact-cloudevents.json")
    event["time"] = "2026-03-04T11:15:30.250+01:00"
    (built,) = harbor.from_cloudevent(event, SourceConfig(), NOW).events
    assert built["time"] == "2026-03-04T10:15:30.250000Z"
    assert built["id"] == HARBOR_PUSHED["id"]


@pytest.mark.parametrize(
    "media",
    [None, "text/plain", "application/cloudevents-batch+json", "application/x-www-form-urlencoded"],
)
def test_other_content_types_are_415(media: str | None) -> None:
    shown = re.escape(media or "no Content-Type")
    wanted = (
        rf"^{shown} is not accepted here; send application/json or application/cloudevents\+json$"
    )
    with pytest.raises(MediaTypeError, match=wanted) as caught:
        run(raw("push-artifact.json"), media=media)
    assert caught.value.status == 415


def _default(**changes: Any) -> dict[str, Any]:
    return {**loaded("push-artifact.json"), **changes}


def _resource(**changes: Any) -> dict[str, Any]:
    body = loaded("push-artifact.json")
    body["event_data"]["resources"][0].update(changes)
    return body


REPOSITORY = loaded("push-artifact.json")["event_data"]["repository"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"^body is not valid JSON"),
        ([], r"^body must be a JSON object \(a Harbor webhook payload\), got list"),
        (None, r"^body must be a JSON object .*got null"),
        (_default(type=None), r"^type is missing or empty"),
        (_default(type=["PUSH_ARTIFACT"]), r"^type must be str, got list"),
        (_default(occur_at="1772619330"), r"^occur_at must be int, got str"),
        (_default(occur_at=True), r"^occur_at must be int, got bool"),
        (_default(occur_at=10**20), r"^occur_at 100000000000000000000 is not a Unix time"),
        (_default(event_data=None), r"^event_data must be a JSON object, got null"),
        (_default(event_data={"resources": []}), r"^event_data\.repository must be a JSON object"),
        (
            _default(event_data={"repository": REPOSITORY}),
            r"^event_data\.resources is missing",
        ),
        (
            _default(event_data={"repository": REPOSITORY, "resources": "x"}),
            r"^event_data\.resources must be list, got str",
        ),
        (
            _default(event_data={"repository": REPOSITORY, "resources": [7]}),
            r"^event_data\.resources\[0\] must be a JSON object, got int",
        ),
        (
            _default(event_data={"repository": {}, "resources": []}),
            r"^event_data\.repository\.repo_full_name is missing or empty",
        ),
        (_resource(tag=3), r"^event_data\.resources\[0\]\.tag must be str, got int"),
        (_resource(digest=None), r"^event_data\.resources\[0\]\.digest is missing or empty"),
        (
            _resource(resource_url=None),
            (
                r"^event_data\.resources\[0\]\.resource_url None does not start with the registry "
                r"host; set the source's `registry` setting"
            ),
        ),
        (
            _resource(resource_url="api:1.4.2"),
            r"^event_data\.resources\[0\]\.resource_url 'api:1\.4\.2' does not start",
        ),
        (
            _resource(digest="md5:abc"),
            r"^event_data\.resources\[0\]: invalid promoter\.image\.built event: data\.digest",
        ),
    ],
)
def test_malformed_default_payloads_are_400_with_the_path(body: Any, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        run(body)
    assert caught.value.status == 400


def _ce(**changes: Any) -> dict[str, Any]:
    return {**loaded("push-artifact-cloudevents.json"), **changes}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_ce(specversion=1.0), r'^specversion must be the string "1\.0", got 1\.0'),
        (_ce(specversion="0.3"), r"^specversion .* got '0\.3'; Harbor's CloudEvents format"),
        (_ce(type=None), r"^type is missing or empty"),
        (_ce(time=None), r"^time is missing or empty"),
        (_ce(time="2026-03-04 10:15"), r"^time .* has no time zone"),
        (_ce(time="tomorrow"), r"^time 'tomorrow' is not an RFC 3339 timestamp"),
        (_ce(data="{}"), r"^data must be a JSON object, got str"),
        (
            _ce(data={"resources": [{"tag": "1.4.2"}], "repository": REPOSITORY}),
            r"^data\.resources\[0\]\.digest is missing or empty$",
        ),
    ],
)
def test_malformed_cloudevents_payloads_are_400(body: Any, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        run(body, media=CE)


def test_missing_tag_in_cloudevents_form_is_ignored_not_rejected() -> None:
    body = _ce(data={"resources": [{"digest": INDEX}], "repository": REPOSITORY})
    assert run(body, media=CE) == Normalized(
        ignored=(
            (
                f"Harbor push of payments/api@{INDEX} ignored: pushed without a tag (Harbor then "
                "puts the digest in `tag`); only tagged pushes are promoted"
            ),
        )
    )


def test_cloudevents_body_sent_as_plain_json_is_ignored_by_type() -> None:
    result = run(raw("push-artifact-cloudevents.json"), media=JSON)
    assert result == Normalized(
        ignored=(
            (
                "Harbor harbor.artifact.pushed event at occur_at None ignored; "
                "only PUSH_ARTIFACT announces a new image"
            ),
        )
    )


@given(
    st.data(),
    st.sampled_from([("push-artifact.json", JSON), ("push-artifact-cloudevents.json", CE)]),
)
def test_mangled_payloads_are_events_ignores_or_rejections(
    data: st.DataObject, case: tuple[str, str]
) -> None:
    name, media = case
    body = loaded(name)
    mangled = replaced(body, data.draw(st.sampled_from(paths(body))), data.draw(json_values))
    result = outcome(lambda: run(mangled, media=media))
    check_outcome(result, {400})
    if isinstance(result, Normalized):
        assert all(event["type"] == "promoter.image.built" for event in result.events)
