"""Issue 10, items 1, 2 and 6 through the pages (a real Temporal dev server with a worker): the approving
supervisor picks where a return goes (never back), the worker never verifies his own work, reassign
picks a person from the unit's active users, void and close ask for a reason and a confirmation."""

from __future__ import annotations

import re

from sqlmodel import select

from store import models, queries
from tests.platform import Platform, csrf
from tests.test_e2e_lifecycle_pages import browser, claim, flash, submit, task, until


async def _returned(p: Platform, description: str) -> str:
    """An SR-01 event in HS01-G1 whose grid worker asked to return it; its event id."""
    event_id = (await p.report(description=description))["event_id"]
    async with browser(p, "wg_hs01_g1") as worker:
        await claim(worker, f"{event_id}.T1")
        r = await submit(worker, "/inbox", f"/tasks/{event_id}.T1/return", {"reason": "不归我管", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.return"]
    return event_id


def _select(page: str, select_id: str) -> str:
    start = page.index(f'id="{select_id}"')
    return page[start:page.index("</select>", start)]


# ------------------------------------------------------------------ item 1
async def test_the_approving_supervisor_picks_the_unit_and_never_the_returning_one(platform: Platform) -> None:
    event_id = await _returned(platform, "退回后改派")
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get(f"/events/{event_id}")).text
        choices = _select(page, "sup-return-unit")
        first = re.search(r"<option[^>]*>([^<]*)</option>", choices)
        assert first is not None and 'value=""' in first.group(0)
        # The list's suggestion first: the grid returned it and nothing else is named for SR-01 there.
        assert "相关单位均已退回" in first.group(1) and "CC-HS" in first.group(1)
        assert '<option value="HS01">' in choices and 'value="HS01-G1"' not in choices  # never the returner
        assert "退回单位:HS01-G1" in page
        token = csrf(page)
        r = await zx.post(f"/events/{event_id}/supervise",
                          data={"action": "approve_return", "unit": "HS01-G1", "_csrf_token": token})
        assert flash(r)["error"] == ["单位 HS01-G1 已退回本事件,请选择其他单位"]  # translated
        r = await zx.post(f"/events/{event_id}/supervise",
                          data={"action": "approve_return", "unit": "HS01", "reason": "社区处理", "_csrf_token": token})
        assert flash(r)["msg"] == ["msg.supervised.approve_return"]

        async def placed() -> models.Event | None:
            event = await queries.get_event(platform.db, event_id)
            return event if event is not None and event.state == "dispatched" else None

        event = await until(placed, "the pick")
        assert event.unit == "HS01" and event.decision is not None and event.decision["excluded"] == ["HS01-G1"]
        assert (await task(platform, f"{event_id}.T2")).unit == "HS01"
        page = (await zx.get(f"/events/{event_id}")).text
        assert "HS01-G1 曾退回本事件,已排除" in page


async def test_without_a_pick_the_list_decides_with_the_returning_unit_excluded(platform: Platform) -> None:
    event_id = await _returned(platform, "退回后由清单决定")
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get(f"/events/{event_id}")).text
        r = await zx.post(f"/events/{event_id}/supervise",
                          data={"action": "approve_return", "unit": "", "_csrf_token": csrf(page)})
        assert flash(r)["msg"] == ["msg.supervised.approve_return"]

    async def rerouted() -> models.Event | None:
        event = await queries.get_event(platform.db, event_id)
        return event if event is not None and event.state == "triage" else None

    event = await until(rerouted, "the new decision")
    assert event.unit == "CC-HS" and event.decision is not None and event.decision["excluded"] == ["HS01-G1"]


