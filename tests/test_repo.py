"""Workspace: cached clones, idempotent branches, checked and retried pushes, merges, locking."""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from git.cmd import Git
from gitfixtures import (
    commit_to_remote,
    install_hook,
    make_remote,
    read_remote_file,
    remote_branches,
    remote_log,
    remote_sha,
    run_git,
)

from promoter.errors import GitError, PushRejectedError, TransientError
from promoter.gitops.gitcli import (
    Commit,
    GitResult,
    GitRunner,
    Redactor,
    clone_dir_name,
    git_environment,
)
from promoter.gitops.repo import (
    FRESH_FOR,
    PUSH_ATTEMPTS,
    Author,
    BranchResult,
    Edit,
    Files,
    MergeConflict,
    MergeResult,
    TreeEdit,
    Workspace,
    WorktreeEdit,
    format_message,
    parse_trailers,
)

BASE_FILES = {"apps/web/values.yaml": "image:\n  tag: v1\n", "README.md": "deploy repo\n"}
MESSAGE = format_message(
    "Promote web v2 to prod", "Gate: all checks green.", {"Promoter-Bundle": "b-1"}
)

REJECT_ONCE = """#!/bin/sh
if [ ! -e rejected-once ]; then
  touch rejected-once
  echo "another push is in progress" >&2
  exit 1
fi
"""
HOLD_LOCK = """
import fcntl, sys, time
with open(sys.argv[1], "a") as handle:
    fcntl.flock(handle, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(0.5)
"""
ALWAYS_REJECT = """#!/bin/sh
echo "pushes are frozen by policy" >&2
exit 1
"""


def write(files: dict[str, str]) -> TreeEdit:
    def edit(tree: Files) -> None:
        for name, text in files.items():
            tree.write_text(name, text)

    return TreeEdit(edit)


def write_in_worktree(files: dict[str, str]) -> WorktreeEdit:
    def edit(root: Path) -> None:
        for name, text in files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    return edit


def set_tag(tag: str) -> TreeEdit:
    return write({"apps/web/values.yaml": f"image:\n  tag: {tag}\n"})


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(tmp_path, BASE_FILES)


@pytest.fixture
def ws(tmp_path: Path, remote: Path) -> Workspace:
    return Workspace(str(remote), tmp_path / "cache", author=Author("bot", "bot@example.com"))


# -- messages ------------------------------------------------------------------------------


def test_format_message_layout_and_round_trip() -> None:
    trailers = {"Promoter-Bundle": "b-1", "Promoter-Env": "prod", "Url": "https://x/y?a=b:c"}
    message = format_message("Subject", "Body line.\n\nSecond paragraph.", trailers)
    assert message == (
        "Subject\n\nBody line.\n\nSecond paragraph.\n\n"
        "Promoter-Bundle: b-1\nPromoter-Env: prod\nUrl: https://x/y?a=b:c\n"
    )
    assert parse_trailers(message) == trailers
    assert format_message("Subject", "  \n", {"K": "v"}) == "Subject\n\nK: v\n"
    assert format_message("Subject", "", {}) == "Subject\n"


def test_parse_trailers_reads_only_a_final_trailer_block() -> None:
    assert parse_trailers("Key: value\n") == {}  # a subject is never a trailer
    assert parse_trailers("Subject\n\nJust prose: with a colon\nand more\n") == {}
    assert parse_trailers("Subject\n\nA: 1\n\nbody\n") == {}
    assert parse_trailers("Subject\n\nbody\n\nA: 1\nB:2  \n\n") == {"A": "1", "B": "2"}
    assert parse_trailers("Merge x\n\nA: 1\nA: 2\n") == {"A": "2"}


@pytest.mark.parametrize(
    ("subject", "trailers"),
    [("", {}), ("two\nlines", {}), ("ok", {"Bad Key": "v"}), ("ok", {"K": "a\nb"})],
)
def test_format_message_rejects_malformed_input(subject: str, trailers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"subject|trailer"):
        format_message(subject, "", trailers)


# -- redaction -----------------------------------------------------------------------------


def test_redactor_hides_userinfo_and_the_literal_secret() -> None:
    redact = Redactor.for_url("https://user:s3cret%21@host/x.git")
    text = redact("fatal: https://user:s3cret%21@host/x.git failed; token s3cret! and s3cret%21")
    assert "s3cret" not in text
    assert "https://***@host/x.git" in text
    token = Redactor.for_url("https://ghp_abcdef@github.com/o/r.git")
    assert "ghp_abcdef" not in token("auth for ghp_abcdef failed")
    assert Redactor.for_url("/srv/git/repo.git")("see /srv/git/repo.git") == "see /srv/git/repo.git"
    assert Redactor()("ssh://git@host/r and http://a:b@h/") == "ssh://***@host/r and http://***@h/"


