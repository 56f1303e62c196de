"""GitHub source: signatures, headers, packages to image events, malformed deliveries."""

from __future__ import annotations

from urllib.parse import quote_plus

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from github_hooks import (
    CONFIG,
    DELIVERY_ID,
    FORM,
    JSON,
    NOW,
    SECRET,
    closed,
    delivery,
    encode,
    image_event,
    load,
    raw,
    review_with,
    run,
)
from hypothesis import given
from hypothesis import strategies as st
from webhooks import (
    only_event,
    only_reason,
)

from promoter.sources import github
from promoter.sources.base import (
    Delivery,
    MalformedError,
    MediaTypeError,
    SignatureError,
    SourceConfig,
)
from promoter.sources.verify import github_signature

# --- signatures ------------------------------------------------------------------------------


def test_official_github_vector_verifies_then_the_body_is_judged() -> None:
    secret = "It's a Secret to Everybody"
    vector = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature(secret, b"Hello, World!") == vector
    sent = delivery(b"Hello, World!", "ping", signature=vector)
    with pytest.raises(MalformedError, match=r"GitHub payload is not valid JSON") as caught:
        github.normalize(sent, SourceConfig(secret=secret), NOW)
    assert caught.value.status == 400


def test_s3cr3t_json_vector_ping_is_ignored() -> None:
    body = raw("ping.json")
    assert body == b'{"zen":"Keep it logically awesome.","hook_id":123}'
    vector = "sha256=0fc4d6f41da6ae88821f0efedff27d89b6844b753fac22fc2da1520f7c7e8158"
    reason = only_reason(run(body, "ping", signature=vector))
    assert reason == "GitHub ping: the webhook reaches promoter; a ping carries no event"


def test_s3cr3t_form_vector_ping_is_ignored() -> None:
    body = raw("ping.form")
    vector = "sha256=e4e07dc5ce34bd3a6ef3761068fd78298235ecfa82dee3b86c97a9d903368826"
    reason = only_reason(run(body, "ping", content_type=FORM, signature=vector))
    assert reason.startswith("GitHub ping")


def test_forged_signature_is_401() -> None:
    body = raw("registry_package-published.json")
    forged = github_signature("not-the-secret", body)
    with pytest.raises(SignatureError, match=r"does not match the body and the secret") as caught:
        run(body, "registry_package", signature=forged)
    assert caught.value.status == 401


def test_body_changed_after_signing_is_401() -> None:
    body = raw("ping.json")
    signature = github_signature(SECRET, body)
    with pytest.raises(SignatureError, match=r"does not match"):
        run(body.replace(b"123", b"124"), "ping", signature=signature)


def test_missing_signature_with_a_secret_is_401() -> None:
    with pytest.raises(SignatureError, match=r"X-Hub-Signature-256 is missing; set the") as caught:
        run(raw("ping.json"), "ping", secret=None)
    assert caught.value.status == 401


def test_legacy_sha1_signature_alone_is_not_enough() -> None:
    sent = Delivery.of(
        raw("ping.json"),
        {
            "Content-Type": JSON,
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": DELIVERY_ID,
            "X-Hub-Signature": "sha1=beaae209b1e005c1fcd889bc11791f3e92a9224f",
        },
    )
    with pytest.raises(SignatureError, match=r"X-Hub-Signature-256 is missing"):
        github.normalize(sent, CONFIG, NOW)


def test_no_secret_configured_accepts_unsigned_deliveries() -> None:
    body = raw("registry_package-published.json")
    result = run(body, "registry_package", SourceConfig(), secret=None)
    assert only_event(result) == image_event()


def test_signature_is_checked_before_anything_else() -> None:
    with pytest.raises(SignatureError):
        run(b"\xff not even json", "nonsense", content_type="text/plain", signature="sha256=00")


# --- headers and media types -----------------------------------------------------------------


def test_missing_event_header_is_400() -> None:
    with pytest.raises(MalformedError, match=r"X-GitHub-Event header is missing; is this a Git"):
        run(raw("ping.json"), None)


def test_missing_delivery_header_is_400() -> None:
    with pytest.raises(MalformedError, match=r"X-GitHub-Delivery header is missing"):
        run(raw("ping.json"), "ping", delivery_id=None)


def test_blank_delivery_header_counts_as_missing() -> None:
    with pytest.raises(MalformedError, match=r"X-GitHub-Delivery header is missing"):
        run(raw("ping.json"), "ping", delivery_id="  ")


@pytest.mark.parametrize(
    "content_type", ["text/plain", None, "application/xml", "application/cloudevents+json"]
)
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(
        MediaTypeError, match=r"send application/json or application/x-www-form-url"
    ):
        run(raw("ping.json"), "ping", content_type=content_type)


