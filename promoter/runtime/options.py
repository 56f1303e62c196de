"""Worker tuning knobs, filled from Settings (tests shorten the times)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorkerOptions"]


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker pulls, leases, retries and wakes up."""

    ack_wait: float = 30.0
    max_deliver: int = 10
    lease_ttl: float = 30.0
    batch: int = 256
    fetch_timeout: float = 1.0
    tick_interval: float = 1.0
    concurrency: int = 8
    retry_delay: float = 1.0
    retry_max: float = 60.0
    stall_after: float = 15.0
    scm_poll_interval: float = 60.0
    failpoints: str = ""
