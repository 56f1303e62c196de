"""The dashboard's JSON API and page, against a real nats-server, git remote and worker."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from harness import Harness
from yarl import URL

from promoter.runtime.emit import command_event
from promoter.runtime.report import history
from promoter.web.dashboard_html import page
from promoter.web.dashboard_model import columns
from promoter.web.probes import Readiness
from promoter.web.server import http_app

HOSTILE = "<script>alert(\"x\")</script> & 'freeze'"

WEB = """apiVersion: promoter/v1
kind: Pipeline
metadata: {{name: web}}
spec:
  repository: {{url: "file://{repo}", branch: main}}
  artifacts:
    - {{name: site, image: ghcr.io/acme/web, select: {{semver: '>=0.1.0'}}}}
  environments:
    - name: dev
      auto: true
      update: [{{file: web/dev.yaml, set: {{image.tag: "${{site.tag}}"}}}}]
    - name: prod-eu
      from: [dev]
      auto: true
      update: [{{file: web/prod-eu.yaml, set: {{image.tag: "${{site.tag}}"}}}}]
"""


@pytest.fixture
async def client(world: Harness) -> AsyncIterator[TestClient[Any, Any]]:
    app = http_app(world.bus, Readiness(world.bus), world.clock)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def get_json(client: TestClient[Any, Any], path: str, status: int = 200) -> Any:
    response = await client.get(path)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def cell(document: dict[str, Any], pipeline: str, env: str) -> dict[str, Any]:
    [p] = [p for p in document["pipelines"] if p["name"] == pipeline]
    [found] = [e for e in p["environments"] if e["name"] == env]
    return dict(found)


def gates(found: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {g["code"]: (g["state"], g["reason"]) for g in found["gates"]}


async def env_is(world: Harness, env: str, check: Any, what: str) -> None:
    async def ok() -> bool:
        found = await world.maybe_env("shop", env)
        return bool(found and check(found))

    await world.until(ok, what)


async def test_matrix_shows_bundle_soak_pr_gates_hold_and_decisions(
    world: Harness, client: TestClient[Any, Any]
) -> None:
    world.write_pipeline("shop", soak="10m")
    (world.pipelines / "web.yaml").write_text(WEB.format(repo=world.remote))
    await world.start_worker()
    await world.image("0.1.0", 1, repository="ghcr.io/acme/web")
    await world.image("1.0.0", 2)
    await world.live("shop", "dev", "1.0.0")
    await world.health("shop", "dev")
    await env_is(
        world,
        "staging",
        lambda e: any(b.startswith("soak:") for b in e["blocked"]),
        "staging is blocked by the soak",
    )
    world.clock.advance(minutes=4)  # the FakeClock drives soak progress
    await soak_shows(client)

    world.clock.advance(minutes=6)
    await world.live("shop", "staging", "1.0.0")
    await world.health("shop", "staging")
    await env_is(world, "staging", lambda e: e["health"] == "healthy", "staging is healthy")
    world.clock.advance(minutes=10)
    pending = await world.pending("shop", "prod", "1.0.0")
    await world.approve("shop", "prod", "bob", "changes_requested")
    world.clock.advance(seconds=1)
    await world.approve("shop", "prod", "alice")
    await env_is(world, "prod", lambda e: e["pending"]["approvals"], "alice's approval counts")
    await pr_shows(client, pending["pr"])

    hold = {"pipeline": "shop", "environment": "dev", "action": "hold", "by": "ops"}
    await world.bus.publish_event(command_event(hold | {"reason": HOSTILE}, now=world.clock()))
    await env_is(world, "dev", lambda e: e["held"], "dev is held")
    await world.quiet()
    doc = await get_json(client, "/api/status")
    dev = cell(doc, "shop", "dev")
    assert (dev["held"], dev["hold_reason"], dev["state"]) == (True, HOSTILE, "held")
    web = cell(doc, "web", "prod-eu")
    assert (web["live"], web["state"]) == ({"site": "0.1.0"}, "live")
    await decisions_show(world, client)
    await page_shows(client, pending["pr"])


async def soak_shows(client: TestClient[Any, Any]) -> None:
    doc = await get_json(client, "/api/status")
    assert doc["columns"] == ["dev", "staging", "prod", "prod-eu"]
    assert doc["generated_at"] == "2026-03-02T09:04:00Z"
    dev = cell(doc, "shop", "dev")
    assert (dev["live"], dev["health"], dev["state"]) == ({"api": "1.0.0"}, "healthy", "live")
    assert dev["live_for_s"] == 240
    staging = cell(doc, "shop", "staging")
    assert staging["live"] == {}
    assert staging["candidate"]["versions"] == {"api": "1.0.0"}
    assert staging["state"] == "blocked"
    assert gates(staging) == {
        "soak": ("blocked", "soaking in dev for 10m, until 2026-03-02T09:10:00Z")
    }
    assert staging["soak"] == [
        {
            "upstream": "dev",
            "elapsed_s": 240,
            "required_s": 600,
            "progress": 0.4,
            "text": "soaking 4m of 10m in dev",
        }
    ]
    assert cell(doc, "shop", "prod")["approvals_needed"] == 1


async def pr_shows(client: TestClient[Any, Any], number: int) -> None:
    prod = cell(await get_json(client, "/api/status"), "shop", "prod")
    assert prod["state"] == "pending"
    assert prod["pending"] | {"url": None} == {
        "pr": number,
        "url": None,
        "versions": {"api": "1.0.0"},
        "approvals": ["alice"],
        "approvals_valid": ["alice"],
        "approvals_needed": 1,
        "rejections": ["bob"],
        "merging": False,
        "opened_at": "2026-03-02T09:20:00Z",
    }
    assert gates(prod) == {
        "soak": ("ok", ""),
        "changes-requested": ("blocked", "changes requested by bob"),
        "approvals": ("ok", ""),
    }
    assert prod["soak"][0]["text"] == "soaked 10m in staging"


def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    assert all("pr_url" in r for r in records)
    return [{k: v for k, v in r.items() if k != "pr_url"} for r in records]


async def decisions_show(world: Harness, client: TestClient[Any, Any]) -> None:
    """The tail of the audit stream, newest first, as `promoter history` has them."""
    everything = (await history(world.bus, None))[::-1]
    shop_only = (await history(world.bus, "shop"))[::-1]
    web_only = (await history(world.bus, "web"))[::-1]
    assert len(everything) > 10
    assert len(web_only) >= 4
    assert all(w["pipeline"] == "web" for w in web_only)
    three = (await get_json(client, "/api/decisions?limit=3"))["decisions"]
    assert strip(three) == everything[:3]
    assert (three[0]["action"], three[0]["environment"]) == ("hold", "dev")
    assert HOSTILE in three[0]["reason"]
    assert strip((await get_json(client, "/api/decisions?limit=500"))["decisions"]) == everything
    # web's records are older than the shop tail: the read-back window has to grow to find them
    two = (await get_json(client, "/api/decisions?limit=2&pipeline=web"))["decisions"]
    assert strip(two) == web_only[:2]
    shop = (await get_json(client, "/api/decisions?pipeline=shop&limit=500"))["decisions"]
    assert strip(shop) == shop_only
    assert (await get_json(client, "/api/decisions?pipeline=nope"))["decisions"] == []


async def page_shows(client: TestClient[Any, Any], number: int) -> None:
    """The page is rendered on the server with the same state, user text escaped."""
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = await response.text()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;freeze&#x27;" in html
    assert '<td class="cell" data-pipeline="shop" data-env="prod" data-state="pending">' in html
    assert '<td class="cell absent" data-pipeline="web" data-env="staging"' in html
    assert '<span class="v">1.0.0</span>' in html
    assert f"PR #{number}" in html
    assert "1/1 approvals · alice" in html
    assert 'data-role="held"' in html
    assert html.count("<tr data-pipeline=") == 2 + 15  # matrix rows + the last 15 decisions


async def test_decisions_limit_and_pipeline_are_validated(client: TestClient[Any, Any]) -> None:
    for bad in ("0", "501", "-1", "abc", "1.5", ""):
        body = await get_json(client, f"/api/decisions?limit={bad}", 400)
        assert body["error"].startswith("limit must be an integer from 1 to 500")
    for bad in ("a.>", "*", "Shop", "x" * 70):
        body = await get_json(client, f"/api/decisions?pipeline={bad}", 400)
        assert body["error"].startswith("pipeline must be a pipeline name")
    assert await get_json(client, "/api/decisions?limit=500") == {"decisions": []}
    assert await get_json(client, "/api/decisions") == {"decisions": []}


async def test_unknown_api_is_json_404_and_the_api_is_read_only(
    client: TestClient[Any, Any],
) -> None:
    body = await get_json(client, "/api/nothing/here", 404)
    assert body == {"error": "no such API: /api/nothing/here"}
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("/api/status", "/api/decisions", "/api/other"):
            response = await client.request(method, path)
            assert response.status == 405, (method, path)
            assert (await response.json())["error"] == "read-only: only GET is allowed"
        assert (await client.request(method, "/")).status == 405


async def test_empty_matrix_and_page_before_any_worker(client: TestClient[Any, Any]) -> None:
    doc = await get_json(client, "/api/status")
    assert (doc["columns"], doc["pipelines"]) == ([], [])
    html = await (await client.get("/")).text()
    assert "No pipelines yet" in html
    assert "No decisions yet." in html


@pytest.mark.parametrize(
    ("name", "content_type", "needle"),
    [
        ("dashboard.js", "text/javascript", "visibilityState"),
        ("dashboard.css", "text/css", "prefers-color-scheme"),
        ("favicon.svg", "image/svg+xml", "<svg"),
    ],
)
async def test_static_files_are_served_with_their_type(
    client: TestClient[Any, Any], name: str, content_type: str, needle: str
) -> None:
    response = await client.get(f"/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert needle in await response.text()


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2Fdashboard.py",
        "/static/%2e%2e%2fserver.py",
        "/static/..%5Cserver.py",
        "/static/dashboard.py",
        "/static/__init__.py",
        "/static/missing.js",
        "/static/.hidden.css",
        "/static/%2Fetc%2Fpasswd",
        "/static/",
    ],
)
async def test_static_refuses_traversal_and_unknown_files(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(URL(path, encoded=True))
    assert response.status == 404
    body = await response.text()
    assert "add_dashboard" not in body
    assert "root:" not in body


async def test_page_escapes_hostile_names_versions_and_reasons(
    world: Harness, client: TestClient[Any, Any]
) -> None:
    world.write_pipeline("shop")
    await world.start_worker()
    await world.image("1.0.0", 1)
    await world.pending("shop", "prod", "1.0.0")
    doc = copy.deepcopy(await get_json(client, "/api/status"))
    evil = '"><img src=x onerror=alert(1)>'
    for p in doc["pipelines"]:
        p["name"] = evil
        p["latest"] = {evil: evil}
        for e in p["environments"]:
            e |= {"name": evil, "live": {evil: evil}, "health": evil, "held": True}
            e |= {"hold_reason": evil, "error": evil, "live_since": evil}
            e["gates"] = [{"code": evil, "state": "blocked", "reason": evil}]
            if e["pending"]:
                e["pending"] |= {"url": "javascript:alert(1)", "versions": {evil: evil}}
                e["pending"]["approvals"] = [evil]
    doc["columns"] = [evil]
    records = [
        {"pipeline": evil, "environment": evil, "action": evil, "reason": evil, "at": evil}
        | {"versions": {evil: evil}, "pr": 1, "pr_url": "javascript:alert(1)", "error": evil}
    ]
    html = page(doc, records, evil)
    assert "<img" not in html
    assert 'href="javascript' not in html  # only http(s) addresses become links
    assert html.count("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;") > 10


def test_columns_line_up_production_on_the_right() -> None:
    def pipeline(*names: str) -> dict[str, Any]:
        last = len(names) - 1
        return {"environments": [{"name": n, "height": last - i} for i, n in enumerate(names)]}

    shop, web = pipeline("dev", "staging", "prod"), pipeline("dev", "prod")
    assert columns([shop, web]) == columns([web, shop]) == ["dev", "staging", "prod"]
    fan_out = {
        "environments": [
            {"name": "dev", "height": 2},
            {"name": "staging", "height": 1},
            {"name": "prod-eu", "height": 0},
            {"name": "prod-us", "height": 0},
        ]
    }
    assert columns([fan_out, web]) == ["dev", "staging", "prod-eu", "prod-us", "prod"]
    assert columns([pipeline("qa", "live"), web]) == ["qa", "dev", "live", "prod"]
    assert columns([]) == []
