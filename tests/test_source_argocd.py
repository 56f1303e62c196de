"""Argo CD source: notification bodies to health signals, and the template users install."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fuzzing import check_outcome, json_values, outcome
from hypothesis import given
from hypothesis import strategies as st
from webhooks import adapter_event

from promoter.sources import argocd
from promoter.sources.base import (
    Delivery,
    MalformedError,
    MediaTypeError,
    Normalized,
    SourceConfig,
    stable_id,
)

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "webhooks" / "argocd"
TEMPLATE_FILE = ROOT / "deploy" / "argocd" / "promoter-notifications.yaml"
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-03-05T12:00:00Z"
SECRET = "argocd-webhook-s3cret"
CONFIG = SourceConfig(secret=SECRET)
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET}"}
OLD = "8d0ee5ed10b141d4f05aab13aaa2745a22ea9fc1"
NEW = "3f1c9a2e7b5d4c6a8e0f1b2d3c4a5e6f7a8b9c0d"
APP = "payments-prod"
DIGEST = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"


def deliver(body: bytes, headers: dict[str, str] | None = None) -> Delivery:
    return Delivery.of(body, HEADERS if headers is None else headers)


def run(name: str, config: SourceConfig = CONFIG) -> Normalized:
    return argocd.normalize(deliver((DATA / name).read_bytes()), config, NOW)


def signal(id_parts: tuple[str | None, ...], time: str, status: str, reason: str) -> dict[str, Any]:
    """The full event expected for app payments-prod, annotated payments / prod."""
    return adapter_event(
        "promoter.health.signal",
        stable_id("argocd", APP, *id_parts),
        source="/hooks/argocd",
        time=time,
        data={"pipeline": "payments", "environment": "prod", "status": status, "reason": reason},
    )


# Each case: the fixture, its identity (revision, health, sync, phase and finishedAt), then
# the expected time, status and reason.
CASES = [
    (
        "healthy-synced.json",
        (OLD, "Healthy", "Synced", "Succeeded", "2026-03-04T11:06:31Z"),
        "2026-03-04T11:06:31Z",
        "healthy",
        f"Argo CD app {APP}: health Healthy, sync Synced, phase Succeeded, revision 8d0ee5e",
    ),
    (
        "healthy-out-of-sync.json",
        (NEW, "Healthy", "OutOfSync", "Succeeded", "2026-03-04T11:06:31Z"),
        "2026-03-04T11:06:31Z",
        "progressing",
        f"Argo CD app {APP}: health Healthy, sync OutOfSync, phase Succeeded, revision 3f1c9a2",
    ),
    (
        "progressing.json",
        (NEW, "Progressing", "Synced", "Succeeded", "2026-03-05T09:12:40Z"),
        "2026-03-05T09:12:40Z",
        "progressing",
        f"Argo CD app {APP}: health Progressing, sync Synced, phase Succeeded, revision 3f1c9a2",
    ),
    (
        "degraded.json",
        (NEW, "Degraded", "Synced", "Succeeded", "2026-03-05T09:12:40Z"),
        "2026-03-05T09:12:40Z",
        "degraded",
        f"Argo CD app {APP}: health Degraded, sync Synced, phase Succeeded, revision 3f1c9a2",
    ),
    (
        "suspended.json",
        (NEW, "Suspended", "Synced", "Succeeded", "2026-03-05T09:12:40Z"),
        "2026-03-05T09:12:40Z",
        "progressing",
        f"Argo CD app {APP}: health Suspended, sync Synced, phase Succeeded, revision 3f1c9a2",
    ),
    (
        "missing.json",
        (OLD, "Missing", "OutOfSync", "Succeeded", "2026-03-04T11:06:31Z"),
        "2026-03-04T11:06:31Z",
        "unknown",
        f"Argo CD app {APP}: health Missing, sync OutOfSync, phase Succeeded, revision 8d0ee5e",
    ),
    (
        "sync-failed.json",
        (NEW, "Healthy", "OutOfSync", "Failed", "2026-03-05T09:13:02Z"),
        "2026-03-05T09:13:02Z",
        "degraded",
        (
            f"Argo CD app {APP}: sync failed; health Healthy, sync OutOfSync, phase Failed, "
            "revision 3f1c9a2"
        ),
    ),
    (
        "sync-error.json",
        (NEW, "Healthy", "OutOfSync", "Error", "2026-03-05T09:13:02Z"),
        "2026-03-05T09:13:02Z",
        "degraded",
        (
            f"Argo CD app {APP}: sync failed; health Healthy, sync OutOfSync, phase Error, "
            "revision 3f1c9a2"
        ),
    ),
    (
        "before-first-sync.json",
        (OLD, "Missing", "OutOfSync", None, None),
        NOW_TEXT,
        "unknown",
        f"Argo CD app {APP}: health Missing, sync OutOfSync, revision 8d0ee5e",
    ),
    (
        "sync-running.json",
        (NEW, "Progressing", "OutOfSync", "Running", None),
        NOW_TEXT,
        "progressing",
        f"Argo CD app {APP}: health Progressing, sync OutOfSync, phase Running, revision 3f1c9a2",
    ),
]


@pytest.mark.parametrize(("fixture", "id_parts", "time", "status", "reason"), CASES)
def test_fixture_becomes_one_exact_health_signal(
    fixture: str, id_parts: tuple[str | None, ...], time: str, status: str, reason: str
) -> None:
    assert run(fixture) == Normalized(events=(signal(id_parts, time, status, reason),))


def test_golden_id_pins_the_identity_fields() -> None:
    (event,) = run("healthy-synced.json").events
    assert event["id"] == "4570d190ed8c9cbfd0e93d3e3044e899"


def test_identical_redelivery_gets_the_same_id_and_a_new_sync_a_new_one() -> None:
    first = run("healthy-synced.json").events[0]
    again = run("healthy-synced.json").events[0]
    reformatted = json.dumps(json.loads((DATA / "healthy-synced.json").read_bytes())).encode()
    third = argocd.normalize(deliver(reformatted), CONFIG, NOW).events[0]
    assert first == again == third
    assert run("degraded.json").events[0]["id"] != first["id"]


@pytest.mark.parametrize(
    ("health", "sync", "status"),
    [
        ("Healthy", "Unknown", "progressing"),
        ("Unknown", "Synced", "unknown"),
        ("Starting", "Synced", "unknown"),
        (None, None, "unknown"),
        ("", "Synced", "unknown"),
    ],
)
def test_other_health_values_map_conservatively(
    health: str | None, sync: str | None, status: str
) -> None:
    body = json.loads((DATA / "healthy-synced.json").read_bytes())
    body |= {"health": health, "sync": sync}
    (event,) = argocd.normalize(deliver(json.dumps(body).encode()), CONFIG, NOW).events
    assert event["data"]["status"] == status


def test_no_status_at_all_still_names_the_app() -> None:
    body = {"app": APP, "pipeline": "payments", "environment": "prod"}
    (event,) = argocd.normalize(deliver(json.dumps(body).encode()), CONFIG, NOW).events
    assert event["data"] == {
        "pipeline": "payments",
        "environment": "prod",
        "status": "unknown",
        "reason": f"Argo CD app {APP}: no status yet",
    }
    assert event["time"] == NOW_TEXT


def test_helm_revision_is_shown_whole_and_unknown_fields_are_ignored() -> None:
    body = json.loads((DATA / "healthy-synced.json").read_bytes())
    body |= {
        "revision": "payments-1.14.2",
        "project": "payments",
        "images": "not a list",
        "extra": [1],
    }
    (event,) = argocd.normalize(deliver(json.dumps(body).encode()), CONFIG, NOW).events
    assert event["data"]["reason"].endswith("revision payments-1.14.2")


def test_missing_annotations_are_ignored_with_what_to_annotate() -> None:
    result = run("unannotated.json")
    assert result == Normalized(
        ignored=(
            (
                f"Argo CD app {APP} has no promoter.dev/pipeline and no "
                "promoter.dev/environment annotation, so promoter cannot tell which environment "
                "it runs; annotate the Application with promoter.dev/pipeline and "
                "promoter.dev/environment to send its health to promoter"
            ),
        )
    )


@pytest.mark.parametrize(
    ("pipeline", "environment", "missing"),
    [
        ("payments", "", "no promoter.dev/environment annotation"),
        (None, "prod", "no promoter.dev/pipeline annotation"),
    ],
)
def test_one_missing_annotation_is_named(
    pipeline: str | None, environment: str, missing: str
) -> None:
    body = json.loads((DATA / "healthy-synced.json").read_bytes())
    body |= {"pipeline": pipeline, "environment": environment}
    result = argocd.normalize(deliver(json.dumps(body).encode()), CONFIG, NOW)
    assert not result.events
    (reason,) = result.ignored
    assert re.search(rf"app {APP} has {missing}, .* annotate the Application", reason)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(content_type: str) -> None:
    headers = HEADERS | {"Content-Type": content_type}
    delivery = deliver((DATA / "healthy-synced.json").read_bytes(), headers)
    with pytest.raises(MediaTypeError, match=rf"{content_type} is not accepted here; send app"):
        argocd.normalize(delivery, CONFIG, NOW)


def test_missing_content_type_and_charset_parameter_are_accepted() -> None:
    body = (DATA / "healthy-synced.json").read_bytes()
    for content_type in (None, "application/json; charset=utf-8"):
        headers = {"Authorization": f"Bearer {SECRET}"}
        if content_type:
            headers["Content-Type"] = content_type
        assert argocd.normalize(deliver(body, headers), CONFIG, NOW).events


HINT = r"; render the body with template\.promoter-health in deploy/argocd/"
MALFORMED = [
    (b"", r"body is not valid JSON"),
    (b'{"app": "\xff"}', r"body is not UTF-8 text"),
    (b'{"app": ', r"body is not valid JSON"),
    (b"[]", r"body must be a JSON object, got an array; render the body with template"),
    (b"42", r"body must be a JSON object, got a number"),
    (b"null", r"body must be a JSON object, got null"),
    (b'"payments-prod"', r"body must be a JSON object, got a string"),
    (b"{}", r"app \(the Application's name\) is missing or empty" + HINT),
    (b'{"app": ""}', r"app \(the Application's name\) is missing or empty"),
    (b'{"app": 7}', r"app must be str, got int" + HINT),
    (b'{"app": "a", "health": {"status": "Healthy"}}', r"health must be str, got dict" + HINT),
    (b'{"app": "a", "pipeline": ["p"], "environment": "e"}', r"pipeline must be str, got list"),
    (b'{"app": "a", "phase": true}', r"phase must be str, got bool"),
    (
        b'{"app": "a", "pipeline": "p", "environment": "e", "finishedAt": "yesterday"}',
        r"finishedAt 'yesterday' is not an RFC 3339 timestamp" + HINT,
    ),
    (b'{"app": "a", "finishedAt": 1772622391}', r"finishedAt must be str, got int" + HINT),
    (
        b'{"app": "a", "pipeline": "p", "environment": "e", "finishedAt": "2026-03-04T11:06:31"}',
        r"finishedAt '2026-03-04T11:06:31' has no time zone",
    ),
]


@pytest.mark.parametrize(("body", "message"), MALFORMED)
def test_malformed_bodies_are_rejected_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        argocd.normalize(deliver(body), CONFIG, NOW)
    assert caught.value.status == 400


KEYS = ["app", "pipeline", "environment", "health", "sync", "revision", "phase", "finishedAt"]


def normalizes_or_rejects(body: bytes) -> None:
    result = outcome(lambda: argocd.normalize(deliver(body), CONFIG, NOW))
    check_outcome(result, {400})
    if isinstance(result, Normalized):
        assert len(result.events) + len(result.ignored) == 1


@given(st.dictionaries(st.sampled_from(KEYS), json_values | st.text(max_size=30)) | json_values)
def test_any_json_body_is_normalized_or_rejected_never_crashes(body: Any) -> None:
    normalizes_or_rejects(json.dumps(body).encode())


@given(st.binary(max_size=64))
def test_arbitrary_bytes_are_rejected_never_crash(body: bytes) -> None:
    normalizes_or_rejects(body)


# --- the notification template users install (deploy/argocd/promoter-notifications.yaml) ---

IF_ELSE = re.compile(r"\{\{if (\.[\w.]+)\}\}(.*?)\{\{else\}\}(.*?)\{\{end\}\}", re.DOTALL)
TO_JSON = re.compile(r"\{\{toJson (.+?)\}\}")
ANNOTATION = re.compile(r'\(or \(index (\.[\w.]+) "([^"]+)"\) ""\)')


def lookup(context: dict[str, Any], path: str) -> Any:
    """`.a.b.c` as Go templates evaluate it on unstructured JSON: a missing key is nil, and a
    field of nil fails to render (so the template must guard it)."""
    value: Any = context
    for key in path.strip(".").split("."):
        assert isinstance(value, dict), f"template would fail: {path} walks through nil"
        value = value.get(key)
    return value


def evaluate(context: dict[str, Any], expression: str) -> Any:
    if match := ANNOTATION.fullmatch(expression):
        return lookup(context, match[1]).get(match[2]) or ""
    assert re.fullmatch(r"\.[\w.]+", expression), f"unsupported action {expression}"
    return lookup(context, expression)


def go_json(value: Any) -> str:
    """Sprig's toJson: Go's json.Marshal (compact, with <, > and & escaped)."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(template: str, context: dict[str, Any]) -> str:
    """The few Go template forms the body uses, evaluated the way Argo CD's notifier does."""
    text = IF_ELSE.sub(lambda m: m[2] if lookup(context, m[1]) else m[3], template)
    text = TO_JSON.sub(lambda m: go_json(evaluate(context, m[1])), text)
    assert "{{" not in text and "}}" not in text, text
    return text


