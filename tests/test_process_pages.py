"""Issue 14 through the pages (server-rendered, no browser): a resident requests a proxy service on the
portal, the errand runner of their grid handles it step by step, a refused step is said on the page in
Chinese (never in the address), the resident confirms with the link the request gave them; the
definitions' administration refuses a broken file with each problem and its place, and activates a
fifth definition whose instances then start from the pages."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlmodel import col, select

from store import models
from tests.platform import Platform, csrf
from tests.test_admin_rules import login as admin_login
from tests.test_e2e_pages import login

FIFTH = Path(__file__).parent / "data" / "elderly_visit.json"


async def _row(platform: Platform, instance_id: str, ready: object) -> models.ProcessInstanceRow:
    """The projected instance once ``ready(row)`` holds (the projection follows each action)."""
    row = None
    for _ in range(150):
        async with platform.db.session() as session:
            row = await session.get(models.ProcessInstanceRow, instance_id)
        if row is not None and ready(row):  # type: ignore[operator]
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{instance_id} never got there: {row and row.state}")


async def _act(http: httpx.AsyncClient, page: str, fields: dict[str, str | list[str]]) -> httpx.Response:
    html = (await http.get(page)).text
    return await http.post(page.split("?")[0] + "/act", data={**fields, "_csrf_token": csrf(html)})


def _alert(html: str) -> str:
    """The text of the page's alert (the refusal said on the page)."""
    match = re.search(r'role="alert"[^>]*>(.*?)</(?:div|p)>', html, re.S)
    assert match, html
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _task_id(html: str) -> str:
    match = re.search(r'id="process-(?:claim|complete)".*?name="task_id" value="([^"]+)"', html, re.S)
    assert match, html
    return match.group(1)


async def _step(platform: Platform, http: httpx.AsyncClient, instance_id: str, outcome: str,
                fields: dict[str, str | list[str]] | None = None) -> httpx.Response:
    """Claim the open task when the page offers it, then complete it with ``outcome``."""
    page = f"/processes/{instance_id}"
    html = (await http.get(page)).text
    if 'id="process-claim"' in html:
        before = (await _row(platform, instance_id, lambda r: True)).seq
        r = await _act(http, page, {"action": "claim", "task_id": _task_id(html)})
        assert r.status_code == 303 and r.headers["location"] == f"{page}?msg=process.msg.done", r.text
        await _row(platform, instance_id, lambda row: row.seq > before)
        html = (await http.get(page)).text
    return await _act(http, page, {"action": "complete", "task_id": _task_id(html), "outcome": outcome,
                                   **(fields or {})})


