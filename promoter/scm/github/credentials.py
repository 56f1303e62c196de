"""GitHub credentials: a token or a GitHub App (no PyGithub import)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from promoter.errors import ConfigurationError

__all__ = ["Credentials"]


@dataclass(frozen=True)
class Credentials:
    """A personal or installation token, or a GitHub App (id + private key [+ installation])."""

    token: SecretStr | None = None
    app_id: int | None = None
    private_key: SecretStr | None = None
    installation_id: int | None = None

    def __post_init__(self) -> None:
        if self.token is None and (self.app_id is None or self.private_key is None):
            raise ConfigurationError(
                "GitHub needs credentials: set PROMOTER_GITHUB_TOKEN (or "
                "PROMOTER_GITHUB_TOKEN_FILE), or PROMOTER_GITHUB_APP_ID with "
                "PROMOTER_GITHUB_APP_PRIVATE_KEY_FILE"
            )

    def __repr__(self) -> str:  # never show a secret, even in a traceback
        kind = "token" if self.token is not None else f"app {self.app_id}"
        return f"Credentials({kind})"
