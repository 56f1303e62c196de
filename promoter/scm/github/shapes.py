"""Between GitHub's PR objects and promoter's: trailers, the versions table, the gates status."""

from __future__ import annotations

import re
from typing import Any

from promoter.scm.base import PullRequest

__all__ = ["GATES_CONTEXT", "gates_status", "pull_from_github", "split_message", "trailers_of"]

GATES_CONTEXT = "promoter/gates"
_STATUS_LIMIT = 140  # GitHub truncates longer status descriptions
_TRAILER = re.compile(
    r"^Promoter-(?P<key>Pipeline|Environment|Bundle): *(?P<value>\S+) *$", re.MULTILINE
)
_ROW = re.compile(r"^\| (?P<name>[^|`]+?) \| (?P<version>[^|`]+?) \| `", re.MULTILINE)


def trailers_of(body: str) -> dict[str, str]:
    """The Promoter-Pipeline/-Environment/-Bundle trailers of a PR body, by lower-case key."""
    return {m["key"].lower(): m["value"] for m in _TRAILER.finditer(body.replace("\r\n", "\n"))}


def _versions(body: str) -> dict[str, str]:
    rows = {m["name"].strip(): m["version"].strip() for m in _ROW.finditer(body)}
    rows.pop("artifact", None)
    return rows


def pull_from_github(pull: Any, repository: str) -> PullRequest:
    """Promoter's view of a PyGithub PullRequest (list or full shape; reads no absent field)."""
    body = pull.body or ""
    marks = trailers_of(body)
    branch = str(pull.head.ref)
    parts = branch.split("/")
    from_branch = parts[1:3] if len(parts) == 3 and parts[0] == "promoter" else ["", ""]  # noqa: PLR2004
    state = "merged" if pull.merged_at is not None else str(pull.state)
    return PullRequest(
        repository=repository,
        pipeline=marks.get("pipeline", from_branch[0]),
        environment=marks.get("environment", from_branch[1]),
        base=str(pull.base.ref),
        branch=branch,
        head=str(pull.head.sha),
        title=str(pull.title or ""),
        body=body,
        bundle=marks.get("bundle", ""),
        versions=_versions(body),
        number=int(pull.number),
        url=str(pull.html_url),
        state=state,
        created_at=pull.created_at,
        updated_at=pull.updated_at,
        merged_sha=pull.merge_commit_sha if state == "merged" else None,
        author=pull.user.login if pull.user is not None else None,
        labels=[str(label.name) for label in pull.labels],
    )


def gates_status(blocked: dict[str, str]) -> tuple[str, str]:
    """The `promoter/gates` commit status for the gates still blocking (pending or success)."""
    if not blocked:
        return "success", "all promoter gates passed"
    text = "waiting: " + "; ".join(f"{code}: {reason}" for code, reason in sorted(blocked.items()))
    return "pending", text if len(text) <= _STATUS_LIMIT else text[: _STATUS_LIMIT - 1] + "…"


def split_message(message: str) -> tuple[str, str]:
    """A commit message's title line and the rest (GitHub's commit_title / commit_message)."""
    title, _, rest = message.partition("\n")
    return title.strip(), rest.strip("\n")
