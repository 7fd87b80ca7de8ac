"""The indicators (督查考核) for a unit and period: ``GET /api/indicators``, the drill-down lists behind
every number (``GET /api/indicators/drill``) and the pages ``/stats`` and ``/stats/drill``.

One parser (``parse_period``) checks unit and dates for every page and API that shows indicators
(the dashboard and the reports too): supervisors and administrators ask for any unit of their scope,
other staff for their own unit only (403 otherwise); a bad parameter is a 400 naming the field in
the page's language. Every number on a page links to ``drill_url`` for its counter, whose list
holds exactly the subjects counted (``store.assessment.drill``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypedDict

from litestar import Controller, Request, get
from litestar.exceptions import PermissionDeniedException, ValidationException
from litestar.response import Template

from assessment import facts
from assessment.indicators import INDICATORS, USED_COUNTERS, Value
from rules.worktime import CITY_TZ
from store import assessment
from store.org import OrgTree
from store.query_params import QueryError, code, day, day_range, number, query_string, text
from web.access import signed_in
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.i18n import language_of
from web.inbox import query_error
from web.views import iso

#: The indicators of the units below, on ``/stats`` (a column each).
CHILD_CODES = ("events", "handled_rate", "on_time_handled_rate", "closed_rate", "grassroots_share",
               "satisfaction_rate", "overdue_open_rate", "yellow_warnings", "red_warnings")
#: The longest period one request may ask for (three years and a day).
MAX_DAYS = 3 * 366
#: The counters that have a drill-down list: those some indicator reads, and the kinds of rating one by
#: one (the dashboard's satisfaction pie).
DRILL_COUNTERS = (*USED_COUNTERS, *(c for c in ("rating_satisfied", "rating_basic", "rating_dissatisfied")
                                    if c not in USED_COUNTERS))


@dataclass(frozen=True)
class Period:
    """A unit and the days of a period (both inclusive, Asia/Shanghai)."""

    unit: str
    day_from: date
    day_to: date

    def query(self, **extra: str | None) -> str:
        """The period as a query string (for links), with ``extra``."""
        return query_string({"unit": self.unit, "from": self.day_from, "to": self.day_to}, **extra)


def today() -> date:
    """Today in the city."""
    return datetime.now(CITY_TZ).date()


def default_unit(user: CurrentUser, org: OrgTree) -> str:
    """The unit a user's indicators open on: the city for city-wide roles, their street for a street
    supervisor, else their own unit."""
    if len(user.scope) >= len(org.units):
        return assessment.city_of(org)
    if user.is_supervisor:
        return org.street_of(user.unit) or user.unit
    return user.unit


def may_read(user: CurrentUser, unit: str) -> bool:
    """Whether ``user`` may read the indicators of ``unit``: supervisors and administrators within
    their scope, everybody else their own unit."""
    if user.is_supervisor or user.is_admin:
        return user.sees(unit)
    return unit == user.unit


def parse_period(params: Any, user: CurrentUser, org: OrgTree, *, now: date | None = None) -> Period:
    """Unit (``unit``, default :func:`default_unit`), ``from`` (default the 1st of this month) and
    ``to`` (default today), checked; QueryError for a bad value, 403 for a unit out of reach."""
    unit = code(params, "unit") or default_unit(user, org)
    if unit not in org.units:
        raise QueryError(f"unit: no unit '{unit}'", "stats.err.unit", name="unit", value=unit)
    current = now or today()
    day_from = day(params, "from") or current.replace(day=1)
    day_to = day(params, "to") or current
    day_range(day_from, day_to, "from", "to")
    if (day_to - day_from).days >= MAX_DAYS:
        raise QueryError(f"from: a period of at most {MAX_DAYS} days", "stats.err.span", name="from", days=MAX_DAYS)
    if not may_read(user, unit):
        raise refusal(PermissionDeniedException, "stats.err.scope")
    return Period(unit, day_from, day_to)


def drill_url(unit: str, day_from: date, day_to: date, counter: str, category: str | None = None) -> str:
    """The page listing the events or tasks behind ``counter`` for the unit and period (of one event
    category only, when ``category`` is given)."""
    return "/stats/drill?" + query_string({"unit": unit, "from": day_from, "to": day_to, "counter": counter,
                                           "category": category})


class ValueAnswer(TypedDict):
    """An indicator's value (None without a denominator), numerator and denominator."""

    value: float | None
    numerator: float
    denominator: float | None


