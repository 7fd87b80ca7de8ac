"""Issue 11, item 5 in Chromium: the dashboard of street HS over events driven through the real
workflow renders every chart (a canvas with something drawn on it), with no script error and nothing
blocked by the Content-Security-Policy, in Chinese and in English; a click on a grid of the hotspot
map and on a category's bar opens the list of exactly that grid's or category's events; the 大屏
renders at 1920×1080 without scrolling and, refreshed, shows an event reported meanwhile.
Screenshots in var/screenshots/dashboard-*.png.

The clicks land on the pixel ECharts itself says a data item is drawn at (``convertToPixel`` of the
chart instance, which ``dashboard.js`` exposes as ``window.wulianDashboard.charts``)."""

from __future__ import annotations

import asyncio
from typing import Any

from store import queries
from tests.platform import Platform
from tests.test_browser import SHOTS, _CspWatchingBrowser, _login, _shot, chromium, live, wait_for_js

__all__ = ["live"]  # the fixture, used by name

#: Which user of each unit does its tasks.
WORKER = {"HS01-G1": "wg_hs01_g1", "HS01-G2": "wg_hs01_g2", "HS01-G3": "wg_hs01_g3", "HS01": "sq_hs01",
          "HS02-G1": "wg_hs02_g1", "HS02": "sq_hs02", "HS": "jd_hs", "CC-HS": "zx_hs"}

#: How much of a chart's canvas must be painted (not transparent) for it to count as drawn.
CANVAS_JS = """() => [...document.querySelectorAll('[data-chart]')].map(el => {
  const canvas = el.querySelector('canvas');
  if (!canvas || !canvas.width || !canvas.height) return [el.dataset.chart, 0];
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
  return [el.dataset.chart, painted / (canvas.width * canvas.height)];
})"""

#: The page position of a data item of a chart: [x, y] in the viewport (the chart scrolled into it).
PIXEL_JS = """([kind, series, value]) => {
  const chart = window.wulianDashboard.charts[kind];
  chart.getDom().scrollIntoView({block: 'center'});
  const [x, y] = chart.convertToPixel({seriesIndex: series}, value);
  const box = chart.getDom().getBoundingClientRect();
  return [box.left + x, box.top + y];
}"""


async def _task(platform: Platform, event_id: str, kind: str) -> Any:
    for _ in range(150):
        for task in reversed(await queries.event_tasks(platform.db, event_id)):
            if task.kind == kind and task.status in ("open", "claimed"):
                return task
        await asyncio.sleep(0.1)
    raise AssertionError(f"no open {kind} task of {event_id}")


async def _act(platform: Platform, tokens: dict[str, dict[str, str]], event_id: str, kind: str, action: str,
               body: dict[str, Any] | None = None) -> None:
    task = await _task(platform, event_id, kind)
    username = WORKER[task.unit]
    if username not in tokens:
        tokens[username] = await platform.login(username)
    r = await platform.http.post(f"/api/tasks/{task.task_id}/{action}", headers=tokens[username], json=body)
    assert r.status_code == 200, (event_id, action, r.text)


async def _state(platform: Platform, event_id: str, *states: str) -> None:
    for _ in range(150):
        event = await queries.get_event(platform.db, event_id)
        if event is not None and event.state in states:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_id} never reached {states}")


async def _world(platform: Platform) -> dict[str, str]:
    """Six events in street HS: three closed with a rating of each kind, three waiting."""
    tokens: dict[str, dict[str, str]] = {}
    events: dict[str, str] = {}
    plan = [("g1-a", "HS01-G1", "SR-01", "satisfied"), ("g1-b", "HS01-G1", "SR-02", "basically_satisfied"),
            ("g2-a", "HS01-G2", "SR-01", "dissatisfied"), ("g1-c", "HS01-G1", "SR-01", None),
            ("g3-a", "HS01-G3", "SR-02", None), ("h2-a", "HS02-G1", "SR-01", None)]
    for name, grid, category, rating in plan:
        r = await platform.report(category=category, description=f"看板浏览器测试:{name}", location={"grid": grid})
        events[name] = r["event_id"]
        if rating is None:
            continue
        await _act(platform, tokens, r["event_id"], "handle", "claim")
        await _act(platform, tokens, r["event_id"], "handle", "complete", {"result": "已处理"})
        await _act(platform, tokens, r["event_id"], "verify", "claim")
        await _act(platform, tokens, r["event_id"], "verify", "complete", {"result": "核实", "passed": True})
        await _state(platform, r["event_id"], "feedback")
        rated = await platform.http.post(f"/api/track/{r['receipt_code']}/rating",
                                         json={"rating": rating, "tracking_key": r["tracking_key"]})
        assert rated.status_code == 200, rated.text
        await _state(platform, r["event_id"], "closed", "dispatched")  # dissatisfied: reworked
    for event_id in events.values():
        await _state(platform, event_id, "closed", "dispatched", "handling")
    return events


