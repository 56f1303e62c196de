"""Crash points for chaos tests: `PROMOTER_FAILPOINTS=after-effect:2` SIGKILLs on the 2nd hit."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

from promoter.errors import ConfigurationError

__all__ = ["POINTS", "Failpoints"]

POINTS = frozenset({"after-plan", "after-effect", "after-record", "before-ack"})


@dataclass
class Failpoints:
    """Countdowns per point; reaching zero kills the process the hard way (no cleanup)."""

    remaining: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Failpoints:
        """`name:count[,name:count...]`; an empty spec disables every point."""
        remaining: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, count = part.partition(":")
            if name not in POINTS or not count.isdigit() or int(count) < 1:
                raise ConfigurationError(
                    f"invalid failpoint {part!r}: use NAME:COUNT with NAME one of "
                    f"{', '.join(sorted(POINTS))}"
                )
            remaining[name] = int(count)
        return cls(remaining)

    def hit(self, name: str) -> None:
        """Count a pass through `name`; SIGKILL this process when its count runs out."""
        if name not in self.remaining:
            return
        self.remaining[name] -= 1
        if self.remaining[name] == 0:
            os.kill(os.getpid(), signal.SIGKILL)
