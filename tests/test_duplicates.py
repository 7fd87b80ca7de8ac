"""Duplicates through the API and the pages (issue 12, item 4): camera alarms of one camera and category
within the window make one event with an occurrence count, a repeated 12345 ticket is the same event,
a new report near an open one gets ``duplicate_of`` candidates (and the receipt page offers to follow
them), and supervisors merge and undo within their scope."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlmodel import select

from store import models, queries
from store.timeutil import utcnow
from tests.platform import Platform, csrf
from tests.test_security import client, page_login
from web import idempotency

ALARM: dict[str, Any] = {"category": "SR-01", "description": "摄像头识别:垃圾堆积", "source": "camera",
                         "location": {"grid": "HS01-G1"}}


async def _until(check, what: str):  # type: ignore[no-untyped-def]
    for _ in range(150):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _occurrences(p: Platform, event_id: str, n: int) -> models.Event:
    async def check() -> models.Event | None:
        row = await queries.get_event(p.db, event_id)
        return row if row is not None and row.occurrences == n else None
    return await _until(check, f"{n} occurrences on {event_id}")


async def test_ten_camera_alarms_within_the_window_make_one_event_with_ten_occurrences(platform: Platform) -> None:
    p = platform
    answers = await asyncio.gather(*(
        p.http.post("/api/events", json={**ALARM, "external_id": f"CAM-0042:2026120208{i:02d}"}) for i in range(10)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 9 + [201], [a.text for a in answers]
    event_ids = {a.json()["event_id"] for a in answers}
    assert len(event_ids) == 1  # every answer says which event the alarm joined
    event_id = event_ids.pop()
    joined = [a.json() for a in answers if a.status_code == 200]
    assert all(j["joined"] is True and "receipt_code" not in j for j in joined)
    row = await _occurrences(p, event_id, 10)
    async with p.db.session() as session:
        events = (await session.exec(select(models.Event).where(models.Event.source == "camera"))).all()
    assert [e.event_id for e in events] == [event_id]  # never a new event
    assert row.state == "dispatched"

    # The same alarm delivered again counts nothing; the camera_id field names the camera as well.
    again = await p.http.post("/api/events", json={**ALARM, "external_id": "CAM-0042:202612020800"})
    assert again.status_code == 200 and again.json()["event_id"] == event_id
    by_field = await p.http.post("/api/events", json={**ALARM, "camera_id": "CAM-0042", "external_id": "a-11"})
    assert by_field.status_code == 200 and by_field.json() == {"event_id": event_id, "joined": True,
                                                               "occurrences": 11}
    await _occurrences(p, event_id, 11)

    # Shown on the event page.
    staff = client(p)
    await page_login(staff, "wg_hs01_g1")
    page = (await staff.get(f"/events/{event_id}")).text
    assert '<strong id="occurrences">11</strong>' in page

    # Another category of the same camera is another event; so is an alarm after the window.
    other = await p.http.post("/api/events", json={**ALARM, "category": "SR-02", "external_id": "CAM-0042:x1"})
    assert other.status_code == 201 and other.json()["event_id"] != event_id
    async with p.db.session() as session:
        claim = await session.get(models.CameraClaim, ("CAM-0042", "SR-01"))
        assert claim is not None
        claim.last_at = utcnow() - timedelta(minutes=p.settings.camera_window_minutes + 1)
        session.add(claim)
        await session.commit()
    late = await p.http.post("/api/events", json={**ALARM, "external_id": "CAM-0042:late"})
    assert late.status_code == 201 and late.json()["event_id"] != event_id
    # A camera_id on a report that is no camera alarm is refused by the one definition of a report.
    bad = await p.http.post("/api/events", json={**ALARM, "source": "portal", "camera_id": "CAM-1"})
    assert bad.status_code == 400


async def test_a_repeated_hotline_ticket_is_the_same_event(platform: Platform) -> None:
    p = platform
    ticket = {"category": "SR-01", "description": "市民来电:垃圾未清运", "source": "hotline",
              "external_id": "12345-20261202-0001", "location": {"grid": "HS01-G1"},
              "reporter": {"name": "王五", "phone": "13700000000"}}
    first = await p.http.post("/api/events", json=ticket)
    assert first.status_code == 201
    second = await p.http.post("/api/events", json={**ticket, "description": "再次导入"})
    assert second.status_code == 200
    assert second.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    async with p.db.session() as session:
        rows = (await session.exec(select(models.Event).where(models.Event.source == "hotline"))).all()
    assert [(r.event_id, r.description) for r in rows] == [(first.json()["event_id"], "市民来电:垃圾未清运")]


async def test_a_report_near_an_open_one_is_offered_to_follow_it_and_a_supervisor_merges_and_undoes(
    platform: Platform,
) -> None:
    p = platform
    here = {"lat": 28.7412, "lon": 118.6270, "grid": "HS01-G1"}
    a = await p.report(location=here)
    near = await p.report(location={**here, "lat": here["lat"] + 0.0004})  # about 44 m north
    offered = near["duplicate_of"]
    assert [(c["event_id"], c["category"]) for c in offered] == [(a["event_id"], "SR-01")]
    assert offered[0]["within_m"] == 50  # about 44 m, answered in bands of 50 m, never to the metre
    assert set(offered[0]) == {"event_id", "category", "within_m"}  # no receipt code, name or phone
    far = await p.report(location={**here, "lat": here["lat"] + 0.01})  # about 1.1 km
    assert far["duplicate_of"] == []
    other_category = await p.report(category="SR-02", location=here)
    assert other_category["duplicate_of"] == []

    # Without coordinates: the same grid and the same address; offered on the receipt page too.
    place = {"grid": "HS01-G2", "address": "解放路 12 号"}
    b = await p.report(location=place)
    resident = client(p, "10.1.2.3")
    form = (await resident.get("/report")).text
    key = form.split(f'name="{idempotency.FORM_FIELD}" value="', 1)[1].split('"', 1)[0]
    done = await resident.post("/report", data={
        "_csrf_token": csrf(form), idempotency.FORM_FIELD: key, "category": "SR-01", "description": "门口垃圾又堆满了",
        "grid": "HS01-G2", "address": " 解放路  12 号", "name": "", "phone": ""})
    assert done.status_code == 200, done.text
    assert 'id="duplicates"' in done.text and f'data-event-id="{b["event_id"]}"' in done.text
    assert b["receipt_code"] not in done.text

    # Merge over the API: a worker may not; the street's supervisor merges and undoes.
    worker, sup = await p.login("wg_hs01_g1"), await p.login("zx_hs")
    url = f"/api/events/{near['event_id']}/merge"
    body = {"primary": a["receipt_code"], "reason": "同一处"}
    assert (await p.http.post(url, json=body, headers=worker)).status_code == 403
    self_merge = await p.http.post(url, json={**body, "primary": near["receipt_code"]}, headers=sup)
    assert self_merge.status_code == 400 and self_merge.json()["code"] == "merge_self"
    merged = await p.http.post(url, json=body, headers=sup)
    assert merged.status_code == 200, merged.text
    assert merged.json()["state"] == "merged" and merged.json()["merged_into"] == a["event_id"]
    dup_row = await _until(lambda: queries.get_event(p.db, near["event_id"]), "the duplicate")
    assert dup_row.merged_into == a["event_id"]
    primary_row = await _until(
        lambda: _with(p, a["event_id"], lambda e: e.merged_count == 1 and e.follower_count == 1), "the primary")
    assert primary_row.merged_count == 1
    undone = await p.http.post(f"/api/events/{near['event_id']}/unmerge", json={}, headers=sup)
    assert undone.status_code == 200 and undone.json()["state"] == "dispatched"
    again = await p.http.post(f"/api/events/{near['event_id']}/unmerge", json={}, headers=sup)
    assert again.status_code == 409 and again.json()["code"] == "not_merged"
    async with p.db.session() as session:
        audit = (await session.exec(select(models.AuditEntry).where(
            models.AuditEntry.target == near["event_id"]))).all()
    assert [(r.actor, r.action) for r in audit] == [("zx_hs", "merge"), ("zx_hs", "unmerge")]


async def _with(p: Platform, event_id: str, ok) -> models.Event | None:  # type: ignore[no-untyped-def]
    row = await queries.get_event(p.db, event_id)
    return row if row is not None and ok(row) else None
