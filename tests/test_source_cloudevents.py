"""CloudEvents over HTTP: promoter events pass as sent, Harbor's are normalized, others not."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st
from webhooks import HARBOR_PUSHED, INDEX, WEBHOOKS, send

from promoter.sources import cloudevents, harbor
from promoter.sources.base import MalformedError, MediaTypeError, Normalized, SourceConfig

FIXTURES = WEBHOOKS / "cloudevents"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
JSON = "application/json"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
IMAGE: dict[str, Any] = {
    "specversion": "1.0",
    "id": "build-4711",
    "source": "https://ci.example.com/payments/api",
    "type": "promoter.image.built",
    "time": "2026-03-04T10:15:30.123000Z",
    "subject": "payments/api",
    "datacontenttype": "application/json; charset=utf-8",
    "data": {
        "repository": "registry.example.com/payments/api",
        "tag": "1.4.2",
        "digest": INDEX,
        "labels": {"residency": "eu,ch"},
    },
    "traceparent": TRACEPARENT,
    "partitionkey": "payments/api",
    "comexamplebuildnumber": 4711,
}
MODEL = {
    "specversion": "1.0",
    "id": "fraud-detector/7",
    "source": "mlflow://registry",
    "type": "promoter.model.registered",
    "time": "2026-03-04T12:30:00Z",
    "data": {
        "name": "fraud-detector",
        "version": "7",
        "uri": "models:/fraud-detector/7",
        "metrics": {"auc": 0.93},
        "labels": {},
    },
}
NOT_AN_OBJECT = "a CloudEvent must be a JSON object with specversion, id, source and type"
FOREIGN_REASON = (
    "event https://registry.example.com/projects/payments/4087dcdc-fc13-43cc-a923-f65ad1ec2a2a: "
    "type 'com.example.registry.artifact.pushed' is not a promoter event type"
)


def raw(name: str, folder: Path = FIXTURES) -> bytes:
    return (folder / name).read_bytes()


def loaded(name: str, folder: Path = FIXTURES) -> Any:
    return json.loads(raw(name, folder))


def run(
    body: Any,
    media: str | None = STRUCTURED,
    *,
    config: SourceConfig | None = None,
    headers: dict[str, str] | None = None,
) -> Normalized:
    sent = {name.replace("_", "-"): value for name, value in (headers or {}).items()}
    return send(cloudevents.normalize, body, media, now=NOW, config=config, headers=sent)


def image(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = loaded("image-built.json")
    event.update(changes)
    return event


def test_source_name() -> None:
    assert cloudevents.SOURCE == "/hooks/cloudevents"


def test_structured_promoter_event_keeps_id_source_time_and_extensions() -> None:
    assert run(raw("image-built.json")) == Normalized(events=(IMAGE,))


def test_structured_with_charset_parameter() -> None:
    assert run(raw("image-built.json"), "application/cloudevents+json; charset=UTF-8").events == (
        IMAGE,
    )


def test_foreign_type_is_ignored_with_its_source_and_id() -> None:
    assert run(raw("foreign-artifact-pushed.json")) == Normalized(ignored=(FOREIGN_REASON,))


def test_foreign_binary_data_is_ignored_without_decoding_it() -> None:
    assert run(raw("foreign-data-base64.json")) == Normalized(
        ignored=(
            (
                "event /mycontext/D234-1234-1234: type 'com.example.someevent' is not a promoter "
                "event type"
            ),
        )
    )


def test_batch_of_foreign_events_is_all_ignored() -> None:
    assert run(raw("batch-foreign.json"), BATCH) == Normalized(
        ignored=(
            "event /s/4/B234: type 'com.example.a' is not a promoter event type",
            "event /s/9/C234: type 'com.example.b' is not a promoter event type",
        )
    )


def test_empty_batch_is_valid_and_ignored() -> None:
    assert run(raw("batch-empty.json"), BATCH) == Normalized(
        ignored=("empty batch: the array held no events",)
    )


def test_mixed_batch_keeps_order_and_normalizes_harbor_events() -> None:
    assert run(raw("batch-mixed.json"), BATCH) == Normalized(
        events=(IMAGE, MODEL, HARBOR_PUSHED),
        ignored=(
            FOREIGN_REASON,
            (
                "Harbor event 0f9a3b55-5f5e-4c47-a3d4-0f3c1a2b3c4d: type 'harbor.scan.completed' "
                "ignored; only harbor.artifact.pushed announces a new image"
            ),
        ),
    )


def test_harbor_cloudevent_gives_the_same_event_as_harbors_own_endpoint() -> None:
    result = run(raw("push-artifact-cloudevents.json", WEBHOOKS / "harbor"))
    own = send(harbor.normalize, raw("push-artifact.json", WEBHOOKS / "harbor"), JSON, now=NOW)
    assert result == own == Normalized(events=(HARBOR_PUSHED,))


def test_harbor_events_use_the_configured_registry() -> None:
    config = SourceConfig(registry="harbor.internal")
    result = run(raw("push-artifact-cloudevents.json", WEBHOOKS / "harbor"), config=config)
    assert result.events[0]["data"]["repository"] == "harbor.internal/payments/api"


def test_one_invalid_promoter_event_rejects_the_whole_batch() -> None:
    bad = image(id="build-4712", data={"repository": "registry.example.com/payments/api"})
    body = [image(), loaded("foreign-artifact-pushed.json"), bad]
    with pytest.raises(
        MalformedError,
        match=r"^event 2: invalid promoter\.image\.built event: data\.digest: Field required$",
    ) as caught:
        run(body, BATCH)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, (r"^a application/cloudevents-batch\+json body must be a JSON array of events, got "
             r"dict; send a single event as application/cloudevents\+json$")),
        ([image(), 3], rf"^event 1: {NOT_AN_OBJECT}, got int$"),
        ([None], rf"^event 0: {NOT_AN_OBJECT}, got null$"),
        ([image(specversion="0.3")], r'^event 0: specversion must be the string "1\.0"'),
        ([{**loaded("push-artifact-cloudevents.json", WEBHOOKS / "harbor"), "time": "x"}],
         r"^event 0: time 'x' is not an RFC 3339 timestamp$"),
    ],
)  # fmt: skip
def test_malformed_batches_name_the_index(body: Any, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        run(body, BATCH)


def test_data_base64_with_json_content_type_is_decoded() -> None:
    assert run(raw("image-built-data-base64.json")).events == (
        {
            "specversion": "1.0",
            "id": "build-4712",
            "source": "/ci/payments",
            "type": "promoter.image.built",
            "time": "2026-03-04T10:15:31Z",
            "datacontenttype": "application/json",
            "data": {
                "repository": "registry.example.com/payments/api",
                "tag": "1.4.2",
                "digest": INDEX,
                "labels": {},
            },
        },
    )


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


DATA = _b64(json.dumps({"repository": "r.example/a", "digest": INDEX}).encode())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"datacontenttype": None},
         r"^data_base64 with datacontenttype None is not JSON; promoter events carry JSON"),
        ({"datacontenttype": "text/plain"}, r"datacontenttype 'text/plain' is not JSON"),
        ({"data_base64": "not base64!"},
         r"^data_base64 is not valid base64 \(RFC 4648\); or send the JSON as data$"),
        ({"data_base64": 12}, r"^data_base64 must be a base64 string, got int$"),
        ({"data_base64": _b64(b"<xml/>")}, r"^decoded data_base64 is not valid JSON"),
        ({"data": {"repository": "x"}}, r"^data and data_base64 are both set; send only one"),
    ],
)  # fmt: skip
def test_data_base64_problems_are_malformed(changes: dict[str, Any], message: str) -> None:
    body = {**loaded("image-built-data-base64.json"), "data_base64": DATA, **changes}
    with pytest.raises(MalformedError, match=message):
        run(body)


def test_null_attributes_are_absent() -> None:
    body = image(subject=None, time=None, traceparent=None, dataschema=None)
    (event,) = run(body).events
    expected = {k: v for k, v in IMAGE.items() if k not in {"subject", "time", "traceparent"}}
    assert event == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"specversion": 1.0}, (r'^specversion must be the string "1\.0", got 1\.0 \(float\); '
                               r"promoter speaks CloudEvents 1\.0$")),
        ({"specversion": "0.3"}, r"^specversion must be the string \"1\.0\", got '0\.3' \(str\)"),
        ({"specversion": "1.0.2"}, r"got '1\.0\.2'"),
        ({"specversion": None}, (r'^specversion is missing; a CloudEvent needs "specversion": '
                                r'"1\.0"$')),
        ({"id": None}, r"^id must be a non-empty string, got missing; every CloudEvent has one$"),
        ({"id": ""}, r"^id must be a non-empty string, got ''"),
        ({"source": 7}, r"^source must be a non-empty string, got 7"),
        ({"type": None}, r"^type must be a non-empty string, got missing"),
        ({"time": 1772619330}, (r"^invalid promoter\.image\.built event: time: Value error, time "
                               r"must be an RFC 3339 string")),
        ({"data": json.dumps({"repository": "r", "digest": INDEX})},
         r"^invalid promoter\.image\.built event: data: Input should be a valid dictionary"),
        ({"datacontenttype": "application/xml"}, r"^datacontenttype 'application/xml' is not JSON"),
        ({"data": None}, r"^invalid promoter\.image\.built event: data: Field required"),
    ],
)  # fmt: skip
def test_invalid_single_events_are_malformed(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        run(image(**changes))
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", r"^body is not valid JSON"),
        (
            b"[]",
            rf"^{NOT_AN_OBJECT}, got list$",
        ),
        (
            b"null",
            rf"^{NOT_AN_OBJECT}, got null$",
        ),
        (
            b'"1.0"',
            rf"^{NOT_AN_OBJECT}, got str$",
        ),
    ],
)
def test_structured_body_must_be_one_event_object(body: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        run(body)


BINARY_HEADERS = {
    "ce_specversion": "1.0",
    "ce_type": "promoter.image.built",
    "ce_source": "https%3A%2F%2Fci.example.com%2Fpayments%2Fapi",
    "ce_id": "build%204711",
    "ce_time": "2026-03-04T10:15:30Z",
    "ce_subject": '"payments/api"',
    "ce_comexamplenote": "caf%C3%A9%20%25%20%22ok%22",
    "ce_traceparent": TRACEPARENT,
    "ce_datacontenttype": "text/xml",
    "X_Request_Id": "ignored",
}


def test_binary_mode_reads_percent_encoded_headers_and_json_body() -> None:
    body = raw("binary-image-built.json")
    assert run(body, "application/json; charset=utf-8", headers=BINARY_HEADERS).events == (
        {
            "specversion": "1.0",
            "id": "build 4711",
            "source": "https://ci.example.com/payments/api",
            "type": "promoter.image.built",
            "time": "2026-03-04T10:15:30Z",
            "subject": "payments/api",
            "datacontenttype": "application/json; charset=utf-8",
            "data": {**IMAGE["data"], "labels": {}},
            "comexamplenote": 'café % "ok"',
            "traceparent": TRACEPARENT,
        },
    )


def test_binary_mode_decodes_percent_once_only() -> None:
    body = raw("binary-image-built.json")
    (event,) = run(body, "application/json", headers={**BINARY_HEADERS, "ce_id": "a%2541"}).events
    assert event["id"] == "a%41"


def test_binary_mode_accepts_structured_suffix_json_types() -> None:
    body = raw("binary-image-built.json")
    (event,) = run(body, "application/vnd.acme.build+json", headers=BINARY_HEADERS).events
    assert event["datacontenttype"] == "application/vnd.acme.build+json"


def test_binary_mode_harbor_event_is_normalized() -> None:
    harbor_event = loaded("push-artifact-cloudevents.json", WEBHOOKS / "harbor")
    headers = {f"ce_{name}": harbor_event[name] for name in ("id", "type", "source", "time")}
    headers["ce_specversion"] = "1.0"
    body = json.dumps(harbor_event["data"]).encode()
    assert run(body, "application/json", headers=headers).events == (HARBOR_PUSHED,)


def test_binary_mode_foreign_event_without_content_type_is_ignored() -> None:
    headers = {"ce_specversion": "1.0", "ce_type": "com.example.someevent",
               "ce_source": "/mycontext", "ce_id": "D234-1234-1234"}  # fmt: skip
    assert run(b'{ "xyz": 123 }', None, headers=headers) == Normalized(
        ignored=(
            (
                "event /mycontext/D234-1234-1234: type 'com.example.someevent' is not a promoter "
                "event type"
            ),
        )
    )


@pytest.mark.parametrize("media", [None, "text/plain", "application/xml", "application/jsonx"])
def test_binary_mode_promoter_event_needs_json_data(media: str | None) -> None:
    shown = re.escape(media or "no Content-Type")
    with pytest.raises(
        MediaTypeError,
        match=rf"^binary-mode promoter\.image\.built event with {shown}: its data must be JSON; "
        r"send Content-Type: application/json$",
    ) as caught:
        run(raw("binary-image-built.json"), media, headers=BINARY_HEADERS)
    assert caught.value.status == 415


def test_binary_mode_invalid_json_body_is_malformed() -> None:
    with pytest.raises(MalformedError, match=r"^body \(the event's data\) is not valid JSON"):
        run(b"{", "application/json", headers=BINARY_HEADERS)


def test_binary_mode_wrong_specversion_is_malformed() -> None:
    with pytest.raises(MalformedError, match=r"got '0\.3'"):
        run(raw("binary-image-built.json"), "application/json",
            headers={**BINARY_HEADERS, "ce_specversion": "0.3"})  # fmt: skip


def test_structured_content_type_wins_over_ce_headers() -> None:
    assert run(raw("image-built.json"), STRUCTURED, headers=BINARY_HEADERS).events == (IMAGE,)


@pytest.mark.parametrize("media", [None, "application/json", "text/plain"])
def test_no_cloudevents_mode_is_415(media: str | None) -> None:
    shown = re.escape(media or "no Content-Type")
    with pytest.raises(
        MediaTypeError,
        match=rf"^{shown} without a ce-specversion header is no CloudEvents request; send "
        r"application/cloudevents\+json, application/cloudevents-batch\+json, or binary mode "
        r"with ce-\* headers$",
    ) as caught:
        run(raw("image-built.json"), media)
    assert caught.value.status == 415


@given(st.data())
def test_mangled_batches_are_events_ignores_or_rejections(data: st.DataObject) -> None:
    body = loaded("batch-mixed.json")
    mangled = replaced(body, data.draw(st.sampled_from(paths(body))), data.draw(json_values))
    result = outcome(lambda: run(mangled, BATCH))
    check_outcome(result, {400})
    if isinstance(result, Normalized):
        assert all(event["type"].startswith("promoter.") for event in result.events)


@given(st.dictionaries(st.sampled_from(list(BINARY_HEADERS)), st.text(max_size=20)), st.binary())
def test_arbitrary_binary_mode_requests_are_events_ignores_or_rejections(
    headers: dict[str, str], body: bytes
) -> None:
    result = outcome(
        lambda: run(body, "application/json", headers={**headers, "ce_specversion": "1.0"})
    )
    check_outcome(result, {400})
    if isinstance(result, Normalized):
        assert all(event["type"].startswith("promoter.") for event in result.events)
