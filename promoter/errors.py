"""The promoter exception tree; each class says whether retrying can help.

```
PromoterError
├── ConfigurationError   settings or command-line input invalid (terminal: fix the input)
├── PipelineError        pipeline YAML invalid; carries every Problem found (terminal)
├── EventError           an event cannot be decoded or is invalid (terminal: dead-letter it)
├── TimelineError        a simulation timeline line is invalid (terminal)
├── UpdateError          a file cannot be updated as asked (terminal: fix the file or pipeline)
├── GitError             a git operation failed for good (terminal: conflict, missing branch)
│   └── MergeConflict    (promoter.gitops.repo) the base changed the same lines
├── HeadMovedError       a PR's head is not the one approved (re-validate, never retry blindly)
└── TransientError       a dependency failed in a way that may pass (retryable)
    ├── PushRejectedError  the remote refused a push because it moved (fetch and retry)
    ├── RateLimitedError   the SCM asked us to wait longer than a worker should block
    └── StaleRecordError   (promoter.runtime.store) another worker wrote the record first
```
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "EventError",
    "GitError",
    "HeadMovedError",
    "PipelineError",
    "Problem",
    "PromoterError",
    "PushRejectedError",
    "RateLimitedError",
    "TimelineError",
    "TransientError",
    "UpdateError",
]


class PromoterError(Exception):
    """Base of every error promoter raises on purpose."""

    retryable = False


class ConfigurationError(PromoterError):
    """Settings or command-line input are invalid; fix them and run again."""


@dataclass(frozen=True, order=True)
class Problem:
    """One finding in a source file, positioned for `FILE:LINE:COL: message` output."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PipelineError(PromoterError):
    """Pipeline files are invalid; `problems` lists every finding in file and line order."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class EventError(PromoterError):
    """An event is malformed or invalid; the message says what and is the dead-letter reason."""


class TimelineError(PromoterError):
    """A simulation timeline is invalid; the message names the file and line."""


class TransientError(PromoterError):
    """A dependency failed in a way that may pass on retry (network, push race, 5xx)."""

    retryable = True


class UpdateError(PromoterError):
    """A file cannot be updated as asked; the message is `FILE:LINE:COL: what, and what to do`."""


class GitError(PromoterError):
    """A git operation failed in a way retrying will not fix (merge conflict, missing branch)."""


class PushRejectedError(TransientError):
    """The remote rejected a push (it moved, or a hook refused); fetch and try again."""


class HeadMovedError(PromoterError):
    """A PR's head is not the commit its approvals were given on; the merge must be re-decided."""


class RateLimitedError(TransientError):
    """The SCM rate-limited us for `retry_after` seconds, longer than a worker should block."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
