"""`promoter gateway` over real HTTP on 127.0.0.1, publishing to a real nats-server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from harness import Harness
from prometheus_client.parser import text_string_to_metric_families

from promoter.core.events import subject_for
from promoter.gateway.server import Gateway, serve
from promoter.runtime.bus import EVENTS_STREAM
from promoter.sources.base import Delivery, SourceConfig
from promoter.sources.registry import normalize
from promoter.sources.verify import github_signature, mlflow_signature

DIGEST = "sha256:1bc04b5291c26a46d918139138b992d2de976d6851d0893b0476b85bfbdfc6e6"
TOKEN = "registry-token"
GITHUB_SECRET = "s3cr3t"
MLFLOW_SECRET = "my-webhook-secret"
DISTRIBUTION = "application/vnd.docker.distribution.events.v2+json"


def registry_push(tag: str = "1.4.2", event_id: str = "a49071e5-3593-4185-9c3c") -> bytes:
    """A Distribution envelope: a tagged index push and a blob push (ignored)."""
    target = {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": DIGEST,
        "size": 856,
        "length": 856,
        "repository": "payments/api",
        "url": f"https://registry.example.com/v2/payments/api/manifests/{DIGEST}",
        "tag": tag,
    }
    blob = {**target, "mediaType": "application/octet-stream"}
    del blob["tag"]
    events = [
        {"id": event_id, "timestamp": "2026-03-04T10:15:30.112093311Z", "action": "push",
         "target": target, "request": {"id": "r1", "host": "registry.example.com",
         "method": "PUT", "useragent": "buildkit/v0.17"}, "actor": {"name": "ci-bot"}},
        {"id": "blob-1", "timestamp": "2026-03-04T10:15:29Z", "action": "push", "target": blob,
         "request": {"id": "r0", "host": "registry.example.com", "method": "PUT",
         "useragent": "buildkit"}, "actor": {}},
    ]  # fmt: skip
    return json.dumps({"events": events}, indent=3).encode()


CONFIGS = {
    "docker-distribution": SourceConfig(secret=TOKEN),
    "github": SourceConfig(secret=GITHUB_SECRET),
    "mlflow": SourceConfig(secret=MLFLOW_SECRET, max_age=timedelta(days=36500)),
}


class Client:
    """Posts deliveries to a running gateway."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base

    async def post(
        self, source: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        async with self.session.post(
            f"{self.base}/hooks/{source}", data=body, headers=headers
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def client(world: Harness) -> AsyncIterator[Client]:
    gateway = Gateway(world.bus, CONFIGS, world.clock, max_body=64 * 1024)
    async with serve(gateway, "127.0.0.1", 0) as port, aiohttp.ClientSession() as session:
        yield Client(session, f"http://127.0.0.1:{port}")


async def stream_messages(world: Harness) -> int:
    info = await world.bus.js.stream_info(EVENTS_STREAM)
    return int(info.state.messages)


async def stored(world: Harness, event: dict[str, Any]) -> dict[str, Any]:
    """The last event published on `event`'s subject, as stored on the stream."""
    msg = await world.bus.js.get_last_msg(EVENTS_STREAM, subject_for(event["type"]))
    assert msg.data is not None
    found: dict[str, Any] = json.loads(msg.data)
    return found


async def test_registry_push_becomes_a_dev_pr_and_a_redelivery_no_second_event(
    world: Harness, client: Client
) -> None:
    world.write_pipeline("payments", image="registry.example.com/payments/api")
    await world.start_worker()
    headers = {"Content-Type": DISTRIBUTION, "Authorization": f"Bearer {TOKEN}"}
    body = registry_push()

    status, answer = await client.post("docker-distribution", body, headers)

    assert status == 202
    assert answer["ids"] == ["a49071e5-3593-4185-9c3c"]
    assert answer["duplicates"] == []
    assert len(answer["ignored"]) == 1  # the blob
    await world.live("payments", "dev", "1.4.2")
    dev_prs = [pr for pr in await world.prs() if pr.environment == "dev"]
    assert [(pr.branch, pr.state, pr.versions) for pr in dev_prs] == [
        ("promoter/payments/dev", "merged", {"api": "1.4.2"})
    ]
    before = await stream_messages(world)

    status, answer = await client.post("docker-distribution", body, headers)

    assert status == 202
    assert answer["duplicates"] == ["a49071e5-3593-4185-9c3c"]
    assert await stream_messages(world) == before
    await world.quiet()
    assert len([pr for pr in await world.prs() if pr.environment == "dev"]) == 1


def _github(event: str, payload: dict[str, Any], delivery: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": github_signature(GITHUB_SECRET, body),
    }


def _package() -> dict[str, Any]:
    version = {
        "version": DIGEST,
        "name": DIGEST,
        "container_metadata": {"tag": {"name": "1.4.2", "digest": DIGEST}},
    }
    package = {
        "name": "api",
        "namespace": "acme",
        "package_type": "CONTAINER",
        "ecosystem": "CONTAINER",
        "updated_at": "2026-03-04T10:15:31Z",
        "package_version": version,
    }
    return {"action": "published", "registry_package": package, "sender": {"login": "bot"}}


def _review() -> dict[str, Any]:
    head = "d052551240e7dd5cf8e6269c09e2cae805e5a5b5"
    pull = {
        "number": 42,
        "state": "open",
        "body": "promote\n\nPromoter-Pipeline: payments\nPromoter-Environment: prod\n"
        "Promoter-Bundle: 0123456789ab\n",
        "head": {"ref": "promoter/payments/prod", "sha": head},
        "base": {"ref": "main", "sha": "2cb7a00cebf0155e5870a3800bac8e851f21e651"},
    }
    review = {
        "id": 1,
        "user": {"login": "bob"},
        "state": "approved",
        "commit_id": head,
        "submitted_at": "2026-03-04T11:02:11Z",
    }
    return {"action": "submitted", "review": review, "pull_request": pull, "sender": {}}


def _mlflow() -> tuple[bytes, dict[str, str]]:
    body = (
        b'{"entity": "model_version", "action": "created", "timestamp": '
        b'"2025-07-31T22:27:32.080217+00:00", "data": {"name": "fraud-detector", "version": "7", '
        b'"source": "models:/m-0123456789abcdef", "run_id": null, "tags": {}, '
        b'"description": null}}'
    )
    delivery, stamp = "3f7c2b9e-1b1a-4c3e-9a77-0d2f5c1e8a10", "1754000852"
    return body, {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": mlflow_signature(MLFLOW_SECRET, delivery, stamp, body),
    }


def _alerts() -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "promoter_pipeline": "payments",
                   "promoter_env": "prod"},
        "annotations": {"summary": "5xx above 5%"},
        "startsAt": "2026-03-04T11:10:45.828Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "1a30ba71cca2921f",
    }  # fmt: skip
    return json.dumps(
        {"version": "4", "status": "firing", "receiver": "promoter", "groupKey": "{}:{}",
         "alerts": [alert], "truncatedAlerts": 0}
    ).encode()  # fmt: skip


