"""The GitHub emulator through PyGithub: PRs, merges, reviews, comments, labels, refs, statuses."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from github import (
    BadCredentialsException,
    Github,
    GithubException,
    UnknownObjectException,
)
from github.Repository import Repository

from promoter.testing.github_emulator import Emulator, Users, running
from promoter.testing.github_emulator.client import github_client
from promoter.testing.github_emulator.gitrepo import git

USERS = Users(
    tokens={"t-alice": "alice", "t-bob": "bob", "t-carol": "carol", "t-dave": "dave"},
    teams={"acme/approvers": ["bob", "carol"]},
    permissions={"acme/deploy": {"carol": "maintain", "dave": "read"}},
)
FILES = {"env/prod.yaml": "image: v1\n", "README.md": "deploy config\n"}

Clients = Callable[..., Github]


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with running(tmp_path / "github", USERS) as emulator:
        emulator.create_repo("acme", "deploy", files=FILES)
        yield emulator


@pytest.fixture
def clients(emu: Emulator) -> Iterator[Clients]:
    made: list[Github] = []

    def make(who: str = "t-alice", **options: Any) -> Github:
        client = github_client(emu.api_url, who, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def repo(clients: Clients) -> Repository:
    return clients().get_repo("acme/deploy")


def branch(emu: Emulator, name: str, text: str = "image: v2\n", path: str = "env/prod.yaml") -> str:
    return emu.commit("acme", "deploy", name, {path: text}, f"change on {name}", author="alice")


def raw(
    emu: Emulator, method: str, path: str, body: Any = None, who: str | None = "t-alice"
) -> tuple[int, dict[str, str], Any]:
    """One API request without PyGithub: status, headers (lower-cased) and parsed body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.api_url + path, data=data, method=method)  # noqa: S310 (loopback http)
    if who:
        request.add_header("Authorization", f"token {who}")
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback http)
            status, headers, payload = response.status, response.headers, response.read()
    except HTTPError as error:
        status, headers, payload = error.code, error.headers, error.read()
        error.close()
    lowered = {k.lower(): v for k, v in headers.items()}
    return status, lowered, json.loads(payload) if payload else None


def mergeability(pr: Any) -> tuple[Any, Any]:
    """`mergeable` (PyGithub types it bool, GitHub sends null too) and `mergeable_state`."""
    return pr.mergeable, pr.mergeable_state


def bare(emu: Emulator, *args: str) -> str:
    return git(emu.root / "acme" / "deploy.git", *args).stdout.strip()


# --- repository --------------------------------------------------------------------------------


def test_repository_has_github_shape_and_caller_permissions(
    emu: Emulator, clients: Clients
) -> None:
    repo = clients().get_repo("acme/deploy")
    assert repo.full_name == "acme/deploy"
    assert repo.url == f"{emu.api_url}/repos/acme/deploy"
    assert repo.default_branch == "main"
    assert repo.owner.login == "acme"
    assert repo.owner.type == "Organization"
    assert repo.permissions.push
    assert not repo.permissions.admin
    assert repo.allow_squash_merge
    emu.configure_repo("acme", "deploy", allow_merge_commit=False)
    assert not clients("t-dave").get_repo("acme/deploy").allow_merge_commit
    assert not clients("t-dave").get_repo("acme/deploy").permissions.push


def test_missing_repository_and_unknown_route_are_404(emu: Emulator, clients: Clients) -> None:
    with pytest.raises(UnknownObjectException):
        clients().get_repo("acme/nope")
    status, headers, body = raw(emu, "GET", "/nope/nothing")
    assert status == 404
    assert body == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest",
        "status": "404",
    }
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-github-api-version-selected"] == "2022-11-28"
    assert headers["x-github-request-id"]


def test_authentication_is_required(emu: Emulator, clients: Clients) -> None:
    status, headers, body = raw(emu, "GET", "/repos/acme/deploy", who=None)
    assert (status, body["message"]) == (401, "Requires authentication")
    assert headers["x-ratelimit-limit"] == "60"
    with pytest.raises(BadCredentialsException):
        clients("t-unknown").get_repo("acme/deploy")
    assert clients("t-bob").get_user().login == "bob"


# --- pull requests -----------------------------------------------------------------------------


