"""Hypothesis throws bytes, JSON and mangled real payloads at every source: reasons come out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st

from promoter.sources.base import Delivery, SourceConfig
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


def fixtures(source: str) -> list[Any]:
    """The realistic JSON bodies the source's tests use."""
    found = []
    for path in sorted((FIXTURES / source).glob("*.json")):
        try:
            found.append(json.loads(path.read_bytes()))
        except ValueError:
            continue  # a deliberately broken fixture
    return found


def check(source: str, delivery: Delivery) -> None:
    """Either valid promoter events or a DeliveryError with a reason; never anything else."""
    result = outcome(lambda: normalize(source, delivery, SourceConfig(), NOW))
    escaped = result.__cause__ if isinstance(result, InternalError) else None
    assert escaped is None, f"{source}: an exception escaped the adapter: {escaped!r}"
    check_outcome(result, {400, 401, 415})


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
    """`value` with one to three subtrees (or all of it) replaced by arbitrary JSON."""
    for _ in range(draw(st.integers(1, 3))):
        value = replaced(value, draw(st.sampled_from(paths(value))), draw(json_values))
    return value


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