def _cloudevents() -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "build-77",
            "source": "https://ci.example.com",
            "type": "promoter.image.built",
            "time": "2026-03-04T10:15:30Z",
            "data": {"repository": "ghcr.io/acme/web", "tag": "2.0.0", "digest": DIGEST},
        }
    ).encode()


def deliveries() -> list[tuple[str, bytes, dict[str, str]]]:
    """One delivery of every kind a source acts on (all accepted with at least one event)."""
    json_type = {"Content-Type": "application/json"}
    argo = {"app": "payments-prod", "pipeline": "payments", "environment": "prod",
            "health": "Healthy", "sync": "Synced", "revision": "8d0ee5e", "phase": "Succeeded",
            "finishedAt": "2026-03-04T11:06:31Z", "images": []}  # fmt: skip
    harbor = {
        "type": "PUSH_ARTIFACT",
        "occur_at": 1772619330,
        "operator": "robot$payments+ci",
        "event_data": {
            "resources": [{"digest": DIGEST, "tag": "1.4.2",
                           "resource_url": "harbor.example.com/payments/api:1.4.2"}],
            "repository": {"name": "api", "namespace": "payments",
                           "repo_full_name": "payments/api", "repo_type": "private"},
        },
    }  # fmt: skip
    return [
        ("cloudevents", _cloudevents(), {"Content-Type": "application/cloudevents+json"}),
        ("docker-distribution", registry_push("2.0.0", "e2"),
         {"Content-Type": DISTRIBUTION, "Authorization": TOKEN}),
        ("harbor", json.dumps(harbor).encode(), json_type),
        ("github", *_github("registry_package", _package(), "d-package")),
        ("github", *_github("pull_request_review", _review(), "d-review")),
        ("mlflow", *_mlflow()),
        ("alertmanager", _alerts(), json_type),
        ("argocd", json.dumps(argo).encode(), json_type),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("source", "body", "headers"),
    deliveries(),
    ids=[f"{s}-{i}" for i, (s, _, _) in enumerate(deliveries())],
)
async def test_each_kind_is_published_as_normalized(
    world: Harness, client: Client, source: str, body: bytes, headers: dict[str, str]
) -> None:
    expected = normalize(
        source, Delivery.of(body, headers), CONFIGS.get(source, SourceConfig()), world.clock()
    ).events
    assert expected

    status, answer = await client.post(source, body, headers)

    assert (status, answer["ids"]) == (202, [e["id"] for e in expected])
    assert await stored(world, expected[-1]) == expected[-1]


