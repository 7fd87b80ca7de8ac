"""The dashboard (数据看板, ``/dashboard``) and its full-screen command-centre mode (大屏,
``/dashboard/screen``), for supervisors and administrators, with the same figures as JSON
(``GET /api/dashboard?unit=&from=&to=``).

Everything shown is built once by :func:`dashboard_answer` from the assessment's rollups (the core's
``store.assessment`` functions, and ``store.dashboard`` for the counters and the per-grid category
counts it has no function for), never from a scan of the events. Every number carries the URL of
the list behind it (``web.stats.drill_url``): a click on any chart element, KPI or table cell opens
that list. The period and unit are read by the one parser of every assessment page
(``web.stats.parse_period``: a unit outside the user's scope is refused, bad dates are a 400 naming
the field); without a period the dashboard shows this month and the eleven before, without a unit
the top of the user's scope (the city, the street).

The pages carry the answer and the chart texts in the page's language as JSON in one attribute
(``data-dashboard`` on ``#dashboard``), read by ``/static/dashboard.js`` (CSP ``script-src 'self'``:
no inline script); the charts are Apache ECharts, vendored in ``/static/vendor/echarts/``. The 大屏
fetches its own page again every :data:`SCREEN_REFRESH_SECONDS` and redraws from the new data.
"""

from __future__ import annotations

import asyncio
import calendar
from datetime import date
from typing import Any, TypedDict

from litestar import Controller, Request, get
from litestar.exceptions import ValidationException
from litestar.response import Template

from assessment.indicators import BY_CODE, Value
from processes.definition import catalogue as catalogue_items
from store import assessment, process_queries, process_versions
from store import dashboard as rollups
from store.org import OrgTree
from store.query_params import QueryError, flat, query_string
from web.access import supervisors
from web.auth import CurrentUser
from web.context import AppContext
from web.i18n import catalogue, language_of, translate
from web.inbox import query_error
from web.labels import category_name
from web.stats import Period, drill_url, parse_period, today

#: Months shown when the request names no period: the current one and the eleven before.
DEFAULT_MONTHS = 12
#: The 大屏 fetches its data again this often.
SCREEN_REFRESH_SECONDS = 60
#: Bars of the category chart; columns and rows of the heat table; bars of the overdue chart; grids
#: drawn with a ripple on the map.
TOP_CATEGORIES, HEAT_CATEGORIES, HEAT_ROWS, TOP_OVERDUE, HOTSPOTS = 15, 10, 20, 10, 5
#: Heat levels of the heat table's cells (``heat-0`` … ``heat-5`` in style.css).
HEAT_LEVELS = 5
#: The indicators of the KPI strip, in order.
KPIS = ("events", "closed_rate", "grassroots_share", "on_time_handled_rate", "on_time_closed_rate",
        "satisfaction_rate", "overdue_open_rate", "red_warnings")
#: The indicators of the monthly charts.
MONTHLY = ("grassroots_share", "on_time_handled_rate", "on_time_closed_rate", "yellow_warnings", "red_warnings")
#: The stages whose average working hours are shown (indicator ``avg_hours_<stage>``).
STAGES = ("dispatch", "handling", "verification", "feedback")
#: The satisfaction pie: the kinds of rating and their counters; a rating accepted by default when the
#: window ran out is a slice of its own, never counted as satisfied.
RATINGS = (("satisfied", "rating_satisfied"), ("basically_satisfied", "rating_basic"),
           ("dissatisfied", "rating_dissatisfied"), ("default", "rating_default"))
#: The order of unit kinds in the unit filter.
KIND_ORDER = ("city", "street", "community", "grid", "department", "command_centre")
#: The query parameters of the pages and the API, for the OpenAPI description (web/openapi.py).
PARAMETERS = {
    "unit": "a unit code within your scope (default: the top of it, the city or your street)",
    "from": "the first day, YYYY-MM-DD (Asia/Shanghai; default the 1st of the month eleven months back)",
    "to": "the last day, YYYY-MM-DD (default today); at most three years after from",
}
#: The routes that take them.
DASHBOARD_PATHS = ("/dashboard", "/dashboard/screen", "/api/dashboard")


# ------------------------------------------------------------------ the answer


class Figure(TypedDict):
    """A number and the list behind it: an indicator's value (rates 0..1, averages in working hours,
    counts), its numerator and denominator (None for counts), and the drill-down URL of its numerator."""

    value: float | None
    numerator: float
    denominator: float | None
    url: str


class Count(TypedDict):
    """A count and the list behind it."""

    count: int
    url: str


