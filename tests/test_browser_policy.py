"""Issue 10, item 5 in Chromium: the page offers only what the workflow accepts. A grid worker asks
the law-enforcement department to co-handle a case; while its task is open the event page offers
no 办结 and says what it waits for; a completion forced from a stale form is refused by the workflow
with the reason in Chinese (and in English on an English page); once the department has completed
its part, 办结 is offered again and goes through. Screenshots under var/screenshots/policy-*.png."""

from __future__ import annotations

from tests.platform import Platform
from tests.test_browser import (
    CHROMIUM,
    SHOTS,
    _CspWatchingBrowser,
    _event_id,
    _login,
    _shot,
    _until,
    live,
    playwright_api,
    pytestmark,
)

__all__ = ["live", "pytestmark"]  # the fixture and the skip mark, shared with tests/test_browser.py

#: A stale page's form: what a page offered before co-handling started, posted again.
FORCE_COMPLETE_JS = """([task, result]) => {
  const form = document.createElement('form');
  form.method = 'post';
  form.action = `/tasks/${task}/complete`;
  const fields = {result, next: location.pathname,
                  _csrf_token: document.querySelector('input[name=_csrf_token]').value};
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement('input');
    input.type = 'hidden'; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


async def test_cohandling_holds_back_the_completion_in_chromium(live: tuple[Platform, str]) -> None:
    platform, base = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    created = await platform.report(description="路边违章堆放建材，需执法部门配合清理")
    event_id = await _event_id(platform, created["receipt_code"])
    main, helper = f"{event_id}.T1", f"{event_id}.T2"
    async with playwright_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                            args=["--headless", "--no-sandbox", "--disable-gpu"])
        browser = _CspWatchingBrowser(chromium)  # every page photographed is checked for CSP violations
        try:
            desk = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
            worker = await _login(desk, base, "wg_hs01_g1")
            await worker.goto(f"{base}/events/{event_id}")
            await worker.click(f"form[action='/tasks/{main}/claim'] button")
            await worker.wait_for_url("**msg=msg.claimed**")
            # Before co-handling, 办结 is offered.
            assert await worker.query_selector(f"form[action='/tasks/{main}/complete']") is not None
            await worker.click(f"[id='task-{main}'] details.req:has(form[action$='/cohandling']) summary")
            await worker.select_option(f"[id='co-units-{main}']", "D-ZF")
            await worker.fill(f"[id='co-reason-{main}']", "需执法配合清理")
            await worker.click(f"form[action='/tasks/{main}/cohandling'] button[type=submit]")
            await worker.wait_for_url("**msg=msg.requested.cohandling**")

            # While D-ZF's task is open: no 办结 form, a note saying why.
            await worker.goto(f"{base}/events/{event_id}")
            assert await worker.query_selector(f"form[action='/tasks/{main}/complete']") is None
            note = await worker.text_content(f"[id='cohandling-open-{main}']")
            assert note is not None and "协办尚未完成（D-ZF）" in note
            await _shot(worker, "policy-01-cohandling-open-zh")

            # A stale form forced anyway: refused by the workflow, in Chinese.
            await worker.evaluate(FORCE_COMPLETE_JS, [main, "已处理"])
            await worker.wait_for_url("**error=**")
            assert (await worker.text_content(".flash.err")) == "协办尚未完成（D-ZF），暂不能办结"
            await _shot(worker, "policy-02-forced-complete-refused-zh")
            # The same on an English page.
            await desk.add_cookies([{"name": "lang", "value": "en", "url": base}])
            await worker.goto(f"{base}/events/{event_id}")
            await worker.evaluate(FORCE_COMPLETE_JS, [main, "done"])
            await worker.wait_for_url("**error=**")
            assert (await worker.text_content(".flash.err")) == "co-handling by D-ZF is not finished yet"
            await desk.clear_cookies(name="lang")

            # The department completes its part; then 办结 is offered and goes through.
            department = await _login(await browser.new_context(locale="zh-CN"), base, "bm_zf")
            await department.goto(f"{base}/events/{event_id}")
            assert await department.query_selector(f"form[action='/tasks/{main}/complete']") is None  # not theirs
            await department.click(f"form[action='/tasks/{helper}/claim'] button")
            await department.wait_for_url("**msg=msg.claimed**")
            await department.fill(f"[id='result-{helper}']", "执法人员已到场清理")
            await department.click(f"form[action='/tasks/{helper}/complete'] button[type=submit]")
            await department.wait_for_url("**msg=msg.completed**")

            await worker.goto(f"{base}/events/{event_id}")
            assert await worker.query_selector(f"[id='cohandling-open-{main}']") is None
            await worker.fill(f"[id='result-{main}']", "建材已清理完毕")
            await _shot(worker, "policy-03-complete-offered-again")
            await worker.click(f"form[action='/tasks/{main}/complete'] button[type=submit]")
            await worker.wait_for_url("**msg=msg.completed**")
            await _until(platform, event_id, lambda e: e.state == "verification", "verification")
        finally:
            await chromium.close()
