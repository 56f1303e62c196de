"""Edits in memory: trees, blobs and commits byte for byte as git makes them, and path refusals."""

from __future__ import annotations

import gc
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitfixtures import make_remote, read_remote_file, run_git
from test_updaters import CASES, ctx, make_update

from promoter.errors import GitError, UpdateError
from promoter.gitops.gitcli import GitRunner, Redactor, git_environment
from promoter.gitops.objects import ObjectStore, commit_data, git_writes_differently
from promoter.gitops.refs import read_refs
from promoter.gitops.repo import Author, Files, TreeEdit, Workspace, WorktreeEdit
from promoter.gitops.treefiles import TreeFiles, read_file, write_tree
from promoter.gitops.updaters import apply_update
from promoter.runtime.effects import Workspaces

BASE = {
    "apps/web/values.yaml": b"image:\n  tag: v1\n",
    "apps/api/values.yaml": b"image:\n  tag: a1\n",
    "crlf.yaml": b"a: 1\r\nb: 2\r\n",
    "no-newline.yaml": b"a: 1",
    "run.sh": b"#!/bin/sh\necho hi\n",
    "README.md": b"deploy repo\n",
}
LINKS = {"link-file": "apps/web/values.yaml", "link-dir": "apps", "outside": "/etc"}
DATA = Path(__file__).parent / "data" / "updaters"


def repository(root: Path, object_format: str = "sha1") -> str:
    """A repository in `root` holding BASE, LINKS, an executable and a submodule; its tree."""
    root.mkdir()
    run_git(root, "init", "--quiet", f"--object-format={object_format}")
    for name, data in BASE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "run.sh").chmod(0o755)
    for name, target in LINKS.items():
        (root / name).symlink_to(target)
    run_git(root, "add", "--all")
    submodule = "1" * (64 if object_format == "sha256" else 40)
    run_git(root, "update-index", "--add", "--cacheinfo", f"160000,{submodule},sub")
    (root / "sub").mkdir()  # as a checkout leaves a submodule not cloned
    run_git(root, "commit", "--quiet", "-m", "initial")
    return run_git(root, "rev-parse", "HEAD^{tree}")


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str]:
    return tmp_path / "repo", repository(tmp_path / "repo")


@pytest.fixture
def store(repo: tuple[Path, str]) -> Iterator[ObjectStore]:
    objects = ObjectStore(repo[0], repo="test")
    yield objects
    objects.close()


def git_tree_after(root: Path, changes: dict[str, bytes]) -> str:
    """The tree `git add --all` + `git write-tree` make after writing `changes` in the worktree."""
    for name, data in changes.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    run_git(root, "add", "--all")
    return run_git(root, "write-tree")


def objects_in(root: Path) -> set[Path]:
    return {p for p in (root / ".git" / "objects").rglob("*") if p.is_file()}


CHANGES = {
    "apps/web/values.yaml": b"image:\n  tag: v2\n",  # nested, changed
    "apps/new/deep/values.yaml": b"image: {}\n",  # new directories
    "top.yaml": b"x: 1\n",  # new at the root
    "run.sh": b"#!/bin/sh\necho bye\n",  # executable: keeps its mode
    "crlf.yaml": b"a: 1\r\nb: 3\r\n",
    "no-newline.yaml": b"a: 2",
}


def test_writes_make_the_tree_git_add_and_write_tree_make(
    repo: tuple[Path, str], store: ObjectStore
) -> None:
    root, tree = repo
    ours = write_tree(store, tree, CHANGES)
    assert ours == git_tree_after(root, CHANGES)
    run_git(root, "fsck", "--strict", "--no-dangling")
    assert run_git(root, "ls-tree", ours, "run.sh").startswith("100755 blob")
    assert run_git(root, "ls-tree", ours, "link-file").startswith("120000 blob")


def test_reads_see_nested_files_bytes_as_stored_and_the_edits_own_writes(
    repo: tuple[Path, str], store: ObjectStore
) -> None:
    _, tree = repo
    assert read_file(store, tree, "apps/web/values.yaml") == b"image:\n  tag: v1\n"
    assert read_file(store, tree, "apps//api/./values.yaml") == b"image:\n  tag: a1\n"
    assert read_file(store, tree, "apps/missing.yaml") is None
    assert read_file(store, tree, "missing/deeper/x.yaml") is None
    files = TreeFiles(store, tree)
    assert files.read_text("crlf.yaml") == "a: 1\r\nb: 2\r\n"
    assert files.read_text("no-newline.yaml") == "a: 1"
    assert files.read_text("nothing/here.yaml") == ""
    files.write_text("nothing/here.yaml", "new\r\n")
    assert files.read_text("nothing/here.yaml") == "new\r\n"


