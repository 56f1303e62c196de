"""API requests counted per effect (no PyGithub import, so the runtime starts without it)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["CallCount", "counter", "counting"]


@dataclass
class CallCount:
    """API requests made while counting (attempts, retries included)."""

    reads: int = 0
    writes: int = 0

    @property
    def total(self) -> int:
        """Reads plus writes."""
        return self.reads + self.writes


counter: ContextVar[CallCount | None] = ContextVar("promoter_github_calls", default=None)


@contextmanager
def counting() -> Iterator[CallCount]:
    """Count the GitHub requests made in this context (e.g. one effect)."""
    count = CallCount()
    token = counter.set(count)
    try:
        yield count
    finally:
        counter.reset(token)
