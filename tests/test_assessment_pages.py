"""The assessment pages over a store with the demo organisation (no Temporal): inspection entries
within the supervisor's scope (page and API, evidence photo), cadre ratings by the street and the
home department, the party-member flag, the scores page and the schemes' administration."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from assessment.schemes import DEFAULT_SCHEME_PATH
from store import models
from store import schemes as scheme_store
from store.db import Database
from tests import webapp
from tests.authz_matrix import PNG
from tests.platform import csrf
from web.context import AppContext


@pytest.fixture
async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    return webapp.context(org_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> webapp.Browser:
    return webapp.browsers(app_ctx)


def entry(**over: object) -> dict[str, object]:
    return {"grid": "HS01-G1", "duty": "D03", "finding": "巡查日志缺两天", "score": 70, **over}


async def test_inspection_entries_are_scoped_to_the_supervisors_street(browser: webapp.Browser,
                                                                       app_ctx: AppContext) -> None:
    async with browser() as http:
        hs = await webapp.api_login(http, "zx_hs")
        st = await webapp.api_login(http, "zx_st")
        grid = await webapp.api_login(http, "wg_hs01_g1")
        # Another street's supervisor cannot enter for HS's grid, nor list it; a grid worker cannot at all.
        r = await http.post("/api/inspections", headers=st, json=entry())
        assert r.status_code == 403, r.text
        assert (await http.get("/api/inspections?grid=HS01-G1", headers=st)).status_code == 403
        assert (await http.post("/api/inspections", headers=grid, json=entry())).status_code == 403
        # The street's own supervisor can, with an evidence photo they uploaded.
        photo = (await http.post("/api/photos", headers=hs, files={"data": ("p.png", PNG, "image/png")})).json()
        r = await http.post("/api/inspections", headers=hs, json=entry(photo_id=photo["photo_id"]))
        assert r.status_code == 201, r.text
        saved = r.json()
        assert (saved["grid"], saved["duty"], saved["score"], saved["inspector"]) == ("HS01-G1", "D03", 70, "zx_hs")
        assert saved["scheme_version"] == "2026.1"
        # The photo is now the entry's: the same id is refused for a second entry.
        r = await http.post("/api/inspections", headers=hs, json=entry(photo_id=photo["photo_id"]))
        assert r.status_code == 400 and r.json()["code"] == "photo_unusable", r.text
        # Seen by who sees the grid, not by another street.
        assert (await http.get(f"/photos/{photo['photo_id']}", headers=hs)).status_code == 200
        listed = (await http.get("/api/inspections", headers=hs)).json()
        assert [e["id"] for e in listed] == [saved["id"]]
        assert (await http.get("/api/inspections", headers=st)).json() == []
        city = await webapp.api_login(http, "zx_city")
        assert [e["id"] for e in (await http.get("/api/inspections", headers=city)).json()] == [saved["id"]]
    async with browser() as other:
        await webapp.page_login(other, "zx_st")
        assert (await other.get(f"/photos/{photo['photo_id']}")).status_code == 403
    async with app_ctx.db.session() as session:
        query = select(models.AuditEntry).where(models.AuditEntry.action == "inspection_add")
        audit = (await session.exec(query)).all()
    assert [(a.actor, a.target) for a in audit] == [("zx_hs", "HS01-G1/D03")]


async def test_inspection_fields_are_checked_every_problem_at_once(browser: webapp.Browser) -> None:
    async with browser() as http:
        hs = await webapp.api_login(http, "zx_hs")
        # An automatic duty (on-time handling is counted from the events), a score out of range.
        r = await http.post("/api/inspections", headers=hs, json=entry(duty="D07", score=120))
        assert r.status_code == 400 and "D07" in r.json()["detail"], r.text
        await webapp.page_login(http, "zx_hs")
        page = await http.get("/assessment/inspections")
        assert page.status_code == 200
        r = await http.post("/assessment/inspections", data={
            "grid": "HS01-G1", "duty": "NOPE", "finding": "", "score": "x", "day": "2999-01-01",
            "_csrf_token": csrf(page.text)})
        assert r.status_code == 400
        problems = re.findall(r"<li>(.*?)</li>", r.text.split('id="form-errors"')[1].split("</ul>")[0])
        assert len(problems) == 4, problems  # duty, day, finding, score: each named by its field
        assert any(p.startswith("职责") for p in problems) and any(p.startswith("得分") for p in problems)
        # Through the page with a photo: saved, listed with its photo.
        r = await http.post("/assessment/inspections", data={
            "grid": "HS01-G2", "duty": "D04", "finding": "人口信息未及时更新", "score": "55",
            "_csrf_token": csrf(page.text)}, files={"photo": ("e.png", PNG, "image/png")})
        assert r.status_code == 303, r.text[:500]
        listing = (await http.get("/assessment/inspections")).text
        assert "人口信息未及时更新" in listing and "/photos/" in listing
        # Not a photo: the form comes back with the photo's reason, nothing saved.
        r = await http.post("/assessment/inspections", data={
            "grid": "HS01-G2", "duty": "D05", "finding": "出租房屋未登记", "score": "60",
            "_csrf_token": csrf(page.text)}, files={"photo": ("e.png", b"not a png", "image/png")})
        assert r.status_code == 400 and "出租房屋未登记" in r.text and "现场照片" in r.text


async def test_cadres_are_rated_by_their_street_and_their_department(browser: webapp.Browser,
                                                                     app_ctx: AppContext) -> None:
    async with browser() as http:
        await webapp.page_login(http, "zx_hs")
        page = await http.get("/assessment/cadres")
        assert page.status_code == 200
        assert "pz_zf_hs" in page.text and "pz_zf_st" not in page.text  # only those stationed at HS
        token = csrf(page.text)
        r = await http.post("/assessment/cadres", data={"username": "pz_zf_hs", "side": "street", "score": "92",
                                                        "_csrf_token": token})
        assert r.status_code == 303, r.text[:300]
        # Not the department's side, not another street's cadre.
        r = await http.post("/assessment/cadres", data={"username": "pz_zf_hs", "side": "department", "score": "80",
                                                        "_csrf_token": token})
        assert r.status_code == 400
        r = await http.post("/assessment/cadres", data={"username": "pz_zf_st", "side": "street", "score": "80",
                                                        "_csrf_token": token})
        assert r.status_code == 400
    async with browser() as http:
        await webapp.page_login(http, "bm_zf")  # the home department rates the cadres it sent
        page = await http.get("/assessment/cadres")
        assert all(name in page.text for name in ("pz_zf_hs", "pz_zf_st", "pz_zf_qh")) and "pz_gt_hs" not in page.text
        r = await http.post("/assessment/cadres", data={"username": "pz_zf_hs", "side": "department", "score": "85",
                                                        "_csrf_token": csrf(page.text)})
        assert r.status_code == 303
    async with browser() as http:
        await webapp.page_login(http, "wg_hs01_g1")  # rates nobody
        assert (await http.get("/assessment/cadres")).status_code == 403
    ratings = {(r.username, r.side): (r.unit, r.score, r.rated_by)
               for r in await scheme_store.cadre_ratings(app_ctx.db, date.today().year)}
    assert ratings == {("pz_zf_hs", "street"): ("HS", 92, "zx_hs"), ("pz_zf_hs", "department"): ("D-ZF", 85, "bm_zf")}


async def test_party_member_flag_on_the_admin_user_page(browser: webapp.Browser, app_ctx: AppContext) -> None:
    async with browser() as http:
        await webapp.page_login(http, "admin", "admin12345")
        page = await http.get("/admin/users/wg_hs01_g2")
        assert 'name="party_member"' in page.text and "checked" not in page.text.split('id="party_member"')[1][:80]
        r = await http.post("/admin/users/wg_hs01_g2", data={"display_name": "周伟东", "unit": "HS01-G2",
                                                              "role": "grid_worker", "party_member": "1",
                                                              "_csrf_token": csrf(page.text)})
        assert r.status_code == 303, r.text[:300]
        page = await http.get("/admin/users/wg_hs01_g2")
        assert "checked" in page.text.split('id="party_member"')[1][:80]
    async with app_ctx.db.session() as session:
        person = await session.get(models.User, "wg_hs01_g2")
        demo = await session.get(models.User, "wg_hs01_g1")
        audit = (await session.exec(select(models.AuditEntry).where(models.AuditEntry.target == "wg_hs01_g2"))).all()
    assert person is not None and person.party_member and demo is not None and demo.party_member
    assert any("party_member: False → True" in a.detail for a in audit)


async def test_the_scores_page_in_scope(browser: webapp.Browser) -> None:
    async with browser() as http:
        await webapp.page_login(http, "zx_hs")
        page = await http.get("/assessment")
        assert page.status_code == 200, page.text[:500]
        for table in ("departments", "streets", "communities", "grids", "party_members"):
            assert f'id="table-{table}"' in page.text
        assert "HS01-G1" in page.text and "ST01-G1" not in page.text  # the street's grids only
        assert "wg_hs01_g1" in page.text  # a party member of the street
        assert (await http.get("/assessment?period=1999-13")).status_code == 400
        year = await http.get(f"/assessment?period={date.today().year}")
        assert 'id="table-cadres"' in year.text and "pz_zf_hs" in year.text
        await webapp.page_login(http, "wg_hs01_g1")
        assert (await http.get("/assessment")).status_code == 403


async def test_admin_schemes_upload_check_activate(browser: webapp.Browser, app_ctx: AppContext) -> None:
    raw = json.loads(DEFAULT_SCHEME_PATH.read_text(encoding="utf-8"))
    async with browser() as http:
        await webapp.page_login(http, "admin", "admin12345")
        page = await http.get("/admin/schemes")
        assert page.status_code == 200 and "2026.1" in page.text
        bad = dict(raw, version="bad.1", cadres={**raw["cadres"], "department_weight": 50})
        r = await http.post("/admin/schemes/upload", data={"_csrf_token": csrf(page.text)},
                            files={"file": ("bad.json", json.dumps(bad).encode(), "application/json")})
        assert r.status_code == 400 and "cadres.department_weight" in r.text and "权重合计为 120" in r.text
        assert [v.version for v in await scheme_store.list_versions(app_ctx.db)] == ["2026.1"]
        good = dict(raw, version="2026.2")
        r = await http.post("/admin/schemes/upload", data={"_csrf_token": csrf(page.text)},
                            files={"file": ("good.json", json.dumps(good).encode(), "application/json")})
        assert r.status_code == 200 and "/admin/schemes/2026.2/activate" in r.text
        r = await http.post("/admin/schemes/2026.2/activate", data={"_csrf_token": csrf(page.text)})
        assert r.status_code == 303
        assert (await scheme_store.active_version(app_ctx.db)).version == "2026.2"  # type: ignore[union-attr]
        r = await http.post("/admin/schemes/NOPE/activate", data={"_csrf_token": csrf(page.text)})
        assert r.headers["location"].endswith("error=assessment.err.unknown_version")
