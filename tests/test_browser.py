"""The whole closed loop in a real browser (Debian's Chromium, headless, driven by Playwright):
a resident reports with a photo, the grid worker (logged in with the keyboard alone) finds it
through a saved filter, claims it and asks for more time, the street
command centre approves the extension and bulk-reassigns two other cases, the worker completes and
his community verifies, the resident rates it; pages in Chinese and English. Every page photographed also passes
a small accessibility audit (labels, alt texts, names, WCAG AA contrast) and shows no script,
style or image blocked by the Content-Security-Policy. Screenshots go to var/screenshots/.

The web app runs under uvicorn in the test's event loop, next to the Temporal worker, so the app, the
worker and Playwright's async API share one loop (and one Temporal client)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from store import queries
from tests.platform import Platform, running_platform

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install chromium)")
playwright_api = pytest.importorskip("playwright.async_api")

SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
#: Debian's Chromium, headless, with the flags this machine needs.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Debian Chromium for one test (closed afterwards); the screenshot folder exists."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def wait_for_js(page: Any, expression: str, arg: Any = None, seconds: float = 15.0) -> None:
    """Wait until ``expression`` (a JavaScript function of ``arg``, or an expression) is truthy on
    ``page``. Playwright's ``wait_for_function`` polls with ``eval`` in the page, which the pages'
    Content-Security-Policy (``script-src 'self'``) refuses once it has to poll; ``page.evaluate``
    runs through the DevTools protocol, which the policy does not govern."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await page.evaluate(expression, arg):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still false after {seconds:.0f} s: {expression}")
        await asyncio.sleep(0.1)


#: A 1×1 PNG (a valid one: photos are decoded, and the former fixture's image data was broken).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63fccfc0500f000485018084a98c210000000049454e44ae426082"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def live(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[tuple[Platform, str]]:
    """A platform whose web app listens on a real port (uvicorn, in this event loop)."""
    import uvicorn

    async with running_platform(dev_env.client, tmp_path) as platform:
        port = _free_port()
        app = platform.http._transport.app  # type: ignore[attr-defined]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve())
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        try:
            yield platform, f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


async def _event_id(platform: Platform, receipt: str) -> str:
    for _ in range(100):
        event = await queries.event_by_receipt(platform.db, receipt)
        if event is not None and event.unit:
            return event.event_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{receipt} was not projected")


async def _until(platform: Platform, event_id: str, predicate: object, what: str) -> None:
    for _ in range(100):
        event = await queries.get_event(platform.db, event_id)
        if event is not None and predicate(event):  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    event = await queries.get_event(platform.db, event_id)
    raise AssertionError(f"{event_id}: {what} did not happen: {event}")


async def test_closed_loop_in_chromium(live: tuple[Platform, str]) -> None:
    platform, base = live
    async with chromium() as browser:
        await _scenario(platform, base, _CspWatchingBrowser(browser))


