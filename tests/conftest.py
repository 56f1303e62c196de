"""Shared fixtures (a real nats-server, a test world) and Hypothesis profiles.

Hypothesis: `default` in CI; `pytest --long` (or PROMOTER_HYPOTHESIS_PROFILE=long) for the long
run: 10,000 cases per property and the full-length chaos tests.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import Harness
from hypothesis import HealthCheck, settings

from promoter.runtime.bus import Bus, connect
from promoter.runtime.natsserver import EmbeddedServer

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("PROMOTER_HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--long`: the long fuzzing and chaos runs (CI runs the short ones)."""
    parser.addoption(
        "--long",
        action="store_true",
        help="long run: 10,000 Hypothesis cases per property and full-length chaos tests",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Switch Hypothesis to the long profile under `--long`."""
    if config.getoption("--long"):
        settings.load_profile("long")


@pytest.fixture
def long_run(request: pytest.FixtureRequest) -> bool:
    """Whether this is the `--long` run (chaos tests scale their rounds by it)."""
    return bool(request.config.getoption("--long"))


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[Bus]:
    """A connection to a fresh nats-server (JetStream, temporary store) with promoter's layout."""
    server = EmbeddedServer(tmp_path / "nats").start()
    connection = await connect(server.url, name="test")
    try:
        yield connection
    finally:
        await connection.close()
        server.stop()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Harness]:
    """A nats-server, a bare gitops remote and a pipelines dir; workers are started by the test."""
    harness = await Harness(tmp_path).start()
    try:
        yield harness
    finally:
        await harness.close()
