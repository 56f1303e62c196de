"""GitHub credentials: git gets the token through a helper, and a GitHub App works end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from gitfixtures import remote_sha
from github_world import GITOPS, no_wait
from pydantic import SecretStr

from promoter.errors import ConfigurationError, PromoterError
from promoter.gitops.repo import Workspace
from promoter.runtime.providers import github_setup
from promoter.scm.base import PullRequestSpec
from promoter.scm.github.auth import Credentials, connect
from promoter.scm.github.client import GitHubClient
from promoter.scm.github.provider import GitHubPullRequests, RepoRef
from promoter.settings import Settings
from promoter.testing.github_emulator import App, Users, running
from promoter.testing.github_emulator.client import app_key_pair

TOKEN = "ghp_s3cr3t-token-value"


def test_git_takes_the_token_from_a_credential_helper_never_the_url(tmp_path: Path) -> None:
    with running(tmp_path / "github", Users(tokens={TOKEN: "promoter-bot"})) as emu:
        bare = emu.create_repo("acme", "deploy", files=GITOPS)
        url = emu.git_url("acme", "deploy")
        workspace = Workspace(url, tmp_path / "cache", token=lambda: TOKEN)
        assert workspace.sync("main") == remote_sha(bare, "main")
        stored = "\n".join(p.read_text() for p in (tmp_path / "cache").rglob("config"))
        assert TOKEN not in stored
        assert "@" not in url
        anonymous = Workspace(url, tmp_path / "cache-anonymous")
        with pytest.raises(PromoterError, match="acme/deploy"):
            anonymous.sync("main")


def test_credentials_must_name_a_token_or_an_app_and_never_print_a_secret() -> None:
    with pytest.raises(ConfigurationError, match="PROMOTER_GITHUB_TOKEN"):
        Credentials()
    credentials = Credentials(token=SecretStr(TOKEN))
    assert TOKEN not in repr(credentials)
    assert TOKEN not in str(credentials)


async def test_a_github_app_opens_prs_as_its_bot_and_pushes_with_its_installation_token(
    tmp_path: Path,
) -> None:
    private, public = app_key_pair()
    app = App(public_key=public, installation_id=77, slug="promoter")
    with running(tmp_path / "github", Users(apps={1234: app})) as emu:
        emu.create_repo("acme", "deploy", files=GITOPS)
        url = emu.git_url("acme", "deploy")
        credentials = Credentials(app_id=1234, private_key=SecretStr(private))
        github, token = connect(credentials, emu.api_url, "acme", "deploy")
        workspace = Workspace(url, tmp_path / "cache", token=token)
        result = workspace.prepare_branch("promoter/shop/dev", "main", _bump, "promote")
        assert token().startswith("ghs_")
        provider = GitHubPullRequests(
            github, GitHubClient(sleep=no_wait), RepoRef("acme", "deploy", url, emu.api_url)
        )
        spec = PullRequestSpec(
            repository=url,
            pipeline="shop",
            environment="dev",
            base="main",
            branch="promoter/shop/dev",
            head=result.head,
            title="promote shop to dev",
            body="Promoter-Bundle: b1\n",
            bundle="b1",
            versions={"api": "1.0.0"},
        )
        pr = await provider.ensure(spec)
        assert pr.author == "promoter[bot]"
        merged = await provider.merge(pr, "Merge #1: promote")
        assert merged.state == "merged"
        assert emu.pull("acme", "deploy", pr.number)["merged_by"]["login"] == "promoter[bot]"


def _bump(root: Path) -> None:
    (root / "envs/dev/values.yaml").write_text("image:\n  tag: 1.0.0\n")


def test_settings_give_a_token_from_a_file_or_an_app_but_not_both(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    setup = github_setup(Settings(github_token_file=token_file))
    assert setup is not None and setup.credentials.token is not None
    assert setup.credentials.token.get_secret_value() == TOKEN
    assert github_setup(Settings()) is None
    key_file = tmp_path / "app.pem"
    key_file.write_text(app_key_pair()[0])
    app = github_setup(Settings(github_app_id=7, github_app_private_key_file=key_file))
    assert app is not None and app.credentials.app_id == 7
    with pytest.raises(ConfigurationError, match="not both"):
        github_setup(Settings(github_token=SecretStr(TOKEN), github_app_id=7))
    with pytest.raises(ConfigurationError, match="PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE"):
        github_setup(Settings(github_app_id=7))