def test_clone_dir_name_is_safe_and_credential_free() -> None:
    name = clone_dir_name(Redactor.for_url("https://u:p@github.com/org/repo.git")("x"))
    assert "/" not in name
    one = Redactor.for_url("https://u:tok1@github.com/org/repo.git")
    two = Redactor.for_url("https://u:tok2@github.com/org/repo.git")
    assert clone_dir_name(one("https://u:tok1@github.com/org/repo.git")) == clone_dir_name(
        two("https://u:tok2@github.com/org/repo.git")
    )


def test_unreachable_https_remote_is_transient_fast_and_without_the_secret(
    tmp_path: Path,
) -> None:
    url = "https://user:secret@127.0.0.1:9/x.git"
    workspace = Workspace(url, tmp_path / "cache")
    started = time.monotonic()
    with pytest.raises(TransientError) as caught:
        workspace.sync("main")
    assert time.monotonic() - started < 10
    assert caught.value.retryable
    message = str(caught.value)
    assert "secret" not in message
    assert "127.0.0.1" in message
    assert message.startswith("git clone for https://***@127.0.0.1:9/x.git failed")
    assert "will be retried" in message
    assert "secret" not in repr(workspace)
    assert "secret" not in str(workspace.path)
    assert not workspace.path.exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{workspace.path.name}.lock"]


def test_a_missing_local_remote_is_a_git_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-repo.git"
    workspace = Workspace(str(missing), tmp_path / "cache")
    with pytest.raises(GitError, match=r"git clone failed for .*does not appear to be a git"):
        workspace.sync("main")
    assert not workspace.path.exists()
    assert not workspace.path.with_name(f"{workspace.path.name}.cloning").exists()


def runner(root: Path, url: str = "") -> GitRunner:
    return GitRunner(root, env=git_environment({}), redact=Redactor.for_url(url), repo="r")


@pytest.mark.parametrize(
    ("stderr", "transient"),
    [
        ("fatal: unable to access 'https://h/r/': Could not resolve host: h", True),
        ("fatal: unable to access 'https://h/r/': The requested URL returned error: 503", True),
        ("error: RPC failed; HTTP 502 curl 22 The requested URL returned error: 502", True),
        (
            (
                "ssh: connect to host h port 22: Connection timed out\n"
                "fatal: Could not read from remote repository."
            ),
            True,
        ),
        ("fatal: unable to access 'https://h/r/': The requested URL returned error: 403", False),
        ("remote: Invalid username or password.\nfatal: Authentication failed for 'h'", False),
        ("remote: Repository not found.\nfatal: repository 'https://h/r/' not found", False),
        (
            "git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            False,
        ),
        ("fatal: could not read Username for 'https://h': terminal prompts disabled", False),
    ],
)
def test_network_failures_are_transient_but_refusals_are_not(
    tmp_path: Path, stderr: str, transient: bool
) -> None:
    result = GitResult(128, b"", stderr)
    expected = TransientError if transient else GitError
    with pytest.raises(expected) as caught:
        runner(tmp_path).check(result, "fetch", "check it", network=True)
    assert isinstance(caught.value, GitError) != transient
    with pytest.raises(GitError):  # a local command's words are never taken as a network fault
        runner(tmp_path).check(result, "fetch", "check it")


def test_a_hanging_remote_times_out_transiently_and_locally_as_git_error(tmp_path: Path) -> None:
    git = runner(tmp_path, "http://user:secret@127.0.0.1/x.git")
    git.run("init", "--quiet")
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        url = f"http://user:secret@127.0.0.1:{silent.getsockname()[1]}/x.git"
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"did not finish within 0\.5s") as caught:
            git.call("ls-remote", url, timeout=0.5, network=True)
        assert "secret" not in str(caught.value)
        with pytest.raises(GitError, match=r"ls-remote for r did not finish within 0\.5s"):
            git.call("ls-remote", url, timeout=0.5)
    assert time.monotonic() - started < 10


def test_git_missing_or_a_missing_directory_is_a_git_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(GitError, match="no such directory"):
        runner(tmp_path / "gone").call("status")
    monkeypatch.setattr(Git, "GIT_PYTHON_GIT_EXECUTABLE", str(tmp_path / "no-git"))
    with pytest.raises(GitError, match="git is not installed"):
        runner(tmp_path).call("version")


