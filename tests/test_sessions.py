"""Login sessions are revocable on the server: API and page logout, deactivation, password reset,
tokens without an expiry or a session id, and expired sessions pruned without a cron (no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import event
from sqlmodel import select

from store import admin_people, models, sessions
from store.db import Database
from store.seed import load_organisation
from tests import webapp
from tests.platform import csrf
from tests.webapp import Browser
from web.auth import SESSION_COOKIE, issue_token, resolve_user
from web.context import AppContext

WORKER = "wg_hs01_g1"




@pytest.fixture
async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    return webapp.context(org_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> Browser:
    return webapp.browsers(app_ctx)


async def api_login(http: httpx.AsyncClient) -> dict[str, str]:
    return await webapp.api_login(http, WORKER)


async def page_login(http: httpx.AsyncClient) -> str:
    return await webapp.page_login(http, WORKER)


async def logged_out_of_pages(http: httpx.AsyncClient) -> bool:
    r = await http.get("/inbox")
    return r.status_code in (302, 303) and r.headers["location"] == "/login"


async def audit(db: Database, action: str) -> list[tuple[str, str]]:
    async with db.session() as session:
        rows = (await session.exec(select(models.AuditEntry).where(models.AuditEntry.action == action))).all()
    return [(r.actor, r.detail) for r in rows]


async def test_api_logout_revokes_that_token_on_the_server(browser: Browser, app_ctx: AppContext) -> None:
    async with browser() as http:
        bearer = await api_login(http)
        other = await api_login(http)  # a second session of the same user (another device)
        assert (await http.get("/api/inbox", headers=bearer)).status_code == 200
        assert (await http.post("/api/auth/logout", headers=bearer)).status_code == 204
        r = await http.get("/api/inbox", headers=bearer)  # the same token, well within its 12 hours
        assert r.status_code == 401 and r.json()["detail"]
        assert (await http.post("/api/auth/logout", headers=bearer)).status_code == 401
        assert (await http.post("/api/auth/logout")).status_code == 401
        assert (await http.get("/api/inbox", headers=other)).status_code == 200  # only that token ended
    assert await audit(app_ctx.db, "logout") == [(WORKER, "api")]


async def test_a_cookie_kept_after_page_logout_no_longer_logs_in(browser: Browser, app_ctx: AppContext) -> None:
    async with browser() as http:
        cookie = await page_login(http)
        html = (await http.get("/inbox")).text
        r = await http.post("/logout", data={"_csrf_token": csrf(html)})
        assert r.status_code == 303 and r.headers["location"] == "/login"
    async with browser() as thief:  # someone who copied the cookie before the logout
        thief.cookies.set(SESSION_COOKIE, cookie)
        assert await logged_out_of_pages(thief)
        assert (await thief.get("/api/inbox", headers={"Authorization": f"Bearer {cookie}"})).status_code == 401
    assert await audit(app_ctx.db, "logout") == [(WORKER, "web")]


async def test_reactivation_brings_back_no_token_issued_before_the_deactivation(
    browser: Browser, app_ctx: AppContext
) -> None:
    db = app_ctx.db
    async with browser() as http:
        cookie = await page_login(http)
        bearer = await api_login(http)
        assert (await http.get("/api/inbox", headers=bearer)).status_code == 200
        await admin_people.set_active(db, "admin", WORKER, False)
        assert await sessions.user_sessions(db, WORKER) == []  # ended in the deactivation's transaction
        await admin_people.set_active(db, "admin", WORKER, True)
        assert (await http.get("/api/inbox", headers=bearer)).status_code == 401
        http.cookies.set(SESSION_COOKIE, cookie)
        assert await logged_out_of_pages(http)
        fresh = await api_login(http)  # the reactivated user logs in again
        assert (await http.get("/api/inbox", headers=fresh)).status_code == 200


async def test_a_password_reset_ends_the_sessions_in_the_same_second(browser: Browser, app_ctx: AppContext) -> None:
    async with browser() as http:
        bearer = await api_login(http)
        await admin_people.reset_password(app_ctx.db, "admin", WORKER, "a-new-password-2026")
        # No need to wait for the next second (tokens carry whole seconds): the session row is gone.
        assert (await http.get("/api/inbox", headers=bearer)).status_code == 401


def _signed(ctx: AppContext, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt.encode(claims, ctx.settings.secret(), algorithm='HS256')}"}


async def test_tokens_without_expiry_session_id_or_live_session_are_refused(
    browser: Browser, app_ctx: AppContext
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    row = await sessions.open_session(app_ctx.db, WORKER, timedelta(hours=12), via="api")
    good = {"sub": WORKER, "iat": now, "exp": now + timedelta(hours=1), "jti": row.jti}
    async with browser() as http:
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **good))).status_code == 200  # control
        no_exp = {k: v for k, v in good.items() if k != "exp"}
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **no_exp))).status_code == 401
        no_jti = {k: v for k, v in good.items() if k != "jti"}
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **no_jti))).status_code == 401
        unknown = {**good, "jti": "never-issued"}
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **unknown))).status_code == 401
        someone_else = {**good, "sub": "admin"}  # a session id is bound to its user
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **someone_else))).status_code == 401
        expired = {**good, "exp": now - timedelta(seconds=1)}
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **expired))).status_code == 401
        async with app_ctx.db.session() as session:  # the store's expiry counts too, whatever the token says
            stored = await session.get(models.LoginSession, row.jti)
            assert stored is not None
            stored.expires_at = now - timedelta(seconds=1)
            session.add(stored)
            await session.commit()
        assert (await http.get("/api/inbox", headers=_signed(app_ctx, **good))).status_code == 401
        http.cookies.set(SESSION_COOKIE, jwt.encode(no_exp, app_ctx.settings.secret(), algorithm="HS256"))
        assert await logged_out_of_pages(http)


async def test_each_request_reads_session_and_user_in_one_query(app_ctx: AppContext) -> None:
    token = await issue_token(app_ctx, WORKER, via="api")

    class Req:
        headers = {"authorization": f"Bearer {token}"}
        cookies: dict[str, str] = {}

    await app_ctx.org()  # the organisation tree is cached by the process, not read per request
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app_ctx.db.engine.sync_engine, "before_cursor_execute", count)
    try:
        user = await resolve_user(app_ctx, Req(), api=True)  # type: ignore[arg-type]
    finally:
        event.remove(app_ctx.db.engine.sync_engine, "before_cursor_execute", count)
    assert user is not None and user.username == WORKER and user.session_id
    assert len(statements) == 1 and "loginsession.jti = " in statements[0]


async def test_expired_sessions_are_pruned_when_tokens_are_issued(any_db: Database) -> None:
    await load_organisation(any_db)
    long_ago = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    old = await sessions.open_session(any_db, WORKER, timedelta(hours=12), now=long_ago)
    still = await sessions.open_session(any_db, "admin", timedelta(hours=12), now=long_ago + timedelta(hours=6))
    await sessions.open_session(any_db, "wg_hs01_g2", timedelta(hours=12), now=long_ago + timedelta(hours=13))
    async with any_db.session() as session:
        left = set((await session.exec(select(models.LoginSession.jti))).all())
    assert old.jti not in left and still.jti in left and len(left) == 2
    assert sessions.is_live(still, long_ago + timedelta(hours=17))
    assert not sessions.is_live(still, long_ago + timedelta(hours=18))
