"""In Chromium: "use my location" on the report form picks the nearest grid from the browser's
position (granted and set by Playwright), says so when the position is refused or far from every
grid, and the report made with it is located in that grid; once handled, its tracking page shows the
handler's result and the photo marked public. Screenshots in var/screenshots/ (location-*)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import select

from store import models
from tests.platform import Platform
from tests.test_browser import CHROMIUM, PNG, _CspWatchingBrowser, _shot, chromium, live, wait_for_js
from tests.test_e2e_api import _task_of

__all__ = ["live"]  # the fixture, imported for pytest

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")

STATUS_SAYS = "text => document.getElementById('locate-status').textContent.includes(text)"
NEAR_G1 = {"latitude": 28.7556, "longitude": 118.6293}  # about 50 m from the centre of HS01-G1


async def _event(platform: Platform, description: str) -> models.Event:
    for _ in range(150):
        async with platform.db.session() as session:
            found = (await session.exec(select(models.Event).where(models.Event.description == description))).first()
        if found is not None:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"no event {description!r} in the store")


async def test_use_my_location_picks_the_grid_and_tracking_shows_the_public_result(
        live: tuple[Platform, str]) -> None:
    platform, base = live
    async with chromium() as browser:
        watching = _CspWatchingBrowser(browser)
        options = {"viewport": {"width": 360, "height": 900}, "locale": "zh-CN"}

        # Refused: the page says so and picks nothing.
        refused = await watching.new_context(**options)
        page = await refused.new_page()  # type: ignore[attr-defined]
        await page.goto(f"{base}/report")
        await page.click("#locate")
        await wait_for_js(page, STATUS_SAYS, "无法获取位置")
        assert await page.input_value("#grid") == ""
        await refused.close()  # type: ignore[attr-defined]

        # Far from every grid (Beijing): nothing picked, a hint instead.
        far = await watching.new_context(**options, geolocation={"latitude": 39.9, "longitude": 116.4},
                                         permissions=["geolocation"])
        page = await far.new_page()  # type: ignore[attr-defined]
        await page.goto(f"{base}/report")
        await page.click("#locate")
        await wait_for_js(page, STATUS_SAYS, "附近没有")
        assert await page.input_value("#grid") == ""
        await far.close()  # type: ignore[attr-defined]

        # Granted, next to HS01-G1's centre: the grid is picked and named.
        context = await watching.new_context(**options, geolocation=NEAR_G1, permissions=["geolocation"])
        page = await context.new_page()  # type: ignore[attr-defined]
        await page.goto(f"{base}/report")
        assert await page.is_visible("#locate")  # shown once the script found geolocation
        await page.click("#locate")
        await wait_for_js(page, "document.getElementById('grid').value === 'HS01-G1'")
        status = await page.inner_text("#locate-status")
        assert "城北社区第一网格" in status and "公里" in status, status
        description = f"楼下垃圾桶满了 {uuid.uuid4().hex[:6]}"
        await page.select_option("#category", "SR-04")
        await page.fill("#description", description)
        await _shot(page, "location-01-report-form-located")
        await page.click("#report-form button[type=submit]")
        await page.wait_for_selector("#receipt", timeout=30_000)
        code = (await page.inner_text("#receipt")).strip()
        event = await _event(platform, description)
        assert event.grid == "HS01-G1" and event.receipt_code == code

        # The grid worker handles it with two photos, one marked public.
        g1 = await platform.login("wg_hs01_g1")
        photos = []
        for _ in range(2):
            r = await platform.http.post("/api/photos", headers=g1, files={"data": ("p.png", PNG, "image/png")})
            assert r.status_code == 201, r.text
            photos.append(r.json()["photo_id"])
        task = await _task_of(platform, g1, event.event_id, "handle")
        assert (await platform.http.post(f"/api/tasks/{task['task_id']}/claim", headers=g1)).status_code == 200
        r = await platform.http.post(f"/api/tasks/{task['task_id']}/complete", headers=g1, json={
            "result": "垃圾桶已清空，并增加了收运频次", "photos": photos, "public_photos": photos[:1]})
        assert r.status_code == 200, r.text

        track = await context.new_page()  # type: ignore[attr-defined]
        await track.goto(f"{base}/track/{code}")
        assert (await track.inner_text("#handling-result")).strip() == "垃圾桶已清空，并增加了收运频次"
        images = await track.eval_on_selector_all(
            "#public-photos img", "els => els.map(e => [e.getAttribute('src'), e.naturalWidth])")
        assert [src for src, _ in images] == [f"/track/{code}/public/{photos[0]}"]
        assert all(width > 0 for _, width in images)  # the browser loaded it
        await _shot(track, "location-02-tracking-public-result")
