"""What every PR provider offers: find, open or update, merge and close one PR per environment."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from promoter.core.pipeline import NAME_PATTERN

__all__ = [
    "PullRequest",
    "PullRequestSpec",
    "PullRequests",
    "Review",
    "branch_name",
    "parse_branch",
]

PRState = Literal["open", "merged", "closed"]


def branch_name(pipeline: str, environment: str) -> str:
    """The one branch promoter uses for an environment's PRs."""
    return f"promoter/{pipeline}/{environment}"


def parse_branch(ref: str) -> tuple[str, str] | None:
    """The pipeline and environment of a promoter PR branch `promoter/<pipeline>/<env>`.

    Args:
        ref: A branch name, bare or as `refs/heads/...`.

    Returns:
        `(pipeline, environment)` when both are valid names, else None.
    """
    parts = ref.removeprefix("refs/heads/").split("/")
    if len(parts) != 3 or parts[0] != "promoter":  # noqa: PLR2004 (promoter/<p>/<e>)
        return None
    pipeline, environment = parts[1], parts[2]
    if not (re.fullmatch(NAME_PATTERN, pipeline) and re.fullmatch(NAME_PATTERN, environment)):
        return None
    return pipeline, environment


class Review(BaseModel):
    """An approval, a change request or a comment on a PR."""

    model_config = ConfigDict(extra="forbid")

    user: str
    teams: list[str] = Field(default_factory=list)
    state: Literal["approved", "changes_requested", "commented"]
    head: str = Field(description="The head sha the review was given on.")
    body: str = ""
    at: datetime


class PullRequestSpec(BaseModel):
    """What the PR for an environment should look like now."""

    model_config = ConfigDict(extra="forbid")

    repository: str
    pipeline: str
    environment: str
    base: str
    branch: str
    head: str
    title: str
    body: str
    bundle: str
    versions: dict[str, str]
    gates: dict[str, str] = Field(
        default_factory=dict, description="Gates still blocking when the PR was last updated."
    )


class PullRequest(PullRequestSpec):
    """A PR as the provider stores it."""

    number: int
    url: str
    state: PRState = "open"
    reviews: list[Review] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime
    merged_sha: str | None = None
    author: str | None = Field(default=None, description="Who opened the PR (SCM login).")
    labels: list[str] = Field(default_factory=list)

    def approvals(self) -> dict[str, list[str]]:
        """Users whose latest review of the current head approves, with their teams."""
        latest: dict[str, Review] = {}
        for review in self.reviews:
            if review.state != "commented" and review.head == self.head:
                latest[review.user] = review
        return {u: r.teams for u, r in latest.items() if r.state == "approved"}


class PullRequests(Protocol):
    """A PR provider. Every method is idempotent: calling it again after a crash is harmless."""

    async def current(self, pipeline: str, environment: str) -> PullRequest | None:
        """The newest PR promoter made for this environment (open, merged or closed)."""
        ...

    async def ensure(self, spec: PullRequestSpec, *, likely_new: bool = False) -> PullRequest:
        """Adopt the open PR of the branch and bring it up to `spec`, or open one.

        `likely_new`: the caller knows of no open PR, so a provider may try to open one first
        (and still adopt the open one if there is one after all).
        """
        ...

    async def merge(self, pr: PullRequest, message: str) -> PullRequest:
        """Merge `pr` if its head is still `pr.head`; a merged PR is returned as is."""
        ...

    async def close(self, pr: PullRequest, comment: str) -> PullRequest:
        """Close `pr` without merging, leaving `comment`."""
        ...