class UnitRef(TypedDict):
    """A unit: its code, kind and names."""

    code: str
    kind: str
    name_zh: str
    name_en: str


Month = TypedDict("Month", {"month": str, "from": str, "to": str, "closed": Count, "values": dict[str, Figure]})
Month.__doc__ = """One month of the period (the first and last clipped to it): the monthly indicators
and the closed events (the grassroots share's denominator), each with its drill-down URL."""


class CategoryCount(TypedDict):
    """Events of one category reported in the period."""

    code: str
    name_zh: str
    name_en: str
    count: int
    url: str


class Grid(TypedDict):
    """A grid on the hotspot map (its centre) with its events of the period."""

    code: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    count: int
    url: str


class HeatCell(TypedDict):
    """A cell of the heat table: a count, its level (0..5) and its list."""

    count: int
    level: int
    url: str


class HeatRow(TypedDict):
    """A grid's row of the heat table."""

    code: str
    name_zh: str
    name_en: str
    total: Count
    cells: list[HeatCell]


class Heat(TypedDict):
    """The grid × category heat table: the busiest grids and categories of the period."""

    categories: list[CategoryCount]
    rows: list[HeatRow]


class Overdue(TypedDict):
    """A child unit's tasks open past their deadline at the end of the period (count and rate)."""

    code: str
    kind: str
    name_zh: str
    name_en: str
    count: int
    rate: float | None
    url: str


class Rating(TypedDict):
    """A slice of the satisfaction pie: satisfied, basically_satisfied, dissatisfied or default."""

    key: str
    count: int
    url: str


class Hours(TypedDict):
    """Average working hours of one stage, over the events that went through it."""

    stage: str
    value: float | None
    count: float | None
    url: str


class ProcessKind(TypedDict):
    """Instances of one process kind started in the period, and how many of them have ended."""

    kind: str
    name_zh: str
    name_en: str
    started: int
    ended: int
    url: str


class ProxyItem(TypedDict):
    """Proxy services (代办) of one service item requested in the period: done, and done on time
    (none of its tasks past its deadline)."""

    code: str
    name_zh: str
    name_en: str
    requested: int
    done: int
    on_time: int
    on_time_rate: float | None


class Wishes(TypedDict):
    """Micro-wishes (微心愿) posted in the period, adopted by a party member, fulfilled and verified."""

    posted: int
    adopted: int
    fulfilled: int


class Team(TypedDict):
    """A volunteer team's activities started in the period, and the hours credited to its volunteers."""

    code: str
    name_zh: str
    name_en: str
    activities: int
    hours: float
    volunteers: int


class Processes(TypedDict):
    """The processes beyond problem events: each kind, proxy services by item, micro-wishes, and
    volunteer hours by team."""

    kinds: list[ProcessKind]
    proxy: list[ProxyItem]
    wishes: Wishes
    teams: list[Team]


DashboardAnswer = TypedDict("DashboardAnswer", {
    "unit": UnitRef, "from": str, "to": str, "target": float, "totals": dict[str, Figure], "months": list[Month],
    "categories": list[CategoryCount], "grids": list[Grid], "heat": Heat, "overdue": list[Overdue],
    "satisfaction": list[Rating], "hours": list[Hours], "processes": Processes,
})
DashboardAnswer.__doc__ = """``GET /api/dashboard``: every figure of the dashboard for a unit and period."""


def _figure(value: Value | None, url: str) -> Figure:
    if value is None:
        return {"value": None, "numerator": 0, "denominator": None, "url": url}
    return {"value": value.value, "numerator": value.numerator, "denominator": value.denominator, "url": url}


def _unit_ref(org: OrgTree, code: str) -> UnitRef:
    unit = org.units.get(code)
    if unit is None:
        return {"code": code, "kind": "", "name_zh": code, "name_en": code}
    return {"code": code, "kind": unit.kind, "name_zh": unit.name_zh, "name_en": unit.name_en}


def _month_bounds(month: str, period: Period) -> tuple[date, date]:
    """The days of ``month`` (``YYYY-MM``) within the period."""
    year, number = (int(part) for part in month.split("-"))
    first, last = date(year, number, 1), date(year, number, calendar.monthrange(year, number)[1])
    return max(first, period.day_from), min(last, period.day_to)