def test_commits_reads_several_refs_at_once_and_peels_tags(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "--quiet")
    run_git(tmp_path, "commit", "--quiet", "--allow-empty", "-m", "one")
    run_git(tmp_path, "commit", "--quiet", "--allow-empty", "-m", "two")
    one, two = run_git(tmp_path, "rev-parse", "HEAD^", "HEAD").split()
    tree = run_git(tmp_path, "rev-parse", "HEAD^{tree}")
    run_git(tmp_path, "update-ref", "refs/remotes/origin/main", two)
    run_git(tmp_path, "update-ref", "refs/remotes/origin/release/v1", one)  # below a pattern
    run_git(tmp_path, "tag", "-a", "-m", "annotated", "v1", one)
    run_git(tmp_path, "update-ref", "refs/remotes/origin/tagged", "refs/tags/v1")
    git = runner(tmp_path)
    found = git.commits(
        "refs/remotes/origin/main", "refs/remotes/origin/tagged", "refs/remotes/origin/release"
    )
    assert found == {
        "refs/remotes/origin/main": Commit(two, tree, (one,)),
        "refs/remotes/origin/tagged": Commit(one, tree, ()),
    }
    assert git.commits() == {}


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_inherited_git_variables_cannot_redirect_the_workspace(
    tmp_path: Path, remote: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"  # e.g. the repository whose hook runs the tests
    other.mkdir()
    run_git(other, "init", "--quiet")
    (other / "mine.txt").write_text("untouched\n")
    run_git(other, "add", "mine.txt")
    run_git(other, "commit", "--quiet", "-m", "other")
    before = snapshot(other)
    for name, value in {
        "GIT_DIR": other / ".git",
        "GIT_WORK_TREE": other,
        "GIT_INDEX_FILE": other / ".git" / "index",
        "GIT_OBJECT_DIRECTORY": other / ".git" / "objects",
        "GIT_COMMON_DIR": other / ".git",
        "GIT_CONFIG": other / ".git" / "config",
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'user.name'='intruder'")

    ws = Workspace(str(remote), tmp_path / "cache", author=Author("bot", "bot@example.com"))
    branch = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    merged = ws.merge(branch.head, "main", "Merge promote/web")
    rollback = ws.commit_to_base("main", set_tag("v0"), "Roll back web to v0")

    assert snapshot(other) == before
    assert (ws.path / ".git" / "HEAD").is_file()
    assert sorted(remote_log(remote, "main")) == [  # one second apart at most: sort
        "Merge promote/web",
        "Promote web v2 to prod",
        "Roll back web to v0",
        "initial",
    ]
    assert remote_sha(remote, "main") == rollback
    assert run_git(remote, "rev-parse", f"{rollback}^") == merged.sha
    assert "author bot <bot@example.com>" in run_git(remote, "cat-file", "commit", branch.head)
    assert read_remote_file(remote, "main", "apps/web/values.yaml") == "image:\n  tag: v0\n"
    assert ws.sync("main") == rollback
    assert run_git(ws.path, "status", "--porcelain") == ""
    assert ws.read_file("origin/main", "README.md") == "deploy repo\n"
    assert snapshot(other) == before


# -- clone and sync ------------------------------------------------------------------------


def test_clone_is_created_once_and_reused(ws: Workspace, tmp_path: Path, remote: Path) -> None:
    tip = ws.sync("main")
    assert tip == remote_sha(remote, "main")
    marker = ws.path / ".git" / "promoter-test-marker"
    marker.write_text("cloned once\n")
    inode = ws.path.stat().st_ino
    ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    again = Workspace(str(remote), tmp_path / "cache")  # another worker on the same cache
    assert again.path == ws.path
    assert again.sync("main") == tip
    assert marker.read_text() == "cloned once\n"
    assert ws.path.stat().st_ino == inode
    assert ws.path.parent == tmp_path / "cache"
    assert run_git(ws.path, "config", "--local", "user.name") == "bot"
    assert run_git(ws.path, "config", "--local", "commit.gpgsign") == "false"


def test_sync_follows_the_remote_and_resets_the_worktree(ws: Workspace, remote: Path) -> None:
    ws.sync("main")
    (ws.path / "stray.txt").write_text("left over\n")
    (ws.path / "README.md").write_text("local edit\n")
    run_git(ws.path, "add", "README.md")
    moved = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Another writer")
    assert ws.sync("main") == moved
    assert not (ws.path / "stray.txt").exists()
    assert (ws.path / "README.md").read_text() == "deploy repo\n"
    assert (ws.path / "other.txt").read_text() == "x\n"
    assert run_git(ws.path, "status", "--porcelain") == ""


def test_sync_of_a_missing_base_branch_names_repo_and_branch(ws: Workspace, remote: Path) -> None:
    with pytest.raises(GitError, match=r"'release' does not exist on .*remote-"):
        ws.sync("release")
    with pytest.raises(GitError) as caught:
        ws.sync("nope")
    assert str(remote) in str(caught.value)


def test_remote_branch_read_file_and_commit_message(ws: Workspace, remote: Path) -> None:
    assert ws.remote_branch("promote/web") is None
    result = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert ws.remote_branch("promote/web") == result.head
    assert ws.read_file("origin/promote/web", "apps/web/values.yaml") == "image:\n  tag: v2\n"
    assert ws.read_file("origin/main", "apps/web/values.yaml") == "image:\n  tag: v1\n"
    assert ws.read_file(result.base, "missing.yaml") is None
    assert ws.read_file(result.base, "apps") is None  # a directory is not a file
    assert ws.commit_message(result.head) == MESSAGE
    assert parse_trailers(ws.commit_message(result.head)) == {"Promoter-Bundle": "b-1"}
    with pytest.raises(GitError, match="not a commit"):
        ws.read_file("origin/nope", "README.md")
    later = commit_to_remote(remote, "main", {"new.txt": "n\n"}, "Pushed elsewhere")
    assert ws.commit_message(later) == "Pushed elsewhere\n"  # unknown locally: fetched


# -- prepare_branch ------------------------------------------------------------------------


def test_prepare_branch_pushes_one_commit_on_base(ws: Workspace, remote: Path) -> None:
    base = remote_sha(remote, "main")
    result = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert result == BranchResult("promote/web", result.head, base or "", changed=True, pushed=True)
    assert remote_sha(remote, "promote/web") == result.head
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]
    assert run_git(remote, "rev-parse", "promote/web^") == base
    assert read_remote_file(remote, "promote/web", "apps/web/values.yaml") == "image:\n  tag: v2\n"
    assert read_remote_file(remote, "main", "apps/web/values.yaml") == "image:\n  tag: v1\n"
    raw = run_git(remote, "cat-file", "commit", result.head)
    assert "author bot <bot@example.com>" in raw
    assert "committer bot <bot@example.com>" in raw
    assert parse_trailers(run_git(remote, "log", "-1", "--format=%B", "promote/web")) == {
        "Promoter-Bundle": "b-1"
    }


def test_prepare_branch_again_is_idempotent(ws: Workspace, remote: Path) -> None:
    first = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    second = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert second.head == first.head
    assert second.base == first.base
    assert second.changed
    assert not second.pushed
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]


