"""Contract: every answer the GitHub emulator gives matches GitHub's official OpenAPI schemas.

One scripted PyGithub session touches every route the emulator serves, success and error
paths alike; each recorded answer is then validated against the operation's documented response
(`tests/github_openapi.py`), or, where the OpenAPI subset lacks the operation or the status, the
matching component schema (or a small schema transcribed here for the few GitHub shapes the
subset does not carry).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import jwt
import pytest
from github import Auth, Github, GithubException, GithubIntegration
from github_openapi import (
    documented_statuses,
    operation_for,
    validate_component,
    validate_response,
)
from jsonschema import Draft202012Validator

from promoter.testing.github_emulator import App, Call, Emulator, Users, running
from promoter.testing.github_emulator.app import ROUTES
from promoter.testing.github_emulator.client import app_key_pair, github_client

_REPO = "/repos/{owner}/{repo}"
_PULL = f"{_REPO}/pulls/{{pull_number}}"
_ISSUE = f"{_REPO}/issues/{{issue_number}}"

OPERATIONS = {
    f"GET {_REPO}": "repos/get",
    f"GET {_REPO}/pulls": "pulls/list",
    f"POST {_REPO}/pulls": "pulls/create",
    f"GET {_PULL}": "pulls/get",
    f"PATCH {_PULL}": "pulls/update",
    f"GET {_PULL}/merge": "pulls/check-if-merged",
    f"PUT {_PULL}/merge": "pulls/merge",
    f"GET {_PULL}/reviews": "pulls/list-reviews",
    f"GET {_ISSUE}/comments": "issues/list-comments",
    f"POST {_ISSUE}/comments": "issues/create-comment",
    f"POST {_ISSUE}/labels": "issues/add-labels",
    f"POST {_REPO}/git/refs": "git/create-ref",
    f"GET {_REPO}/git/ref/{{ref}}": "git/get-ref",
    f"GET {_REPO}/git/matching-refs/{{ref}}": "git/list-matching-refs",
    f"PATCH {_REPO}/git/refs/{{ref}}": "git/update-ref",
    f"DELETE {_REPO}/git/refs/{{ref}}": "git/delete-ref",
    f"GET {_REPO}/branches/{{branch}}": "repos/get-branch",
    f"POST {_REPO}/statuses/{{sha}}": "repos/create-commit-status",
    f"GET {_REPO}/commits/{{ref}}": "repos/get-commit",
    f"GET {_REPO}/commits/{{ref}}/status": "repos/get-combined-status-for-ref",
    f"GET {_REPO}/collaborators/{{username}}/permission": "repos/get-collaborator-permission-level",
    "GET /rate_limit": "rate-limit/get",
    "POST /app/installations/{installation_id}/access_tokens": (
        "apps/create-installation-access-token"
    ),
}
"""The emulator's routes that the OpenAPI subset documents, with their operation ids."""

