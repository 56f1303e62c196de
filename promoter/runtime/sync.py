"""GitHub is the truth about its PRs: turn a PR's state and reviews into an observation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeGuard

import structlog

from promoter.core.observations import (
    Approved,
    ChangesRequested,
    Closed,
    Dismissed,
    Merged,
    Observation,
    PullSynced,
)
from promoter.core.state import PendingPR
from promoter.errors import PromoterError
from promoter.runtime.effects import Target
from promoter.runtime.store import Leases, Record, StateStore

if TYPE_CHECKING:
    from promoter.scm.github.provider import GitHubPullRequests

__all__ = ["PullPoller", "PullSync", "Wake", "changes", "report_gates"]

log = structlog.get_logger(__name__)

Wake = Approved | ChangesRequested | Dismissed | Merged | Closed


class PullSync:
    """Reads the newest PR of a GitHub-hosted environment into a `PullSynced` observation.

    Review and close webhooks only wake it: what the observation says comes from GitHub
    (the latest review per user on the current head, the PR's real state), so a forged,
    stale or reordered webhook can never approve anything.
    """

    def __init__(
        self,
        targets: dict[str, Target],
        github: Callable[[Target], Awaitable[GitHubPullRequests]],
    ) -> None:
        self.targets = targets
        self.github = github

    def watches(self, pipeline: str) -> bool:
        """Whether `pipeline`'s PRs live on GitHub (and its review events are wake-ups)."""
        target = self.targets.get(pipeline)
        return target is not None and target.hosted_on == "github"

    def wants(self, observation: Observation) -> TypeGuard[Wake]:
        """Whether `observation` is a PR wake-up for a GitHub-hosted pipeline."""
        return isinstance(observation, Wake) and self.watches(observation.pipeline)

    async def snapshot(self, pipeline: str, environment: str) -> PullSynced | None:
        """What GitHub says about the environment's newest PR; None if it has none."""
        target = self.targets[pipeline]
        rules = target.compiled.rules(environment)
        reviewers = rules.reviewers if rules is not None else ()
        provider = await self.github(target)
        status = await provider.review_status(pipeline, environment, reviewers)
        if status is None or not status.pr.bundle:
            return None
        pr, stance = status.pr, status.stance
        return PullSynced(
            pipeline,
            environment,
            pr.bundle,
            pr.state,
            pr.head,
            approvals=tuple((user, status.teams.get(user, ())) for user in stance.approvals),
            rejections=stance.rejections,
        )


async def report_gates(sync: PullSync, record: Record) -> bool:
    """Bring each open GitHub PR's `promoter/gates` status up to what blocks it now.

    One write per change of the blocks (soak over, window open, approvals in); a merge sets
    success itself. True when a recorded PR changed (the record needs saving). Failures are
    logged and left for the next pass.
    """
    if not sync.watches(record.pipeline):
        return False
    changed = False
    for env, ref in sorted(record.prs.items()):
        state = record.state.envs.get(env)
        if state is None or state.pending is None or state.pending.merging or not ref.head:
            continue
        if ref.gates == state.blocked:
            continue
        try:
            provider = await sync.github(sync.targets[record.pipeline])
            await provider.report_gates(ref.head, state.blocked)
        except PromoterError as exc:
            log.warning("updating the gates status failed", env=env, error=str(exc))
            continue
        record.prs[env] = ref.model_copy(update={"gates": dict(state.blocked)})
        changed = True
    return changed


def changes(pending: PendingPR | None, synced: PullSynced) -> bool:
    """Whether `synced` tells the planner anything new about `pending`."""
    if pending is None or pending.bundle.id != synced.bundle:
        return False
    if synced.state != "open":
        return True
    approvals = {user: sorted(teams) for user, teams in synced.approvals}
    return (
        approvals != pending.approvals
        or sorted(synced.rejections) != sorted(pending.rejections)
        or synced.head != pending.head
    )


Process = Callable[[str, Sequence[tuple[str | None, Observation]]], Awaitable[bool]]


class PullPoller:
    """The slow poll that keeps GitHub the source of truth when webhooks are lost.

    Each interval, the first worker to take a pipeline's `poll.<name>` turn (a lease left to
    expire, so one worker per interval) reads every PR the pipeline waits on and plans the
    snapshots that change something.
    """

    def __init__(
        self,
        sync: PullSync | None,
        store: StateStore,
        turns: Leases,
        interval: float,
        process: Process,
    ) -> None:
        self.sync = sync
        self.store = store
        self.turns = turns
        self.interval = interval
        self.process = process

    async def run(self, stopping: asyncio.Event) -> None:
        """Poll every `interval` seconds until `stopping` is set."""
        sync = self.sync
        if sync is None:
            return
        watched = [name for name in sync.targets if sync.watches(name)]
        while watched:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
                return
            for name in watched:
                if await self.turns.acquire(f"poll.{name}") is not None:
                    await self.poll(name)

    async def poll(self, name: str) -> int:
        """Sync every PR pipeline `name` waits on; how many snapshots changed something."""
        if self.sync is None:
            return 0
        record, _ = await self.store.load(name)
        changed = 0
        for env in sorted(record.prs):
            state = record.state.envs.get(env)
            try:
                synced = await self.sync.snapshot(name, env)
            except PromoterError as exc:
                log.warning("polling the PR failed", pipeline=name, env=env, error=str(exc))
                continue
            if synced is not None and changes(state.pending if state else None, synced):
                changed += 1
                await self.process(name, [(None, synced)])
        return changed
