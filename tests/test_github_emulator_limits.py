"""The GitHub emulator's rate limits, injected faults and authentication (tokens and Apps)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import jwt
import pytest
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubIntegration,
    GithubRetry,
    RateLimitExceededException,
)

from promoter.testing.github_emulator import App, Emulator, Users, running
from promoter.testing.github_emulator.client import app_key_pair, credential_env, github_client
from promoter.testing.github_emulator.gitrepo import GIT, git_env
from promoter.testing.github_emulator.users import stable_id


class Clock:
    """A clock tests move by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, users: Users | None = None, **options: Any) -> Iterator[Emulator]:
    with running(tmp_path / "github", users, **options) as emulator:
        emulator.create_repo("acme", "deploy", files={"a.txt": "1\n"})
        yield emulator


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emu(tmp_path: Path, clock: Clock) -> Iterator[Emulator]:
    yield from make(tmp_path, clock=clock)


@pytest.fixture
def gh(emu: Emulator) -> Iterator[Github]:
    client = github_client(emu.api_url, "alice")
    yield client
    client.close()


def control(emu: Emulator, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.base_url + path, data=data, method=method)  # noqa: S310 (loopback http)
    with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback http)
        return json.loads(response.read())


def pull_request(emu: Emulator, gh: Github, name: str = "feat") -> Any:
    emu.commit("acme", "deploy", name, {f"{name}.txt": "x\n"}, f"add {name}")
    return gh.get_repo("acme/deploy").create_pull(base="main", head=name, title=name)


# --- primary and secondary limits ---------------------------------------------------------------


def test_every_response_carries_rate_limit_headers_and_rate_limit_is_free(
    tmp_path: Path, clock: Clock
) -> None:
    for emu in make(tmp_path, clock=clock, rate_limit=3):
        gh = github_client(emu.api_url, "alice")
        repo = gh.get_repo("acme/deploy")
        headers = repo.raw_headers
        assert headers["x-ratelimit-limit"] == "3"
        assert headers["x-ratelimit-remaining"] == "2"
        assert headers["x-ratelimit-used"] == "1"
        assert headers["x-ratelimit-resource"] == "core"
        assert int(headers["x-ratelimit-reset"]) == int(clock.now) + 3600
        assert gh.rate_limiting == (2, 3)
        assert gh.get_rate_limit().rate.remaining == 2
        assert gh.get_rate_limit().resources.core.remaining == 2
        gh.get_repo("acme/deploy")
        gh.get_repo("acme/deploy")
        with pytest.raises(RateLimitExceededException) as raised:
            gh.get_repo("acme/deploy")
        assert raised.value.status == 403
        assert (
            raised.value.data["message"]
            == f"API rate limit exceeded for user ID {stable_id('alice')}."
        )
        assert headers_of(raised.value)["x-ratelimit-remaining"] == "0"
        other = github_client(emu.api_url, "bob")
        assert other.get_repo("acme/deploy").full_name == "acme/deploy"  # limits are per login
        clock.now += 3600
        assert gh.get_repo("acme/deploy").raw_headers["x-ratelimit-remaining"] == "2"
        gh.close()
        other.close()


def test_secondary_limit_refuses_writes_over_the_minutes_budget(
    tmp_path: Path, clock: Clock
) -> None:
    for emu in make(tmp_path, clock=clock, secondary_writes_per_minute=3):
        gh = github_client(emu.api_url, "alice")
        pr = pull_request(emu, gh)
        pr.create_issue_comment("1")
        pr.create_issue_comment("2")
        with pytest.raises(RateLimitExceededException) as raised:
            pr.create_issue_comment("3")
        assert raised.value.data["message"].startswith(
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
            "again. If you reach out to GitHub Support for help, please include the request ID "
        )
        assert headers_of(raised.value)["retry-after"] == "60"
        assert emu.secondary_limit_hits == 1
        gh.get_repo("acme/deploy")  # reads are not content creation
        clock.now += 30
        with pytest.raises(RateLimitExceededException):
            pr.create_issue_comment("3")
        clock.now += 31
        pr.create_issue_comment("3")
        assert emu.secondary_limit_hits == 2
        gh.close()


# --- faults -------------------------------------------------------------------------------------


