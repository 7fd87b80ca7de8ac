"""The supervisors' event search (``store/event_search.py``) as a page (``GET /search``), in the API
(``GET /api/events``) and as CSV and XLSX exports of the whole result, all from one parse of the
parameters (``parse_search``) and one scope (``SearchScope.of`` the user's unit scope).

Supervisors and administrators only (the ``supervisors`` guard: 403 otherwise). A bad parameter is
a 400 whose reason is in the visitor's language (the page) or in English (the API), never a 500. An
export is refused with its cap (:data:`store.event_search.EXPORT_CAP` rows) before a byte is sent,
then streamed a batch at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypedDict

from litestar import Controller, Request, Response, get
from litestar.exceptions import ValidationException
from litestar.response import Stream, Template

from store import event_search
from store.event_search import EventSearch, Hit, SearchScope, parse_search
from store.query_params import QueryError
from web.access import supervisors
from web.auth import CurrentUser
from web.context import AppContext
from web.errors import refusal
from web.exports import TIME_ZONE_NAME, csv_stream, xlsx_stream
from web.i18n import language_of, translate
from web.inbox import query_error
from web.views import iso
from workflows.types import SOURCES

#: The columns of an export: (catalogue key of the header, what of a hit it holds).
EXPORT_COLUMNS = ("receipt_code", "event_id", "category", "category_name", "unit", "unit_name", "tier", "state",
                  "source", "reported", "closed", "overdue", "rework_count", "address", "description")


#: The query parameters of the search, its exports and its API, for the OpenAPI description (web/openapi.py).
PARAMETERS = {
    "q": "a receipt code (matched exactly), or text looked for in description and address",
    "category": "category code (GET /api/categories)",
    "unit": "code of the handling unit",
    "tier": "grid, community, street, department or city",
    "state": "the event's state (intake, dispatched, handling, ..., closed, voided)",
    "source": "portal, hotline, camera, grid_patrol, wechat, api, cli or deliberation",
    "created_from": "reported on or after this day (YYYY-MM-DD, Asia/Shanghai)",
    "created_to": "reported on or before this day",
    "closed_from": "closed on or after this day",
    "closed_to": "closed on or before this day",
    "overdue": "1: an open task is past its due time; 0: none is",
    "rework": "1: reworked at least once; 0: never",
    "limit": "page size, 1-100 (default 25; the exports read every page)",
    "cursor": "next_cursor of the previous page",
}
#: The routes that take them.
SEARCH_PATHS = ("/search", "/search/export.csv", "/search/export.xlsx", "/api/events", "/api/events/export.csv",
                "/api/events/export.xlsx")


async def _names(ctx: AppContext, lang: str) -> tuple[dict[str, str], dict[str, str]]:
    """Category and unit names in ``lang`` (category names from the active list, unit names from the tree)."""
    english = lang == "en"
    categories = {c.code: (c.name_en if english else c.name_zh) for c in (await ctx.engine()).list.categories}
    units = {u.code: (u.name_en if english else u.name_zh) for u in (await ctx.org()).units.values()}
    return categories, units


def _row(hit: Hit, lang: str, categories: dict[str, str], units: dict[str, str]) -> list[Any]:
    """One export row (values; ``web.exports`` makes them safe cells)."""
    ev = hit.event
    yes_no = translate(lang, "search.yes" if hit.overdue else "search.no")
    return [ev.receipt_code, ev.event_id, ev.category, categories.get(ev.category, ev.category_name),
            ev.unit, units.get(ev.unit or "", ""), translate(lang, f"tier.{ev.tier}") if ev.tier else "",
            translate(lang, f"state.{ev.state}"), translate(lang, f"inbox.source.{ev.source}"), ev.created_at,
            ev.closed_at, yes_no, ev.rework_count, ev.address, ev.description]


def _header(lang: str) -> list[str]:
    return [translate(lang, f"search.col.{c}", zone=TIME_ZONE_NAME) for c in EXPORT_COLUMNS]


async def _export(ctx: AppContext, user: CurrentUser, search: EventSearch, lang: str, kind: str) -> Stream:
    """The whole result of ``search`` as a CSV or XLSX download (400 beyond the cap)."""
    scope = SearchScope.of(user.scope, await ctx.org())
    await event_search.check_export(ctx.db, scope, search)
    categories, units = await _names(ctx, lang)

    async def rows() -> AsyncIterator[list[Any]]:
        async for hit in event_search.export_rows(ctx.db, scope, search):
            yield _row(hit, lang, categories, units)

    if kind == "xlsx":
        return await xlsx_stream("events.xlsx", _header(lang), rows())
    return csv_stream("events.csv", _header(lang), rows())


class EventHitAnswer(TypedDict):
    """One event found by the search."""

    event_id: str
    receipt_code: str
    category: str
    category_name: str
    unit: str | None
    tier: str | None
    state: str
    source: str
    street: str | None
    created_at: str | None
    closed_at: str | None
    overdue: bool
    rework_count: int


class EventSearchAnswer(TypedDict):
    """``GET /api/events``: one page of the search, newest first, and the cursor of the next."""

    events: list[EventHitAnswer]
    next_cursor: str | None
    limit: int


def hit_view(hit: Hit) -> EventHitAnswer:
    """A search result as JSON."""
    ev = hit.event
    return {"event_id": ev.event_id, "receipt_code": ev.receipt_code, "category": ev.category,
            "category_name": ev.category_name, "unit": ev.unit, "tier": ev.tier, "state": ev.state,
            "source": ev.source, "street": ev.street, "created_at": iso(ev.created_at),
            "closed_at": iso(ev.closed_at), "overdue": hit.overdue, "rework_count": ev.rework_count}


class SearchPages(Controller):
    """The search page and its exports, for supervisors."""

    guards = [supervisors]

    @get("/search")
    async def search(self, ctx: AppContext, user: CurrentUser, request: Request) -> Response[Any]:
        """Search the events of the supervisor's scope: the filters as a form, a page of results
        (newest first), a count up to 200, the next page and the exports."""
        lang = language_of(request.cookies)
        org = await ctx.org()
        scope = SearchScope.of(user.scope, org)
        status, error, total = 200, None, None
        try:
            search = parse_search(request.query_params)
            page = await event_search.search_page(ctx.db, scope, search)
            if search.cursor is None:  # the count is a hint on the first page; counted only when it has more
                more = page.next_cursor is not None and page.searched_to is None
                total = await event_search.count(ctx.db, scope, search) if more else len(page.rows)
        except QueryError as exc:
            search, page, status = EventSearch(), event_search.SearchPage(), 400
            error = query_error(exc, lang, "search.")
        categories, units = await _names(ctx, lang)
        return Template("search.html", status_code=status, context={
            "user": user, "error": error, "search": search, "page": page, "total": total,
            "count_cap": event_search.COUNT_CAP, "export_cap": event_search.EXPORT_CAP,
            "text_window": event_search.TEXT_WINDOW,
            "category_names": categories, "unit_names": units,
            "categories": sorted(categories.items()),
            "units": sorted((u for u in org.units.values() if user.sees(u.code)), key=lambda u: (u.kind, u.code)),
            "tiers": event_search.TIERS, "states": event_search.STATES, "sources": SOURCES,
        })

    @get("/search/export.csv")
    async def export_csv(self, ctx: AppContext, user: CurrentUser, request: Request) -> Stream:
        """The whole result of a search as CSV (UTF-8 with BOM; at most 50,000 rows, else 400)."""
        return await self._export(ctx, user, request, "csv")

    @get("/search/export.xlsx")
    async def export_xlsx(self, ctx: AppContext, user: CurrentUser, request: Request) -> Stream:
        """The whole result of a search as an Excel workbook (at most 50,000 rows, else 400)."""
        return await self._export(ctx, user, request, "xlsx")

    async def _export(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str) -> Stream:
        lang = language_of(request.cookies)
        try:
            return await _export(ctx, user, parse_search(request.query_params), lang, kind)
        except QueryError as exc:
            # Keyed, so that the error page shows it (a reason without a key shows there only as the
            # status's meaning); the text is already in the page's language, fields by their labels.
            raise refusal(ValidationException, "search.err.refused", text=query_error(exc, lang, "search.")) from None


async def api_search(ctx: AppContext, user: CurrentUser, request: Request) -> EventSearchAnswer:
    """``GET /api/events`` (routed by ``web.api.EventController``, which owns the path): one page."""
    try:
        search = parse_search(request.query_params)
    except QueryError as exc:
        raise ValidationException(query_error(exc, "en")) from None
    scope = SearchScope.of(user.scope, await ctx.org())
    page = await event_search.search_page(ctx.db, scope, search)
    return {"events": [hit_view(h) for h in page.rows], "next_cursor": page.next_cursor, "limit": search.limit}


class SearchApi(Controller):
    """The exports of ``GET /api/events``: the search page's parameters, scope and files."""

    path = "/api/events"
    guards = [supervisors]

    @get("/export.csv")
    async def export_csv(self, ctx: AppContext, user: CurrentUser, request: Request) -> Stream:
        """The whole result of a search (the same parameters) as CSV; at most 50,000 rows, else 400."""
        return await self._export(ctx, user, request, "csv")

    @get("/export.xlsx")
    async def export_xlsx(self, ctx: AppContext, user: CurrentUser, request: Request) -> Stream:
        """The whole result of a search (the same parameters) as XLSX; at most 50,000 rows, else 400."""
        return await self._export(ctx, user, request, "xlsx")

    async def _export(self, ctx: AppContext, user: CurrentUser, request: Request, kind: str) -> Stream:
        try:
            return await _export(ctx, user, parse_search(request.query_params), "zh-CN", kind)
        except QueryError as exc:
            raise ValidationException(query_error(exc, "en")) from None


SEARCH_CONTROLLERS = [SearchPages, SearchApi]
