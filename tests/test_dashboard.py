"""The dashboard (issue 11, item 5) over events driven through the real workflow: the figures of
``GET /api/dashboard`` are the core's (``store.assessment.indicator_values`` and friends) for the same
unit and period, month by month too; every URL a figure carries lists exactly as many events or
tasks as the figure counts; the scope (a street's supervisor cannot ask for another street, a grid
worker not at all); the pages in both languages, their texts for the charts from the catalogue.

The world: in street HS, E1 (grid HS01-G1, SR-01) handled, verified and rated satisfied; E2 (HS01-G1,
SR-02) rated basically satisfied; E3 (HS01-G2, SR-01) waiting in the grid's inbox; in street ST, E4
(ST01-G1) reported.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from assessment.indicators import BY_CODE
from store import assessment, queries
from store.org import OrgTree
from tests.platform import Platform, csrf, running_platform
from web.dashboard import DEFAULT_MONTHS, chart_texts, period_params
from web.i18n import catalogue
from web.stats import today

WORKER = {"HS01-G1": "wg_hs01_g1", "HS01-G2": "wg_hs01_g2", "HS01": "sq_hs01", "HS": "jd_hs", "ST01-G1": "wg_st01_g1",
          "ST01": "sq_st01"}


@dataclass
class World:
    """The platform and its events (name → event id)."""

    platform: Platform
    events: dict[str, str] = field(default_factory=dict)
    receipts: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    async def bearer(self, username: str) -> dict[str, str]:
        if username not in self.tokens:
            password = "admin12345" if username == "admin" else "demo12345"  # noqa: S105
            self.tokens[username] = await self.platform.login(username, password)
        return self.tokens[username]

    async def task(self, name: str, kind: str) -> Any:
        for _ in range(150):
            for task in reversed(await queries.event_tasks(self.platform.db, self.events[name])):
                if task.kind == kind and task.status in ("open", "claimed"):
                    return task
            await asyncio.sleep(0.1)
        raise AssertionError(f"no open {kind} task of {name}")

    async def act(self, name: str, kind: str, action: str, body: dict[str, Any] | None = None) -> None:
        task = await self.task(name, kind)
        r = await self.platform.http.post(f"/api/tasks/{task.task_id}/{action}",
                                          headers=await self.bearer(WORKER[task.unit]), json=body)
        assert r.status_code == 200, (name, action, r.text)

    async def state(self, name: str, *states: str) -> None:
        for _ in range(150):
            event = await queries.get_event(self.platform.db, self.events[name])
            if event is not None and event.state in states:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{name} never reached {states}")

    async def closed_with(self, name: str, grid: str, category: str, rating: str) -> None:
        """Report ``name``, handle and verify it, and rate it ``rating``."""
        r = await self.platform.report(category=category, description=f"看板测试:{name}", location={"grid": grid})
        self.events[name], self.receipts[name] = r["event_id"], r["receipt_code"]
        await self.act(name, "handle", "claim")
        await self.act(name, "handle", "complete", {"result": "已处理"})
        await self.act(name, "verify", "claim")
        await self.act(name, "verify", "complete", {"result": "现场核实", "passed": True})
        await self.state(name, "feedback")
        r2 = await self.platform.http.post(f"/api/track/{r['receipt_code']}/rating",
                                           json={"rating": rating, "tracking_key": r["tracking_key"]})
        assert r2.status_code == 200, r2.text
        await self.state(name, "closed")


@pytest.fixture(scope="module")
async def world(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with running_platform(dev_env.client, Path(tmp_path_factory.mktemp("dash"))) as p:
        w = World(p)
        await w.closed_with("E1", "HS01-G1", "SR-01", "satisfied")
        await w.closed_with("E2", "HS01-G1", "SR-02", "basically_satisfied")
        for name, grid in (("E3", "HS01-G2"), ("E4", "ST01-G1")):
            r = await p.report(description=f"看板测试:{name}", location={"grid": grid})
            w.events[name], w.receipts[name] = r["event_id"], r["receipt_code"]
            await w.state(name, "dispatched", "handling")
        yield w


def _period() -> tuple[date, date]:
    """The dashboard's default period (the last twelve months up to today)."""
    params = period_params({})
    return date.fromisoformat(params["from"]), today()