async def test_dashboard_and_screen_in_chromium(live: tuple[Platform, str]) -> None:
    platform, base = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    events = await _world(platform)
    async with chromium() as browser:
        await _walk(platform, base, _CspWatchingBrowser(browser), events)


def _watch(page: Any) -> list[str]:
    """The script errors and console errors of ``page`` (a missing favicon aside)."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text} {msg.location}")
            if msg.type == "error" and "favicon" not in str(msg.location) else None)
    return errors


#: The charts that say "no data for this period" (their only drawing).
EMPTY_JS = """() => Object.entries(window.wulianDashboard.charts)
  .filter(([kind, chart]) => (chart.getOption().title || []).some(t => t.text)).map(([kind]) => kind).sort()"""


#: The dashboard's charts: the 大屏's eight, and the processes' two (no process ran in these worlds).
DASHBOARD_CHARTS, DASHBOARD_EMPTY = 10, ("overdue", "proxy", "volunteer")


async def _charts_drawn(page: Any, name: str, empty: tuple[str, ...] = ("overdue",), charts: int = 8) -> None:
    """All ``charts`` charts drawn: those with data fill more of their canvas, those without show
    their "no data" note (``empty``: no task is overdue yet in these worlds)."""
    await wait_for_js(page, "() => window.wulianDashboard && "
                            f"Object.keys(window.wulianDashboard.charts).length >= {charts}")
    await page.wait_for_timeout(700)  # the animations (300 ms) are over
    painted = dict(await page.evaluate(CANVAS_JS))
    assert len(painted) == charts, painted
    assert tuple(await page.evaluate(EMPTY_JS)) == empty, name
    blank = {kind: share for kind, share in painted.items() if share < (0.001 if kind in empty else 0.01)}
    assert not blank, (name, "charts with nothing drawn", blank)


async def _walk(platform: Platform, base: str, browser: Any, events: dict[str, str]) -> None:
    office = {"viewport": {"width": 1400, "height": 1000}, "locale": "zh-CN"}
    context = await browser.new_context(**office)
    page = await _login(context, base, "zx_hs")
    errors = _watch(page)
    await page.click("header nav a[href='/dashboard']")
    await page.wait_for_url(f"{base}/dashboard")
    await _charts_drawn(page, "dashboard", DASHBOARD_EMPTY, DASHBOARD_CHARTS)
    assert "虎山街道" in await page.inner_text("h1 small")
    assert await page.inner_text(".kpi-events .kpi-value") == "6"  # street HS's six (HS02-G1's too)
    # Grid HS01-G1 on the map: hovered, its tooltip (drawn on the canvas: no style attribute for the
    # CSP to refuse); clicked, the list of its three events.
    grid = await page.evaluate("""() => window.wulianDashboard.charts.map.getOption().series[0].data
                                        .find(d => d.code === 'HS01-G1')""")
    assert grid["value"][2] == 3, grid
    x, y = await page.evaluate(PIXEL_JS, ["map", 0, grid["value"][:2]])
    await page.mouse.move(x, y)
    await page.wait_for_timeout(400)
    await _shot(page, "dashboard-01-street-zh")
    assert errors == [], errors
    await page.mouse.click(x, y)
    await page.wait_for_url("**/stats/drill?**")
    assert "unit=HS01-G1" in page.url and "counter=events" in page.url, page.url
    listed = await page.eval_on_selector_all("#drill tr[data-event]", "rows => rows.map(r => r.dataset.event)")
    assert sorted(listed) == sorted(events[n] for n in ("g1-a", "g1-b", "g1-c")), listed
    assert await page.get_attribute("#drill-total", "data-total") == "3"
    await page.screenshot(path=str(SHOTS / "dashboard-02-drill-grid.png"), full_page=True)

    # A click on the bar of SR-02: its two events of the street (HS01-G1 and HS01-G3).
    await page.go_back()
    await _charts_drawn(page, "dashboard", DASHBOARD_EMPTY, DASHBOARD_CHARTS)
    bars = await page.evaluate("() => window.wulianDashboard.charts.categories.getOption().series[0].data")
    index = next(i for i, bar in enumerate(bars) if bar["code"] == "SR-02")
    x, y = await page.evaluate(PIXEL_JS, ["categories", 0, [bars[index]["value"] / 2, index]])
    await page.mouse.click(x, y)
    await page.wait_for_url("**/stats/drill?**")
    assert "category=SR-02" in page.url and "unit=HS" in page.url, page.url
    listed = await page.eval_on_selector_all("#drill tr[data-event]", "rows => rows.map(r => r.dataset.event)")
    assert sorted(listed) == sorted(events[n] for n in ("g1-b", "g3-a")), listed

    # A click in the middle of the pie's "basically satisfied" slice: that one event (the dissatisfied
    # one is being reworked: not closed, so not counted yet).
    await page.go_back()
    await _charts_drawn(page, "dashboard", DASHBOARD_EMPTY, DASHBOARD_CHARTS)
    x, y = await page.evaluate("""() => {
      const c = window.wulianDashboard.charts.satisfaction, data = c.getModel().getSeriesByIndex(0).getData();
      c.getDom().scrollIntoView({block: 'center'});
      const i = c.getOption().series[0].data.findIndex(d => d.key === 'basically_satisfied');
      const l = data.getItemLayout(i), mid = (l.startAngle + l.endAngle) / 2, r = (l.r0 + l.r) / 2;
      const box = c.getDom().getBoundingClientRect();
      return [box.left + l.cx + r * Math.cos(mid), box.top + l.cy + r * Math.sin(mid)]; }""")
    await page.mouse.click(x, y)
    await page.wait_for_url("**/stats/drill?**")
    assert "counter=rating_basic" in page.url, page.url
    listed = await page.eval_on_selector_all("#drill tr[data-event]", "rows => rows.map(r => r.dataset.event)")
    assert listed == [events["g1-b"]], listed
    assert errors == [], errors

    # In English: the same page, its chart texts in English.
    await page.goto(f"{base}/lang/en?next=/dashboard")
    await page.goto(f"{base}/dashboard?unit=HS01")
    await _charts_drawn(page, "dashboard-en", DASHBOARD_EMPTY, DASHBOARD_CHARTS)
    legend = await page.evaluate("() => window.wulianDashboard.charts.grassroots.getOption().legend[0].data")
    assert legend[1] == "Closed events" and not any("\u4e00" <= ch <= "\u9fff" for ch in "".join(legend)), legend
    assert "Chengbei Community" in await page.inner_text("h1 small")
    await _shot(page, "dashboard-03-community-en")
    assert errors == [], errors
    await context.close()

    # The 大屏 at 1920×1080: dark, nothing scrolls, every chart drawn; refreshed, it counts a new event.
    screen_ctx = await browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    screen = await _login(screen_ctx, base, "zx_hs")
    errors = _watch(screen)
    await screen.clock.install()  # the page's timers, run forward below
    await screen.goto(f"{base}/dashboard/screen")
    await _charts_drawn(screen, "screen")
    size = await screen.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
    assert size == [1920, 1080], size
    background = await screen.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(11, 20, 38)", background
    assert await screen.inner_text(".kpi-events .kpi-value") == "6"
    await _shot(screen, "dashboard-04-screen-1920x1080")
    # A minute later (the page's clock run forward) it has fetched its figures again by itself.
    await platform.report(description="看板浏览器测试:大屏刷新", location={"grid": "HS01-G2"})
    assert await screen.get_attribute("#dashboard", "data-refreshed") is None
    await screen.clock.run_for(61_000)
    await wait_for_js(screen, "() => document.getElementById('dashboard').dataset.refreshed === '1'")
    assert await screen.inner_text(".kpi-events .kpi-value") == "7"
    await _charts_drawn(screen, "screen refreshed")
    assert errors == [], errors
    await screen.screenshot(path=str(SHOTS / "dashboard-05-screen-refreshed.png"))
    await screen_ctx.close()
