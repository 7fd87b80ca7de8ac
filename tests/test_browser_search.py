"""The supervisors' event search in Chromium (issue 10, item 7): from the navigation, a text search,
a result opened, a filter that finds nothing, the same page in English and at 360 px; each page
photographed passes the accessibility audit and the Content-Security-Policy (tests.test_browser)."""

from __future__ import annotations

import pytest

from tests.platform import Platform
from tests.test_browser import CHROMIUM, SHOTS, _CspWatchingBrowser, _login, _shot, live, playwright_api  # noqa: F401

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")


async def test_a_street_supervisor_finds_an_event(live: tuple[Platform, str]) -> None:  # noqa: F811
    platform, base = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    reported = []
    for text, grid in (("小区门口井盖缺失，夜里很危险", "HS01-G1"), ("路灯不亮", "HS01-G2"), ("井盖缺失", "ST01-G1")):
        r = await platform.http.post("/api/events", json={"category": "SR-01", "description": text,
                                                          "location": {"grid": grid}})
        assert r.status_code in (201, 202), r.text
        reported.append(r.json())
    async with playwright_api.async_playwright() as pw:
        raw = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                       args=["--headless", "--no-sandbox", "--disable-gpu"])
        browser = _CspWatchingBrowser(raw)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await _login(context, base, "zx_hs")
            await page.click("header nav a[href='/search']")
            await page.wait_for_url(f"{base}/search")
            await page.fill("#s-q", "井盖")
            await page.click("form[action='/search'] button[type=submit]")
            await page.wait_for_url(f"{base}/search?**")
            rows = page.locator("table.results tbody tr")
            assert await rows.count() == 1  # the other street's 井盖 is not in zx_hs's scope
            assert reported[0]["receipt_code"] in await rows.first.inner_text()
            await _shot(page, "search-zh")
            await page.select_option("#s-state", "closed")
            await page.click("form[action='/search'] button[type=submit]")
            await page.wait_for_selector("p.empty")
            await page.goto(f"{base}/search?q=%E4%BA%95%E7%9B%96")
            await page.click(f"a[href='/events/{reported[0]['event_id']}']")
            await page.wait_for_url(f"{base}/events/{reported[0]['event_id']}")
            await page.goto(f"{base}/search?created_to=tomorrow")
            assert "上报日期至" in await page.inner_text("p.flash.err")
            await page.goto(f"{base}/lang/en?next=/search")
            await page.wait_for_selector("h1")
            assert "Search events" in await page.inner_text("h1")
            await _shot(page, "search-en")
            phone = await browser.new_context(viewport={"width": 360, "height": 740})
            small = await _login(phone, base, "zx_hs")
            await small.goto(f"{base}/search")
            await _shot(small, "search-360")
        finally:
            await raw.close()
