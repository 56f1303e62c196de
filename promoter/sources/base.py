"""What every webhook source adapter shares: the delivery, its outcome and the rejections."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from promoter.core.events import parse_event, structured_event
from promoter.errors import EventError

__all__ = [
    "Adapter",
    "Delivery",
    "DeliveryError",
    "MalformedError",
    "MediaTypeError",
    "Normalized",
    "SignatureError",
    "SourceConfig",
    "bare_host",
    "cloud_event",
    "field_of",
    "ignored",
    "json_kind",
    "kind_of",
    "parse_json",
    "prefixed",
    "required_text",
    "rfc3339",
    "stable_id",
    "text_of",
]

RejectionKind = Literal["unauthorized", "malformed", "unsupported-media-type"]


class DeliveryError(EventError):
    """A delivery promoter refuses; `status` is the HTTP answer, the message the reason."""

    status = 400
    kind: RejectionKind = "malformed"


class SignatureError(DeliveryError):
    """The signature or shared secret is missing or wrong."""

    status = 401
    kind: RejectionKind = "unauthorized"


class MalformedError(DeliveryError):
    """The body or a header is not what the source sends."""


class MediaTypeError(DeliveryError):
    """The Content-Type is not one this source sends."""

    status = 415
    kind: RejectionKind = "unsupported-media-type"


@dataclass(frozen=True)
class Delivery:
    """One webhook request: the raw body exactly as received and its headers.

    Header names are kept lower-cased; signatures are checked over `body`, never over
    re-serialized JSON.
    """

    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, body: bytes, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()
    ) -> Delivery:
        """A delivery with its header names lower-cased (the first of repeated names wins)."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        lowered: dict[str, str] = {}
        for name, value in items:
            lowered.setdefault(str(name).lower(), str(value))
        return cls(body, lowered)

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name), or None."""
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ('' when absent)."""
        value = self.header("content-type") or ""
        return value.split(";", 1)[0].strip().lower()

    def require_media_type(self, *allowed: str, missing_ok: bool = False) -> str:
        """The media type if it is one of `allowed`; MediaTypeError otherwise."""
        media = self.media_type
        if media in allowed or (missing_ok and not media):
            return media
        shown = media or "no Content-Type"
        raise MediaTypeError(f"{shown} is not accepted here; send {' or '.join(allowed)}")

    def json(self, what: str = "body") -> Any:
        """The body parsed as JSON; MalformedError says why it is not."""
        return parse_json(self.body, what)


def parse_json(raw: bytes | str, what: str) -> Any:
    """Parse JSON text; MalformedError names `what` and the position of the problem."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise MalformedError(f"{what} is not UTF-8 text") from None
    except ValueError as exc:
        raise MalformedError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise MalformedError(f"{what} JSON is nested too deeply") from None


@dataclass(frozen=True)
class SourceConfig:
    """How one source is set up: its secret and the few knobs some sources have."""

    secret: str | None = field(default=None, repr=False)
    registry: str | None = None
    pipeline_label: str = "promoter_pipeline"
    environment_label: str = "promoter_env"
    max_age: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Normalized:
    """What a delivery stands for: promoter events to publish and why the rest was ignored."""

    events: tuple[dict[str, Any], ...] = ()
    ignored: tuple[str, ...] = ()

    def __add__(self, other: Normalized) -> Normalized:
        return Normalized(self.events + other.events, self.ignored + other.ignored)


def ignored(reason: str) -> Normalized:
    """A valid delivery that stands for no event, and why."""
    return Normalized(ignored=(reason,))


class Adapter(Protocol):
    """Turns one delivery of a source into promoter events, or raises DeliveryError."""

    def __call__(self, delivery: Delivery, config: SourceConfig, now: datetime) -> Normalized:
        """Verify and normalize `delivery` as of `now`."""
        ...


def stable_id(*parts: object) -> str:
    """A deterministic event id from the source's own identity of an event."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


_FRACTION = re.compile(r"(\.\d{6})\d+")


def rfc3339(value: object, what: str) -> datetime:
    """Parse an RFC 3339 timestamp (nanoseconds, `Z`); MalformedError if it is not one."""
    if not isinstance(value, str):
        raise MalformedError(f"{what} must be an RFC 3339 timestamp string, got {kind_of(value)}")
    text = _FRACTION.sub(r"\1", value.strip()).replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedError(f"{what} {value!r} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise MalformedError(f"{what} {value!r} has no time zone")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise MalformedError(f"{what} {value!r} is out of range") from None


def kind_of(value: object) -> str:
    """What a parsed JSON value is, for messages: "null" for None, else its type's name."""
    return "null" if value is None else type(value).__name__


_KIND_WORDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def json_kind(value: object) -> str:
    """What a parsed JSON value is, in JSON's words: "null", "an object", ..., "a number"."""
    if value is None:
        return "null"
    return _KIND_WORDS.get(type(value), "a number")


@contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Prefix the message of any DeliveryError raised inside with `prefix`, keeping its class."""
    try:
        yield
    except DeliveryError as exc:
        raise type(exc)(f"{prefix}{exc}") from None


def field_of(
    obj: object, path: str, kind: type | tuple[type, ...], *, optional: bool = False
) -> Any:
    """`obj[a][b]...` for a dotted `path`, checked to be `kind`; MalformedError names the path.

    With `optional`, a missing or null value is None instead of an error.
    """
    current = obj
    walked: list[str] = []
    for key in path.split("."):
        walked.append(key)
        if not isinstance(current, Mapping):
            where = ".".join(walked[:-1]) or "body"
            raise MalformedError(f"{where} must be a JSON object, got {kind_of(current)}")
        current = current.get(key)
    if current is None and optional:
        return None
    if current is None:
        raise MalformedError(f"{path} is missing")
    if not isinstance(current, kind) or (isinstance(current, bool) and bool not in _kinds(kind)):
        names = " or ".join(k.__name__ for k in _kinds(kind))
        raise MalformedError(f"{path} must be {names}, got {kind_of(current)}")
    return current


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def text_of(obj: object, path: str, *, optional: bool = False) -> str | None:
    """A string field; empty strings count as missing when `optional`."""
    value = field_of(obj, path, str, optional=optional)
    if optional and value == "":
        return None
    return value  # type: ignore[no-any-return]  # field_of checked it is a str


def required_text(obj: object, path: str) -> str:
    """A non-empty string field; MalformedError names the path when it is missing or empty."""
    value = text_of(obj, path, optional=True)
    if value is None:
        raise MalformedError(f"{path} is missing or empty")
    return value


def bare_host(registry: str) -> str:
    """`registry` without a scheme or trailing slash, as image references name it."""
    for scheme in ("https://", "http://"):
        registry = registry.removeprefix(scheme)
    return registry.rstrip("/")


def cloud_event(
    event_type: str, data: Mapping[str, Any], *, source: str, event_id: str, time: datetime
) -> dict[str, Any]:
    """A structured promoter CloudEvent, validated; MalformedError if the values do not fit."""
    event = structured_event(event_type, data, event_id=event_id, source=source, time=time)
    try:
        parse_event(event)
    except EventError as exc:
        raise MalformedError(str(exc)) from None
    return event
