"""Every page in the visitor's language (issue 10, item 8).

Renders every page (every GET route that answers HTML, and the pages that POSTs answer with) for
each kind of user — anonymous, grid worker, community, street and department staff, a stationed
cadre, both supervisors, the administrator — in zh-CN and in English, over real data: events through
several states (closed after a rating, pending extension, returned and re-routed, escalated,
co-handled, voided, triage, a camera alarm, a law-enforcement case), error pages (401, 403, 404, 405)
and the administration pages, with a list check that finds problems and one with a diff.

What is checked is the visible text: the text outside ``<script>``/``<style>``, and the attribute
texts a user reads or hears (placeholder, title, aria-label, alt, the value of buttons). A page fails
when it shows a catalogue key raw (``login.failed``), and in zh-CN when it shows an English word that
is not on the allow-list of codes and names (unit codes, receipt codes, usernames, "Temporal", ...).
Text inside an element marked ``lang="en"`` (the API reference's operation summaries, which are the
API's own English documentation) or ``translate="no"`` (codes: a field's name in the list file, a
file name, the list's own keywords) is not held to Chinese; raw keys are looked for everywhere.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.reports import publish
from store import queries, webhooks
from tests.authz_matrix import PNG
from tests.platform import Platform, csrf, running_platform
from web.i18n import LANGUAGES, catalogue
from workflows.period_report import job_of, parse_period

# ------------------------------------------------------------------ what a user sees

#: Attributes whose text is read (or heard) by a user.
_READ_ATTRS = ("placeholder", "title", "aria-label", "alt")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Visible(HTMLParser):
    """Collects the visible text of a page: (text, marked English?) pieces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[tuple[str, bool]] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, inside lang="en")
        self._hidden = 0  # inside <script> or <style>

    def _english(self) -> bool:
        return bool(self._stack) and self._stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        english = self._english() or values.get("lang", "").startswith("en") or values.get("translate") == "no"
        if "lang" in values and not values["lang"].startswith("en") and values.get("translate") != "no":
            english = False
        for name in _READ_ATTRS:
            if values.get(name):
                self.pieces.append((values[name], english))
        if tag == "input" and values.get("type") in ("submit", "button", "reset") and values.get("value"):
            self.pieces.append((values["value"], english))
        if tag in ("script", "style"):
            self._hidden += 1
        if tag not in _VOID:
            self._stack.append((tag, english))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.pieces.append((data, self._english()))


