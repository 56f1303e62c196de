"""The local PR provider: a PR is a promoter branch plus a record in KV; merging is a git merge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from promoter.errors import ConfigurationError, GitError, TransientError
from promoter.gitops.repo import DEFAULT_AUTHOR, Workspace
from promoter.runtime.bus import PR_BUCKET, kv_keys
from promoter.runtime.metrics import cas_conflict
from promoter.scm.base import PullRequest, PullRequestSpec, Review

__all__ = ["AUTHOR", "LocalPullRequests"]

_CAS_TRIES = 50
AUTHOR = DEFAULT_AUTHOR.name
"""Who opens local PRs (their commits' author): as on GitHub, never an approver of them."""


def _refuse_the_authors_approval(pr: PullRequest, review: Review) -> None:
    author = pr.author or AUTHOR  # records written before PRs named their author
    if review.state == "approved" and review.user.lower() == author.lower():
        raise ConfigurationError(
            f"{review.user} opened PR #{pr.number}; a PR's author cannot approve it, "
            "approve as the person reviewing (--as USER)"
        )


class LocalPullRequests:
    """PR records in the `promoter-prs` bucket; numbers come from a CAS counter.

    Keys: `next` (last number handed out), `pr.<n>` (the record), `head.<pipeline>.<env>` (the
    newest PR number of that environment's branch). The index is written before the record, so
    a crash in between leaves a number with no record, which the next call fills in: never two
    open PRs for one branch.
    """

    def __init__(
        self,
        kv: KeyValue,
        js: JetStreamContext,
        workspace: Callable[[str], Workspace],
        clock: Callable[[], datetime],
    ) -> None:
        self.kv = kv
        self.js = js
        self.workspace = workspace
        self.clock = clock

    async def _get(self, key: str) -> tuple[bytes | None, int]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, 0
        return entry.value, int(entry.revision or 0)

    async def get(self, number: int) -> tuple[PullRequest | None, int]:
        """The record of PR `number` and its revision."""
        raw, revision = await self._get(f"pr.{number}")
        return (PullRequest.model_validate_json(raw) if raw else None), revision

    async def all(self) -> list[PullRequest]:
        """Every PR record, by number."""
        keys = await kv_keys(self.js, PR_BUCKET, "pr.")
        prs = [pr for key in keys if (pr := (await self.get(int(key[3:])))[0]) is not None]
        return sorted(prs, key=lambda p: p.number)

    async def _number(self, pipeline: str, environment: str) -> tuple[int | None, int]:
        raw, revision = await self._get(f"head.{pipeline}.{environment}")
        return (int(raw) if raw else None), revision

    async def current(self, pipeline: str, environment: str) -> PullRequest | None:
        """The newest PR of the environment's branch."""
        number, _ = await self._number(pipeline, environment)
        return None if number is None else (await self.get(number))[0]

    async def _allocate(self) -> int:
        for _ in range(_CAS_TRIES):
            raw, revision = await self._get("next")
            number = int(raw or b"0") + 1
            try:
                if revision == 0:
                    await self.kv.create("next", str(number).encode())
                else:
                    await self.kv.update("next", str(number).encode(), last=revision)
            except KeyWrongLastSequenceError:
                cas_conflict("prs")
                continue
            return number
        raise TransientError("local PRs: could not allocate a PR number (contention)")

    async def ensure(
        self,
        spec: PullRequestSpec,
        *,
        likely_new: bool = False,  # noqa: ARG002 (the PR index is one KV read either way)
    ) -> PullRequest:
        """Adopt the environment's open PR (updating head, title, body) or open a new one."""
        for _ in range(_CAS_TRIES):
            number, index_rev = await self._number(spec.pipeline, spec.environment)
            existing, rev = (None, 0) if number is None else await self.get(number)
            if number is not None and existing is None:
                return await self._write(self._new(spec, number), 0)  # finish a crashed open
            if existing is not None and existing.state == "open":
                if (
                    existing.model_dump(include=set(PullRequestSpec.model_fields))
                    == spec.model_dump()
                ):
                    return existing
                updated = existing.model_copy(
                    update={**spec.model_dump(), "updated_at": self.clock()}
                )
                return await self._write(updated, rev)
            fresh = await self._allocate()
            try:
                key = f"head.{spec.pipeline}.{spec.environment}"
                if index_rev == 0:
                    await self.kv.create(key, str(fresh).encode())
                else:
                    await self.kv.update(key, str(fresh).encode(), last=index_rev)
            except KeyWrongLastSequenceError:
                cas_conflict("prs")
                continue  # someone else opened one meanwhile: adopt it
            return await self._write(self._new(spec, fresh), 0)
        raise TransientError(f"local PRs: {spec.branch} kept changing; try again")

    def _new(self, spec: PullRequestSpec, number: int) -> PullRequest:
        now = self.clock()
        url = f"{spec.repository.rstrip('/')}/pull/{number}"
        return PullRequest(
            **spec.model_dump(),
            number=number,
            url=url,
            created_at=now,
            updated_at=now,
            author=AUTHOR,
        )

    async def _write(self, pr: PullRequest, revision: int) -> PullRequest:
        body = pr.model_dump_json().encode()
        try:
            if revision == 0:
                await self.kv.create(f"pr.{pr.number}", body)
            else:
                await self.kv.update(f"pr.{pr.number}", body, last=revision)
        except KeyWrongLastSequenceError:
            cas_conflict("prs")
            raise TransientError(f"local PR #{pr.number} changed meanwhile; try again") from None
        return pr

    async def merge(self, pr: PullRequest, message: str) -> PullRequest:
        """Merge the head into the base with a real git merge; idempotent."""
        stored, rev = await self.get(pr.number)
        if stored is None:
            raise GitError(f"local PR #{pr.number} does not exist")
        if stored.state == "merged":
            return stored
        if stored.state == "closed":
            raise GitError(f"local PR #{pr.number} is closed; reopen it by promoting again")
        if stored.head != pr.head:
            raise TransientError(
                f"local PR #{pr.number} head moved from {pr.head[:12]} to {stored.head[:12]}"
            )
        workspace = self.workspace(stored.repository)
        result = await asyncio.to_thread(workspace.merge, stored.head, stored.base, message)
        merged = stored.model_copy(
            update={"state": "merged", "merged_sha": result.sha, "updated_at": self.clock()}
        )
        return await self._write(merged, rev)

    async def close(self, pr: PullRequest, comment: str) -> PullRequest:
        """Close the PR with a comment; closing a closed or merged PR does nothing."""
        stored, rev = await self.get(pr.number)
        if stored is None or stored.state != "open":
            return stored or pr
        note = Review(
            user="promoter", state="commented", head=stored.head, body=comment, at=self.clock()
        )
        closed = stored.model_copy(
            update={
                "state": "closed",
                "reviews": [*stored.reviews, note],
                "updated_at": self.clock(),
            }
        )
        return await self._write(closed, rev)

    async def review(self, pipeline: str, environment: str, review: Review) -> PullRequest:
        """Record a review on the environment's open PR (the `approve`/`reject` commands)."""
        for _ in range(_CAS_TRIES):
            pr = await self.current(pipeline, environment)
            if pr is None or pr.state != "open":
                raise ConfigurationError(
                    f"{pipeline}/{environment} has no open PR to review; see `promoter prs`"
                )
            _refuse_the_authors_approval(pr, review)
            _, rev = await self.get(pr.number)
            stamped = review.model_copy(update={"head": pr.head})
            updated = pr.model_copy(
                update={"reviews": [*pr.reviews, stamped], "updated_at": self.clock()}
            )
            try:
                return await self._write(updated, rev)
            except TransientError:
                continue
        raise TransientError(f"{pipeline}/{environment}: PR kept changing; try again")