def test_create_get_and_edit_a_pull_request(emu: Emulator, repo: Repository) -> None:
    head = branch(emu, "feat")
    created = repo.create_pull(base="main", head="feat", title="Promote v2", body="why")
    assert (created.number, created.state, created.user.login) == (1, "open", "alice")
    assert (created.head.ref, created.head.sha, created.base.ref) == ("feat", head, "main")
    assert created.head.label == "acme:feat"
    assert mergeability(created) == (None, "unknown")
    assert mergeability(repo.get_pull(1)) == (None, "unknown")
    second = repo.get_pull(1)
    assert mergeability(second) == (True, "clean")
    assert second.merge_commit_sha is not None
    assert (second.commits, second.changed_files, second.additions) == (1, 1, 1)
    second.edit(title="Promote v2 to prod", body="because")
    assert (second.title, second.body) == ("Promote v2 to prod", "because")
    second.edit(state="closed")
    assert second.state == "closed"
    assert second.closed_at is not None
    reopened: Any = second
    reopened.edit(state="open")
    assert (reopened.state, reopened.closed_at) == ("open", None)


def test_duplicate_pull_request_is_422_with_githubs_body(emu: Emulator, repo: Repository) -> None:
    branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="one")
    with pytest.raises(GithubException) as raised:
        repo.create_pull(base="main", head="acme:feat", title="two")
    assert raised.value.status == 422
    assert raised.value.data == {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for acme:feat.",
            }
        ],
        "documentation_url": "https://docs.github.com/rest/pulls/pulls#create-a-pull-request",
        "status": "422",
    }


def test_create_refuses_unknown_branches_and_empty_diffs(repo: Repository) -> None:
    for head, base, field in (("nope", "main", "head"), ("main", "nope", "base")):
        with pytest.raises(GithubException) as raised:
            repo.create_pull(base=base, head=head, title="x")
        assert raised.value.status == 422
        assert raised.value.data["errors"] == [
            {"resource": "PullRequest", "field": field, "code": "invalid"}
        ]
    repo.create_git_ref("refs/heads/same", repo.get_branch("main").commit.sha)
    with pytest.raises(GithubException) as raised:
        repo.create_pull(base="main", head="same", title="x")
    assert raised.value.data["errors"][0]["message"] == "No commits between main and same"


def test_list_filters_sorting_and_pagination(
    emu: Emulator, repo: Repository, clients: Clients
) -> None:
    for n in range(5):
        branch(emu, f"feat-{n}", text=f"image: v{n}\n", path=f"f{n}.txt")
        repo.create_pull(base="main", head=f"feat-{n}", title=f"PR {n}")
    repo.get_pull(5).edit(state="closed")
    assert [p.number for p in repo.get_pulls(head="acme:feat-2")] == [3]
    assert [p.number for p in repo.get_pulls(head="feat-2")] == [4, 3, 2, 1]  # bare head ignored
    assert [p.number for p in repo.get_pulls(head="other:feat-2")] == []
    assert [p.number for p in repo.get_pulls(state="closed")] == [5]
    everything = repo.get_pulls(state="all", sort="created", direction="asc", base="main")
    assert [p.number for p in everything] == [1, 2, 3, 4, 5]
    assert repo.get_pulls(state="all").totalCount == 5
    small = clients(per_page=2).get_repo("acme/deploy")
    assert [p.number for p in small.get_pulls(state="all")] == [5, 4, 3, 2, 1]
    status, headers, body = raw(emu, "GET", "/repos/acme/deploy/pulls?state=all&per_page=2&page=2")
    base = f"{emu.api_url}/repos/acme/deploy/pulls?state=all&per_page=2"
    assert status == 200
    assert [p["number"] for p in body] == [3, 2]
    assert headers["link"] == (
        f'<{base}&page=1>; rel="prev", <{base}&page=3>; rel="next", '
        f'<{base}&page=3>; rel="last", <{base}&page=1>; rel="first"'
    )
    assert "mergeable" not in body[0]


def test_list_items_complete_themselves_with_a_get(emu: Emulator, repo: Repository) -> None:
    branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="x")
    item = next(iter(repo.get_pulls()))
    emu.reset_calls()
    assert mergeability(item)[0] is None
    assert [c.route for c in emu.calls] == ["GET /repos/{owner}/{repo}/pulls/{pull_number}"]


