"""The closed loop through the pages, as a resident and a grid worker meet it (server-rendered)."""

from __future__ import annotations

import asyncio
import re

import httpx

from tests.platform import Platform, csrf


async def post_form(http: httpx.AsyncClient, page: str, action: str, fields: dict[str, str]) -> httpx.Response:
    """Load ``page`` (for its CSRF token), then post ``fields`` to ``action`` like a browser."""
    html = (await http.get(page)).text
    return await http.post(action, data={**fields, "_csrf_token": csrf(html)})


async def login(http: httpx.AsyncClient, username: str) -> None:
    r = await post_form(http, "/login", "/login", {"username": username, "password": "demo12345"})
    assert r.status_code == 303 and r.headers["location"] == "/inbox", r.text


def task_ids(html: str, kind: str) -> list[str]:
    return re.findall(rf'action="/tasks/([^/"]+)/{kind}"', html)


async def test_resident_and_grid_worker_close_the_loop_in_the_pages(platform: Platform) -> None:
    resident = platform.http
    report = (await resident.get("/report")).text
    assert "我要上报" in report and 'lang="zh-CN"' in report  # Chinese first
    r = await resident.post("/report", data={
        "category": "SR-01", "description": "楼下垃圾堆积 <script>alert('x')</script>", "grid": "HS01-G1",
        "address": "城北路 8 号", "name": "王五", "phone": "13700000000", "_csrf_token": csrf(report),
    })
    assert r.status_code == 200, r.text
    receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]
    key = re.search(r'id="tracking-key">([0-9A-Z\-]{19})<', r.text).group(1)  # type: ignore[union-attr]
    assert f'href="/track/{receipt}?key={key.replace("-", "")}"' in r.text  # the link carries the key

    async with httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as worker:
        await login(worker, "wg_hs01_g1")
        inbox = (await worker.get("/inbox")).text
        assert "&lt;script&gt;" in inbox and "<script>alert" not in inbox  # escaped, shown as text
        claim = task_ids(inbox, "claim")
        assert claim, inbox
        token = csrf(inbox)
        r = await worker.post(f"/tasks/{claim[0]}/claim", data={"_csrf_token": token, "next": "/inbox"})
        assert r.status_code == 303 and "msg=msg.claimed" in r.headers["location"]
        inbox = (await worker.get("/inbox")).text
        r = await worker.post(f"/tasks/{task_ids(inbox, 'complete')[0]}/complete",
                              data={"_csrf_token": token, "result": "已清运", "next": "/inbox"})
        assert "msg=msg.completed" in r.headers["location"], r.headers["location"]
        assert not task_ids((await worker.get("/inbox")).text, "claim")  # the worker never verifies his own work
        async with httpx.AsyncClient(transport=resident._transport, base_url="http://testserver") as community:
            await login(community, "sq_hs01")  # the grid's work: its community verifies
            inbox = (await community.get("/inbox")).text
            verify = task_ids(inbox, "claim")[0]
            assert verify.endswith(".T2")
            token = csrf(inbox)
            await community.post(f"/tasks/{verify}/claim", data={"_csrf_token": token})
            r = await community.post(f"/tasks/{verify}/complete",
                                     data={"_csrf_token": token, "result": "已核实", "passed": "true"})
            assert "msg=msg.completed" in r.headers["location"]

        track = (await resident.get(f"/track/{receipt}")).text
        assert "请对处理结果进行评价" in track and 'name="tracking_key"' in track  # asked for the key
        r = await resident.post(f"/track/{receipt}/rating",
                                data={"_csrf_token": csrf(track), "rating": "satisfied", "comment": "谢谢"})
        assert r.status_code == 403 and "评价码不正确" in r.text  # the receipt code alone rates nothing
        r = await resident.post(f"/track/{receipt}/rating", data={
            "_csrf_token": csrf(track), "rating": "satisfied", "comment": "谢谢", "tracking_key": key.lower()})
        assert r.status_code == 303
        track = (await resident.get(r.headers["location"])).text
        assert "已结案" in track and "满意" in track and "王五" not in track and "wg_hs01_g1" not in track

        event_id = verify.rsplit(".", 1)[0]
        page = (await worker.get(f"/events/{event_id}")).text
        for stage in ("信息收集", "分流交办", "执行处置", "核查", "信息反馈", "结案"):
            assert stage in page
        assert "按清单类别 SR-01" in page and "2026.1" in page and "已结案" in page


async def test_form_without_csrf_token_is_refused(platform: Platform) -> None:
    await platform.http.get("/report")  # gets the CSRF cookie, but the post leaves the token out
    r = await platform.http.post("/report", data={"description": "no token", "category": "SR-01"})
    assert r.status_code == 403


async def test_other_grid_worker_gets_403_on_the_event_page(platform: Platform) -> None:
    created = await platform.report()
    await asyncio.sleep(0)
    async with httpx.AsyncClient(transport=platform.http._transport, base_url="http://testserver") as other:
        await login(other, "wg_st01_g1")
        r = await other.get(f"/events/{created['event_id']}")
        assert r.status_code == 403 and "该事件不在本单位的管辖范围内" in r.text
        html = (await other.get("/inbox")).text
        r = await other.post(f"/tasks/{created['event_id']}.T1/claim", data={"_csrf_token": csrf(html)})
        assert r.status_code == 403


async def test_wrong_password_and_language_switch(platform: Platform) -> None:
    r = await post_form(platform.http, "/login", "/login", {"username": "wg_hs01_g1", "password": "nope"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    r = await platform.http.get("/lang/en?next=/report")
    assert r.status_code in (302, 303) and r.headers["location"] == "/report"
    page = (await platform.http.get("/report")).text
    assert "Report a problem" in page and 'lang="en"' in page
    r = await platform.http.get("/lang/en?next=https://evil.example/")
    assert r.headers["location"] == "/"


async def test_unknown_receipt_code_is_a_clear_404(platform: Platform) -> None:
    r = await platform.http.get("/track/NOSUCHCODE")
    assert r.status_code == 404 and "未找到" in r.text
    r = await platform.http.get("/api/track/NOSUCHCODE")
    assert r.status_code == 404 and r.json()["detail"] == "no report with this receipt code"
