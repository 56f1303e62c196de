"""Tokens, keys and webhook secrets never reach logs, PRs, commits, records or error messages."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import aiohttp
import pytest
import structlog
from gitfixtures import install_hook, run_git
from github_world import BOT, GitHubWorld, VirtualTime, environment, github_world
from harness import Harness
from nats.js.errors import NotFoundError
from pydantic import SecretStr
from test_cli_gateway import healthy
from test_cli_runtime import wait_for
from webhooks import fixture

from promoter.errors import PromoterError
from promoter.gateway.server import Gateway, serve
from promoter.gitops.repo import Workspace
from promoter.log import configure_logging
from promoter.runtime.bus import AUDIT_STREAM, DLQ_STREAM, EVENTS_STREAM, Bus
from promoter.runtime.natsserver import free_port
from promoter.runtime.providers import GitHubSetup
from promoter.runtime.report import explain, history, status
from promoter.runtime.store import StateStore
from promoter.scm.github.auth import Credentials, connect
from promoter.sources.base import SourceConfig
from promoter.sources.verify import github_signature
from promoter.testing.github_emulator import App, Users, running
from promoter.testing.github_emulator.client import app_key_pair

pytestmark = pytest.mark.security

TOKEN = "ghp_Pr0m0+T3r/t0k3n=Zx9Qw7"
ALICE = "alice-t0ken-for-reviews"
HOOK_SECRET = "whsec-gh+Q7x/K2v=Lm3"


def encodings(secret: str) -> dict[str, str]:
    """The forms a secret takes when sent or stored: raw, URL-, form- and base64-encoded."""
    return {
        "raw": secret,
        "URL-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
        "base64": base64.b64encode(secret.encode()).decode(),
        "in a Basic auth header": base64.b64encode(f"x-access-token:{secret}".encode()).decode(),
        "JSON-escaped": json.dumps(secret)[1:-1],
    }


def assert_no_secret(where: str, text: str, *secrets: str) -> None:
    """Fail naming `where` and the form found if any form of any secret is in `text`."""
    for secret in secrets:
        for form, shown in encodings(secret).items():
            assert shown not in text, f"{form} secret {secret[:6]}... found in {where}"


@contextmanager
def structlog_to(fmt: str) -> Iterator[io.StringIO]:
    """promoter's own structlog set-up (`fmt`: json or console), writing into a buffer."""
    buffer, saved, stderr = io.StringIO(), structlog.get_config(), sys.stderr
    sys.stderr = buffer
    try:
        configure_logging("debug", fmt)
        yield buffer
    finally:
        sys.stderr = stderr
        structlog.configure(**saved)