# --- merging -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
def test_merge_really_merges_in_the_bare_repository(
    emu: Emulator, repo: Repository, method: str
) -> None:
    base = repo.get_branch("main").commit.sha
    branch(emu, "feat", text="image: v2\n")
    head = emu.commit("acme", "deploy", "feat", {"extra.txt": "x\n"}, "second change")
    pr = repo.create_pull(base="main", head="feat", title="Promote")
    assert [c.sha for c in pr.get_commits()][-1] == head
    result = pr.merge(merge_method=method, sha=head, commit_title="promote")
    assert result.merged
    assert result.message == "Pull Request successfully merged"
    main = bare(emu, "rev-parse", "refs/heads/main")
    assert result.sha == main
    parents = bare(emu, "rev-list", "--parents", "-n1", main).split()[1:]
    subjects = bare(emu, "log", "--format=%s", f"{base}..{main}").splitlines()
    if method == "merge":
        assert parents == [base, head]
        assert subjects[0] == "promote"
    elif method == "squash":
        assert parents == [base]
        assert subjects == ["promote"]
    else:
        assert subjects == ["second change", "change on feat"]
        assert main != head
        assert bare(emu, "rev-parse", f"{main}~2") == base
    assert bare(emu, "show", f"{main}:env/prod.yaml") == "image: v2"
    assert bare(emu, "show", f"{main}:extra.txt") == "x"
    merged = repo.get_pull(1)
    assert (merged.merged, merged.state, merged.merged_by.login) == (True, "closed", "alice")
    assert merged.merge_commit_sha == main
    assert merged.merged_at is not None
    assert merged.is_merged()
    assert repo.get_branch("feat").commit.sha == head  # the head branch stays


def test_merge_refusals(emu: Emulator, repo: Repository) -> None:
    branch(emu, "feat")
    pr = repo.create_pull(base="main", head="feat", title="x")
    assert not pr.is_merged()
    with pytest.raises(GithubException) as raised:
        pr.merge(sha="0" * 40)
    assert (raised.value.status, raised.value.data["message"]) == (
        409,
        "Head branch was modified. Review and try the merge again.",
    )
    emu.configure_repo("acme", "deploy", allow_merge_commit=False)
    with pytest.raises(GithubException) as raised:
        pr.merge(merge_method="merge")
    assert (raised.value.status, raised.value.data["message"]) == (
        405,
        "Merge commits are not allowed on this repository.",
    )
    pr.edit(state="closed")
    with pytest.raises(GithubException) as raised:
        pr.merge(merge_method="squash")
    assert (raised.value.status, raised.value.data["message"]) == (
        405,
        "Pull Request is not mergeable",
    )
    branch(emu, "draft", path="d.txt")
    draft = repo.create_pull(base="main", head="draft", title="d", draft=True)
    repo.get_pull(draft.number)
    assert repo.get_pull(draft.number).mergeable_state == "draft"
    with pytest.raises(GithubException) as raised:
        draft.merge(merge_method="squash")
    assert raised.value.status == 405


def test_required_approvals_block_until_approved_on_the_head(
    emu: Emulator, repo: Repository, clients: Clients
) -> None:
    emu.configure_repo("acme", "deploy", required_approvals=1)
    branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="x")
    repo.get_pull(1)
    assert mergeability(repo.get_pull(1)) == (True, "blocked")
    with pytest.raises(GithubException) as raised:
        repo.get_pull(1).merge()
    assert (raised.value.status, raised.value.data["message"]) == (
        405,
        "At least 1 approving review is required by reviewers with write access.",
    )
    for event, text in (
        ("APPROVE", "Can not approve your own pull request"),
        ("REQUEST_CHANGES", "Can not request changes on your own pull request"),
    ):
        with pytest.raises(GithubException) as raised:
            repo.get_pull(1).create_review(event=event)
        assert raised.value.status == 422
        assert raised.value.data["message"] == "Unprocessable Entity"
        assert raised.value.data["errors"] == [text]
    dave = clients("t-dave").get_repo("acme/deploy")
    dave.get_pull(1).create_review(event="APPROVE")  # read access: does not count
    assert repo.get_pull(1).mergeable_state == "blocked"
    bob = clients("t-bob").get_repo("acme/deploy")
    bob.get_pull(1).create_review(event="APPROVE")
    assert repo.get_pull(1).mergeable_state == "clean"
    branch(emu, "feat", text="image: v3\n")  # a new head makes the approval stale
    repo.get_pull(1)
    assert repo.get_pull(1).mergeable_state == "blocked"
    bob.get_pull(1).create_review(event="APPROVE")
    assert repo.get_pull(1).merge(merge_method="squash").merged


