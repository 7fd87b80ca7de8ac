"""Logins under attack: the client address cannot be forged (through the app and through a real uvicorn
started as the launcher starts it), trusted proxies are read right to left, supervisors see and lift
lockouts within their scope, and the password policy refuses guessable passwords."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from pydantic import ValidationError
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from store import admin_people, models
from store.admin_common import AdminError
from store.db import Database
from store.passwords import is_sequence, password_problem
from tests.platform import Platform, csrf, running_platform
from tests.test_launcher import ROOT, accepts, free_port
from tests.test_security import client, page_login
from web.client_address import client_ip, forwarded_client
from web.ratelimit import ADDRESS_MAX_FAILURES, PAIR_MAX_FAILURES
from wulian.launcher import web_command
from wulian.settings import Settings

SPRAY = ADDRESS_MAX_FAILURES + 2  # 12 logins: more than one address may fail


@pytest.fixture
async def pages(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Platform]:
    """A platform without a worker: enough for logins and pages."""
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        yield p


# ---- the client address ----------------------------------------------------------------------


def _networks(spec: str) -> tuple:  # type: ignore[type-arg]
    import ipaddress

    return tuple(ipaddress.ip_network(p) for p in spec.split())


@pytest.mark.parametrize(("peer", "header", "trusted", "expected"), [
    ("198.51.100.7", ["203.0.113.9"], "", "198.51.100.7"),  # no trusted proxy: the header is ignored
    ("198.51.100.7", ["203.0.113.9"], "10.0.0.0/8", "198.51.100.7"),  # from an untrusted peer: ignored
    ("10.0.0.2", ["203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),  # behind the proxy
    ("10.0.0.2", ["6.6.6.6, 203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),  # the client's own entry ignored
    ("10.0.0.2", ["6.6.6.6", "203.0.113.9, 10.0.0.5"], "10.0.0.0/8", "203.0.113.9"),  # two proxies, two headers
    ("10.0.0.2", ["10.0.0.9, 10.0.0.5"], "10.0.0.0/8", "10.0.0.9"),  # all trusted: the left-most
    ("10.0.0.2", ["6.6.6.6, junk, 203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),
    ("10.0.0.2", ["6.6.6.6, junk"], "10.0.0.0/8", "10.0.0.2"),  # garbage: the last trusted hop counts
    ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
    ("10.0.0.2", ["203.0.113.9:4711"], "10.0.0.0/8", "203.0.113.9"),
    ("::1", ["[2001:db8::7]:443"], "::1/128", "2001:db8::7"),
    ("::ffff:10.0.0.2", ["203.0.113.9"], "10.0.0.2/32", "203.0.113.9"),  # IPv4-mapped peer
])
def test_forwarded_client(peer: str, header: list[str], trusted: str, expected: str) -> None:
    assert forwarded_client(peer, header, _networks(trusted)) == expected


def test_client_ip_takes_the_socket_unless_the_peer_is_a_trusted_proxy() -> None:
    def request(peer: str, forwarded: str) -> SimpleNamespace:
        headers = httpx.Headers({"x-forwarded-for": forwarded})
        return SimpleNamespace(client=SimpleNamespace(host=peer), headers=SimpleNamespace(
            getall=lambda name, default: headers.get_list(name) or default))

    plain = Settings(trusted_proxies="")
    behind = Settings(trusted_proxies="192.0.2.1, 10.1.0.0/16")
    assert client_ip(request("127.0.0.1", "203.0.113.9"), plain) == "127.0.0.1"
    assert client_ip(request("10.1.2.3", "6.6.6.6, 203.0.113.9"), behind) == "203.0.113.9"
    assert client_ip(request("192.0.2.1", "203.0.113.9, 10.1.0.4"), behind) == "203.0.113.9"
    assert client_ip(SimpleNamespace(client=None, headers=None), plain) == "unknown"


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(ValidationError, match="not an address or CIDR network"):
        Settings(trusted_proxies="10.0.0.0/8, proxy.example")


async def _spray(http: httpx.AsyncClient, forwarded: list[str] | None = None) -> list[int]:
    """``SPRAY`` wrong logins for many usernames, each with another forged ``X-Forwarded-For``."""
    codes = []
    for i in range(SPRAY):
        header = forwarded[i] if forwarded else f"203.0.113.{i + 1}"
        r = await http.post("/api/auth/login", headers={"X-Forwarded-For": header},
                            json={"username": f"wg_hs01_g{i % 4 + 1}x{i}", "password": "wrong-password"})
        codes.append(r.status_code)
    return codes


async def test_forged_forwarded_for_does_not_escape_the_address_limit(pages: Platform) -> None:
    async with client(pages, "127.0.0.1") as http:
        codes = await _spray(http)
    assert codes[:ADDRESS_MAX_FAILURES] == [401] * ADDRESS_MAX_FAILURES and codes[-1] == 429


async def test_behind_a_trusted_proxy_each_client_is_counted_alone(pages: Platform) -> None:
    pages.settings.trusted_proxies = "10.9.0.0/16"
    async with client(pages, "10.9.0.1") as proxy:  # every request comes through the proxy
        # One client forging the left of the header: still counted as itself, the right-most entry.
        codes = await _spray(proxy, [f"203.0.113.{i}, 198.51.100.7" for i in range(SPRAY)])
        assert codes[-1] == 429
        r = await proxy.post("/api/auth/login", headers={"X-Forwarded-For": "198.51.100.8"},
                             json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 200  # another client behind the same proxy is not locked
    async with pages.db.session() as session:
        addresses = set((await session.exec(select(models.LoginFailure.address).where(
            models.LoginFailure.kind != "known"))).all())  # the successful client's address is known now
    assert addresses == {"198.51.100.7"}


def test_a_real_uvicorn_started_as_the_launcher_does_ignores_forged_forwarded_for(tmp_path: Path) -> None:
    """The hole was uvicorn's: by default it rewrites the client from X-Forwarded-For for requests
    from 127.0.0.1. The launcher's own command line must switch that off."""
    port = free_port()
    settings = Settings(data_dir=tmp_path, web_host="127.0.0.1", web_port=port, secret_key="uvicorn-test")
    env = {**os.environ, "WULIAN_DATA_DIR": str(tmp_path), "WULIAN_WEB_PORT": str(port),
           "WULIAN_SECRET_KEY": "uvicorn-test", "WULIAN_TEMPORAL_ADDRESS": "127.0.0.1:1", "WULIAN_DATABASE_URL": ""}
    log = (tmp_path / "web.log").open("wb")
    web = subprocess.Popen(web_command(settings), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not accepts(port):
            assert web.poll() is None, (tmp_path / "web.log").read_text()
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            codes = [http.post("/api/auth/login", headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
                               json={"username": f"nobody{i}", "password": "wrong-password"}).status_code
                     for i in range(SPRAY)]
    finally:
        web.terminate()
        web.wait(timeout=30)
        log.close()
    assert codes[:ADDRESS_MAX_FAILURES] == [401] * ADDRESS_MAX_FAILURES and codes[-1] == 429, codes


# ---- lockouts seen and lifted ----------------------------------------------------------------


async def _failures(db: Database, username: str, address: str, count: int, at: datetime) -> None:
    """``count`` failures as the limiter records them (one row of each kind each)."""
    async with db.session() as session:
        for i in range(count):
            for kind in ("pair", "address", "user"):
                session.add(models.LoginFailure(kind=kind, username=username, address=address,
                                                at=at + timedelta(seconds=i)))
        await session.commit()


async def _lock_some(db: Database) -> None:
    """Two locked pairs (Huashan, another street), an address that tried only Huashan's users, one
    that tried users of two streets, and a Huashan username slowed down."""
    now = datetime.now(UTC)
    await _failures(db, "wg_hs01_g1", "10.8.0.1", PAIR_MAX_FAILURES, now - timedelta(seconds=200))
    await _failures(db, "wg_st01_g1", "10.8.0.2", PAIR_MAX_FAILURES, now - timedelta(seconds=200))
    for i in range(ADDRESS_MAX_FAILURES):
        await _failures(db, f"wg_hs0{i % 5 + 1}_g1", "10.8.0.3", 1, now - timedelta(seconds=100))
        await _failures(db, f"wg_{('hs', 'st')[i % 2]}0{i // 2 + 1}_g3", "10.8.0.4", 1, now - timedelta(seconds=100))
    await _failures(db, "wg_hs01_g2", "10.8.1.1", 14, now - timedelta(seconds=60))  # a long delay now


def _keys(body: dict) -> set[tuple[str, str, str]]:  # type: ignore[type-arg]
    return {(lock["kind"], lock["username"], lock["address"]) for lock in body["lockouts"]}


async def test_supervisors_see_and_lift_lockouts_within_their_scope(pages: Platform) -> None:
    await _lock_some(pages.db)
    city = (await pages.http.get("/api/lockouts", headers=await pages.login("zx_city"))).json()
    assert {("pair", "wg_hs01_g1", "10.8.0.1"), ("pair", "wg_st01_g1", "10.8.0.2"), ("address", "", "10.8.0.3"),
            ("address", "", "10.8.0.4"), ("user", "wg_hs01_g2", "")} <= _keys(city)
    delayed = next(lock for lock in city["lockouts"] if lock["kind"] == "user")
    assert delayed["failures"] == 14 and delayed["addresses"] == ["10.8.1.1"]
    assert datetime.fromisoformat(delayed["until"]) > datetime.now(UTC) + timedelta(minutes=5)

    street = await pages.login("zx_hs")
    seen = _keys((await pages.http.get("/api/lockouts", headers=street)).json())
    assert {("pair", "wg_hs01_g1", "10.8.0.1"), ("address", "", "10.8.0.3"), ("user", "wg_hs01_g2", "")} <= seen
    assert not {("pair", "wg_st01_g1", "10.8.0.2"), ("address", "", "10.8.0.4")} & seen  # other streets' users
    for outside in ({"kind": "pair", "username": "wg_st01_g1", "address": "10.8.0.2"},
                    {"kind": "address", "address": "10.8.0.4"}):
        r = await pages.http.post("/api/lockouts/lift", headers=street, json=outside)
        assert r.status_code == 403 and "outside your scope" in r.json()["detail"]
    r = await pages.http.post("/api/lockouts/lift", headers=street,
                              json={"kind": "pair", "username": "wg_hs01_g4", "address": "10.8.0.1"})
    assert r.status_code == 404 and r.json()["detail"].startswith("no such current lockout")
    r = await pages.http.post("/api/lockouts/lift", headers=street, json={"kind": "everything"})
    assert r.status_code == 400
    worker = await pages.login("wg_hs01_g3")
    assert (await pages.http.get("/api/lockouts", headers=worker)).status_code == 403

    async with client(pages, "10.8.0.1") as locked:
        r = await locked.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 429
        r = await pages.http.post("/api/lockouts/lift", headers=street,
                                  json={"kind": "pair", "username": "WG_HS01_G1", "address": "10.8.0.1"})
        assert r.status_code == 200 and r.json()["lifted"]["failures"] == PAIR_MAX_FAILURES
        r = await locked.post("/api/auth/login", json={"username": "wg_hs01_g1", "password": "demo12345"})
        assert r.status_code == 200  # the right user gets in at once after the lift
    async with pages.db.session() as session:
        lifts = (await session.exec(select(models.AuditEntry).where(models.AuditEntry.action == "login_lift"))).all()
    assert [(e.actor, e.target) for e in lifts] == [("zx_hs", "pair:wg_hs01_g1@10.8.0.1")]


async def test_the_lockouts_page_lists_and_lifts_with_csrf(pages: Platform) -> None:
    await _lock_some(pages.db)
    async with client(pages) as http:
        assert (await page_login(http, "zx_hs")).status_code == 303
        assert 'href="/console/lockouts"' in (await http.get("/console")).text
        page = (await http.get("/console/lockouts")).text
        assert "登录锁定" in page and "用户名延时" in page and "wg_hs01_g2" in page and "10.8.0.3" in page
        assert "wg_st01_g1" not in page
        assert "10.8.0.4" not in page, page[page.find("10.8.0.4") - 300:page.find("10.8.0.4") + 300]
        lift = {"kind": "user", "username": "wg_hs01_g2", "address": ""}
        assert (await http.post("/console/lockouts/lift", data=lift)).status_code == 403  # no CSRF token
        r = await http.post("/console/lockouts/lift", data={**lift, "_csrf_token": csrf(page)})
        assert r.status_code == 303 and r.headers["location"] == "/console/lockouts?msg=lockouts.msg.lifted"
        after = (await http.get(r.headers["location"])).text
        assert "已解除锁定" in after and "用户名延时" not in after  # (its pair at 10.8.1.1 stays locked)
        r = await http.post("/console/lockouts/lift", data={**lift, "_csrf_token": csrf(page)})  # again
        assert r.status_code == 303 and r.headers["location"] == "/console/lockouts?msg=lockouts.msg.gone"
        assert "该锁定已结束或已被解除" in (await http.get(r.headers["location"])).text
        outside = {"kind": "pair", "username": "wg_st01_g1", "address": "10.8.0.2", "_csrf_token": csrf(page)}
        assert (await http.post("/console/lockouts/lift", data=outside)).status_code == 403
        http.cookies.set("lang", "en")
        english = (await http.get("/console/lockouts")).text
        assert "Login lockouts" in english and "Username at address" in english
    async with client(pages) as worker:
        assert (await page_login(worker, "wg_hs01_g3")).status_code == 303
        assert (await worker.get("/console/lockouts")).status_code == 403


async def test_a_wait_is_told_in_the_visitors_language(pages: Platform) -> None:
    await _failures(pages.db, "wg_hs01_g4", "10.8.2.1", 14, datetime.now(UTC))
    async with client(pages, "10.8.2.2") as http:
        r = await page_login(http, "wg_hs01_g4")
        assert r.status_code == 429 and "登录失败次数过多，请" in r.text and "分钟后再试" in r.text
        http.cookies.set("lang", "en")
        r = await page_login(http, "wg_hs01_g4")
        assert r.status_code == 429 and "please try again in" in r.text and "minutes" in r.text


# ---- the password policy ---------------------------------------------------------------------


@pytest.mark.parametrize(("password", "username", "key"), [
    ("short", "", "admin.err.password_short"),
    ("x" * 201, "", "admin.err.too_long"),
    ("aaaaaaaaaaaa", "", "admin.err.password_one_char"),
    ("AaAaAaAaAaAa", "", "admin.err.password_one_char"),
    ("1234567890", "", "admin.err.password_sequence"),
    ("12345678901", "", "admin.err.password_sequence"),
    ("9876543210", "", "admin.err.password_sequence"),
    ("0987654321", "", "admin.err.password_sequence"),
    ("abcdefghijk", "", "admin.err.password_sequence"),
    ("qwertyuiop", "", "admin.err.password_common"),
    ("Password123", "", "admin.err.password_common"),
    ("1q2w3e4r5t", "", "admin.err.password_common"),
    ("woaini1314", "", "admin.err.password_common"),
    ("demo12345x", "", None),
    ("admin12345", "", "admin.err.password_common"),  # the demo passwords are never chosen
    ("wg_hs01_g1", "wg_hs01_g1", "admin.err.password_username"),
    ("my-WG_HS01_G1-pass", "wg_hs01_g1", "admin.err.password_username"),
    ("new-grid-pass-2026", "wg_hs01_g1", None),
    ("long-enough-1", "wg_new", None),
    ("1234567891", "", "admin.err.password_common"),  # no run, but on the list
    ("tiger-lily-73", "", None),
])
def test_password_policy(password: str, username: str, key: str | None) -> None:
    problem = password_problem(password, username)
    assert (problem[0] if problem else None) == key


def test_sequences() -> None:
    assert is_sequence("12345678") and is_sequence("98765432") and is_sequence("ZYXWVUTS")
    assert not is_sequence("12435678") and not is_sequence("13579") and not is_sequence("abcDEF")


async def test_every_password_setter_applies_the_policy(org_db: Database) -> None:
    with pytest.raises(AdminError) as refused:
        await admin_people.create_user(org_db, "admin", username="wg_new", display_name="新人", unit="HS01-G1",
                                    role="grid_worker", password="11111111111")
    assert refused.value.key == "admin.err.password_one_char" and refused.value.field == "password"
    with pytest.raises(AdminError) as refused:
        await admin_people.reset_password(org_db, "admin", "wg_hs01_g1", "Wg_Hs01_G1_2026")
    assert refused.value.key == "admin.err.password_username"
    with pytest.raises(AdminError) as refused:
        await admin_people.reset_password(org_db, "admin", "wg_hs01_g1", "12345678901")
    assert refused.value.key == "admin.err.password_sequence"


async def test_a_refused_reset_speaks_the_visitors_language(pages: Platform) -> None:
    async with client(pages) as admin:
        assert (await page_login(admin, "admin", "admin12345")).status_code == 303
        page = (await admin.get("/admin/users/wg_hs01_g2")).text
        r = await admin.post("/admin/users/wg_hs01_g2/password",
                             data={"password": "qwertyuiop", "_csrf_token": csrf(page)})
        assert r.status_code == 400 and "密码：这是常见密码" in r.text and "qwertyuiop" not in r.text
        admin.cookies.set("lang", "en")
        r = await admin.post("/admin/users/wg_hs01_g2/password",
                             data={"password": "wg_hs01_g2-2026", "_csrf_token": csrf(page)})
        assert r.status_code == 400 and "Password: it may not be or contain the username." in r.text