async def test_a_proxy_service_requested_handled_and_confirmed_in_the_pages(platform: Platform) -> None:
    resident = platform.http
    form = (await resident.get("/p/new/proxy_service")).text
    assert 'lang="zh-CN"' in form and "代办服务" in form and "社保参保证明" in form  # the catalogue by name
    assert (await resident.get("/p/new/volunteer_activity")).status_code == 404  # staff start those
    # A request the form refuses comes back with the field's own label, in Chinese, nothing started.
    r = await resident.post("/p/new/proxy_service", data={
        "name": "王阿姨", "grid": "HS01-G1", "f_item": "PS-01", "f_phone": "123", "_csrf_token": csrf(form)})
    said = _alert(r.text)
    assert r.status_code == 400 and "联系电话" in said and not re.search("[A-Za-z]", said), said
    r = await resident.post("/p/new/proxy_service", data={
        "name": "王阿姨", "grid": "HS01-G1", "f_item": "PS-01", "f_phone": "13800000000",
        "f_note": "<b>腿脚不便</b>", "_csrf_token": csrf(form)})
    assert r.status_code == 303, r.text
    link = r.headers["location"]
    instance_id, key = re.match(r"/p/([^?]+)\?key=([^&]+)&msg=process.msg.started", link).groups()  # type: ignore[union-attr]
    row = await _row(platform, instance_id, lambda r: r.state == "requested")
    assert (row.grid, row.community, row.started_by) == ("HS01-G1", "HS01", "requester")
    assert key not in row.access_hash and key not in str(row.data)  # only its hash is kept
    mine = (await resident.get(link)).text
    assert "请收藏本页链接" in mine and "&lt;b&gt;腿脚不便&lt;/b&gt;" in mine and "<b>腿脚" not in mine
    assert (await resident.get(f"/p/{instance_id}?key=wrong")).status_code == 404
    assert (await resident.get(f"/processes/{instance_id}")).status_code in (302, 303)  # staff pages: a login

    async with httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as runner, \
            httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as other:
        await login(runner, "wg_hs01_g1")
        listing = (await runner.get("/processes?kind=proxy_service")).text
        assert f"/processes/{instance_id}" in listing.split('id="process-recent"')[0]  # a task of theirs
        await login(other, "wg_hs02_g1")  # another community's grid: the instance is not theirs to see
        assert (await other.get(f"/processes/{instance_id}")).status_code == 404
        assert f"/processes/{instance_id}" not in (await other.get("/processes")).text

        r = await _step(platform, runner, instance_id, "accept")
        assert r.status_code == 303, r.text
        await _row(platform, instance_id, lambda row: row.state == "collecting")
        # The materials of the item chosen, all to be ticked: one short is refused on the page (409).
        r = await _step(platform, runner, instance_id, "collected", {"f_materials": []})
        said = _alert(r.text)
        assert r.status_code == 409 and "身份证" in said and not re.search("[A-Za-z]", said), said
        assert 'value="身份证"' in r.text  # the page again, its checklist the item's materials
        r = await _step(platform, runner, instance_id, "collected", {"f_materials": ["身份证"]})
        assert r.status_code == 303, r.text
        await _row(platform, instance_id, lambda row: row.state == "handling")
        r = await _step(platform, runner, instance_id, "handled", {"f_receipt_no": "SB-20261203-01"})
        assert r.status_code == 303, r.text
        await _row(platform, instance_id, lambda row: row.state == "delivering")
        r = await _step(platform, runner, instance_id, "delivered")
        assert r.status_code == 303, r.text
        await _row(platform, instance_id, lambda row: row.state == "confirming")

    # The resident confirms and rates with their link; a rating that is no choice is refused first.
    mine = (await resident.get(link)).text
    assert 'id="process-complete"' in mine and "确认办结" in mine and "wg_hs01_g1" not in mine
    r = await _act(resident, link, {"action": "complete", "key": key, "outcome": "confirm",
                                    "f_rating": "great", "task_id": _task_id(mine)})
    assert r.status_code == 409 and 'role="alert"' in r.text, r.text
    r = await _act(resident, link, {"action": "complete", "key": key, "outcome": "confirm",
                                    "f_rating": "satisfied", "task_id": _task_id(mine)})
    assert r.status_code == 303 and r.headers["location"] == f"/p/{instance_id}?key={key}&msg=process.msg.done"
    row = await _row(platform, instance_id, lambda row: row.state == "done")
    assert row.ended_at is not None
    async with platform.db.session() as session:
        credits = {(c.subject, c.credit) for c in (await session.exec(
            select(models.ProcessCredit).where(models.ProcessCredit.instance_id == instance_id))).all()}
        audit = [(a.actor, a.action) for a in (await session.exec(
            select(models.AuditEntry).where(col(models.AuditEntry.target).startswith(instance_id))
            .order_by(col(models.AuditEntry.id)))).all()]
    assert ("wg_hs01_g1", "proxy_service") in credits, credits
    assert ("requester", "process_confirm") in audit and ("wg_hs01_g1", "process_delivered") in audit, audit
    done = (await resident.get(f"/p/{instance_id}?key={key}")).text
    assert re.search(r'id="process-state">当前环节: <strong>已办结</strong>', done)
    assert 'id="process-complete"' not in done


async def test_the_definitions_administration_refuses_with_places_and_activates_a_fifth(platform: Platform) -> None:
    http = platform.http
    await admin_login(http, "admin", "admin12345")
    page = (await http.get("/admin/processes")).text
    assert "proxy_service" in page and "流程定义" in page
    broken = json.loads(FIFTH.read_text(encoding="utf-8"))
    del broken["states"][0]["task"]["taker"]  # a task without a taker
    broken["transitions"][-1]["dest"] = "nirvana"  # a move to an unknown state
    broken["states"].append({"name": "orphan", "label_zh": "孤立", "final": True})  # never reached
    r = await http.post("/admin/processes/upload", data={"_csrf_token": csrf(page)}, files={
        "file": ("broken.json", json.dumps(broken, ensure_ascii=False).encode(), "application/json")})
    assert r.status_code == 400, r.text
    rows = [(where, re.sub("<[^>]+>", "", what)) for where, what in
            re.findall(r'<tr><td><code translate="no">([^<]+)</code></td><td>(.*?)</td></tr>', r.text)]
    last = len(broken["transitions"]) - 1
    assert ("states.0.task.taker", "任务 visit 没有承办人") in rows, rows
    assert (f"transitions.{last}.dest", "没有环节 nirvana") in rows, rows
    assert (f"states.{len(broken['states']) - 1}", "环节 orphan 从起始环节无法到达") in rows, rows
    assert "elderly_visit" not in (await http.get("/admin/processes")).text  # nothing stored
    r = await http.post("/admin/processes/upload", data={"_csrf_token": csrf(page)},
                        files={"file": ("visit.json", FIFTH.read_bytes(), "application/json")})
    assert r.status_code == 200 and "试运行到达终止环节" in r.text, r.text
    assert re.search("已保存（未启用）： <code[^>]*>elderly_visit</code> 版本 <code>1</code>", r.text), r.text
    r = await http.post("/admin/processes/elderly_visit/1/activate", data={"_csrf_token": csrf(r.text)})
    assert r.status_code == 303
    async with httpx.AsyncClient(transport=http._transport, base_url="http://testserver") as worker:
        await login(worker, "wg_hs01_g1")
        listing = (await worker.get("/processes")).text
        assert 'href="/processes/new/elderly_visit"' in listing and "上门看望独居老人" in listing
        form = (await worker.get("/processes/new/elderly_visit")).text
        assert "HS02-G1" not in form  # a grid worker starts for residents of their own grid only
        r = await worker.post("/processes/new/elderly_visit", data={
            "name": "李大爷", "grid": "HS01-G1", "f_person": "李大爷", "f_address": "城北路 3 号",
            "_csrf_token": csrf(form)})
        assert r.status_code == 303, r.text
        instance_id = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
        row = await _row(platform, instance_id, lambda row: row.state == "scheduled")
        assert (row.kind, row.version, row.started_by) == ("elderly_visit", "1", "wg_hs01_g1")
        shown = (await worker.get(r.headers["location"])).text
        assert f"/p/{instance_id}?key=" in shown  # the requester's link, shown this once
        assert f"/p/{instance_id}?key=" not in (await worker.get(f"/processes/{instance_id}")).text
        tasks = (await worker.get("/processes?kind=elderly_visit")).text
        assert f"/processes/{instance_id}" in tasks.split('id="process-recent"')[0]  # in the process tasks


