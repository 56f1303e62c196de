"""The webhook gateway: `POST /hooks/<source>` in, verified promoter events out to NATS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog
from aiohttp import web

from promoter.gateway.replays import Replays, fingerprint
from promoter.runtime.metrics import GATEWAY_DELIVERIES
from promoter.sources.base import Delivery, DeliveryError, Normalized, SourceConfig
from promoter.sources.registry import SOURCES, InternalError, normalize
from promoter.web.serving import metrics, serve_app

__all__ = ["EventSink", "Gateway", "serve"]

log = structlog.get_logger("promoter.gateway")

# Headers that carry the sender's own delivery id; logged to tie a request to its events.
_DELIVERY_HEADERS = ("x-github-delivery", "x-mlflow-delivery-id", "ce-id")
PUBLISH_TIMEOUT = 10.0
HTTP_ERROR = 400


class EventSink(Protocol):
    """Where accepted events go (the bus)."""

    @property
    def connected(self) -> bool:
        """Whether events can be published right now."""
        ...

    async def publish_event(self, event: dict[str, Any]) -> bool:
        """Publish one event; True if stored, False if a duplicate of an earlier one."""
        ...


class _Refusal(Exception):  # noqa: N818 (an HTTP answer, not an error of promoter's)
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _answer(code: int, **body: Any) -> web.Response:
    return web.json_response(body, status=code, dumps=lambda o: json.dumps(o) + "\n")


@dataclass
class Gateway:
    """Routes deliveries to their source's adapter and publishes what they stand for.

    With `replays`, a delivery whose exact body this source already had published within the
    replay window publishes nothing again (answered 202 with its ids as duplicates).
    """

    sink: EventSink
    configs: Mapping[str, SourceConfig]
    clock: Callable[[], datetime]
    max_body: int = 1024 * 1024
    counts: dict[str, int] = field(default_factory=dict)
    replays: Replays | None = None

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/hooks/{source}", self.hook)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", metrics)
        return app

    async def healthz(self, _request: web.Request) -> web.Response:
        """200 while events can be published, 503 while NATS is unreachable."""
        if self.sink.connected:
            return _answer(200, status="ok", nats="connected")
        return _answer(503, status="unavailable", nats="disconnected")

    async def hook(self, request: web.Request) -> web.Response:
        """One webhook delivery, counted by source and answer."""
        name = request.match_info["source"]
        response = await self._hook(name, request)
        source = name if name in SOURCES else "unknown"  # a label only for known sources
        GATEWAY_DELIVERIES.labels(source=source, status=str(response.status)).inc()
        return response

    async def _hook(self, name: str, request: web.Request) -> web.Response:
        delivery_id = next(
            (request.headers[h] for h in _DELIVERY_HEADERS if h in request.headers), None
        )
        bound = log.bind(source=name, delivery=delivery_id)
        try:
            delivery = await self._read(name, request)
            result = normalize(name, delivery, self.configs.get(name, SourceConfig()), self.clock())
        except _Refusal as exc:
            return self._done(bound, exc.status, error=str(exc))
        except InternalError as exc:
            bound.error("adapter failed", exc_info=exc.__cause__)
            return self._done(bound, exc.status, error=str(exc))
        except DeliveryError as exc:
            return self._done(bound, exc.status, error=str(exc))
        if not result.events:
            return self._done(bound, 200, ids=[], ignored=list(result.ignored))
        return await self._publish(bound, fingerprint(name, delivery.body), result)

    async def _read(self, name: str, request: web.Request) -> Delivery:
        if name not in SOURCES:
            raise _Refusal(404, f"unknown source {name!r}; known: {', '.join(sorted(SOURCES))}")
        too_large = _Refusal(
            413, f"body is larger than {self.max_body} bytes; raise PROMOTER_GATEWAY_MAX_BODY"
        )
        if (request.content_length or 0) > self.max_body:
            raise too_large
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise too_large from None
        return Delivery.of(body, request.headers.items())

    async def _publish(
        self, bound: structlog.typing.FilteringBoundLogger, key: str, result: Normalized
    ) -> web.Response:
        ids = [e["id"] for e in result.events]
        ignored = list(result.ignored)
        if not self.sink.connected:
            return self._unavailable(
                bound, "NATS is unreachable; nothing was published, retry the delivery"
            )
        try:
            if self.replays is not None and await self.replays.seen(key):
                bound.warning("replayed delivery; nothing published", ids=ids)
                return self._done(bound, 202, ids=ids, duplicates=ids, ignored=ignored)
            duplicates = await self._publish_events(result.events)
        except Exception as exc:  # noqa: BLE001 (any bus failure: the sender must retry)
            bound.warning("publish failed", error=f"{type(exc).__name__}: {exc}")
            return self._unavailable(
                bound, f"could not publish to NATS ({type(exc).__name__}); retry the delivery"
            )
        await self._remember(bound, key)
        return self._done(bound, 202, ids=ids, duplicates=duplicates, ignored=ignored)

    async def _publish_events(self, events: tuple[dict[str, Any], ...]) -> list[str]:
        """Publish each event; the ids NATS already had (deduplicated) are returned."""
        duplicates = []
        for event in events:
            stored = await asyncio.wait_for(self.sink.publish_event(event), PUBLISH_TIMEOUT)
            if not stored:
                duplicates.append(event["id"])
        return duplicates

    async def _remember(self, bound: structlog.typing.FilteringBoundLogger, key: str) -> None:
        """Record a published delivery; if that fails, NATS's own dedup window still holds."""
        if self.replays is None:
            return
        try:
            await self.replays.remember(key)
        except Exception as exc:  # noqa: BLE001 (published already: the answer stays 202)
            bound.warning("could not remember the delivery", error=f"{type(exc).__name__}")

    def _unavailable(
        self, bound: structlog.typing.FilteringBoundLogger, message: str
    ) -> web.Response:
        return self._done(bound, 503, error=message, headers={"Retry-After": "5"})

    def _done(
        self,
        bound: structlog.typing.FilteringBoundLogger,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        **body: Any,
    ) -> web.Response:
        self.counts[str(status)] = self.counts.get(str(status), 0) + 1
        summary = {k: v for k, v in body.items() if k in ("error", "ids", "duplicates")}
        if body.get("ignored"):
            summary["ignored"] = len(body["ignored"])
        report = bound.warning if status >= HTTP_ERROR else bound.info
        report("delivery", status=status, **summary)
        response = _answer(status, **body)
        response.headers.update(headers or {})
        return response


@asynccontextmanager
async def serve(gateway: Gateway, host: str, port: int) -> AsyncIterator[int]:
    """Serve `gateway` on host:port until the block exits; yields the bound port (port 0: any)."""
    async with serve_app(gateway.app(), host, port) as bound:
        yield bound
