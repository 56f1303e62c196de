"""GitHub credentials: a token or a GitHub App installation, and a PyGithub client built on them."""

from __future__ import annotations

from collections.abc import Callable

from github import Auth, Github, GithubException, GithubIntegration

from promoter.errors import ConfigurationError
from promoter.scm.github.credentials import Credentials

__all__ = ["Credentials", "connect"]

TIMEOUT = 15
"""Seconds before one request gives up (PyGithub's default)."""


def _installation(app: Auth.AppAuth, api_url: str, owner: str, repo: str) -> int:
    integration = GithubIntegration(auth=app, base_url=api_url, timeout=TIMEOUT)
    try:
        return int(integration.get_repo_installation(owner, repo).id)
    except GithubException as exc:
        raise ConfigurationError(
            f"GitHub App {app.app_id} is not installed on {owner}/{repo} ({exc.status}); "
            "install it there or set PROMOTER_GITHUB_APP_INSTALLATION_ID"
        ) from None


def connect(
    credentials: Credentials, api_url: str, owner: str, repo: str
) -> tuple[Github, Callable[[], str]]:
    """A PyGithub client for `api_url` and a function giving the current token for git.

    PyGithub's retries and client-side sleeps are off: promoter's own retry layer and shared
    write budget (client.py) are the one place that waits. An App's installation token is
    refreshed by PyGithub before it expires; the function returns the fresh one each time.
    Blocking (an App may look up its installation): call it in a thread.
    """
    if credentials.token is not None:
        auth: Auth.Token | Auth.AppInstallationAuth = Auth.Token(
            credentials.token.get_secret_value()
        )
    else:
        app_id, key = credentials.app_id, credentials.private_key
        if app_id is None or key is None:  # pragma: no cover (checked in __post_init__)
            raise ConfigurationError("a GitHub App needs its id and private key")
        app = Auth.AppAuth(app_id, key.get_secret_value())
        installation = credentials.installation_id or _installation(app, api_url, owner, repo)
        auth = app.get_installation_auth(installation)
    client = Github(
        auth=auth,
        base_url=api_url,
        timeout=TIMEOUT,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
        lazy=True,
        per_page=100,
    )
    return client, lambda: auth.token