def visible_text(html: str) -> list[tuple[str, bool]]:
    """The pieces of text a user sees on ``html``, each with whether it is marked English."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return parser.pieces


_KEYS = set(catalogue("zh-CN")) | set(catalogue("en"))
_PREFIXES = {k.split(".")[0] for k in _KEYS}
_KEYLIKE = re.compile(r"(?<![\w./@-])([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?![\w/@-]|\.\w)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_\-.:]*[A-Za-z0-9]|[A-Za-z]{2,}")

#: English words allowed on a Chinese page: names of things and formats, not sentences.
ALLOWED_WORDS = {
    "Temporal", "CSV", "XLSX", "JSON", "API", "OpenAPI", "English", "GPS", "ID", "SMS", "WeChat",
    "openapi.json", "openapi.yaml", "PNG", "JPEG", "WebP", "Ctrl",
}
#: A file's name, as uploaded (``list.json``).
_FILE_NAME = re.compile(r"[\w.-]+\.(json|csv|xlsx|png|jpe?g|webp)", re.IGNORECASE)


def _allowed(word: str, names: set[str]) -> bool:
    """Codes and names: anything with a digit (unit, receipt, event and category codes, versions),
    upper-case codes (CC-HS, D-ZF), usernames, and the allow-list."""
    if word in ALLOWED_WORDS or word in names or _FILE_NAME.fullmatch(word):
        return True
    if any(ch.isdigit() for ch in word):
        return True
    return word.replace("-", "").replace("_", "").isupper()


def problems_of(html: str, lang: str, names: set[str]) -> list[str]:
    """What is wrong with the visible text of a page in ``lang``."""
    found: list[str] = []
    for text, english in visible_text(html):
        for match in _KEYLIKE.finditer(text):
            key = match.group(1)
            if key in _KEYS or key.split(".")[0] in _PREFIXES:
                found.append(f"raw key {key!r} in {text.strip()[:80]!r}")
        if lang == "zh-CN" and not english:
            for word in _WORD.findall(text):
                if not _allowed(word, names):
                    found.append(f"English {word!r} in {text.strip()[:80]!r}")
    return found


def test_the_checker_finds_raw_keys_and_english() -> None:
    page = ('<html><head><title>标题</title><style>.a{}</style><script>var x = "login.failed";</script></head>'
            '<body><p>login.failed</p><p>Not Found</p><input placeholder="Search here">'
            '<input type="submit" value="Send"><img alt="photo 1"><p>网格 HS01-G1 · wg_hs01_g1 · CSV</p>'
            '<table lang="en"><tr><td>Read one event</td></tr></table><p title="打开">state.closed</p>'
            '<code translate="no">deadlines.handling</code></body></html>')
    found = problems_of(page, "zh-CN", {"wg_hs01_g1"})
    assert any("'login.failed'" in p for p in found) and any("'state.closed'" in p for p in found)
    assert {"'Not'", "'Found'", "'Search'", "'here'", "'Send'", "'photo'"} <= {p.split()[1] for p in found
                                                                             if p.startswith("English")}
    assert not any("HS01" in p or "wg_hs01" in p or "CSV" in p or "Read" in p or "var" in p for p in found)
    assert problems_of(page, "en", {"wg_hs01_g1"}) == [p for p in found if p.startswith("raw")]


# ------------------------------------------------------------------ the world

USERS = {
    "grid": "wg_hs01_g1", "community": "sq_hs01", "street_staff": "jd_hs", "department": "bm_zf",
    "cadre": "pz_zf_hs", "street": "zx_hs", "city": "zx_city", "admin": "admin",
}
ROLES = ("anon", *USERS)
#: Who works in each unit the world's tasks go to.
WORKER = {"HS01-G1": "wg_hs01_g1", "HS01-G2": "wg_hs01_g2", "HS01": "sq_hs01", "HS": "jd_hs",
          "CC-HS": "zx_hs", "D-ZF": "bm_zf", "CC-JS": "zx_city", "D-GT": "bm_gt"}


@dataclass
class World:
    """The platform with events in many states, and a logged-in client per role and language."""

    platform: Platform
    events: dict[str, str] = field(default_factory=dict)  # name → event id
    receipts: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)  # name → tracking key
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)  # username → bearer headers
    names: set[str] = field(default_factory=set)  # usernames (allowed on Chinese pages)
    webhook: int = 0  # a webhook subscription with deliveries (one of them a dead letter)
    processes: dict[str, str] = field(default_factory=dict)  # name → process instance id

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.platform.http._transport, base_url="http://testserver")

    async def bearer(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            password = "admin12345" if username == "admin" else "demo12345"  # noqa: S105
            self.tokens[username] = await self.platform.login(username, password)
        return self.tokens[username]

    async def task(self, name: str, kind: str, status: tuple[str, ...] = ("open", "claimed")) -> Any:
        event_id = self.events[name]
        for _ in range(150):
            for task in reversed(await queries.event_tasks(self.platform.db, event_id)):
                if task.kind == kind and task.status in status:
                    return task
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {kind} task of {name}")

    async def act(self, name: str, kind: str, action: str, body: dict[str, Any] | None = None,
                  username: str | None = None, expect: int = 200) -> Any:
        """Do ``action`` on the open ``kind`` task of event ``name`` as a user of its unit."""
        task = await self.task(name, kind)
        who = await self.bearer(username or WORKER[task.unit])
        r = await self.platform.http.post(f"/api/tasks/{task.task_id}/{action}", headers=who, json=body)
        assert r.status_code == expect, (name, action, r.text)
        return task

    async def supervise(self, name: str, action: str, username: str = "zx_hs", **body: Any) -> None:
        r = await self.platform.http.post(f"/api/events/{self.events[name]}/supervise",
                                          headers=await self.bearer(username), json={"action": action, **body})
        assert r.status_code == 200, (name, action, r.text)

    async def state(self, name: str, *states: str) -> None:
        for _ in range(150):
            event = await queries.get_event(self.platform.db, self.events[name])
            if event is not None and event.state in states:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} never reached {states}")

    async def report(self, name: str, **body: Any) -> None:
        report = {"category": "SR-01", "description": "语言测试:一般事件", "location": {"grid": "HS01-G1"},
                  "reporter": {"name": "张三", "phone": "13800000000"}, "source": "portal", **body}
        report = {k: v for k, v in report.items() if v is not None}
        r = await self.platform.http.post("/api/events", json=report)
        assert r.status_code == 201, r.text
        self.events[name], self.receipts[name] = r.json()["event_id"], r.json()["receipt_code"]
        self.keys[name] = r.json()["tracking_key"]


async def _build(w: World) -> None:
    p = w.platform
    resident = w.client()
    # Reported through the page with a photo; handled, verified, rated satisfied: closed.
    html = (await resident.get("/report")).text
    r = await resident.post("/report", data={"category": "SR-01", "description": "语言测试:门口垃圾",
                                             "grid": "HS01-G1", "name": "李四", "phone": "13900000000",
                                             "_csrf_token": csrf(html)},
                            files={"photos": ("bin.png", PNG, "image/png")})
    assert r.status_code == 200, r.text
    receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]
    key = re.search(r"key=([0-9A-Za-z]+)", r.text).group(1)  # type: ignore[union-attr]
    await resident.aclose()
    for _ in range(100):
        event = await queries.event_by_receipt(p.db, receipt)
        if event is not None:
            break
        await asyncio.sleep(0.1)
    assert event is not None
    w.events["closed"], w.receipts["closed"], w.keys["closed"] = event.event_id, receipt, key
    await w.act("closed", "handle", "claim")
    await w.act("closed", "handle", "complete", {"result": "已清理"})
    # The grid handled it: its community verifies (nobody verifies their own work).
    await w.act("closed", "verify", "claim")
    await w.act("closed", "verify", "complete", {"result": "现场已核实", "passed": True})
    await w.state("closed", "feedback")
    r = await p.http.post(f"/api/track/{receipt}/rating",
                          json={"rating": "satisfied", "comment": "很快", "tracking_key": key})
    assert r.status_code == 200, r.text

    # Awaiting a rating (feedback), so the track page shows its form.
    await w.report("feedback", description="语言测试:待评价")
    await w.act("feedback", "handle", "claim")
    await w.act("feedback", "handle", "complete", {"result": "已处理"})
    await w.act("feedback", "verify", "claim")
    await w.act("feedback", "verify", "complete", {"result": "核实", "passed": True})
    await w.state("feedback", "feedback")

    # A hotline case with a pending extension request.
    await w.report("extension", source="hotline", external_id="12345-LANG-1")
    await w.act("extension", "handle", "claim")
    await w.act("extension", "handle", "extension", {"reason": "需要协调物业", "hours": 8})

    # Returned by the grid, approved by the street supervisor, re-routed.
    await w.report("returned", description="语言测试:不属于本网格")
    await w.act("returned", "handle", "claim")
    await w.act("returned", "handle", "return", {"reason": "属于相邻网格"})
    await w.supervise("returned", "approve_return", reason="同意")

    # Escalated by the grid worker to the community.
    await w.report("escalated", description="语言测试:需要提级")
    await w.act("escalated", "handle", "claim")
    await w.act("escalated", "handle", "escalate", {"reason": "超出网格能力"})
    await w.state("escalated", "dispatched")

    # Co-handling asked of a department.
    await w.report("cohandling", description="语言测试:需要协同")
    await w.act("cohandling", "handle", "claim")
    await w.act("cohandling", "handle", "cohandling", {"reason": "需要执法配合", "units": ["D-ZF"]})

    # Voided by the supervisor; a paused case.
    await w.report("voided", description="语言测试:作废")
    await w.supervise("voided", "void", reason="重复上报")
    await w.report("paused", description="语言测试:暂停")
    await w.supervise("paused", "pause", reason="等待天气")

    # No category: triage at the street's command centre. A camera alarm. A law-enforcement case
    # (the street's stationed cadre), a severe one and a repeated one.
    await w.report("triage", category=None, description="语言测试:不知道是什么问题")
    # (Other grids, so that the repeat rule, which comes first, does not decide them.)
    await w.report("camera", source="camera", description="语言测试:摄像头告警", location={"grid": "HS01-G2"})
    await w.report("enforcement", needs_enforcement=True, description="语言测试:违章", location={"grid": "HS01-G3"})
    await w.report("department", category="SG-07", description="语言测试:部门", location={"grid": "HS01-G4"})
    await w.report("repeat", description="语言测试:再次反映")
    # A duplicate merged into it (its page: the link and the undo; the primary's: the count), and two
    # alarms of one camera (one event, two occurrences).
    await w.report("merged", description="语言测试:重复上报")
    r = await p.http.post(f"/api/events/{w.events['merged']}/merge", headers=await w.bearer("zx_hs"),
                          json={"primary": w.receipts["repeat"], "reason": "同一问题"})
    assert r.status_code == 200, r.text
    alarm = {"source": "camera", "camera_id": "CAM-LANG", "description": "语言测试:摄像头重复告警",
             "location": {"grid": "HS01-G2"}}
    await w.report("alarm", **alarm, external_id="CAM-LANG:1")
    r = await p.http.post("/api/events", json={"category": "SR-01", **alarm, "external_id": "CAM-LANG:2"})
    assert r.status_code == 200 and r.json()["joined"], r.text
    await w.state("cohandling", "handling", "dispatched")
    await _build_processes(w)


async def _build_processes(w: World) -> None:
    """A proxy service a resident requested on the portal, handled up to their confirmation (with a
    photo of the office's receipt), and a volunteer activity full with a waiting list."""
    from store import models
    from tests.process_scenarios import COMMUNITY, GRID_WORKER
    from web.process_pages import act_on
    from workflows.process_instance import ProcessAction

    resident = w.client()
    form = (await resident.get("/p/new/proxy_service")).text
    r = await resident.post("/p/new/proxy_service", data={"name": "王阿姨", "grid": "HS01-G1", "f_item": "PS-02",
                                                          "f_phone": "13800000000", "f_note": "行动不便",
                                                          "_csrf_token": csrf(form)})
    assert r.status_code == 303, r.text[:300]
    proxy, w.keys["proxy"] = re.match(r"/p/([^?]+)\?key=([^&]+)", r.headers["location"]).groups()  # type: ignore[union-attr]
    await resident.aclose()
    w.processes["proxy"] = proxy
    async def row(instance_id: str, state: str) -> models.ProcessInstanceRow:
        for _ in range(150):
            async with w.platform.db.session() as session:
                found = await session.get(models.ProcessInstanceRow, instance_id)
            if found is not None and found.state == state:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{instance_id} never reached {state}")

    from web.context import AppContext

    ctx = AppContext(settings=w.platform.settings, db=w.platform.db)
    ctx.set_client(w.platform.client)
    steps = [("accept", {}), ("collected", {"materials": ["身份证", "居住登记凭证", "近期免冠照片"]}),
             ("handled", {"receipt_no": "JZ-2026-001"}), ("delivered", {})]
    for outcome, values in steps:
        task = (await row(proxy, {"accept": "requested", "collected": "collecting", "handled": "handling",
                                  "delivered": "delivering"}[outcome])).data["tasks"][-1]["task_id"]
        await act_on(ctx, proxy, ProcessAction("claim", GRID_WORKER, task))  # each task its taker's claim first
        await act_on(ctx, proxy, ProcessAction("complete", GRID_WORKER, task, outcome, values))
    await row(proxy, "confirming")

    staff = w.client()
    page = (await staff.get("/login")).text
    await staff.post("/login", data={"username": "sq_hs01", "password": "demo12345", "_csrf_token": csrf(page)})
    form = (await staff.get("/processes/new/volunteer_activity")).text
    r = await staff.post("/processes/new/volunteer_activity", data={
        "name": "城北社区志愿服务队", "grid": "HS01-G1", "f_team": "HS01", "f_title": "敬老院陪伴",
        "f_starts_at": "2026-12-12T09:00", "f_place": "城北敬老院", "f_capacity": "1", "_csrf_token": csrf(form)})
    assert r.status_code == 303, r.text[:300]
    activity = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
    await staff.aclose()
    w.processes["activity"] = activity
    sign_up = (await row(activity, "open")).data["tasks"][-1]["task_id"]
    for person in (GRID_WORKER, COMMUNITY):  # one place: the second on the waiting list
        await act_on(ctx, activity, ProcessAction("claim", person, sign_up))


@pytest.fixture(scope="module")
async def world(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with running_platform(dev_env.client, Path(tmp_path_factory.mktemp("lang"))) as p:
        p.settings.track_requests_per_window = 10_000  # the test reads /track often from one address
        p.settings.process_starts_per_hour = 10_000  # and posts the portal's process forms
        w = World(p)
        # Usernames, and the one the test types into a URL (a 404 quotes it back).
        w.names = {u.username for u in await queries.users(p.db)} | {"nobody"}
        # A subscription whose receiver cannot be reached (its deliveries fail: last errors to show).
        sub = (await webhooks.create(p.db, integration="12345热线", url="https://hooks.example.invalid/wulian",
                                     kinds=webhooks.CHANGE_KINDS, actor="admin", server_secret=p.settings.secret(),
                                     allow_private=False)).subscription
        assert sub.id is not None
        w.webhook = sub.id
        await _build(w)
        first = (await webhooks.deliveries(p.db, sub.id))[-1]
        assert first.id is not None
        await webhooks.record(p.db, first.id, status="dead", http_status=None, latency_ms=None, error="given up")
        # The reports of October and November (the second recomputed by the city supervisor, with a reason).
        await publish(p.db, job_of(parse_period("2026-10"), "lang-report-10"))
        await publish(p.db, job_of(parse_period("2026-11"), "lang-report-11"))
        await publish(p.db, job_of(parse_period("2026-11"), "lang-report-11b", recompute=True, actor="zx_city",
                                   reason="补录事件后重新计算"))
        yield w


# ------------------------------------------------------------------ the pages


async def _session(w: World, role: str, lang: str) -> httpx.AsyncClient:
    http = w.client()
    await http.get(f"/lang/{lang}")
    if role != "anon":
        password = "admin12345" if role == "admin" else "demo12345"  # noqa: S105
        page = (await http.get("/login")).text
        r = await http.post("/login", data={"username": USERS[role], "password": password,
                                            "_csrf_token": csrf(page)})
        assert r.status_code == 303, (role, r.text[:300])
    return http


def _urls(w: World) -> list[str]:
    """Every GET page, with the world's ids (pages out of a role's scope give their error page)."""
    closed, feedback = w.receipts["closed"], w.receipts["feedback"]
    urls = ["/login", "/report", "/track", f"/track/{closed}", f"/track/{closed}?key={w.keys['closed']}",
            f"/track/{feedback}?key={w.keys['feedback']}", f"/track/{feedback}", "/track/NOPE000000",
            f"/track/{closed}?key=wrongkey", "/schema",
            "/inbox", "/inbox?view=mine", "/inbox?view=done", "/inbox?view=open", "/inbox?view=overdue",
            "/inbox?sort=priority&source=hotline", "/inbox?created_from=nonsense",
            "/console", "/console/lockouts", "/admin/rules", "/admin/org", "/admin/org/units/HS01-G1",
            "/admin/org/units/NOPE", "/admin/users", "/admin/users/wg_hs01_g1", "/admin/users/nobody",
            "/admin/users?role=dispatched_cadre", "/admin/keys", "/admin/keys?msg=admin.keys.msg.revoked",
            "/admin/keys?msg=any+text", "/events/EV-NOPE", "/no/such/page", "/tasks/x/claim",
            "/search", "/search?q=垃圾", "/search?state=nope&created_from=nonsense", "/search?overdue=1&rework=1",
            "/search/export.csv?state=nope", "/stats", "/stats?unit=HS", "/stats?from=nonsense&to=2026-01-01",
            "/stats?unit=NOPE", "/stats/drill?counter=events", "/stats/drill?unit=HS&counter=tasks_done",
            "/stats/drill?counter=nope", "/assessment", "/assessment?period=nonsense", "/assessment?period=2026",
            "/assessment/inspections", "/assessment/cadres", "/admin/schemes", "/admin/schemes?error=any+text",
            "/dashboard", "/dashboard?unit=HS01-G1", "/dashboard?unit=D-ZF",
            "/dashboard?from=nonsense", "/dashboard?unit=NOPE", "/dashboard/screen", "/dashboard/screen?unit=HS01",
            "/reports", "/reports/2026-11", "/reports/2026-11?level=grids&by=rework_rate",
            "/reports/2026-11?revision=1", "/reports/2026-09", "/reports/2026-11?level=nope",
            "/reports/2026-11/export.csv?table=nope", "/reports/2026-11?msg=reports.msg.recomputed",
            "/admin/webhooks", f"/admin/webhooks/{w.webhook}", f"/admin/webhooks/{w.webhook}?status=dead",
            f"/admin/webhooks/{w.webhook}?msg=webhooks.msg.replayed", "/admin/webhooks/999"]
    urls += [f"/events/{event_id}" for event_id in w.events.values()]
    proxy, activity = w.processes["proxy"], w.processes["activity"]
    urls += ["/processes", "/processes?kind=proxy_service", "/processes?kind=nope&msg=any+text",
             "/processes/new/proxy_service", "/processes/new/volunteer_activity", "/processes/new/nope",
             f"/processes/{proxy}", f"/processes/{proxy}?msg=process.msg.started&key=wrong", f"/processes/{activity}",
             "/processes/PI-NOPE", "/p/new/proxy_service", "/p/new/micro_wish", "/p/new/volunteer_activity",
             f"/p/{proxy}?key={w.keys['proxy']}", f"/p/{proxy}?key={w.keys['proxy']}&msg=process.msg.started",
             f"/p/{proxy}?key=wrong", "/admin/processes", "/admin/processes?msg=any+text"]
    urls += [f"/events/{w.events['closed']}?error=任何文字&msg=msg.claimed", "/inbox?msg=msg.nope",
             "/inbox?msg=nope.nope", "/admin/rules?error=any+text", "/login?error=login.wait"]
    return urls


async def _post_pages(w: World, http: httpx.AsyncClient, role: str) -> list[tuple[str, str]]:
    """Pages that POSTs answer with: a refused login, a report with problems, a refused action
    (followed back to the page), the administrator's list checks with problems and with a diff."""
    pages: list[tuple[str, str]] = []
    token = csrf((await http.get("/report")).text)
    r = await http.post("/report", data={"category": "SR-01", "description": " ", "phone": "123",
                                         "grid": "HS01-G1", "_csrf_token": token})
    pages.append(("POST /report (problems)", r.text))
    r = await http.post("/report", data={"category": "SR-01", "description": "语言测试:照片", "grid": "HS01-G1",
                                         "_csrf_token": token}, files={"photos": ("x.png", b"not a png", "image/png")})
    pages.append(("POST /report (bad photo)", r.text))
    form = (await http.get("/p/new/proxy_service")).text
    r = await http.post("/p/new/proxy_service", data={"name": "", "grid": "HS01-G1", "f_item": "NOPE",
                                                      "f_phone": "123", "_csrf_token": csrf(form)})
    assert r.status_code == 400, r.text[:300]
    pages.append(("POST /p/new/proxy_service (problems)", r.text))
    r = await http.post("/p/new/proxy_service", data={"name": "王阿姨", "grid": "HS01-G1", "f_item": "NOPE",
                                                      "f_phone": "123", "_csrf_token": csrf(form)})
    assert r.status_code == 400, r.text[:300]
    pages.append(("POST /p/new/proxy_service (the form's problems)", r.text))
    proxy, key = w.processes["proxy"], w.keys["proxy"]
    page = (await http.get(f"/p/{proxy}?key={key}")).text
    r = await http.post(f"/p/{proxy}/act", data={"key": key, "action": "complete", "outcome": "confirm",
                                                 "f_rating": "nope", "_csrf_token": csrf(page)})
    assert r.status_code == 409, r.text[:300]
    pages.append(("refused confirmation", r.text))
    if role == "anon":
        r = await http.post("/login", data={"username": "wg_hs01_g1", "password": "wrong-password-1",
                                            "_csrf_token": token})
        pages.append(("POST /login (failed)", r.text))
        return pages
    page = await http.get(f"/processes/{proxy}")
    if page.status_code == 200:
        r = await http.post(f"/processes/{proxy}/act", data={"action": "claim", "task_id": f"{proxy}.T9",
                                                             "_csrf_token": csrf(page.text)})
        assert r.status_code == 409, r.text[:300]
        pages.append(("refused process action", r.text))
        form = (await http.get("/processes/new/proxy_service")).text
        r = await http.post("/processes/new/proxy_service", data={"name": "王阿姨", "grid": "HS01-G1",
                                                                  "f_item": "PS-01", "_csrf_token": csrf(form)})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused process start", r.text))
    event_id = w.events["extension"]
    page = await http.get(f"/events/{event_id}")
    if page.status_code == 200:
        task = await w.task("extension", "handle")
        r = await http.post(f"/tasks/{task.task_id}/claim", data={"next": f"/events/{event_id}",
                                                                   "_csrf_token": csrf(page.text)})
        if r.status_code == 303:
            pages.append(("refused claim", (await http.get(r.headers["location"])).text))
        else:
            pages.append(("refused claim", r.text))
        if role in ("street", "city", "admin"):
            r = await http.post(f"/events/{event_id}/supervise", data={"action": "change_deadline", "hours": "x",
                                                                        "_csrf_token": csrf(page.text)})
            pages.append(("refused override", (await http.get(r.headers["location"])).text
                          if r.status_code == 303 else r.text))
    if role == "street":  # a lift form that names no kind of lockout: the form's problem, by its field
        lockouts = (await http.get("/console/lockouts")).text
        r = await http.post("/console/lockouts/lift", data={"kind": "nope", "_csrf_token": csrf(lockouts)})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused lift", r.text))
    if role == "community":  # a photo that is no photo, with a completion: refused before the workflow is asked
        task = await w.task("extension", "handle")
        r = await http.post(f"/tasks/{task.task_id}/complete", data={"next": f"/events/{event_id}", "result": "x",
                                                                      "_csrf_token": csrf(page.text)},
                            files={"photos": ("x.png", b"not a png", "image/png")})
        assert r.status_code == 303, r.text[:300]
        pages.append(("refused photo", (await http.get(r.headers["location"])).text))
    if role in ("city", "admin"):  # a recompute refused for its form: the problem in the page's language
        token = csrf((await http.get("/reports")).text)
        for form in ({"period": "2026-13", "reason": "x"}, {"period": "2026-11", "reason": ""}):
            r = await http.post("/reports/recompute", data={**form, "_csrf_token": token})
            assert r.status_code == 400, r.text[:300]
            pages.append((f"refused recompute {form}", r.text))
    if role == "street":  # not the street's to recompute
        r = await http.post("/reports/recompute", data={"period": "2026-11", "reason": "x",
                                                        "_csrf_token": csrf((await http.get("/reports")).text)})
        assert r.status_code == 403, r.text[:300]
        pages.append(("refused recompute (street)", r.text))
    if role == "admin":
        rules = (await http.get("/admin/rules")).text
        bad = (b'{"version": "bad.1", "groups": [{"code": "SR", "name_zh": "x", "name_en": "x"}], '
               b'"categories": [{"code": "SR-01", "name_zh": "", "group": "NO", "tier": "planet", '
               b'"department": "NOPE", "deadlines": {"dispatch": 0}, "severity_scale": [], "keywords": [" "]}]}')
        r = await http.post("/admin/rules/upload", data={"_csrf_token": csrf(rules)},
                            files={"file": ("bad.json", bad, "application/json")})
        pages.append(("list check with problems", r.text))
        r = await http.post("/admin/rules/upload", data={"_csrf_token": csrf(rules)},
                            files={"file": ("broken.json", b"{not json", "application/json")})
        pages.append(("list check of broken JSON", r.text))
        r = await http.post("/admin/rules/upload", data={"_csrf_token": csrf(rules)},
                            files={"file": ("changed.json", _changed_list(), "application/json")})
        assert r.status_code == 200, r.text[:500]
        pages.append(("list check with a diff", r.text))
        versions = [v.version for v in await _versions(w)]
        pages.append(("diff", (await http.get(f"/admin/rules/diff?old={versions[-1]}&new={versions[0]}")).text))
        r = await http.post("/admin/users", data={"username": "", "_csrf_token": csrf(rules)})
        pages.append(("refused new user", r.text))
        r = await http.post("/admin/rules/NOPE/activate", data={"_csrf_token": csrf(rules)})
        pages.append(("refused activation", (await http.get(r.headers["location"])).text))
        pages += await _scheme_pages(http)
        pages += await _definition_pages(http)
        hooks = csrf((await http.get("/admin/webhooks")).text)
        r = await http.post("/admin/webhooks", data={"integration": "区级系统", "url": "http://169.254.169.254/",
                                                     "kinds": "closed", "_csrf_token": hooks})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused webhook", r.text))
        r = await http.post("/admin/webhooks", data={"integration": "区级系统", "url": "https://hooks.example.invalid/2",
                                                     "kinds": ["claimed", "closed"], "_csrf_token": hooks})
        assert r.status_code == 200 and "whsec_" in r.text, r.text[:300]
        pages.append(("webhook created (its secret shown once)", r.text))
        keys = (await http.get("/admin/keys")).text
        r = await http.post("/admin/keys", data={"name": f"lang-{uuid.uuid4().hex[:8]}", "scope": ["report", "read"],
                                                 "_csrf_token": csrf(keys)})
        assert r.status_code == 200 and "the-key" in r.text, r.text[:300]
        pages.append(("a new API key, shown once", r.text))
        r = await http.post("/admin/keys", data={"name": "bad name!", "_csrf_token": csrf(keys)})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused API key", r.text))
    if role in ("street", "city"):  # an inspection entry and a cadre rating with problems: the forms back
        page = (await http.get("/assessment/inspections")).text
        r = await http.post("/assessment/inspections", data={"grid": "HS01-G1", "duty": "NOPE", "finding": "",
                                                             "score": "x", "day": "2999-01-01",
                                                             "_csrf_token": csrf(page)})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused inspection", r.text))
        r = await http.post("/assessment/cadres", data={"username": "pz_zf_hs", "side": "street", "score": "200",
                                                        "_csrf_token": csrf(page)})
        assert r.status_code == 400, r.text[:300]
        pages.append(("refused rating", r.text))
    return pages


_SCHEMES = 0


async def _scheme_pages(http: httpx.AsyncClient) -> list[tuple[str, str]]:
    """The scheme checks: one with problems of many kinds, one that passes."""
    import json

    from assessment.schemes import DEFAULT_SCHEME_PATH

    global _SCHEMES
    _SCHEMES += 1
    token = csrf((await http.get("/admin/schemes")).text)
    raw = json.loads(DEFAULT_SCHEME_PATH.read_text(encoding="utf-8"))
    raw["version"] = f"lang-scheme.{_SCHEMES}"
    good = json.dumps(raw, ensure_ascii=False).encode()
    raw["composite"]["terms"][0]["weight"] = 25
    raw["composite"]["terms"][2]["invert"] = False
    raw["grid"]["duties"][3]["standard"] = "S99"
    raw["grid"]["duties"][6]["measure"]["indicator"] = "NOPE1"
    raw["grid"]["rules"][0]["cap"] = 10
    raw["fortress"]["bands"][0]["grade"] = "6"
    raw["cadres"]["excellent_share"] = 0
    raw["grid"]["duties"][9]["measure"]["kind"] = "nope"  # literal: the allowed codes shown as code
    raw["pioneer"]["parts"][0]["source"] = "composite"  # not a part of this index
    raw["grid"]["duties"][0]["measure"]["source"] = "pigeon"  # an unknown source
    raw["extra"] = 1
    pages = []
    r = await http.post("/admin/schemes/upload", data={"_csrf_token": token},
                        files={"file": ("bad.json", json.dumps(raw).encode(), "application/json")})
    assert r.status_code == 400, r.text[:300]
    pages.append(("scheme check with problems", r.text))
    r = await http.post("/admin/schemes/upload", data={"_csrf_token": token},
                        files={"file": ("broken.json", b"{not json", "application/json")})
    pages.append(("scheme check of broken JSON", r.text))
    r = await http.post("/admin/schemes/upload", data={"_csrf_token": token},
                        files={"file": ("good.json", good, "application/json")})
    assert r.status_code == 200, r.text[:300]
    pages.append(("scheme check passed", r.text))
    return pages


async def _definition_pages(http: httpx.AsyncClient) -> list[tuple[str, str]]:
    """The process definition checks: one with problems of many kinds, broken JSON, one that passes."""
    import json

    raw = json.loads((Path(__file__).parent / "data" / "elderly_visit.json").read_text(encoding="utf-8"))
    token = csrf((await http.get("/admin/processes")).text)
    pages = []
    good = json.dumps(raw, ensure_ascii=False).encode()
    del raw["states"][0]["task"]["taker"]
    raw["transitions"][0]["dest"] = "nirvana"
    raw["states"].append({"name": "orphan", "label_zh": "孤立", "final": True})
    raw["states"][1]["task"] = {"kind": "x", "title_zh": "x", "taker": {"place": "moon"}}
    for name, content in (("bad.json", json.dumps(raw).encode()), ("broken.json", b"{not json"),
                          ("good.json", good)):
        r = await http.post("/admin/processes/upload", data={"_csrf_token": token},
                            files={"file": (name, content, "application/json")})
        assert r.status_code == (200 if name == "good.json" else 400), r.text[:300]
        pages.append((f"definition check {name}", r.text))
    raw = json.loads(good)
    del raw["states"][0]["task"]["taker"]
    raw["transitions"][0]["dest"] = "nirvana"
    raw["states"].append({"name": "orphan", "label_zh": "孤立", "final": True})
    r = await http.post("/admin/processes/upload", data={"_csrf_token": token},
                        files={"file": ("graph.json", json.dumps(raw).encode(), "application/json")})
    assert r.status_code == 400, r.text[:300]
    pages.append(("definition check with graph problems", r.text))
    return pages


async def _versions(w: World) -> list[Any]:
    from store import rule_lists

    return list(await rule_lists.list_versions(w.platform.db))


_CHANGED = 0


def _changed_list() -> bytes:
    """The shipped list as a new version with changes of every kind (tier, deadlines, flags, lists,
    a removed category, a policy)."""
    import json

    from rules.responsibility_list import DEFAULT_LIST_PATH

    global _CHANGED
    _CHANGED += 1
    raw = json.loads(DEFAULT_LIST_PATH.read_text(encoding="utf-8"))
    raw["version"] = f"lang-test.{_CHANGED}"
    first, second = raw["categories"][0], raw["categories"][1]
    first["tier"] = "community"
    first["deadlines"]["handling"] += 4
    first["law_enforcement"] = not first.get("law_enforcement", False)
    second["keywords"] = [*second["keywords"], "新词"]
    del raw["categories"][2]
    raw.setdefault("policies", {})["repeat_threshold"] = 3
    return json.dumps(raw, ensure_ascii=False).encode()


def _dump(directory: Path, prefix: str, pages: list[tuple[str, str]]) -> None:
    for i, (name, html) in enumerate(pages):
        text = "\n".join(t.strip() for t, _ in visible_text(html))
        (directory / f"{prefix}-{i:02d}.txt").write_text(f"{name}\n{text}", encoding="utf-8")


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize("role", ROLES)
async def test_every_page_speaks_the_visitors_language(world: World, role: str, lang: str) -> None:
    http = await _session(world, role, lang)
    try:
        pages: list[tuple[str, str]] = []
        for url in _urls(world):
            r = await http.get(url)
            if r.headers.get("content-type", "").startswith("text/html"):
                pages.append((f"GET {url} ({r.status_code})", r.text))
        pages += await _post_pages(world, http, role)
    finally:
        await http.aclose()
    assert len(pages) > (10 if role == "anon" else 25)
    if dump := os.environ.get("WULIAN_DUMP_PAGES"):  # to look at them: a directory to write them into
        _dump(Path(dump), f"{role}-{lang}", pages)
    found = {name: problems for name, html in pages if (problems := problems_of(html, lang, world.names))}
    report = "\n".join(f"{name}:\n  " + "\n  ".join(sorted(set(problems))) for name, problems in found.items())
    assert not found, f"{role} in {lang}:\n{report}"


def test_every_html_page_route_is_rendered() -> None:
    """Every GET route that answers HTML is among the rendered URLs (a new page must be added here)."""
    from store.db import Database
    from web.app import create_app
    from web.context import AppContext
    from wulian.settings import Settings

    settings = Settings(data_dir=Path("/tmp"), secret_key="x" * 40)  # noqa: S108
    app = create_app(settings, AppContext(settings=settings, db=Database("sqlite+aiosqlite://")))
    # /schema/...: the documents for tools; /open311: GeoReport v2, JSON and XML for other systems
    not_pages = ("/api", "/static", "/schema/", "/healthz", "/readyz", "/metrics", "/open311/")
    skipped = {"/", "/lang/{lang:str}", "/events/{event_id:str}/timeline.csv", "/photos/{photo_id:str}",
               "/track/{code:str}/photos/{photo_id:str}", "/track/{code:str}/public/{photo_id:str}",
               "/search/export.xlsx",
               "/reports/{period:str}/export.xlsx"}  # files (a refused one: .csv)
    routes = {r.path for r in app.routes if "GET" in getattr(r, "methods", ())}
    covered = {"/login", "/report", "/track", "/track/{code:str}", "/schema", "/inbox", "/console",
               "/console/lockouts", "/admin/rules", "/admin/org", "/admin/org/units/{code:str}", "/admin/users",
               "/admin/users/{username:str}", "/events/{event_id:str}", "/admin/rules/diff", "/search",
               "/search/export.csv", "/stats", "/stats/drill", "/assessment", "/assessment/inspections",
               "/assessment/cadres", "/admin/schemes", "/dashboard", "/dashboard/screen",
               "/reports", "/reports/{period:str}", "/reports/{period:str}/export.csv", "/admin/keys",
               "/admin/webhooks", "/admin/webhooks/{subscription_id:int}", "/processes", "/processes/new/{kind:str}",
               "/processes/{instance_id:str}", "/p/new/{kind:str}", "/p/{instance_id:str}", "/admin/processes"}
    missing = {r for r in routes if not r.startswith(not_pages) and r not in skipped | covered}
    assert not missing, f"pages the language test does not render: {sorted(missing)}"


# ------------------------------------------------------------------ the parts, one by one


def _chinese_only(text: str) -> list[str]:
    """English words in a text meant for a Chinese page (as the page check finds them)."""
    return problems_of(f"<p>{text}</p>", "zh-CN", set())


def test_every_reason_has_a_code_its_english_text_and_both_translations() -> None:
    from rules import reasons
    from web.labels import reason_text

    samples = {"category": "SR-01", "name": "暴露垃圾", "tier": "street", "from_tier": "grid", "department": "ZF",
               "street": "HS", "level": "重大", "steps": 2, "repeat": 3, "days": 7, "returned": 2,
               "units": "HS01-G1"}
    for code, template in reasons.TEMPLATES.items():
        fields = reasons.reason(code, **{k: v for k, v in samples.items() if "{" + k + "}" in template})
        assert fields["reason_code"] == code and fields["reason"] == template.format(**fields["reason_params"])
        parsed = reasons.parse(fields["reason"])  # old events and timeline notes have only the text
        assert parsed is not None and parsed[0] == code, (code, fields["reason"])
        zh, en = reason_text("zh-CN", fields), reason_text("en", fields)
        assert not _chinese_only(zh) and zh != fields["reason"] and en, (code, zh)
        assert reason_text("zh-CN", {"reason": fields["reason"]}) == zh  # from the text alone
    # A reason nobody can read back (a supervisor's own note) stays as written.
    assert reason_text("zh-CN", {"reason": "按现场情况交社区"}) == "按现场情况交社区"


def test_the_engine_gives_every_decision_a_reason_code() -> None:
    from rules.engine import RoutingEngine
    from rules.reasons import TEMPLATES
    from rules.responsibility_list import load

    engine = RoutingEngine(load(), city_centre="CC-JS")  # the demo city's centre, as test data
    try:
        place = {"grid": "HS01-G1", "community": "HS01", "street": "HS"}
        cases = {
            "category": {"category": "SR-01", **place}, "repeat": {"category": "SR-01", "repeat": 5, **place},
            "escalated": {"category": "SR-01", "escalated": 1, **place},
            "enforcement": {"category": "SR-01", "needs_enforcement": True, **place},
            "camera": {"category": "SR-01", "source": "camera", **place},
            "returned": {"category": "SR-01", "returned": 5, **place},
            "unknown_category": {"category": "NOPE-1", **place}, "no_category": {**place},
            "no_location": {"category": "SR-01"},
        }
        for code, facts in cases.items():
            decision = engine.decide(dict(facts))
            assert decision["reason_code"] == code, (code, decision["rule"], decision["reason"])
            assert decision["reason"] == TEMPLATES[code].format(**decision["reason_params"])
    finally:
        engine.close()


def test_machine_notes_of_the_workflow_are_translated() -> None:
    """The notes the workflow writes in English for timers and co-handling, and its warnings: each
    text is still written there (so the patterns stay true), and each reads back in Chinese."""
    from web.labels import note_text, warning_note

    source = Path("workflows/event_core.py").read_text(encoding="utf-8")
    for written in ('f"{task.task_id} overdue (yellow)"', 'f"overdue: {task.unit} → {target}"',
                    'f"{task.task_id} claimed"', 'f"{task.task_id} done: {cmd.result}"',
                    'f"{pct}% of the time used"', '"deadline passed: urging notice (督办)"',
                    'f"escalated to {target} (red)"', 'f"escalated to {target} by {actor.username}"',
                    'f"{cmd.rating} {cmd.comment}"'):
        assert written in source, written
    notes = [("urge", "EV-1.T1 overdue (yellow)"), ("escalate_overdue", "overdue: HS01-G1 → HS01"),
             ("cohandle", "EV-1.T3 claimed"), ("cohandle", "EV-1.T3 done: 已配合"), ("rate", "satisfied 很快"),
             ("rework", "dissatisfied 没修好"), ("rate", "basically_satisfied")]
    for action, note in notes:
        shown = note_text("zh-CN", action, note)
        assert shown != note and not _chinese_only(shown), (action, shown)
    for note in ("50% of the time used", "deadline passed: urging notice (督办)", "escalated to HS01 (red)",
                 "escalated to HS (red)", "escalated to CC-HS by zx_hs"):
        assert not _chinese_only(warning_note("zh-CN", note).replace("zx_hs", "")), note
    assert note_text("zh-CN", "complete", "people write what they like") == "people write what they like"


def test_category_names_in_english_for_every_category() -> None:
    from rules.responsibility_list import load
    from web.labels import category_name

    for category in load().categories:
        assert category_name("en", category.code, category.name_zh) == catalogue("en")[f"category.{category.code}"]
        assert category_name("zh-CN", category.code, category.name_zh) == category.name_zh
        assert not re.search(r"[\u4e00-\u9fff]", category_name("en", category.code, category.name_zh))
    # A category the catalogue does not know yet (a new list version): the list's name.
    assert category_name("en", "XX-99", "新类别") == "新类别"
    assert category_name("en", "XX-99", "新类别", "New category") == "New category"


def test_list_check_problems_have_their_place_and_are_translated() -> None:
    from rules.responsibility_list import check
    from web.labels import list_problem

    raw = {"version": "bad version", "groups": [{"code": "SR", "name_zh": "x", "name_en": "x"}],
           "categories": [{"code": "SR-01", "name_zh": "", "group": "NO", "tier": "planet", "department": "NOPE",
                           "deadlines": {"dispatch": 0}, "severity_scale": [], "keywords": [" "]}],
           "policies": {"priorities": {"nope": 1}, "repeat_threshold": "x"}}
    _, problems = check(raw, {"ZF"})
    assert len(problems) >= 10
    for problem in problems:
        assert problem.code and str(problem)  # the CLI keeps its English line
        zh, en = list_problem("zh-CN", problem), list_problem("en", problem)
        assert zh["where"] and zh["what"] != catalogue("zh-CN")["invalid.invalid"], (problem, zh)
        # (The values the file holds are quoted back as they are: "nope" is the file's.)
        assert not _chinese_only(f"{zh['where']} {zh['label']} {zh['what']}".replace("nope", "")), zh
        assert en["what"] and "{" not in en["what"], en


async def test_error_pages_and_api_errors(org_db: Any, tmp_path: Path) -> None:
    """Error pages in the visitor's language; the API answers a code and an English detail."""
    from tests import webapp

    browser = webapp.browsers(webapp.context(org_db, tmp_path))
    async with browser() as http:
        r = await http.get("/api/events/EV-NOPE")
        assert r.status_code == 401 and r.json()["code"] == "not_authenticated" and r.json()["detail"]
        headers = await webapp.api_login(http, "wg_hs01_g1")
        r = await http.get("/api/console", headers=headers)
        assert r.status_code == 403 and r.json() == {"status_code": 403, "code": "supervisors_only",
                                                     "detail": "supervisors only"}
        await webapp.page_login(http, "wg_hs01_g1")
        for url, status, text in (("/console", 403, "仅限督办员"), ("/events/EV-NOPE", 404, "事件 EV-NOPE 不存在"),
                                  ("/no/such/page", 404, "页面或记录不存在"), ("/tasks/x/claim", 405, "不支持")):
            r = await http.get(url)
            assert r.status_code == status and text in r.text, (url, r.status_code)
            assert not problems_of(r.text, "zh-CN", {"wg_hs01_g1"}), (url, problems_of(r.text, "zh-CN", set()))
            if url in ("/console", "/events/EV-NOPE"):  # refused after the login was read: still logged in
                assert 'action="/logout"' in r.text, url
        await http.get("/lang/en")
        r = await http.get("/console")
        assert r.status_code == 403 and "supervisors only" in r.text
        r = await http.get("/no/such/page")
        assert r.status_code == 404 and "Not found" in r.text