# --- reviews, comments, labels ------------------------------------------------------------------


def test_reviews_are_listed_in_order_and_dismissed(
    emu: Emulator, repo: Repository, clients: Clients
) -> None:
    head = branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="x")
    bob = clients("t-bob").get_repo("acme/deploy").get_pull(1)
    carol = clients("t-carol").get_repo("acme/deploy").get_pull(1)
    commented = bob.create_review(event="COMMENT", body="looks fine")
    approved = carol.create_review(event="APPROVE")
    pending = bob.create_review(body="draft")
    assert (commented.state, approved.state, pending.state) == ("COMMENTED", "APPROVED", "PENDING")
    assert "submitted_at" not in pending.raw_data
    assert approved.commit_id == head
    assert approved.user.login == "carol"
    assert repo.get_pull(1).get_review(approved.id).state == "APPROVED"
    seen = [(r.user.login, r.state) for r in repo.get_pull(1).get_reviews()]
    assert seen == [("bob", "COMMENTED"), ("carol", "APPROVED")]
    assert [r.state for r in bob.get_reviews()] == ["COMMENTED", "APPROVED", "PENDING"]
    approved.dismiss("stale")
    assert approved.state == "DISMISSED"
    assert [r.state for r in repo.get_pull(1).get_reviews()] == ["COMMENTED", "DISMISSED"]
    with pytest.raises(GithubException) as raised:
        pending.dismiss("no")
    assert raised.value.data["errors"] == ["Can not dismiss a pending review"]


def test_reviews_are_paginated(emu: Emulator, repo: Repository, clients: Clients) -> None:
    branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="x")
    bob = clients("t-bob").get_repo("acme/deploy").get_pull(1)
    for n in range(35):
        bob.create_review(event="COMMENT", body=f"note {n}")
    bodies = [r.body for r in repo.get_pull(1).get_reviews()]
    assert bodies == [f"note {n}" for n in range(35)]


def test_comments_and_labels(emu: Emulator, repo: Repository) -> None:
    branch(emu, "feat")
    pr = repo.create_pull(base="main", head="feat", title="x")
    first = pr.create_issue_comment("first")
    pr.create_issue_comment("second")
    assert first.user.login == "alice"
    assert first.user.name == "alice"  # completes through GET /users/{username}
    assert first.url == f"{emu.api_url}/repos/acme/deploy/issues/comments/{first.id}"
    assert [c.body for c in pr.get_issue_comments()] == ["first", "second"]
    assert [c.status for c in emu.calls if c.method == "POST"][-2:] == [201, 201]
    pr.add_to_labels("promote", "env:prod")
    status, _, body = raw(
        emu, "POST", "/repos/acme/deploy/issues/1/labels", {"labels": [{"name": "x"}]}
    )
    assert status == 200
    assert [label["name"] for label in body] == ["promote", "env:prod", "x"]
    assert body[0]["color"] == "ededed"
    assert repo.get_label("promote").color == "ededed"
    pr.remove_from_labels("x")
    assert [label.name for label in pr.get_labels()] == ["promote", "env:prod"]
    assert [label.name for label in repo.get_pull(1).labels] == ["promote", "env:prod"]


# --- refs, branches, commits, statuses -----------------------------------------------------------


def test_git_refs(emu: Emulator, repo: Repository) -> None:
    base = repo.get_branch("main").commit.sha
    newer = branch(emu, "feat")
    ref = repo.create_git_ref("refs/heads/env/stg", newer)
    assert ref.url == f"{emu.api_url}/repos/acme/deploy/git/refs/heads/env/stg"
    assert (ref.ref, ref.object.sha, ref.object.type) == ("refs/heads/env/stg", newer, "commit")
    with pytest.raises(GithubException) as raised:
        repo.create_git_ref("refs/heads/env/stg", newer)
    assert (raised.value.status, raised.value.data["message"]) == (422, "Reference already exists")
    assert [r.ref for r in repo.get_git_matching_refs("heads/env")] == ["refs/heads/env/stg"]
    _, _, legacy = raw(emu, "GET", "/repos/acme/deploy/git/refs/heads/env")
    assert [r["ref"] for r in legacy] == ["refs/heads/env/stg"]
    fetched = repo.get_git_ref("heads/env/stg")
    with pytest.raises(GithubException) as raised:
        fetched.edit(base)
    assert raised.value.data["message"] == "Update is not a fast forward"
    fetched.edit(base, force=True)
    assert repo.get_git_ref("heads/env/stg").object.sha == base
    fetched.delete()
    with pytest.raises(UnknownObjectException):
        repo.get_git_ref("heads/env/stg")
    status, _, body = raw(emu, "DELETE", "/repos/acme/deploy/git/refs/heads/env/stg")
    assert (status, body["message"]) == (422, "Reference does not exist")


