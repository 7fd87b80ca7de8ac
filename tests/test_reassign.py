"""A reassignment to a person names an active user of the new unit: unknown, deactivated and
out-of-unit assignees are refused with the reason, in the API (one event and bulk) and on the event
page, before any workflow is asked (no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from markupsafe import escape

from store import admin_people, models
from store.db import Database
from tests import webapp
from tests.platform import csrf
from tests.webapp import Browser
from web import commands
from web.context import AppContext

EVENT = "EV-20261128-REAS1"


@pytest.fixture
async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    async with org_db.session() as session:
        event = models.Event(event_id=EVENT, receipt_code="REAS000001", source="portal", category="SR-01",
                             description="垃圾", state="dispatched", stage="handling", tier="grid", unit="HS01-G1",
                             grid="HS01-G1", community="HS01", street="HS", created_at=now, updated_at=now)
        session.add(event)
        await session.flush()
        session.add(models.Task(task_id=f"{EVENT}.T1", event_id=EVENT, kind="handle", unit="HS01-G1", status="open",
                                created_at=now, **models.inbox_fields("open", None, event)))
        await session.commit()
    return webapp.context(org_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> Browser:
    return webapp.browsers(app_ctx)


REFUSALS = [  # (assignee, unit, English reason, Chinese reason)
    ("nobody_xyz", "HS01-G2", "no user 'nobody_xyz'", "改派对象“nobody_xyz”不存在"),
    ("wg_hs01_g1", "HS01-G2", "user wg_hs01_g1 belongs to unit HS01-G1, not to HS01-G2",
     "用户 wg_hs01_g1 属于单位 HS01-G1，不属于改派的目标单位 HS01-G2"),
    ("wg_hs01_g3", "HS01-G3", "user wg_hs01_g3 is deactivated", "用户 wg_hs01_g3 已停用"),
    # A cadre stationed at the street is a user of their department, not of the street.
    ("pz_zf_hs", "HS", "user pz_zf_hs belongs to unit D-ZF, not to HS", "用户 pz_zf_hs 属于单位 D-ZF"),
]


async def test_api_refuses_unknown_inactive_and_out_of_unit_assignees(browser: Browser, app_ctx: AppContext) -> None:
    await admin_people.set_active(app_ctx.db, "admin", "wg_hs01_g3", False)
    async with browser() as http:
        bearer = await webapp.api_login(http, "zx_hs")
        for assignee, unit, english, _ in REFUSALS:
            body = {"action": "reassign", "unit": unit, "assignee": assignee, "reason": "改派"}
            r = await http.post(f"/api/events/{EVENT}/supervise", json=body, headers=bearer)
            assert r.status_code == 400 and english in r.json()["detail"], (assignee, r.text)
            r = await http.post("/api/console/bulk", json={**body, "event_ids": [EVENT]}, headers=bearer)
            assert r.status_code == 200 and r.json()["succeeded"] == 0
            [result] = r.json()["results"]
            assert result["status"] == 400 and english in result["detail"]


async def _supervise_page(http: httpx.AsyncClient, data: dict[str, str]) -> str:
    """Post the event page's supervise form; returns the error shown after the redirect."""
    html = (await http.get(f"/events/{EVENT}")).text
    r = await http.post(f"/events/{EVENT}/supervise", data={**data, "_csrf_token": csrf(html)})
    assert r.status_code == 303
    [error] = parse_qs(urlparse(r.headers["location"]).query)["error"]
    assert str(escape(error)) in (await http.get(r.headers["location"])).text  # shown, escaped
    return error


async def test_event_page_refuses_them_in_the_visitors_language(browser: Browser, app_ctx: AppContext) -> None:
    await admin_people.set_active(app_ctx.db, "admin", "wg_hs01_g3", False)
    async with browser() as http:
        await webapp.page_login(http, "zx_hs")
        for assignee, unit, english, chinese in REFUSALS:
            form = {"action": "reassign", "unit": unit, "assignee": assignee, "reason": "改派"}
            assert chinese in await _supervise_page(http, form)
            http.cookies.set("lang", "en")
            assert english in await _supervise_page(http, form)
            http.cookies.delete("lang")


async def test_active_users_of_the_new_unit_and_cadres_of_their_department_qualify(app_ctx: AppContext) -> None:
    await commands.check_assignee(app_ctx, "wg_hs01_g2", "HS01-G2")
    # Routing gives a "1+X" department's case at a street to the cadre stationed there, in the
    # department's inbox: a supervisor may do the same.
    await commands.check_assignee(app_ctx, "pz_zf_hs", "D-ZF")
    await commands.check_assignee(app_ctx, "bm_zf", "D-ZF")
    with pytest.raises(commands.CommandError) as refused:
        await commands.check_assignee(app_ctx, "pz_zf_hs", "D-GT")
    assert refused.value.status == 400 and refused.value.key == "reassign.err.other_unit"


async def test_bulk_takes_only_bulk_actions_on_the_page_and_the_api_alike(browser: Browser) -> None:
    """The bulk overrides are one list (web/bulk.py) for the console's form and the API: an action that
    needs one event's context (approving an extension) is refused as a whole, before any event is touched."""
    async with browser() as http:
        bearer = await webapp.api_login(http, "zx_hs")
        r = await http.post("/api/console/bulk", json={"event_ids": [EVENT], "action": "approve_extension"},
                            headers=bearer)
        assert r.status_code == 400 and "not a bulk action" in r.json()["detail"], r.text
        r = await http.post("/api/console/bulk", json={"event_ids": ["EV-NOPE"] * 2, "action": "void",
                                                        "reason": "x"}, headers=bearer)
        assert r.status_code == 200 and [x["status"] for x in r.json()["results"]] == [404]  # each event once