def test_5xx_is_not_applied_but_5xx_after_is(emu: Emulator, gh: Github) -> None:
    repo = gh.get_repo("acme/deploy")
    emu.commit("acme", "deploy", "feat", {"f.txt": "x\n"}, "add f")
    emu.faults.script("POST", "/repos/{owner}/{repo}/pulls", "5xx")
    with pytest.raises(GithubException) as raised:
        repo.create_pull(base="main", head="feat", title="x")
    assert raised.value.status == 502
    assert repo.get_pulls(state="all").totalCount == 0
    emu.faults.script("POST", "POST /repos/{owner}/{repo}/pulls", "5xx-after")
    with pytest.raises(GithubException) as raised:
        repo.create_pull(base="main", head="feat", title="x")
    assert raised.value.status == 502
    with pytest.raises(GithubException) as raised:
        repo.create_pull(base="main", head="feat", title="x")
    assert raised.value.status == 422
    adopted = list(repo.get_pulls(head="acme:feat"))
    assert [p.number for p in adopted] == [1]
    faults = [(c.route, c.status, c.fault) for c in emu.calls if c.method == "POST"]
    assert faults == [
        ("POST /repos/{owner}/{repo}/pulls", 502, "5xx"),
        ("POST /repos/{owner}/{repo}/pulls", 502, "5xx-after"),
        ("POST /repos/{owner}/{repo}/pulls", 422, None),
    ]


def test_rate_limit_faults(emu: Emulator, gh: Github) -> None:
    emu.faults.script("GET", r"^/repos/acme/deploy$", "429")
    with pytest.raises(GithubException) as raised:
        gh.get_repo("acme/deploy")
    assert (raised.value.status, headers_of(raised.value)["retry-after"]) == (429, "1")
    emu.faults.script("GET", "/repos/{owner}/{repo}", "secondary", retry_after=2)
    with pytest.raises(RateLimitExceededException) as raised:
        gh.get_repo("acme/deploy")
    assert headers_of(raised.value)["retry-after"] == "2"
    emu.faults.script("GET", "/repos/{owner}/{repo}", "primary")
    with pytest.raises(RateLimitExceededException) as raised:
        gh.get_repo("acme/deploy")
    assert headers_of(raised.value)["x-ratelimit-remaining"] == "0"
    assert raised.value.data["message"].startswith("API rate limit exceeded for user ID")
    assert gh.get_repo("acme/deploy").name == "deploy"
    assert [c.fault for c in emu.calls] == ["429", "secondary", "primary", None]


def test_pygithub_retry_honours_the_emulators_retry_after(emu: Emulator) -> None:
    emu.faults.script("GET", "/repos/{owner}/{repo}", "429")
    gh = github_client(emu.api_url, "alice", retry=GithubRetry(total=3))
    assert gh.get_repo("acme/deploy").name == "deploy"
    assert [c.status for c in emu.calls] == [429, 200]
    gh.close()


