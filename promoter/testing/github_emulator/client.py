"""Clients for a running emulator: a PyGithub instance and git credentials for smart HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github

__all__ = ["app_key_pair", "credential_env", "github_client"]


def github_client(api_url: str, token: str, **options: Any) -> Github:
    """PyGithub against the emulator: no client-side throttling and no retries by default."""
    settings: dict[str, Any] = {
        "seconds_between_requests": None,
        "seconds_between_writes": None,
        "retry": None,
    }
    settings.update(options)
    return Github(base_url=api_url, auth=Auth.Token(token), **settings)


def credential_env(
    token: str, *, username: str = "x-access-token", extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Environment variables that give git a credential helper answering with `token`.

    The helper is set through `GIT_CONFIG_COUNT`, so the token never appears in a URL or argv;
    `extra` adds more `key: value` config entries the same way.
    """
    entries = {
        "credential.helper": f"!f() {{ echo username={username}; echo password={token}; }}; f",
        **(extra or {}),
    }
    env = {"GIT_CONFIG_COUNT": str(len(entries)), "GIT_TERMINAL_PROMPT": "0"}
    for index, (key, value) in enumerate(entries.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def app_key_pair() -> tuple[str, str]:
    """A fresh RSA key pair for a test GitHub App: (private PEM, public PEM for `App`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