async def test_answers_for_refused_deliveries(world: Harness, client: Client) -> None:
    body, headers = _github("registry_package", _package(), "d-forged")
    forged = {**headers, "X-Hub-Signature-256": github_signature("wrong", body)}
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    distribution = {"Content-Type": DISTRIBUTION, "Authorization": f"Bearer {TOKEN}"}
    cases = [
        ("github", body, forged, 401, "does not match"),
        ("github", body, unsigned, 401, "missing"),
        ("docker-distribution", registry_push(), {"Content-Type": DISTRIBUTION}, 401, "missing"),
        ("docker-distribution", b"{not json", distribution, 400, "not valid JSON"),
        ("docker-distribution", registry_push(), {**distribution, "Content-Type": "text/plain"},
         415, "text/plain"),
        ("nexus", b"{}", {"Content-Type": "application/json"}, 404, "unknown source 'nexus'"),
        ("harbor", b" " * (65 * 1024), {"Content-Type": "application/json"}, 413, "larger"),
    ]  # fmt: skip
    before = await stream_messages(world)
    for source, payload, sent, want, reason in cases:
        status, answer = await client.post(source, payload, sent)
        assert (source, status) == (source, want)
        assert reason in answer["error"]
    assert await stream_messages(world) == before


async def test_an_ignored_delivery_is_200_with_its_reasons(client: Client) -> None:
    body, headers = _github("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, "d-ping")

    status, answer = await client.post("github", body, headers)

    assert status == 200
    assert answer["ids"] == []
    assert len(answer["ignored"]) == 1


async def test_healthz_and_nats_outage(world: Harness, client: Client) -> None:
    async with client.session.get(f"{client.base}/healthz") as response:
        assert (response.status, await response.json()) == (
            200,
            {"status": "ok", "nats": "connected"},
        )
    world.server.stop()
    await world.until(lambda: _disconnected(world), "the gateway saw NATS go", within=10)

    status, answer = await client.post("cloudevents", _cloudevents(), {
        "Content-Type": "application/cloudevents+json"})  # fmt: skip

    assert status == 503
    assert "retry" in answer["error"]
    async with client.session.get(f"{client.base}/healthz") as response:
        assert response.status == 503
    world.server.start()  # the harness closes a connected bus


async def _disconnected(world: Harness) -> bool:
    return not world.bus.connected


async def test_deliveries_are_counted_by_source_and_status_on_metrics(client: Client) -> None:
    def count(text: str, source: str, status: str) -> float:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "promoter_gateway_deliveries_total" and sample.labels == {
                    "source": source,
                    "status": status,
                }:
                    return sample.value
        return 0.0

    async def scrape() -> str:
        async with client.session.get(f"{client.base}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return await response.text()

    before = await scrape()
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": DISTRIBUTION}
    assert (await client.post("docker-distribution", registry_push(), auth))[0] == 202
    assert (await client.post("docker-distribution", registry_push(), {}))[0] == 401
    assert (await client.post("no-such-source", b"{}", {}))[0] == 404
    assert (await client.post("made-up-by-the-sender", b"{}", {}))[0] == 404
    after = await scrape()
    for source, status, more in (
        ("docker-distribution", "202", 1),
        ("docker-distribution", "401", 1),
        ("unknown", "404", 2),  # a path names no label: the sender picks it
    ):
        assert count(after, source, status) == count(before, source, status) + more
