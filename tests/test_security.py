"""Security of the web app: login rate limiting, CSRF, output escaping, cookie flags, unit scopes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from store import models
from store.db import Database
from tests.conftest import make_db
from tests.platform import Platform, csrf
from web import ratelimit
from web.ratelimit import (
    ADDRESS_MAX_FAILURES,
    PAIR_MAX_FAILURES,
    USER_BASE_DELAY,
    USER_FREE_FAILURES,
    USER_MAX_DELAY,
    USER_WINDOW_SECONDS,
    WINDOW_SECONDS,
    Attempt,
    LoginLimiter,
    user_delay,
)

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


async def fail(limiter: LoginLimiter, username: str, ip: str, now: datetime) -> list[str]:
    """One wrong password for ``username`` from ``ip`` at ``now`` (the limits must admit it)."""
    attempt = await limiter.begin(username, ip, now=now)
    assert isinstance(attempt, Attempt), f"{username}@{ip} refused for {attempt} s"
    return await limiter.failed(attempt, now=now)


async def test_limiter_window_and_reset(any_db: Database) -> None:
    """The pair is locked for the window; the username only slowed elsewhere; the address locked after a
    spray; a success clears the username's delay and its own pair, never the address's count."""
    limiter = LoginLimiter(any_db)
    t0 = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    moments = [0, 1, 2, 10, 30]  # spaced beyond the username's delays (0, 0, 0, 2, 4 s)
    assert len(moments) == PAIR_MAX_FAILURES
    for i, t in enumerate(moments):
        assert await limiter.retry_after("a", "1.1.1.1", now=at(t)) == 0
        started = await fail(limiter, "a", "1.1.1.1", at(t))
        assert ("pair" in started) == (i == PAIR_MAX_FAILURES - 1)
    assert await limiter.retry_after("a", "1.1.1.1", now=at(40)) == WINDOW_SECONDS - 40 + 1  # the pair: locked
    assert 0 < await limiter.retry_after("a", "2.2.2.2", now=at(31)) <= user_delay(5)  # elsewhere: a delay
    assert await limiter.retry_after("a", "2.2.2.2", now=at(30 + user_delay(5))) == 0  # that passes
    assert await limiter.retry_after("a", "1.1.1.1", now=at(WINDOW_SECONDS + 1)) == 0  # the window passed

    for i in range(ADDRESS_MAX_FAILURES):  # a spray of usernames from one address
        started = await fail(limiter, f"b{i}", "3.3.3.3", at(i))
        assert ("address" in started) == (i == ADDRESS_MAX_FAILURES - 1)
    assert await limiter.retry_after("zz", "3.3.3.3", now=at(20)) > 0  # the address for any username
    assert await limiter.retry_after("zz", "4.4.4.4", now=at(20)) == 0

    attempt = await limiter.begin("A", "2.2.2.2", now=at(60))  # usernames are counted without case
    assert isinstance(attempt, Attempt)
    await limiter.succeeded(attempt)
    assert await limiter.retry_after("a", "1.1.1.1", now=at(61)) > 0  # another address's pair stays locked
    for t in (61, 62, 63):  # the username's count starts from zero: free failures again
        await fail(limiter, "a", "2.2.2.2", at(t))

    for i in range(ADDRESS_MAX_FAILURES - 1):
        await fail(limiter, f"c{i}", "5.5.5.5", at(i))
    ok = await limiter.begin("c0", "5.5.5.5", now=at(20))
    assert isinstance(ok, Attempt)
    await limiter.succeeded(ok)  # a success within a spray does not clear the address's count
    await fail(limiter, "c9", "5.5.5.5", at(21))
    assert await limiter.retry_after("c10", "5.5.5.5", now=at(22)) > 0


async def test_username_delay_doubles_up_to_a_cap_and_refuses_without_counting(any_db: Database) -> None:
    """Failures from ever new addresses (a botnet) slow the username: each attempt waits a delay that
    doubles per failure up to the cap; an attempt during the delay is refused and counts nothing; the
    right user from another address gets in once the current delay has passed."""
    limiter = LoginLimiter(any_db)
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    delays = []
    for n in range(1, 18):
        await fail(limiter, "wg_hs01_g1", f"10.2.{n}.1", now)
        delay = user_delay(n)
        delays.append(delay)
        if delay:
            during = now + timedelta(seconds=delay / 2)
            assert await limiter.begin("wg_hs01_g1", "10.3.0.1", now=during) == int(delay - delay / 2) + 1
        now += timedelta(seconds=delay)
    assert delays[:USER_FREE_FAILURES] == [0] * USER_FREE_FAILURES
    growing = delays[USER_FREE_FAILURES:]
    assert growing[0] == USER_BASE_DELAY and growing[-1] == USER_MAX_DELAY
    assert all(b == min(2 * a, USER_MAX_DELAY) for a, b in zip(growing, growing[1:], strict=False))
    async with any_db.session() as session:
        rows = (await session.exec(select(models.LoginFailure).where(
            models.LoginFailure.kind == "user", models.LoginFailure.username == "wg_hs01_g1"))).all()
    assert len(rows) == 17  # refused attempts were not counted
    right = await limiter.begin("wg_hs01_g1", "10.4.0.1", now=now)  # the current delay has passed
    assert isinstance(right, Attempt)
    await limiter.succeeded(right)
    assert await limiter.retry_after("wg_hs01_g1", "10.5.0.1", now=now) == 0


async def test_a_slowed_username_still_gets_in_at_once_from_an_address_it_used_before(any_db: Database) -> None:
    """A stranger keeping the username slowed (one failure as each delay ends) cannot keep its owner out
    of their usual office: the delay spares an address the user logged in from (the pair and address
    limits still apply there)."""
    limiter = LoginLimiter(any_db)
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    office = await limiter.begin("wg_hs01_g1", "10.8.0.1", now=now)
    assert isinstance(office, Attempt)
    await limiter.succeeded(office, now=now)  # the worker logs in at the office in the morning
    for n in range(1, 12):  # then a botnet keeps the username slowed
        now += timedelta(seconds=user_delay(n - 1) + 1)
        await fail(limiter, "wg_hs01_g1", f"10.9.{n}.1", now)
    assert user_delay(11) >= 60 and await limiter.retry_after("wg_hs01_g1", "10.9.99.1", now=now) > 0
    back = await limiter.begin("wg_hs01_g1", "10.8.0.1", now=now)  # the office: no delay
    assert isinstance(back, Attempt)
    for _ in range(PAIR_MAX_FAILURES):  # but a guesser at the office is still stopped by the pair limit
        await limiter.failed(back, now=now)
        back = await limiter.begin("wg_hs01_g1", "10.8.0.1", now=now)
        if not isinstance(back, Attempt):
            break
    assert isinstance(back, int) and back > 0
    assert await limiter.retry_after("wg_hs01_g1", "10.8.0.1", now=now + timedelta(days=31)) == 0


async def test_attempts_arriving_together_share_one_free_moment(tmp_path: Path) -> None:
    """Many attempts at the same moment after a delay (a botnet's burst): only one is admitted."""
    db = await make_db("sqlite", tmp_path)
    limiter = LoginLimiter(db)
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    for n in range(USER_FREE_FAILURES + 1):
        await fail(limiter, "wg_hs01_g2", f"10.6.{n}.1", now)
    later = now + timedelta(seconds=user_delay(USER_FREE_FAILURES + 1))
    results = await asyncio.gather(*(limiter.begin("wg_hs01_g2", f"10.7.{i}.1", now=later) for i in range(8)))
    assert sum(isinstance(r, Attempt) for r in results) == 1
    await db.dispose()


async def test_limiter_counts_across_processes_and_forgets_old_failures(any_db: Database) -> None:
    """Two web processes (two limiters on one store) share the count; old rows are cleaned up."""
    first, second = LoginLimiter(any_db), LoginLimiter(any_db)
    now = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
    for i in range(PAIR_MAX_FAILURES):
        await fail(first if i % 2 else second, "c", "10.1.0.9", now + timedelta(seconds=60 * i))
    later = now + timedelta(seconds=60 * PAIR_MAX_FAILURES)
    assert await first.retry_after("c", "10.1.0.9", now=later) > 0
    assert await second.retry_after("c", "10.1.0.9", now=later) > 0
    much_later = now + timedelta(seconds=USER_WINDOW_SECONDS * 2)
    await fail(first, "d", "10.1.0.0", much_later)  # deletes the rows that left their windows
    async with any_db.session() as session:
        rows = (await session.exec(select(models.LoginFailure))).all()
    assert sorted((r.kind, r.username) for r in rows) == [("address", "d"), ("pair", "d"), ("user", "d")]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Moves the limiter's clock forward by some seconds (the rest of the app keeps real time)."""
    offset = [0.0]
    monkeypatch.setattr(ratelimit, "_now", lambda: datetime.now(UTC) + timedelta(seconds=offset[0]))

    def forward(seconds: float) -> None:
        offset[0] += seconds

    return forward


async def test_page_login_slows_the_username_and_locks_only_the_pair(platform: Platform,
                                                                    clock: Callable[[float], None]) -> None:
    """Brute force on one username is stopped (a delay across addresses, the pair locked), yet the
    right user from another address gets in after the current delay; the address of the guesses
    stays locked for that username."""
    async with client(platform, "10.0.0.1") as a, client(platform, "10.0.0.2") as b:
        for _ in range(USER_FREE_FAILURES + 1):
            assert (await page_login(a, "wg_hs01_g1", "wrong")).status_code == 401
        r = await page_login(b, "wg_hs01_g1")  # right password, other address, during the delay
        assert r.status_code == 429 and "登录失败次数过多" in r.text
        assert 0 < int(r.headers["retry-after"]) <= user_delay(USER_FREE_FAILURES + 1) + 1
        for n in range(USER_FREE_FAILURES + 1, PAIR_MAX_FAILURES):  # the guesser goes on, slowly
            clock(user_delay(n) + 1)
            assert (await page_login(a, "wg_hs01_g1", "wrong")).status_code == 401
        clock(user_delay(PAIR_MAX_FAILURES) + 1)
        r = await page_login(a, "wg_hs01_g1")  # the guessing address is locked for this username
        assert r.status_code == 429 and int(r.headers["retry-after"]) > WINDOW_SECONDS - 60
        assert (await page_login(b, "wg_hs01_g1")).status_code == 303  # the right user gets in
        assert (await page_login(a, "wg_hs01_g2")).status_code == 303  # the address may log in others
    actions = await audit_actions(platform)
    assert ("wg_hs01_g1", "login_lockout") in actions and ("wg_hs01_g1", "login_locked") in actions


async def test_api_login_is_rate_limited_per_address(platform: Platform) -> None:
    async with client(platform, "10.0.0.3") as a, client(platform, "10.0.0.4") as b:
        for i in range(ADDRESS_MAX_FAILURES):
            r = await a.post("/api/auth/login", json={"username": f"nobody{i}", "password": "wrong-password"})
            assert r.status_code == 401
        r = await a.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 429 and "too many failed logins" in r.json()["detail"]
        assert r.headers["retry-after"]
        r = await b.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 200


async def test_successful_login_resets_the_username_counter(platform: Platform) -> None:
    async with client(platform, "10.0.0.5") as a, client(platform, "10.0.0.6") as b:
        for _ in range(USER_FREE_FAILURES):
            assert (await page_login(a, "wg_hs01_g3", "wrong")).status_code == 401
        assert (await page_login(b, "wg_hs01_g3")).status_code == 303
        async with client(platform, "10.0.0.7") as c:
            for _ in range(USER_FREE_FAILURES):  # counts from zero again: no delay yet
                assert (await page_login(c, "wg_hs01_g3", "wrong")).status_code == 401
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
