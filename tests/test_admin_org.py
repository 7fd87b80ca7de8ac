"""The administrator keeps the organisation and its people through the pages: units, users, roles,
passwords, deactivation and "1+X" stations; every change is checked, audited, and seen by pages and
routing at once; nobody else may use these pages."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

import activities.lifecycle as lifecycle
from store import admin_people, admin_units, models, queries
from store.admin_common import AdminError
from store.admin_units import UnitDraft
from store.db import Database
from store.org import OrgTree
from store.seed import load_organisation
from store.users import authenticate
from tests.platform import Platform, csrf, running_platform
from tests.test_security import _event_row, client, page_login

NEW_PASSWORD = "new-grid-pass-2026"  # noqa: S105 - test credentials


async def audit_rows(db: Database, actor: str | None = None) -> list[models.AuditEntry]:
    async with db.session() as session:
        query = select(models.AuditEntry).order_by(models.AuditEntry.id)  # type: ignore[arg-type]
        if actor:
            query = query.where(models.AuditEntry.actor == actor)
        return list((await session.exec(query)).all())


@asynccontextmanager
async def admin_client(platform: Platform, ip: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in as the demo administrator."""
    async with client(platform, ip) as http:
        assert (await page_login(http, "admin", "admin12345")).status_code == 303
        yield http


async def post_form(http: httpx.AsyncClient, page: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Post ``data`` to ``action`` with the CSRF token of ``page`` (as a browser would)."""
    html = (await http.get(page)).text
    return await http.post(action, data={**data, "_csrf_token": csrf(html)})


GRID = {"code": "HS01-G9", "kind": "grid", "parent": "HS01", "name_zh": "城北九号网格", "name_en": "Chengbei grid 9",
        "lat": "28.7601", "lon": "118.6201", "address_keywords": "新华路、新华小区\n新华广场"}


# ---- through the pages, with a worker: a new grid and its worker get its events ----------------


async def test_admin_adds_a_grid_and_its_worker_who_logs_in_and_gets_its_events(platform: Platform) -> None:
    async with admin_client(platform) as admin:
        page = (await admin.get("/admin/org")).text
        assert 'id="add-unit"' in page and 'action="/admin/org/units"' in page
        r = await admin.post("/admin/org/units", data={**GRID, "_csrf_token": csrf(page)})
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/org/units/HS01-G9")
        unit_page = (await admin.get(r.headers["location"])).text
        assert "城北九号网格" in unit_page and "单位已新增" in unit_page
        tree = (await admin.get("/admin/org")).text  # the cached tree was dropped: the new grid shows at once
        assert "HS01-G9" in tree.split('id="departments"')[0]

        r = await post_form(admin, "/admin/users", "/admin/users", {
            "username": "wg_hs01_g9", "display_name": "新网格员", "unit": "HS01-G9", "role": "grid_worker",
            "password": NEW_PASSWORD,
        })
        assert r.status_code == 303 and r.headers["location"].startswith("/admin/users/wg_hs01_g9")
        assert "新网格员" in (await admin.get(r.headers["location"])).text

    created = await platform.report(description="新华小区门口垃圾堆积", location={"grid": "HS01-G9"})
    event = await _event_row(platform, created["event_id"])
    assert event.grid == "HS01-G9" and event.community == "HS01" and event.street == "HS"
    assert event.unit == "HS01-G9"  # routing (a worker process of its own) saw the grid added a moment ago

    async with client(platform, "10.1.0.1") as worker:
        assert (await page_login(worker, "wg_hs01_g9", NEW_PASSWORD)).status_code == 303
        for _ in range(50):
            inbox = (await worker.get("/inbox")).text
            if "新华小区门口垃圾堆积" in inbox:
                break
            await asyncio.sleep(0.1)
        assert "城北九号网格" in inbox and "新华小区门口垃圾堆积" in inbox

    rows = [(a.actor, a.action, a.target) for a in await audit_rows(platform.db, "admin")]
    assert ("admin", "unit_create", "HS01-G9") in rows and ("admin", "user_create", "wg_hs01_g9") in rows
    assert all(NEW_PASSWORD not in a.detail for a in await audit_rows(platform.db))


@pytest.fixture
async def pages(dev_env: WorkflowEnvironment, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A platform without a worker: enough for the pages alone."""
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        yield p


# ---- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "reason"), [
    ({"code": "hs01-g9!"}, "编码：只能用大写字母和数字"),
    ({"code": "HS01-G1"}, "单位 HS01-G1 已存在"),
    ({"parent": "HS"}, "HS 不是此类单位所需的“社区”"),
    ({"parent": "NOPE"}, "单位 NOPE 不存在"),
    ({"parent": ""}, "需要一个类型为“社区”的上级"),
    ({"lat": "91"}, "纬度：须为 -90 到 90"),
    ({"lon": "east"}, "经度：须为 -180 到 180"),
    ({"lon": ""}, "纬度和经度须同时填写"),
    ({"kind": "planet"}, "类型：请选择"),
    ({"name_zh": " "}, "中文名称：必填"),
    ({"kind": "community", "parent": "HS", "lat": "", "lon": "", "address_keywords": "", "stationed": "on"},
     "“1+X”标记只适用于职能部门"),
])
async def test_bad_unit_gives_the_form_back_with_the_reason(pages: Platform, change: dict[str, str],
                                                            reason: str) -> None:
    async with admin_client(pages) as admin:
        r = await post_form(admin, "/admin/org", "/admin/org/units", {**GRID, **change})
        assert r.status_code == 400, r.text
        assert reason in r.text and 'role="alert"' in r.text and "Traceback" not in r.text
        assert 'aria-invalid="true"' in r.text
        assert 'value="城北九号网格"' in r.text or change.get("name_zh")  # what was typed comes back
    assert await queries.users(pages.db, "HS01-G9") == []
    async with pages.db.session() as session:
        assert await session.get(models.Unit, "HS01-G9") is None


