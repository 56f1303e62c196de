"""GitHub webhooks: container packages published, and reviews and closes of promoter's PRs."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from promoter.core.events import (
    DIGEST_PATTERN,
    GITHUB_WEBHOOK_SOURCE,
    IMAGE_BUILT,
    PR_CLOSED,
    PR_REVIEWED,
)
from promoter.gitops.messages import parse_trailers
from promoter.scm.base import parse_branch
from promoter.sources.base import (
    Delivery,
    MalformedError,
    Normalized,
    SourceConfig,
    cloud_event,
    field_of,
    ignored,
    kind_of,
    parse_json,
    rfc3339,
)
from promoter.sources.verify import verify_github

__all__ = ["SOURCE", "normalize", "parse_branch"]

SOURCE = GITHUB_WEBHOOK_SOURCE
DEFAULT_REGISTRY = "ghcr.io"
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_CONTAINER_TYPES = frozenset({"container", "docker"})
_VERDICTS = frozenset({"approved", "changes_requested", "dismissed"})
_JSON_KINDS = (Mapping, list, str, int, float, bool)
_ACTED_ON = "package, registry_package, pull_request_review and pull_request"

Handler = Callable[[Mapping[str, Any], str, SourceConfig, datetime], Normalized]


def normalize(delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
    """Verify one GitHub delivery and turn it into promoter events.

    Args:
        delivery: The request: raw body and headers.
        config: The source's secret (`X-Hub-Signature-256` is required when set) and registry.
        now: The time to stamp events whose payload carries none.

    Returns:
        The events the delivery stands for, or why it stands for none.

    Raises:
        SignatureError: The signature is missing or wrong.
        MediaTypeError: The Content-Type is neither JSON nor a form.
        MalformedError: A header or the payload is not what GitHub sends.
    """
    verify_github(delivery, config.secret)
    media = delivery.require_media_type(_JSON, _FORM)
    name = _header(delivery, "X-GitHub-Event")
    delivery_id = _header(delivery, "X-GitHub-Delivery")
    payload = _payload(delivery, media)
    handler = _HANDLERS.get(name)
    if handler is None:
        return ignored(
            f"GitHub event {name!r} is not one promoter acts on (it uses {_ACTED_ON}); "
            "unsubscribe the webhook from it"
        )
    return handler(payload, delivery_id, config, now)


def _header(delivery: Delivery, name: str) -> str:
    value = (delivery.header(name) or "").strip()
    if not value:
        raise MalformedError(f"{name} header is missing; is this a GitHub delivery?")
    return value


def _payload(delivery: Delivery, media: str) -> Mapping[str, Any]:
    """The JSON payload: the body itself, or the `payload` field of a form body."""
    payload = delivery.json("GitHub payload") if media == _JSON else _form_payload(delivery.body)
    if not isinstance(payload, Mapping):
        raise MalformedError(f"GitHub payload must be a JSON object, got {kind_of(payload)}")
    return payload


def _form_payload(body: bytes) -> Any:
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise MalformedError("form body is not UTF-8 percent-encoded text") from None
    values = fields.get("payload")
    if not values:
        raise MalformedError(
            "form body has no payload field; GitHub sends payload=<JSON> "
            "(or set the webhook's content type to application/json)"
        )
    return parse_json(values[0], "form payload field")


def _optional(obj: object, path: str, kind: type | tuple[type, ...]) -> Any:
    """`field_of(..., optional=True)`, where a missing or null parent also means missing."""
    current = obj
    for key in path.split("."):
        if not isinstance(current, Mapping):
            break  # not null: field_of names what is wrong
        current = current.get(key)
        if current is None:
            return None
    return field_of(obj, path, kind, optional=True)


def _object(obj: object, path: str, *, optional: bool = False) -> Mapping[str, Any] | None:
    """A JSON object field; MalformedError (naming the JSON kind found) if it is another."""
    value = _optional(obj, path, _JSON_KINDS) if optional else field_of(obj, path, _JSON_KINDS)
    if value is None or isinstance(value, Mapping):
        return value
    raise MalformedError(f"{path} must be a JSON object, got {kind_of(value)}")


def _optional_text(obj: object, path: str) -> str | None:
    """A string field; missing, null and empty are all None."""
    value = _optional(obj, path, str)
    return value or None


def _text(obj: object, path: str) -> str:
    """A required string field (may be empty)."""
    value: str = field_of(obj, path, str)
    return value


def _package(key: str) -> Handler:
    """The handler for `package` or `registry_package`: the same object under its own key."""

    def handle(
        payload: Mapping[str, Any], delivery_id: str, config: SourceConfig, now: datetime
    ) -> Normalized:
        action = _text(payload, "action")
        if action != "published":
            return ignored(f"GitHub {key} action {action!r} is ignored; only 'published' is")
        _object(payload, key)
        kind = _optional_text(payload, f"{key}.package_type") or _optional_text(
            payload, f"{key}.ecosystem"
        )
        if (kind or "").lower() not in _CONTAINER_TYPES:
            return ignored(f"GitHub {key} of type {kind!r} is not a container image")
        tag = _optional_text(payload, f"{key}.package_version.container_metadata.tag.name")
        if tag is None:
            return ignored(
                f"GitHub {key} is an untagged per-platform manifest; the tagged index of the "
                "same push stands for the image"
            )
        data = {
            "repository": _repository(payload, key, config),
            "tag": tag,
            "digest": _digest(payload, key),
            "labels": _labels(payload, key),
        }
        when = _package_time(payload, key) or now
        event = cloud_event(IMAGE_BUILT, data, source=SOURCE, event_id=delivery_id, time=when)
        return Normalized(events=(event,))

    return handle


def _repository(payload: Mapping[str, Any], key: str, config: SourceConfig) -> str:
    name = _text(payload, f"{key}.name")
    namespace = _optional_text(payload, f"{key}.namespace") or _text(payload, f"{key}.owner.login")
    registry = (config.registry or DEFAULT_REGISTRY).rstrip("/")
    return f"{registry}/{namespace}/{name}".lower()


def _digest(payload: Mapping[str, Any], key: str) -> str:
    for path in ("container_metadata.tag.digest", "version", "name"):
        value = _optional_text(payload, f"{key}.package_version.{path}")
        if value is not None and re.fullmatch(DIGEST_PATTERN, value):
            return value
    raise MalformedError(
        f"{key}.package_version carries no image digest (container_metadata.tag.digest, "
        "version or name); a tag is never promoted without its digest"
    )


def _labels(payload: Mapping[str, Any], key: str) -> dict[str, str]:
    path = f"{key}.package_version.container_metadata.labels.all_labels"
    found = _object(payload, path, optional=True) or {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def _package_time(payload: Mapping[str, Any], key: str) -> datetime | None:
    """When the package was updated; None when GitHub sent only its 0001-01-01 placeholder."""
    for path in (f"{key}.updated_at", f"{key}.package_version.updated_at"):
        value = _optional(payload, path, str)
        if value is None:
            continue
        when = rfc3339(value, path)
        if when.year > 1:
            return when
    return None


def _always_ignored(reason: str) -> Handler:
    """A handler for an event promoter never acts on, whatever it carries."""

    def handle(
        _payload: Mapping[str, Any], _delivery_id: str, _config: SourceConfig, _now: datetime
    ) -> Normalized:
        return ignored(reason)

    return handle


_WORKFLOW_RUN = (
    "GitHub workflow_run is ignored: a workflow run carries no image digest; promoter takes "
    "CI builds from the package/registry_package event of the push, so a tag can never be "
    "promoted without the digest it named"
)
_PING = "GitHub ping: the webhook reaches promoter; a ping carries no event"


@dataclass(frozen=True)
class _PromoterPR:
    """What promoter reads off one of its own PRs: its branch and its body's trailers."""

    number: int
    pipeline: str
    environment: str
    trailers: dict[str, str]


