"""Runtime commands as users run them: processes sharing a state dir's embedded NATS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gitfixtures import make_remote, read_remote_file
from harness import GITOPS, digest, pipeline_yaml


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTER_")}
    env["PROMOTER_LOG_FORMAT"] = "json"
    return env


def promoter(*args: str, state: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "promoter", *args, "--state-dir", str(state)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"promoter {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting until {what}")


def status(state: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(promoter("status", "--json", state=state).stdout)
    return document


def env_status(state: Path, env: str) -> dict[str, Any]:
    pipeline = next(p for p in status(state)["pipelines"] if p["name"] == "shop")
    found: dict[str, Any] = next(e for e in pipeline["environments"] if e["name"] == env)
    return found


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    remote = make_remote(tmp_path, GITOPS)
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "shop.yaml").write_text(pipeline_yaml("shop", remote))
    return remote, pipelines, tmp_path / "state"


def start_run(pipelines: Path, state: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "promoter",
                "run",
                "--pipelines",
                str(pipelines),
                "--state-dir",
                str(state),
            ],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def emit_image(state: Path, tag: str, n: int) -> str:
    return promoter(
        "emit",
        "image",
        "--repository",
        "ghcr.io/acme/api",
        "--digest",
        digest(n),
        "--tag",
        tag,
        state=state,
    ).stdout


@pytest.mark.slow
def test_commands_share_the_embedded_server_of_a_state_dir(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    remote, pipelines, state = setup
    # emitted before any worker runs: the event waits in the stream
    assert "published" in emit_image(state, "1.0.0", 1)
    assert not (state / "nats.json").exists(), "a short command must stop the server it started"
    run = start_run(pipelines, state, tmp_path / "run.log")
    try:
        wait_for((state / "nats.json").exists, "the worker's embedded server is up")
        assert "duplicate" in emit_image(state, "1.0.0", 1)
        wait_for(lambda: env_status(state, "prod")["pending"] is not None, "a prod PR is open")
        prod = env_status(state, "prod")
        assert prod["live"] == {}
        assert prod["pending"]["versions"] == {"api": "1.0.0"}
        assert any(b.startswith("approvals: needs 1 approval") for b in prod["blocked"])
        assert env_status(state, "dev")["live"] == {"api": "1.0.0"}

        explained = promoter("explain", "shop", "prod", state=state).stdout
        assert "pending: PR #3" in explained
        assert "blocked by approvals: needs 1 approval(s); has 0" in explained

        listed = promoter("prs", "--state", "open", state=state).stdout.splitlines()
        assert len(listed) == 2 and listed[1].split()[:4] == ["3", "shop", "prod", "open"]

        approved = promoter("approve", "shop", "prod", "--as", "alice", state=state).stdout
        assert "PR #3 approved by alice" in approved
        wait_for(lambda: env_status(state, "prod")["live"] == {"api": "1.0.0"}, "prod is live")
        assert "tag: 1.0.0" in (read_remote_file(remote, "main", "envs/prod/values.yaml") or "")

        promoter("hold", "shop", "prod", "--reason", "change freeze", state=state)
        wait_for(lambda: env_status(state, "prod")["held"], "prod is held")
        assert env_status(state, "prod")["hold_reason"] == "change freeze"

        lines = promoter("history", "shop", "--json", state=state).stdout.splitlines()
        actions = [json.loads(line)["action"] for line in lines]
        assert actions.count("merge") == 3
        assert actions[-1] == "hold"
        table = promoter("status", state=state).stdout
        assert "prod     api 1.0.0" in table and "held" in table
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(30) == 0
    assert not (state / "nats.json").exists()


def test_emit_rejects_bad_input_before_starting_anything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = promoter(
        "emit", "image", "--repository", "r", "--digest", "not-a-digest", state=state, check=False
    )
    assert done.returncode == 1
    assert "invalid promoter.image.built event: data.digest" in done.stderr
    assert not state.exists()
    done = promoter(
        "emit",
        "model",
        "--name",
        "m",
        "--version",
        "1",
        "--uri",
        "s3://m",
        "--metric",
        "auc",
        state=state,
        check=False,
    )
    assert done.returncode == 1
    assert "--metric 'auc' must look like KEY=VALUE" in done.stderr


def test_approve_without_an_open_pr_says_so(setup: tuple[Path, Path, Path]) -> None:
    _, _, state = setup
    done = promoter("approve", "shop", "prod", "--as", "alice", state=state, check=False)
    assert done.returncode == 1
    assert "shop/prod has no open PR to review; see `promoter prs`" in done.stderr


def test_run_refuses_github_pipelines_without_credentials(tmp_path: Path) -> None:
    done = promoter(
        "run",
        "--pipelines",
        str(Path(__file__).parent.parent / "pipelines" / "checkout.yaml"),
        state=tmp_path / "state",
        check=False,
    )
    assert done.returncode == 1
    assert "pipelines checkout open PRs on GitHub: set PROMOTER_GITHUB_TOKEN" in done.stderr
    assert not (tmp_path / "state").exists()  # refused before any server started


@pytest.mark.slow
@pytest.mark.parametrize("provider", ["local", "github"])
def test_demo_runs_from_the_command_line(tmp_path: Path, provider: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "promoter", "demo", "--provider", provider],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in (
        "✓ dev runs api 1.0.0 (auto-merged)",
        "✓ prod PR open for api 1.1.0, needs approval",
        "✓ prod runs api 1.1.0",
        "✓ prod rolled back to api 1.0.0 and held",
    ):
        assert line in out
    assert "roll back shop in prod to api 1.0.0, ranker 1" in out
    if provider == "github":
        assert "alice approves PR #6 on GitHub (webhook -> gateway -> worker)" in out
        assert "for 6 merged PRs; secondary-limit refusals: 0" in out
    assert list(tmp_path.iterdir()) == [], "the demo must clean up after itself"
