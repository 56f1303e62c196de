"""The log of API requests the emulator handled, for assertions in tests."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Call", "CallLog"]


@dataclass(frozen=True)
class Call:
    """One handled API request.

    `path` is the request path without the `/api/v3` prefix and without the query; `route` is
    the operation's template ("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge"), None for
    paths the API does not have; `fault` names the injected failure, if any; `body` is the
    parsed JSON answer when the emulator records bodies.
    """

    method: str
    path: str
    route: str | None
    status: int
    login: str | None
    write: bool
    fault: str | None
    query: str = ""
    body: Any = None

    def as_json(self) -> dict[str, Any]:
        """The call as a JSON object."""
        return asdict(self)


class CallLog:
    """A thread-safe list of calls."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        """Record one call."""
        with self._lock:
            self._calls.append(call)

    def snapshot(self) -> list[Call]:
        """The calls so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._calls.clear()