def test_content_type_parameters_and_case_are_accepted() -> None:
    result = run(raw("ping.json"), "ping", content_type="Application/JSON; charset=utf-8")
    assert only_reason(result).startswith("GitHub ping")


def test_unknown_events_are_ignored_with_a_reason() -> None:
    reason = only_reason(run(b'{"action":"opened"}', "issues"))
    assert reason.startswith("GitHub event 'issues' is not one promoter acts on")


# --- package / registry_package --------------------------------------------------------------


def test_registry_package_tagged_index_is_an_image_event() -> None:
    assert only_event(run(raw("registry_package-published.json"), "registry_package")) == (
        image_event()
    )


def test_package_event_is_the_same_image_event() -> None:
    assert only_event(run(raw("package-published.json"), "package")) == image_event()


def test_form_encoded_package_delivery() -> None:
    body = b"payload=" + quote_plus(raw("package-published.json")).encode()
    assert only_event(run(body, "package", content_type=FORM)) == image_event()


def test_redelivery_keeps_the_event_id() -> None:
    body = raw("package-published.json")
    assert run(body, "package") == run(body, "package")
    assert only_event(run(body, "package"))["id"] == DELIVERY_ID


def test_untagged_per_platform_manifest_is_ignored() -> None:
    reason = only_reason(run(raw("registry_package-published-untagged.json"), "registry_package"))
    assert "untagged per-platform manifest" in reason


def test_missing_container_metadata_counts_as_untagged() -> None:
    payload = load("package-published.json")
    payload["package"]["package_version"]["container_metadata"] = None
    assert "untagged" in only_reason(run(encode(payload), "package"))


def test_npm_package_is_ignored() -> None:
    reason = only_reason(run(raw("package-published-npm.json"), "package"))
    assert reason == "GitHub package of type 'npm' is not a container image"


def test_updated_action_is_ignored() -> None:
    payload = load("package-published.json") | {"action": "updated"}
    reason = only_reason(run(encode(payload), "package"))
    assert reason == "GitHub package action 'updated' is ignored; only 'published' is"


@pytest.mark.parametrize(
    ("package_type", "ecosystem"),
    [("docker", "docker"), ("Container", "CONTAINER"), (None, "container"), ("", "docker")],
)
def test_container_types_are_compared_case_insensitively(
    package_type: str | None, ecosystem: str
) -> None:
    payload = load("package-published.json")
    payload["package"]["package_type"] = package_type
    payload["package"]["ecosystem"] = ecosystem
    assert only_event(run(encode(payload), "package")) == image_event()


def test_registry_setting_and_nested_names_make_a_lower_case_repository() -> None:
    payload = load("package-published.json")
    payload["package"]["namespace"] = "Acme"
    payload["package"]["name"] = "payments/Frontend"
    config = SourceConfig(secret=SECRET, registry="Registry.Example.com:5000/")
    event = only_event(run(encode(payload), "package", config))
    assert event == image_event(repository="registry.example.com:5000/acme/payments/frontend")


def test_namespace_falls_back_to_the_owner() -> None:
    payload = load("package-published.json")
    del payload["package"]["namespace"]
    payload["package"]["owner"]["login"] = "acme-labs"
    event = only_event(run(encode(payload), "package"))
    assert event == image_event(repository="ghcr.io/acme-labs/api")


@pytest.mark.parametrize("tag_digest", [None, "", "not-a-digest"])
def test_digest_falls_back_to_the_version(tag_digest: str | None) -> None:
    payload = load("package-published.json")
    payload["package"]["package_version"]["container_metadata"]["tag"]["digest"] = tag_digest
    assert only_event(run(encode(payload), "package")) == image_event()


def test_digest_falls_back_to_the_version_name() -> None:
    payload = load("package-published.json")
    version = payload["package"]["package_version"]
    del version["container_metadata"]["tag"]["digest"]
    version["version"] = "1.4.2"
    assert only_event(run(encode(payload), "package")) == image_event()


def test_no_digest_anywhere_is_400() -> None:
    payload = load("package-published.json")
    version = payload["package"]["package_version"]
    del version["container_metadata"]["tag"]["digest"]
    version["version"] = version["name"] = "1.4.2"
    with pytest.raises(MalformedError, match=r"package.package_version carries no image digest"):
        run(encode(payload), "package")


def test_non_string_labels_are_skipped() -> None:
    payload = load("package-published.json")
    labels = payload["package"]["package_version"]["container_metadata"]["labels"]
    labels["all_labels"] = {"a": "x", "n": 1, "b": None, "l": ["y"], "t": True}
    assert only_event(run(encode(payload), "package")) == image_event(labels={"a": "x"})


