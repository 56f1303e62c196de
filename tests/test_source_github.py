"""GitHub source: signatures, packages to image events, promoter PR reviews and closes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.core.events import parse_event
from promoter.sources import github
from promoter.sources.base import (
    Delivery,
    DeliveryError,
    MalformedError,
    MediaTypeError,
    Normalized,
    SignatureError,
    SourceConfig,
)
from promoter.sources.verify import github_signature

DATA = Path(__file__).parent / "data" / "webhooks" / "github"
SECRET = "s3cr3t"
CONFIG = SourceConfig(secret=SECRET)
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
DELIVERY_ID = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
DIGEST = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
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


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(raw(name))
    return loaded


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
    headers = {"User-Agent": "GitHub-Hookshot/a1b2c3d"}
    if event is not None:
        headers["X-GitHub-Event"] = event
    if delivery_id is not None:
        headers["X-GitHub-Delivery"] = delivery_id
    if content_type is not None:
        headers["Content-Type"] = content_type
    if signature is None and secret is not None:
        signature = github_signature(secret, body)
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return Delivery.of(body, headers)


def run(body: bytes, event: str | None, config: SourceConfig = CONFIG, **kwargs: Any) -> Normalized:
    return github.normalize(delivery(body, event, **kwargs), config, NOW)


def only_event(result: Normalized) -> dict[str, Any]:
    assert result.ignored == ()
    assert len(result.events) == 1
    return result.events[0]


def only_reason(result: Normalized) -> str:
    assert result.events == ()
    assert len(result.ignored) == 1
    return result.ignored[0]


def image_event(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": DELIVERY_ID,
        "source": "/hooks/github",
        "type": "promoter.image.built",
        "time": "2026-03-04T10:15:31Z",
        "datacontenttype": "application/json",
        "data": {
            "repository": "ghcr.io/acme/api",
            "tag": "1.4.2",
            "digest": DIGEST,
            "labels": LABELS,
        }
        | data,
    }


def review_event(**data: Any) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": DELIVERY_ID,
        "source": "/hooks/github",
        "type": "promoter.pr.reviewed",
        "time": "2026-03-04T11:02:11Z",
        "datacontenttype": "application/json",
        "data": {
            "pipeline": "payments",
            "environment": "prod",
            "reviewer": "bob",
            "teams": [],
            "state": "approved",
            "pr": 42,
            "bundle": "3c9f0e21b7aa",
        }
        | data,
    }


def closed_event(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": DELIVERY_ID,
        "source": "/hooks/github",
        "type": "promoter.pr.closed",
        "time": "2026-03-04T11:05:40Z",
        "datacontenttype": "application/json",
        "data": data,
    }


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


# --- pull_request_review ---------------------------------------------------------------------


def review(**changes: Any) -> dict[str, Any]:
    payload = load("pull_request_review-submitted-promoter.json")
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = payload
        for key in parents:
            target = target[key]
        target[last] = value
    return payload


def test_approved_review_of_a_promoter_pr() -> None:
    result = run(raw("pull_request_review-submitted-promoter.json"), "pull_request_review")
    assert only_event(result) == review_event()


def test_changes_requested_is_compared_case_insensitively() -> None:
    payload = review(review__state="CHANGES_REQUESTED", review__user={"login": "carol"})
    event = only_event(run(encode(payload), "pull_request_review"))
    assert event == review_event(state="changes_requested", reviewer="carol")


def test_comment_review_is_ignored() -> None:
    reason = only_reason(run(encode(review(review__state="commented")), "pull_request_review"))
    assert reason == (
        "review of PR #42 is 'commented': promoter counts only approvals and change requests"
    )


@pytest.mark.parametrize("action", ["dismissed", "edited"])
def test_other_review_actions_are_ignored(action: str) -> None:
    reason = only_reason(run(encode(review(action=action)), "pull_request_review"))
    assert reason == f"pull_request_review action {action!r} is ignored; only 'submitted' is"


def test_review_of_an_older_commit_is_ignored() -> None:
    payload = review(review__commit_id="1405df66cbe219b0bf6355bc3d60361a8376b6b4")
    reason = only_reason(run(encode(payload), "pull_request_review"))
    assert reason.startswith("review of an older commit of PR #42 (1405df66cbe2")


def test_review_of_a_non_promoter_pr_is_ignored() -> None:
    reason = only_reason(run(raw("pull_request_review-submitted.json"), "pull_request_review"))
    assert reason == (
        "PR #42 is not a promoter PR: its branch 'promote/payments-api-1.4.2' is not "
        "promoter/<p>/<env>"
    )


def test_trailers_that_disagree_with_the_branch_are_not_trusted() -> None:
    body = PR_BODY.replace("Promoter-Environment: prod", "Promoter-Environment: staging")
    reason = only_reason(run(encode(review(pull_request__body=body)), "pull_request_review"))
    assert reason.startswith("PR #42: its branch names payments/prod but its body's trailers")
    assert "name payments/staging" in reason


@pytest.mark.parametrize("body", [None, "", "Promote payments to prod.", "a\n\nFixes: #3\n"])
def test_review_without_a_bundle_trailer_has_no_bundle(body: str | None) -> None:
    event = only_event(run(encode(review(pull_request__body=body)), "pull_request_review"))
    expected = review_event()
    del expected["data"]["bundle"]
    assert event == expected


def test_lf_and_crlf_bodies_read_the_same_trailers() -> None:
    lf = only_event(run(encode(review(pull_request__body=PR_BODY)), "pull_request_review"))
    assert lf == review_event()
    assert "\r\n" in load("pull_request_review-submitted-promoter.json")["pull_request"]["body"]


# --- pull_request closed ---------------------------------------------------------------------


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


def test_merged_promoter_pr() -> None:
    result = run(raw("pull_request-closed-promoter.json"), "pull_request")
    assert only_event(result) == closed_event(MERGED)


def test_closed_unmerged_promoter_pr() -> None:
    payload = closed(merged=False, merged_at=None, merged_by=None)
    payload["sender"] = {"login": "carol", "id": 1003, "type": "User"}
    event = only_event(run(encode(payload), "pull_request"))
    assert event == closed_event(
        {
            "pipeline": "payments",
            "environment": "prod",
            "bundle": "3c9f0e21b7aa",
            "merged": False,
            "pr": 42,
            "by": "carol",
        }
    )


def test_merged_without_merged_by_names_the_sender() -> None:
    payload = closed(merged_by=None)
    payload["sender"]["login"] = "merge-queue[bot]"
    event = only_event(run(encode(payload), "pull_request"))
    assert event == closed_event(MERGED | {"by": "merge-queue[bot]"})


def test_closed_without_a_bundle_trailer_is_ignored() -> None:
    reason = only_reason(run(encode(closed(body="Automated promotion")), "pull_request"))
    assert reason.startswith("PR #42: the PR body lacks the Promoter-Bundle trailer")


def test_closed_non_promoter_pr_is_ignored() -> None:
    reason = only_reason(run(raw("pull_request-closed.json"), "pull_request"))
    assert reason.startswith("PR #42 is not a promoter PR")


def test_closed_pr_trailer_mismatch_is_ignored() -> None:
    body = PR_BODY.replace("Promoter-Pipeline: payments", "Promoter-Pipeline: checkout")
    reason = only_reason(run(encode(closed(body=body)), "pull_request"))
    assert "trailers name checkout/prod" in reason


@pytest.mark.parametrize("action", ["opened", "synchronize", "reopened", "edited"])
def test_other_pull_request_actions_are_ignored(action: str) -> None:
    payload = load("pull_request-closed-promoter.json") | {"action": action}
    reason = only_reason(run(encode(payload), "pull_request"))
    assert reason == f"pull_request action {action!r} is ignored; only 'closed' is"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("promoter/payments/prod", ("payments", "prod")),
        ("refs/heads/promoter/web-app/eu-1", ("web-app", "eu-1")),
        ("promoter/payments", None),
        ("promoter/payments/prod/extra", None),
        ("promoter/Payments/prod", None),
        ("promoter/payments/-prod", None),
        ("promoter//prod", None),
        ("promote/payments/prod", None),
        ("promoter/payments/prod\n", None),
        ("", None),
    ],
)
def test_parse_branch(ref: str, expected: tuple[str, str] | None) -> None:
    assert github.parse_branch(ref) == expected


# --- malformed deliveries --------------------------------------------------------------------


def _review_with(path: str, value: object) -> bytes:
    return encode(review(**{path: value}))


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
        ("pull_request_review", _review_with("pull_request__number", "42"), r"must be int"),
        ("pull_request_review", _review_with("review__user", None), r"review.user must be a"),
        ("pull_request_review", _review_with("review__submitted_at", "soon"), r"not an RFC"),
        (
            "pull_request_review",
            _review_with("review__submitted_at", "0001-01-01T00:00:00+01:00"),
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
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def _paths(value: object, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value: Any, path: tuple[Any, ...], new: object) -> Any:
    if not path:
        return new
    copied = copy.deepcopy(value)
    target = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copied


def _outcome(sent: Delivery) -> Normalized | DeliveryError:
    try:
        return github.normalize(sent, SourceConfig(), NOW)
    except DeliveryError as exc:
        return exc


def _normalizes_or_rejects(sent: Delivery) -> None:
    outcome = _outcome(sent)
    if isinstance(outcome, DeliveryError):
        assert str(outcome)
        assert outcome.status in {400, 415}
        return
    for event in outcome.events:
        parse_event(event)
    assert all(outcome.ignored)


@given(st.sampled_from(FIXTURES), st.data())
def test_mutated_payloads_only_ever_raise_delivery_errors(
    fixture: tuple[str, str], data: st.DataObject
) -> None:
    event, name = fixture
    payload = load(name)
    path = data.draw(st.sampled_from(list(_paths(payload))))
    mutated = _replace(payload, path, data.draw(JSON_VALUES))
    _normalizes_or_rejects(delivery(encode(mutated), event, secret=None))


@given(
    st.sampled_from([e for e, _ in FIXTURES] + ["ping", "workflow_run"]),
    st.binary(max_size=64),
    st.sampled_from([JSON, FORM]),
)
def test_arbitrary_bytes_only_ever_raise_delivery_errors(
    event: str, body: bytes, content_type: str
) -> None:
    _normalizes_or_rejects(delivery(body, event, secret=None, content_type=content_type))
