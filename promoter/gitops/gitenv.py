"""Where git runs: the child environment, credential redaction, clone names and the clone lock."""

from __future__ import annotations

import fcntl
import hashlib
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "PARENT_REPO_VARIABLES",
    "TOKEN_VARIABLE",
    "CloneLock",
    "Redactor",
    "clone_dir_name",
    "credential_environment",
    "git_environment",
    "pinned_environment",
]

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@]+@")


@dataclass(frozen=True)
class Redactor:
    """Hides credentials in text meant for errors and logs.

    Userinfo in any URL (`https://user:token@host`) becomes `https://***@host`; each of
    `secrets` (the password or token of the workspace URL) is also replaced wherever it occurs.
    """

    secrets: tuple[str, ...] = ()

    @classmethod
    def for_url(cls, url: str) -> Redactor:
        """Build a redactor that also hides the literal password or token inside `url`."""
        try:
            parts = urlsplit(url)
            password, username = parts.password, parts.username
        except ValueError:
            return cls()
        if password:
            secret = password
        elif username and parts.scheme in {"http", "https"}:
            secret = username  # a token passed as the user name (https://TOKEN@host)
        else:
            return cls()
        return cls(tuple(dict.fromkeys((secret, unquote(secret)))))

    def __call__(self, text: str) -> str:
        """Return `text` with credentials replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _USERINFO.sub(r"\g<scheme>***@", text)


def clone_dir_name(name: str) -> str:
    """Return `<slug>-<hash>` for a redacted URL: filesystem-safe, short, and unique per URL."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower().replace("***@", "")).strip("-")
    return f"{slug[-40:].lstrip('-') or 'repo'}-{digest}"


def git_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """Return the variables git runs with on top of the inherited environment.

    Prompts are off and messages are in English (they are parsed). GitPython starts every
    command from `os.environ` plus these; `GitRunner` adds the variables that pin the
    repository (see `pinned_environment`).

    Args:
        overrides: Variables to set on top (author identity and the like).
    """
    return {
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GCM_INTERACTIVE": "never",
        **overrides,
    }


PARENT_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_NAMESPACE",
    "GIT_PROTOCOL",
)
"""Variables a surrounding git process (a hook, say) sets that would redirect git elsewhere."""

TOKEN_VARIABLE = "PROMOTER_GIT_TOKEN"  # noqa: S105 (a variable name, not a secret)
"""Where git's credential helper finds the token: the child's environment, never argv or URL."""

_HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
    'echo "password=$' + TOKEN_VARIABLE + '"; }; f'
)


def credential_environment() -> dict[str, str]:
    """Config (through GIT_CONFIG_*) that answers HTTPS auth with the token in TOKEN_VARIABLE.

    Inherited helpers are reset first, so no credential store sees or keeps the token. The
    helper is a fixed shell snippet: the token itself is only in the child's environment.
    """
    return {
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "credential.helper",
        "GIT_CONFIG_VALUE_0": "",
        "GIT_CONFIG_KEY_1": "credential.helper",
        "GIT_CONFIG_VALUE_1": _HELPER,
    }


def pinned_environment(root: Path) -> dict[str, str]:
    """Variables that point every repository lookup at the clone in `root`.

    A parent git process (a hook running the tests, say) exports `GIT_DIR`, `GIT_INDEX_FILE`
    and the like. GitPython can add variables to the child environment but not remove them,
    so each is set to the clone's own value (or to an empty, harmless one) instead; the
    `--git-dir` and `--work-tree` options `GitRunner` passes win over the environment too.
    `GIT_QUARANTINE_PATH` (set only inside a receive hook) cannot be neutralised this way.
    """
    git_dir = root / ".git"
    return {
        "GIT_DIR": str(git_dir),
        "GIT_WORK_TREE": str(root),
        "GIT_INDEX_FILE": str(git_dir / "index"),
        "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
        "GIT_COMMON_DIR": str(git_dir),
        "GIT_CONFIG": str(git_dir / "config"),  # read by `git config` alone
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_NAMESPACE": "",
        "GIT_PREFIX": "",
        "GIT_CONFIG_PARAMETERS": "",
        "GIT_CONFIG_COUNT": "0",
    }


class CloneLock:
    """Exclusive access to one clone: a thread lock, then `flock` on a file beside the clone.

    The lock file is opened anew for each acquisition, so two `CloneLock` objects on the
    same file (two workspaces, or two processes) exclude each other too.

    Args:
        lock_file: The file to `flock`; created (with its directory) when missing.
    """

    def __init__(self, lock_file: Path) -> None:
        self._file = lock_file
        self._thread_lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the `with` block."""
        with self._thread_lock:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            with self._file.open("a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
