"""Hypothesis throws bytes, JSON and mangled real payloads at every source: reasons come out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from promoter.core.events import parse_event
from promoter.sources.base import Delivery, DeliveryError, Normalized, SourceConfig
from promoter.sources.registry import SOURCES, InternalError, normalize

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "data" / "webhooks"
GITHUB_EVENTS = ["package", "registry_package", "pull_request_review", "pull_request",
                 "workflow_run", "ping", "push"]  # fmt: skip
MEDIA_TYPES = [
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/vnd.docker.distribution.events.v2+json",
    "application/x-www-form-urlencoded",
    "text/plain",
    "",
]

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)


def fixtures(source: str) -> list[Any]:
    """The realistic JSON bodies the source's tests use."""
    found = []
    for path in sorted((FIXTURES / source).glob("*.json")):
        try:
            found.append(json.loads(path.read_bytes()))
        except ValueError:
            continue  # a deliberately broken fixture
    return found


def outcome(source: str, delivery: Delivery) -> Normalized | DeliveryError:
    """What normalizing gives: the result, or the rejection (anything else propagates)."""
    try:
        return normalize(source, delivery, SourceConfig(), NOW)
    except DeliveryError as exc:
        return exc


def check(source: str, delivery: Delivery) -> None:
    """Either valid promoter events or a DeliveryError with a reason; never anything else."""
    result = outcome(source, delivery)
    escaped = result.__cause__ if isinstance(result, InternalError) else None
    assert escaped is None, f"{source}: an exception escaped the adapter: {escaped!r}"
    if isinstance(result, DeliveryError):
        assert str(result).strip(), f"{source}: a rejection without a reason"
        assert result.status in (400, 401, 415)
        return
    for event in result.events:
        parse_event(event)
    assert all(reason.strip() for reason in result.ignored)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    found = {"Content-Type": draw(st.sampled_from(MEDIA_TYPES))}
    found["X-GitHub-Event"] = draw(st.sampled_from(GITHUB_EVENTS))
    found["X-GitHub-Delivery"] = draw(st.text(min_size=1, max_size=8).filter(str.isprintable))
    if draw(st.booleans()):
        found["ce-specversion"] = draw(st.sampled_from(["1.0", "0.3", ""]))
        found["ce-type"] = draw(st.sampled_from(["promoter.image.built", "x", ""]))
        found["ce-id"] = draw(st.text(max_size=5))
        found["ce-source"] = draw(st.text(max_size=5))
    return found


@st.composite
def mangled(draw: st.DrawFn, value: Any) -> Any:
    """`value` with a few subtrees replaced by arbitrary JSON (or removed)."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        changed = dict(value)
        if draw(st.booleans()):
            changed[key] = draw(mangled(value[key]))
        elif draw(st.booleans()):
            changed[key] = draw(json_values)
        else:
            del changed[key]
        return changed
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(mangled(value[index])), *value[index + 1 :]]
    return draw(json_values) if draw(st.integers(0, 4)) == 0 else value


@given(source=st.sampled_from(sorted(SOURCES)), body=st.binary(max_size=300), sent=headers())
def test_arbitrary_bytes(source: str, body: bytes, sent: dict[str, str]) -> None:
    check(source, Delivery.of(body, sent))


@given(source=st.sampled_from(sorted(SOURCES)), value=json_values, sent=headers())
def test_arbitrary_json(source: str, value: Any, sent: dict[str, str]) -> None:
    check(source, Delivery.of(json.dumps(value).encode(), sent))


@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)), sent=headers())
def test_mangled_real_payloads(data: st.DataObject, source: str, sent: dict[str, str]) -> None:
    bodies = fixtures(source)
    assert bodies, f"no fixtures for {source} under {FIXTURES / source}"
    value = data.draw(mangled(data.draw(st.sampled_from(bodies))))
    check(source, Delivery.of(json.dumps(value).encode(), sent))