def test_unchanged_content_gives_the_same_tree_and_writes_nothing(
    repo: tuple[Path, str], store: ObjectStore
) -> None:
    root, tree = repo
    before = objects_in(root)
    files = TreeFiles(store, tree)
    for name in ("crlf.yaml", "no-newline.yaml", "apps/web/values.yaml", "run.sh"):
        files.write_text(name, files.read_text(name))
    assert files.write_tree() == tree
    assert TreeFiles(store, tree).write_tree() == tree
    assert objects_in(root) == before


REFUSED = {
    "link-file": r"link-file is a symbolic link \(to apps/web/values.yaml\); promoter does not",
    "link-dir/web/values.yaml": r"it goes through link link-dir \(to apps\)",
    "outside/passwd": r"it goes through link outside \(to /etc\)",
    "sub": r"sub is a submodule",
    "sub/values.yaml": r"it goes through submodule sub",
    ".git/config": r"is inside \.git",
    "apps/.GIT/hooks/x": r"is inside \.git",
    "git~1/config": r"is inside \.git",
    ".git./config": r"is inside \.git",
    ".g\u200cit/config": r"is inside \.git",
    "../outside.yaml": r"leaves the repository",
    "apps/../../outside.yaml": r"leaves the repository",
    "/etc/passwd": r"is absolute",
    "apps": r"not a regular file in the repository",
    "apps/": r"names a directory",
    "README.md/x.yaml": r"it goes through README\.md, which is a file",
    "apps/web/values.yaml\0": r"backslashes or NUL",
}


@pytest.mark.parametrize("path", REFUSED, ids=list(REFUSED))
def test_paths_the_worktree_refuses_are_refused_in_memory_too(
    repo: tuple[Path, str], store: ObjectStore, path: str
) -> None:
    root, tree = repo
    before = objects_in(root)
    expected = f"^{re.escape(path)}:1:1: .*{REFUSED[path]}"
    with pytest.raises(UpdateError, match=expected):
        read_file(store, tree, path)
    with pytest.raises(UpdateError, match=expected):
        TreeFiles(store, tree).read_text(path)
    with pytest.raises(UpdateError, match=expected):
        TreeFiles(store, tree).write_text(path, "x\n")
    with pytest.raises(UpdateError, match=expected):
        write_tree(store, tree, {"top.yaml": b"fine\n", path: b"x\n"})
    assert objects_in(root) == before


def test_an_edit_cannot_write_a_file_where_it_wrote_a_directory_or_the_reverse(
    repo: tuple[Path, str], store: ObjectStore
) -> None:
    files = TreeFiles(store, repo[1])
    files.write_text("new/values.yaml", "x\n")
    with pytest.raises(UpdateError, match=r"^new:1:1: not a regular file"):
        files.write_text("new", "x\n")
    files.write_text("other", "x\n")
    with pytest.raises(UpdateError, match=r"^other/x:1:1: it goes through other, which is a file"):
        files.read_text("other/x")


def test_a_sha256_repository_is_written_as_git_writes_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    tree = repository(root, object_format="sha256")
    store = ObjectStore(root, repo="test")
    try:
        ours = write_tree(store, tree, CHANGES)
        parent = run_git(root, "rev-parse", "HEAD")
        commit = store.write_commit(ours, parent, "Promote web\n", Author())
    finally:
        store.close()
    assert len(ours) == 64
    assert ours == git_tree_after(root, CHANGES)
    assert run_git(root, "rev-parse", f"{commit}^{{tree}}") == ours
    run_git(root, "fsck", "--strict", "--no-dangling")


