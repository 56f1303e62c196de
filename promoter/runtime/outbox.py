"""Reading a pipeline's outbox: effects a later one makes moot, and the audit record of each."""

from __future__ import annotations

from typing import Any

from promoter.runtime.effects import Outcome
from promoter.runtime.store import Effect

__all__ = ["audit_entry", "superseded"]

_PROPOSALS = ("open-pr", "update-pr")


def superseded(outbox: list[Effect]) -> bool:
    """The first effect proposes a bundle that a later effect replaces before any merge of it.

    A burst of builds for an approval-gated environment then pushes one branch, not one per build.
    """
    first = outbox[0]
    if first.action not in _PROPOSALS:
        return False
    for later in outbox[1:]:
        if later.environment != first.environment:
            continue
        if later.action == "merge":
            return False
        if later.action in (*_PROPOSALS, "close-pr"):
            return True
    return False


def audit_entry(
    pipeline: str, effect: Effect, outcome: Outcome | None, worker: str
) -> dict[str, Any]:
    """The PROMOTER_AUDIT record of a carried-out (or failed: `outcome` None) effect."""
    entry: dict[str, Any] = {
        "seq": effect.seq,
        "at": effect.at.isoformat().replace("+00:00", "Z"),
        "pipeline": pipeline,
        "environment": effect.environment,
        "action": effect.action,
        "versions": effect.bundle.summary() if effect.bundle else {},
        "bundle": effect.bundle.id if effect.bundle else None,
        "reason": effect.reason,
        "worker": worker,
    }
    if outcome is None:
        entry["error"] = effect.error or "failed"
        return entry
    entry |= {
        "pr": outcome.pr.number if outcome.pr else None,
        "sha": outcome.sha,
        "detail": outcome.refused or outcome.detail,
    }
    if outcome.api_calls is not None:
        entry["api_calls"] = outcome.api_calls
    return entry
