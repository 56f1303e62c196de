"""Who approves a PR now: GitHub's latest-review-per-user rule, as a pure function."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

__all__ = ["ReviewState", "Stance", "SubmittedReview", "tally"]

ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]


@dataclass(frozen=True)
class SubmittedReview:
    """One review as the SCM lists it (GitHub's REST states, upper case)."""

    user: str
    state: ReviewState
    commit: str
    submitted_at: datetime | None
    id: int = 0


@dataclass(frozen=True)
class Stance:
    """The reviews that count on the current head."""

    approvals: tuple[str, ...] = ()
    rejections: tuple[str, ...] = ()
    stale: tuple[str, ...] = field(default=(), compare=False)
    """Users whose latest approval is of an earlier head (shown, never counted)."""


def tally(reviews: Iterable[SubmittedReview], head: str, author: str) -> Stance:
    """Apply the latest-review-per-user rule to `reviews` of a PR whose head is `head`.

    COMMENTED and PENDING reviews never change a stance; DISMISSED cancels the user's earlier
    one. An approval counts only on the current head and never from the PR's author; any
    standing change request blocks whatever the head. Logins compare case-insensitively.
    """
    ordered = sorted(reviews, key=lambda r: (r.submitted_at is None, r.submitted_at, r.id))
    latest: dict[str, SubmittedReview] = {}
    for review in ordered:
        if review.submitted_at is None or review.state in ("COMMENTED", "PENDING"):
            continue
        latest[review.user.lower()] = review
    author_key = author.lower()
    approvals: list[str] = []
    stale: list[str] = []
    rejections: list[str] = []
    for key, review in sorted(latest.items()):
        if review.state == "CHANGES_REQUESTED":
            rejections.append(review.user)
        elif review.state == "APPROVED" and key != author_key:
            (approvals if review.commit == head else stale).append(review.user)
    return Stance(tuple(approvals), tuple(rejections), tuple(stale))
