"""Webhook deliveries in GitHub's format, sent from background tasks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass

import aiohttp
import structlog

from promoter.testing.github_emulator.router import HookEvent

__all__ = ["Delivered", "Hook", "HookSender"]

log = structlog.get_logger("promoter.testing.github_emulator")

TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass(frozen=True)
class Hook:
    """A webhook subscription: where to POST and the secret that signs the body."""

    url: str
    secret: str | None = None


@dataclass(frozen=True)
class Delivered:
    """One delivery attempt: event, delivery id and the receiver's status (None: failed)."""

    url: str
    event: str
    delivery: str
    status: int | None


class HookSender:
    """Posts webhook events to every hook; failures are logged and never reach the API."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self.delivered: list[Delivered] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def send(self, events: list[HookEvent]) -> None:
        """Schedule delivery of `events` to every hook on the running loop."""
        for event in events:
            for hook in list(self.hooks):
                task = asyncio.get_running_loop().create_task(self._deliver(hook, event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait until every scheduled delivery has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Finish pending deliveries and close the HTTP session."""
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, hook: Hook, event: HookEvent) -> None:
        body = json.dumps(event.payload).encode()
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/emulator",
            "X-GitHub-Event": event.event,
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-Installation-Target-Type": "repository",
        }
        if hook.secret:
            digest = hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        status: int | None = None
        try:
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=TIMEOUT)
            async with self._session.post(hook.url, data=body, headers=headers) as response:
                status = response.status
                await response.read()
        except Exception as exc:  # noqa: BLE001 (a failed delivery must never break the API)
            log.warning("webhook delivery failed", url=hook.url, kind=event.event, error=str(exc))
        self.delivered.append(Delivered(hook.url, event.event, delivery, status))