async def test_refusals_speak_the_visitors_language(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        admin.cookies.set("lang", "en")
        r = await post_form(admin, "/admin/org", "/admin/org/units", {**GRID, "parent": "HS"})
        assert r.status_code == 400 and "Parent: HS is not of kind Community" in r.text
        r = await post_form(admin, "/admin/users", "/admin/users", {
            "username": "x_new", "display_name": "X", "unit": "HS01-G1", "role": "grid_worker", "password": "short",
        })
        assert r.status_code == 400 and "Password: at least 10 characters." in r.text
        assert 'value="x_new"' in r.text and 'value="short"' not in r.text  # a password is never sent back


@pytest.mark.parametrize(("change", "reason"), [
    ({"username": "Bad Name"}, "用户名：2 到 64 个小写字母"),
    ({"username": "wg_hs01_g1"}, "wg_hs01_g1 已被使用"),
    ({"password": "123456789"}, "密码：至少 10 个字符"),
    ({"password": "password123"}, "密码：这是常见密码"),
    ({"password": "zzzzzzzzzzzz"}, "密码：不能全部是同一个字符"),
    ({"password": "98765432109"}, "密码：不能是连续的数字或字母"),
    ({"password": "wg_new-2026-x"}, "密码：不能等于或包含用户名"),
    ({"unit": "NOPE"}, "单位：NOPE 不存在"),
    ({"unit": "HS01"}, "HS01 不是该角色所属的单位类型"),
    ({"role": "emperor"}, "角色：请从列表中选择"),
    ({"role": "street_supervisor", "unit": "CC-JS"}, "CC-JS 不是该角色所属的单位类型"),
    ({"role": "dispatched_cadre", "unit": "D-ZJ"}, "D-ZJ 不是“1+X”部门"),
    ({"display_name": ""}, "姓名：必填"),
])
async def test_bad_user_gives_the_form_back_with_the_reason(pages: Platform, change: dict[str, str],
                                                            reason: str) -> None:
    good = {"username": "wg_new", "display_name": "新人", "unit": "HS01-G1", "role": "grid_worker",
            "password": "long-enough-1"}
    async with admin_client(pages) as admin:
        r = await post_form(admin, "/admin/users", "/admin/users", {**good, **change})
        assert r.status_code == 400, r.text
        assert reason in r.text and "Traceback" not in r.text
    assert not [u for u in await queries.users(pages.db) if u.username in ("wg_new", "bad name")]


async def test_admin_cannot_deactivate_or_demote_themselves(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        r = await post_form(admin, "/admin/users/admin", "/admin/users/admin/active", {"active": "0"})
        assert r.status_code == 400 and "不能停用自己的账号" in r.text
        r = await post_form(admin, "/admin/users/admin", "/admin/users/admin",
                            {"display_name": "系统管理员", "unit": "CC-JS", "role": "city_supervisor"})
        assert r.status_code == 400 and "不能取消自己的管理员角色" in r.text
        assert (await admin.get("/admin/users")).status_code == 200  # still an administrator
    assert await authenticate(pages.db, "admin", "admin12345") is not None


async def test_missing_csrf_token_is_refused(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        r = await admin.post("/admin/org/units", data=GRID)
        assert r.status_code == 403
        r = await admin.post("/admin/users/wg_hs01_g2/active", data={"active": "0"})
        assert r.status_code == 403
        r = await admin.post("/admin/users/wg_hs01_g2/active", data={"active": "0", "_csrf_token": "forged"})
        assert r.status_code == 403
    assert await authenticate(pages.db, "wg_hs01_g2", "demo12345") is not None


ADMIN_GETS = ["/admin/org", "/admin/org/units/HS01-G1", "/admin/users", "/admin/users/wg_hs01_g2"]
ADMIN_POSTS = [
    ("/admin/org/units", GRID),
    ("/admin/org/units/HS01-G1", {"name_zh": "改名", "name_en": "Renamed"}),
    ("/admin/users", {"username": "sneaky", "display_name": "S", "unit": "HS01-G1", "role": "admin",
                      "password": "long-enough-1"}),
    ("/admin/users/wg_hs01_g1", {"display_name": "S", "unit": "JS", "role": "admin"}),
    ("/admin/users/wg_hs01_g2/password", {"password": "long-enough-1"}),
    ("/admin/users/wg_hs01_g2/active", {"active": "0"}),
    ("/admin/users/pz_zf_hs/station", {"street": ""}),
]


async def test_only_administrators_may_use_the_pages(pages: Platform) -> None:
    async with client(pages) as anonymous:
        for url in ADMIN_GETS:
            r = await anonymous.get(url)
            assert r.status_code in (302, 303) and r.headers["location"] == "/login", url
        html = (await anonymous.get("/login")).text
        for url, data in ADMIN_POSTS:
            r = await anonymous.post(url, data={**data, "_csrf_token": csrf(html)})
            assert r.status_code == 303 and r.headers["location"] == "/login", url
    for username in ("wg_hs01_g1", "zx_city"):
        async with client(pages, "10.2.0.1") as other:
            assert (await page_login(other, username)).status_code == 303
            for url in ADMIN_GETS:
                assert (await other.get(url)).status_code == 403, (username, url)
            html = (await other.get("/inbox")).text
            for url, data in ADMIN_POSTS:
                r = await other.post(url, data={**data, "_csrf_token": csrf(html)})
                assert r.status_code == 403, (username, url)
    async with pages.db.session() as session:
        assert await session.get(models.Unit, "HS01-G9") is None and await session.get(models.User, "sneaky") is None
        assert (await session.get(models.User, "wg_hs01_g1")).role == "grid_worker"  # type: ignore[union-attr]
        assert (await session.get(models.Unit, "HS01-G1")).name_zh != "改名"  # type: ignore[union-attr]
    assert await authenticate(pages.db, "wg_hs01_g2", "demo12345") is not None
    assert not [a for a in await audit_rows(pages.db) if a.action.startswith(("unit_", "user_", "cadre_"))]


# ---- users: deactivation ends sessions; role, unit, password -----------------------------------


async def test_deactivation_stops_login_and_open_sessions_and_reactivation_restores(pages: Platform) -> None:
    async with client(pages, "10.3.0.1") as worker, admin_client(pages) as admin:
        assert (await page_login(worker, "wg_hs01_g3")).status_code == 303
        token = (await worker.post("/api/auth/login", json={"username": "wg_hs01_g3", "password": "demo12345"})
                 ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await worker.get("/inbox")).status_code == 200
        assert (await worker.get("/api/inbox", headers=bearer)).status_code == 200

        r = await post_form(admin, "/admin/users/wg_hs01_g3", "/admin/users/wg_hs01_g3/active", {"active": "0"})
        assert r.status_code == 303
        assert "已停用" in (await admin.get(r.headers["location"])).text

        r = await worker.get("/inbox")  # the session cookie is still there, and refused
        assert r.status_code in (302, 303) and r.headers["location"] == "/login"
        assert (await worker.get("/api/inbox", headers=bearer)).status_code == 401
        assert (await page_login(worker, "wg_hs01_g3")).status_code == 401
        r = await worker.post("/api/auth/login", json={"username": "wg_hs01_g3", "password": "demo12345"})
        assert r.status_code == 401

        r = await post_form(admin, "/admin/users/wg_hs01_g3", "/admin/users/wg_hs01_g3/active", {"active": "1"})
        assert r.status_code == 303
        assert (await page_login(worker, "wg_hs01_g3")).status_code == 303
        assert (await worker.get("/inbox")).status_code == 200
    actions = [(a.actor, a.action, a.target) for a in await audit_rows(pages.db, "admin")]
    assert ("admin", "user_deactivate", "wg_hs01_g3") in actions
    assert ("admin", "user_reactivate", "wg_hs01_g3") in actions


async def test_a_password_reset_ends_the_users_open_sessions(pages: Platform) -> None:
    async with client(pages, "10.3.0.3") as worker, admin_client(pages) as admin:
        assert (await page_login(worker, "wg_hs01_g2")).status_code == 303
        token = (await worker.post("/api/auth/login", json={"username": "wg_hs01_g2", "password": "demo12345"})
                 ).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await worker.get("/inbox")).status_code == 200
        await asyncio.sleep(1.1)  # tokens carry whole seconds: the reset must come in a later one
        r = await post_form(admin, "/admin/users/wg_hs01_g2", "/admin/users/wg_hs01_g2/password",
                            {"password": NEW_PASSWORD})
        assert r.status_code == 303
        r = await worker.get("/inbox")  # the page session from before the reset is refused
        assert r.status_code in (302, 303) and r.headers["location"] == "/login"
        assert (await worker.get("/api/inbox", headers=bearer)).status_code == 401  # and the API token
        assert (await page_login(worker, "wg_hs01_g2", NEW_PASSWORD)).status_code == 303  # a new login works
        assert (await worker.get("/inbox")).status_code == 200
        assert (await admin.get("/admin/users")).status_code == 200  # other users' sessions go on


async def test_role_unit_and_password_changes(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        r = await post_form(admin, "/admin/users/wg_hs01_g4", "/admin/users/wg_hs01_g4",
                            {"display_name": "姜玉兰", "unit": "HS01", "role": "community_staff"})
        assert r.status_code == 303 and "已保存" in (await admin.get(r.headers["location"])).text
        r = await post_form(admin, "/admin/users/wg_hs01_g4", "/admin/users/wg_hs01_g4/password",
                            {"password": "short"})
        assert r.status_code == 400 and "至少 10 个字符" in r.text
        r = await post_form(admin, "/admin/users/wg_hs01_g4", "/admin/users/wg_hs01_g4/password",
                            {"password": NEW_PASSWORD})
        assert r.status_code == 303
        assert (await admin.get("/admin/users/nobody")).status_code == 404
    assert await authenticate(pages.db, "wg_hs01_g4", "demo12345") is None
    moved = await authenticate(pages.db, "wg_hs01_g4", NEW_PASSWORD)
    assert moved is not None and moved.unit == "HS01" and moved.role == "community_staff"
    async with client(pages, "10.3.0.2") as person:
        assert (await page_login(person, "wg_hs01_g4", NEW_PASSWORD)).status_code == 303
        inbox = await person.get("/inbox")
        assert inbox.status_code == 200 and "HS01" in inbox.text
    entries = {a.action: a for a in await audit_rows(pages.db, "admin")}
    assert "unit: 'HS01-G4' → 'HS01'" in entries["user_update"].detail
    assert "role: 'grid_worker' → 'community_staff'" in entries["user_update"].detail
    assert entries["password_reset"].target == "wg_hs01_g4"
    assert all(NEW_PASSWORD not in a.detail and "short" not in a.detail for a in entries.values())


async def test_editing_a_unit_shows_at_once_and_is_audited(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        assert "城北新村" in (await admin.get("/admin/org/units/HS01-G3")).text
        r = await post_form(admin, "/admin/org/units/HS01-G3", "/admin/org/units/HS01-G3", {
            "name_zh": "凤林网格", "name_en": "Fenglin grid", "lat": "28.7511", "lon": "118.6111",
            "address_keywords": "凤林路，北门菜市场，凤林新村",
        })
        assert r.status_code == 303
        assert "凤林网格" in (await admin.get("/admin/org")).text
        r = await post_form(admin, "/admin/org/units/HS01-G3", "/admin/org/units/HS01-G3",
                            {"name_zh": "凤林网格", "name_en": "Fenglin grid", "lat": "28.75", "lon": "200"})
        assert r.status_code == 400 and "经度" in r.text
        r = await post_form(admin, "/admin/org/units/D-ZF", "/admin/org/units/D-ZF",
                            {"name_zh": "综合执法局", "name_en": "Law enforcement"})  # flag unticked
        assert r.status_code == 400 and "请先取消派驻" in r.text
        assert (await admin.get("/admin/org/units/NOPE")).status_code == 404
    org = await OrgTree.load(pages.db)
    assert org.locate(None, None, None, "凤林新村3幢").grid == "HS01-G3"
    entry = [a for a in await audit_rows(pages.db, "admin") if a.action == "unit_update"]
    assert len(entry) == 1 and entry[0].target == "HS01-G3" and "name_zh" in entry[0].detail


# ---- "1+X" cadres -----------------------------------------------------------------------------


async def test_station_a_new_cadre_through_the_pages_and_routing_sees_them(pages: Platform) -> None:
    async with admin_client(pages) as admin:
        r = await post_form(admin, "/admin/org", "/admin/org/units", {
            "code": "D-CG", "kind": "department", "name_zh": "城管局", "name_en": "Urban management",
            "stationed": "on",
        })
        assert r.status_code == 303
        r = await post_form(admin, "/admin/users", "/admin/users", {
            "username": "pz_cg_qh", "display_name": "新派驻", "unit": "D-CG", "role": "dispatched_cadre",
            "password": "long-enough-1",
        })
        assert r.status_code == 303
        page = (await admin.get("/admin/users/pz_cg_qh")).text
        assert 'id="station"' in page
        r = await admin.post("/admin/users/pz_cg_qh/station", data={"street": "HS01", "_csrf_token": csrf(page)})
        assert r.status_code == 400 and "HS01 不是街道" in r.text
        r = await admin.post("/admin/users/pz_cg_qh/station", data={"street": "QH", "_csrf_token": csrf(page)})
        assert r.status_code == 303
        # a second active cadre of the same department at the same street would make routing ambiguous
        r = await post_form(admin, "/admin/users/pz_zf_st", "/admin/users/pz_zf_st/station", {"street": "HS"})
        assert r.status_code == 400 and "pz_zf_hs" in r.text
        cadres = (await admin.get("/admin/users?role=dispatched_cadre")).text
        assert "pz_cg_qh" in cadres.split('id="cadres"')[1]
    assert (await queries.cadres_at(pages.db, "QH"))["CG"] == "pz_cg_qh"
    async with pages.db.session() as session:
        unit = await session.get(models.Unit, "D-CG")
        assert unit is not None and unit.parent == "JS" and unit.tier == "department" and unit.stationed
    actions = [(a.action, a.target, a.detail) for a in await audit_rows(pages.db, "admin")]
    assert ("cadre_station", "pz_cg_qh", "stationed_street: None → 'QH'") in actions


# ---- the store alone (SQLite, and PostgreSQL when configured) ----------------------------------


@pytest.fixture
async def org_store(any_db: Database) -> Database:
    await load_organisation(any_db)
    return any_db


async def test_store_creates_and_validates_units(org_store: Database) -> None:
    db = org_store
    unit = await admin_units.create_unit(db, "admin", UnitDraft(
        code="CC-XN", kind="command_centre", parent="HS", name_zh="新指挥中心", name_en="New centre"))
    assert unit.tier == "street" and unit.parent == "HS"
    street = await admin_units.create_unit(db, "admin", UnitDraft(code="XN", kind="street", name_zh="新街道",
                                                                name_en="New street"))
    assert street.parent == "JS"
    for draft, key in [
        (UnitDraft(code="XN", kind="street", name_zh="a", name_en="b"), "admin.err.code_taken"),
        (UnitDraft(code="XN01", kind="community", parent="HS01", name_zh="a", name_en="b"), "admin.err.parent_kind"),
        (UnitDraft(code="XN01-G1", kind="grid", parent="XN", name_zh="a", name_en="b"), "admin.err.parent_kind"),
        (UnitDraft(code="XN01", kind="community", parent="XN", name_zh="a", name_en="b", lat=1, lon=2),
         "admin.err.grid_only"),
        (UnitDraft(code="A--B", kind="street", name_zh="a", name_en="b"), "admin.err.code"),
        (UnitDraft(code="A" * 33, kind="street", name_zh="a", name_en="b"), "admin.err.code"),
        (UnitDraft(code="G", kind="grid", parent="HS01", name_zh="a", name_en="b", lat=-91, lon=0), "admin.err.lat"),
        (UnitDraft(code="G", kind="grid", parent="HS01", name_zh="a", name_en="b", lat=0, lon=181), "admin.err.lon"),
        (UnitDraft(code="G", kind="grid", parent="HS01", name_zh="a", name_en="b", address_keywords=["x" * 51]),
         "admin.err.keyword_long"),
    ]:
        with pytest.raises(AdminError) as refused:
            await admin_units.create_unit(db, "admin", draft)
        assert refused.value.key == key, draft
    with pytest.raises(AdminError):
        admin_units.parse_coordinate("nan", "lat")
    assert admin_units.parse_keywords("a, b、c\n\nb") == ["a", "b", "c"]
    assert [a.action for a in await audit_rows(db, "admin")] == ["unit_create", "unit_create"]


async def test_store_stations_cadres_seen_by_cadres_at(org_store: Database) -> None:
    db = org_store
    await admin_people.create_user(db, "admin", username="pz_sj_x", display_name="新干部", unit="D-SJ",
                                role="dispatched_cadre", password="long-enough-1")
    await admin_people.station(db, "admin", "pz_sj_hs", None)  # the old cadre leaves HS
    assert "SJ" not in await queries.cadres_at(db, "HS")
    await admin_people.station(db, "admin", "pz_sj_x", "HS")
    assert (await queries.cadres_at(db, "HS"))["SJ"] == "pz_sj_x"
    with pytest.raises(AdminError) as refused:
        await admin_people.station(db, "admin", "wg_hs01_g1", "HS")
    assert refused.value.key == "admin.err.not_cadre"
    # a deactivated cadre is not routed to, and comes back only if the station is still free
    await admin_people.set_active(db, "admin", "pz_sj_x", False)
    assert "SJ" not in await queries.cadres_at(db, "HS")
    await admin_people.station(db, "admin", "pz_sj_st", "HS")
    with pytest.raises(AdminError) as refused:
        await admin_people.set_active(db, "admin", "pz_sj_x", True)
    assert refused.value.key == "admin.err.station_taken"
    # leaving the cadre role drops the station
    user = await admin_people.update_user(db, "admin", "pz_sj_st", role="department_staff", unit="D-SJ")
    assert user.stationed_street is None and "SJ" not in await queries.cadres_at(db, "HS")


async def test_worker_sees_a_grid_added_after_it_cached_the_tree(org_store: Database,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    acts = lifecycle.LifecycleActivities(org_store)
    assert "HS01-G9" not in (await acts.org()).units
    await admin_units.create_unit(org_store, "admin", UnitDraft(code="HS01-G9", kind="grid", parent="HS01",
                                                              name_zh="九", name_en="Nine"))
    assert "HS01-G9" not in (await acts.org()).units  # cached: no reload without a reason
    monkeypatch.setattr(lifecycle, "ORG_MISS_RELOAD_SECONDS", 0.0)
    assert (await acts.org("hs01-g9")).place_grid("HS01-G9").community == "HS01"  # a miss reloads


def test_templates_have_no_literal_text() -> None:
    """Every visible text on the new admin pages comes from the catalogues."""
    here = Path(__file__).parent.parent / "web" / "templates"
    for name in ("admin_org.html", "admin_unit.html", "admin_users.html", "admin_user.html", "_admin_form.html"):
        text = (here / name).read_text(encoding="utf-8")
        text = re.sub(r"\{#.*?#\}|\{\{.*?\}\}|\{%.*?%\}", "", text, flags=re.S)
        visible = re.sub(r"<[^>]+>", " ", text)
        words = re.findall(r"[A-Za-z\u4e00-\u9fff]{2,}", visible)
        assert words == [], (name, words)