_ORGANIZATION = {
    "type": "object",
    "required": ["login", "id", "node_id", "url", "repos_url", "members_url", "avatar_url"],
    "properties": {
        "login": {"type": "string"},
        "id": {"type": "integer"},
        "node_id": {"type": "string"},
        "url": {"type": "string"},
        "type": {"const": "Organization"},
    },
}
_MEMBERSHIP = {
    "type": "object",
    "required": ["url", "role", "state"],
    "properties": {
        "url": {"type": "string"},
        "role": {"enum": ["member", "maintainer"]},
        "state": {"enum": ["active", "pending"]},
    },
}
_INSTALLATION = {
    "type": "object",
    "required": [
        "id",
        "account",
        "app_id",
        "app_slug",
        "target_id",
        "target_type",
        "permissions",
        "events",
        "access_tokens_url",
        "repositories_url",
        "html_url",
        "repository_selection",
        "created_at",
        "updated_at",
        "single_file_name",
        "suspended_at",
        "suspended_by",
    ],
    "properties": {
        "id": {"type": "integer"},
        "app_id": {"type": "integer"},
        "target_id": {"type": "integer"},
        "repository_selection": {"enum": ["all", "selected"]},
        "events": {"type": "array", "items": {"type": "string"}},
    },
}
_VALIDATION_ERROR_SIMPLE = {
    "type": "object",
    "required": ["message", "documentation_url"],
    "properties": {
        "message": {"type": "string"},
        "documentation_url": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}
"""GitHub's shapes the subset does not carry (organization-full, team-membership, installation,
validation-error-simple), transcribed from the official description with their required keys."""

COMPONENTS: dict[str, tuple[str, bool]] = {
    f"POST {_PULL}/reviews": ("pull-request-review", False),
    f"PUT {_PULL}/reviews/{{review_id}}/dismissals": ("pull-request-review", False),
    f"GET {_ISSUE}/labels": ("label", True),
    f"DELETE {_ISSUE}/labels/{{name}}": ("label", True),
    f"GET {_REPO}/git/refs": ("git-ref", True),
    f"PATCH {_REPO}/git/ref/{{ref}}": ("git-ref", False),
    f"GET {_REPO}/commits/{{ref}}/statuses": ("status", True),
    f"GET {_REPO}/statuses/{{sha}}": ("status", True),
    "GET /orgs/{org}/teams/{team_slug}": ("team", False),
    "GET /organizations/{org_id}/team/{team_id}": ("team", False),
    f"GET {_PULL}/reviews/{{review_id}}": ("pull-request-review", False),
    f"GET {_PULL}/commits": ("commit", True),
    f"GET {_REPO}/issues/comments/{{comment_id}}": ("issue-comment", False),
    f"GET {_REPO}/labels/{{name}}": ("label", False),
    "GET /users/{username}": ("simple-user", False),
    "GET /user": ("simple-user", False),
}
"""Success bodies of emulator routes the subset lacks: component name and whether it is a list."""

LOCAL: dict[str, dict[str, Any]] = {
    "GET /orgs/{org}": _ORGANIZATION,
    "GET /orgs/{org}/teams/{team_slug}/memberships/{username}": _MEMBERSHIP,
    "GET /organizations/{org_id}/team/{team_id}/memberships/{username}": _MEMBERSHIP,
    f"GET {_REPO}/installation": _INSTALLATION,
}

KNOWN_BODIES = {
    ("pulls/check-if-merged", 404),
    ("git/delete-ref", 422),
}
"""Answers the spec documents without a body where GitHub sends a basic-error (github-api.md
§2.5 recordings, §2.9 "Reference does not exist"); the emulator follows GitHub."""


def _validate_local(schema: dict[str, Any], body: Any) -> None:
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{errors[0].message} in {json.dumps(body)[:300]}"


def _validate_error(call: Call) -> str:
    """Validate an error body with the component GitHub uses for it; returns that component."""
    body = call.body
    errors = body.get("errors") if isinstance(body, dict) else None
    if call.status == 422 and errors and all(isinstance(e, str) for e in errors):
        _validate_local(_VALIDATION_ERROR_SIMPLE, body)
        return "validation-error-simple"
    name = "validation-error" if call.status == 422 else "basic-error"
    validate_component(name, body)
    assert isinstance(body["message"], str)
    assert body["status"] == str(call.status)
    return name


def _validate_success(call: Call) -> str:
    route = call.route or ""
    if route in LOCAL:
        _validate_local(LOCAL[route], call.body)
        return "local"
    if route == f"GET {_REPO}/git/refs/{{ref}}":  # legacy: one ref, or every ref it prefixes
        for item in call.body if isinstance(call.body, list) else [call.body]:
            validate_component("git-ref", item)
        return "git-ref"
    if call.body is None:  # 204 of the singular DELETE /git/ref/{ref}
        assert call.status == 204
        return "empty"
    name, many = COMPONENTS[route]
    assert isinstance(call.body, list) is many, route
    for item in call.body if many else [call.body]:
        validate_component(name, item)
    return name


def validate(call: Call) -> str:
    """Validate one recorded answer; returns what it was validated against."""
    operation = OPERATIONS.get(call.route or "")
    if operation is not None:
        assert operation_for(call.method, call.path) == operation, call
        if call.status in documented_statuses(call.method, call.path):
            if (operation, call.status) in KNOWN_BODIES:
                return _validate_error(call)
            validate_response(call.method, call.path, call.status, call.body)
            return operation
    if call.status >= 400:
        return _validate_error(call)
    return _validate_success(call)


# --- the session ---------------------------------------------------------------------------------


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[tuple[Emulator, str]]:
    private, public = app_key_pair()
    users = Users(
        tokens={"t-alice": "alice", "t-bob": "bob", "t-dave": "dave"},
        teams={"acme/approvers": ["bob"]},
        permissions={"acme/deploy": {"dave": "read"}},
        apps={42: App(public_key=public, installation_id=7, slug="promoter")},
    )
    with running(tmp_path / "github", users) as emulator:
        emulator.create_repo("acme", "deploy", files={"app.yaml": "image: v1\n"})
        emulator.record_bodies = True
        yield emulator, private


def _raises(status: int, call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(GithubException) as raised:
        call(*args, **kwargs)
    assert raised.value.status == status, raised.value.data


def _raw(gh: Github, method: str, path: str, body: Any = None) -> int:
    status, _, _ = gh.requester.requestJson(method, path, input=body)
    return status


def _pulls(emu: Emulator, gh: Github, bob: Github) -> None:
    repo = gh.get_repo("acme/deploy")
    _raises(404, gh.get_repo, "acme/missing")
    emu.commit("acme", "deploy", "feat", {"app.yaml": "image: v2\n"}, "v2")
    pr = repo.create_pull(base="main", head="feat", title="Promote", body="why")
    _raises(422, repo.create_pull, base="main", head="feat", title="again")
    _raises(422, repo.create_pull, base="main", head="nope", title="x")
    assert repo.get_pulls(state="all").totalCount == 1
    assert [p.number for p in repo.get_pulls(head="acme:feat", base="main")] == [1]
    repo.get_pull(1)
    assert repo.get_pull(1).mergeable_state == "clean"
    _raises(404, repo.get_pull, 99)
    pr.edit(title="Promote v2")
    assert len(list(pr.get_commits())) == 1
    _raises(422, pr.edit, state="merged")
    assert not pr.is_merged()
    _raises(409, pr.merge, sha="0" * 40)
    emu.configure_repo("acme", "deploy", allow_merge_commit=False)
    _raises(405, pr.merge, merge_method="merge")
    _raises(422, pr.merge, merge_method="fast-forward")
    emu.configure_repo("acme", "deploy")
    bob_pr = bob.get_repo("acme/deploy").get_pull(1)
    approval = bob_pr.create_review(event="APPROVE", body="ok")
    assert pr.get_review(approval.id).state == "APPROVED"
    _raises(404, pr.get_review, 12345)
    _raises(422, pr.create_review, event="APPROVE")
    changes = bob_pr.create_review(event="REQUEST_CHANGES", body="wait")
    changes.dismiss("never mind")
    pending = bob_pr.create_review(body="draft")
    _raises(422, pending.dismiss, "no")
    assert len(list(pr.get_reviews())) == 2
    comment = pr.create_issue_comment("promoting")
    assert _raw(gh, "GET", f"/repos/acme/deploy/issues/comments/{comment.id}") == 200
    assert _raw(gh, "GET", "/repos/acme/deploy/issues/comments/1") == 404
    assert [c.body for c in pr.get_issue_comments()] == ["promoting"]
    assert _raw(gh, "POST", "/repos/acme/deploy/issues/1/comments", {"body": ""}) == 422
    pr.add_to_labels("promote", "env/prod")
    assert [label.name for label in pr.get_labels()] == ["promote", "env/prod"]
    pr.remove_from_labels("env/prod")
    assert repo.get_label("env/prod").name == "env/prod"
    _raises(404, repo.get_label, "missing")
    _raises(404, pr.remove_from_labels, "absent")


def _refs(gh: Github) -> None:
    repo = gh.get_repo("acme/deploy")
    main = repo.get_branch("main").commit.sha
    feat = repo.get_branch("feat").commit.sha
    _raises(404, repo.get_branch, "nope")
    ref = repo.create_git_ref("refs/heads/env/stg", feat)
    _raises(422, repo.create_git_ref, "refs/heads/env/stg", feat)
    assert repo.get_git_ref("heads/env/stg").object.sha == feat
    _raises(404, repo.get_git_ref, "heads/env/none")
    assert len(list(repo.get_git_matching_refs("heads/env"))) == 1
    assert len(list(repo.get_git_refs())) >= 2
    assert _raw(gh, "GET", "/repos/acme/deploy/git/refs/heads/env/stg") == 200
    assert _raw(gh, "GET", "/repos/acme/deploy/git/refs/heads/env") == 200
    assert _raw(gh, "GET", "/repos/acme/deploy/git/refs/heads/nothing") == 404
    _raises(422, ref.edit, main)
    ref.edit(main, force=True)
    patch = {"sha": feat, "force": False}
    assert _raw(gh, "PATCH", "/repos/acme/deploy/git/ref/heads/env/stg", patch) == 200
    ref.delete()
    assert _raw(gh, "DELETE", "/repos/acme/deploy/git/refs/heads/env/stg") == 422
    repo.create_git_ref("refs/heads/env/tmp", feat)
    assert _raw(gh, "DELETE", "/repos/acme/deploy/git/ref/heads/env/tmp") == 204
    commit = repo.get_commit(main)
    _raises(422, repo.get_commit, "f" * 40)
    commit.create_status("success", context="ci", target_url="http://ci/1", description="ok")
    _raises(422, commit.create_status, "bogus")
    assert commit.get_combined_status().state == "success"
    assert _raw(gh, "GET", "/repos/acme/deploy/commits/nope/status") == 404
    assert len(list(commit.get_statuses())) == 1
    assert _raw(gh, "GET", f"/repos/acme/deploy/commits/{main}/statuses") == 200


def _people(emu: Emulator, gh: Github, dave: Github) -> None:
    repo = gh.get_repo("acme/deploy")
    assert repo.get_collaborator_permission("dave") == "read"
    _raises(403, dave.get_repo("acme/deploy").get_collaborator_permission, "bob")
    org = gh.get_organization("acme")
    _raises(404, gh.get_organization, "ghost")
    team = org.get_team_by_slug("approvers")
    _raises(404, org.get_team_by_slug, "nobody")
    assert team.get_team_membership("bob").state == "active"
    team.update()
    assert _raw(gh, "GET", "/organizations/1/team/2") == 404
    assert gh.get_user().login == "alice"
    assert gh.get_user("bob").name == "bob"
    _raises(404, team.get_team_membership, "alice")
    assert _raw(gh, "GET", "/orgs/acme/teams/approvers/memberships/bob") == 200
    assert _raw(gh, "GET", "/orgs/acme/teams/approvers/memberships/alice") == 404
    assert gh.get_rate_limit().rate.limit == 5000
    assert _raw(gh, "GET", "/no/such/route") == 404
    request = urllib.request.Request(emu.api_url + "/repos/acme/deploy")  # noqa: S310 (loopback)
    with pytest.raises(HTTPError) as raised:
        urllib.request.urlopen(request)  # noqa: S310 (loopback http)
    assert raised.value.code == 401
    raised.value.close()


def _faults(emu: Emulator, gh: Github) -> None:
    repo = gh.get_repo("acme/deploy")
    for kind, status in (("5xx", 502), ("429", 429), ("secondary", 403), ("primary", 403)):
        emu.faults.script("GET", f"{_REPO}", kind)
        _raises(status, gh.get_repo, "acme/deploy")
    emu.faults.script("POST", f"{_ISSUE}/comments", "5xx-after")
    _raises(502, repo.get_pull(1).create_issue_comment, "late")
    emu.faults.script("GET", _PULL, "mergeable-null")
    assert repo.get_pull(1).mergeable is None
    for kind in ("conflict", "base-modified"):
        emu.faults.script("PUT", f"{_PULL}/merge", kind)
        _raises(405, repo.get_pull(1).merge)
    repo.get_pull(1)
    assert repo.get_pull(1).merge(merge_method="squash").merged
    assert repo.get_pull(1).is_merged()


def _app(emu: Emulator, private: str) -> None:
    app_auth = Auth.AppAuth(42, private)
    options: dict[str, Any] = {"seconds_between_requests": None, "seconds_between_writes": None}
    integration = GithubIntegration(auth=app_auth, base_url=emu.api_url, **options)
    assert integration.get_repo_installation("acme", "deploy").id == 7
    _raises(404, integration.get_access_token, 999)
    now = int(time.time())
    forged = jwt.encode(
        {"iat": now, "exp": now + 60, "iss": "42"}, app_key_pair()[0], algorithm="RS256"
    )
    bad = GithubIntegration(
        auth=Auth.AppAuth(42, sign_func=lambda _claims: forged), base_url=emu.api_url, **options
    )
    _raises(401, bad.get_access_token, 7)
    bot = Github(
        base_url=emu.api_url, auth=app_auth.get_installation_auth(7), retry=None, **options
    )
    assert bot.get_repo("acme/deploy").get_pull(1).merged
    _raises(403, lambda: bot.get_user().login)
    for client in (integration, bad, bot):
        client.close()


def test_every_answer_matches_githubs_schemas(emu: tuple[Emulator, str]) -> None:
    emulator, private = emu
    clients = [github_client(emulator.api_url, t) for t in ("t-alice", "t-bob", "t-dave")]
    gh, bob, dave = clients
    try:
        _pulls(emulator, gh, bob)
        _refs(gh)
        _people(emulator, gh, dave)
        _faults(emulator, gh)
        _app(emulator, private)
    finally:
        for client in clients:
            client.close()
    calls = emulator.calls
    validated: dict[str | None, set[str]] = {}
    for call in calls:
        try:
            against = validate(call)
        except AssertionError as error:
            raise AssertionError(f"{call.method} {call.path} {call.status}: {error}") from None
        validated.setdefault(call.route, set()).add(against)
    served = {call.route for call in calls}
    assert served == set(validated)
    assert {route.name for route in ROUTES} <= served, "the session must touch every route"
    statuses = {call.status for call in calls}
    assert {200, 201, 204, 401, 403, 404, 405, 409, 422, 429, 502} <= statuses
    assert {call.fault for call in calls} >= {
        "5xx",
        "5xx-after",
        "429",
        "secondary",
        "primary",
        "mergeable-null",
        "conflict",
        "base-modified",
    }
