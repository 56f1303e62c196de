"""Alertmanager source: webhook messages (payload version 4) to per-alert health signals."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome
from hypothesis import given
from hypothesis import strategies as st
from webhooks import adapter_event

from promoter.sources import alertmanager
from promoter.sources.base import (
    Delivery,
    MalformedError,
    MediaTypeError,
    Normalized,
    SourceConfig,
    stable_id,
)

DATA = Path(__file__).parent / "data" / "webhooks" / "alertmanager"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
SECRET = "alertmanager-s3cret"
CONFIG = SourceConfig(secret=SECRET)
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
GROUP = '{}/{severity="critical"}:{alertname="HighErrorRate"}'


def deliver(body: bytes, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery.of(body, HEADERS if headers is None else headers)


def run(name: str, config: SourceConfig = CONFIG) -> Normalized:
    return alertmanager.normalize(deliver((DATA / name).read_bytes()), config, NOW)


def load(name: str) -> dict[str, Any]:
    body = json.loads((DATA / name).read_bytes())
    assert isinstance(body, dict)
    return body


def normalize_dict(body: object, config: SourceConfig = CONFIG) -> Normalized:
    return alertmanager.normalize(deliver(json.dumps(body).encode()), config, NOW)


def signal(
    id_parts: tuple[str, str, str], time: str, where: tuple[str, str], status: str, reason: str
) -> dict[str, Any]:
    """The full event expected: `id_parts` are (fingerprint, startsAt, status), `where` is
    (pipeline, environment)."""
    pipeline, env = where
    return adapter_event(
        "promoter.health.signal",
        stable_id("alertmanager", *id_parts, pipeline, env),
        source="/hooks/alertmanager",
        time=time,
        data={"pipeline": pipeline, "environment": env, "status": status, "reason": reason},
    )


API_PROD_FIRING = signal(
    ("1a30ba71cca2921f", "2026-03-04T11:10:45.828Z", "firing"),
    "2026-03-04T11:10:45.828000Z",
    ("payments", "prod"),
    "degraded",
    "HighErrorRate firing: 5xx ratio above 5% for payments-api",
)
API_STAGING_FIRING = signal(
    ("5e1f0c9a7d2b4e63", "2026-03-04T11:11:02.114593201Z", "firing"),
    "2026-03-04T11:11:02.114593Z",
    ("payments", "staging"),
    "degraded",
    "HighErrorRate firing",
)
WORKER_UNLABELLED = (
    "alert HighErrorRate (fingerprint c6eadffa33fcdf37) has no promoter_pipeline and no "
    "promoter_env label, so it is not a promoter health signal; to make it one, add labels "
    "promoter_pipeline and promoter_env to its alerting rule"
)


def test_mixed_group_signals_the_labelled_alert_and_explains_the_other() -> None:
    assert run("mixed-group.json") == Normalized(
        events=(API_PROD_FIRING,), ignored=(WORKER_UNLABELLED,)
    )


def test_all_firing_degrade_each_environment_dated_by_starts_at() -> None:
    assert run("firing.json") == Normalized(events=(API_PROD_FIRING, API_STAGING_FIRING))


def test_all_resolved_heal_each_environment_dated_by_ends_at() -> None:
    assert run("resolved.json") == Normalized(
        events=(
            signal(
                ("1a30ba71cca2921f", "2026-03-04T11:10:45.828Z", "resolved"),
                "2026-03-04T11:24:15.828000Z",
                ("payments", "prod"),
                "healthy",
                "HighErrorRate resolved: 5xx ratio above 5% for payments-api",
            ),
            signal(
                ("5e1f0c9a7d2b4e63", "2026-03-04T11:11:02.114593201Z", "resolved"),
                "2026-03-04T11:20:32.500000Z",
                ("payments", "staging"),
                "healthy",
                "HighErrorRate resolved",
            ),
        )
    )


def test_repeat_notification_gets_the_same_ids_and_times() -> None:
    first = {e["data"]["environment"]: e for e in run("firing.json").events}
    repeat = {e["data"]["environment"]: e for e in run("firing-repeat.json").events}
    assert set(first) == set(repeat) == {"prod", "staging"}
    for env, event in first.items():
        assert (repeat[env]["id"], repeat[env]["time"]) == (event["id"], event["time"])
    assert repeat["prod"]["data"]["reason"].endswith("(now 7.2%)")


def test_resolution_gets_a_new_id() -> None:
    firing = {e["data"]["environment"]: e["id"] for e in run("firing.json").events}
    resolved = {e["data"]["environment"]: e["id"] for e in run("resolved.json").events}
    assert firing.keys() == resolved.keys()
    assert not set(firing.values()) & set(resolved.values())


def test_golden_id_is_fingerprint_starts_at_status_pipeline_environment() -> None:
    (event,) = run("mixed-group.json").events
    assert event["id"] == "afe823a3f84103f0d37da7473d25ed71"


def test_custom_label_names_from_the_source_config() -> None:
    config = SourceConfig(secret=SECRET, pipeline_label="pipeline", environment_label="stage")
    assert run("custom-labels.json", config) == Normalized(
        events=(
            signal(
                ("9b8e1c2d3f4a5b6c", "2026-03-04T09:30:00Z", "firing"),
                "2026-03-04T09:30:00Z",
                ("checkout", "canary"),
                "degraded",
                "CheckoutLatencyHigh firing: p99 checkout latency above 800ms",
            ),
        ),
        ignored=(
            (
                "alert CheckoutLatencyHigh (fingerprint 0c1d2e3f4a5b6c7d) has no pipeline and "
                "no stage label, so it is not a promoter health signal; to make it one, add "
                "labels pipeline and stage to its alerting rule"
            ),
        ),
    )


def test_default_label_names_do_not_read_custom_labels() -> None:
    result = run("custom-labels.json")
    assert [e["data"]["environment"] for e in result.events] == ["prod"]
    (reason,) = result.ignored
    assert re.match(
        r"alert CheckoutLatencyHigh \(fingerprint 9b8e1c2d3f4a5b6c\) has no pro", reason
    )


@pytest.mark.parametrize(
    ("drop", "missing"),
    [("promoter_env", "no promoter_env label"), ("promoter_pipeline", "no promoter_pipeline")],
)
def test_one_missing_label_is_named(drop: str, missing: str) -> None:
    body = load("firing.json")
    del body["alerts"][1]["labels"][drop]
    result = normalize_dict(body)
    assert result.events == (API_PROD_FIRING,)
    (reason,) = result.ignored
    assert reason.startswith(f"alert HighErrorRate (fingerprint 5e1f0c9a7d2b4e63) has {missing}")
    assert reason.endswith("add labels promoter_pipeline and promoter_env to its alerting rule")


def test_empty_label_value_counts_as_missing() -> None:
    body = load("firing.json")
    body["alerts"][1]["labels"]["promoter_env"] = ""
    assert normalize_dict(body).events == (API_PROD_FIRING,)


def test_version_3_is_rejected_with_what_promoter_reads() -> None:
    with pytest.raises(MalformedError) as caught:
        run("version-3.json")
    assert str(caught.value) == (
        'version "3" is not supported: promoter reads Alertmanager webhook payload version 4; '
        "send Alertmanager's own webhook body (a webhook_config without a custom payload "
        "template) to /hooks/alertmanager"
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (None, r"^version is missing: promoter reads Alertmanager webhook payload version 4; "),
        (4, r'^version must be the string "4", got a number 4: promoter reads'),
        ("x" * 80, r'^version "x{36}\.\.\. is not supported: .*without a custom payload template'),
    ],
)
def test_other_versions_are_rejected(version: object, message: str) -> None:
    body = load("mixed-group.json")
    body["version"] = version
    with pytest.raises(MalformedError, match=message):
        normalize_dict(body)


def test_truncated_alerts_are_reported() -> None:
    assert run("truncated.json") == Normalized(
        events=(API_PROD_FIRING,),
        ignored=(
            (
                f"2 alerts of group {GROUP} were truncated by Alertmanager's max_alerts and are "
                "not in this message; raise max_alerts on the webhook receiver so promoter sees "
                "every alert"
            ),
        ),
    )


def test_empty_alert_list_is_ignored_with_the_group() -> None:
    body = load("mixed-group.json") | {"alerts": []}
    assert normalize_dict(body) == Normalized(
        ignored=(f"the message for alert group {GROUP} has no alerts",)
    )


def test_older_payload_without_notification_reason() -> None:
    assert run("legacy.json") == Normalized(
        events=(
            signal(
                ("e5a2d4c7b1f08369", "2021-06-01T08:00:00Z", "firing"),
                "2021-06-01T08:00:00Z",
                ("search", "staging"),
                "degraded",
                "PodCrashLooping firing",
            ),
            signal(
                ("7f3b9e0a2c6d1845", "2021-06-01T07:40:00Z", "resolved"),
                "2021-06-01T07:55:00Z",
                ("search", "prod"),
                "healthy",
                "PodCrashLooping resolved",
            ),
        )
    )


def test_alert_without_fingerprint_is_identified_by_its_sorted_labels() -> None:
    body = load("firing.json")
    del body["alerts"][0]["fingerprint"]
    labels = body["alerts"][0]["labels"]
    labels_json = json.dumps(dict(sorted(labels.items())), separators=(",", ":"))
    (event, _) = normalize_dict(body).events
    assert event["id"] == stable_id(
        "alertmanager", labels_json, "2026-03-04T11:10:45.828Z", "firing", "payments", "prod"
    )
    body["alerts"][0]["labels"] = dict(reversed(labels.items()))
    assert normalize_dict(body).events[0]["id"] == event["id"]


@pytest.mark.parametrize("ends_at", [None, "0001-01-01T00:00:00Z"])
def test_resolved_alert_without_an_end_is_dated_now(ends_at: str | None) -> None:
    body = load("resolved.json")
    body["alerts"][0]["endsAt"] = ends_at
    assert normalize_dict(body).events[0]["time"] == "2026-03-04T12:00:00Z"


def test_other_alert_status_is_ignored() -> None:
    body = load("firing.json")
    body["alerts"][1]["status"] = "suppressed"
    result = normalize_dict(body)
    assert result == Normalized(
        events=(API_PROD_FIRING,),
        ignored=(
            (
                "alert HighErrorRate (fingerprint 5e1f0c9a7d2b4e63) has status 'suppressed'; "
                "only firing and resolved alerts count"
            ),
        ),
    )


def test_alert_without_alertname_or_summary() -> None:
    body = load("resolved.json")
    del body["alerts"][0]["labels"]["alertname"]
    del body["alerts"][0]["annotations"]
    assert normalize_dict(body).events[0]["data"]["reason"] == "alert resolved"
    body["alerts"][0]["labels"].pop("promoter_env")
    (reason,) = normalize_dict(body).ignored
    assert reason.startswith("alert (no alertname) (fingerprint 1a30ba71cca2921f) has no promo")


def test_missing_content_type_is_accepted() -> None:
    delivery = deliver((DATA / "firing.json").read_bytes(), {"Authorization": f"Bearer {SECRET}"})
    assert alertmanager.normalize(delivery, CONFIG, NOW).events


def test_wrong_content_type_is_415() -> None:
    delivery = deliver((DATA / "firing.json").read_bytes(), HEADERS | {"Content-Type": "text/xml"})
    with pytest.raises(MediaTypeError, match=r"^text/xml is not accepted here; send applicat"):
        alertmanager.normalize(delivery, CONFIG, NOW)


MALFORMED: list[tuple[bytes | dict[str, Any], str]] = [
    (b"", r"^Alertmanager webhook body is not valid JSON"),
    (b"\x00{", r"^Alertmanager webhook body is not valid JSON"),
    (b'{"a": "\xff"}', r"^Alertmanager webhook body is not UTF-8 text"),
    (b"[]", r"body must be a JSON object, got an array; send Alertmanager.s own webhook body"),
    (b"4", r"body must be a JSON object, got a number"),
    (b"null", r"body must be a JSON object, got null"),
    ({"version": "4"}, r"^alerts is missing; send Alertmanager's own webhook body \(a webhook"),
    ({"version": "4", "alerts": {}}, r"^alerts must be list, got dict"),
    ({"version": "4", "alerts": [None]}, r"^alerts\[0\]: an alert must be a JSON object, got null"),
    ({"version": "4", "alerts": [{"status": "firing"}]}, r"^alerts\[0\]: labels is missing"),
    ({"labels": []}, r"^alerts\[0\]: labels must be dict, got list"),
    ({"status": 1}, r"^alerts\[0\]: status must be str, got int"),
    ({"startsAt": None}, r"^alerts\[0\]: startsAt is missing"),
    ({"startsAt": "soon"}, r"^alerts\[0\]: startsAt 'soon' is not an RFC 3339 timestamp"),
    ({"fingerprint": 7}, r"^alerts\[0\]: fingerprint must be str, got int"),
    ({"labels": {"promoter_env": 1}}, r"^alerts\[0\]: labels\.promoter_env must be a string"),
    ({"endsAt": "2026-13-01T00:00:00Z"}, r"^alerts\[0\]: endsAt '2026-13-01T00:00:00Z' is not"),
    ({"truncatedAlerts": "2"}, r"^truncatedAlerts must be int, got str"),
]


def malformed_body(patch: bytes | dict[str, Any]) -> bytes:
    if isinstance(patch, bytes):
        return patch
    if "version" in patch:
        return json.dumps(patch).encode()
    body = load("resolved.json")
    target = body if "truncatedAlerts" in patch else body["alerts"][0]
    for key, value in patch.items():
        target[key] = target[key] | value if isinstance(value, dict) else value
    return json.dumps(body).encode()


@pytest.mark.parametrize(("patch", "message"), MALFORMED)
def test_malformed_bodies_are_rejected_with_the_reason(
    patch: bytes | dict[str, Any], message: str
) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        alertmanager.normalize(deliver(malformed_body(patch)), CONFIG, NOW)
    assert caught.value.status == 400


ALERT_KEYS = ["status", "labels", "annotations", "startsAt", "endsAt", "fingerprint"]


def normalizes_or_rejects(body: bytes) -> None:
    check_outcome(outcome(lambda: alertmanager.normalize(deliver(body), CONFIG, NOW)), {400})


@given(
    st.sampled_from(ALERT_KEYS),
    json_values,
    st.sampled_from(["truncatedAlerts", "alerts"]),
    json_values,
)
def test_any_field_value_is_normalized_or_rejected_never_crashes(
    key: str, value: Any, top: str, top_value: Any
) -> None:
    body = load("mixed-group.json")
    body["alerts"][0][key] = value
    for delivered in (body, body | {top: top_value}, value):
        normalizes_or_rejects(json.dumps(delivered).encode())


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_rejected_never_crash(body: bytes) -> None:
    normalizes_or_rejects(body)
