"""Forged, missing and replayed webhooks are refused by the real gateway and publish nothing."""

from __future__ import annotations

import base64
import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from harness import FakeClock, Harness
from test_gateway import Client, stream_messages
from webhooks import fixture

from promoter.errors import ConfigurationError
from promoter.gateway.config import source_configs
from promoter.gateway.replays import kv_replays
from promoter.gateway.server import Gateway, serve
from promoter.settings import Settings, SourceSettings
from promoter.sources.base import SourceConfig
from promoter.sources.docker_distribution import ENVELOPE
from promoter.sources.registry import SOURCES
from promoter.sources.verify import github_signature, mlflow_signature

pytestmark = pytest.mark.security

SECRETS = {name: f"{name}-hook-s3cret-7f3a" for name in SOURCES}
MAX_AGE = timedelta(minutes=10)
MAX_BODY = 64 * 1024
JSON = "application/json"
Headers = dict[str, str]


@dataclass(frozen=True)
class Kind:
    """One kind of delivery a source acts on, and how its sender proves who it is."""

    name: str
    source: str
    body: bytes
    media: str
    sign: Callable[[str, bytes], Headers]
    event: str = ""

    def headers(self, body: bytes | None = None, secret: str | None = None) -> Headers:
        """Genuine headers for `body` (default: this kind's), signed with `secret`."""
        signed = self.sign(secret or SECRETS[self.source], self.body if body is None else body)
        github = {"X-GitHub-Event": self.event, "X-GitHub-Delivery": f"d-{self.event}"}
        github = github if self.event else {}
        return {"Content-Type": self.media, **github, **signed}


class Gate(Client):
    """The real gateway on 127.0.0.1 in front of the harness's nats-server."""

    def __init__(self, session: aiohttp.ClientSession, base: str, world: Harness) -> None:
        super().__init__(session, base)
        self.world = world

    async def messages(self) -> int:
        """Messages on the events stream."""
        return await stream_messages(self.world)

    def mlflow(self, body: bytes, age: timedelta = timedelta(0), delivery: str = "m-1") -> Headers:
        """MLflow's headers for `body`, sent `age` ago by the harness clock."""
        sent = str(int((self.world.clock() - age).timestamp()))
        signature = mlflow_signature(SECRETS["mlflow"], delivery, sent, body)
        return {
            "Content-Type": JSON,
            "X-MLflow-Delivery-Id": delivery,
            "X-MLflow-Timestamp": sent,
            "X-MLflow-Signature": signature,
        }


def _github(secret: str, body: bytes) -> Headers:
    return {"X-Hub-Signature-256": github_signature(secret, body)}


def _bearer(secret: str, _body: bytes) -> Headers:
    return {"Authorization": f"Bearer {secret}"}


_MLFLOW_SENT = str(int(FakeClock()().timestamp()))  # when the harness clock starts


def _mlflow(secret: str, body: bytes) -> Headers:
    return {
        "X-MLflow-Delivery-Id": "m-1",
        "X-MLflow-Timestamp": _MLFLOW_SENT,
        "X-MLflow-Signature": mlflow_signature(secret, "m-1", _MLFLOW_SENT, body),
    }


PACKAGE = fixture("github", "registry_package-published.json")
REVIEW = fixture("github", "pull_request_review-submitted-promoter.json")
CLOUDEVENTS = "application/cloudevents+json"
KINDS = (
    Kind("github package", "github", PACKAGE, JSON, _github, "registry_package"),
    Kind("github review", "github", REVIEW, JSON, _github, "pull_request_review"),
    Kind("mlflow", "mlflow", fixture("mlflow", "model_version-created.json"), JSON, _mlflow),
    Kind("registry", "docker-distribution",
         fixture("docker-distribution", "push-index-tagged.json"), ENVELOPE, _bearer),
    Kind("harbor", "harbor", fixture("harbor", "push-artifact.json"), JSON, _bearer),
    Kind("cloudevents", "cloudevents", fixture("cloudevents", "image-built.json"), CLOUDEVENTS,
         _bearer),
    Kind("alertmanager", "alertmanager", fixture("alertmanager", "firing.json"), JSON, _bearer),
    Kind("argocd", "argocd", fixture("argocd", "healthy-synced.json"), JSON, _bearer),
)  # fmt: skip


def _hmac_hex(secret: str, body: bytes, algorithm: str) -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


