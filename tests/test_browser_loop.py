"""Issue 10, items 1, 2 and 6 in Chromium: a grid worker returns a case and the street supervisor, approving,
picks the unit it goes to (never back to the grid); the supervisor reassigns a case to a person picked
from the unit's active users; voiding asks for a reason and a confirmation (on the event page and in
the console's bulk form); the worker who handled a case cannot verify it, not even after moving to the
community that verifies it. Screenshots in var/screenshots/loop-*.png."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from store import models, queries
from tests.platform import Platform
from tests.test_browser import (
    _CspWatchingBrowser,
    _login,
    _shot,
    _until,
    chromium,
    live,
)

__all__ = ["live"]  # the fixture, used by name


async def test_returns_verification_and_reassign_in_chromium(live: tuple[Platform, str]) -> None:
    platform, base = live
    async with chromium() as browser:
        await _walk(platform, base, _CspWatchingBrowser(browser))


async def _task(platform: Platform, task_id: str) -> models.Task:
    for _ in range(100):
        row = await queries.get_task(platform.db, task_id)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"{task_id} was not projected")


async def _walk(platform: Platform, base: str, browser: object) -> None:
    # Four reports of SR-01 in grid HS01-G1 by one reporter (one person: no repeat, each is the grid's).
    handled, returned, reassigned, voided = [
        (await platform.report(description=text))["event_id"]
        for text in ("火车站广场垃圾", "北苑小区门口垃圾,不属于本网格", "城北路垃圾待改派", "重复上报的垃圾")]
    office = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
    worker = await _login(await browser.new_context(**office), base, "wg_hs01_g1")  # type: ignore[attr-defined]
    centre = await _login(await browser.new_context(**office), base, "zx_hs")  # type: ignore[attr-defined]

    # 1. The worker returns the case ("not ours"); the supervisor approves and picks the community.
    await worker.goto(f"{base}/events/{returned}")
    await worker.click(f"form[action='/tasks/{returned}.T1/claim'] button")
    await worker.wait_for_url("**msg=msg.claimed**")
    await worker.click(f"form[action='/tasks/{returned}.T1/return'] >> xpath=.. >> summary")
    await worker.fill(f"#return-reason-{returned}\\.T1", "属于相邻网格")
    await worker.click(f"form[action='/tasks/{returned}.T1/return'] button[type=submit]")
    await worker.wait_for_url("**msg=msg.requested.return**")
    await _until(platform, returned, lambda e: e.pending == "return", "the return request")
    await centre.goto(f"{base}/events/{returned}")
    options = await centre.eval_on_selector_all("#sup-return-unit option", "os => os.map(o => o.value)")
    assert options[0] == "" and "HS01" in options and "HS01-G1" not in options, options  # never back to the grid
    first = await centre.text_content("#sup-return-unit option >> nth=0")
    assert first and "CC-HS" in first, first  # the list's suggestion first (it has nobody else: triage)
    await centre.select_option("#sup-return-unit", "HS01")
    await centre.fill("#sup-approve_return-reason", "交社区处理")
    await _shot(centre, "loop-01-approve-return-pick")
    await centre.click("#approve-return button[type=submit]")
    await centre.wait_for_url("**msg=msg.supervised.approve_return**")
    await _until(platform, returned, lambda e: e.state == "dispatched" and e.unit == "HS01", "the pick")
    assert (await _task(platform, f"{returned}.T2")).unit == "HS01"
    await centre.goto(f"{base}/events/{returned}")
    assert "HS01-G1 曾退回本事件,已排除" in await centre.inner_text("#decision-excluded")
    await _shot(centre, "loop-02-returned-to-the-community")

    # 6a. Reassign: the picker shows the active users of the unit chosen, and only those.
    await centre.goto(f"{base}/events/{reassigned}")
    await centre.select_option("#sup-unit", "HS01-G2")
    shown = await centre.eval_on_selector_all(
        "#sup-assignee optgroup", "gs => gs.filter(g => !g.hidden && !g.disabled).map(g => g.dataset.unit)")
    assert shown == ["HS01-G2"], shown
    await centre.select_option("#sup-assignee", "wg_hs01_g2")
    await centre.fill("#sup-ra-reason", "网格调整")
    await _shot(centre, "loop-03-reassign-picker")
    await centre.click("form.sup:has(input[value='reassign']) button[type=submit]")
    await centre.wait_for_url("**msg=msg.supervised.reassign**")
    row = await _task(platform, f"{reassigned}.T2")
    assert (row.unit, row.assignee) == ("HS01-G2", "wg_hs01_g2")

    # 6b. Void asks for a reason and a confirmation: without the box ticked the browser does not send it.
    await centre.goto(f"{base}/events/{voided}")
    await centre.fill("#sup-void-reason", "重复上报")
    await centre.click("form.sup:has(input[value='void']) button[type=submit]")
    assert await centre.evaluate("document.getElementById('sup-void-confirm').validity.valueMissing")
    assert "msg=" not in centre.url
    await _shot(centre, "loop-04-void-needs-confirmation")
    await centre.check("#sup-void-confirm")
    await centre.click("form.sup:has(input[value='void']) button[type=submit]")
    await centre.wait_for_url("**msg=msg.supervised.void**")
    await _until(platform, voided, lambda e: e.state == "voided", "the void")
    # The console's bulk form: void and close need the reason and the box; reassign does not.
    await centre.goto(f"{base}/console")
    assert not await centre.is_visible("#bulk-confirm")
    await centre.select_option("#bulk-action", "void")
    assert await centre.is_visible("#bulk-confirm")
    assert await centre.evaluate("document.getElementById('bulk-confirm').required")
    assert await centre.evaluate("document.getElementById('bulk-reason').required")
    await _shot(centre, "loop-05-bulk-void-confirmation")

    # 2. The worker completes a case; the verification is the community's, not his.
    await worker.goto(f"{base}/events/{handled}")
    await worker.click(f"form[action='/tasks/{handled}.T1/claim'] button")
    await worker.wait_for_url("**msg=msg.claimed**")
    await worker.fill(f"#result-{handled}\\.T1", "已清运")
    await worker.click(f"form[action='/tasks/{handled}.T1/complete'] button[type=submit]")
    await worker.wait_for_url("**msg=msg.completed**")
    assert (await _task(platform, f"{handled}.T2")).unit == "HS01"
    await worker.goto(f"{base}/events/{handled}")
    assert await worker.query_selector(f"form[action='/tasks/{handled}.T2/claim']") is None
    await _shot(worker, "loop-06-completer-has-no-verification")
    # Moved to that community meanwhile, he is still not offered its claim (the workflow would refuse it).
    async with platform.db.session() as session:
        user = (await session.exec(select(models.User).where(models.User.username == "wg_hs01_g1"))).one()
        user.unit, user.role = "HS01", "community_staff"
        session.add(user)
        await session.commit()
    await worker.goto(f"{base}/events/{handled}")
    assert "HS01" in await worker.inner_text("header")  # he is the community's now
    assert await worker.query_selector(f"form[action='/tasks/{handled}.T2/claim']") is None
    await _shot(worker, "loop-07-moved-worker-not-offered-his-verification")
    # Someone else of the community verifies it.
    community = await _login(await browser.new_context(**office), base, "sq_hs01")  # type: ignore[attr-defined]
    await community.goto(f"{base}/events/{handled}")
    await community.click(f"form[action='/tasks/{handled}.T2/claim'] button")
    await community.wait_for_url("**msg=msg.claimed**")
    assert (await _task(platform, f"{handled}.T2")).claimed_by == "sq_hs01"
