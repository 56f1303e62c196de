"""Hypothesis throws bytes, JSON and mangled real payloads at every source: reasons come out.

With and without secrets: signed deliveries reach the parsers, forged signature headers (any
text, numbers no clock shows) are refused with a reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fuzzing import check_outcome, json_values, outcome, paths, replaced
from hypothesis import given
from hypothesis import strategies as st

from promoter.sources.base import Delivery, SourceConfig
from promoter.sources.registry import SOURCES, InternalError, normalize
from promoter.sources.verify import github_signature, mlflow_signature

pytestmark = pytest.mark.fuzz

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


def check(source: str, delivery: Delivery, config: SourceConfig | None = None) -> None:
    """Either valid promoter events or a DeliveryError with a reason; never anything else."""
    result = outcome(lambda: normalize(source, delivery, config or SourceConfig(), NOW))
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


SIGNATURE_HEADERS = ["Authorization", "X-Hub-Signature-256", "X-MLflow-Signature",
                     "X-MLflow-Delivery-Id", "X-MLflow-Timestamp"]  # fmt: skip
secrets = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1)
configs = st.builds(
    SourceConfig,
    secret=secrets,
    registry=st.none() | st.sampled_from(["ghcr.io", "registry.example.com:5000", ""]),
    pipeline_label=st.sampled_from(["promoter_pipeline", "pipeline", ""]),
    environment_label=st.sampled_from(["promoter_env", "env", ""]),
    max_age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
)
header_noise = st.one_of(
    st.text(max_size=40),
    st.integers().map(str),
    st.sampled_from(["99999999999999999999", "9" * 400, "1e30", "\u0661\u0662", "v1,", "Bearer "]),
)
"""What a forger may put in a signature header: any text, numbers no clock shows."""


def signed(source: str, body: bytes, secret: str) -> dict[str, str]:
    """The headers that authenticate `body` to `source` under `secret`."""
    if source == "github":
        return {"X-Hub-Signature-256": github_signature(secret, body)}
    if source == "mlflow":
        sent = str(int(NOW.timestamp()))
        return {
            "X-MLflow-Signature": mlflow_signature(secret, "delivery-1", sent, body),
            "X-MLflow-Delivery-Id": "delivery-1",
            "X-MLflow-Timestamp": sent,
        }
    return {"Authorization": f"Bearer {secret}"}


@st.composite
def bodies(draw: st.DrawFn, source: str) -> bytes:
    """Arbitrary bytes, arbitrary JSON or one of the source's real payloads, mangled."""
    kind = draw(st.sampled_from(["bytes", "json", "mangled"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    value = draw(
        json_values if kind == "json" else mangled(draw(st.sampled_from(fixtures(source))))
    )
    return json.dumps(value).encode()


@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)), sent=headers(), config=configs)
def test_signed_deliveries_reach_the_parsers(
    data: st.DataObject, source: str, sent: dict[str, str], config: SourceConfig
) -> None:
    body = data.draw(bodies(source))
    assert config.secret is not None
    check(source, Delivery.of(body, {**sent, **signed(source, body, config.secret)}), config)


@st.composite
def forged(draw: st.DrawFn, source: str, body: bytes, secret: str) -> dict[str, str]:
    """Signed headers with some values (or other signature headers) replaced by noise."""
    found = signed(source, body, secret)
    names = sorted({*found, *SIGNATURE_HEADERS})
    for name in draw(st.sets(st.sampled_from(names), min_size=1, max_size=2)):
        found[name] = draw(header_noise)
    return found


@given(data=st.data(), source=st.sampled_from(sorted(SOURCES)), sent=headers(), config=configs)
def test_forged_signature_headers_are_refused_with_a_reason(
    data: st.DataObject, source: str, sent: dict[str, str], config: SourceConfig
) -> None:
    body = data.draw(bodies(source))
    assert config.secret is not None
    check(
        source,
        Delivery.of(body, {**sent, **data.draw(forged(source, body, config.secret))}),
        config,
    )