def forgeries(kind: Kind) -> dict[str, Headers]:
    """Every way this kind's proof of origin can be wrong, as the headers sent."""
    good = kind.headers()
    proofs = ("X-Hub-Signature-256", "X-MLflow-Signature", "Authorization")
    missing = {k: v for k, v in good.items() if k not in proofs}
    common = {"forged": kind.headers(secret="guessed-secret"), "missing": missing}
    if kind.source == "github":
        return {**common, **_github_forgeries(kind, good, missing)}
    if kind.source == "mlflow":
        digest = good["X-MLflow-Signature"].removeprefix("v1,")
        return {**common, "other body": kind.headers(body=kind.body + b" "),
                "v2 prefix": {**good, "X-MLflow-Signature": f"v2,{digest}"},
                "no prefix": {**good, "X-MLflow-Signature": digest}}  # fmt: skip
    secret = SECRETS[kind.source]
    basic = base64.b64encode(f"x:{secret}".encode()).decode()
    return {**common, "empty": {**missing, "Authorization": ""},
            "basic": {**missing, "Authorization": f"Basic {basic}"},
            "token scheme": {**missing, "Authorization": f"Token {secret}"},
            "longer": {**missing, "Authorization": f"Bearer {secret}x"}}  # fmt: skip


def _github_forgeries(kind: Kind, good: Headers, missing: Headers) -> dict[str, Headers]:
    sha1 = f"sha1={_hmac_hex(SECRETS['github'], kind.body, 'sha1')}"
    sha512 = f"sha512={_hmac_hex(SECRETS['github'], kind.body, 'sha512')}"
    bare = good["X-Hub-Signature-256"].removeprefix("sha256=")
    return {"other body": kind.headers(body=kind.body + b" "),
            "sha1": {**good, "X-Hub-Signature-256": sha1},
            "only the old X-Hub-Signature": {**missing, "X-Hub-Signature": sha1},
            "sha512": {**good, "X-Hub-Signature-256": sha512},
            "no prefix": {**good, "X-Hub-Signature-256": bare}}  # fmt: skip


@pytest.fixture
async def gate(world: Harness) -> AsyncIterator[Gate]:
    configs = {name: SourceConfig(secret=SECRETS[name], max_age=MAX_AGE) for name in SOURCES}
    replays = await kv_replays(world.bus.js, MAX_AGE.total_seconds())
    gateway = Gateway(world.bus, configs, world.clock, max_body=MAX_BODY, replays=replays)
    async with serve(gateway, "127.0.0.1", 0) as port, aiohttp.ClientSession() as session:
        yield Gate(session, f"http://127.0.0.1:{port}", world)


async def test_every_forged_or_missing_proof_of_origin_is_401_and_publishes_nothing(
    gate: Gate,
) -> None:
    for kind in KINDS:
        for forgery, headers in forgeries(kind).items():
            status, answer = await gate.post(kind.source, kind.body, headers)
            assert (kind.name, forgery, status) == (kind.name, forgery, 401), answer
    assert await gate.messages() == 0
    for kind in KINDS:  # the very same deliveries, genuinely signed, are published
        status, answer = await gate.post(kind.source, kind.body, kind.headers())
        assert (kind.name, status) == (kind.name, 202), answer
    assert await gate.messages() >= len(KINDS)


async def test_the_signature_is_checked_before_the_content_type_or_the_body(gate: Gate) -> None:
    garbage = b"\xff{ not json"
    for kind in KINDS:
        forged = {**kind.headers(body=garbage, secret="guessed"), "Content-Type": "text/plain"}
        status, answer = await gate.post(kind.source, garbage, forged)
        assert (kind.name, status) == (kind.name, 401), answer
        genuine = kind.headers(body=garbage)
        status, _ = await gate.post(kind.source, garbage, genuine)
        assert (kind.name, status) == (kind.name, 400)  # only a verified body is read
    assert await gate.messages() == 0