# ------------------------------------------------------------------ item 2
async def test_the_worker_never_verifies_his_own_work(platform: Platform) -> None:
    event_id = (await platform.report(description="自己核查自己"))["event_id"]
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, f"{event_id}.T1")
        r = await submit(worker, "/inbox", f"/tasks/{event_id}.T1/complete", {"result": "已清理", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.completed"]
        verify = await task(platform, f"{event_id}.T2")
        assert (verify.kind, verify.unit) == ("verify", "HS01")  # the grid did it: its community verifies
        assert f'action="/tasks/{event_id}.T2/claim"' not in (await worker.get("/inbox")).text
    # Even moved to the community meanwhile, the worker may not verify what he handled.
    async with platform.db.session() as session:
        user = (await session.exec(select(models.User).where(models.User.username == "wg_hs01_g1"))).one()
        user.unit, user.role = "HS01", "community_staff"
        session.add(user)
        await session.commit()
    async with browser(platform, "wg_hs01_g1") as moved:
        inbox = (await moved.get("/inbox")).text
        assert f'/tasks/{event_id}.T2/claim' not in inbox  # not offered (the same rule as the workflow's)
        assert f'/tasks/{event_id}.T2/claim' not in (await moved.get(f"/events/{event_id}")).text
        r = await moved.post(f"/tasks/{event_id}.T2/claim", data={"next": "/inbox", "_csrf_token": csrf(inbox)})
        assert flash(r)["error"] == ["您办理了本事件,不能核查自己的工作,核查须由他人完成"]
        assert (await task(platform, f"{event_id}.T2")).status == "open"
        moved.cookies.set("lang", "en")
        r = await moved.post(f"/tasks/{event_id}.T2/claim", data={"next": "/inbox", "_csrf_token": csrf(inbox)})
        assert flash(r)["error"] == [
            "You handled this event: you cannot verify your own work; someone else verifies it"]
    async with browser(platform, "sq_hs01") as community:
        await claim(community, f"{event_id}.T2")
        r = await submit(community, "/inbox", f"/tasks/{event_id}.T2/complete",
                         {"result": "已核实", "passed": "true", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.completed"]


# ------------------------------------------------------------------ item 6
async def test_reassign_picks_one_of_the_unit_s_active_users(platform: Platform) -> None:
    event_id = (await platform.report(description="改派到人"))["event_id"]
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get(f"/events/{event_id}")).text
        picker = _select(page, "sup-assignee")
        assert 'name="assignee" data-assignee-of="sup-unit"' in picker  # a picker, no free text
        assert '<optgroup label="HS01-G2 ' in picker and 'data-unit="HS01-G2"' in picker
        assert '<option value="wg_hs01_g2">' in picker and "ST01" not in picker  # the supervisor's scope only
        console = (await zx.get("/console")).text
        assert 'data-assignee-of="bulk-unit"' in console and '<option value="wg_hs01_g2">' in console
        token = csrf(page)
        r = await zx.post(f"/events/{event_id}/supervise", data={
            "action": "reassign", "unit": "HS01-G2", "assignee": "wg_hs01_g1", "_csrf_token": token})
        assert "HS01-G1" in flash(r)["error"][0]  # a person of another unit: refused before the workflow
        r = await zx.post(f"/events/{event_id}/supervise", data={
            "action": "reassign", "unit": "HS01-G2", "assignee": "wg_hs01_g2", "_csrf_token": token})
        assert flash(r)["msg"] == ["msg.supervised.reassign"]

    async def reassigned() -> models.Task | None:
        row = await queries.get_task(platform.db, f"{event_id}.T2")
        return row if row is not None else None

    assert (await until(reassigned, "the reassignment")).assignee == "wg_hs01_g2"

    # The console's bulk form reassigns to the person picked too, checked the same way.
    other = (await platform.report(description="批量改派到人", location={"grid": "HS01-G3"}))["event_id"]
    async with browser(platform, "zx_hs") as zx:
        console = (await zx.get("/console")).text
        fields = {"event_ids": [other], "action": "reassign", "unit": "HS01-G2", "_csrf_token": csrf(console)}
        r = await zx.post("/console/bulk", data={**fields, "assignee": "wg_hs01_g3"})
        assert flash(r)["ok"] == ["0"] and "HS01-G3" in flash(r)["error"][0]
        r = await zx.post("/console/bulk", data={**fields, "assignee": "wg_hs01_g2"})
        assert flash(r)["ok"] == ["1"]

    async def bulk_reassigned() -> models.Task | None:
        return await queries.get_task(platform.db, f"{other}.T2")

    row = await until(bulk_reassigned, "the bulk reassignment")
    assert (row.unit, row.assignee) == ("HS01-G2", "wg_hs01_g2")


async def test_the_unit_users_api_answers_supervisors_within_their_scope(platform: Platform) -> None:
    url = "/api/units/HS01-G2/users"
    r = await platform.http.get(url, headers=await platform.login("zx_hs"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unit"] == "HS01-G2" and [u["username"] for u in body["users"]] == ["wg_hs01_g2"]
    assert body["users"][0]["display_name"]
    assert (await platform.http.get(url, headers=await platform.login("zx_st"))).status_code == 403
    assert (await platform.http.get(url, headers=await platform.login("wg_hs01_g1"))).status_code == 403
    city = await platform.login("zx_city")
    assert (await platform.http.get("/api/units/NOPE/users", headers=city)).status_code == 404
    assert (await platform.http.get(url)).status_code == 401


async def test_void_and_close_need_a_reason_and_a_confirmation(platform: Platform) -> None:
    event_id = (await platform.report(description="作废要确认"))["event_id"]
    other = (await platform.report(description="批量作废要确认"))["event_id"]
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get(f"/events/{event_id}")).text
        for action in ("void", "close"):
            assert f'id="sup-{action}-confirm" name="confirm" value="yes" required' in page
        token = csrf(page)
        refusals = [({"reason": ""}, "作废需要填写理由"), ({"reason": "重复"}, "作废前请勾选确认")]
        for fields, message in refusals:
            r = await zx.post(f"/events/{event_id}/supervise",
                              data={"action": "void", **fields, "_csrf_token": token})
            assert flash(r)["error"] == [message]
        r = await zx.post(f"/events/{event_id}/supervise",
                          data={"action": "close", "reason": "已解决", "_csrf_token": token})
        assert flash(r)["error"] == ["结案前请勾选确认"]
        assert (await queries.get_event(platform.db, event_id)).state == "dispatched"  # type: ignore[union-attr]
        # The console's bulk form: the same.
        console = (await zx.get("/console")).text
        assert 'data-confirm-actions="void close"' in console and 'id="bulk-confirm" name="confirm"' in console
        r = await zx.post("/console/bulk", data={"event_ids": [other], "action": "void", "reason": "重复",
                                                 "_csrf_token": csrf(console)})
        assert flash(r)["error"] == ["作废前请勾选确认"]
        assert (await queries.get_event(platform.db, other)).state == "dispatched"  # type: ignore[union-attr]
        r = await zx.post("/console/bulk", data={"event_ids": [other], "action": "void", "reason": "重复",
                                                 "confirm": "yes", "_csrf_token": csrf(console)})
        assert flash(r)["ok"] == ["1"]
        r = await zx.post(f"/events/{event_id}/supervise",
                          data={"action": "void", "reason": "重复", "confirm": "yes", "_csrf_token": token})
        assert flash(r)["msg"] == ["msg.supervised.void"]
    for eid in (event_id, other):
        assert (await queries.get_event(platform.db, eid)).state == "voided"  # type: ignore[union-attr]