def test_prepare_branch_rebuilds_on_a_moved_base(ws: Workspace, remote: Path) -> None:
    first = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    moved = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Unrelated change")
    second = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert second.pushed
    assert second.base == moved
    assert second.head != first.head
    assert run_git(remote, "rev-parse", "promote/web^") == moved
    assert remote_log(remote, "promote/web") == [
        "Promote web v2 to prod",
        "Unrelated change",
        "initial",
    ]


def test_prepare_branch_replaces_a_stale_branch_with_new_content(
    ws: Workspace, remote: Path
) -> None:
    ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    message = format_message("Promote web v3 to prod", "", {"Promoter-Bundle": "b-2"})
    result = ws.prepare_branch("promote/web", "main", set_tag("v3"), message)
    assert result.pushed
    assert remote_log(remote, "promote/web") == ["Promote web v3 to prod", "initial"]


def test_prepare_branch_without_change_pushes_nothing(ws: Workspace, remote: Path) -> None:
    base = remote_sha(remote, "main")
    result = ws.prepare_branch("promote/web", "main", set_tag("v1"), MESSAGE)
    assert result == BranchResult(
        "promote/web", base or "", base or "", changed=False, pushed=False
    )
    assert remote_branches(remote) == ["main"]


def test_prepare_branch_retries_when_another_writer_moves_the_branch(
    ws: Workspace, remote: Path
) -> None:
    calls = 0
    edit_v2 = set_tag("v2")

    def racing_edit(tree: Files) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # between our fetch and our push, someone else pushes the branch
            commit_to_remote(remote, "promote/web", {"intruder.txt": "x\n"}, "Intruder")
        edit_v2.apply(tree)

    result = ws.prepare_branch("promote/web", "main", TreeEdit(racing_edit), MESSAGE)
    assert calls == 2
    assert result.pushed
    assert remote_sha(remote, "promote/web") == result.head
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]


def test_push_rejected_once_by_a_hook_is_retried(ws: Workspace, remote: Path) -> None:
    install_hook(remote, "pre-receive", REJECT_ONCE)
    result = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert result.pushed
    assert (remote / "rejected-once").exists()
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]


def test_push_always_rejected_raises_with_the_hooks_words(ws: Workspace, remote: Path) -> None:
    install_hook(remote, "pre-receive", ALWAYS_REJECT)
    with pytest.raises(PushRejectedError) as caught:
        ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    message = str(caught.value)
    assert "pushes are frozen by policy" in message
    assert "refs/heads/promote/web" in message
    assert f"after {PUSH_ATTEMPTS} attempts" in message
    assert caught.value.retryable
    assert remote_branches(remote) == ["main"]


