"""The full lifecycle through the server-rendered pages, as workers, supervisors and residents meet it:
return, escalation, extension, co-handling, rework after a dissatisfied rating, the console and its
bulk form, scopes, languages. Against a real Temporal dev server with a worker."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

import httpx
from temporalio.testing import WorkflowEnvironment

from store import models, queries
from store.timeutil import utcnow
from tests.platform import Platform, csrf, running_platform
from web.commands import SUPERVISOR_ACTIONS
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from workflows.lifecycle import TRANSITIONS, Stage, State

T = TypeVar("T")
# A 1×1 PNG, for the photo upload of a completion.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


# ------------------------------------------------------------------ helpers: a browser, roughly
@asynccontextmanager
async def browser(p: Platform, username: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A separate client (own cookies), logged in through the login form when ``username`` is given."""
    async with httpx.AsyncClient(transport=p.http._transport, base_url="http://testserver") as http:
        if username:
            page = (await http.get("/login")).text
            r = await http.post("/login", data={"username": username, "password": "demo12345",
                                                "_csrf_token": csrf(page)})
            assert r.status_code == 303 and r.headers["location"] == "/inbox", r.text
        yield http


async def submit(http: httpx.AsyncClient, page: str, action: str, fields: dict[str, Any],
                 files: list[tuple[str, tuple[str, bytes, str]]] | None = None) -> httpx.Response:
    """Open ``page``, check that it offers a form posting to ``action``, and post ``fields`` like a browser."""
    html = (await http.get(page)).text
    assert f'action="{action}"' in html, f"{page} offers no form for {action}"
    return await http.post(action, data={**fields, "_csrf_token": csrf(html)}, files=files)


async def force(http: httpx.AsyncClient, page: str, action: str, fields: dict[str, Any]) -> httpx.Response:
    """Post ``fields`` to ``action`` with the CSRF token of ``page``, whether or not it offers the form
    (what a stale page or a crafted request does)."""
    html = (await http.get(page)).text
    return await http.post(action, data={**fields, "_csrf_token": csrf(html)})


async def supervise(http: httpx.AsyncClient, event_id: str, action: str, **fields: Any) -> httpx.Response:
    """Use the supervisor panel of the event page (the button must be offered)."""
    page = (await http.get(f"/events/{event_id}")).text
    assert f'name="action" value="{action}"' in page, f"no '{action}' on the event page"
    return await http.post(f"/events/{event_id}/supervise",
                           data={"action": action, **fields, "_csrf_token": csrf(page)})


