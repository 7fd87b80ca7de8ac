"""API keys per integration (issue 12, item 1): stored hashed, scoped, revoked, rate-limited and
audited; issued through the admin page and the CLI; ``POST /api/events`` with ``X-API-Key`` makes an
event that carries its integration, shown to supervisors on the event page."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from store import api_keys, models, queries
from store.db import Database
from tests import webapp
from tests.platform import Platform, csrf, running_platform
from web.context import AppContext

REPORT = {"category": "SR-01", "description": "接口密钥上报", "location": {"grid": "HS01-G1"},
          "reporter": {"name": "李四", "phone": "13900000000"}}


async def _audit(db: Database, action: str) -> list[models.AuditEntry]:
    async with db.session() as session:
        return list((await session.exec(select(models.AuditEntry).where(models.AuditEntry.action == action))).all())


# ------------------------------------------------------------------------------------ the store
async def test_a_key_is_stored_only_as_its_hash_and_resolves_to_its_integration(any_db: Database) -> None:
    org_db = any_db  # SQLite, and PostgreSQL when WULIAN_TEST_DATABASE_URL is set
    row, key = await api_keys.create_key(org_db, "hotline-12345", (), "admin")
    assert row.scopes == "report,read"  # the default scopes
    assert key.startswith(f"wl_{row.prefix}_") and len(key) > 40
    async with org_db.session() as session:
        stored = await session.get(models.ApiKey, "hotline-12345")
    assert stored is not None and stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in repr(stored.model_dump())  # never the key itself
    found = await api_keys.resolve(org_db, key)
    assert found == api_keys.Integration("hotline-12345", frozenset({"report", "read"}))
    assert found.may("report") and not found.may("subscribe") and found.actor == "integration:hotline-12345"
    # The right prefix with a wrong secret, a made-up key, and nothing: no integration.
    assert await api_keys.resolve(org_db, key[:-2] + ("aa" if not key.endswith("aa") else "bb")) is None
    assert await api_keys.resolve(org_db, "wl_00000000_" + "x" * 43) is None
    assert await api_keys.resolve(org_db, "") is None
    async with org_db.session() as session:
        used = await session.get(models.ApiKey, "hotline-12345")
    assert used is not None and used.last_used_at is not None
    await api_keys.revoke_key(org_db, "hotline-12345", "admin")
    assert await api_keys.resolve(org_db, key) is None
    await api_keys.revoke_key(org_db, "hotline-12345", "admin")  # twice: nothing more
    assert [(a.actor, a.target) for a in await _audit(org_db, "apikey_create")] == [("admin", "hotline-12345")]
    assert len(await _audit(org_db, "apikey_revoke")) == 1


async def test_names_and_scopes_are_checked(any_db: Database) -> None:
    org_db = any_db
    row, _ = await api_keys.create_key(org_db, "cams", ("subscribe", "report"), "admin")
    assert row.scopes == "report,subscribe"
    for name, scopes, code in (("cams", (), "exists"), ("bad name", (), "name"), ("", (), "name"),
                               ("-x", (), "name"), ("ok", ("delete",), "scope")):
        with pytest.raises(api_keys.ApiKeyError) as refused:
            await api_keys.create_key(org_db, name, scopes, "admin")
        assert refused.value.code == code
    with pytest.raises(api_keys.ApiKeyError):
        await api_keys.revoke_key(org_db, "nobody", "admin")


# ------------------------------------------------------------------------------------ the CLI
def test_cli_creates_lists_and_revokes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from wulian.cli import app
    from wulian.settings import get_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WULIAN_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(app, ["apikey", "create", "camera-net", "--scope", "report", "--scope", "subscribe"])
        assert made.exit_code == 0, made.output
        key = made.stdout.strip()  # the key alone on standard output, printed this once
        assert key.startswith("wl_") and "\n" not in key
        listed = CliRunner().invoke(app, ["apikey", "list"])
        assert listed.exit_code == 0 and "camera-net  report,subscribe" in listed.output and "active" in listed.output
        # The secret is all after the prefix (it may itself hold "_", even begin with one).
        assert key not in listed.output and key.split("_", 2)[2] not in listed.output
        again = CliRunner().invoke(app, ["apikey", "create", "camera-net"])
        assert again.exit_code == 1 and "exists" in again.output
        bad = CliRunner().invoke(app, ["apikey", "create", "x", "--scope", "delete"])
        assert bad.exit_code == 1 and "unknown scope" in bad.output
        revoked = CliRunner().invoke(app, ["apikey", "revoke", "camera-net"])
        assert revoked.exit_code == 0 and "revoked" in revoked.output
        assert "revoked" in CliRunner().invoke(app, ["apikey", "list"]).output
        assert CliRunner().invoke(app, ["apikey", "revoke", "nobody"]).exit_code == 1
    finally:
        get_settings.cache_clear()

    async def check() -> None:
        db = Database(url)
        assert await api_keys.resolve(db, key) is None  # revoked
        await db.dispose()

    asyncio.run(check())


# ------------------------------------------------------------------------------------ the admin page
@pytest.fixture
async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    return webapp.context(org_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> webapp.Browser:
    return webapp.browsers(app_ctx)


async def test_admin_page_issues_a_key_once_and_revokes_it(app_ctx: AppContext, browser: webapp.Browser) -> None:
    async with browser() as http:
        await webapp.page_login(http, "admin", "admin12345")
        page = await http.get("/admin/keys")
        assert page.status_code == 200 and "接口密钥" in page.text
        made = await http.post("/admin/keys", data={"name": "wechat-mp", "scope": ["report", "read", "subscribe"],
                                                    "_csrf_token": csrf(page.text)})
        assert made.status_code == 200
        key = made.text.split('id="the-key" translate="no">')[1].split("<")[0]
        found = await api_keys.resolve(app_ctx.db, key)
        assert found is not None and found.scopes == {"report", "read", "subscribe"}
        again = await http.get("/admin/keys")
        assert "wechat-mp" in again.text and key not in again.text  # shown once, never again
        none = await http.post("/admin/keys", data={"name": "no-scope", "_csrf_token": csrf(page.text)})
        assert none.status_code == 400 and "请至少选择一项权限" in none.text
        revoked = await http.post("/admin/keys/wechat-mp/revoke", data={"_csrf_token": csrf(page.text)})
        assert revoked.status_code == 303
        assert "已吊销" in (await http.get(revoked.headers["location"])).text
        assert await api_keys.resolve(app_ctx.db, key) is None
        missing = await http.post("/admin/keys/nobody/revoke", data={"_csrf_token": csrf(page.text)})
        assert missing.status_code == 404
        # A page's form without its CSRF token is refused, whatever the path holds: a key named
        # "api-gw" puts "/api" into its revoke URL, which the JSON API's exemption must not match.
        gateway = await http.post("/admin/keys", data={"name": "api-gw", "scope": ["report"],
                                                       "_csrf_token": csrf(page.text)})
        assert gateway.status_code == 200
        forged = await http.post("/admin/keys/api-gw/revoke", data={})
        assert forged.status_code == 403
        assert (await api_keys.resolve(app_ctx.db, gateway.text.split('id="the-key" translate="no">')[1]
                                       .split("<")[0])) is not None  # still valid
    async with browser() as http:
        await webapp.page_login(http, "zx_city")
        assert (await http.get("/admin/keys")).status_code == 403
    actions = {(a.actor, a.action) for a in await _audit(app_ctx.db, "apikey_create")}
    assert actions == {("admin", "apikey_create")}


# ------------------------------------------------------------------------------------ POST /api/events
@pytest.fixture(scope="module")
async def live(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with running_platform(dev_env.client, tmp_path_factory.mktemp("apikeys")) as platform:
        yield platform


async def test_a_report_with_a_key_carries_its_integration(live: Platform) -> None:
    _, key = await api_keys.create_key(live.db, "hotline", ("report",), "admin")
    r = await live.http.post("/api/events", json=REPORT, headers={"X-API-Key": key})
    assert r.status_code == 201, r.text
    event = await queries.get_event(live.db, r.json()["event_id"])
    assert event is not None and event.integration == "hotline"
    uses = [a for a in await _audit(live.db, "apikey_use") if a.actor == "integration:hotline"]
    assert [(u.target, u.detail) for u in uses] == [("POST /api/events", "report")]
    # Anonymous residents still report; their events carry no integration.
    anonymous = await live.http.post("/api/events", json=REPORT)
    assert anonymous.status_code == 201
    plain = await queries.get_event(live.db, anonymous.json()["event_id"])
    assert plain is not None and plain.integration is None
    # The event page names the integration to supervisors, not to the grid worker.
    for username in ("zx_hs", "wg_hs01_g1"):
        headers = await live.login(username)
        page = await live.http.get(f"/api/events/{event.event_id}", headers=headers)
        assert page.status_code == 200 and page.json()["integration"] == "hotline"
    app = live.http._transport.app  # type: ignore[attr-defined]  # the platform's app, a browser of its own
    for username, shown in (("zx_hs", True), ("wg_hs01_g1", False)):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            await webapp.page_login(http, username)
            page = await http.get(f"/events/{event.event_id}")
            assert page.status_code == 200 and ('id="event-integration"' in page.text) is shown, username


async def test_bad_keys_are_refused_and_the_rate_limit_holds(live: Platform) -> None:
    _, reader = await api_keys.create_key(live.db, "reader", ("read",), "admin")
    _, busy = await api_keys.create_key(live.db, "busy", ("report",), "admin")
    unknown = await live.http.post("/api/events", json=REPORT, headers={"X-API-Key": "wl_12345678_" + "x" * 40})
    assert unknown.status_code == 401
    no_scope = await live.http.post("/api/events", json=REPORT, headers={"X-API-Key": reader})
    assert no_scope.status_code == 403 and "report" in no_scope.json()["detail"]
    refusals = [a for a in await _audit(live.db, "apikey_refused") if a.actor == "integration:reader"]
    assert len(refusals) == 1
    limit, live.settings.api_key_requests_per_minute = live.settings.api_key_requests_per_minute, 2
    try:
        statuses, retry = [], None
        for _ in range(5):  # an invalid body: refused after the key was counted, nothing started
            r = await live.http.post("/api/events", json={**REPORT, "category": "NOPE-1"}, headers={"X-API-Key": busy})
            statuses.append(r.status_code)
            retry = retry or r.headers.get("retry-after")
        # Counted in fixed minute windows: two pass, then 429 (should a window turn between two
        # requests, two more pass in the new one: five requests hold a 429 either way).
        assert statuses[:2] == [400, 400] and 429 in statuses, statuses
        assert retry and int(retry) >= 1
    finally:
        live.settings.api_key_requests_per_minute = limit


async def test_idempotency_keys_are_scoped_to_the_integration(live: Platform) -> None:
    _, first = await api_keys.create_key(live.db, "idem-a", ("report",), "admin")
    _, second = await api_keys.create_key(live.db, "idem-b", ("report",), "admin")
    headers = {"Idempotency-Key": "same-key-1"}
    a1 = await live.http.post("/api/events", json=REPORT, headers={**headers, "X-API-Key": first})
    a2 = await live.http.post("/api/events", json=REPORT, headers={**headers, "X-API-Key": first})
    b1 = await live.http.post("/api/events", json=REPORT, headers={**headers, "X-API-Key": second})
    assert a1.status_code == a2.status_code == b1.status_code == 201
    assert a1.json()["event_id"] == a2.json()["event_id"] != b1.json()["event_id"]
    assert a2.headers.get("idempotent-replayed") == "true"


async def test_the_scope_guard_admits_only_keys_with_its_scope(app_ctx: AppContext) -> None:
    """``web.api_keys.scope_guard``, as a route only integrations use (webhook subscriptions) would have it."""
    from litestar import Litestar, Request, get
    from litestar.datastructures import State

    from web.api_keys import scope_guard

    @get("/hooks", guards=[scope_guard("subscribe")])
    async def hooks(request: Request) -> dict[str, object]:  # type: ignore[type-arg]
        integration = request.state.integration
        return {"name": integration.name, "scopes": sorted(integration.scopes)}

    app = Litestar(route_handlers=[hooks], state=State({"ctx": app_ctx}))
    _, subscriber = await api_keys.create_key(app_ctx.db, "hooks-a", ("subscribe",), "admin")
    _, reporter = await api_keys.create_key(app_ctx.db, "hooks-b", ("report",), "admin")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        ok = await http.get("/hooks", headers={"X-API-Key": subscriber})
        assert ok.status_code == 200 and ok.json() == {"name": "hooks-a", "scopes": ["subscribe"]}
        assert (await http.get("/hooks", headers={"X-API-Key": reporter})).status_code == 403
        assert (await http.get("/hooks")).status_code == 401
        assert (await http.get("/hooks", headers={"X-API-Key": subscriber + "x"})).status_code == 401
    uses = [a for a in await _audit(app_ctx.db, "apikey_use") if a.actor == "integration:hooks-a"]
    assert [u.target for u in uses] == ["GET /hooks"]
