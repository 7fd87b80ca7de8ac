"""Residents' location and the public result (issue 12, item 7): ``GET /api/grids/nearest`` picks the
grid of a position as the routing does, and the tracking page shows the handler's result and only
the photos its handler marked public (``public_photos`` on completion)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.testing import WorkflowEnvironment

from store import models
from store.db import Database
from store.org import OrgTree
from tests import webapp
from tests.platform import Platform, running_platform
from tests.test_e2e_api import _task_of
from tests.test_photos import _files, _record, jpeg_with_gps
from web.context import AppContext

G1 = (28.7552, 118.629)  # the centre of HS01-G1 in the demo organisation


@pytest.fixture
async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    return webapp.context(org_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> webapp.Browser:
    return webapp.browsers(app_ctx)


async def test_nearest_grid_is_the_routings_placement(browser: webapp.Browser, org_db: Database) -> None:
    tree = await OrgTree.load(org_db)
    async with browser() as http:
        r = await http.get("/api/grids/nearest", params={"lat": G1[0] + 0.001, "lon": G1[1]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["grid"] == "HS01-G1" and body["name_zh"] == "城北社区第一网格"
        assert 0.05 < body["km"] < 0.2
        assert tree.locate(None, G1[0] + 0.001, G1[1], None).grid == body["grid"]  # the same as the routing
        for unit in (u for u in tree.units.values() if u.kind == "grid" and u.lat is not None):
            r = await http.get("/api/grids/nearest", params={"lat": unit.lat, "lon": unit.lon})
            assert r.json()["grid"] == unit.code
        far = (await http.get("/api/grids/nearest", params={"lat": 39.9, "lon": 116.4})).json()  # Beijing
        assert far == {"grid": None, "name_zh": None, "name_en": None, "km": None}
        for bad in ({"lat": 91, "lon": 0}, {"lat": 0, "lon": -181}, {"lat": "nan", "lon": 0},
                    {"lat": "x", "lon": 0}, {"lat": 1}, {}):
            assert (await http.get("/api/grids/nearest", params=bad)).status_code == 400, bad


@pytest.fixture(scope="module")
async def plat(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    async with running_platform(dev_env.client, tmp_path_factory.mktemp("resident")) as p:
        yield p


async def _upload(plat: Platform, headers: dict[str, str]) -> str:
    r = await plat.http.post("/api/photos", headers=headers, files=_files(jpeg_with_gps()))
    assert r.status_code == 201, r.text
    return str(r.json()["photo_id"])


async def test_tracking_page_shows_the_result_and_only_public_photos(plat: Platform) -> None:
    http = plat.http
    created = await plat.report(description="路口垃圾成堆")
    code, event_id = created["receipt_code"], created["event_id"]
    g1, community = await plat.login("wg_hs01_g1"), await plat.login("sq_hs01")
    before = (await http.get(f"/track/{code}")).text
    assert 'id="handling-outcome"' not in before  # nothing handled yet

    task = await _task_of(plat, g1, event_id, "handle")
    assert (await http.post(f"/api/tasks/{task['task_id']}/claim", headers=g1)).status_code == 200
    shown, kept = await _upload(plat, g1), await _upload(plat, g1)
    complete = f"/api/tasks/{task['task_id']}/complete"
    r = await http.post(complete, headers=g1, json={"result": "已清理干净", "photos": [kept], "public_photos": [shown]})
    assert r.status_code == 400 and "only photos of this completion" in r.json()["detail"], r.text
    r = await http.post(complete, headers=g1,
                        json={"result": "已清理干净，垃圾已运走", "photos": [shown, kept], "public_photos": [shown]})
    assert r.status_code == 200, r.text
    assert (await _record(plat, shown)).public and not (await _record(plat, kept)).public
    async with plat.db.session() as session:  # showing a photo to the public is audited with its handler
        marked = (await session.exec(select(models.AuditEntry).where(models.AuditEntry.action == "photo_public"))).all()
    assert [(a.actor, a.detail) for a in marked] == [("wg_hs01_g1", shown)]

    page = (await http.get(f"/track/{code}")).text
    assert re.search(r'id="handling-result">已清理干净，垃圾已运走<', page)
    assert f"/track/{code}/public/{shown}" in page and kept not in page
    assert (await http.get(f"/track/{code}/public/{shown}")).status_code == 200  # anyone with the code
    assert (await http.get(f"/track/{code}/public/{kept}")).status_code == 404  # not marked public
    other = await plat.report(description="另一处垃圾")
    assert (await http.get(f"/track/{other['receipt_code']}/public/{shown}")).status_code == 404  # another event's code
    assert (await http.get(f"/track/NOSUCHCODE/public/{shown}")).status_code == 404
    assert (await http.get(f"/photos/{kept}")).status_code == 403  # the others stay in the event's scope

    # A verification's photos are never public.
    verify = await _task_of(plat, community, event_id, "verify")
    assert (await http.post(f"/api/tasks/{verify['task_id']}/claim", headers=community)).status_code == 200
    check = await _upload(plat, community)
    r = await http.post(f"/api/tasks/{verify['task_id']}/complete", headers=community,
                        json={"result": "核查通过", "passed": True, "photos": [check], "public_photos": [check]})
    assert r.status_code == 400 and "handling task" in r.json()["detail"], r.text
    assert not (await _record(plat, check)).public


async def test_the_complete_form_marks_its_photos_public_only_when_ticked(plat: Platform) -> None:
    from tests.platform import csrf
    from tests.test_browser import PNG
    from tests.test_security import client, page_login

    g1 = await plat.login("wg_hs01_g1")
    for ticked in (True, False):
        created = await plat.report(description=f"路灯不亮 {ticked}")
        task = await _task_of(plat, g1, created["event_id"], "handle")
        assert (await plat.http.post(f"/api/tasks/{task['task_id']}/claim", headers=g1)).status_code == 200
        async with client(plat) as page:
            await page_login(page, "wg_hs01_g1")
            html = (await page.get(f"/events/{created['event_id']}")).text
            assert f'id="public-photos-{task["task_id"]}"' in html and "在进度查询页公开这些照片" in html
            data = {"result": "已修复", "_csrf_token": csrf(html), "next": "/inbox"}
            if ticked:
                data["public_photos"] = "on"
            r = await page.post(f"/tasks/{task['task_id']}/complete", data=data,
                                files=[("photos", ("a.png", PNG, "image/png"))])
            assert r.status_code == 303, r.text
        outcome = (await plat.http.get(f"/track/{created['receipt_code']}")).text
        assert 'id="handling-result">已修复<' in outcome
        assert ('id="public-photos"' in outcome) is ticked