@pytest.fixture(params=["UTC0", "IST-5:30", "NST3:30"])
def timezone(request: pytest.FixtureRequest) -> Iterator[None]:
    """Local time in a zone ahead of, at and behind UTC (POSIX rules: no tz database needed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", request.param)
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("timezone")
def test_commits_are_byte_for_byte_what_git_commit_tree_makes(repo: tuple[Path, str]) -> None:
    root, tree = repo
    parent = run_git(root, "rev-parse", "HEAD")
    author = Author(" <Pro<mo>ter.> ", "'bot@example.com'")
    identity = {
        "GIT_AUTHOR_NAME": author.name,
        "GIT_AUTHOR_EMAIL": author.email,
        "GIT_COMMITTER_NAME": author.name,
        "GIT_COMMITTER_EMAIL": author.email,
    }
    git = GitRunner(root, env=git_environment(identity), redact=Redactor(), repo="test")
    message = "\n\nPromote web v2 ü\n\nBody.   \n\nPromoter-Bundle: b-1\n\n\n"
    sha = git.commit_tree(tree, parent, message)
    raw = git.output("cat-file", "commit", sha)
    assert b"author Promoter <bot@example.com> " in raw
    when = re.search(rb"> (\d+) [+-]\d{4}\n", raw)
    assert when is not None
    assert commit_data(tree, parent, message, author, float(when[1])) == raw


def test_messages_git_would_rewrite_and_dates_from_the_environment_are_left_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not git_writes_differently("Promote web ü 😀\n\nPromoter-Bundle: b-1\n")
    for odd in ("\ufffe", "\uffff", "\U0010ffff", "\ud800"):
        assert git_writes_differently(f"Promote {odd}\n")
    remote = make_remote(tmp_path, {"a.txt": "1\n"})
    workspace = Workspace(str(remote), tmp_path / "cache")
    monkeypatch.setenv("GIT_AUTHOR_DATE", "@1700000000 +0100")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "@1700000000 +0100")
    assert git_writes_differently("Promote web\n")
    edit = TreeEdit(lambda files: files.write_text("a.txt", "2\n"))
    head = workspace.prepare_branch("promote/a", "main", edit, "Promote a\n").head
    workspace.close()
    assert "committer promoter <promoter@localhost> 1700000000 +0100" in run_git(
        remote, "cat-file", "commit", head
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_reader_stops_on_close_and_when_dropped_and_is_replaced_when_killed(
    repo: tuple[Path, str],
) -> None:
    root, tree = repo
    store = ObjectStore(root, repo="test")
    store.tree(tree)
    assert store._reader is not None
    first = store._reader.pid
    store.close()
    assert not pid_alive(first)
    assert read_file(store, tree, "README.md") == b"deploy repo\n"  # started again
    assert store._reader is not None
    second = store._reader.pid
    os.kill(second, 9)
    assert read_file(store, tree, "crlf.yaml") == BASE["crlf.yaml"]  # a new reader answered
    assert store._reader is not None
    third = store._reader.pid
    del store
    gc.collect()
    assert not pid_alive(third)


def test_the_reader_finds_objects_added_and_repacked_after_it_started(
    repo: tuple[Path, str], store: ObjectStore
) -> None:
    root, tree = repo
    assert read_file(store, tree, "README.md") == b"deploy repo\n"
    (root / "later.txt").write_text("later\n")
    run_git(root, "add", "later.txt")
    run_git(root, "commit", "--quiet", "-m", "later")
    run_git(root, "repack", "-a", "-d", "--quiet")
    run_git(root, "prune-packed")
    later = run_git(root, "rev-parse", "HEAD^{tree}")
    assert read_file(store, later, "later.txt") == b"later\n"
    assert read_file(store, tree, "apps/api/values.yaml") == BASE["apps/api/values.yaml"]
    with pytest.raises(GitError, match="is missing"):
        store.read("2" * 40)


def test_workspaces_close_their_readers(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.txt": "1\n"})
    workspaces = Workspaces(tmp_path / "repos")
    edit = TreeEdit(lambda files: files.write_text("a.txt", "2\n"))
    workspaces(str(remote)).prepare_branch("promote/a", "main", edit, "Promote a\n")
    reader = workspaces(str(remote))._objects._reader
    assert reader is not None and pid_alive(reader.pid)
    workspaces.close()
    assert not pid_alive(reader.pid)


def test_refs_are_read_from_the_files_as_git_reads_them(repo: tuple[Path, str]) -> None:
    root, _ = repo
    git_dir = root / ".git"
    first = run_git(root, "rev-parse", "HEAD")
    run_git(root, "commit", "--quiet", "--allow-empty", "-m", "second")
    second = run_git(root, "rev-parse", "HEAD")
    for name, sha in {"main": second, "packed": first, "release/v1": first}.items():
        run_git(root, "update-ref", f"refs/remotes/origin/{name}", sha)
    run_git(root, "pack-refs", "--all")
    run_git(root, "update-ref", "refs/remotes/origin/main", first)  # a loose ref wins
    wanted = [f"refs/remotes/origin/{n}" for n in ("main", "packed", "release", "missing")]
    assert read_refs(git_dir, wanted) == {wanted[0]: first, wanted[1]: first}
    runner = GitRunner(root, env=git_environment({}), redact=Redactor(), repo="test")
    assert {name: c.sha for name, c in runner.commits(*wanted).items()} == read_refs(
        git_dir, wanted
    )
    run_git(root, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    for asked in ("HEAD", "a..b", ".hidden", "x.lock", "x.", "../../HEAD", "ü", "a b"):
        assert read_refs(git_dir, [f"refs/remotes/origin/{asked}"]) is None, asked
    (git_dir / "reftable").mkdir()
    assert read_refs(git_dir, wanted) is None


def test_a_tag_where_a_branch_should_be_is_peeled_by_git(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, {"a.txt": "1\n"})
    workspace = Workspace(str(remote), tmp_path / "cache")
    tip = workspace.sync("main")
    run_git(workspace.path, "tag", "-a", "-m", "annotated", "v1", tip)
    run_git(workspace.path, "update-ref", "refs/remotes/origin/tagged", "refs/tags/v1")
    found = workspace._commits("refs/remotes/origin/tagged", "refs/remotes/origin/main")
    assert found == workspace._git.commits("refs/remotes/origin/tagged", "refs/remotes/origin/main")
    assert found["refs/remotes/origin/tagged"].sha == tip
    workspace.close()


# -- the same trees the worktree made ------------------------------------------------------


def golden_files() -> dict[str, str]:
    """Every updater golden input, as a repository file, and one file that does not exist."""
    files = {f"goldens/{name}.yaml": (DATA / f"{name}.in.yaml").read_bytes() for name in CASES}
    return {name: data.decode("utf-8") for name, data in files.items()}


def update_goldens(files: Files) -> None:
    """What `bundle_edit` does, for every golden case and a new nested file."""
    targets = [(f"goldens/{name}.yaml", spec) for name, spec in CASES.items()]
    for file, spec in [*targets, ("new/deep/values.yaml", CASES["empty"])]:
        text = files.read_text(file)
        new = apply_update(text, make_update(spec, file), ctx(file))
        if new != text:
            files.write_text(file, new)


def update_goldens_in_worktree(root: Path) -> None:
    """The same edit as `bundle_edit` made it before: files read and written in the worktree."""
    targets = [(f"goldens/{name}.yaml", spec) for name, spec in CASES.items()]
    for file, spec in [*targets, ("new/deep/values.yaml", CASES["empty"])]:
        path = root / file
        text = ""
        if path.exists():
            with path.open(encoding="utf-8", newline="") as handle:
                text = handle.read()
        new = apply_update(text, make_update(spec, file), ctx(file))
        if new != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8", newline="") as handle:
                handle.write(new)


def test_branches_and_base_commits_get_the_trees_the_worktree_made(tmp_path: Path) -> None:
    remote = make_remote(tmp_path, golden_files())
    initial = run_git(remote, "rev-parse", "main")
    workspace = Workspace(str(remote), tmp_path / "cache", fresh_for=0)
    in_memory: TreeEdit = TreeEdit(update_goldens)
    in_worktree: WorktreeEdit = update_goldens_in_worktree
    memory = workspace.prepare_branch("memory", "main", in_memory, "Promote\n")
    worktree = workspace.prepare_branch("worktree", "main", in_worktree, "Promote\n")
    tree = run_git(remote, "rev-parse", f"{memory.head}^{{tree}}")
    assert tree == run_git(remote, "rev-parse", f"{worktree.head}^{{tree}}") != ""
    for name in CASES:
        out = (DATA / f"{name}.out.yaml").read_bytes()
        assert read_remote_file(remote, memory.head, f"goldens/{name}.yaml") == out.decode()
    based = workspace.commit_to_base("main", in_memory, "Roll back\n")
    run_git(remote, "update-ref", "refs/heads/main", initial)
    based_before = workspace.commit_to_base("main", in_worktree, "Roll back\n")
    assert based and based_before
    assert run_git(remote, "rev-parse", f"{based}^{{tree}}") == tree
    assert run_git(remote, "rev-parse", f"{based_before}^{{tree}}") == tree
    workspace.close()
