"""`promoter ingest` and `promoter gateway` as the user runs them: real processes, real NATS."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from harness import digest
from test_cli_runtime import _env, emit_image, env_status, promoter, setup, wait_for

from promoter.runtime.natsserver import free_port
from promoter.sources.verify import github_signature

__all__ = ["setup"]  # the fixture, imported for these tests

DISTRIBUTION = "application/vnd.docker.distribution.events.v2+json"


def push_body(tag: str, n: int, event_id: str) -> bytes:
    target = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(n),
        "size": 1611,
        "repository": "acme/api",
        "url": f"https://ghcr.io/v2/acme/api/manifests/{digest(n)}",
        "tag": tag,
    }
    event = {
        "id": event_id,
        "timestamp": "2026-03-04T10:15:30Z",
        "action": "push",
        "target": target,
        "request": {"id": "r", "host": "ghcr.io", "method": "PUT", "useragent": "buildkit"},
        "actor": {},
    }
    return json.dumps({"events": [event]}, indent=3).encode()


def ingest(*args: str, state: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promoter", "ingest", *args, "--state-dir", str(state)],
        env=_env(),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dry_run_prints_one_cloudevent_per_line_and_starts_nothing(tmp_path: Path) -> None:
    body = tmp_path / "push.json"
    body.write_bytes(push_body("1.0.0", 1, "e-1"))
    state = tmp_path / "state"

    done = ingest("--source", "docker-distribution", "--dry-run", str(body), state=state)

    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events == [
        {
            "specversion": "1.0",
            "id": "e-1",
            "source": "/hooks/docker-distribution",
            "type": "promoter.image.built",
            "time": "2026-03-04T10:15:30Z",
            "datacontenttype": "application/json",
            "data": {
                "repository": "ghcr.io/acme/api",
                "tag": "1.0.0",
                "digest": digest(1),
                "labels": {},
            },
        }
    ]
    assert not (state / "nats").exists(), "a dry run must not start a server"


def test_rejections_exit_2_with_the_reason(tmp_path: Path) -> None:
    payload = b'{"zen": "Keep it logically awesome.", "hook_id": 123}'
    body = tmp_path / "ping.json"
    body.write_bytes(payload)
    headers = tmp_path / "headers.json"
    headers.write_text(
        json.dumps(
            {
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": "d-1",
                "X-Hub-Signature-256": github_signature("s3cr3t", payload),
            }
        )
    )
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    state = tmp_path / "state"
    base = ["--source", "github", "--headers", str(headers), "--dry-run"]

    good = ingest(*base, "--secret-file", str(secret), str(body), state=state)
    forged = ingest(*base, "--secret", "other", str(body), state=state)
    broken = ingest(*base, "-", state=state, stdin=b"{")

    assert (good.returncode, good.stdout) == (0, "")
    assert "ignored: " in good.stderr
    assert forged.returncode == 2
    assert "rejected (unauthorized): X-Hub-Signature-256 does not match" in forged.stderr
    assert broken.returncode == 2
    assert "rejected (malformed)" in broken.stderr


def test_ingest_publishes_once(tmp_path: Path) -> None:
    body = tmp_path / "push.json"
    body.write_bytes(push_body("1.0.0", 1, "e-1"))
    state = tmp_path / "state"

    first = ingest("--source", "docker-distribution", str(body), state=state)
    again = ingest("--source", "docker-distribution", str(body), state=state)

    assert (first.returncode, first.stdout) == (0, "promoter.image.built e-1: published\n")
    assert again.stdout == "promoter.image.built e-1: duplicate (already published; ignored)\n"


def post(port: int, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/hooks/docker-distribution",
        data=body,
        headers={"Content-Type": DISTRIBUTION},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (same)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def dev_runs(state: Path, tag: str) -> bool:
    """Whether dev runs api `tag` (False while the worker has not published the pipeline)."""
    try:
        return bool(env_status(state, "dev")["live"] == {"api": tag})
    except StopIteration:
        return False


def spawn(*args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "promoter", *args],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_gateway_and_worker_share_a_state_dir_and_outlive_each_other(
    setup: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    _remote, pipelines, state = setup
    port = free_port()
    gateway = spawn(
        "gateway", "--port", str(port), "--state-dir", str(state), log=tmp_path / "gateway.log"
    )
    run = None
    try:
        wait_for(lambda: healthy(port), "the gateway answers /healthz")
        # the gateway owns the embedded server; the worker shares it instead of waiting
        run = spawn(
            "run",
            "--pipelines",
            str(pipelines),
            "--state-dir",
            str(state),
            log=tmp_path / "run.log",
        )
        assert post(port, push_body("1.0.0", 1, "push-1"))[0] == 202
        wait_for(lambda: dev_runs(state, "1.0.0"), "dev runs 1.0.0")

        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0
        # the worker took the server over, on the same port and data: it carries on
        assert "published" in emit_image(state, "1.1.0", 2)
        wait_for(lambda: dev_runs(state, "1.1.0"), "dev runs 1.1.0")
    finally:
        for process in (gateway, run):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    assert run.returncode == 0, (tmp_path / "run.log").read_text()
    assert not (state / "nats.json").exists()
    assert promoter("status", "--json", state=state).returncode == 0