def flash(r: httpx.Response) -> dict[str, list[str]]:
    """The ``msg`` / ``error`` of a 303 answer's redirect."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    return parse_qs(urlparse(r.headers["location"]).query)


async def until(probe: Callable[[], Awaitable[T | None]], what: str, tries: int = 100) -> T:
    """Poll briefly for something the workflow does asynchronously."""
    for _ in range(tries):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def actions_of(p: Platform, event_id: str) -> list[str]:
    return [e.action for e in await queries.timeline(p.db, event_id)]


async def task(p: Platform, task_id: str) -> models.Task:
    found = await queries.get_task(p.db, task_id)
    assert found is not None, task_id
    return found


async def claim(http: httpx.AsyncClient, task_id: str) -> None:
    r = await submit(http, "/inbox", f"/tasks/{task_id}/claim", {"next": "/inbox"})
    assert flash(r)["msg"] == ["msg.claimed"], r.headers["location"]


# ------------------------------------------------------------------ the catalogues
def test_every_state_stage_and_action_has_labels_in_both_languages() -> None:
    from web.i18n import catalogue as merged  # the base catalogue plus its <lang>.<part>.json files

    catalogues = {lang: merged(lang) for lang in ("zh-CN", "en")}
    needed = {f"state.{s.value}" for s in State} | {f"track.explain.{s.value}" for s in State}
    needed |= {f"stage.{s.value}" for s in Stage} | {"action.report"}
    needed |= {f"action.{t['trigger']}" for t in TRANSITIONS} | {f"action.{a}" for a in SUPERVISOR_ACTIONS}
    needed |= {f"msg.supervised.{a}" for a in SUPERVISOR_ACTIONS}
    for template in Path("web/templates").glob("*.html"):
        # t('key') calls only: not the tail of another call such as f.input('code', ...).
        needed |= set(re.findall(r"(?<![\w.])t\('([a-z_.]*[a-z_])'", template.read_text(encoding="utf-8")))
    for lang, catalogue in catalogues.items():
        assert not needed - set(catalogue), (lang, sorted(needed - set(catalogue)))
    assert set(catalogues["zh-CN"]) == set(catalogues["en"])


# ------------------------------------------------------------------ (a) return
async def test_worker_returns_and_the_street_supervisor_approves(platform: Platform) -> None:
    created = await platform.report(description="不属于本网格的问题")
    event_id = created["event_id"]
    first = f"{event_id}.T1"
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, first)
        r = await submit(worker, f"/events/{event_id}", f"/tasks/{first}/return",
                         {"reason": "属于相邻网格", "next": f"/events/{event_id}"})
        assert flash(r)["msg"] == ["msg.requested.return"]
        page = (await worker.get(r.headers["location"])).text
        assert "已申请退回" in page and "退回申请待审批" in page
        assert f'action="/tasks/{first}/complete"' not in page  # nothing to do but wait for the decision
        assert 'name="action" value="approve_return"' not in page  # no supervisor panel for a worker

    async with browser(platform, "zx_hs") as zx:
        r = await supervise(zx, event_id, "approve_return", reason="同意重新分拨")
        assert flash(r)["msg"] == ["msg.supervised.approve_return"]
        assert "已同意退回" in (await zx.get(r.headers["location"])).text

        actions = await until(lambda: _routed_twice(platform, event_id), "the second routing")
        assert actions.index("request_return") < actions.index("approve_return") < len(actions) - 1
        # Never back to the grid that returned it: the list names nobody else for SR-01 there, so triage.
        assert actions[actions.index("approve_return") + 1] == "route_to_triage"
        assert (await task(platform, first)).status == "cancelled"
        again = await task(platform, f"{event_id}.T2")
        assert again.kind == "triage" and again.unit == "CC-HS" and again.status == "open"
        page = (await zx.get(f"/events/{event_id}")).text
        assert "同意退回" in page and "申请退回" in page and "退回: <strong>1</strong>" in page


async def _routed_twice(p: Platform, event_id: str) -> list[str] | None:
    actions = await actions_of(p, event_id)
    return actions if actions.count("route") + actions.count("route_to_triage") == 2 else None


# ------------------------------------------------------------------ (b) escalate
async def test_worker_escalates_to_the_community(platform: Platform) -> None:
    created = await platform.report(description="需要社区协调的问题")
    event_id = created["event_id"]
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, f"{event_id}.T1")
        r = await submit(worker, "/inbox", f"/tasks/{event_id}.T1/escalate",
                         {"reason": "网格无法处置", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.escalate"]

    async def community_task() -> models.Task | None:
        found = await queries.get_task(platform.db, f"{event_id}.T2")
        return found if found is not None and found.unit == "HS01" else None

    escalated = await until(community_task, "the community's task")
    assert escalated.kind == "handle" and escalated.status == "open"
    event = await queries.get_event(platform.db, event_id)
    assert event is not None and event.category == "SR-01" and event.escalated_count == 1
    assert event.decision and event.decision["rule"] == "escalated" and event.unit == "HS01"
    assert (await task(platform, f"{event_id}.T1")).status == "cancelled"
    async with browser(platform, "sq_hs01") as community:
        inbox = (await community.get("/inbox")).text
        assert f'action="/tasks/{event_id}.T2/claim"' in inbox
        page = (await community.get(f"/events/{event_id}")).text
        assert "<dd>提级</dd>" in page and "上报" in page  # the rule, by its name in the page's language


# ------------------------------------------------------------------ (c) extension (and release)
async def test_extension_approved_moves_the_deadline(platform: Platform) -> None:
    created = await platform.report(description="需要延期的问题")
    event_id = created["event_id"]
    first = f"{event_id}.T1"
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, first)
        r = await submit(worker, "/inbox", f"/tasks/{first}/release", {"next": "/inbox"})
        assert flash(r)["msg"] == ["msg.released"]
        assert (await task(platform, first)).status == "open"
        await claim(worker, first)
        before = (await task(platform, first)).due_at
        assert before is not None
        r = await submit(worker, "/inbox", f"/tasks/{first}/extension",
                         {"hours": "abc", "reason": "等待配件", "next": "/inbox"})
        assert flash(r)["error"] == ["小时数须为整数"]
        r = await submit(worker, "/inbox", f"/tasks/{first}/extension",
                         {"hours": "8", "reason": "等待配件", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.extension"]
        inbox = (await worker.get("/inbox")).text
        assert "延期申请待审批" in inbox and f'action="/tasks/{first}/extension"' not in inbox

    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get(f"/events/{event_id}")).text
        assert "延期申请" in page and "申请延期 8 小时" in page
        r = await supervise(zx, event_id, "approve_extension", reason="同意")
        assert flash(r)["msg"] == ["msg.supervised.approve_extension"]
        after = (await task(platform, first)).due_at
        assert after is not None and after > before
        assert {"request_extension", "approve_extension"} <= set(await actions_of(platform, event_id))
        page = (await zx.get(f"/events/{event_id}")).text
        assert 'name="action" value="approve_extension"' not in page  # decided: no longer offered

        # Pause stops the workers' forms; resume brings them back.
        r = await supervise(zx, event_id, "pause", reason="等待核实")
        assert flash(r)["msg"] == ["msg.supervised.pause"]
        async with browser(platform, "wg_hs01_g1") as worker:
            inbox = (await worker.get("/inbox")).text
            assert "本案已被挂起" in inbox and f'action="/tasks/{first}/complete"' not in inbox
        page = (await zx.get(f"/events/{event_id}")).text
        assert 'value="resume"' in page and 'value="reassign"' not in page
        r = await supervise(zx, event_id, "resume")
        assert flash(r)["msg"] == ["msg.supervised.resume"]


# ------------------------------------------------------------------ (d) co-handling, photos
async def test_cohandling_must_finish_before_the_main_task(platform: Platform) -> None:
    created = await platform.report(description="需要执法部门协办的问题")
    event_id = created["event_id"]
    main, helper = f"{event_id}.T1", f"{event_id}.T2"
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, main)
        inbox = (await worker.get("/inbox")).text
        assert '<option value="D-ZF">' in inbox
        r = await submit(worker, "/inbox", f"/tasks/{main}/cohandling",
                         {"units": ["D-ZF"], "reason": "需执法配合", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.cohandling"]
        # Issue 10, item 5: while co-handling is open, neither the inbox nor the event page offers 办结
        # (the workflow would refuse it); they say what it waits for instead.
        for page_url in ("/inbox", f"/events/{event_id}"):
            page = (await worker.get(page_url)).text
            assert f'action="/tasks/{main}/complete"' not in page, page_url
            assert f'id="cohandling-open-{main}"' in page and "协办尚未完成（D-ZF）" in page, page_url
            assert f'action="/tasks/{main}/release"' in page  # what is allowed stays offered
        # A forced POST is refused by the workflow, with the reason in the page's language (zh-CN).
        r = await force(worker, "/inbox", f"/tasks/{main}/complete", {"result": "已处理", "next": "/inbox"})
        error = flash(r)["error"][0]
        assert error == "协办尚未完成（D-ZF），暂不能办结"
        assert error in (await worker.get(r.headers["location"])).text  # shown on the page
        worker.cookies.set("lang", "en")
        r = await force(worker, "/inbox", f"/tasks/{main}/complete", {"result": "已处理", "next": "/inbox"})
        assert flash(r)["error"] == ["co-handling by D-ZF is not finished yet"]
        worker.cookies.delete("lang")
        answer = await platform.http.post(f"/api/tasks/{main}/complete", json={"result": "已处理"},
                                          headers=await platform.login("wg_hs01_g1"))
        assert answer.status_code == 409 and answer.json()["code"] == "cohandling_open"
        assert answer.json()["detail"] == "co-handling by D-ZF is not finished yet"

        async with browser(platform, "bm_zf") as department:
            inbox = (await department.get("/inbox")).text
            assert "协办" in inbox and "需执法配合" in inbox
            await claim(department, helper)
            r = await submit(department, "/inbox", f"/tasks/{helper}/complete",
                             {"result": "执法人员已到场", "next": "/inbox"})
            assert flash(r)["msg"] == ["msg.completed"]
        assert (await task(platform, helper)).status == "done"

        # A file that is not an image is refused with a clear message; the task stays claimed.
        r = await submit(worker, "/inbox", f"/tasks/{main}/complete", {"result": "已清理完毕", "next": "/inbox"},
                         files=[("photos", ("notes.txt", b"hello", "text/plain"))])
        assert flash(r)["error"] == ["照片须为 JPEG、PNG 或 WebP 格式"]
        assert (await task(platform, main)).status == "claimed"
        # Now the main task completes, with a photo (multipart form).
        r = await submit(worker, "/inbox", f"/tasks/{main}/complete", {"result": "已清理完毕", "next": "/inbox"},
                         files=[("photos", ("site.png", PNG, "image/png"))])
        assert flash(r)["msg"] == ["msg.completed"], r.headers["location"]
        [photo] = (await task(platform, main)).photos
        assert re.fullmatch(r"[0-9a-f]{32}\.png", photo)
        event = await queries.get_event(platform.db, event_id)
        assert event is not None and event.state == "verification"
        page = (await worker.get(f"/events/{event_id}")).text
        assert f'src="/photos/{photo}"' in page and "执法人员已到场" in page
        shown = await worker.get(f"/photos/{photo}")
        stored = (platform.settings.data_dir / "photos" / photo).read_bytes()
        assert shown.status_code == 200 and shown.content == stored
        # The verification (by the community: the grid did the work) can be released back to the inbox too.
        verify = f"{event_id}.T3"
        async with browser(platform, "sq_hs01") as community:
            await claim(community, verify)
            r = await submit(community, "/inbox", f"/tasks/{verify}/release", {"next": "/inbox"})
            assert flash(r)["msg"] == ["msg.released"]


# ------------------------------------------------------------------ (e) dissatisfied → rework
async def test_dissatisfied_rating_sends_the_case_back_for_rework(platform: Platform) -> None:
    created = await platform.report(description="评价不满意的问题")
    event_id, receipt = created["event_id"], created["receipt_code"]
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, f"{event_id}.T1")
        r = await submit(worker, "/inbox", f"/tasks/{event_id}.T1/complete", {"result": "已处理", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.completed"]
        async with browser(platform, "sq_hs01") as community:  # the grid's work: its community verifies
            await claim(community, f"{event_id}.T2")
            r = await submit(community, "/inbox", f"/tasks/{event_id}.T2/complete",
                             {"result": "已核实", "passed": "true", "next": "/inbox"})
            assert flash(r)["msg"] == ["msg.completed"]

        async with browser(platform) as resident:
            # The link of the reporter's notice carries the key; the page then asks for nothing more.
            link = f"/track/{receipt}?key={created['tracking_key'].replace('-', '')}"
            page = (await resident.get(link)).text
            assert 'type="hidden" name="tracking_key"' in page and 'id="tracking_key"' not in page
            r = await submit(resident, link, f"/track/{receipt}/rating",
                             {"rating": "dissatisfied", "comment": "垃圾还在", "tracking_key": created["tracking_key"]})
            assert flash(r)["msg"] == ["msg.rated.rework"]
            track = (await resident.get(r.headers["location"])).text
            assert "返工" in track and "已交办,待签收" in track and "毛建国" not in track

        async def rework_offered() -> str | None:
            inbox = (await worker.get("/inbox")).text
            return inbox if f'action="/tasks/{event_id}.T3/claim"' in inbox else None

        inbox = await until(rework_offered, "the rework task in the grid worker's inbox")
        assert "垃圾还在" in inbox  # the resident's comment travels with the rework
        rework = await task(platform, f"{event_id}.T3")
        assert rework.kind == "handle" and rework.unit == "HS01-G1"
        page = (await worker.get(f"/events/{event_id}")).text
        assert "返工: <strong>1</strong>" in page and "不满意,返工" in page


# ------------------------------------------------------------------ (f) console and bulk
async def test_console_lists_awaiting_approval_and_bulk_voids(platform: Platform) -> None:
    extension = (await platform.report(description="延期待批"))["event_id"]
    returned = (await platform.report(description="退回待批"))["event_id"]
    unplaced = await platform.report(category="", description="说不清是什么问题")
    async with browser(platform, "wg_hs01_g1") as worker:
        for event_id in (extension, returned):
            await claim(worker, f"{event_id}.T1")
        r = await submit(worker, "/inbox", f"/tasks/{extension}.T1/extension",
                         {"hours": "4", "reason": "等待配件", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.extension"]
        r = await submit(worker, "/inbox", f"/tasks/{returned}.T1/return", {"reason": "不归我管", "next": "/inbox"})
        assert flash(r)["msg"] == ["msg.requested.return"]

    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get("/console")).text
        awaiting = _section(page, "awaiting")
        for event_id in (extension, returned):
            assert f'name="event_ids" value="{event_id}" form="bulk"' in awaiting
        assert "延期申请" in awaiting and "退回申请" in awaiting
        assert unplaced["receipt_code"] in _section(page, "triage")
        assert "HS01-G1" in page and "城北社区第一网格" in page  # counts per unit, with names

        r = await zx.post("/console/bulk", data={
            "event_ids": [extension, returned, "EV-NOPE<b>"], "action": "void", "reason": "重复上报",
            "confirm": "yes", "unit": "", "_csrf_token": csrf(page),
        })
        query = flash(r)
        assert query["ok"] == ["2"] and query["total"] == ["3"] and "EV-NOPE<b>" in query["error"][0]
        page = (await zx.get(r.headers["location"])).text
        assert "3 件中成功 2 件" in page and "EV-NOPE&lt;b&gt;" in page and "EV-NOPE<b>" not in page
        for event_id in (extension, returned):
            event = await queries.get_event(platform.db, event_id)
            assert event is not None and event.state == "voided" and event.pending is None
            assert event_id not in _section(page, "awaiting")
        # Reopen is offered on a voided event (and only supervisor actions legal there).
        page = (await zx.get(f"/events/{extension}")).text
        assert 'name="action" value="reopen"' in page and 'name="action" value="void"' not in page
        assert "已作废" in page
        r = await zx.post("/console/bulk", data={"action": "void", "reason": "x", "_csrf_token": csrf(page)})
        assert flash(r)["msg"] == ["msg.bulk_none"]


def _section(page: str, section_id: str) -> str:
    start = page.index(f'id="{section_id}"')
    end = page.find("</section>", start)
    return page[start:end]


# ------------------------------------------------------------------ (g) scopes
async def test_scopes_are_enforced_on_pages_and_forms(platform: Platform) -> None:
    created = await platform.report(description="范围检查")
    event_id = created["event_id"]
    async with browser(platform, "wg_st01_g1") as other:
        assert (await other.get(f"/events/{event_id}")).status_code == 403
        assert (await other.get(f"/events/{event_id}/timeline.csv")).status_code == 403
        token = csrf((await other.get("/inbox")).text)
        r = await other.post(f"/events/{event_id}/supervise", data={"action": "void", "reason": "x",
                                                                     "_csrf_token": token})
        assert r.status_code == 403
    async with browser(platform, "zx_st") as other_street:  # a supervisor, but of another street
        token = csrf((await other_street.get("/inbox")).text)
        r = await other_street.post(f"/events/{event_id}/supervise", data={"action": "pause",
                                                                            "_csrf_token": token})
        assert r.status_code == 403 and "无权访问" in r.text and "该事件不在您单位的管辖范围内" in r.text
    async with browser(platform, "wg_hs01_g1") as worker:
        inbox = (await worker.get("/inbox")).text
        assert 'href="/console"' not in inbox
        assert (await worker.get("/console")).status_code == 403
        r = await worker.post("/console/bulk", data={"event_ids": event_id, "action": "void", "reason": "x",
                                                     "_csrf_token": csrf(inbox)})
        assert r.status_code == 403
        csv_export = await worker.get(f"/events/{event_id}/timeline.csv")
        assert csv_export.status_code == 200 and csv_export.headers["content-type"].startswith("text/csv")
        assert csv_export.content.startswith("\ufeffseq,at (Asia/Shanghai),stage,action".encode())
        assert ",route," in csv_export.text
        api = await platform.http.get(f"/api/events/{event_id}/timeline.csv",
                                      headers=await platform.login("wg_hs01_g1"))
        assert api.status_code == 200 and api.text == csv_export.text  # one CSV writer for both
        assert f'href="/events/{event_id}/timeline.csv"' in (await worker.get(f"/events/{event_id}")).text
    async with browser(platform) as anonymous:
        r = await anonymous.get("/console")
        assert r.status_code in (302, 303) and r.headers["location"] == "/login"
    assert (await queries.get_event(platform.db, event_id)).state == "dispatched"  # type: ignore[union-attr]


# ------------------------------------------------------------------ (h) languages
async def test_console_in_chinese_then_english(platform: Platform) -> None:
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get("/console")).text
        assert 'lang="zh-CN"' in page and "指挥台" in page and "各单位概况" in page and "批量操作" in page
        assert 'href="/console"' in (await zx.get("/inbox")).text
        r = await zx.get("/lang/en?next=/console")
        assert r.status_code in (302, 303) and r.headers["location"] == "/console"
        page = (await zx.get("/console")).text
        assert 'lang="en"' in page and "Command-centre console" in page and "Bulk action" in page
        assert "Units at a glance" in page and "批量操作" not in page
        assert ">Void<" in page and ">Reassign<" in page


# ------------------------------------------------------------------ failing notices: retry now, skip
class DownGateway:
    """An SMS gateway that is down (every delivery fails)."""

    channel = "sms-test"

    async def send(self, notice: Any) -> None:
        raise ConnectionError("gateway down")


async def test_console_retries_and_skips_a_failing_notice(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        async with build_worker(p.client, p.db, p.task_queue, delivery=DownGateway()):
            created = await p.report(description="通知发送失败")
            notice_id = f"{created['event_id']}.N1"

            async def failed_once() -> models.Notice | None:
                async with p.db.session() as session:
                    row = await session.get(models.Notice, notice_id)
                return row if row is not None and row.last_error else None

            row = await until(failed_once, "the first failed delivery")
            assert "gateway down" in (row.last_error or "")
            # The real back-off takes a while before the third attempt: count three attempts now.
            async with p.db.session() as session:
                stored = await session.get(models.Notice, notice_id)
                assert stored is not None
                stored.attempts = 3
                session.add(stored)
                await session.commit()

            async with browser(p, "zx_hs") as zx:
                notices = _section((await zx.get("/console")).text, "notices")
                assert notice_id in notices and "gateway down" in notices and "立即重试" in notices
                r = await submit(zx, "/console", f"/events/{created['event_id']}/supervise",
                                 {"action": "retry_notice", "notice_id": notice_id, "next": "/console"})
                assert flash(r)["msg"] == ["msg.supervised.retry_notice"]
                assert r.headers["location"].startswith("/console?")
                r = await submit(zx, "/console", f"/events/{created['event_id']}/supervise",
                                 {"action": "skip_notice", "notice_id": notice_id, "next": "/console"})
                assert flash(r)["msg"] == ["msg.supervised.skip_notice"]

                async def skipped() -> bool:
                    async with p.db.session() as session:
                        row = await session.get(models.Notice, notice_id)
                    return row is not None and row.status == "skipped"

                await until(skipped, "the skipped notice")
                assert notice_id not in _section((await zx.get("/console")).text, "notices")
                actions = await actions_of(p, created["event_id"])
                assert actions.count("retry_notice") == 1 and actions.count("skip_notice") == 1
                page = (await zx.get(f"/events/{created['event_id']}")).text
                assert "重发通知" in page and "跳过通知" in page


# ------------------------------------------------------------------ overdue queues and warnings
async def test_console_highlights_overdue_and_the_event_page_shows_warnings(platform: Platform) -> None:
    created = await platform.report(description="超期未签收")
    event_id = created["event_id"]

    async def quiet() -> bool:
        """The dispatched notice is delivered and the store holds the workflow's latest snapshot, so
        no projection is on its way to overwrite the row edited below."""
        async with platform.db.session() as session:
            notice = await session.get(models.Notice, f"{event_id}.N1")
            stored = await session.get(models.Event, event_id)
        if notice is None or notice.status != "delivered" or stored is None:
            return False
        snap = await platform.client.get_workflow_handle(event_id).query(EventLifecycle.snapshot)
        return bool(stored.version == snap.version)

    await until(quiet, "the workflow to go quiet after dispatch")
    # Simulate time passing: the task's deadline is behind us and the timer has warned (yellow).
    async with platform.db.session() as session:
        row = await session.get(models.Task, f"{event_id}.T1")
        assert row is not None
        # The projection keeps due_key (the inbox's and console's sort key) equal to due_at.
        row.due_at, row.overdue_level = utcnow() - timedelta(hours=2), "yellow"
        row.due_key = row.due_at
        session.add(row)
        session.add(models.SupervisionWarning(event_id=event_id, seq=1, kind="yellow", task_id=row.task_id,
                                              unit=row.unit, at=utcnow(), note="deadline passed: urging notice"))
        await session.commit()
    async with browser(platform, "zx_hs") as zx:
        page = (await zx.get("/console")).text
        for queue in ("overdue", "stuck"):
            section = _section(page, queue)
            assert created["receipt_code"] in section and 'class="overdue"' in section
            assert f'name="event_ids" value="{event_id}"' in section
        assert re.search(r'<tr class="overdue"><td><code>HS01-G1</code>', page)
        page = (await zx.get(f"/events/{event_id}")).text
        assert "督办预警" in page and "黄色预警" in page and "deadline passed: urging notice" in page


# ------------------------------------------------------------------ reassign, deadline, force escalation
async def test_supervisor_reassigns_changes_the_deadline_and_escalates(platform: Platform) -> None:
    created = await platform.report(description="改派测试")
    event_id = created["event_id"]
    async with browser(platform, "zx_hs") as zx:
        r = await supervise(zx, event_id, "reassign", unit="HS01-G2", assignee="wg_hs01_g2", reason="就近处置")
        assert flash(r)["msg"] == ["msg.supervised.reassign"]
        moved = await task(platform, f"{event_id}.T2")
        assert moved.unit == "HS01-G2" and moved.assignee == "wg_hs01_g2"
        before = moved.due_at
        r = await supervise(zx, event_id, "change_deadline", hours="1")
        assert flash(r)["msg"] == ["msg.supervised.change_deadline"]
        after = (await task(platform, f"{event_id}.T2")).due_at
        assert before and after and after < before
        r = await supervise(zx, event_id, "change_deadline", hours="9999")
        assert flash(r)["error"] == ["时限须为 1 至 720 个工作小时"]
        async with browser(platform, "wg_hs01_g2") as other:
            assert f'action="/tasks/{event_id}.T2/claim"' in (await other.get("/inbox")).text
        r = await supervise(zx, event_id, "force_escalate", reason="久拖不决")
        assert flash(r)["msg"] == ["msg.supervised.force_escalate"]
        tasks = await queries.event_tasks(platform.db, event_id)
        assert [t.status for t in tasks] == ["cancelled", "cancelled", "open"]
        assert {"reassign", "change_deadline", "force_escalate"} <= set(await actions_of(platform, event_id))


# ------------------------------------------------------------------ review after the last allowed rework
async def _open_task(p: Platform, event_id: str, kind: str) -> str:
    async def found() -> str | None:
        for row in await queries.event_tasks(p.db, event_id):
            if row.kind == kind and row.status == "open":
                return row.task_id
        return None

    return await until(found, f"an open {kind} task of {event_id}")


async def test_third_dissatisfied_rating_goes_to_a_supervisor_review(platform: Platform) -> None:
    created = await platform.report(description="反复不满意")
    event_id, receipt = created["event_id"], created["receipt_code"]
    async with browser(platform, "wg_hs01_g1") as worker, browser(platform) as resident, \
            browser(platform, "sq_hs01") as community:  # the grid's work: its community verifies
        for expected in ("msg.rated.rework", "msg.rated.rework", "msg.rated.review"):
            handle = await _open_task(platform, event_id, "handle")
            await claim(worker, handle)
            r = await submit(worker, "/inbox", f"/tasks/{handle}/complete", {"result": "已处理", "next": "/inbox"})
            assert flash(r)["msg"] == ["msg.completed"]
            verify = await _open_task(platform, event_id, "verify")
            await claim(community, verify)
            r = await submit(community, "/inbox", f"/tasks/{verify}/complete",
                             {"result": "已核实", "passed": "true", "next": "/inbox"})
            assert flash(r)["msg"] == ["msg.completed"]
            r = await submit(resident, f"/track/{receipt}", f"/track/{receipt}/rating",
                             {"rating": "dissatisfied", "tracking_key": created["tracking_key"]})
            assert flash(r)["msg"] == [expected]
        track = (await resident.get(r.headers["location"])).text
        assert "待复核" in track and "指挥中心正在复核" in track and "转指挥中心复核" in track

    async with browser(platform, "zx_hs") as zx:
        awaiting = _section((await zx.get("/console")).text, "awaiting")
        assert created["receipt_code"] in awaiting and "不满意复核" in awaiting
        r = await supervise(zx, event_id, "review_rework", reason="换人处置")
        assert flash(r)["msg"] == ["msg.supervised.review_rework"]
    event = await queries.get_event(platform.db, event_id)
    assert event is not None and event.state == "dispatched" and event.rework_count == 3 and event.pending is None
    assert await _open_task(platform, event_id, "handle")


async def test_return_is_offered_only_within_its_window(platform: Platform) -> None:
    """The handling task's return window (the workflow's mark) is kept on its row: while it is open
    the pages offer 退回, once it has passed they do not (the workflow would refuse with return_window)."""
    created = await platform.report(description="退回时限的问题")
    first = f"{created['event_id']}.T1"
    async with browser(platform, "wg_hs01_g1") as worker:
        await claim(worker, first)
        row = await task(platform, first)
        assert row.return_by is not None and row.due_at is not None  # projected from the marks
        page = (await worker.get(f"/events/{created['event_id']}")).text
        assert f'action="/tasks/{first}/return"' in page and f'action="/tasks/{first}/extension"' in page
        async with platform.db.session() as session:  # as if the window had run out meanwhile
            stored = await session.get(models.Task, first)
            assert stored is not None
            stored.return_by = utcnow() - timedelta(minutes=1)
            session.add(stored)
            await session.commit()
        for url in ("/inbox", f"/events/{created['event_id']}"):
            page = (await worker.get(url)).text
            assert f'action="/tasks/{first}/return"' not in page, url
            assert f'action="/tasks/{first}/escalate"' in page and f'action="/tasks/{first}/extension"' in page, url