class IndicatorsAnswer(TypedDict):
    """``GET /api/indicators``: every indicator of the unit over the period."""

    unit: str
    indicators: dict[str, ValueAnswer]


class DrillItemAnswer(TypedDict):
    """One subject behind a number: the event, and the task for task counters."""

    subject: str
    kind: str
    day: str
    event_id: str
    receipt_code: str
    category: str
    state: str
    task_id: str | None
    unit: str | None
    amount: float | None


class DrillAnswer(TypedDict):
    """``GET /api/indicators/drill``: a page of the subjects behind a counter, and their count."""

    unit: str
    counter: str
    total: int
    items: list[DrillItemAnswer]
    next_cursor: str | None


def value_answer(v: Value) -> ValueAnswer:
    """A value as JSON."""
    return {"value": v.value, "numerator": v.numerator, "denominator": v.denominator}


def _counter(params: Any) -> str:
    counter = text(params, "counter", 40)
    if counter not in DRILL_COUNTERS:
        raise QueryError(f"counter: one of {', '.join(DRILL_COUNTERS)}", "stats.err.counter", name="counter")
    return counter


def _cursor(params: Any) -> tuple[date, str] | None:
    raw = text(params, "cursor", 300)
    if raw is None:
        return None
    day_part, _, subject = raw.partition("|")
    try:
        return date.fromisoformat(day_part), subject
    except ValueError:
        raise QueryError("cursor: not a cursor of this list", "inbox.err.cursor") from None


def _item(row: assessment.DrillRow) -> DrillItemAnswer:
    return {"subject": row.subject, "kind": row.kind, "day": row.day.isoformat(), "event_id": row.event.event_id,
            "receipt_code": row.event.receipt_code, "category": row.event.category, "state": row.event.state,
            "task_id": row.task.task_id if row.task else None,
            "unit": row.task.unit if row.task else row.event.unit, "amount": row.amount}


class StatsApi(Controller):
    """The indicators in the JSON API."""

    path = "/api/indicators"
    guards = [signed_in]

    @get("/")
    async def indicators(self, ctx: AppContext, user: CurrentUser, request: Request) -> dict[str, Any]:
        """Every indicator of ``unit`` (its subtree) from ``from`` to ``to`` (YYYY-MM-DD, inclusive,
        Asia/Shanghai): value (a fraction for rates; null without a denominator), numerator, denominator."""
        org = await ctx.org()
        try:
            period = parse_period(request.query_params, user, org)
        except QueryError as exc:
            raise ValidationException(query_error(exc, "en")) from None
        values = await assessment.indicator_values(ctx.db, org, period.unit, period.day_from, period.day_to)
        return {"unit": period.unit, "from": period.day_from.isoformat(), "to": period.day_to.isoformat(),
                "indicators": {c: value_answer(v) for c, v in values.items()}}

    @get("/drill")
    async def drill(self, ctx: AppContext, user: CurrentUser, request: Request) -> dict[str, Any]:
        """The events or tasks behind ``counter`` (a numerator or denominator of an indicator) for the
        unit and period: ``total`` and a page of ``items`` (``limit`` 1-200, ``cursor``)."""
        org = await ctx.org()
        try:
            period = parse_period(request.query_params, user, org)
            counter = _counter(request.query_params)
            category = code(request.query_params, "category")
            limit = number(request.query_params, "limit", 50, 1, assessment.MAX_DRILL_LIMIT)
            cursor = _cursor(request.query_params)
        except QueryError as exc:
            raise ValidationException(query_error(exc, "en")) from None
        page = await assessment.drill(ctx.db, org, period.unit, period.day_from, period.day_to, counter,
                                      cursor=cursor, limit=limit, category=category)
        return {"unit": period.unit, "from": period.day_from.isoformat(), "to": period.day_to.isoformat(),
                "counter": counter, "total": page.total, "items": [_item(r) for r in page.rows],
                "next_cursor": page.next_cursor}


