"""Between GitHub's PR objects and promoter's: trailers, the versions table, the gates status."""

from __future__ import annotations

import re
from typing import Any

from promoter.gitops.messages import parse_trailers
from promoter.scm.base import PullRequest, parse_branch

__all__ = ["GATES_CONTEXT", "gates_status", "pull_from_github", "split_message"]

GATES_CONTEXT = "promoter/gates"
_STATUS_LIMIT = 140  # GitHub truncates longer status descriptions
_ROW = re.compile(r"^\| (?P<name>[^|`]+?) \| (?P<version>[^|`]+?) \| `", re.MULTILINE)


def _versions(body: str) -> dict[str, str]:
    rows = {m["name"].strip(): m["version"].strip() for m in _ROW.finditer(body)}
    rows.pop("artifact", None)
    return rows


def pull_from_github(pull: Any, repository: str) -> PullRequest:
    """Promoter's view of a PyGithub PullRequest (list or full shape; reads no absent field)."""
    body = pull.body or ""
    marks = parse_trailers(body.replace("\r\n", "\n"))
    branch = str(pull.head.ref)
    from_branch = parse_branch(branch) or ("", "")
    state = "merged" if pull.merged_at is not None else str(pull.state)
    return PullRequest(
        repository=repository,
        pipeline=marks.get("Promoter-Pipeline", from_branch[0]),
        environment=marks.get("Promoter-Environment", from_branch[1]),
        base=str(pull.base.ref),
        branch=branch,
        head=str(pull.head.sha),
        title=str(pull.title or ""),
        body=body,
        bundle=marks.get("Promoter-Bundle", ""),
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