@dataclass
class Seen:
    """Everything the flows produced that a person or another system may read."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, where: str, value: object) -> None:
        self.texts[where] = value if isinstance(value, str) else json.dumps(value, default=str)

    def assert_clean(self, *secrets: str) -> None:
        for where, text in self.texts.items():
            assert_no_secret(where, text, *secrets)


async def stream_texts(bus: Bus, stream: str) -> list[str]:
    """Every message body of `stream`."""
    info = await bus.js.stream_info(stream)
    texts: list[str] = []
    if not info.state.messages:
        return texts
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            data = (await bus.js.get_msg(stream, seq)).data or b""
        except NotFoundError:
            continue
        texts.append(data.decode(errors="replace"))
    return texts


def files_under(root: Path) -> str:
    """The bytes of every file below `root`, as text (git objects stay compressed)."""
    return "\n".join(
        p.read_bytes().decode(errors="replace") for p in sorted(root.rglob("*")) if p.is_file()
    )


@dataclass
class Flow:
    """The harness, the emulator (TOKEN is the bot's) and a gateway its webhooks reach."""

    harness: Harness
    github: GitHubWorld

    async def status_of(self, pipeline: str, env: str) -> str:
        return json.dumps(await self.harness.env(pipeline, env))

    async def until_status_says(self, pipeline: str, env: str, text: str) -> None:
        async def says() -> bool:
            return text in json.dumps(await self.harness.maybe_env(pipeline, env))

        await self.harness.until(says, f"{pipeline}/{env} shows {text!r}")

    async def until_outbox_says(self, pipeline: str, text: str) -> None:
        store = StateStore(self.harness.bus.state, self.harness.bus.js)

        async def says() -> bool:
            records = [r for r in await store.all() if r.pipeline == pipeline]
            return any(text in (e.error or "") for r in records for e in r.outbox)

        await self.harness.until(says, f"an effect of {pipeline} failed with {text!r}")


@pytest.fixture
async def flow(tmp_path: Path) -> AsyncIterator[Flow]:
    harness = await Harness(tmp_path).start()
    users = Users(tokens={TOKEN: BOT, ALICE: "alice"})
    try:
        with github_world(tmp_path, users) as github:
            gateway = Gateway(
                harness.bus, {"github": SourceConfig(secret=HOOK_SECRET)}, harness.clock
            )
            async with serve(gateway, "127.0.0.1", 0) as port:
                github.emu.add_hook(f"http://127.0.0.1:{port}/hooks/github", HOOK_SECRET)
                _write_pipelines(harness, github)
                time = VirtualTime()
                credentials = Credentials(token=SecretStr(TOKEN))
                harness.github = GitHubSetup(credentials, clock=time.clock, sleep=time.sleep)
                yield Flow(harness, github)
                await harness.stop_workers()
    finally:
        await harness.close()


def _write_pipelines(harness: Harness, github: GitHubWorld) -> None:
    gates = "{approvals: {count: 1, reviewers: [alice]}}"
    shop = github.pipeline(
        environment("dev", auto=True), environment("prod", upstream="dev", gates=gates)
    )
    (harness.pipelines / "shop.yaml").write_text(shop)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connections are refused
    lost = (
        shop.replace("name: shop", "name: lost")
        .replace("ghcr.io/acme/api", "ghcr.io/acme/lost")
        .replace(github.emu.api_url, f"{closed}/api/v3")
        .replace(github.git_url, f"{closed}/acme/deploy.git")
    )
    (harness.pipelines / "lost.yaml").write_text(lost)


async def test_the_token_never_shows_in_logs_prs_commits_records_or_errors(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness, emu, seen = flow.harness, flow.github.emu, Seen()
    with structlog_to("json") as json_logs:
        await harness.start_worker()
        await harness.image("1.0.0", 1)
        await harness.pending("shop", "prod", "1.0.0")
        hook = install_hook(flow.github.bare, "pre-receive", "#!/bin/sh\necho no >&2\nexit 1\n")
        await harness.image("1.1.0", 2)
        await flow.until_outbox_says("shop", "rejected the push")
        hook.unlink()
        await harness.image("9.9.9", 9, repository="ghcr.io/acme/lost")
        await flow.until_outbox_says("lost", "Couldn't connect to server")
    with structlog_to("console") as console_logs:
        emu.world.users.tokens.pop(TOKEN)  # the token is revoked
        await flow.until_status_says("shop", "dev", "rejected the credentials")
        pull = flow.github.github(ALICE).get_repo("acme/deploy").get_pull(_open_prod(flow))
        pull.create_review(event="APPROVE")  # its webhook makes promoter read the PR: 401
        await harness.until(lambda: _dead_lettered(harness.bus), "the review is dead-lettered")
        seen.add("a direct call's exception", await _failure_of_a_direct_call(flow))
    seen.add("structlog JSON", json_logs.getvalue())
    seen.add("structlog console", console_logs.getvalue())
    seen.add("stdlib logging (PyGithub, git, aiohttp)", caplog.text)
    await _collect(flow, seen)
    assert "401" in seen.texts["status"] and "Couldn't connect" in seen.texts["records"]
    assert "rejected the push" in seen.texts["structlog JSON"]
    seen.assert_clean(TOKEN, HOOK_SECRET, ALICE)


def _open_prod(flow: Flow) -> int:
    repo = flow.github.github(ALICE).get_repo("acme/deploy")
    return int(repo.get_pulls(state="open", head="acme:promoter/shop/prod")[0].number)


async def _dead_lettered(bus: Bus) -> bool:
    return bool(await stream_texts(bus, DLQ_STREAM))


def _shown(exc: BaseException) -> str:
    """An exception as logs and people see it: message, repr and full traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


async def _failure_of_a_direct_call(flow: Flow) -> str:
    """What git and the API raise with the revoked token, as shown."""
    worker = flow.harness.workers[0][0]
    provider = await worker.runner.providers(worker.targets["shop"])
    with pytest.raises(PromoterError) as from_the_api:
        await provider.current("shop", "prod")
    workspace = Workspace(flow.github.git_url, flow.harness.root / "direct", token=lambda: TOKEN)
    try:
        with pytest.raises(PromoterError) as from_git:
            workspace.sync("main")
    finally:
        workspace.close()
    return _shown(from_the_api.value) + _shown(from_git.value)


async def _collect(flow: Flow, seen: Seen) -> None:
    bus, emu = flow.harness.bus, flow.github.emu
    seen.add("status", await status(bus))
    for pipeline, env in (("shop", "dev"), ("shop", "prod"), ("lost", "dev")):
        seen.add(
            f"explain {pipeline} {env}", await explain(bus, pipeline, env, flow.harness.clock())
        )
    seen.add("history", await history(bus, None))
    seen.add(
        "records", [r.model_dump(mode="json") for r in await StateStore(bus.state, bus.js).all()]
    )
    for stream in (DLQ_STREAM, AUDIT_STREAM, EVENTS_STREAM):
        seen.add(stream, await stream_texts(bus, stream))
    repo = flow.github.github(ALICE).get_repo("acme/deploy")
    for pr in repo.get_pulls(state="all"):
        seen.add(f"PR #{pr.number}", emu.pull("acme", "deploy", pr.number))
        seen.add(f"PR #{pr.number} comments", [c.body for c in pr.get_issue_comments()])
        statuses = repo.get_commit(pr.head.sha).get_statuses()
        seen.add(f"PR #{pr.number} statuses", [s.description for s in statuses])
    seen.add("commit messages", run_git(flow.github.bare, "log", "--all", "--format=%B"))
    seen.add("working clones", files_under(flow.harness.root / "state-w1"))


def _cli(harness: Harness, *args: str, env: dict[str, str]) -> str:
    """Stdout and stderr of `promoter ARGS` against the harness's server."""
    done = subprocess.run(
        [sys.executable, "-m", "promoter", *args, "--nats-url", harness.server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout + done.stderr


async def test_a_promoter_run_child_keeps_its_token_out_of_its_output_and_the_cli(
    flow: Flow,
) -> None:
    harness, seen = flow.harness, Seen()
    env = {"PROMOTER_GITHUB_TOKEN": TOKEN, "PROMOTER_LOG_FORMAT": "console",
           "PROMOTER_LOG_LEVEL": "debug", "PROMOTER_GITHUB_WRITES_PER_MINUTE": "6000",
           "PROMOTER_GITHUB_WRITES_PER_HOUR": "60000"}  # fmt: skip
    child = harness.spawn_worker(env)
    await harness.image("1.0.0", 1)
    await harness.pending("shop", "prod", "1.0.0")
    await harness.image("9.9.9", 9, repository="ghcr.io/acme/lost")
    await flow.until_outbox_says("lost", "Couldn't connect to server")
    flow.github.emu.world.users.tokens.pop(TOKEN)
    await harness.image("1.1.0", 2)
    await flow.until_status_says("shop", "dev", "rejected the credentials")
    await harness.stop_workers()
    assert child.returncode == 0
    seen.add("promoter run (console)", (harness.root / "worker-0.log").read_text())
    shell = {**os.environ, **env}  # the user's shell holds the token too
    for command in (("status", "--json"), ("explain", "shop", "dev")):
        output = await asyncio.to_thread(_cli, harness, *command, env=shell)
        seen.add(f"promoter {' '.join(command)}", output)
    assert "401" in seen.texts["promoter status --json"]
    seen.assert_clean(TOKEN)


async def test_the_gateway_child_never_shows_its_webhook_secrets(tmp_path: Path) -> None:
    secrets = {"github": HOOK_SECRET, "mlflow": "mlflow-s3c+R/t=9", "harbor": "harbor-t0k+e/n="}
    (tmp_path / "harbor-secret").write_text(secrets["harbor"] + "\n")
    env = {**os.environ, "PROMOTER_LOG_FORMAT": "json", "PROMOTER_LOG_LEVEL": "debug",
           "PROMOTER_SOURCES__GITHUB__SECRET": secrets["github"],
           "PROMOTER_SOURCES__MLFLOW__SECRET": secrets["mlflow"],
           "PROMOTER_SOURCES__HARBOR__SECRET_FILE": str(tmp_path / "harbor-secret")}  # fmt: skip
    harness = await Harness(tmp_path).start()
    port, log = free_port(), tmp_path / "gateway.log"
    child = _spawn(["gateway", "--port", str(port), "--nats-url", harness.server.url], env, log)
    try:
        answers = await _deliver_to(port, secrets)
    finally:
        child.terminate()
        child.wait(30)
        await harness.close()
    assert [status for status, _ in answers] == [202, 202, 401, 401, 401, 401, 400, 413]
    assert json.loads(answers[1][1])["duplicates"] == ["replayed-guid"]  # the CLI's replay guard
    seen = Seen()
    seen.add("promoter gateway (JSON)", log.read_text())
    seen.add("HTTP answers", [text for _, text in answers])
    assert "401" in seen.texts["promoter gateway (JSON)"]
    seen.assert_clean(*secrets.values())


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "promoter", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def _deliver_to(port: int, secrets: dict[str, str]) -> list[tuple[int, str]]:
    """Genuine, replayed, forged, mis-schemed, malformed and oversized deliveries."""
    package = fixture("github", "registry_package-published.json")
    signed = {"Content-Type": "application/json", "X-GitHub-Event": "registry_package",
              "X-GitHub-Delivery": "first-guid",
              "X-Hub-Signature-256": github_signature(secrets["github"], package)}  # fmt: skip
    harbor = fixture("harbor", "push-artifact.json")
    basic = base64.b64encode(f"x:{secrets['harbor']}".encode()).decode()
    wrong = github_signature(secrets["github"] + "x", package)
    sends = [
        ("github", package, signed),
        ("github", package, {**signed, "X-GitHub-Delivery": "replayed-guid"}),
        ("github", package, {**signed, "X-Hub-Signature-256": wrong}),
        ("harbor", harbor, {"Content-Type": "application/json", "Authorization": f"Basic {basic}"}),
        ("harbor", harbor, {"Content-Type": "application/json",
                            "Authorization": f"Bearer {secrets['harbor']}-"}),
        ("mlflow", b"{}", {"Content-Type": "application/json", "X-MLflow-Delivery-Id": "m",
                           "X-MLflow-Timestamp": "1", "X-MLflow-Signature": "v1,AAAA"}),
        ("github", b"{", {**signed, "X-Hub-Signature-256": github_signature(secrets["github"],
                                                                             b"{")}),
        ("github", b" " * (2 << 20), signed),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_for, lambda: healthy(port), "the gateway answers /healthz")
    async with aiohttp.ClientSession() as session:
        answers = []
        for source, body, headers in sends:
            data = io.BytesIO(body)  # a large body would otherwise block the loop while sent
            async with session.post(f"{base}/hooks/{source}", data=data, headers=headers) as r:
                answers.append((r.status, await r.text()))
        return answers


async def test_a_github_app_private_key_never_shows_in_errors_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    private, public = app_key_pair()
    key_lines = [line for line in private.splitlines() if not line.startswith("-----")]
    app = App(public_key=public, installation_id=77, slug="promoter")
    shown: list[str] = []
    with structlog_to("json") as logs, running(tmp_path / "github", Users(apps={42: app})) as emu:
        emu.create_repo("acme", "deploy", files={"a.yaml": "a: 1\n"})
        good = Credentials(app_id=42, private_key=SecretStr(private))
        _, token = connect(good, emu.api_url, "acme", "deploy")
        assert token().startswith("ghs_")  # the key works
        shown += [repr(good), str(good)]
        broken = SecretStr(private[:400])
        for credentials in (Credentials(app_id=7, private_key=SecretStr(private)),
                            Credentials(app_id=42, private_key=broken)):  # fmt: skip
            try:
                connect(credentials, emu.api_url, "acme", "deploy")[1]()
            except Exception as exc:  # noqa: BLE001 (whatever is raised, it must not show the key)
                shown.append(_shown(exc))
            else:
                raise AssertionError("a wrong App id or a broken key must fail")
    for where, text in {"errors": "\n".join(shown), "structlog": logs.getvalue(),
                        "stdlib logging": caplog.text}.items():  # fmt: skip
        found = [line for line in key_lines if line in text]
        assert not found, f"{len(found)} lines of the private key found in {where}"