def test_branches_and_commits(emu: Emulator, repo: Repository) -> None:
    main = repo.get_branch("main")
    assert main.name == "main"
    assert not main.protected
    commit = repo.get_commit(main.commit.sha)
    assert commit.commit.message == "Initial commit"
    assert commit.parents == []
    assert commit.url == f"{emu.api_url}/repos/acme/deploy/commits/{main.commit.sha}"
    with pytest.raises(UnknownObjectException) as raised:
        repo.get_branch("nope")
    assert raised.value.data["message"] == "Branch not found"
    with pytest.raises(GithubException) as failed:
        repo.get_commit("f" * 40)
    assert failed.value.status == 422


def test_statuses_combine_the_latest_per_context(repo: Repository) -> None:
    sha = repo.get_branch("main").commit.sha
    commit = repo.get_commit(sha)
    assert commit.get_combined_status().state == "pending"
    commit.create_status("pending", context="ci")
    commit.create_status("success", context="ci", target_url="http://ci/1", description="ok")
    made = commit.create_status("success")
    assert (made.context, made.creator.login) == ("default", "alice")
    combined = commit.get_combined_status()
    assert (combined.state, combined.total_count) == ("success", 2)
    assert {s.context: s.state for s in combined.statuses} == {
        "ci": "success",
        "default": "success",
    }
    commit.create_status("error", context="default")
    assert commit.get_combined_status().state == "failure"
    with pytest.raises(GithubException) as raised:
        commit.create_status("bogus")
    assert raised.value.status == 422


# --- people ------------------------------------------------------------------------------------


def test_collaborator_permission_folds_roles(clients: Clients) -> None:
    repo = clients().get_repo("acme/deploy")
    assert repo.get_collaborator_permission("carol") == "write"
    assert repo.get_collaborator_role_name("carol") == "maintain"
    assert repo.get_collaborator_permission("dave") == "read"
    assert repo.get_collaborator_permission("acme") == "admin"
    assert repo.get_collaborator_permission("erin") == "write"
    with pytest.raises(GithubException) as raised:
        clients("t-dave").get_repo("acme/deploy").get_collaborator_permission("bob")
    assert (raised.value.status, raised.value.data["message"]) == (
        403,
        "Must have push access to view collaborator permission.",
    )


def test_team_membership_through_organization_and_team(emu: Emulator, clients: Clients) -> None:
    team = clients().get_organization("acme").get_team_by_slug("approvers")
    assert team.slug == "approvers"
    assert team.url.startswith(f"{emu.api_url}/organizations/")
    team.update()  # GET of the team's own URL
    membership = team.get_team_membership("bob")
    assert (membership.state, membership.role) == ("active", "member")
    with pytest.raises(UnknownObjectException):
        team.get_team_membership("alice")
    with pytest.raises(UnknownObjectException):
        clients().get_organization("acme").get_team_by_slug("nobody")
    with pytest.raises(UnknownObjectException):
        clients().get_organization("ghost")
    status, _, body = raw(emu, "GET", "/orgs/acme/teams/approvers/memberships/carol")
    assert (status, body["state"]) == (200, "active")


def test_concurrent_writers_get_unique_ids_and_a_consistent_state(
    emu: Emulator, repo: Repository, clients: Clients
) -> None:
    branch(emu, "feat")
    repo.create_pull(base="main", head="feat", title="x")
    pulls = [clients().get_repo("acme/deploy").get_pull(1) for _ in range(6)]

    def write(pr: Any) -> list[int]:
        return [pr.create_issue_comment(f"c{n}").id for n in range(5)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = [i for batch in pool.map(write, pulls) for i in batch]
    assert len(set(ids)) == 30
    assert len(list(repo.get_pull(1).get_issue_comments())) == 30
    saved = json.loads((emu.root / "acme" / "deploy.git" / "emulator.json").read_text())
    assert len(saved["comments"]) == 30