async def test_process_tasks_in_the_shared_inbox_and_late_ones_in_the_console(platform: Platform) -> None:
    resident = platform.http
    form = (await resident.get("/p/new/micro_wish")).text
    r = await resident.post("/p/new/micro_wish", data={
        "name": "李奶奶", "grid": "HS01-G3", "f_wish": "想要一副老花镜", "f_value": "80", "_csrf_token": csrf(form)})
    assert r.status_code == 303, r.text
    instance_id = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
    await _row(platform, instance_id, lambda row: row.state == "posted")
    async with httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as community, \
            httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as elsewhere, \
            httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as centre, \
            httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as other_centre:
        await login(community, "sq_hs01")
        inbox = (await community.get("/inbox")).text
        section = inbox.split('id="inbox-processes"')[1].split("</section>")[0]
        # The community's approval of the wish, in the one inbox, with a filter by process kind.
        assert f'href="/processes/{instance_id}"' in section and "审核心愿" in section, section
        assert 'href="/processes?kind=micro_wish">党群微心愿 (1)</a>' in section, section
        await login(elsewhere, "sq_hs02")  # another community: none of it
        assert 'id="inbox-processes"' not in (await elsewhere.get("/inbox")).text
        await login(centre, "zx_hs")
        await login(other_centre, "zx_st")
        console = (await centre.get("/console")).text
        assert f'href="/processes/{instance_id}"' not in console  # not late yet
        # The task's deadline passes and escalates (the workflow's own timer: test_process_workflow).
        await _past_deadline(platform, instance_id)
        queue = (await centre.get("/console")).text.split('id="process-overdue"')[1].split("</section>")[0]
        assert f'href="/processes/{instance_id}"' in queue and "其中 1 件无人认领" in queue, queue
        assert f'href="/processes/{instance_id}"' not in (await other_centre.get("/console")).text
        # A notice to the requester that the gateway keeps refusing is seen there too (the delivery
        # retries it for two hours, then the row keeps its last error).
        async with platform.db.transaction() as session:
            session.add(models.Notice(notice_id=f"{instance_id}.N9", event_id=instance_id, kind="process",
                                      recipient="13800000000", body="【党群微心愿】…", attempts=4,
                                      last_error="HTTPStatusError: 502", created_at=datetime.now(UTC)))
            await session.commit()
        notices = (await centre.get("/console")).text.split('id="process-notices"')[1].split("</section>")[0]
        assert f"{instance_id}.N9" in notices and "HTTPStatusError: 502" in notices, notices
        assert f"{instance_id}.N9" not in (await other_centre.get("/console")).text
        bearer = await platform.login("zx_hs")
        api = (await centre.get("/api/console", headers=bearer)).json()
        assert [t["instance_id"] for t in api["process_stuck"]] == [instance_id]
        assert [t["task_kind"] for t in api["process_overdue"]] == ["approve"]
        # Claimed, it is still overdue but no longer stuck.
        await _step_claim(platform, community, instance_id)
        await _past_deadline(platform, instance_id)  # the claim's projection wrote the workflow's row back
        api = (await centre.get("/api/console", headers=bearer)).json()
        assert [t["instance_id"] for t in api["process_overdue"]] == [instance_id] and api["process_stuck"] == []


async def _past_deadline(platform: Platform, instance_id: str) -> None:
    """The projected task as the workflow's timer leaves it once its deadline passed and escalated
    (due an hour ago, late): the timer itself runs on the time-skipping server in test_process_workflow."""
    async with platform.db.transaction() as session:
        task = (await session.exec(select(models.ProcessTaskRow).where(
            models.ProcessTaskRow.instance_id == instance_id))).one()
        task.due_at, task.late = datetime.now(UTC) - timedelta(hours=1), True
        session.add(task)
        await session.commit()


async def _step_claim(platform: Platform, http: httpx.AsyncClient, instance_id: str) -> None:
    page = f"/processes/{instance_id}"
    html = (await http.get(page)).text
    before = (await _row(platform, instance_id, lambda r: True)).seq
    r = await _act(http, page, {"action": "claim", "task_id": _task_id(html)})
    assert r.status_code == 303, r.text
    await _row(platform, instance_id, lambda row: row.seq > before)
