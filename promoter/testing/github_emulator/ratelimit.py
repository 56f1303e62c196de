"""GitHub's rate limits: an hourly `core` budget per identity and a per-minute write ceiling."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

__all__ = ["WINDOW", "Budget", "RateLimits"]

WINDOW = 3600
SECONDARY_WINDOW = 60.0


@dataclass
class Budget:
    """One identity's `core` counter for the current hour."""

    limit: int
    used: int
    reset: int

    @property
    def remaining(self) -> int:
        """Requests left in this window."""
        return max(self.limit - self.used, 0)

    def headers(self) -> dict[str, str]:
        """The `x-ratelimit-*` headers every response carries."""
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-used": str(self.used),
            "x-ratelimit-reset": str(self.reset),
            "x-ratelimit-resource": "core",
        }


class RateLimits:
    """Primary (`core`, per hour) and secondary (writes per sliding minute) limits per identity."""

    def __init__(self, limit: int, writes_per_minute: int) -> None:
        self.limit = limit
        self.writes_per_minute = writes_per_minute
        self.secondary_hits = 0
        self._budgets: dict[str, Budget] = {}
        self._writes: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def budget(self, who: str, now: float, limit: int | None = None) -> Budget:
        """The current window of `who` (a fresh one once the previous has reset)."""
        with self._lock:
            return self._current(who, now, limit)

    def charge(self, who: str, now: float, limit: int | None = None) -> tuple[Budget, bool]:
        """Count one request; returns the budget and False when it was already exhausted."""
        with self._lock:
            budget = self._current(who, now, limit)
            if budget.remaining == 0:
                return budget, False
            budget.used += 1
            return budget, True

    def write(self, who: str, now: float) -> bool:
        """Count one content-creating request; False (and a hit) when over the minute's ceiling."""
        with self._lock:
            times = self._writes.setdefault(who, deque())
            while times and times[0] <= now - SECONDARY_WINDOW:
                times.popleft()
            if len(times) >= self.writes_per_minute:
                self.secondary_hits += 1
                return False
            times.append(now)
            return True

    def _current(self, who: str, now: float, limit: int | None) -> Budget:
        budget = self._budgets.get(who)
        if budget is None or now >= budget.reset:
            budget = Budget(limit=limit or self.limit, used=0, reset=int(now) + WINDOW)
            self._budgets[who] = budget
        return budget