@pytest.mark.parametrize("labels", [None, {}, {"description": "no all_labels"}])
def test_missing_labels_are_empty(labels: dict[str, str] | None) -> None:
    payload = load("package-published.json")
    payload["package"]["package_version"]["container_metadata"]["labels"] = labels
    assert only_event(run(encode(payload), "package")) == image_event(labels={})


def test_time_falls_back_to_the_version_then_to_now() -> None:
    payload = load("package-published.json")
    del payload["package"]["updated_at"]
    assert only_event(run(encode(payload), "package"))["time"] == "2026-03-05T12:00:00Z"
    payload["package"]["package_version"]["updated_at"] = "2026-03-04T10:15:00+01:00"
    assert only_event(run(encode(payload), "package"))["time"] == "2026-03-04T09:15:00Z"


def test_placeholder_package_time_is_skipped() -> None:
    payload = load("package-published.json")
    payload["package"]["updated_at"] = "0001-01-01T00:00:00Z"
    assert only_event(run(encode(payload), "package"))["time"] == "2026-03-05T12:00:00Z"


def test_workflow_run_is_ignored_because_it_has_no_digest() -> None:
    reason = only_reason(run(raw("workflow_run-completed.json"), "workflow_run"))
    assert "carries no image digest" in reason
    assert "package/registry_package event" in reason
    assert "never be promoted without the digest" in reason


# --- malformed deliveries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "body", "message"),
    [
        ("package", b"[]", r"GitHub payload must be a JSON object, got list"),
        ("package", b"42", r"GitHub payload must be a JSON object, got int"),
        ("package", b"null", r"GitHub payload must be a JSON object, got null"),
        ("package", b"{not json", r"GitHub payload is not valid JSON"),
        ("package", b'{"a": "\xff"}', r"GitHub payload is not UTF-8"),
        ("package", b"{}", r"^action is missing$"),
        ("package", b'{"action":"published"}', r"^package is missing$"),
        (
            "registry_package",
            b'{"action":"published","registry_package":[]}',
            r"^registry_package must be a JSON object, got list$",
        ),
        (
            "pull_request",
            b'{"action":"closed","pull_request":null}',
            r"pull_request must be a JSON",
        ),
        ("pull_request_review", review_with("pull_request__number", "42"), r"must be int"),
        ("pull_request_review", review_with("review__user", None), r"review.user must be a"),
        ("pull_request_review", review_with("review__submitted_at", "soon"), r"not an RFC"),
        (
            "pull_request_review",
            review_with("review__submitted_at", "0001-01-01T00:00:00+01:00"),
            r"review.submitted_at '0001-01-01T00:00:00\+01:00' is out of range",
        ),
        ("pull_request", encode(closed(merged="yes")), r"pull_request.merged must be bool"),
        ("pull_request", encode(closed(closed_at=None)), r"pull_request.closed_at is missing"),
    ],
)
def test_malformed_payloads_are_400(event: str, body: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message) as caught:
        run(body, event)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"zen=hi", r"form body has no payload field; GitHub sends payload=<JSON>"),
        (b"payload=%7Bnope", r"form payload field is not valid JSON"),
        (b"payload=%ff", r"form body is not UTF-8"),
        (b"payload=%5B%5D", r"GitHub payload must be a JSON object, got list"),
    ],
)
def test_malformed_form_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(MalformedError, match=message):
        run(body, "package", content_type=FORM)


# --- nothing but DeliveryError escapes -------------------------------------------------------

FIXTURES = [
    ("registry_package", "registry_package-published.json"),
    ("package", "package-published.json"),
    ("registry_package", "registry_package-published-untagged.json"),
    ("pull_request_review", "pull_request_review-submitted-promoter.json"),
    ("pull_request", "pull_request-closed-promoter.json"),
]


def normalizes_or_rejects(sent: Delivery) -> None:
    check_outcome(outcome(lambda: github.normalize(sent, SourceConfig(), NOW)), {400, 415})


@given(st.sampled_from(FIXTURES), st.data())
def test_mutated_payloads_only_ever_raise_delivery_errors(
    fixture: tuple[str, str], data: st.DataObject
) -> None:
    event, name = fixture
    payload = load(name)
    mutated = replaced(payload, data.draw(st.sampled_from(paths(payload))), data.draw(json_values))
    normalizes_or_rejects(delivery(encode(mutated), event, secret=None))


@given(
    st.sampled_from([e for e, _ in FIXTURES] + ["ping", "workflow_run"]),
    st.binary(max_size=64),
    st.sampled_from([JSON, FORM]),
)
def test_arbitrary_bytes_only_ever_raise_delivery_errors(
    event: str, body: bytes, content_type: str
) -> None:
    normalizes_or_rejects(delivery(body, event, secret=None, content_type=content_type))