# -- merge ---------------------------------------------------------------------------------


def test_merge_creates_a_merge_commit_then_is_a_no_op(ws: Workspace, remote: Path) -> None:
    branch = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    merged = ws.merge(branch.head, "main", "Merge promote/web")
    assert merged.merged
    assert remote_sha(remote, "main") == merged.sha
    assert run_git(remote, "rev-list", "--parents", "-n1", merged.sha).split()[1:] == [
        branch.base,
        branch.head,
    ]
    assert remote_log(remote, "main")[0] == "Merge promote/web"
    assert read_remote_file(remote, "main", "apps/web/values.yaml") == "image:\n  tag: v2\n"
    again = ws.merge(branch.head, "main", "Merge promote/web")
    assert again.sha == merged.sha
    assert not again.merged
    assert remote_sha(remote, "main") == merged.sha


def test_merge_onto_a_moved_base_and_after_a_rejected_push(ws: Workspace, remote: Path) -> None:
    branch = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    moved = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Unrelated change")
    install_hook(remote, "pre-receive", REJECT_ONCE)
    merged = ws.merge(branch.head, "main", "Merge promote/web")
    assert merged.merged
    assert (remote / "rejected-once").exists()
    assert run_git(remote, "rev-list", "--parents", "-n1", merged.sha).split()[1:] == [
        moved,
        branch.head,
    ]
    assert remote_log(remote, "main").count("Merge promote/web") == 1


def test_merge_conflict_names_the_file_and_leaves_the_clone_clean(
    ws: Workspace, remote: Path
) -> None:
    branch = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    commit_to_remote(remote, "main", {"apps/web/values.yaml": "image:\n  tag: v9\n"}, "Hotfix")
    before = remote_sha(remote, "main")
    with pytest.raises(
        MergeConflict, match=r"conflicts in apps/web/values\.yaml; rebuild the branch"
    ) as caught:
        ws.merge(branch.head, "main", "Merge promote/web")
    assert isinstance(caught.value, GitError)
    assert caught.value.files == ["apps/web/values.yaml"]
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 (our own object)
    assert (str(copy), copy.files) == (str(caught.value), caught.value.files)
    assert remote_sha(remote, "main") == before
    assert run_git(ws.path, "status", "--porcelain") == ""
    assert not (ws.path / ".git" / "MERGE_HEAD").exists()
    rebuilt = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert ws.merge(rebuilt.head, "main", "Merge promote/web").merged


def test_merge_of_an_unknown_head_is_a_git_error(ws: Workspace) -> None:
    with pytest.raises(GitError, match="not a commit"):
        ws.merge("0" * 40, "main", "Merge nothing")


# -- commit_to_base ------------------------------------------------------------------------


def test_commit_to_base_commits_and_returns_none_without_change(
    ws: Workspace, remote: Path
) -> None:
    sha = ws.commit_to_base("main", set_tag("v0"), "Roll back web to v0\n")
    assert sha == remote_sha(remote, "main")
    assert remote_log(remote, "main") == ["Roll back web to v0", "initial"]
    assert ws.commit_to_base("main", set_tag("v0"), "Roll back web to v0\n") is None
    assert remote_sha(remote, "main") == sha


def test_commit_to_base_retries_on_a_concurrent_base_update(ws: Workspace, remote: Path) -> None:
    calls = 0
    rollback = set_tag("v0")

    def racing_edit(tree: Files) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Concurrent change")
        rollback.apply(tree)

    sha = ws.commit_to_base("main", TreeEdit(racing_edit), "Roll back web to v0")
    assert calls == 2
    assert remote_log(remote, "main") == ["Roll back web to v0", "Concurrent change", "initial"]
    assert remote_sha(remote, "main") == sha
    assert read_remote_file(remote, "main", "other.txt") == "x\n"


def test_an_edit_error_propagates_and_the_next_call_starts_clean(
    ws: Workspace, remote: Path
) -> None:
    def broken(tree: Files) -> None:
        tree.write_text("half-written.yaml", "x")
        raise RuntimeError("updater failed")

    with pytest.raises(RuntimeError, match="updater failed"):
        ws.prepare_branch("promote/web", "main", TreeEdit(broken), MESSAGE)
    result = ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert read_remote_file(remote, result.head, "half-written.yaml") is None


