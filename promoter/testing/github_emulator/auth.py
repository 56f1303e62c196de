"""Authentication: personal tokens, GitHub App JWTs and the installation tokens they mint."""

from __future__ import annotations

import base64
import binascii
import secrets
import string
import threading
from dataclasses import dataclass

import jwt

from promoter.testing.github_emulator.router import ApiError
from promoter.testing.github_emulator.users import App, Users

__all__ = [
    "Caller",
    "InstallationTokens",
    "authenticate",
    "credential",
    "verify_jwt",
]

# How far the JWT's `iat` may be ahead of our clock, and the longest lifetime GitHub accepts.
CLOCK_SKEW = 60
MAX_JWT_LIFETIME = 600
_ALPHABET = string.ascii_letters + string.digits
_BAD_JWT = "A JSON web token could not be decoded"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a login, and for App JWTs the App id and App."""

    login: str
    app_id: int | None = None
    app: App | None = None
    installation_id: int | None = None


@dataclass(frozen=True)
class _Minted:
    login: str
    app_id: int
    installation_id: int
    expires_at: float


class InstallationTokens:
    """The `ghs_…` tokens minted for App installations, valid until they expire."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Minted] = {}
        self._lock = threading.Lock()

    def mint(self, app_id: int, app: App, expires_at: float) -> str:
        """A fresh installation token acting as the App's bot."""
        token = "ghs_" + "".join(secrets.choice(_ALPHABET) for _ in range(36))
        with self._lock:
            self._tokens[token] = _Minted(app.bot, app_id, app.installation_id, expires_at)
        return token

    def caller(self, token: str, now: float) -> Caller | None:
        """The bot a live token acts as; None for unknown tokens; 401 once it has expired."""
        with self._lock:
            minted = self._tokens.get(token)
        if minted is None:
            return None
        if now >= minted.expires_at:
            raise ApiError(401, "Bad credentials")
        return Caller(minted.login, minted.app_id, None, minted.installation_id)


def credential(header: str | None) -> str | None:
    """The token of an Authorization header: `token T`, `Bearer T` or Basic with password T."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() in ("token", "bearer"):
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


def authenticate(
    users: Users, tokens: InstallationTokens, header: str | None, now: float
) -> Caller:
    """The caller of a user-authenticated request.

    Raises:
        ApiError: 401 "Requires authentication" without credentials, "Bad credentials" for a
            token that is neither configured, an unexpired installation token nor, when no
            tokens are configured, a login.
    """
    token = credential(header)
    if token is None:
        raise ApiError(401, "Requires authentication")
    bot = tokens.caller(token, now)
    if bot is not None:
        return bot
    if token in users.tokens:
        return Caller(users.tokens[token])
    if users.tokens or token.startswith("ghs_") or token.count(".") == 2:  # noqa: PLR2004 (JWT)
        raise ApiError(401, "Bad credentials")
    return Caller(token)


def verify_jwt(users: Users, header: str | None, now: float) -> Caller:
    """The App whose RS256 JWT authenticates this request.

    Raises:
        ApiError: 401 when the JWT is missing, malformed, wrongly signed, expired, issued in the
            future, lives longer than ten minutes, or names an App that is not configured.
    """
    token = credential(header)
    if token is None:
        raise ApiError(401, "Requires authentication")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
        app_id = int(claims["iss"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        raise ApiError(401, _BAD_JWT) from None
    app = users.apps.get(app_id)
    if app is None:
        raise ApiError(401, _BAD_JWT)
    try:
        claims = jwt.decode(
            token,
            app.public_key,
            algorithms=["RS256"],
            options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat", "iss"]},
        )
    except jwt.PyJWTError:
        raise ApiError(401, _BAD_JWT) from None
    _check_times(claims, now)
    return Caller(app.slug, app_id, app, app.installation_id)


def _check_times(claims: dict[str, object], now: float) -> None:
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or iat > now + CLOCK_SKEW:
        raise ApiError(
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the "
            "assertion was issued.",
        )
    if not isinstance(exp, int) or exp <= now:
        raise ApiError(
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future "
            "time at which the assertion expires.",
        )
    if exp - iat > MAX_JWT_LIFETIME + CLOCK_SKEW:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future.")