def _level(count: int, top: int) -> int:
    """The heat level of ``count`` when the busiest cell has ``top`` (0 only for nothing)."""
    if count <= 0 or top <= 0:
        return 0
    return max(1, min(HEAT_LEVELS, -(-count * HEAT_LEVELS // top)))


async def dashboard_answer(ctx: AppContext, org: OrgTree, period: Period, target: float) -> DashboardAnswer:
    """Every figure of the dashboard for ``period`` (a unit and two days, already checked)."""
    db, unit, day_from, day_to = ctx.db, period.unit, period.day_from, period.day_to

    def url(counter: str, code: str = unit, start: date = day_from, end: date = day_to) -> str:
        return drill_url(code, start, end, counter)

    def numerator(code: str) -> str:
        return BY_CODE[code].numerator

    grid_units = sorted((org.units[code] for code in org.descendants(unit) if org.units[code].kind == "grid"),
                        key=lambda u: u.code) if unit in org.units else []
    # The reads are independent: at once, each on its own connection (the page waits for the slowest).
    engine = await ctx.engine()
    totals, by_month, by_category, grid_totals, by_child, sums = await asyncio.gather(
        assessment.indicator_values(db, org, unit, day_from, day_to),
        assessment.monthly_values(db, org, unit, day_from, day_to, codes=MONTHLY),
        assessment.category_counts(db, unit, day_from, day_to),
        rollups.counter_of_units(db, [g.code for g in grid_units], numerator("events"), day_from, day_to),
        assessment.child_values(db, org, unit, day_from, day_to, codes=("overdue_open_rate",)),
        rollups.counter_sums(db, unit, day_from, day_to, [counter for _, counter in RATINGS]))
    months: list[Month] = []
    for month, values in by_month:
        start, end = _month_bounds(month, period)
        closed = values.get("grassroots_share")
        months.append({
            "month": month, "from": start.isoformat(), "to": end.isoformat(),
            "closed": {"count": int(closed.denominator or 0) if closed else 0,
                       "url": url(BY_CODE["grassroots_share"].denominator or "closed", unit, start, end)},
            "values": {code: _figure(values.get(code), url(numerator(code), unit, start, end)) for code in MONTHLY},
        })

    names = {c.code: c for c in engine.list.categories}

    def category(code: str, count: int, link: str) -> CategoryCount:
        known = names.get(code)
        name_zh = known.name_zh if known else code
        return {"code": code, "name_zh": name_zh, "name_en": category_name("en", code, name_zh), "count": count,
                "url": link}

    ranked = sorted(((c, n) for c, n in by_category.items() if n > 0), key=lambda item: (-item[1], item[0]))
    categories = [category(c, n, category_url(unit, day_from, day_to, c)) for c, n in ranked[:TOP_CATEGORIES]]

    # Grids of the unit: the hotspot map (every grid with coordinates) and the heat table (the busiest).
    grids: list[Grid] = [
        {"code": g.code, "name_zh": g.name_zh, "name_en": g.name_en, "lat": g.lat, "lon": g.lon,
         "count": grid_totals[g.code], "url": url(numerator("events"), g.code)}
        for g in grid_units if g.lat is not None and g.lon is not None]
    # The heat table: the busiest grids' categories only (a row a category and day to read, where the
    # map's totals have one a day).
    busiest = sorted((g for g in grid_units if grid_totals[g.code] > 0),
                     key=lambda g: (-grid_totals[g.code], g.code))[:HEAT_ROWS]
    # Its columns are the unit's busiest categories, each headed by the unit's own count, the number
    # of the list its link opens (a sum over the busiest grids alone would be less at city scale).
    columns = [c for c, _ in ranked[:HEAT_CATEGORIES]]
    per_grid = await assessment.unit_category_counts(db, [g.code for g in busiest], day_from, day_to, columns)
    top = max((per_grid[g.code].get(c, 0) for g in busiest for c in columns), default=0)
    heat: Heat = {
        "categories": [category(c, by_category[c], category_url(unit, day_from, day_to, c)) for c in columns],
        "rows": [{"code": g.code, "name_zh": g.name_zh, "name_en": g.name_en,
                  "total": {"count": grid_totals[g.code], "url": url(numerator("events"), g.code)},
                  "cells": [{"count": per_grid[g.code].get(c, 0), "level": _level(per_grid[g.code].get(c, 0), top),
                             "url": category_url(g.code, day_from, day_to, c)} for c in columns]}
                 for g in busiest],
    }

    overdue: list[Overdue] = []
    for child, values in by_child:
        value = values.get("overdue_open_rate")
        if value is not None and value.numerator > 0:
            overdue.append({**_unit_ref(org, child), "count": int(value.numerator), "rate": value.value,
                            "url": url(numerator("overdue_open_rate"), child)})
    overdue.sort(key=lambda row: (-row["count"], -(row["rate"] or 0), row["code"]))

    satisfaction: list[Rating] = [{"key": key, "count": sums[counter], "url": url(counter)}
                                  for key, counter in RATINGS]
    hours: list[Hours] = []
    for stage in STAGES:
        code = f"avg_hours_{stage}"
        value = totals.get(code)
        hours.append({"stage": stage, "value": value.value if value else None,
                      "count": value.denominator if value else None, "url": url(numerator(code))})

    return {
        "unit": _unit_ref(org, unit), "from": day_from.isoformat(), "to": day_to.isoformat(), "target": target,
        "totals": {code: _figure(totals.get(code), url(definition.numerator)) for code, definition in BY_CODE.items()},
        "months": months, "categories": categories, "grids": grids, "heat": heat,
        "overdue": overdue[:TOP_OVERDUE], "satisfaction": satisfaction, "hours": hours,
        "processes": await process_figures(ctx, org, period),
    }


async def process_figures(ctx: AppContext, org: OrgTree, period: Period) -> Processes:
    """The processes' part of the dashboard (``store.process_queries.dashboard_figures``), named."""
    unit = org.units.get(period.unit)
    start, end = assessment.day_bounds(period.day_from, period.day_to)
    raw = await process_queries.dashboard_figures(ctx.db, period.unit, unit.kind if unit else "", start, end)
    defs = await process_versions.active_definitions(ctx.db)
    items = {str(i["code"]): i for i in catalogue_items("proxy_items")}
    kinds: list[ProcessKind] = []
    for row in raw["kinds"]:
        d = defs.get(row["kind"])
        kinds.append({"kind": row["kind"], "name_zh": d.name_zh if d else row["kind"],
                      "name_en": (d.name_en or d.name_zh) if d else row["kind"], "started": row["started"],
                      "ended": row["ended"], "url": f"/processes?kind={row['kind']}"})
    proxy: list[ProxyItem] = [
        {**row, "name_zh": str(items.get(row["code"], {}).get("name_zh") or row["code"]),  # type: ignore[typeddict-item]
         "name_en": str(items.get(row["code"], {}).get("name_en") or row["code"])} for row in raw["proxy"]]
    teams: list[Team] = []
    for row in raw["teams"]:
        team = org.units.get(row["team"])
        teams.append({"code": row["team"], "name_zh": team.name_zh if team else row["team"],
                      "name_en": team.name_en if team else row["team"], "activities": row["activities"],
                      "hours": row["hours"], "volunteers": row["volunteers"]})
    return {"kinds": kinds, "proxy": proxy, "wishes": raw["wishes"], "teams": teams}


def category_url(unit: str, day_from: date, day_to: date, category: str) -> str:
    """The events of ``category`` reported in the period at ``unit``."""
    return drill_url(unit, day_from, day_to, BY_CODE["events"].numerator, category)


# ------------------------------------------------------------------ the period and the texts


def period_params(params: Any, now: date | None = None) -> dict[str, Any]:
    """The request's ``unit``, ``from`` and ``to`` (first values), ``from`` by default the first day of
    the month :data:`DEFAULT_MONTHS` - 1 months back (the parser checks them and defaults the rest)."""
    current = now or today()
    back = current.year * 12 + current.month - 1 - (DEFAULT_MONTHS - 1)
    given = flat(params, ("unit", "from", "to"))
    if given["from"] is None or (isinstance(given["from"], str) and not given["from"].strip()):
        given["from"] = date(back // 12, back % 12 + 1, 1).isoformat()
    return given


def chart_texts(lang: str, target: float) -> dict[str, str]:
    """The texts ``dashboard.js`` shows (axis names, legends, tooltips), in ``lang``: the catalogue's
    ``dash.js.*`` messages, the indicators' names, the ratings and the stages."""
    texts = {key.removeprefix("dash.js."): text for key, text in catalogue(lang).items()
             if key.startswith("dash.js.")}
    texts["target"] = translate(lang, "dash.js.target", pct=f"{target * 100:.1f}%")
    for code, definition in BY_CODE.items():
        texts[f"indicator.{code}"] = definition.name_en if lang == "en" else definition.name_zh
    for key, _ in RATINGS:
        texts[f"rating.{key}"] = translate(lang, "dash.rating_default" if key == "default" else f"rating.{key}")
    for stage in STAGES:
        texts[f"stage.{stage}"] = translate(lang, f"stage.{stage}")
    return texts


def shown(code: str, figure: Figure) -> str:
    """A KPI as the page shows it: rates in percent, averages to one decimal, counts whole, ``—``
    without a denominator."""
    value = figure["value"]
    if value is None:
        return "—"
    kind = BY_CODE[code].kind
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "average":
        return f"{value:.1f}"
    return f"{int(value)}"


def fraction(lang: str, figure: Figure) -> str:
    """A rate's numerator and denominator (``12 / 40``); empty for counts."""
    if figure["denominator"] is None:
        return ""
    return translate(lang, "dash.fraction", numerator=f"{figure['numerator']:g}",
                     denominator=f"{figure['denominator']:g}")


def _scope_units(user: CurrentUser, org: OrgTree) -> list[Any]:
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    return sorted((u for u in org.units.values() if user.sees(u.code) and u.kind in rank),
                  key=lambda u: (rank[u.kind], u.code))


async def _page(ctx: AppContext, user: CurrentUser, request: Request, template: str, screen: bool) -> Template:
    lang = language_of(request.cookies)
    org = await ctx.org()
    target = ctx.settings.dashboard_grassroots_target
    error, status = None, 200
    try:
        period = parse_period(period_params(request.query_params), user, org)
    except QueryError as exc:  # the page again, with the reason (fields by their labels) and the default period
        error, status = query_error(exc, lang, "dash."), 400
        period = parse_period(period_params({}), user, org)
    asked_days = error is None and any(isinstance(v, str) and v.strip()
                                       for v in flat(request.query_params, ("from", "to")).values())
    answer = await dashboard_answer(ctx, org, period, target)
    kpis = [{"code": code, "name": BY_CODE[code].name_en if lang == "en" else BY_CODE[code].name_zh,
             "shown": shown(code, answer["totals"][code]), "figure": answer["totals"][code],
             "fraction": fraction(lang, answer["totals"][code])} for code in KPIS]
    return Template(template, status_code=status, context={
        "user": user, "error": error, "period": period, "answer": answer, "kpis": kpis,
        "units": _scope_units(user, org), "target_shown": f"{target * 100:.1f}%", "screen": screen,
        "refresh_seconds": SCREEN_REFRESH_SECONDS,
        "query": {"unit": period.unit, "from": period.day_from.isoformat(), "to": period.day_to.isoformat()},
        # The other mode's link: the same unit, and the same days unless they are the default (a 大屏
        # left running keeps the last twelve months as the months go by).
        "switch_query": period.query() if asked_days else query_string({"unit": period.unit}),
        "state": {"lang": lang, "screen": screen, "texts": chart_texts(lang, target), "data": answer},
    })


class DashboardPages(Controller):
    """The dashboard and its 大屏, for supervisors and administrators (within their scope)."""

    guards = [supervisors]

    @get("/dashboard")
    async def dashboard(self, ctx: AppContext, user: CurrentUser, request: Request) -> Template:
        """The dashboard of a unit and period (``unit``, ``from``, ``to``; by default the top of your
        scope over the last twelve months): KPIs, charts and the grid × category table, every number a
        link to the events or tasks behind it."""
        return await _page(ctx, user, request, "dashboard.html", screen=False)

    @get("/dashboard/screen")
    async def screen(self, ctx: AppContext, user: CurrentUser, request: Request) -> Template:
        """The dashboard as a full-screen command-centre display (大屏, 1920×1080, dark), refreshing
        itself every minute."""
        return await _page(ctx, user, request, "dashboard_screen.html", screen=True)


class DashboardApi(Controller):
    """The dashboard's figures as JSON."""

    guards = [supervisors]

    @get("/api/dashboard")
    async def figures(self, ctx: AppContext, user: CurrentUser, request: Request) -> DashboardAnswer:
        """Every figure of the dashboard for ``unit`` (a unit code within your scope; default the top of
        it), ``from`` and ``to`` (YYYY-MM-DD, Asia/Shanghai, both included; default the last twelve
        months): the indicators, by month, by category, by grid, the overdue child units, the ratings
        and the working hours per stage, each with the URL of the list behind it. Supervisors and
        administrators."""
        org = await ctx.org()
        try:
            period = parse_period(period_params(request.query_params), user, org)
        except QueryError as exc:
            raise ValidationException(query_error(exc, "en")) from None
        return await dashboard_answer(ctx, org, period, ctx.settings.dashboard_grassroots_target)


DASHBOARD_CONTROLLERS = [DashboardPages, DashboardApi]
