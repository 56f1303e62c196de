"""Headless Debian Chromium for browser tests, and a child process whose output can be awaited."""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest

__all__ = ["CHROMIUM_ARGS", "Lines", "artifacts_dir", "chromium_path", "missing", "stop"]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = (
    "install Debian's chromium (`apt-get install chromium`) or point PROMOTER_CHROMIUM at a "
    "Chromium binary; Playwright's own browser downloads are not used"
)


def missing(what: str) -> None:
    """Skip the test because `what` is absent, or fail it in CI (where it must run)."""
    message = f"{what}: {INSTALL}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: browser tests must run)")
    pytest.skip(message)


def chromium_path() -> str:
    """PROMOTER_CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH; skip/fail if none."""
    configured = os.environ.get("PROMOTER_CHROMIUM")
    if configured:
        if not os.access(configured, os.X_OK):
            missing(f"PROMOTER_CHROMIUM={configured} is not an executable")
        return configured
    for candidate in ("/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing("Chromium not found")
    raise AssertionError  # unreachable: missing() skips or fails


def artifacts_dir() -> Path:
    """PROMOTER_TEST_ARTIFACTS, else `.artifacts/` at the repository root (created)."""
    default = Path(__file__).resolve().parent.parent / ".artifacts"
    path = Path(os.environ.get("PROMOTER_TEST_ARTIFACTS") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


class Lines:
    """The lines a child process writes, read by a thread so a test can wait for one."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._queue.put(line.rstrip("\n"))
        except (OSError, ValueError):  # the stream was closed under us: the child is gone
            pass
        finally:
            self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first further line matching `pattern`; fails with the output so far."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"output ended before {pattern!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        pytest.fail(f"no line matching {pattern!r} within {timeout}s:\n" + "\n".join(self.seen))


def stop(child: subprocess.Popen[str]) -> None:
    """Terminate `child` if it still runs (kill it after 10 s)."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
