"""/healthz and /readyz of `promoter run --http-port`: NATS, the consumer and the repositories."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from harness import Harness

from promoter.gitops.repo import Workspace
from promoter.runtime.natsserver import free_port
from promoter.web.probes import Reachability


def probe(url: str) -> tuple[int, dict[str, Any]]:
    """GET a probe: its status and JSON body (503 too); (0, {}) while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback only)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


async def until(url: str, status: int, within: float = 30.0, holds: str = "") -> dict[str, Any]:
    """Poll `url` until it answers `status` (and its body's text holds `holds`); that body.

    Polled from a thread, so the test's own NATS connection keeps being served meanwhile.
    """
    deadline = time.monotonic() + within
    last: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        last = await asyncio.to_thread(probe, url)
        if last[0] == status and holds in json.dumps(last[1]):
            return last[1]
        await asyncio.sleep(0.1)
    pytest.fail(f"{url} never answered {status} {holds!r} within {within:.0f}s; last: {last}")


@pytest.mark.timeout(120)
async def test_readyz_flips_when_nats_goes_away_and_comes_back(world: Harness) -> None:
    world.write_pipeline("shop")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world.spawn_worker({"PROMOTER_HTTP_PORT": str(port), "PROMOTER_REPO_CHECK_INTERVAL": "1"})
    ready = await until(base + "/readyz", 200)
    assert ready == {
        "status": "ready",
        "checks": {"nats": "ok", "consumer": "ok", "repositories": "ok"},
    }

    world.server.stop(kill=True)
    down = await until(base + "/readyz", 503)
    assert down["checks"]["nats"] == "disconnected"
    assert await asyncio.to_thread(probe, base + "/healthz") == (
        200,
        {"status": "ok"},
    )  # alive: no restart wanted

    world.server.start()  # same port and store, as a restarted pod
    back = await until(base + "/readyz", 200)
    assert back["checks"]["consumer"] == "ok"
    await world.image("1.0.0", 1)  # and it works again, not just answers

    async def dev_live() -> bool:
        env = await world.maybe_env("shop", "dev")
        return env is not None and env["live"].get("api") == "1.0.0"

    await world.until(dev_live, "the worker promotes after NATS came back")


async def test_reachability_names_the_repository_that_does_not_answer(
    world: Harness, tmp_path: Path
) -> None:
    missing = tmp_path / "gone.git"
    cache = tmp_path / "repos"

    def check(url: str, branch: str) -> str | None:
        return Workspace(url, cache).reachable(branch)

    reach = Reachability(
        {
            (f"file://{world.remote}", "main"),
            (f"file://{world.remote}", "nope"),
            (str(missing), "main"),
        },
        check,
    )
    before = reach.checked
    await reach.check_once()
    assert (before, reach.checked) == (False, True)
    assert set(reach.problems) == {f"file://{world.remote}#nope", f"{missing}#main"}
    assert "has no branch nope" in reach.problems[f"file://{world.remote}#nope"]
    assert "gone.git" in reach.problems[f"{missing}#main"]
    assert not (cache / "gone").exists()  # a check clones nothing


@pytest.mark.timeout(120)
async def test_readyz_is_503_while_a_repository_is_unreachable(world: Harness) -> None:
    world.write_pipeline("shop")
    hidden = world.remote.with_name("hidden.git")
    world.remote.rename(hidden)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    world.spawn_worker({"PROMOTER_HTTP_PORT": str(port), "PROMOTER_REPO_CHECK_INTERVAL": "1"})
    down = await until(base + "/readyz", 503, holds="unreachable: ")
    assert down["checks"]["nats"] == "ok"
    assert down["checks"]["repositories"].startswith(f"unreachable: file://{world.remote}#main")
    hidden.rename(world.remote)
    await until(base + "/readyz", 200)
