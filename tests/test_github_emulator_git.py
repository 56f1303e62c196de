"""The GitHub emulator's git side, persistence, command line and webhooks."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from aiohttp import web
from github import GithubException

from promoter.sources.base import Delivery, SourceConfig
from promoter.sources.registry import normalize
from promoter.testing.github_emulator import Emulator, Users, running, serve
from promoter.testing.github_emulator.client import credential_env, github_client
from promoter.testing.github_emulator.gitrepo import GIT, git, git_env
from promoter.testing.github_emulator.store import STATE_FILE

USERS = Users(
    tokens={"t-alice": "alice", "t-bob": "bob", "t-dave": "dave"},
    permissions={"acme/deploy": {"dave": "read"}},
)
SECRET = "hook-secret"
TRAILERS = "Promoter-Pipeline: payments\nPromoter-Environment: prod\nPromoter-Bundle: 3c9f0e21b7aa"


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with running(tmp_path / "github", USERS) as emulator:
        emulator.create_repo("acme", "deploy", files={"app.yaml": "image: v1\nreplicas: 1\n"})
        yield emulator


def run_git(cwd: Path, *args: str, who: str | None = "t-alice", check: bool = True) -> str:
    extra = {"user.name": "Tester", "user.email": "tester@example.com"}
    env = git_env(credential_env(who, extra=extra) if who else {"GIT_TERMINAL_PROMPT": "0"})
    done = subprocess.run(
        [GIT, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip() + done.stderr.strip()


def clone(emu: Emulator, into: Path, who: str = "t-alice") -> Path:
    run_git(into.parent, "clone", "--quiet", emu.git_url("acme", "deploy"), str(into), who=who)
    return into


def commit_and_push(work: Path, branch: str, files: dict[str, str], message: str) -> str:
    for name, text in files.items():
        (work / name).write_text(text)
    run_git(work, "add", "-A")
    run_git(work, "commit", "--quiet", "-m", message)
    run_git(work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
    return run_git(work, "rev-parse", "HEAD")


def bare(emu: Emulator, *args: str) -> str:
    return git(emu.root / "acme" / "deploy.git", *args).stdout.strip()


# --- smart HTTP ---------------------------------------------------------------------------------


def test_clone_and_push_with_a_credential_helper(emu: Emulator, tmp_path: Path) -> None:
    work = clone(emu, tmp_path / "work")
    assert (work / "app.yaml").read_text() == "image: v1\nreplicas: 1\n"
    sha = commit_and_push(work, "feature", {"app.yaml": "image: v2\n"}, "bump")
    assert bare(emu, "rev-parse", "refs/heads/feature") == sha
    gh = github_client(emu.api_url, "t-alice")
    assert gh.get_repo("acme/deploy").get_branch("feature").commit.sha == sha
    gh.close()
    assert emu.calls[-1].route == "GET /repos/{owner}/{repo}/branches/{branch}"
    assert all(not c.path.endswith(".git") for c in emu.calls)


def test_git_http_asks_for_credentials(emu: Emulator, tmp_path: Path) -> None:
    url = emu.git_url("acme", "deploy") + "/info/refs?service=git-upload-pack"
    with pytest.raises(HTTPError) as raised:
        urllib.request.urlopen(url)  # noqa: S310 (loopback http)
    assert raised.value.code == 401
    assert raised.value.headers["WWW-Authenticate"] == 'Basic realm="GitHub"'
    raised.value.close()
    denied = run_git(tmp_path, "ls-remote", emu.git_url("acme", "deploy"), who=None, check=False)
    assert "could not read Username" in denied
    bad = run_git(tmp_path, "ls-remote", emu.git_url("acme", "deploy"), who="nope", check=False)
    assert "Authentication failed" in bad or "401" in bad


def test_read_only_users_fetch_but_cannot_push(emu: Emulator, tmp_path: Path) -> None:
    work = clone(emu, tmp_path / "work", who="t-dave")
    (work / "x.txt").write_text("x\n")
    run_git(work, "add", "-A", who="t-dave")
    run_git(work, "commit", "--quiet", "-m", "x", who="t-dave")
    refused = run_git(work, "push", "origin", "HEAD:refs/heads/x", who="t-dave", check=False)
    assert "403" in refused
    assert "refs/heads/x" not in bare(emu, "for-each-ref")


def test_a_push_moves_the_pull_and_resets_its_mergeability(emu: Emulator, tmp_path: Path) -> None:
    work = clone(emu, tmp_path / "work")
    first = commit_and_push(work, "feat", {"app.yaml": "image: v2\nreplicas: 1\n"}, "v2")
    gh = github_client(emu.api_url, "t-alice")
    repo = gh.get_repo("acme/deploy")
    repo.create_pull(base="main", head="feat", title="v2")
    repo.get_pull(1)
    assert repo.get_pull(1).mergeable_state == "clean"
    second = commit_and_push(work, "feat", {"app.yaml": "image: v3\nreplicas: 1\n"}, "v3")
    assert second != first
    moved: Any = repo.get_pull(1)
    assert (moved.head.sha, moved.mergeable, moved.mergeable_state) == (second, None, "unknown")
    assert repo.get_pull(1).mergeable is True
    assert emu.pull("acme", "deploy", 1)["head"]["sha"] == second
    gh.close()


def test_a_conflicting_push_to_the_base_makes_the_pull_dirty(emu: Emulator, tmp_path: Path) -> None:
    work = clone(emu, tmp_path / "work")
    commit_and_push(work, "feat", {"app.yaml": "image: v2\nreplicas: 1\n"}, "v2")
    run_git(work, "reset", "--quiet", "--hard", "origin/main")
    commit_and_push(work, "main", {"app.yaml": "image: v9\nreplicas: 1\n"}, "hotfix")
    gh = github_client(emu.api_url, "t-alice")
    repo = gh.get_repo("acme/deploy")
    pr = repo.create_pull(base="main", head="feat", title="v2")
    repo.get_pull(1)
    dirty: Any = repo.get_pull(1)
    assert (dirty.mergeable, dirty.mergeable_state, dirty.merge_commit_sha) == (
        False,
        "dirty",
        None,
    )
    with pytest.raises(GithubException) as raised:
        pr.merge(merge_method="merge")
    assert (raised.value.status, raised.value.data["message"]) == (
        405,
        "Pull Request is not mergeable",
    )
    gh.close()


def test_large_pushes_and_many_refs_go_through(emu: Emulator, tmp_path: Path) -> None:
    work = clone(emu, tmp_path / "work")
    (work / "blob.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # > http.postBuffer: chunked
    commit_and_push(work, "big", {}, "big blob")
    for n in range(150):
        run_git(work, "commit", "--quiet", "--allow-empty", "-m", f"c{n}")
        run_git(work, "branch", f"b{n}")
    run_git(work, "push", "--quiet", "origin", "refs/heads/b*:refs/heads/b*")
    again = clone(emu, tmp_path / "again")  # 150 wants: a gzip-encoded request body
    assert len(run_git(again, "branch", "-r").splitlines()) > 150
    assert (again / "blob.bin").exists() is False
    run_git(again, "checkout", "--quiet", "big")
    assert (again / "blob.bin").stat().st_size == 3 * 1024 * 1024


# --- persistence --------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "github"
    with running(root, USERS) as emu:
        emu.create_repo("acme", "deploy", files={"a.txt": "1\n"})
        emu.configure_repo("acme", "deploy", required_approvals=1)
        emu.commit("acme", "deploy", "feat", {"a.txt": "2\n"}, "two")
        gh = github_client(emu.api_url, "t-alice")
        pr = gh.get_repo("acme/deploy").create_pull(base="main", head="feat", title="keep me")
        pr.create_issue_comment("remember")
        pr.add_to_labels("promote")
        gh.get_repo("acme/deploy").get_commit(pr.head.sha).create_status("success", context="ci")
        bob = github_client(emu.api_url, "t-bob")
        review = bob.get_repo("acme/deploy").get_pull(1).create_review(event="APPROVE")
        gh.close()
        bob.close()
    assert (root / "acme" / "deploy.git" / STATE_FILE).is_file()
    with running(root, USERS) as emu:
        gh = github_client(emu.api_url, "t-alice")
        repo = gh.get_repo("acme/deploy")
        kept = repo.get_pull(1)
        assert (kept.title, kept.user.login, kept.state) == ("keep me", "alice", "open")
        assert [c.body for c in kept.get_issue_comments()] == ["remember"]
        assert [label.name for label in kept.get_labels()] == ["promote"]
        assert [(r.id, r.state) for r in kept.get_reviews()] == [(review.id, "APPROVED")]
        assert repo.get_commit(kept.head.sha).get_combined_status().state == "success"
        repo.get_pull(1)
        assert repo.get_pull(1).mergeable_state == "clean"  # settings and approval kept
        emu.commit("acme", "deploy", "next", {"b.txt": "b\n"}, "b")
        assert repo.create_pull(base="main", head="next", title="n").number == 2
        assert emu.pull("acme", "deploy", 1)["title"] == "keep me"
        gh.close()


# --- command line -------------------------------------------------------------------------------


def test_command_line_prints_the_api_url_and_serves_until_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "github"
    Emulator(root).create_repo("acme", "deploy")
    users = tmp_path / "users.json"
    users.write_text('{"tokens": {"t-alice": "alice"}}')
    command = [sys.executable, "-m", "promoter.testing.github_emulator"]
    args = ["--port", "0", "--root", str(root), "--users", str(users)]
    with subprocess.Popen([*command, *args], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v3", url)
        gh = github_client(url, "t-alice")
        assert gh.get_repo("acme/deploy").full_name == "acme/deploy"
        gh.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == ""
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
    assert "--root" in shown.stdout
    assert "--users" in shown.stdout
    assert "/api/v3" in shown.stdout


# --- webhooks -----------------------------------------------------------------------------------


async def test_webhooks_are_accepted_by_promoters_github_adapter(tmp_path: Path) -> None:
    received: list[tuple[bytes, list[tuple[str, str]]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.read(), list(request.headers.items())))
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/hooks/github", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with serve(tmp_path / "github", USERS) as emu:
            emu.create_repo("acme", "deploy", files={"app.yaml": "image: v1\n"})
            emu.add_hook(f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/github", SECRET)
            emu.commit("acme", "deploy", "promoter/payments/prod", {"app.yaml": "image: v2\n"})
            head, merged = await asyncio.to_thread(_promote, emu)
            await emu.drain_hooks()
    finally:
        await runner.cleanup()
    assert [d.status for d in emu.deliveries] == [202, 202]
    now = datetime.now(UTC)
    config = SourceConfig(secret=SECRET)
    events = [normalize("github", Delivery.of(b, h), config, now).events for b, h in received]
    (reviewed,), (closed,) = events
    assert reviewed["type"] == "promoter.pr.reviewed"
    assert reviewed["data"] == {
        "pipeline": "payments",
        "environment": "prod",
        "reviewer": "bob",
        "teams": [],
        "state": "approved",
        "pr": 1,
        "bundle": "3c9f0e21b7aa",
    }
    assert closed["type"] == "promoter.pr.closed"
    assert closed["data"] == {
        "pipeline": "payments",
        "environment": "prod",
        "bundle": "3c9f0e21b7aa",
        "merged": True,
        "pr": 1,
        "sha": merged,
        "by": "alice",
    }
    assert head != merged


def test_failed_webhook_deliveries_never_break_the_api(emu: Emulator) -> None:
    emu.add_hook("http://127.0.0.1:9/unreachable", SECRET)
    emu.commit("acme", "deploy", "feat", {"app.yaml": "image: v2\n"})
    gh = github_client(emu.api_url, "t-alice")
    pr = gh.get_repo("acme/deploy").create_pull(base="main", head="feat", title="x")
    pr.edit(state="closed")
    assert pr.state == "closed"
    gh.close()
    emu.wait_for_hooks()
    assert [(d.event, d.status) for d in emu.deliveries] == [("pull_request", None)]


def _promote(emu: Emulator) -> tuple[str, str]:
    alice = github_client(emu.api_url, "t-alice")
    bob = github_client(emu.api_url, "t-bob")
    try:
        repo = alice.get_repo("acme/deploy")
        body = f"Promote payments to prod.\n\n{TRAILERS}\n"
        pr = repo.create_pull(base="main", head="promoter/payments/prod", title="p", body=body)
        bob.get_repo("acme/deploy").get_pull(pr.number).create_review(event="APPROVE")
        return pr.head.sha, pr.merge(merge_method="squash").sha
    finally:
        alice.close()
        bob.close()