#: Run in every page before its own scripts: keeps what the Content-Security-Policy blocked.
CSP_WATCH_JS = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
  `${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.sourceFile || ''}:${e.lineNumber || ''})`));"""


class _CspWatchingBrowser:
    """The browser, whose every context records the CSP violations of its pages (checked by _shot)."""

    def __init__(self, browser: object) -> None:
        self._browser = browser

    async def new_context(self, **options: object) -> object:
        context = await self._browser.new_context(**options)  # type: ignore[attr-defined]
        await context.add_init_script(CSP_WATCH_JS)
        return context


#: A small accessibility audit of the page as rendered: every visible form control has a label (or
#: an aria-label), every image an alt text, every link and button a name, and every piece of text a
#: contrast ratio of at least 4.5:1 against its background (3:1 for large text), as WCAG 2 AA asks.
AUDIT_JS = """() => {
  const problems = [];
  // Forms folded away in <details> are audited too (opened for the audit, closed again after).
  const folded = [...document.querySelectorAll('details:not([open])')];
  folded.forEach(d => { d.open = true; });
  // checkVisibility() also knows the content of a closed <details> is not shown.
  const visible = el => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    if (!((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
      problems.push(`unlabelled ${el.tagName.toLowerCase()} name=${el.name} id=${el.id}`);
  }
  for (const el of document.querySelectorAll('img'))
    if (!el.hasAttribute('alt')) problems.push(`image without alt: ${el.getAttribute('src')}`);
  for (const el of document.querySelectorAll('a[href], button'))
    if (visible(el) && !(el.innerText.trim() || el.getAttribute('aria-label') || el.querySelector('img[alt]')))
      problems.push(`nameless ${el.outerHTML.slice(0, 80)}`);
  const rgb = s => (s.match(/rgba?\\(([^)]+)\\)/) || [null, '0,0,0,0'])[1].split(',').map(parseFloat);
  const lum = c => c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) return c;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el) || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const [hi, lo] = [lum(rgb(style.color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const what = `<${el.tagName.toLowerCase()} class="${el.className}"> "${el.textContent.trim().slice(0, 30)}"`;
    if (ratio < need) problems.push(`contrast ${ratio.toFixed(2)} < ${need}: ${what}`);
  }
  if (!document.documentElement.lang) problems.push('no lang on <html>');
  folded.forEach(d => { d.open = false; });
  return problems;
}"""


async def _shot(page: object, name: str) -> None:
    """Save a screenshot of the whole page, after checking the page passes the accessibility audit."""
    problems = await page.evaluate(AUDIT_JS)  # type: ignore[attr-defined]
    assert not problems, (name, problems)
    blocked = await page.evaluate("window.__cspViolations")  # type: ignore[attr-defined]
    assert blocked == [], (name, "the Content-Security-Policy blocked", blocked)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


async def _login(context: object, base: str, username: str) -> object:
    page = await context.new_page()  # type: ignore[attr-defined]
    await page.goto(f"{base}/login")
    await page.fill("#username", username)
    await page.fill("#password", "demo12345")
    await page.click("form[action='/login'] button[type=submit]")
    await page.wait_for_url(f"{base}/inbox**")
    return page


async def _login_by_keyboard(context: object, base: str, username: str) -> object:
    """Log in with the keyboard alone: Tab to each field (the focus must show), type, Enter."""
    page = await context.new_page()  # type: ignore[attr-defined]
    await page.goto(f"{base}/login")
    for field, text in (("username", username), ("password", "demo12345")):
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == field:
                break
        else:
            raise AssertionError(f"Tab never reaches #{field}")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("none", ""), f"#{field} shows no focus outline"
        await page.keyboard.type(text)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base}/inbox**")
    return page


async def _resident_report(page: object, base: str, text: str, *, photo: bool) -> tuple[str, str]:
    """Report through the form; the receipt code and the tracking key shown once."""
    p = page
    await p.goto(f"{base}/report")  # type: ignore[attr-defined]
    await p.select_option("#category", "SR-01")  # type: ignore[attr-defined]
    await p.fill("#description", text)  # type: ignore[attr-defined]
    await p.select_option("#grid", "HS01-G1")  # type: ignore[attr-defined]
    await p.fill("#address", "城北路 8 号")  # type: ignore[attr-defined]
    if photo:
        await p.set_input_files("#photos", files=[  # type: ignore[attr-defined]
            {"name": "rubbish.png", "mimeType": "image/png", "buffer": PNG}])
    await p.click("#report-form button[type=submit]")  # type: ignore[attr-defined]
    receipt = await p.text_content("#receipt")  # type: ignore[attr-defined]
    assert receipt and re.fullmatch(r"[0-9A-Z]{10}", receipt.strip()), receipt
    key = await p.text_content("#tracking-key")  # type: ignore[attr-defined]
    assert key and re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", key.strip()), key
    return receipt.strip(), key.strip()


async def _scenario(platform: Platform, base: str, browser: object) -> None:
    # The resident, on a 360 px phone.
    phone = await browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")  # type: ignore[attr-defined]
    resident = await phone.new_page()
    await resident.goto(f"{base}/report")
    assert await resident.get_attribute("html", "lang") == "zh-CN"
    assert await resident.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    await _shot(resident, "01-report-form-zh")
    receipt, key = await _resident_report(resident, base, "小区门口垃圾堆积，无人清运", photo=True)
    assert await resident.is_visible("#photos-count")
    await _shot(resident, "02-report-done")
    event_id = await _event_id(platform, receipt)

    # Two more reports of the same kind: the form shows the open ones nearby (without their receipt
    # codes), to follow ("me too") instead of reporting again.
    await resident.goto(f"{base}/report")
    await resident.select_option("#category", "SR-01")
    await resident.select_option("#grid", "HS01-G1")
    await resident.wait_for_selector("#nearby button.metoo")
    assert receipt not in await resident.inner_text("#nearby")
    await _shot(resident, "03-report-nearby")
    await resident.fill("#phone", "13700000001")
    await resident.click("#nearby button.metoo >> nth=0")
    await resident.wait_for_selector("#nearby [role=status]")
    assert "共 1 人关注" in await resident.inner_text("#nearby")
    others = [await _event_id(platform, (await _resident_report(resident, base, f"垃圾桶满溢 {i}", photo=False))[0])
              for i in (1, 2)]

    # The grid worker logs in (keyboard only), filters the inbox, saves the filter, and finds the task
    # through it later; then claims it and asks for more time.
    office = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")  # type: ignore[attr-defined]
    worker = await _login_by_keyboard(office, base, "wg_hs01_g1")
    await worker.select_option("#f-category", "SR-01")
    await worker.fill("#f-q", "垃圾堆积")
    await worker.click("form.filters button[type=submit]")
    await worker.wait_for_url("**q=**")
    await worker.fill("#f-name", "门口垃圾")
    await worker.click("form[action='/inbox/filters'] button[type=submit]")
    await worker.wait_for_load_state()
    await worker.goto(f"{base}/inbox")
    await worker.click("ul.saved a:has-text('门口垃圾')")
    await worker.wait_for_url("**category=SR-01**")
    await worker.wait_for_selector(f"form[action='/tasks/{event_id}.T1/claim']")
    for eid in others:  # the same category, but the search leaves them out
        assert await worker.query_selector(f"form[action='/tasks/{eid}.T1/claim']") is None
    countdown = await worker.text_content(f"li[data-task='{event_id}.T1'] .due .left")  # the live countdown
    assert countdown and re.fullmatch(r"\((剩余|已超期) (\d+天 )?(\d+小时 ?)?(\d+分)?\)", countdown), countdown
    await _shot(worker, "04-inbox-worker")
    await worker.click(f"form[action='/tasks/{event_id}.T1/claim'] button")
    await worker.wait_for_url("**msg=msg.claimed**")
    await worker.goto(f"{base}/events/{event_id}")
    assert await worker.is_visible("#report-photos img")  # the resident's photo
    await worker.click(f"form[action='/tasks/{event_id}.T1/extension'] >> xpath=.. >> summary")
    await worker.fill(f"#ext-hours-{event_id}\\.T1", "24")
    await worker.fill(f"#ext-reason-{event_id}\\.T1", "需要环卫车辆")
    await worker.click(f"form[action='/tasks/{event_id}.T1/extension'] button[type=submit]")
    await worker.wait_for_url("**msg=msg.requested.extension**")
    await _shot(worker, "05-event-extension-requested")
    await _until(platform, event_id, lambda e: e.pending == "extension", "extension request")

    # The street command centre approves the extension and reassigns the two other cases at once.
    centre_ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")  # type: ignore[attr-defined]
    centre = await _login(centre_ctx, base, "zx_hs")
    await centre.goto(f"{base}/console")
    await _shot(centre, "06-console")
    approve = f"#awaiting form[action='/events/{event_id}/supervise']:has(input[value='approve_extension']) button"
    await centre.click(approve)
    await centre.wait_for_url("**msg=msg.supervised.approve_extension**")
    await _until(platform, event_id, lambda e: e.pending is None, "extension approval")
    # The other two (repeated reports may be routed higher up) show in the console once whoever holds
    # them asks for more time as well (through the API, to keep the browser on the main case).
    for eid in others:
        task = (await queries.event_tasks(platform.db, eid))[0]
        holder = next(u for u in await queries.users(platform.db, task.unit) if u.role != "admin")
        headers = await platform.login(holder.username)
        r = await platform.http.post(f"/api/tasks/{task.task_id}/claim", headers=headers)
        assert r.status_code == 200, r.text
        r = await platform.http.post(f"/api/tasks/{task.task_id}/extension", headers=headers,
                                     json={"reason": "等待车辆", "hours": 8})
        assert r.status_code == 200, r.text
        await _until(platform, eid, lambda e: e.pending == "extension", "extension request")
    await centre.goto(f"{base}/console")
    for eid in others:
        await centre.check(f"input[name=event_ids][value='{eid}'] >> nth=0")
    await centre.select_option("#bulk-action", "reassign")
    await centre.select_option("#bulk-unit", "HS01-G2")
    await centre.fill("#bulk-reason", "网格调整")
    await centre.click("#bulk button[type=submit]")
    await centre.wait_for_url("**msg=msg.bulk_done**")
    await _shot(centre, "07-console-bulk-done")
    assert "ok=2" in centre.url and "total=2" in centre.url, centre.url
    for eid in others:
        await _until(platform, eid, lambda e: e.state == "dispatched" and e.pending is None, "reassignment")
        tasks = await queries.event_tasks(platform.db, eid)
        assert any(t.unit == "HS01-G2" and t.status == "open" for t in tasks), tasks

    # The worker completes the first case; his community verifies it (nobody verifies their own work).
    await worker.goto(f"{base}/events/{event_id}")
    await worker.fill(f"#result-{event_id}\\.T1", "已清运")
    await worker.set_input_files(f"#photos-{event_id}\\.T1", files=[
        {"name": "done.png", "mimeType": "image/png", "buffer": PNG}])
    await worker.click(f"form[action='/tasks/{event_id}.T1/complete'] button[type=submit]")
    await worker.wait_for_url("**msg=msg.completed**")
    verify = f"{event_id}.T2"
    checker = await _login(await browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, locale="zh-CN"), base, "sq_hs01")
    for _ in range(50):
        await checker.goto(f"{base}/inbox")
        if await checker.query_selector(f"form[action='/tasks/{verify}/claim']"):
            break
        await asyncio.sleep(0.2)
    await checker.click(f"form[action='/tasks/{verify}/claim'] button")
    await checker.wait_for_url("**msg=msg.claimed**")
    await checker.goto(f"{base}/events/{event_id}")
    await checker.click(f"form[action='/tasks/{verify}/complete'] button[type=submit] >> nth=0")
    await checker.wait_for_url("**msg=msg.completed**")
    await _until(platform, event_id, lambda e: e.state == "feedback", "verification")
    assert await checker.query_selector("[data-due]") is None  # no countdown on finished tasks
    await _shot(checker, "08-event-verified")

    # The resident rates on the tracking page with the tracking key, then reads it in English.
    await resident.goto(f"{base}/track/{receipt}")
    await resident.fill("#tracking_key", key)
    await _shot(resident, "09-track-rate")
    await resident.check("input[name=rating][value=satisfied]")
    await resident.fill("#comment", "谢谢")
    await resident.click(f"form[action='/track/{receipt}/rating'] button[type=submit]")
    await resident.wait_for_url("**msg=msg.rated**")
    await _until(platform, event_id, lambda e: e.state == "closed", "closing")
    await resident.reload()
    assert "已结案" in await resident.inner_text("main")
    await _shot(resident, "10-track-closed-zh")
    await resident.click("header a.lang")
    await resident.wait_for_load_state()
    assert await resident.get_attribute("html", "lang") == "en"
    assert "Closed" in await resident.inner_text("main") or "closed" in await resident.inner_text("main")
    await _shot(resident, "11-track-closed-en")
    await resident.goto(f"{base}/report")
    assert "Report a problem" in await resident.inner_text("main")
    await _shot(resident, "12-report-form-en")
    await worker.goto(f"{base}/lang/en?next=/inbox")
    await _shot(worker, "13-inbox-en")
    await centre.goto(f"{base}/lang/en?next=/events/{others[0]}")  # a reassigned case, still open
    countdown = await centre.text_content(".due .left")
    assert countdown and re.search(r"\d+(d|h|min).* (left|overdue)\)$", countdown), countdown
    await _shot(centre, "14-event-en")

    # The administrator's pages, on a phone: the organisation, a unit, the users, one user.
    admin_ctx = await browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")  # type: ignore[attr-defined]
    admin = await admin_ctx.new_page()
    await admin.goto(f"{base}/login")
    await admin.fill("#username", "admin")
    await admin.fill("#password", "admin12345")
    await admin.click("form[action='/login'] button[type=submit]")
    await admin.wait_for_url(f"{base}/inbox**")
    for path, name in (("/admin/org", "15-admin-org"), ("/admin/org/units/HS01-G1", "16-admin-unit"),
                       ("/admin/users", "17-admin-users"), ("/admin/users/wg_hs01_g1", "18-admin-user"),
                       ("/admin/rules", "19-admin-rules")):
        response = await admin.goto(f"{base}{path}")
        assert response is not None and response.status == 200, path
        assert await admin.evaluate("document.documentElement.scrollWidth") <= 360, path  # no sideways scrolling
        await _shot(admin, name)

    # The API documentation (a page of ours: Litestar's UIs load scripts from a CDN) and an error
    # page, whose "back" button is wired by /static/app.js (no inline script under the CSP).
    await resident.goto(f"{base}/schema")
    assert await resident.locator("#operations code", has_text="/api/events").count() >= 1
    assert await resident.evaluate("document.documentElement.scrollWidth") <= 360  # rows stack on a phone
    await _shot(resident, "20-api-schema")
    response = await resident.goto(f"{base}/no-such-page")
    assert response is not None and response.status == 404
    back = resident.locator("[data-back] button")
    assert await back.is_visible(), "the error page's back button is not shown"
    await _shot(resident, "21-error-404")
    await back.click()
    await resident.wait_for_url(f"{base}/schema")
