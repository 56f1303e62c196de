"""MLflow source: signed deliveries, model versions, tags and aliases to model events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st
from webhooks import adapter_event, fixture, fixture_json, headers_of, only_event, only_reason

from promoter.sources import mlflow
from promoter.sources.base import (
    Delivery,
    MalformedError,
    MediaTypeError,
    Normalized,
    SignatureError,
    SourceConfig,
    stable_id,
)
from promoter.sources.verify import mlflow_signature

SECRET = "my-webhook-secret"
CONFIG = SourceConfig(secret=SECRET)
DELIVERY_ID = "3f7c2b9e-1b1a-4c3e-9a77-0d2f5c1e8a10"
SENT = 1754000852
VECTOR = "v1,M2tmGzfRQWk1NfjfOIz4rmNEsTEcS2vFL5izLRcINX0="
NOW = datetime.fromtimestamp(SENT + 3, UTC)
JSON = "application/json"
UNSET = "unset"


raw = partial(fixture, "mlflow")
load = partial(fixture_json, "mlflow")


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()  # what MLflow sends: json.dumps defaults


def delivery(
    body: bytes,
    *,
    delivery_id: str | None = DELIVERY_ID,
    timestamp: str | None = str(SENT),
    signature: str | None = UNSET,
    content_type: str | None = JSON,
) -> Delivery:
    if signature == UNSET:
        signature = mlflow_signature(SECRET, delivery_id or "", timestamp or "", body)
    headers = {
        "User-Agent": "python-requests/2.32.4",
        "Content-Type": content_type,
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": signature,
    }
    return Delivery.of(body, headers_of(headers))


def run(
    body: bytes, config: SourceConfig = CONFIG, now: datetime = NOW, **kwargs: Any
) -> Normalized:
    return mlflow.normalize(delivery(body, **kwargs), config, now)


def model_event(labels: dict[str, str], **attributes: Any) -> dict[str, Any]:
    model = {
        "name": "fraud-detector",
        "version": "7",
        "uri": "models:/fraud-detector/7",
        "metrics": {},
        "labels": labels,
    }
    registered = adapter_event(
        "promoter.model.registered",
        DELIVERY_ID,
        source="/hooks/mlflow",
        time="2025-07-31T22:27:32.080217Z",
        data=model,
    )
    return registered | attributes


CREATED_LABELS = {
    "team": "risk",
    "mlflow.source": "models:/m-0123456789abcdef",
    "mlflow.run_id": "4b1f0c2d9e8a47f6b3c5d7e9f1a2b3c4",
}
CREATED = model_event(CREATED_LABELS)


def created(**data: Any) -> bytes:
    payload = load("model_version-created.json")
    payload["data"].update(data)
    return encode(payload)


# --- signatures ------------------------------------------------------------------------------


def test_appendix_b_vector_verifies_and_normalizes() -> None:
    body = raw("model_version-created.json")
    assert mlflow_signature(SECRET, DELIVERY_ID, str(SENT), body) == VECTOR
    assert only_event(run(body, signature=VECTOR)) == CREATED


@pytest.mark.parametrize("offset", [0, 3600, -300])
def test_ages_within_max_age_and_skew_are_accepted(offset: int) -> None:
    now = datetime.fromtimestamp(SENT + offset, UTC)
    assert only_event(run(raw("model_version-created.json"), now=now)) == CREATED


def test_too_old_is_401() -> None:
    now = datetime.fromtimestamp(SENT + 3601, UTC)
    with pytest.raises(SignatureError, match=r"3601s old; accepted: up to 3600s \(check") as caught:
        run(raw("model_version-created.json"), now=now, signature=VECTOR)
    assert caught.value.status == 401


def test_max_age_is_configurable() -> None:
    config = SourceConfig(secret=SECRET, max_age=timedelta(minutes=5))
    now = datetime.fromtimestamp(SENT + 301, UTC)
    with pytest.raises(SignatureError, match=r"301s old; accepted: up to 300s"):
        run(raw("model_version-created.json"), config, now)


def test_from_the_future_beyond_skew_is_401() -> None:
    now = datetime.fromtimestamp(SENT - 301, UTC)
    with pytest.raises(SignatureError, match=r"X-MLflow-Timestamp is -301s old; .*check the clock"):
        run(raw("model_version-created.json"), now=now, signature=VECTOR)


def test_forged_signature_is_401() -> None:
    body = raw("model_version-created.json")
    forged = mlflow_signature("guessed", DELIVERY_ID, str(SENT), body)
    with pytest.raises(SignatureError, match=r"does not match the delivery and the secret"):
        run(body, signature=forged)


def test_signature_covers_the_delivery_id() -> None:
    body = raw("model_version-created.json")
    with pytest.raises(SignatureError, match=r"does not match"):
        run(body, delivery_id="00000000-0000-4000-8000-000000000000", signature=VECTOR)


def test_signature_covers_the_body_bytes() -> None:
    body = raw("model_version-created.json").replace(b'"version": "7"', b'"version": "8"')
    with pytest.raises(SignatureError, match=r"does not match"):
        run(body, signature=VECTOR)


def test_missing_signature_with_a_secret_is_401() -> None:
    with pytest.raises(SignatureError, match=r"X-MLflow-Signature is missing; give the MLflow"):
        run(raw("model_version-created.json"), signature=None)


def test_missing_timestamp_with_a_secret_is_401() -> None:
    with pytest.raises(SignatureError, match=r"X-MLflow-Timestamp are needed to verify"):
        run(raw("model_version-created.json"), timestamp=None, signature=VECTOR)


def test_timestamp_not_in_seconds_is_401() -> None:
    with pytest.raises(SignatureError, match=r"'2025-07-31T22:27:32Z' is not Unix seconds"):
        run(raw("model_version-created.json"), timestamp="2025-07-31T22:27:32Z")


@pytest.mark.parametrize("timestamp", ["99999999999999999999", "9" * 400, "-99999999999999"])
def test_timestamp_no_clock_can_show_is_401(timestamp: str) -> None:
    with pytest.raises(SignatureError, match=r"is not Unix seconds"):
        run(raw("model_version-created.json"), timestamp=timestamp)
    # was: OverflowError escaped (an InternalError, "please report it"); found by fuzzing


def test_signature_is_checked_before_anything_else() -> None:
    with pytest.raises(SignatureError):
        run(b"\xff garbage", content_type="text/plain", signature=None)


def test_no_secret_accepts_unsigned_deliveries_and_derives_a_stable_id() -> None:
    body = raw("model_version-created.json")
    event = only_event(run(body, SourceConfig(), delivery_id=None, timestamp=None, signature=None))
    data = json.loads(body)["data"]
    expected_id = stable_id(
        "mlflow",
        "model_version",
        "created",
        "2025-07-31T22:27:32.080217+00:00",
        json.dumps(data, sort_keys=True),
    )
    assert expected_id == "00aca31ace0fa60444ce6f7b8b45f396"
    assert event == model_event(CREATED_LABELS, id=expected_id)


def test_derived_id_ignores_key_order_but_not_content() -> None:
    payload = load("model_version-created.json")
    reordered = payload | {"data": dict(reversed(payload["data"].items()))}
    unsigned: dict[str, Any] = {"delivery_id": None, "timestamp": None, "signature": None}
    first = only_event(run(encode(payload), SourceConfig(), **unsigned))["id"]
    assert only_event(run(encode(reordered), SourceConfig(), **unsigned))["id"] == first
    changed = only_event(run(created(description="retrained"), SourceConfig(), **unsigned))
    assert changed["id"] != first


def test_blank_delivery_id_header_falls_back_to_the_derived_id() -> None:
    body = raw("model_version-created.json")
    event = only_event(run(body, SourceConfig(), delivery_id=" ", signature=None))
    assert event["id"] == "00aca31ace0fa60444ce6f7b8b45f396"


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/cloudevents+json"])
def test_other_content_types_are_415(content_type: str | None) -> None:
    body = raw("model_version-created.json")
    with pytest.raises(MediaTypeError, match=r"is not accepted here; send application/json$") as e:
        run(body, content_type=content_type)
    assert e.value.status == 415


# --- the three events ------------------------------------------------------------------------


def test_model_version_created() -> None:
    assert only_event(run(raw("model_version-created.json"))) == CREATED


def test_model_version_tag_set() -> None:
    event = only_event(run(raw("model_version_tag-set.json")))
    assert event == model_event({"validation_status": "passed"}, time="2026-03-04T12:00:01.000123Z")


def test_model_version_alias_created() -> None:
    event = only_event(run(raw("model_version_alias-created.json")))
    assert event == model_event({"alias": "champion"}, time="2026-03-04T12:05:09.410000Z")


def test_the_three_events_name_one_version_by_the_same_uri() -> None:
    names = ["model_version-created.json", "model_version_tag-set.json"]
    names.append("model_version_alias-created.json")
    uris = {only_event(run(raw(name)))["data"]["uri"] for name in names}
    assert uris == {"models:/fraud-detector/7"}


def test_version_as_int_is_stringified() -> None:
    assert only_event(run(created(version=7))) == CREATED


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (7.0, r"^data.version must be str or int, got float$"),
        (True, r"^data.version must be str or int, got bool$"),
        ([7], r"^data.version must be str or int, got list$"),
        (None, r"^data.version is missing$"),
        ("", r"^data.version is empty; MLflow numbers every model version$"),
        (" ", r"^data.version is empty"),
    ],
)
def test_other_versions_are_400(version: object, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        run(created(version=version))
    assert caught.value.status == 400


def test_created_labels_keep_string_tags_and_skip_unset_origins() -> None:
    body = created(
        tags={"team": "risk", "auc": 0.91, "owner": None, "mlflow.source": "a tag"},
        source="s3://models/fraud/7",
        run_id=None,
    )
    event = only_event(run(body))
    assert event["data"]["labels"] == {"team": "risk", "mlflow.source": "s3://models/fraud/7"}


@pytest.mark.parametrize("tags", [None, {}])
def test_created_without_tags(tags: dict[str, str] | None) -> None:
    event = only_event(run(created(tags=tags, source="", run_id="")))
    assert event == model_event({})


def test_workspace_and_unknown_fields_are_ignored() -> None:
    payload = load("model_version_alias-created.json")
    payload |= {"workspace": "risk-team", "extra": [1, 2]}
    payload["data"]["previous_version"] = "6"
    event = only_event(run(encode(payload)))
    assert event == model_event({"alias": "champion"}, time="2026-03-04T12:05:09.410000Z")


def test_tag_with_an_empty_value_is_a_label() -> None:
    payload = load("model_version_tag-set.json")
    payload["data"]["value"] = ""
    assert only_event(run(encode(payload)))["data"]["labels"] == {"validation_status": ""}


# --- ignored events --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "action", "why"),
    [
        ("registered_model", "created", "a registered model without a version has nothing"),
        ("model_version_tag", "deleted", "never takes labels back"),
        ("model_version_alias", "deleted", "an alias removed names no version"),
        ("prompt_version", "created", "promoter acts only on model_version.created, "),
        ("prompt_alias", "created", "promoter acts only on"),
        ("budget_policy", "exceeded", "promoter acts only on"),
        ("model_version", "updated", "promoter acts only on"),
    ],
)
def test_other_events_are_ignored(entity: str, action: str, why: str) -> None:
    body = encode({"entity": entity, "action": action, "timestamp": "x", "data": None})
    reason = only_reason(run(body))
    assert reason.startswith(f"MLflow event '{entity}.{action}' is not one promoter acts on: ")
    assert why in reason


def test_registered_model_created_fixture_is_ignored() -> None:
    reason = only_reason(run(raw("registered_model-created.json")))
    assert reason == (
        "MLflow event 'registered_model.created' is not one promoter acts on: "
        "a registered model without a version has nothing to promote"
    )


# --- malformed deliveries --------------------------------------------------------------------


def _with(name: str, **data: Any) -> bytes:
    payload = load(name)
    for key, value in data.items():
        if value is UNSET:
            del payload["data"][key]
        else:
            payload["data"][key] = value
    return encode(payload)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", r"^body must be a JSON object, got list$"),
        (b"42", r"^body must be a JSON object, got int$"),
        (b"null", r"^body must be a JSON object, got null$"),
        (b"{nope", r"^MLflow payload is not valid JSON"),
        (b'{"a": "\xff"}', r"^MLflow payload is not UTF-8 text$"),
        (b'{"action": "created"}', r"^entity is missing$"),
        (b'{"entity": "model_version", "action": 1}', r"^action must be str, got int$"),
        (b'{"entity": "model_version", "action": "created"}', r"^data is missing$"),
        (
            b'{"entity": "model_version", "action": "created", "data": []}',
            r"^data must be a JSON object, got list$",
        ),
        (created(name=""), r"^data.name is empty; MLflow always names it$"),
        (created(name=None), r"^data.name is missing$"),
        (created(tags=["team"]), r"^data.tags must be a JSON object, got list$"),
        (created(run_id=42), r"^data.run_id must be str, got int$"),
        (_with("model_version_tag-set.json", key=""), r"^data.key is empty"),
        (_with("model_version_tag-set.json", value=UNSET), r"^data.value is missing$"),
        (_with("model_version_alias-created.json", alias=UNSET), r"^data.alias is missing$"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        run(body)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        (None, r"^timestamp is missing$"),
        (1754000852, r"^timestamp must be str, got int$"),
        ("yesterday", r"^timestamp 'yesterday' is not an RFC 3339 timestamp$"),
        ("2025-07-31T22:27:32", r"has no time zone$"),
        ("0001-01-01T00:00:00+01:00", r"^timestamp '0001-01-01T00:00:00\+01:00' is out of range$"),
    ],
)
def test_bad_timestamps_are_400(timestamp: object, message: str) -> None:
    payload = load("model_version-created.json") | {"timestamp": timestamp}
    with pytest.raises(MalformedError, match=message):
        run(encode(payload))


# --- nothing but DeliveryError escapes -------------------------------------------------------

FIXTURES = [
    "model_version-created.json",
    "model_version_tag-set.json",
    "model_version_alias-created.json",
]


def normalizes_or_rejects(body: bytes) -> None:
    sent = delivery(body, delivery_id=None, signature=None)
    check_outcome(outcome(lambda: mlflow.normalize(sent, SourceConfig(), NOW)), {400})


@given(st.sampled_from(FIXTURES), st.data())
def test_mutated_payloads_only_ever_raise_delivery_errors(name: str, data: st.DataObject) -> None:
    payload = load(name)
    path = data.draw(st.sampled_from(paths(payload)))
    normalizes_or_rejects(encode(replaced(payload, path, data.draw(json_values))))


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_ever_raise_delivery_errors(body: bytes) -> None:
    normalizes_or_rejects(body)
