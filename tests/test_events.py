"""CloudEvents decoding: valid events parse; anything else is an EventError with a clear reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.core.events import (
    EVENT_TYPES,
    HEALTH_SIGNAL,
    IMAGE_BUILT,
    MODEL_REGISTERED,
    HealthEvent,
    ImageEvent,
    ModelEvent,
    content_id,
    parse_event,
    subject_for,
)
from promoter.errors import EventError

DIGEST = "sha256:" + "0123456789abcdef" * 4


def image_event() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "build-42",
        "source": "https://ci.example/acme/api",
        "type": IMAGE_BUILT,
        "time": "2026-03-02T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"repository": "ghcr.io/acme/api", "tag": "1.2.3", "digest": DIGEST},
    }


def model_event() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "reg-7",
        "source": "mlflow://registry",
        "type": MODEL_REGISTERED,
        "data": {
            "name": "checkout-ranker",
            "version": "7",
            "uri": "models:/checkout-ranker/7",
            "metrics": {"auc": 0.91},
            "labels": {"residency": "eu,us"},
        },
    }


def health_event() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "h-1",
        "source": "argocd://prod",
        "type": HEALTH_SIGNAL,
        "time": "2026-03-02T11:30:00+01:00",
        "data": {
            "pipeline": "checkout",
            "environment": "prod-eu",
            "status": "degraded",
            "versions": {"api": "1.2.3"},
            "reason": "5xx rate 4%",
        },
    }


def test_image_built_dict_parses_to_image_event() -> None:
    event = parse_event(image_event())
    assert isinstance(event, ImageEvent)
    assert (event.id, event.source) == ("build-42", "https://ci.example/acme/api")
    assert (event.data.repository, event.data.tag, event.data.digest) == (
        "ghcr.io/acme/api",
        "1.2.3",
        DIGEST,
    )
    assert event.data.labels == {}
    assert event.time == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_model_registered_parses_from_bytes() -> None:
    event = parse_event(json.dumps(model_event()).encode())
    assert isinstance(event, ModelEvent)
    assert (event.data.name, event.data.version) == ("checkout-ranker", "7")
    assert event.data.metrics == {"auc": 0.91}
    assert event.data.labels == {"residency": "eu,us"}
    assert event.time is None


def test_health_signal_parses_from_str_with_offset_time() -> None:
    event = parse_event(json.dumps(health_event()))
    assert isinstance(event, HealthEvent)
    assert event.data.status == "degraded"
    assert event.data.versions == {"api": "1.2.3"}
    assert event.time == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


def test_cloudevents_json_content_type_is_accepted() -> None:
    raw = image_event() | {"datacontenttype": "application/cloudevents+json; charset=utf-8"}
    assert isinstance(parse_event(raw), ImageEvent)


def test_unknown_data_fields_are_ignored() -> None:
    raw = image_event()
    raw["data"]["builder"] = "buildkit"
    event = parse_event(raw)
    assert isinstance(event, ImageEvent)
    assert "builder" not in event.data.model_dump()
    assert event.data.digest == DIGEST


def test_cloudevent_extension_attributes_are_kept() -> None:
    raw = image_event() | {"traceparent": "00-abc-def-01", "partitionkey": "api"}
    event = parse_event(raw)
    assert event.model_extra == {"traceparent": "00-abc-def-01", "partitionkey": "api"}
    assert event.model_dump()["traceparent"] == "00-abc-def-01"


Change = Callable[[dict[str, Any]], None]

# id: (how to break a valid image event, fragment of the EventError message)
BROKEN: dict[str, tuple[Change, str]] = {
    "unknown-type": (
        lambda e: e.update(type="promoter.image.deleted"),
        "unsupported event type 'promoter.image.deleted'; expected one of promoter.health.signal",
    ),
    "missing-type": (lambda e: e.pop("type"), "unsupported event type None"),
    "specversion-0.3": (
        lambda e: e.update(specversion="0.3"),
        "specversion: Input should be '1.0'",
    ),
    "specversion-number": (
        lambda e: e.update(specversion=1.0),
        "specversion: Input should be '1.0'",
    ),
    "missing-id": (lambda e: e.pop("id"), "id: Field required"),
    "empty-id": (lambda e: e.update(id=""), "id: String should have at least 1 character"),
    "missing-source": (lambda e: e.pop("source"), "source: Field required"),
    "bad-digest": (lambda e: e["data"].update(digest="sha256:xyz"), "data.digest: String should"),
    "missing-data": (lambda e: e.pop("data"), "data: Field required"),
    "naive-time": (
        lambda e: e.update(time="2026-03-02T10:00:00"),
        "time: Input should have timezone info",
    ),
    "not-a-time": (lambda e: e.update(time="yesterday"), "time: Input should be a valid datetime"),
    "non-json-content-type": (
        lambda e: e.update(datacontenttype="text/plain"),
        "datacontenttype 'text/plain' is not JSON",
    ),
}


@pytest.mark.parametrize(("change", "fragment"), BROKEN.values(), ids=BROKEN)
def test_broken_image_event_is_an_event_error(change: Change, fragment: str) -> None:
    raw = image_event()
    change(raw)
    with pytest.raises(EventError) as excinfo:
        parse_event(raw)
    assert fragment in str(excinfo.value)
    assert excinfo.value.retryable is False


def test_schema_errors_name_the_event_type() -> None:
    with pytest.raises(EventError, match=r"^invalid promoter.image.built event: id: Field"):
        parse_event({k: v for k, v in image_event().items() if k != "id"})


@pytest.mark.parametrize(
    "raw",
    [b"not json", "{'single': 'quotes'}", "", b"\x80\x81", '{"type": "promoter.image.built"'],
    ids=["bytes", "python-repr", "empty", "invalid-utf8", "truncated"],
)
def test_not_json_is_an_event_error(raw: bytes | str) -> None:
    with pytest.raises(EventError, match=r"^event is not valid JSON"):
        parse_event(raw)


@pytest.mark.parametrize("raw", ["[1, 2]", b'"text"', "null", "42"])
def test_json_that_is_not_an_object_is_an_event_error(raw: bytes | str) -> None:
    with pytest.raises(EventError, match=r"must be a JSON object \(a structured-mode CloudEvent\)"):
        parse_event(raw)


def test_bad_health_status_is_an_event_error() -> None:
    raw = health_event()
    raw["data"]["status"] = "sick"
    with pytest.raises(EventError, match=r"data.status: Input should be 'healthy', 'progressing'"):
        parse_event(raw)


def test_non_numeric_model_metric_is_an_event_error() -> None:
    raw = model_event()
    raw["data"]["metrics"] = {"auc": "high"}
    with pytest.raises(EventError, match=r"data.metrics.auc"):
        parse_event(raw)


@pytest.mark.parametrize(
    ("event_type", "subject"),
    [
        (IMAGE_BUILT, "promoter.events.image.built"),
        (MODEL_REGISTERED, "promoter.events.model.registered"),
        (HEALTH_SIGNAL, "promoter.events.health.signal"),
    ],
)
def test_subject_for_strips_the_promoter_prefix(event_type: str, subject: str) -> None:
    assert subject_for(event_type) == subject


def test_content_id_is_deterministic_and_ignores_key_order() -> None:
    when = datetime(2026, 3, 2, 10, tzinfo=UTC)
    first = content_id(IMAGE_BUILT, {"repository": "r", "digest": DIGEST}, when)
    again = content_id(IMAGE_BUILT, {"digest": DIGEST, "repository": "r"}, when)
    assert first == again
    assert len(first) == 32
    assert int(first, 16) >= 0


def test_content_id_differs_when_facts_differ() -> None:
    when = datetime(2026, 3, 2, 10, tzinfo=UTC)
    base = content_id(IMAGE_BUILT, {"tag": "1.2.3"}, when)
    assert content_id(IMAGE_BUILT, {"tag": "1.2.4"}, when) != base
    assert content_id(MODEL_REGISTERED, {"tag": "1.2.3"}, when) != base
    assert content_id(IMAGE_BUILT, {"tag": "1.2.3"}, datetime(2026, 3, 2, 11, tzinfo=UTC)) != base
    assert content_id(IMAGE_BUILT, {"tag": "1.2.3"}) != base


# --- properties: whatever arrives, the only failure is EventError ---

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
ENVELOPE = [
    "specversion",
    "id",
    "source",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "data",
]
DATA_FIELDS = [
    "repository",
    "tag",
    "digest",
    "labels",
    "name",
    "version",
    "uri",
    "metrics",
    "pipeline",
    "environment",
    "status",
    "versions",
    "reason",
]
typed_events = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(EVENT_TYPES))},
    optional=dict.fromkeys(ENVELOPE, json_values),
)
typed_events_with_data = st.builds(
    lambda event, data: event | {"data": data},
    typed_events,
    st.fixed_dictionaries({}, optional=dict.fromkeys(DATA_FIELDS, json_values)),
)


def _parse_or_event_error(raw: Any) -> None:
    """Parse `raw`; an EventError is fine if it gives a reason, any other exception fails."""
    try:
        parse_event(raw)
    except EventError as exc:
        reason = str(exc)
    else:
        reason = "parsed"
    assert reason


@given(json_values)
def test_arbitrary_json_values_parse_or_raise_event_error(value: Any) -> None:
    _parse_or_event_error(value)
    _parse_or_event_error(json.dumps(value))
    _parse_or_event_error(json.dumps(value).encode())


@given(typed_events | typed_events_with_data)
def test_known_type_with_random_fields_parses_or_raises_event_error(raw: dict[str, Any]) -> None:
    _parse_or_event_error(raw)
    _parse_or_event_error(json.dumps(raw))


@given(st.sampled_from(["image", "model", "health"]), st.sampled_from(ENVELOPE), json_values)
def test_valid_event_with_one_field_replaced_parses_or_raises_event_error(
    which: str, key: str, value: Any
) -> None:
    raw = {"image": image_event, "model": model_event, "health": health_event}[which]()
    raw[key] = value
    _parse_or_event_error(raw)


# --- regressions: defects found by these tests and fixed ---


def test_deeply_nested_json_is_an_event_error() -> None:
    with pytest.raises(EventError):
        parse_event("[" * 100_000 + "]" * 100_000)


def test_numeric_time_is_an_event_error() -> None:
    with pytest.raises(EventError, match="time"):
        parse_event(image_event() | {"time": 1772445600})


# --- regressions found by tests/test_fuzz_consumer.py ---


@pytest.mark.parametrize(
    "where",
    [("data", "tag"), ("id",), ("data", "labels", "team")],
    ids=["data-field", "envelope-field", "label-value"],
)
def test_a_lone_surrogate_escape_is_an_event_error(where: tuple[str, ...]) -> None:
    event = image_event()
    event["data"]["labels"] = {"team": "sre"}
    inner = event
    for key in where[:-1]:
        inner = inner[key]
    inner[where[-1]] = "x\udc00"
    with pytest.raises(EventError, match=r"lone UTF-16 surrogate \('\\udc00'\)"):
        parse_event(json.dumps(event))  # was: parsed; storing the record failed later
    with pytest.raises(EventError, match=r"lone UTF-16 surrogate"):
        parse_event(event)  # what adapters hand over


def test_a_lone_surrogate_in_a_key_is_an_event_error() -> None:
    event = {**image_event(), "ext\ud800": 1}
    with pytest.raises(EventError, match=r"lone UTF-16 surrogate"):
        parse_event(json.dumps(event))


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xff", b"\xc0\xaf"])
def test_bytes_must_be_strict_utf8(bad: bytes) -> None:
    raw = json.dumps(image_event()).encode().replace(b"build-42", b"build-" + bad)
    with pytest.raises(EventError, match=r"^event is not valid JSON: not UTF-8 text"):
        parse_event(raw)  # was: "\xed\xa0\x80" (an encoded surrogate) parsed


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_an_event_in_utf16_or_utf32_is_an_event_error(encoding: str) -> None:
    raw = json.dumps(image_event()).encode(encoding)
    with pytest.raises(EventError, match=r"^event is not valid JSON"):
        parse_event(raw)  # was: json.loads guessed the encoding and the event was accepted
