"""One retry layer around PyGithub: rate limits honoured, writes budgeted, calls counted."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Protocol, TypeVar

import requests
import structlog
from github import GithubException
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from promoter.errors import ConfigurationError, RateLimitedError, TransientError
from promoter.runtime.metrics import GITHUB_RATE_REMAINING, GITHUB_REQUESTS
from promoter.scm.github.calls import CallCount, counter, counting

__all__ = ["CallCount", "GitHubClient", "WriteBudget", "counting", "is_rate_limit"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

_SECONDARY_WAIT = 60.0
"""GitHub's advice for a secondary limit that names no wait: at least a minute."""


class WriteBudget(Protocol):
    """Spends one write before every mutating request (shared by all workers)."""

    async def take(self) -> None:
        """Wait until a write may be made; TransientError when that would take too long."""
        ...


def is_rate_limit(exc: GithubException) -> bool:
    """A primary or secondary rate limit answer (403 or 429), as GitHub words them."""
    if exc.status == HTTPStatus.TOO_MANY_REQUESTS:
        return True
    if exc.status != HTTPStatus.FORBIDDEN:
        return False
    message = _message(exc).lower()
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    return (
        message.startswith(("api rate limit", "you have exceeded a secondary rate limit"))
        or "secondary rate limit" in message
        or message.endswith(
            (
                "please retry your request again later.",
                "please wait a few minutes before you try again.",
            )
        )
        or str(headers.get("x-ratelimit-remaining", "")) == "0"
    )


def _message(exc: GithubException) -> str:
    data = exc.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return exc.message or ""


def rate_limit_wait(exc: GithubException, now: float) -> float:
    """Seconds GitHub asks us to wait: Retry-After, else until x-ratelimit-reset, else a minute."""
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    retry_after = str(headers.get("retry-after", "")).strip()
    if retry_after.isdigit():
        return float(retry_after)
    if str(headers.get("x-ratelimit-remaining", "")) == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now) + 1.0
        except ValueError:
            pass
    return _SECONDARY_WAIT


class _Retry(Exception):  # noqa: N818 (internal control flow, never escapes)
    """An attempt failed in a way worth another try after `wait` seconds."""

    def __init__(self, cause: Exception, wait: float) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.wait = wait


class GitHubClient:
    """Runs PyGithub calls in a thread, one request per call, with the one retry layer.

    PyGithub's own retries and client-side sleeps are off (see `auth.connect`); here a 5xx or
    a dropped connection is retried with jittered backoff, a rate limit waits as GitHub asks
    (Retry-After, x-ratelimit-reset) when that is short and otherwise raises RateLimitedError
    so the effect is retried later. Every attempt of a write spends from the shared budget.
    """

    def __init__(
        self,
        *,
        budget: WriteBudget | None = None,
        attempts: int = 5,
        max_wait: float = 30.0,
        backoff: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rate_limit: Callable[[], tuple[int, int]] | None = None,
    ) -> None:
        self.budget = budget
        self.rate_limit = rate_limit  # (remaining, limit) as GitHub's last response said
        self.attempts = attempts
        self.max_wait = max_wait
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock

    async def read(self, what: str, call: Callable[[], T]) -> T:
        """Make one reading request (`what` names it in logs and errors)."""
        return await self._run(what, call, write=False)

    async def write(self, what: str, call: Callable[[], T]) -> T:
        """Make one mutating request, spending one write of the budget per attempt."""
        return await self._run(what, call, write=True)

    async def _run(self, what: str, call: Callable[[], T], *, write: bool) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, _Retry)),
            stop=stop_after_attempt(self.attempts),
            wait=_asked_wait,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for trial in retrying:
                with trial:
                    return await self._attempt(
                        what, call, write=write, number=trial.retry_state.attempt_number
                    )
        except _Retry as exc:
            raise TransientError(
                f"GitHub {what} failed {self.attempts} times, last: {_describe(exc.cause)}; "
                "will retry later"
            ) from exc.cause
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, what: str, call: Callable[[], T], *, write: bool, number: int) -> T:
        if write and self.budget is not None:
            await self.budget.take()
        count = counter.get()
        if count is not None:
            if write:
                count.writes += 1
            else:
                count.reads += 1
        GITHUB_REQUESTS.labels(kind="write" if write else "read").inc()
        try:
            return await asyncio.to_thread(call)
        except GithubException as exc:
            raise self._classify(what, exc, number) from exc
        except requests.RequestException as exc:
            raise _Retry(exc, self._backoff(number)) from exc
        finally:
            self._note_rate_limit()

    def _note_rate_limit(self) -> None:
        remaining = self.rate_limit() if self.rate_limit is not None else (-1, -1)
        if remaining[0] >= 0:  # -1: no response has said yet
            GITHUB_RATE_REMAINING.set(remaining[0])

    def _backoff(self, attempt: int) -> float:
        delay = min(8.0, self.backoff * 2.0 ** max(0, attempt - 1))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not a secret)

    def _classify(self, what: str, exc: GithubException, attempt: int) -> Exception:
        status = exc.status
        if is_rate_limit(exc):
            wait = rate_limit_wait(exc, self.clock())
            log.warning("github rate limited", call=what, status=status, wait=wait)
            if wait > self.max_wait:
                return RateLimitedError(
                    f"GitHub rate-limited {what} for {wait:.0f}s ({_describe(exc)}); "
                    "the work resumes after that",
                    wait,
                )
            return _Retry(exc, wait)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == 0:
            log.info("github server error; retrying", call=what, status=status)
            return _Retry(exc, self._backoff(attempt))
        if status == HTTPStatus.UNAUTHORIZED:
            return ConfigurationError(
                f"GitHub rejected the credentials on {what} (401 {_message(exc)}): check "
                "PROMOTER_GITHUB_TOKEN (or the App id, key and installation)"
            )
        if status == HTTPStatus.FORBIDDEN:
            return ConfigurationError(
                f"GitHub refused {what} (403 {_message(exc)}): the token or App needs write "
                "access to contents, pull requests, issues and commit statuses of the repository"
            )
        return exc


def _asked_wait(retry_state: RetryCallState) -> float:
    outcome = retry_state.outcome
    exc = outcome.exception() if outcome is not None else None
    return exc.wait if isinstance(exc, _Retry) else 0.0


def _describe(exc: BaseException) -> str:
    if isinstance(exc, GithubException):
        return f"{exc.status} {_message(exc)}".strip()
    return str(exc) or type(exc).__name__
