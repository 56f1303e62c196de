"""Effects against real git and KV: conflicts rebuild the branch, rollbacks commit to the base."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from gitfixtures import commit_to_remote, make_remote, read_remote_file, remote_log
from harness import GITOPS, pipeline_yaml

from promoter.core.compiled import compile_pipeline
from promoter.core.loader import load_pipelines
from promoter.core.state import ArtifactVersion, Bundle
from promoter.errors import ConfigurationError, UpdateError
from promoter.gitops.repo import parse_trailers
from promoter.runtime.app import Runtime, publish_pipelines
from promoter.runtime.bus import Bus
from promoter.runtime.effects import Target
from promoter.runtime.report import explain
from promoter.runtime.store import Effect

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def target(tmp_path: Path, remote: Path) -> Target:
    path = tmp_path / "shop.yaml"
    path.write_text(pipeline_yaml("shop", remote))
    [item] = load_pipelines([path])
    return Target(compile_pipeline(item.pipeline), str(path), str(remote), "main")


def bundle(tag: str, seq: int) -> Bundle:
    version = ArtifactVersion(
        artifact="api",
        kind="image",
        name="ghcr.io/acme/api",
        version=tag,
        tag=tag,
        digest=f"sha256:{seq:064x}",
        built_at=NOW,
        seen=seq,
    )
    return Bundle(id=f"b{seq}", seq=seq, versions={"api": version}, formed_at=NOW)


def effect(action: str, env: str, carried: Bundle, seq: int = 1) -> Effect:
    return Effect.model_validate(
        {
            "seq": seq,
            "action": action,
            "environment": env,
            "bundle": carried,
            "reason": "test",
            "at": NOW,
        }
    )


async def test_a_conflicting_base_rebuilds_the_branch_and_merges(bus: Bus, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, GITOPS)
    shop = target(tmp_path, remote)
    runtime = Runtime(bus, tmp_path / "state", lambda: NOW)
    b1 = bundle("1.0.0", 1)
    opened = await runtime.runner.carry_out(shop, effect("open-pr", "prod", b1))
    assert opened.pr is not None
    first_head = opened.pr.head
    described = await runtime.prs.current("shop", "prod")
    assert described is not None  # its body names the bundle, for SCM webhooks to read back
    assert parse_trailers(described.body) == {
        "Promoter-Pipeline": "shop",
        "Promoter-Environment": "prod",
        "Promoter-Bundle": "b1",
    }
    # someone edits the very line promoter changes, on main, after the branch was built
    commit_to_remote(
        remote,
        "main",
        {"envs/prod/values.yaml": "image:\n  tag: 0.9.9\nmodel:\n  uri: x\n"},
        "hotfix",
    )
    merged = await runtime.runner.carry_out(shop, effect("merge", "prod", b1, 2))
    assert merged.merged
    assert read_remote_file(remote, "main", "envs/prod/values.yaml") == (
        "image:\n  tag: 1.0.0\nmodel:\n  uri: x\n"
    )
    pr = await runtime.prs.current("shop", "prod")
    assert pr is not None and pr.state == "merged" and pr.head != first_head
    assert [p.number for p in await runtime.prs.all()] == [pr.number], "no second PR"


async def test_rollback_commits_to_the_base_with_trailers(bus: Bus, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, GITOPS)
    shop = target(tmp_path, remote)
    runtime = Runtime(bus, tmp_path / "state", lambda: NOW)
    done = await runtime.runner.carry_out(shop, effect("rollback", "dev", bundle("0.5.0", 3)))
    assert done.sha is not None
    assert remote_log(remote, "main")[0] == "roll back shop in dev to api 0.5.0"
    message = runtime.workspaces(str(remote)).commit_message(done.sha)
    assert parse_trailers(message) == {
        "Promoter-Pipeline": "shop",
        "Promoter-Environment": "dev",
        "Promoter-Bundle": "b3",
        "Promoter-Action": "rollback",
    }
    again = await runtime.runner.carry_out(shop, effect("rollback", "dev", bundle("0.5.0", 3)))
    assert again.sha is None and again.detail == "already at that bundle"


async def test_close_pr_closes_only_the_pr_of_that_bundle(bus: Bus, tmp_path: Path) -> None:
    remote = make_remote(tmp_path, GITOPS)
    shop = target(tmp_path, remote)
    runtime = Runtime(bus, tmp_path / "state", lambda: NOW)
    await runtime.runner.carry_out(shop, effect("open-pr", "prod", bundle("1.0.0", 1)))
    other = await runtime.runner.carry_out(shop, effect("close-pr", "prod", bundle("2.0.0", 2)))
    assert other.detail == "no open PR for this bundle"
    closed = await runtime.runner.carry_out(shop, effect("close-pr", "prod", bundle("1.0.0", 1)))
    assert closed.detail.endswith("closed")
    pr = await runtime.prs.current("shop", "prod")
    assert pr is not None and pr.state == "closed"


async def test_a_file_the_pipeline_cannot_update_is_a_terminal_error(
    bus: Bus, tmp_path: Path
) -> None:
    remote = make_remote(tmp_path, {**GITOPS, "envs/prod/values.yaml": "image: [not, a, map]\n"})
    shop = target(tmp_path, remote)
    runtime = Runtime(bus, tmp_path / "state", lambda: NOW)
    with pytest.raises(UpdateError, match=r"envs/prod/values.yaml:1:8"):
        await runtime.runner.carry_out(shop, effect("open-pr", "prod", bundle("1.0.0", 1)))
    assert await runtime.prs.current("shop", "prod") is None


async def test_explain_names_unknown_pipelines_and_environments(bus: Bus, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown pipeline 'nope'; see `promoter status`"):
        await explain(bus, "nope", "prod", NOW)
    remote = make_remote(tmp_path, GITOPS)
    shop = target(tmp_path, remote)
    await publish_pipelines(bus, {"shop": shop})
    with pytest.raises(ConfigurationError, match="has no environment 'qa': dev, staging, prod"):
        await explain(bus, "shop", "qa", NOW)
    lines = await explain(bus, "shop", "prod", NOW)
    assert lines[:2] == ["shop/prod", "  live: nothing yet"]
    assert "  candidate: none (waiting for a bundle live in staging)" in lines
