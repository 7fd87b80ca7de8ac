"""Security of the web app: login rate limiting, CSRF, output escaping, cookie flags, unit scopes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import select

from store import models
from store.db import Database
from tests.platform import Platform, csrf
from web.ratelimit import MAX_FAILURES, WINDOW_SECONDS, LoginLimiter

SCRIPT = "<script>alert('x')</script>"


def client(platform: Platform, ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """A browser of its own (cookies) on the platform, from client address ``ip``."""
    transport = httpx.ASGITransport(app=platform.http._transport.app, client=(ip, 40000))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def page_login(http: httpx.AsyncClient, username: str, password: str = "demo12345") -> httpx.Response:  # noqa: S107
    html = (await http.get("/login")).text
    return await http.post("/login", data={"username": username, "password": password, "_csrf_token": csrf(html)})


async def audit_actions(platform: Platform) -> list[tuple[str, str]]:
    async with platform.db.session() as session:
        rows = (await session.exec(select(models.AuditEntry).order_by(models.AuditEntry.id))).all()  # type: ignore[arg-type]
    return [(r.actor, r.action) for r in rows]


async def test_limiter_window_and_reset(any_db: Database) -> None:
    limiter = LoginLimiter(any_db)
    t0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    for i in range(MAX_FAILURES):
        assert await limiter.retry_after("a", "1.1.1.1", now=at(i)) == 0
        assert await limiter.failed("a", "1.1.1.1", now=at(i)) == (i == MAX_FAILURES - 1)
    wait = await limiter.retry_after("a", "2.2.2.2", now=at(10))  # the username is locked from anywhere
    assert wait == WINDOW_SECONDS - 10 + 1
    assert await limiter.retry_after("b", "1.1.1.1", now=at(10)) > 0  # and the address for any username
    assert await limiter.retry_after("b", "3.3.3.3", now=at(10)) == 0
    assert await limiter.retry_after("a", "2.2.2.2", now=at(WINDOW_SECONDS + 1)) == 0  # the window passed
    await limiter.succeeded("A")  # usernames are counted without case
    assert await limiter.retry_after("a", "2.2.2.2", now=at(10)) == 0  # success resets the username
    assert await limiter.retry_after("b", "1.1.1.1", now=at(10)) > 0  # but not the address


async def test_limiter_counts_across_processes_and_forgets_old_failures(any_db: Database) -> None:
    """Two web processes (two limiters on one store) share the count; old rows are cleaned up."""
    first, second = LoginLimiter(any_db), LoginLimiter(any_db)
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    for i in range(MAX_FAILURES):
        await (first if i % 2 else second).failed("c", f"10.1.0.{i}", now=now + timedelta(seconds=i))
    assert await first.retry_after("c", "10.9.9.9", now=now + timedelta(seconds=30)) > 0
    assert await second.retry_after("c", "10.9.9.9", now=now + timedelta(seconds=30)) > 0
    later = now + timedelta(seconds=WINDOW_SECONDS * 3)
    await first.failed("c", "10.1.0.0", now=later)  # deletes this key's rows that left the window
    async with any_db.session() as session:
        keys = (await session.exec(select(models.LoginFailure.key).where(
            models.LoginFailure.key == "user:c"))).all()
    assert len(keys) == 1


async def test_page_login_is_rate_limited_per_username(platform: Platform) -> None:
    async with client(platform, "10.0.0.1") as a, client(platform, "10.0.0.2") as b:
        for _ in range(MAX_FAILURES):
            r = await page_login(a, "wg_hs01_g1", "wrong")
            assert r.status_code == 401
        r = await page_login(b, "wg_hs01_g1")  # right password, other address: still locked
        assert r.status_code == 429 and "登录失败次数过多" in r.text and int(r.headers["retry-after"]) > 0
        r = await page_login(b, "wg_hs01_g2")  # another user from the other address is fine
        assert r.status_code == 303
    actions = await audit_actions(platform)
    assert ("wg_hs01_g1", "login_lockout") in actions and ("wg_hs01_g1", "login_locked") in actions


async def test_api_login_is_rate_limited_per_address(platform: Platform) -> None:
    async with client(platform, "10.0.0.3") as a, client(platform, "10.0.0.4") as b:
        for i in range(MAX_FAILURES):
            r = await a.post("/api/auth/login", json={"username": f"nobody{i}", "password": "wrong-password"})
            assert r.status_code == 401
        r = await a.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 429 and "too many failed logins" in r.json()["detail"]
        assert r.headers["retry-after"]
        r = await b.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 200


async def test_successful_login_resets_the_username_counter(platform: Platform) -> None:
    async with client(platform, "10.0.0.5") as a, client(platform, "10.0.0.6") as b:
        for _ in range(MAX_FAILURES - 1):
            assert (await page_login(a, "wg_hs01_g3", "wrong")).status_code == 401
        assert (await page_login(b, "wg_hs01_g3")).status_code == 303
        async with client(platform, "10.0.0.7") as c:
            assert (await page_login(c, "wg_hs01_g3", "wrong")).status_code == 401  # counts from zero again
            assert (await page_login(c, "wg_hs01_g3")).status_code == 303


async def test_form_post_without_csrf_token_is_refused(platform: Platform) -> None:
    async with client(platform) as http:
        await http.get("/login")
        r = await http.post("/login", data={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 403
        await http.get("/report")
        r = await http.post("/report", data={"description": "no token", "category": "SR-01"})
        assert r.status_code == 403


async def test_login_sets_httponly_samesite_session_cookie(platform: Platform) -> None:
    async with client(platform) as http:
        r = await page_login(http, "wg_hs01_g1")
        assert r.status_code == 303
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("wulian_session="))
        flags = [f.strip().lower() for f in cookie.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags


async def _event_row(platform: Platform, event_id: str) -> models.Event:
    for _ in range(100):
        async with platform.db.session() as session:
            row = await session.get(models.Event, event_id)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_id} was not projected")


async def test_script_in_a_description_is_escaped_on_event_and_tracking_pages(platform: Platform) -> None:
    created = await platform.report(description=f"门口 {SCRIPT} 垃圾")
    event = await _event_row(platform, created["event_id"])
    async with client(platform) as http:
        track = (await http.get(f"/track/{event.receipt_code}")).text
        assert "&lt;script&gt;" in track and SCRIPT not in track
        assert (await page_login(http, "wg_hs01_g1")).status_code == 303
        page = (await http.get(f"/events/{created['event_id']}")).text
        assert "&lt;script&gt;" in page and SCRIPT not in page


async def test_worker_of_another_grid_gets_403_on_event_page_and_api(platform: Platform) -> None:
    created = await platform.report()
    await _event_row(platform, created["event_id"])
    async with client(platform) as other:
        assert (await page_login(other, "wg_st01_g1")).status_code == 303
        r = await other.get(f"/events/{created['event_id']}")
        assert r.status_code == 403
    headers = await platform.login("wg_st01_g1")
    r = await platform.http.get(f"/api/events/{created['event_id']}", headers=headers)
    assert r.status_code == 403
    headers = await platform.login("wg_hs01_g1")
    r = await platform.http.get(f"/api/events/{created['event_id']}", headers=headers)
    assert r.status_code == 200
