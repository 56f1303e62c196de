"""Shared fixtures (a real nats-server, a test world) and Hypothesis profiles.

Hypothesis: `default` in CI; PROMOTER_HYPOTHESIS_PROFILE=long for a long run.
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
    "long", max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("PROMOTER_HYPOTHESIS_PROFILE", "default"))


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