def _units_for(user: CurrentUser, org: OrgTree) -> list[Any]:
    """The units a user may pick on the indicator pages."""
    units = [u for u in org.units.values() if may_read(user, u.code)
             and (u.kind in facts.COLUMN_OF_KIND or u.parent is None)]
    order = {"city": 0, "street": 1, "department": 2, "command_centre": 3, "community": 4, "grid": 5}
    return sorted(units, key=lambda u: (order.get(u.kind, 9), u.code))


class StatsPages(Controller):
    """The indicator table of a unit and period, and the lists behind its numbers."""

    guards = [signed_in]

    @get("/stats")
    async def stats(self, ctx: AppContext, user: CurrentUser, request: Request) -> Template:
        """Every indicator of a unit over a period with its definition; numerator and denominator link
        to their lists; below, the same for each unit under it."""
        lang = language_of(request.cookies)
        org = await ctx.org()
        error, status, values, children = None, 200, None, []
        try:
            period = parse_period(request.query_params, user, org)
        except QueryError as exc:
            error, status = query_error(exc, lang, "stats."), 400
            current = today()
            period = Period(default_unit(user, org), current.replace(day=1), current)
        if error is None:
            values = await assessment.indicator_values(ctx.db, org, period.unit, period.day_from, period.day_to)
            children = await assessment.child_values(ctx.db, org, period.unit, period.day_from, period.day_to,
                                                     codes=CHILD_CODES)
        return Template("stats.html", status_code=status, context={
            "user": user, "error": error, "period": period, "values": values, "children": children,
            "indicators": INDICATORS, "units": _units_for(user, org), "unit_names": _unit_names(org, lang),
            "drill_url": drill_url, "child_codes": CHILD_CODES, "previous": _shift(period, -1),
            "next": _shift(period, +1),
        })

    @get("/stats/drill")
    async def drill(self, ctx: AppContext, user: CurrentUser, request: Request) -> Template:
        """The events or tasks behind one number of ``/stats``, with their count."""
        lang = language_of(request.cookies)
        org = await ctx.org()
        try:
            period = parse_period(request.query_params, user, org)
            counter = _counter(request.query_params)
            category = code(request.query_params, "category")
            cursor = _cursor(request.query_params)
        except QueryError as exc:
            raise refusal(ValidationException, "stats.err.refused", text=query_error(exc, lang, "stats.")) from None
        page = await assessment.drill(ctx.db, org, period.unit, period.day_from, period.day_to, counter,
                                      cursor=cursor, limit=100, category=category)
        return Template("stats_drill.html", context={
            "user": user, "period": period, "counter": counter, "category": category, "page": page,
            "unit_names": _unit_names(org, lang), "iso": iso,
            "next_url": "/stats/drill?" + period.query(counter=counter, category=category, cursor=page.next_cursor)
            if page.next_cursor else None,
        })


def _unit_names(org: OrgTree, lang: str) -> dict[str, str]:
    return {c: (u.name_en if lang == "en" else u.name_zh) for c, u in org.units.items()}


def _shift(period: Period, months: int) -> Period | None:
    """The same unit over the calendar month before or after the period's first month."""
    first = period.day_from.replace(day=1)
    if months < 0:
        start = (first - timedelta(days=1)).replace(day=1)
    else:
        start = (first + timedelta(days=32)).replace(day=1)
        if start > today():
            return None
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return Period(period.unit, start, end)


STATS_CONTROLLERS = [StatsApi, StatsPages]