def _promoter_pr(
    payload: Mapping[str, Any], event: str, wanted: tuple[str, ...]
) -> _PromoterPR | Normalized:
    """The promoter PR an `event` with an action in `wanted` is about, or why it is ignored."""
    action = _text(payload, "action")
    if action not in wanted:
        allowed = " and ".join(repr(w) for w in wanted)
        verb = "is" if len(wanted) == 1 else "are"
        return ignored(f"{event} action {action!r} is ignored; only {allowed} {verb}")
    number = field_of(payload, "pull_request.number", int)
    ref = _text(payload, "pull_request.head.ref")
    parsed = parse_branch(ref)
    if parsed is None:
        return ignored(
            f"PR #{number} is not a promoter PR: its branch {ref!r} is not promoter/<p>/<env>"
        )
    pipeline, environment = parsed
    body = _optional(payload, "pull_request.body", str) or ""
    trailers = parse_trailers(body.replace("\r\n", "\n"))
    named = (
        trailers.get("Promoter-Pipeline", pipeline),
        trailers.get("Promoter-Environment", environment),
    )
    if named != parsed:
        return ignored(
            f"PR #{number}: its branch names {pipeline}/{environment} but its body's trailers "
            f"name {named[0]}/{named[1]}; fix the PR body or branch, promoter trusts neither"
        )
    return _PromoterPR(number, pipeline, environment, trailers)


