"""The report pages in Chromium (issue 11, item 4): from the navigation to a period's report, another
level and indicator, the XLSX export downloaded and read back with openpyxl, the print layout
(navigation, forms and export links left out), a recompute through the form, the same page in
English; each page photographed passes the accessibility audit and the Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from activities.reports import publish
from tests.platform import Platform
from tests.test_browser import CHROMIUM, SHOTS, _CspWatchingBrowser, _login, _shot, live, playwright_api  # noqa: F401
from workflows.period_report import job_of, parse_period

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")


async def test_a_city_supervisor_reads_prints_exports_and_recomputes_a_report(
        live: tuple[Platform, str], tmp_path: Path) -> None:  # noqa: F811
    platform, base = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    for period in ("2026-10", "2026-11"):
        await publish(platform.db, job_of(parse_period(period), f"browser-{period}"))
    async with playwright_api.async_playwright() as pw:
        raw = await pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                       args=["--headless", "--no-sandbox", "--disable-gpu"])
        browser = _CspWatchingBrowser(raw)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page = await _login(context, base, "zx_city")
            await page.click("header nav a[href='/reports']")
            await page.wait_for_url(f"{base}/reports")
            await _shot(page, "reports-index-zh")
            await page.click("a[href='/reports/2026-11']")
            await page.wait_for_url(f"{base}/reports/2026-11")
            assert "2026年11月考核报告" in await page.inner_text("h1")
            assert await page.locator("#ranking tbody tr").count() == 3  # the three streets
            await _shot(page, "report-2026-11-zh")
            await page.select_option("#r-level", "communities")
            await page.select_option("#r-by", "rework_rate")
            await page.click("form.filters button[type=submit]")
            await page.wait_for_url(f"{base}/reports/2026-11?**level=communities**")
            assert await page.locator("#ranking tbody tr").count() == 13

            async with page.expect_download() as caught:
                await page.click("p.exports a[href*='export.xlsx']")
            download = await caught.value
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            assert saved.name == "report-2026-11-r1-communities-rework_rate.xlsx"
            book = openpyxl.load_workbook(saved)
            assert len(book.sheetnames) == 4
            ranking = [row for row in book[book.sheetnames[1]].iter_rows(values_only=True)]
            assert ranking[0][:2] == ("报告期", "2026-11")
            assert len([row for row in ranking[6:] if row[1]]) == 13  # every community, after the header

            await page.emulate_media(media="print")
            assert await page.is_hidden("header.top") and await page.is_hidden("p.exports")
            assert await page.is_hidden("form.filters") and await page.is_visible("#ranking")
            await page.screenshot(path=str(SHOTS / "report-2026-11-print.png"), full_page=True)
            await page.emulate_media(media="screen")

            await page.fill("#r-reason", "补录事件后重新计算")
            await page.click("form[action='/reports/recompute'] button[type=submit]")
            await page.wait_for_url(f"{base}/reports/2026-11?msg=reports.msg.recomputed&revision=2")
            assert "第 2 版" in await page.inner_text("#r-about")
            assert "已生成新版本的报告" in await page.inner_text("p.flash.ok")
            await _shot(page, "report-2026-11-revision-2")

            await page.goto(f"{base}/lang/en?next=/reports/2026-11")
            await page.wait_for_selector("h1")
            assert "Report 2026-11" in await page.inner_text("h1")
            assert "Red list" in await page.inner_text("section.lists")
            await _shot(page, "report-2026-11-en")
        finally:
            await raw.close()
