"""Deliveries the gateway published, remembered in NATS KV so that a replay publishes nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from promoter.runtime.metrics import cas_conflict

__all__ = ["REPLAY_BUCKET", "KvReplays", "Replays", "fingerprint", "kv_replays"]

REPLAY_BUCKET = "promoter-gateway-deliveries"


class Replays(Protocol):
    """Which deliveries were already published (shared by every gateway)."""

    async def seen(self, key: str) -> bool:
        """Whether the delivery `key` was published within the window."""
        ...

    async def remember(self, key: str) -> None:
        """Remember that the delivery `key` was published, for the window."""
        ...


def fingerprint(source: str, body: bytes) -> str:
    """A delivery's identity: its source and its exact body, which the signature covers.

    GitHub does not sign `X-GitHub-Delivery`, so a captured delivery re-sent under a new id
    still has this fingerprint.
    """
    return hashlib.sha256(source.encode() + b"\0" + body).hexdigest()


@dataclass(frozen=True)
class KvReplays:
    """Fingerprints in KV bucket `REPLAY_BUCKET`, each expiring `window` seconds after it is put."""

    kv: KeyValue
    window: float

    async def seen(self, key: str) -> bool:
        """Whether `key` was remembered and has not expired."""
        try:
            await self.kv.get(key)
        except KeyNotFoundError:
            return False
        return True

    async def remember(self, key: str) -> None:
        """Remember `key` for the window (a concurrent identical delivery may have done it)."""
        try:
            await self.kv.create(key, b"", msg_ttl=self.window)
        except KeyWrongLastSequenceError:
            cas_conflict("replays")


async def kv_replays(js: JetStreamContext, window: float, replicas: int = 1) -> KvReplays:
    """The shared replay memory, its bucket created when missing."""
    try:
        kv = await js.key_value(REPLAY_BUCKET)
    except BucketNotFoundError:
        config = KeyValueConfig(
            bucket=REPLAY_BUCKET,
            description="fingerprints of webhook deliveries the gateway published",
            history=1,
            storage=StorageType.FILE,
            replicas=replicas,
        )
        kv = await js.create_key_value(config)
    return KvReplays(kv, window)