async def test_mlflow_deliveries_outside_the_signed_time_window_are_refused(gate: Gate) -> None:
    body = fixture("mlflow", "model_version-created.json")
    signed_now = gate.mlflow(body, delivery="m-moved")
    earlier = str(int(signed_now["X-MLflow-Timestamp"]) - 1)
    refused = {
        "too old": gate.mlflow(body, MAX_AGE + timedelta(seconds=1), "m-old"),
        "from the future": gate.mlflow(body, -timedelta(minutes=6), "m-future"),
        "not a time": {**gate.mlflow(body, delivery="m-nan"), "X-MLflow-Timestamp": "soon"},
        "timestamp changed": {**signed_now, "X-MLflow-Timestamp": earlier},
        "delivery id changed": {**signed_now, "X-MLflow-Delivery-Id": "m-other"},
    }
    for why, headers in refused.items():
        status, answer = await gate.post("mlflow", body, headers)
        assert (why, status) == (why, 401), answer
    assert await gate.messages() == 0
    in_time = gate.mlflow(body, MAX_AGE - timedelta(seconds=1), "m-late-retry")
    assert (await gate.post("mlflow", body, in_time))[0] == 202


async def test_a_resent_delivery_of_every_kind_is_not_published_twice(gate: Gate) -> None:
    for kind in KINDS:
        first_status, first = await gate.post(kind.source, kind.body, kind.headers())
        published = await gate.messages()
        status, again = await gate.post(kind.source, kind.body, kind.headers())
        assert (kind.name, first_status, status) == (kind.name, 202, 202)
        assert again["duplicates"] == again["ids"] == first["ids"]
        assert await gate.messages() == published, kind.name


async def test_a_captured_github_delivery_replayed_under_a_new_delivery_id_publishes_nothing(
    gate: Gate, world: Harness
) -> None:
    # X-GitHub-Delivery is not signed: a replay may carry any id, so the event id changes and
    # NATS's dedup by Nats-Msg-Id cannot know it; the gateway remembers the signed body.
    kind = KINDS[0]
    assert (await gate.post(kind.source, kind.body, kind.headers()))[0] == 202
    published = await gate.messages()
    replay = {**kind.headers(), "X-GitHub-Delivery": "a-fresh-guid"}

    status, answer = await gate.post(kind.source, kind.body, replay)

    assert (status, answer["ids"], answer["duplicates"]) == (
        202,
        ["a-fresh-guid"],
        ["a-fresh-guid"],
    )
    assert await gate.messages() == published
    other = Gateway(world.bus, {"github": SourceConfig(secret=SECRETS["github"])}, world.clock,
                    replays=await kv_replays(world.bus.js, 60))  # fmt: skip
    async with serve(other, "127.0.0.1", 0) as port:  # another replica, or after a restart
        status, answer = await Client(gate.session, f"http://127.0.0.1:{port}").post(
            kind.source, kind.body, {**replay, "X-GitHub-Delivery": "yet-another-guid"}
        )
    assert (status, answer["duplicates"]) == (202, ["yet-another-guid"])
    assert await gate.messages() == published


async def test_bodies_over_the_limit_are_413_even_chunked_and_signed(gate: Gate) -> None:
    kind = KINDS[3]  # a bearer source: the token would let it through
    big = kind.body + b" " * MAX_BODY
    status, answer = await gate.post(kind.source, big, kind.headers())
    assert (status, "larger than 65536 bytes" in answer["error"]) == (413, True)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 4096 + 1):
            yield b" " * 4096

    url = f"{gate.base}/hooks/{kind.source}"
    async with gate.session.post(url, data=chunks(), headers=kind.headers()) as response:
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert response.status == 413
    signed = _github(SECRETS["github"], big)
    status, _ = await gate.post("github", big, {**KINDS[0].headers(), **signed})
    assert status == 413
    assert await gate.messages() == 0
    at_limit = kind.body + b" " * (MAX_BODY - len(kind.body))
    assert (await gate.post(kind.source, at_limit, kind.headers()))[0] == 202


async def test_a_content_type_the_source_never_sends_is_415_after_the_signature(
    gate: Gate,
) -> None:
    for kind in KINDS:
        for media in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
            headers = {**kind.headers(), "Content-Type": media}
            status, answer = await gate.post(kind.source, kind.body, headers)
            assert (kind.name, media, status) == (kind.name, media, 415), answer
    assert await gate.messages() == 0


def test_an_mlflow_max_age_beyond_the_replay_window_is_refused_at_start_up() -> None:
    mlflow = {"mlflow": SourceSettings(max_age=7200)}
    with pytest.raises(ConfigurationError, match=r"MAX_AGE \(7200s\) is longer than"):
        source_configs(Settings(sources=mlflow, gateway_replay_window=3600))
    longer_window = Settings(sources=mlflow, gateway_replay_window=7200)
    assert source_configs(longer_window)["mlflow"].max_age == timedelta(hours=2)