def _drill_query(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    assert parts.path == "/stats/drill", url
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


async def _drill_total(w: World, url: str, who: dict[str, str]) -> int:
    """How many subjects the list behind ``url`` holds (through the API of that list)."""
    r = await w.platform.http.get("/api/indicators/drill", params=_drill_query(url), headers=who)
    assert r.status_code == 200, (url, r.text)
    return int(r.json()["total"])


def _same(figure: dict[str, Any], value: Any) -> None:
    assert (figure["value"], figure["numerator"], figure["denominator"]) == (
        value.value, value.numerator, value.denominator)


@pytest.mark.parametrize(("username", "unit"), [("zx_hs", "HS"), ("zx_city", None), ("zx_hs", "HS01-G1"),
                                                 ("admin", "HS01")])
async def test_the_figures_are_the_cores_for_the_same_unit_and_period(world: World, username: str,
                                                                        unit: str | None) -> None:
    p, who = world.platform, await world.bearer(username)
    r = await p.http.get("/api/dashboard", params={"unit": unit} if unit else {}, headers=who)
    assert r.status_code == 200, r.text
    answer = r.json()
    org = await OrgTree.load(p.db)
    day_from, day_to = _period()
    expected_unit = unit or assessment.city_of(org)
    assert (answer["unit"]["code"], answer["from"], answer["to"]) == (
        expected_unit, day_from.isoformat(), day_to.isoformat())
    assert answer["target"] == pytest.approx(0.973)

    values = await assessment.indicator_values(p.db, org, expected_unit, day_from, day_to)
    assert set(answer["totals"]) == set(BY_CODE)
    for code, value in values.items():
        _same(answer["totals"][code], value)
    # Month by month: each month's figures are the indicators of that month's days.
    assert len(answer["months"]) == DEFAULT_MONTHS
    for month in answer["months"]:
        start, end = date.fromisoformat(month["from"]), date.fromisoformat(month["to"])
        assert month["month"] == start.strftime("%Y-%m") == end.strftime("%Y-%m")
        monthly = await assessment.indicator_values(p.db, org, expected_unit, start, end)
        for code, figure in month["values"].items():
            _same(figure, monthly[code])
        assert month["closed"]["count"] == (monthly["grassroots_share"].denominator or 0)
    counts = await assessment.category_counts(p.db, expected_unit, day_from, day_to)
    assert {c["code"]: c["count"] for c in answer["categories"]} == counts
    grids = {g["code"]: g["count"] for g in answer["grids"]}
    per_grid = await assessment.unit_category_counts(p.db, list(grids), day_from, day_to)
    assert grids == {g: sum(per_grid.get(g, {}).values()) for g in grids}
    for row in answer["heat"]["rows"]:
        assert [c["count"] for c in row["cells"]] == [
            per_grid[row["code"]].get(c["code"], 0) for c in answer["heat"]["categories"]]
    children = dict(await assessment.child_values(p.db, org, expected_unit, day_from, day_to))
    for row in answer["overdue"]:
        assert row["count"] == children[row["code"]]["overdue_open_rate"].numerator > 0
    for hours in answer["hours"]:
        value = values[f"avg_hours_{hours['stage']}"]
        assert (hours["value"], hours["count"]) == (value.value, value.denominator)

    # Every URL lists as many subjects as its figure counts.
    checks: list[tuple[str, float]] = [(f["url"], f["numerator"]) for f in answer["totals"].values()]
    checks += [(m["closed"]["url"], m["closed"]["count"]) for m in answer["months"]]
    checks += [(f["url"], f["numerator"]) for m in answer["months"] for f in m["values"].values()]
    checks += [(s["url"], s["count"]) for s in answer["satisfaction"]]
    checks += [(c["url"], c["count"]) for c in answer["categories"] + answer["heat"]["categories"]]
    checks += [(g["url"], g["count"]) for g in answer["grids"]]
    checks += [(cell["url"], cell["count"]) for row in answer["heat"]["rows"] for cell in row["cells"]]
    checks += [(row["total"]["url"], row["total"]["count"]) for row in answer["heat"]["rows"]]
    checks += [(o["url"], o["count"]) for o in answer["overdue"]]
    for url, number in checks:
        if "counter=hours_" in url:
            continue  # an average's list holds the subjects of its denominator (checked below)
        assert await _drill_total(world, url, who) == number, url
    for hours in answer["hours"]:
        assert await _drill_total(world, hours["url"], who) == (hours["count"] or 0)


async def test_the_world_is_counted(world: World) -> None:
    """The figures of street HS are what happened there (so the equalities above are not of zeros)."""
    r = await world.platform.http.get("/api/dashboard", params={"unit": "HS"}, headers=await world.bearer("zx_hs"))
    answer = r.json()
    assert answer["totals"]["events"]["numerator"] == 3  # E1, E2, E3 (E4 is another street's)
    assert (answer["totals"]["closed_rate"]["numerator"], answer["totals"]["closed_rate"]["denominator"]) == (2, 3)
    assert {s["key"]: s["count"] for s in answer["satisfaction"]} == {
        "satisfied": 1, "basically_satisfied": 1, "dissatisfied": 0, "default": 0}
    assert {g["code"]: g["count"] for g in answer["grids"] if g["count"]} == {"HS01-G1": 2, "HS01-G2": 1}
    assert {c["code"]: c["count"] for c in answer["categories"]} == {"SR-01": 2, "SR-02": 1}
    assert [r["code"] for r in answer["heat"]["rows"]] == ["HS01-G1", "HS01-G2"]
    assert all(set(g) >= {"lat", "lon"} for g in answer["grids"]) and len(answer["grids"]) == 18  # street HS's grids
    # The list behind grid HS01-G1 on the map: E1 and E2, not E3.
    grid = next(g for g in answer["grids"] if g["code"] == "HS01-G1")
    r = await world.platform.http.get("/api/indicators/drill", params=_drill_query(grid["url"]),
                                      headers=await world.bearer("zx_hs"))
    assert {i["event_id"] for i in r.json()["items"]} == {world.events["E1"], world.events["E2"]}
    # SR-02 in the heat table: E2 alone.
    cell = next(c for row in answer["heat"]["rows"] if row["code"] == "HS01-G1" for c, cat in
                zip(row["cells"], answer["heat"]["categories"], strict=True) if cat["code"] == "SR-02")
    r = await world.platform.http.get("/api/indicators/drill", params=_drill_query(cell["url"]),
                                      headers=await world.bearer("zx_hs"))
    assert [i["event_id"] for i in r.json()["items"]] == [world.events["E2"]]


@pytest.mark.parametrize(("username", "params", "status"), [
    ("zx_st", {"unit": "HS"}, 403),  # another street's supervisor
    ("zx_st", {"unit": "HS01-G1"}, 403),
    ("zx_hs", {"unit": "ST01-G1"}, 403),
    ("zx_hs", {"unit": "JS"}, 403),  # the city is above a street's supervisor
    ("wg_hs01_g1", {}, 403),  # a grid worker
    ("wg_hs01_g1", {"unit": "HS01-G1"}, 403),  # not even for the own grid
    ("sq_hs01", {"unit": "HS01"}, 403),
    ("zx_hs", {"from": "2026-13-01"}, 400),
    ("zx_hs", {"unit": "NOPE"}, 400),
    ("zx_hs", {"from": "2026-05-01", "to": "2026-04-01"}, 400),
    ("zx_st", {}, 200),  # the own street
])
async def test_scope_and_bad_parameters(world: World, username: str, params: dict[str, str], status: int) -> None:
    r = await world.platform.http.get("/api/dashboard", params=params, headers=await world.bearer(username))
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json()["unit"]["code"] == "ST"
        assert r.json()["totals"]["events"]["numerator"] == 1  # E4
    elif status == 400:
        assert any(name in r.json()["detail"] for name in params), r.json()  # names the parameter
    r = await world.platform.http.get("/api/dashboard", params=params)
    assert r.status_code == 401


def _state(html: str) -> dict[str, Any]:
    found = re.search(r"data-dashboard='([^']*)'", html)
    assert found, "no data-dashboard attribute"
    return dict(json.loads(unescape(found.group(1))))


async def _page_session(w: World, username: str, lang: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=w.platform.http._transport, base_url="http://testserver")
    await http.get(f"/lang/{lang}")
    page = (await http.get("/login")).text
    r = await http.post("/login", data={"username": username, "password": "demo12345", "_csrf_token": csrf(page)})
    assert r.status_code == 303, r.text
    return http


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_pages_carry_the_figures_and_their_texts_in_the_page_language(world: World, lang: str) -> None:
    http = await _page_session(world, "zx_hs", lang)
    try:
        for url in ("/dashboard", "/dashboard/screen"):
            r = await http.get(url)
            assert r.status_code == 200, r.text[:500]
            state = _state(r.text)
            assert state["lang"] == lang and state["screen"] == url.endswith("screen")
            api = (await world.platform.http.get("/api/dashboard", headers=await world.bearer("zx_hs"))).json()
            assert state["data"] == api  # the same figures as the API
            texts = state["texts"]
            assert texts == chart_texts(lang, 0.973)
            assert texts["month"] == catalogue(lang)["dash.js.month"]
            assert texts["indicator.grassroots_share"] == BY_CODE["grassroots_share"].name(lang)
            assert texts["target"] == catalogue(lang)["dash.js.target"].format(pct="97.3%")
            cjk = [v for v in texts.values() if re.search(r"[\u4e00-\u9fff]", v)]
            assert (not cjk) if lang == "en" else len(cjk) == len(texts), cjk
            assert '<script src="/static/vendor/echarts/echarts.min.js" defer>' in r.text
            assert '<script src="/static/dashboard.js" defer>' in r.text
            # The KPIs link to their lists.
            assert f'href="{unescape(api["totals"]["events"]["url"])}"' in unescape(r.text)
        # The other mode keeps the unit, and the days only when they were asked for (a 大屏 left
        # running keeps the last twelve months as the months go by).
        r = await http.get("/dashboard")
        assert 'href="/dashboard/screen?unit=HS"' in r.text
        r = await http.get("/dashboard/screen?unit=HS01&from=2026-01-01")
        assert f'href="/dashboard?unit=HS01&amp;from=2026-01-01&amp;to={today().isoformat()}"' in r.text
        r = await http.get("/dashboard?from=nonsense")
        assert r.status_code == 400 and catalogue(lang)["dash.from"] in r.text
        r = await http.get("/dashboard?unit=ST")
        assert r.status_code == 403
        r = await http.get("/inbox")
        assert 'href="/dashboard"' in r.text and catalogue(lang)["nav.dashboard"] in r.text
    finally:
        await http.aclose()
    worker = await _page_session(world, "wg_hs01_g1", lang)
    try:
        assert (await worker.get("/dashboard")).status_code == 403
        assert 'href="/dashboard"' not in (await worker.get("/inbox")).text
    finally:
        await worker.aclose()


def test_the_vendored_echarts_is_the_npm_build_with_its_licence() -> None:
    vendor = Path(__file__).resolve().parent.parent / "web" / "static" / "vendor" / "echarts"
    head = (vendor / "echarts.min.js").read_text(encoding="utf-8")[:2000]
    assert "Licensed to the Apache Software Foundation" in head
    assert "Apache License" in (vendor / "LICENSE").read_text(encoding="utf-8")
    assert "zrender" in (vendor / "README.md").read_text(encoding="utf-8")
    # No user-visible word in the dashboard's script: its texts come from the page's JSON.
    script = (vendor.parent.parent / "dashboard.js").read_text(encoding="utf-8")
    code = "\n".join(line.split("//")[0] for line in script.splitlines())
    assert not re.search(r"[\u4e00-\u9fff]", code)


async def test_the_heat_tables_columns_count_the_whole_unit(org_db: Any, tmp_path: Path) -> None:
    """At city scale the heat table shows the busiest grids only; its columns are the unit's busiest
    categories, each headed by the unit's own count: the number of the list its link opens."""
    from store.demo_history import seed_history
    from store.org import OrgTree
    from tests import webapp
    from web.dashboard import HEAT_CATEGORIES, HEAT_ROWS

    await seed_history(org_db, await OrgTree.load(org_db), events=600)
    browser = webapp.browsers(webapp.context(org_db, tmp_path))
    async with browser() as http:
        answer = (await http.get("/api/dashboard", headers=await webapp.api_login(http, "zx_city"))).json()
    busy = [g for g in answer["grids"] if g["count"]]
    assert len(answer["heat"]["rows"]) == HEAT_ROWS < len(busy)  # some grids with events are not rows
    counts = {c["code"]: c["count"] for c in answer["categories"]}
    heads = answer["heat"]["categories"]
    assert [c["code"] for c in heads] == [c["code"] for c in answer["categories"]][:HEAT_CATEGORIES]
    assert all(c["count"] == counts[c["code"]] for c in heads)
    assert all(sum(row["cells"][i]["count"] for row in answer["heat"]["rows"]) <= c["count"]
               for i, c in enumerate(heads))
