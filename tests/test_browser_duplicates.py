"""Issue 12, item 4 in Chromium: the street supervisor merges a duplicate into its primary from the
event page (picking the primary among those offered, with a reason and a ticked confirmation), sees the
link to the primary and the primary's count, then undoes the merge; the resident's receipt page offers
the open report nearby to follow. Screenshots in var/screenshots/dup-*.png."""

from __future__ import annotations

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


async def test_merge_and_undo_through_the_pages_in_chromium(live: tuple[Platform, str]) -> None:
    platform, base = live
    async with chromium() as browser:
        await _walk(platform, base, _CspWatchingBrowser(browser))


async def _walk(platform: Platform, base: str, browser: object) -> None:
    place = {"grid": "HS01-G1", "address": "解放路 8 号"}
    primary = await platform.report(description="解放路8号门口垃圾堆积", location=place)
    duplicate = await platform.report(description="解放路8号垃圾没人清", location=place,
                                      reporter={"name": "李四", "phone": "13900000002"})
    assert [c["event_id"] for c in duplicate["duplicate_of"]] == [primary["event_id"]]
    office = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN"}
    centre = await _login(await browser.new_context(**office), base, "zx_hs")  # type: ignore[attr-defined]

    # The merge form offers the primary; without the box ticked the browser does not send it.
    await centre.goto(f"{base}/events/{duplicate['event_id']}")
    offered = await centre.eval_on_selector_all("#merge-candidates option", "os => os.map(o => o.value)")
    assert offered == [primary["receipt_code"]], offered
    await centre.fill("#merge-primary", primary["receipt_code"])
    await centre.fill("#merge-reason", "同一处垃圾堆积")
    await centre.click("#merge-form button[type=submit]")
    assert await centre.evaluate("document.getElementById('merge-confirm').validity.valueMissing")
    await _shot(centre, "dup-01-merge-form")
    await centre.check("#merge-confirm")
    await centre.click("#merge-form button[type=submit]")
    await centre.wait_for_url("**msg=msg.merged**")
    await _until(platform, duplicate["event_id"], lambda e: e.state == "merged", "the merge")
    assert "已合并" in await centre.inner_text(".badge.state-merged")
    assert await centre.inner_text("#merged-into a") == primary["receipt_code"]
    assert await centre.query_selector("#merge-form") is None
    await _shot(centre, "dup-02-merged")
    await _until(platform, primary["event_id"], lambda e: e.merged_count == 1 and e.follower_count == 1,
                 "the primary taking the duplicate's reporter")
    await centre.click("#merged-into a")
    await centre.wait_for_url(f"**/events/{primary['event_id']}")
    assert (await centre.inner_text("#merged-count")).strip() == "1"

    # Undo: the duplicate is handled again where it was, and its reporter no longer follows the primary.
    await centre.goto(f"{base}/events/{duplicate['event_id']}")
    await centre.fill("#unmerge-reason", "并非同一问题")
    await centre.click("#unmerge-form button[type=submit]")
    await centre.wait_for_url("**msg=msg.unmerged**")
    await _until(platform, duplicate["event_id"], lambda e: e.state == "dispatched" and e.merged_into is None,
                 "the undo")
    await _until(platform, primary["event_id"], lambda e: e.merged_count == 0 and e.follower_count == 0,
                 "the primary letting the duplicate's reporter go")
    await centre.goto(f"{base}/events/{duplicate['event_id']}")
    assert await centre.query_selector("#merged-into") is None
    assert await centre.query_selector("#merge-form") is not None
    await _shot(centre, "dup-03-undone")

    # A resident reporting the same place is offered the open report to follow ("me too").
    resident = await browser.new_context(**office)  # type: ignore[attr-defined]
    page = await resident.new_page()
    await page.goto(f"{base}/report")
    await page.select_option("#category", "SR-01")
    await page.select_option("#grid", "HS01-G1")
    await page.fill("#address", "解放路 8 号")
    await page.fill("#description", "解放路8号垃圾堆积好几天了")
    await page.click("#report-form button[type=submit]")
    await page.wait_for_selector("#duplicates")
    before = (await platform_event(platform, primary["event_id"])).follower_count
    button = page.locator(f"button.dup-follow[data-event-id='{primary['event_id']}']")
    await button.click()
    await page.wait_for_selector("#duplicates .meta:not(:empty)")
    await _until(platform, primary["event_id"], lambda e: e.follower_count == before + 1, "the follow")
    await _shot(page, "dup-04-receipt-offers-to-follow")


async def platform_event(platform: Platform, event_id: str):  # type: ignore[no-untyped-def]
    from store import queries

    row = await queries.get_event(platform.db, event_id)
    assert row is not None
    return row