_PRReader = Callable[[Mapping[str, Any], _PromoterPR, str], Normalized]


def _on_promoter_pr(event: str, wanted: tuple[str, ...], read: _PRReader) -> Handler:
    """The handler for `event`: `read` turns actions `wanted` on a promoter PR into its event."""

    def handle(
        payload: Mapping[str, Any], delivery_id: str, _config: SourceConfig, _now: datetime
    ) -> Normalized:
        pr = _promoter_pr(payload, event, wanted)
        return pr if isinstance(pr, Normalized) else read(payload, pr, delivery_id)

    return handle


def _pr_event(
    event_type: str, data: dict[str, Any], payload: Mapping[str, Any], stamp: str, event_id: str
) -> Normalized:
    """The PR event with `data`, dated by the payload's timestamp at path `stamp`."""
    when = rfc3339(_text(payload, stamp), stamp)
    event = cloud_event(event_type, data, source=SOURCE, event_id=event_id, time=when)
    return Normalized(events=(event,))


def _review(payload: Mapping[str, Any], pr: _PromoterPR, delivery_id: str) -> Normalized:
    state = _text(payload, "review.state").lower()
    if state not in _VERDICTS:
        return ignored(
            f"review of PR #{pr.number} is {state!r}: promoter counts only approvals, "
            "change requests and dismissals"
        )
    commit = _text(payload, "review.commit_id")
    head = _text(payload, "pull_request.head.sha")
    if state == "approved" and commit != head:  # a change request blocks whatever the head
        return ignored(
            f"review of an older commit of PR #{pr.number} ({commit}; head is now {head}); "
            "it does not count for what the PR carries now"
        )
    data: dict[str, Any] = {
        "pipeline": pr.pipeline,
        "environment": pr.environment,
        "reviewer": _text(payload, "review.user.login"),
        "teams": [],
        "state": state,
        "pr": pr.number,
    }
    if pr.trailers.get("Promoter-Bundle"):
        data["bundle"] = pr.trailers["Promoter-Bundle"]
    return _pr_event(PR_REVIEWED, data, payload, "review.submitted_at", delivery_id)


def _closed(payload: Mapping[str, Any], pr: _PromoterPR, delivery_id: str) -> Normalized:
    bundle = pr.trailers.get("Promoter-Bundle")
    if not bundle:
        return ignored(
            f"PR #{pr.number}: the PR body lacks the Promoter-Bundle trailer, so promoter cannot "
            "tell which bundle it carried; restore the trailer block promoter wrote"
        )
    merged: bool = field_of(payload, "pull_request.merged", bool)
    by = _optional_text(payload, "pull_request.merged_by.login") if merged else None
    data = {
        "pipeline": pr.pipeline,
        "environment": pr.environment,
        "bundle": bundle,
        "merged": merged,
        "pr": pr.number,
        "sha": _optional_text(payload, "pull_request.merge_commit_sha") if merged else None,
        "by": by or _optional_text(payload, "sender.login"),
    }
    present = {k: v for k, v in data.items() if v is not None}
    return _pr_event(PR_CLOSED, present, payload, "pull_request.closed_at", delivery_id)


_HANDLERS: dict[str, Handler] = {
    "package": _package("package"),
    "registry_package": _package("registry_package"),
    "pull_request_review": _on_promoter_pr(
        "pull_request_review", ("submitted", "dismissed"), _review
    ),
    "pull_request": _on_promoter_pr("pull_request", ("closed",), _closed),
    "workflow_run": _always_ignored(_WORKFLOW_RUN),
    "ping": _always_ignored(_PING),
}
