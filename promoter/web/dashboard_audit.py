"""The last decisions of the audit stream, read from its end (never the whole stream)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext

from promoter.runtime.bus import AUDIT_STREAM, Bus, read_pending
from promoter.runtime.report import compiled_pipelines

__all__ = ["Decisions", "pr_link"]

_BATCH = 256
_CACHED = 32


def pr_link(url: str | None) -> str | None:
    """`url` if a browser can follow it (http or https), else None (a local path, say)."""
    if url and url.lower().startswith(("https://", "http://")):
        return url
    return None


def _pull_url(repository: str, number: int) -> str | None:
    """The web address of PR `number` of a repository on a forge (GitHub's form)."""
    base = pr_link(repository)
    if base is None:
        return None
    return f"{base.rstrip('/').removesuffix('.git')}/pull/{number}"


async def _read(js: JetStreamContext, subject: str, start: int) -> list[dict[str, Any]]:
    """Records on `subject` from stream sequence `start` to the end as it is now, oldest first."""
    out: list[dict[str, Any]] = []
    for msg in await read_pending(
        js, AUDIT_STREAM, subject, DeliverPolicy.BY_START_SEQUENCE, start
    ):
        with contextlib.suppress(ValueError):
            out.append(json.loads(msg.data))
    return out


class Decisions:
    """Reads the newest audit records; the answer is cached until the stream grows."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._cache: dict[tuple[str | None, int], tuple[int, list[dict[str, Any]]]] = {}

    async def last(self, limit: int, pipeline: str | None = None) -> list[dict[str, Any]]:
        """The last `limit` decisions (of `pipeline`, or all), newest first.

        Reads back from the stream's end: `limit` messages for all pipelines; for one pipeline,
        a window that grows until it holds `limit` of that pipeline's records.
        """
        subject = f"promoter.audit.{pipeline}" if pipeline else "promoter.audit.>"
        info = await self.bus.js.stream_info(
            AUDIT_STREAM, subjects_filter=subject if pipeline else None
        )
        state = info.state
        count = (state.subjects or {}).get(subject, 0) if pipeline else state.messages
        if not count:
            return []
        key = (pipeline, limit)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == state.last_seq:
            return cached[1]
        span = limit if count > limit else state.last_seq - state.first_seq + 1
        while True:
            start = max(state.first_seq, state.last_seq - span + 1)
            records = await _read(self.bus.js, subject, start)
            if len(records) >= limit or start <= state.first_seq:
                break
            span *= 8
        newest = records[::-1][:limit]
        await self._link(newest)
        if len(self._cache) >= _CACHED:
            self._cache.clear()
        self._cache[key] = (state.last_seq, newest)
        return newest

    async def _link(self, records: list[dict[str, Any]]) -> None:
        """Add `pr_url` to records naming a PR, from their pipeline's repository address."""
        repositories = {
            name: c.pipeline.spec.repository.url
            for name, c in (await compiled_pipelines(self.bus)).items()
        }
        for record in records:
            number, repository = record.get("pr"), repositories.get(str(record.get("pipeline")))
            record["pr_url"] = None
            if isinstance(number, int) and repository:
                record["pr_url"] = _pull_url(repository, number)