# -- skipping fetches on a fresh view -----------------------------------------------------


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the git commands workspaces run, by subcommand."""
    seen: Counter[str] = Counter()
    call = GitRunner.call

    def counting(
        self: GitRunner, *args: str, timeout: float | None = None, network: bool = False
    ) -> GitResult:
        seen[args[0]] += 1
        return call(self, *args, timeout=timeout, network=network)

    monkeypatch.setattr(GitRunner, "call", counting)
    return seen


@pytest.fixture
def fresh(tmp_path: Path, remote: Path) -> Workspace:
    """A workspace whose view stays fresh for the whole test (a slow machine cannot expire it)."""
    workspace = Workspace(str(remote), tmp_path / "fresh-cache", fresh_for=3600)
    workspace.sync("main")
    return workspace


def test_the_default_freshness_window_is_short() -> None:
    assert 0 < FRESH_FOR <= 2


def test_back_to_back_promotions_skip_their_fetches(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    for tag in ("v2", "v3"):
        message = format_message(f"Promote web {tag} to prod", "", {"Promoter-Bundle": tag})
        branch = fresh.prepare_branch("promote/web", "main", set_tag(tag), message)
        assert branch.pushed
        assert fresh.merge(branch.head, "main", f"Merge {tag}").merged
    assert commands["fetch"] == 0
    assert commands["push"] == 4
    assert commands["checkout"] == 0  # the clone's HEAD stays detached
    assert read_remote_file(remote, "main", "apps/web/values.yaml") == "image:\n  tag: v3\n"
    for ref, subjects in {
        "main": ["Merge v3", "Merge v2", "initial"],
        "promote/web": ["Promote web v3 to prod", "Merge v2", "initial"],
    }.items():
        log = run_git(remote, "log", "--first-parent", "--format=%s", ref)
        assert log.splitlines() == subjects


def test_promotions_on_a_fresh_view_run_git_only_to_push(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    branch = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    again = fresh.prepare_branch("promote/web", "main", set_tag("v3"), MESSAGE)
    rollback = fresh.commit_to_base("main", set_tag("v0"), "Roll back web to v0")
    assert commands == Counter({"push": 3})  # trees, blobs and commits are written in-process
    assert read_remote_file(remote, branch.head, "apps/web/values.yaml") == "image:\n  tag: v2\n"
    assert read_remote_file(remote, again.head, "apps/web/values.yaml") == "image:\n  tag: v3\n"
    assert read_remote_file(remote, "main", "apps/web/values.yaml") == "image:\n  tag: v0\n"
    assert remote_sha(remote, "main") == rollback
    run_git(remote, "fsck", "--strict", "--no-dangling")


def test_fresh_for_zero_fetches_every_time(
    tmp_path: Path, remote: Path, commands: Counter[str]
) -> None:
    workspace = Workspace(str(remote), tmp_path / "cache", fresh_for=0)
    branch = workspace.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    workspace.merge(branch.head, "main", "Merge promote/web")
    assert commands["fetch"] == 3  # clone, then one fetch per call


def test_merge_right_after_another_writer_pushed_the_base_contains_their_commit(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    branch = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    other = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Another writer")
    merged = fresh.merge(branch.head, "main", "Merge promote/web")
    assert merged.merged
    assert run_git(remote, "rev-list", "--parents", "-n1", merged.sha).split()[1:] == [
        other,
        branch.head,
    ]
    assert remote_sha(remote, "main") == merged.sha
    assert remote_log(remote, "main").count("Merge promote/web") == 1
    assert read_remote_file(remote, "main", "other.txt") == "x\n"
    assert commands["fetch"] == 1  # the stale view was noticed by the push and refetched


def test_prepare_branch_right_after_another_writer_force_updated_the_branch(
    fresh: Workspace, remote: Path
) -> None:
    first = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    intruder = commit_to_remote(remote, "scratch", {"intruder.txt": "x\n"}, "Intruder")
    run_git(remote, "update-ref", "refs/heads/promote/web", intruder)  # a force push
    again = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert again.pushed  # the view said "already there"; the fetch that confirms it says no
    assert again.base == first.base
    assert remote_sha(remote, "promote/web") == again.head
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]

    run_git(remote, "update-ref", "refs/heads/promote/web", intruder)
    message = format_message("Promote web v3 to prod", "", {"Promoter-Bundle": "b-2"})
    third = fresh.prepare_branch("promote/web", "main", set_tag("v3"), message)
    assert third.pushed  # the lease on the tip it saw was rejected, then redone fetched
    assert remote_sha(remote, "promote/web") == third.head
    assert remote_log(remote, "promote/web") == ["Promote web v3 to prod", "initial"]
    assert read_remote_file(remote, "promote/web", "intruder.txt") is None


def test_prepare_branch_right_after_the_base_moved_builds_on_the_new_base(
    fresh: Workspace, remote: Path
) -> None:
    fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    moved = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Another writer")
    api = fresh.prepare_branch("promote/api", "main", write({"api.txt": "v2\n"}), MESSAGE)
    assert api.pushed
    assert api.base == moved  # the base guard rejected the push built on the old base
    assert run_git(remote, "rev-parse", "promote/api^") == moved
    assert remote_sha(remote, "main") == moved  # the guard never writes the base


def test_idempotent_outcomes_on_a_fresh_view_are_confirmed_by_a_fetch(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    first = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    again = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert (again.head, again.pushed) == (first.head, False)
    merged = fresh.merge(first.head, "main", "Merge promote/web")
    assert fresh.merge(first.head, "main", "Merge promote/web") == MergeResult(
        merged.sha, merged=False
    )
    assert fresh.prepare_branch("promote/x", "main", set_tag("v2"), MESSAGE).changed is False
    assert fresh.commit_to_base("main", set_tag("v2"), "Nothing to do") is None
    assert commands["fetch"] == 4  # one per outcome that pushed nothing
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]
    assert remote_branches(remote) == ["main", "promote/web"]


def test_merge_of_a_branch_name_always_fetches_it(fresh: Workspace, remote: Path) -> None:
    fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    newer = commit_to_remote(remote, "promote/web", {"more.txt": "m\n"}, "More")
    merged = fresh.merge("origin/promote/web", "main", "Merge promote/web")
    assert run_git(remote, "rev-parse", f"{merged.sha}^2") == newer


def test_a_rewound_base_is_not_brought_back_by_a_push_on_a_stale_view(
    fresh: Workspace, remote: Path
) -> None:
    initial = remote_sha(remote, "main") or ""
    branch = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    fresh.merge(branch.head, "main", "Merge promote/web")
    run_git(remote, "update-ref", "refs/heads/main", initial)  # another writer rewinds main
    sha = fresh.commit_to_base("main", set_tag("v0"), "Roll back web to v0")
    # A plain push would fast-forward the rewound main over the dropped merge.
    assert remote_log(remote, "main") == ["Roll back web to v0", "initial"]
    assert remote_sha(remote, "main") == sha


def test_a_merge_on_a_stale_view_does_not_bring_back_a_rewound_base(
    fresh: Workspace, remote: Path
) -> None:
    initial = remote_sha(remote, "main") or ""
    feature = commit_to_remote(remote, "feature", {"feature.txt": "f\n"}, "Feature")
    assert fresh.remote_branch("feature") == feature  # known locally
    branch = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    fresh.merge(branch.head, "main", "Merge promote/web")
    run_git(remote, "update-ref", "refs/heads/main", initial)  # another writer rewinds main
    merged = fresh.merge(feature, "main", "Merge feature")
    # A plain push would fast-forward the rewound main over the dropped merge.
    assert run_git(remote, "rev-list", "--parents", "-n1", merged.sha).split()[1:] == [
        initial,
        feature,
    ]
    assert "Merge promote/web" not in remote_log(remote, "main")


def test_every_retry_after_a_rejected_push_fetches_again(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    calls = 0

    def racing(edit: TreeEdit, branch: str) -> TreeEdit:
        def run(tree: Files) -> None:
            nonlocal calls
            calls += 1
            if calls % 3 in {1, 2}:  # the unfetched try and the first fetched try are raced
                commit_to_remote(remote, branch, {f"race-{calls}.txt": "x\n"}, f"Race {calls}")
            edit.apply(tree)

        return TreeEdit(run)

    result = fresh.prepare_branch(
        "promote/web", "main", racing(set_tag("v2"), "promote/web"), MESSAGE
    )
    assert (calls, commands["fetch"]) == (3, 2)
    assert result.pushed
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]
    calls = 0
    sha = fresh.commit_to_base("main", racing(set_tag("v0"), "main"), "Roll back web to v0")
    assert (calls, commands["fetch"]) == (3, 4)
    assert remote_sha(remote, "main") == sha
    assert remote_log(remote, "main")[:3] == ["Roll back web to v0", "Race 2", "Race 1"]


def test_workspaces_sharing_a_cache_and_an_outside_writer_lose_nothing(
    tmp_path: Path, remote: Path
) -> None:
    shared = [Workspace(str(remote), tmp_path / "shared", fresh_for=3600) for _ in range(2)]
    outsider = Workspace(str(remote), tmp_path / "outside", fresh_for=3600)
    expected = ["initial"]
    for i in range(3):
        for n, workspace in enumerate(shared):
            name = f"w{n}-{i}"
            message = format_message(f"Promote {name}", "", {"Promoter-Bundle": name})
            edit = write({f"{name}.txt": "x\n"})
            branch = workspace.prepare_branch(f"promote/{name}", "main", edit, message)
            assert branch.base == remote_sha(remote, "main")  # built on the newest base
            assert workspace.merge(branch.head, "main", f"Merge {name}").merged
            expected.insert(0, f"Merge {name}")
        outsider.commit_to_base("main", write({f"out-{i}.txt": "x\n"}), f"Outside {i}")
        expected.insert(0, f"Outside {i}")
    log = run_git(remote, "log", "--first-parent", "--format=%s", "main")
    assert log.splitlines() == expected
    for name in [f"w{n}-{i}" for n in range(2) for i in range(3)] + ["out-0", "out-2"]:
        assert read_remote_file(remote, "main", f"{name}.txt") == "x\n"


def test_a_remote_without_atomic_pushes_falls_back_to_fetching(
    fresh: Workspace, remote: Path, commands: Counter[str]
) -> None:
    run_git(remote, "config", "receive.advertiseAtomic", "false")
    first = fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert first.pushed
    assert not fresh._atomic
    moved = commit_to_remote(remote, "main", {"other.txt": "x\n"}, "Another writer")
    api = fresh.prepare_branch("promote/api", "main", write({"api.txt": "v2\n"}), MESSAGE)
    assert api.base == moved
    assert commands["fetch"] == 2  # each branch call fetched
    assert remote_log(remote, "promote/web") == ["Promote web v2 to prod", "initial"]


def test_an_unreachable_remote_on_a_fresh_view_is_not_retried_and_makes_it_stale(
    fresh: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise TransientError("the remote is down")

    monkeypatch.setattr(GitRunner, "push", unreachable)
    with pytest.raises(TransientError, match="down"):
        fresh.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
    assert fresh._fresh_until == 0.0


# -- concurrency ---------------------------------------------------------------------------


def alone(edit: Edit, inside: threading.Lock, overlaps: list[str]) -> Edit:
    """`edit`, noting in `overlaps` when it runs while another edit holding `inside` runs."""

    @contextmanager
    def entered() -> Iterator[bool]:
        if not inside.acquire(blocking=False):
            overlaps.append(repr(edit))
            yield False
            return
        try:
            time.sleep(0.01)  # widen the window a missing lock would expose
            yield True
        finally:
            inside.release()

    if isinstance(edit, TreeEdit):

        def in_memory(files: Files) -> None:
            with entered() as alone:
                if alone:
                    edit.apply(files)

        return TreeEdit(in_memory)

    def in_worktree(root: Path) -> None:
        with entered() as alone:
            if alone:
                edit(root)

    return in_worktree


def test_two_workspaces_on_one_cache_from_two_threads(tmp_path: Path, remote: Path) -> None:
    cache = tmp_path / "cache"
    inside = threading.Lock()
    overlaps: list[str] = []
    errors: list[BaseException] = []
    results: dict[str, list[str]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def guarded(files: dict[str, str]) -> Edit:
        """Thread a edits in memory, thread b in the shared clone's worktree."""
        in_memory = "a.txt" in files or "base-a.txt" in files
        edit = write(files) if in_memory else write_in_worktree(files)
        return alone(edit, inside, overlaps)

    def worker(name: str) -> None:
        workspace = Workspace(str(remote), cache)
        try:
            start.wait()
            for i in range(3):
                branch = f"promote/{name}"
                message = format_message(f"{name} {i}", "", {"Promoter-Bundle": f"{name}-{i}"})
                got = workspace.prepare_branch(
                    branch, "main", guarded({f"{name}.txt": f"{i}\n"}), message
                )
                results[name].append(got.head)
            sha = workspace.commit_to_base("main", guarded({f"base-{name}.txt": "x\n"}), name)
            results[name].append(sha or "")
        except BaseException as exc:  # noqa: BLE001 (reported by the main thread)
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert overlaps == []
    for name in ("a", "b"):
        assert read_remote_file(remote, f"promote/{name}", f"{name}.txt") == "2\n"
        assert remote_log(remote, f"promote/{name}")[0] == f"{name} 2"
        assert read_remote_file(remote, "main", f"base-{name}.txt") == "x\n"
        assert all(results[name])
    assert sorted(remote_log(remote, "main")[:2]) == ["a", "b"]


def test_the_clone_lock_excludes_other_processes(ws: Workspace) -> None:
    ws.sync("main")
    lock_file = ws.path.with_name(f"{ws.path.name}.lock")
    command = [sys.executable, "-c", HOLD_LOCK, str(lock_file)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        ws.sync("main")
        assert time.monotonic() - started >= 0.3


def test_a_stale_index_lock_from_a_killed_git_is_cleared(ws: Workspace) -> None:
    ws.sync("main")
    (ws.path / ".git" / "index.lock").write_text("")
    assert ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE).pushed


def test_a_vanished_remote_is_a_git_error_saying_what_to_check(ws: Workspace, remote: Path) -> None:
    ws.sync("main")
    shutil.rmtree(remote)
    with pytest.raises(GitError, match=r"git fetch failed for .*check the URL, the credentials"):
        ws.prepare_branch("promote/web", "main", set_tag("v2"), MESSAGE)