def test_mergeability_faults(emu: Emulator, gh: Github) -> None:
    pr = pull_request(emu, gh)
    repo = gh.get_repo("acme/deploy")
    repo.get_pull(1)
    assert repo.get_pull(1).mergeable is True
    emu.faults.script("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "mergeable-null")
    nulled: Any = repo.get_pull(1)
    assert (nulled.mergeable, nulled.mergeable_state) == (None, "unknown")
    assert repo.get_pull(1).mergeable_state == "clean"
    emu.faults.script("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", "conflict")
    with pytest.raises(GithubException) as raised:
        pr.merge()
    assert (raised.value.status, raised.value.data["message"]) == (
        405,
        "Pull Request is not mergeable",
    )
    dirty = repo.get_pull(1)
    assert (dirty.mergeable, dirty.mergeable_state) == (False, "dirty")
    assert repo.get_pull(1).mergeable_state == "clean"
    emu.faults.script("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge", "base-modified")
    with pytest.raises(GithubException) as raised:
        pr.merge()
    assert (
        raised.value.data["message"] == "Base branch was modified. Review and try the merge again."
    )
    assert pr.merge().merged


def test_random_faults_are_reproducible_and_spare_git_and_control(
    emu: Emulator, gh: Github
) -> None:
    def pattern() -> list[str | None]:
        emu.reset_calls()
        for _ in range(12):
            with contextlib.suppress(GithubException):
                gh.get_repo("acme/deploy")
        return [c.fault for c in emu.calls]

    emu.faults.random(rate=0.5, seed=3, kinds=("5xx", "429"))
    first = pattern()
    emu.faults.random(rate=0.5, seed=3, kinds=("5xx", "429"))
    assert pattern() == first
    assert {None, "5xx"} <= set(first) or {None, "429"} <= set(first)
    emu.faults.random(rate=1.0, seed=1, kinds=("conflict",))
    assert gh.get_repo("acme/deploy").name == "deploy"  # not applicable to this route
    emu.faults.random(rate=1.0, seed=1, kinds=("5xx",))
    with pytest.raises(GithubException):
        gh.get_repo("acme/deploy")
    assert isinstance(control(emu, "GET", "/_emulator/calls"), list)
    env = git_env(credential_env("alice"))
    listed = subprocess.run(
        [GIT, "ls-remote", emu.git_url("acme", "deploy")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "refs/heads/main" in listed.stdout
    emu.faults.clear()
    assert gh.get_repo("acme/deploy").name == "deploy"


def test_faults_and_calls_over_http(emu: Emulator, gh: Github) -> None:
    spec = {"script": [{"method": "GET", "route": "/repos/{owner}/{repo}", "kind": "5xx"}]}
    assert control(emu, "POST", "/_emulator/faults", spec) == {"configured": True}
    with pytest.raises(GithubException) as raised:
        gh.get_repo("acme/deploy")
    assert raised.value.status == 502
    calls = control(emu, "GET", "/_emulator/calls")
    assert [(c["route"], c["status"], c["fault"]) for c in calls] == [
        ("GET /repos/{owner}/{repo}", 502, "5xx")
    ]
    control(emu, "POST", "/_emulator/reset", {})
    assert control(emu, "GET", "/_emulator/calls") == []
    assert emu.calls == []
    with pytest.raises(HTTPError) as raised_http:
        control(emu, "POST", "/_emulator/faults", {"script": [{"route": "/x", "kind": "boom"}]})
    assert raised_http.value.code == 400
    raised_http.value.close()


# --- authentication -----------------------------------------------------------------------------


def test_without_configured_tokens_a_token_is_its_login(emu: Emulator, gh: Github) -> None:
    pr = pull_request(emu, gh)
    zed = github_client(emu.api_url, "zed")
    comment = zed.get_repo("acme/deploy").get_pull(pr.number).create_issue_comment("hi")
    assert comment.user.login == "zed"
    assert emu.calls[-1].login == "zed"
    zed.close()
    unknown = github_client(emu.api_url, "ghs_" + "x" * 36)
    with pytest.raises(BadCredentialsException):
        unknown.get_repo("acme/deploy")
    unknown.close()


def _fixed(token: str) -> Callable[[dict[str, Any]], str]:
    def sign(_claims: dict[str, Any]) -> str:
        return token

    return sign


def headers_of(error: GithubException) -> dict[str, Any]:
    assert error.headers is not None
    return dict(error.headers)


def test_app_installation_tokens_act_as_the_bot_until_they_expire(
    tmp_path: Path, clock: Clock
) -> None:
    private, public = app_key_pair()
    users = Users(apps={42: App(public_key=public, installation_id=7, slug="promoter")})
    for emu in make(tmp_path, users, clock=clock):
        app_auth = Auth.AppAuth(42, private)
        integration = GithubIntegration(
            auth=app_auth,
            base_url=emu.api_url,
            seconds_between_requests=None,
            seconds_between_writes=None,
        )
        assert integration.get_repo_installation("acme", "deploy").id == 7
        gh = Github(
            base_url=emu.api_url,
            auth=app_auth.get_installation_auth(7),
            seconds_between_requests=None,
            seconds_between_writes=None,
            retry=None,
        )
        pr = pull_request(emu, gh)
        assert pr.user.login == "promoter[bot]"
        assert pr.merge(merge_method="squash").merged
        assert gh.get_repo("acme/deploy").get_pull(1).merged_by.login == "promoter[bot]"
        routes = [c.route for c in emu.calls]
        assert routes.count("POST /app/installations/{installation_id}/access_tokens") == 1
        clock.now += 3601
        with pytest.raises(BadCredentialsException):
            gh.get_repo("acme/deploy")
        integration.close()
        gh.close()


def test_app_jwts_are_verified(tmp_path: Path, clock: Clock) -> None:
    private, public = app_key_pair()
    other, _ = app_key_pair()
    users = Users(apps={42: App(public_key=public, installation_id=7, slug="promoter")})
    for emu in make(tmp_path, users, clock=clock):
        now = int(clock.now)
        cases = {
            "A JSON web token could not be decoded": jwt.encode(
                {"iat": now - 60, "exp": now + 300, "iss": "42"}, other, algorithm="RS256"
            ),
            "'Expiration time' claim ('exp') is too far in the future.": jwt.encode(
                {"iat": now - 60, "exp": now + 3000, "iss": "42"}, private, algorithm="RS256"
            ),
        }
        for message, token in cases.items():
            integration = GithubIntegration(
                auth=Auth.AppAuth(42, sign_func=_fixed(token)),
                base_url=emu.api_url,
                seconds_between_requests=None,
                seconds_between_writes=None,
            )
            with pytest.raises(GithubException) as raised:
                integration.get_access_token(7)
            assert (raised.value.status, raised.value.data["message"]) == (401, message)
            integration.close()