def config_map() -> dict[str, Any]:
    loaded = yaml.safe_load(TEMPLATE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def body_template() -> str:
    template = yaml.safe_load(config_map()["data"]["template.promoter-health"])
    body = template["webhook"]["promoter"]["body"]
    assert template["webhook"]["promoter"]["method"] == "POST"
    assert isinstance(body, str)
    return body


def application() -> dict[str, Any]:
    loaded = json.loads((DATA / "application.json").read_bytes())
    assert isinstance(loaded, dict)
    return loaded


def test_template_file_is_a_notifications_config_map() -> None:
    cm = config_map()
    assert (cm["apiVersion"], cm["kind"]) == ("v1", "ConfigMap")
    assert cm["metadata"]["name"] == "argocd-notifications-cm"
    assert set(cm["data"]) == {
        "service.webhook.promoter",
        "template.promoter-health",
        "trigger.on-promoter-health",
    }
    service = yaml.safe_load(cm["data"]["service.webhook.promoter"])
    assert re.fullmatch(r"https?://[^/]+/hooks/argocd", service["url"])
    assert service["headers"] == [
        {"name": "Content-Type", "value": "application/json"},
        {"name": "Authorization", "value": "Bearer $promoter-webhook-token"},
    ]


def test_trigger_sends_the_template_on_every_health_change() -> None:
    conditions = yaml.safe_load(config_map()["data"]["trigger.on-promoter-health"])
    assert all(c["send"] == ["promoter-health"] for c in conditions)
    whens = " ".join(c["when"] for c in conditions)
    for value in ("Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"):
        assert f"'{value}'" in whens
    assert "'Failed'" in whens and "'Error'" in whens
    assert all(set(c) <= {"description", "when", "send", "oncePer"} for c in conditions)


def test_template_documents_annotations_and_subscription() -> None:
    text = TEMPLATE_FILE.read_text()
    assert 'notifications.argoproj.io/subscribe.on-promoter-health.promoter: ""' in text
    assert "promoter.dev/pipeline: payments" in text
    assert "promoter.dev/environment: prod" in text


def test_go_template_actions_are_balanced() -> None:
    body = body_template()
    actions = re.findall(r"\{\{(.*?)\}\}", body)
    assert body.count("{{") == body.count("}}") == len(actions)
    opened = sum(a.startswith("if ") for a in actions)
    assert opened == actions.count("else") == actions.count("end") == 4
    assert all(a.count("(") == a.count(")") and a.count('"') % 2 == 0 for a in actions)


def test_template_renders_the_documented_body_for_the_reference_application() -> None:
    rendered = render(body_template(), {"app": application()})
    assert json.loads(rendered) == {
        "app": "payments-prod",
        "pipeline": "payments",
        "environment": "prod",
        "health": "Healthy",
        "sync": "Synced",
        "revision": OLD,
        "phase": "Succeeded",
        "finishedAt": "2026-03-04T11:06:31Z",
        "images": [f"harbor.example.com/payments/api@{DIGEST}"],
    }
    result = argocd.normalize(deliver(rendered.encode()), CONFIG, NOW)
    assert result == run("healthy-synced.json")


def test_template_renders_before_the_first_sync_and_without_annotations() -> None:
    app = application()
    del app["status"]["operationState"]
    app["status"]["summary"] = {}
    app["status"]["health"] = {"status": "Missing"}
    del app["metadata"]["annotations"]
    rendered = json.loads(render(body_template(), {"app": app}))
    assert rendered == {
        "app": "payments-prod",
        "pipeline": "",
        "environment": "",
        "health": "Missing",
        "sync": "Synced",
        "revision": OLD,
        "phase": None,
        "finishedAt": None,
        "images": None,
    }
    result = argocd.normalize(deliver(json.dumps(rendered).encode()), CONFIG, NOW)
    assert result.ignored and not result.events


def test_body_fixtures_are_what_the_template_renders() -> None:
    """Every fixture body has exactly the template's keys (it was rendered from it)."""
    keys = set(json.loads(render(body_template(), {"app": application()})))
    for path in DATA.glob("*.json"):
        if path.name != "application.json":
            assert set(json.loads(path.read_bytes())) == keys, path.name
