"""The supervisors' event search: one query over the events of a supervisor's scope, with filters,
newest first, in keyset pages; the same for the page, the API and the exports.

Parameters (``parse_search``, the one definition of a valid search; the inbox's names where they mean
the same): ``q`` (a receipt code matches exactly, any other text is looked for in description and
address), ``category``, ``unit`` (the handling unit, exactly), ``tier``, ``state``, ``source``,
``created_from``/``created_to`` (reported, days in the city's time), ``closed_from``/``closed_to``,
``overdue`` (an open task past its due time), ``rework`` (reworked at least once), ``cursor`` (the
opaque keyset cursor of the next page) and ``limit`` (page size, at most :data:`MAX_PAGE_SIZE`).

Cost: each query reads one range of one ``(…, created_at, event_id)`` index of ``event`` in order
(the whole city, a street, a unit, a category or a state: the database picks the most selective)
and stops at the page's LIMIT; the other filters are checked on the rows read. A street
supervisor's scope is two such ranges merged (the street's events, and events without a location
handled by a unit of the street), like the inbox's "mine". A receipt code is one unique-index
lookup. Text has no index that helps with two-character Chinese words (a trigram index, pg_trgm or
SQLite's FTS5 trigram tokenizer, needs three characters; most Chinese search words have two), so a
text search reads reports newest first and checks the text on each: a frequent word fills a page at
once, a rare one would read the whole scope. So a page of a text search reads at most
:data:`TEXT_WINDOW` reports (per branch); when they hold fewer hits than a page it says how far back
it searched and its cursor goes on from there, each request bounded. The exports read every window.
See bench/README.md for the figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, true
from sqlalchemy.orm import load_only
from sqlmodel import col, select

from store import keyset, models
from store import query_params as qp
from store.db import Database
from store.keyset import Key
from store.org import OrgTree
from workflows.lifecycle import State
from workflows.types import SOURCES

TIERS = ("grid", "community", "street", "department", "city")
STATES = tuple(s.value for s in State)
PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_Q = 100
#: The page says "more than this many" instead of counting further (a bounded count: it reads up to
#: this many hits, which for a filter that one report in 25 passes is 5,000 reports).
COUNT_CAP = 200
#: Most rows one export holds; a larger result is refused with this number.
EXPORT_CAP = 50_000
#: Most reports a text search reads per request (and per branch of the scope), newest first: a text
#: has no index (see the module's docstring), so this bounds what one page costs; the page says how
#: far back it looked and goes on from there on request.
TEXT_WINDOW = 20_000
#: Rows read per query while exporting.
EXPORT_BATCH = 1000
FILTER_KEYS = ("q", "category", "unit", "tier", "state", "source", "created_from", "created_to",
               "closed_from", "closed_to", "overdue", "rework")

#: The sort keys: newest report first, the event id breaking ties (so the order is total).
KEYS = [Key(models.Event.created_at, "dt"), Key(models.Event.event_id, "str")]


@dataclass
class EventSearch:
    """Validated search parameters (see the module's docstring)."""

    q: str | None = None
    category: str | None = None
    unit: str | None = None
    tier: str | None = None
    state: str | None = None
    source: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    closed_from: date | None = None
    closed_to: date | None = None
    overdue: bool | None = None
    rework: bool | None = None
    cursor: str | None = None
    limit: int = PAGE_SIZE

    def params(self) -> dict[str, str]:
        """The filters that are set, as query-string values (no cursor, no page size)."""
        out: dict[str, str] = {}
        for key in FILTER_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool):
                out[key] = "1" if value else "0"
            elif isinstance(value, date):
                out[key] = value.isoformat()
            elif value is not None:
                out[key] = str(value)
        return out

    def query_string(self, **overrides: str | None) -> str:
        """The query string of these filters (and the page size when not the default), with ``overrides``."""
        params = self.params()
        if self.limit != PAGE_SIZE:
            params["limit"] = str(self.limit)
        return qp.query_string(params, **overrides)

    @property
    def filtered(self) -> bool:
        """Whether any filter is set."""
        return bool(self.params())


def parse_search(params: Any) -> EventSearch:
    """Validate the GET parameters of a search (a mapping; multi-dicts give their first value);
    :class:`store.query_params.QueryError` names the first bad one."""
    flat = qp.flat(params, (*FILTER_KEYS, "cursor", "limit"))
    search = EventSearch(
        q=qp.text(flat, "q", MAX_Q), category=qp.code(flat, "category"), unit=qp.code(flat, "unit"),
        tier=qp.choice(flat, "tier", TIERS), state=qp.choice(flat, "state", STATES),
        source=qp.choice(flat, "source", SOURCES),
        created_from=qp.day(flat, "created_from"), created_to=qp.day(flat, "created_to"),
        closed_from=qp.day(flat, "closed_from"), closed_to=qp.day(flat, "closed_to"),
        overdue=qp.flag(flat, "overdue"), rework=qp.flag(flat, "rework"),
        cursor=qp.text(flat, "cursor", 500), limit=qp.number(flat, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE),
    )
    qp.day_range(search.created_from, search.created_to, "created_from", "created_to")
    qp.day_range(search.closed_from, search.closed_to, "closed_from", "closed_to")
    if search.cursor is not None:
        keyset.cursor_values(KEYS, search.cursor)  # every value binds, or the search is refused here
    return search


@dataclass(frozen=True)
class SearchScope:
    """Which events a searcher sees: everything (``streets`` None), or the events located in
    ``streets`` and those without a location handled by one of ``units``."""

    streets: frozenset[str] | None
    units: frozenset[str] = frozenset()

    @classmethod
    def of(cls, scope: set[str], org: OrgTree) -> SearchScope:
        """The search scope of a user whose unit scope is ``scope`` (``web.auth.scope_of``): city-wide
        when it holds every unit, else its streets and units."""
        if set(org.units) <= scope:
            return cls(streets=None)
        return cls(streets=frozenset(u for u in scope if u in org.units and org.units[u].kind == "street"),
                   units=frozenset(scope))


@dataclass
class Hit:
    """One event found, with whether an open task of it is past its due time."""

    event: models.Event
    overdue: bool = False


@dataclass
class SearchPage:
    """One page of results and the cursor of the next (None on the last page); ``searched_to``, for a
    text search whose window ended before the page filled, the report time it searched back to."""

    rows: list[Hit] = field(default_factory=list)
    next_cursor: str | None = None
    searched_to: datetime | None = None


def _branches(scope: SearchScope) -> list[list[Any]]:
    """The scope as conjunctions whose union it is, each one index range read in order (an OR
    across two indexes would make the databases read both whole and sort)."""
    event = models.Event
    if scope.streets is None:
        return [[]]
    branches: list[list[Any]] = []
    if scope.streets:
        branches.append([col(event.street).in_(sorted(scope.streets))])
    branches.append([col(event.street).is_(None), col(event.unit).in_(sorted(scope.units))])
    return branches


def _overdue_clause(now: datetime) -> Any:
    """An open (or claimed) task of the event is past its due time (the task's event index)."""
    task = models.Task
    return exists().where(col(task.event_id) == col(models.Event.event_id), col(task.active) == true(),
                          col(task.due_key) < now)


@dataclass
class _Plan:
    """A search as SQL: the filters checked on every row read, and the text filter apart (it is
    bounded by a window, :data:`TEXT_WINDOW`)."""

    where: list[Any]
    text: Any = None


def _filters(search: EventSearch, receipt_event: str | None, now: datetime) -> _Plan:
    event = models.Event
    plan = _Plan(where=[])
    where = plan.where
    if search.q:
        if receipt_event is not None:
            where.append(event.event_id == receipt_event)
        else:
            plan.text = col(event.search_text).like(qp.contains_pattern(search.q), escape="\\")
    for name in ("category", "unit", "tier", "state", "source"):
        value = getattr(search, name)
        if value is not None:
            where.append(getattr(event, name) == value)
    if search.created_from:
        where.append(col(event.created_at) >= qp.day_start(search.created_from))
    if search.created_to:
        where.append(col(event.created_at) < qp.day_start(search.created_to + timedelta(days=1)))
    if search.closed_from:
        where.append(col(event.closed_at) >= qp.day_start(search.closed_from))
    if search.closed_to:
        end = qp.day_start(search.closed_to + timedelta(days=1))
        # An event is reported before it is closed: the bound on the report starts the index range there.
        where += [col(event.closed_at) < end, col(event.created_at) < end]
    if search.overdue is not None:
        clause = _overdue_clause(now)
        where.append(clause if search.overdue else ~clause)
    if search.rework is not None:
        where.append(col(event.rework_count) > 0 if search.rework else col(event.rework_count) == 0)
    return plan


async def _plan(db: Database, search: EventSearch, now: datetime) -> _Plan:
    return _filters(search, await qp.receipt_event(db, search.q), now)


async def _overdue_of(db: Database, event_ids: list[str], now: datetime) -> set[str]:
    """Which of ``event_ids`` have an open task past its due time (one query for a page)."""
    if not event_ids:
        return set()
    task = models.Task
    async with db.session() as session:
        rows = await session.exec(
            select(task.event_id).where(col(task.event_id).in_(event_ids), col(task.active) == true(),
                                        col(task.due_key) < now).distinct()
        )
        return set(rows.all())


async def _window_end(db: Database, scope: SearchScope, where: list[Any]) -> list[Any] | None:
    """The key of the oldest row of the text window: the :data:`TEXT_WINDOW`-th newest row that
    matches ``where`` in any branch (the newest of those, so no branch reads more than the window);
    None when no branch has that many (the window holds everything)."""
    ends: list[list[Any]] = []
    async with db.session() as session:
        for branch in _branches(scope):
            found = (await session.exec(
                select(models.Event.created_at, models.Event.event_id).where(*branch, *where)
                .order_by(*keyset.order_by(KEYS, descending=True)).offset(TEXT_WINDOW - 1).limit(1)
            )).first()
            if found is not None:
                ends.append([keyset.typed(KEYS[0], found[0].isoformat()), found[1]])
    return max(ends) if ends else None


#: What a result shows and an export holds (the rest of a row, the routing decision's JSON above all,
#: is not read for a page of results).
SHOWN = ("event_id", "receipt_code", "category", "category_name", "unit", "tier", "state", "source", "street",
         "created_at", "closed_at", "rework_count", "address", "description")


async def _page(db: Database, scope: SearchScope, plan: _Plan, cursor: str | None, size: int,
                now: datetime, *, windowed: bool = True) -> SearchPage:
    base = list(plan.where)
    if cursor:
        base.append(keyset.after(KEYS, keyset.cursor_values(KEYS, cursor), descending=True))
    filters = list(base)
    boundary = None
    if plan.text is not None:
        filters.append(plan.text)
        if windowed:
            boundary = await _window_end(db, scope, base)
            if boundary is not None:
                filters.append(keyset.up_to(KEYS, boundary, descending=True))
    found: dict[str, models.Event] = {}
    async with db.session() as session:
        for branch in _branches(scope):
            statement = (select(models.Event).options(load_only(*(getattr(models.Event, c) for c in SHOWN)))
                         .where(*branch, *filters).order_by(*keyset.order_by(KEYS, descending=True)).limit(size + 1))
            for event in (await session.exec(statement)).all():
                found[event.event_id] = event
    merged = sorted(found.values(), key=lambda e: keyset.values_of(KEYS, e), reverse=True)
    rows = merged[:size]
    late = await _overdue_of(db, [e.event_id for e in rows], now)
    page = SearchPage(rows=[Hit(e, e.event_id in late) for e in rows])
    if len(merged) > size:
        page.next_cursor = keyset.encode_cursor(keyset.values_of(KEYS, rows[-1]))
    elif boundary is not None:
        # The window ended before the page filled: go on from its end (older reports) on request.
        page.next_cursor, page.searched_to = keyset.encode_cursor(boundary), boundary[0]
    return page


async def search_page(db: Database, scope: SearchScope, search: EventSearch, *,
                      now: datetime | None = None) -> SearchPage:
    """One page of ``search`` within ``scope``, newest first (``search.limit`` rows at most). A text
    search reads at most :data:`TEXT_WINDOW` reports per branch: when they hold fewer hits than a
    page, the page says how far back it searched (``searched_to``) and its cursor goes on from there."""
    now = now or datetime.now(UTC)
    return await _page(db, scope, await _plan(db, search, now), search.cursor, search.limit, now)


async def count(db: Database, scope: SearchScope, search: EventSearch, *, cap: int = COUNT_CAP,
                now: datetime | None = None, windowed: bool = True) -> int:
    """How many events ``search`` finds within ``scope`` (from its cursor on; a text search within its
    window unless ``windowed`` is false), counted up to ``cap + 1`` at most, so that a count costs no
    more than reading that many hits; more than ``cap`` means "more than ``cap``"."""
    now = now or datetime.now(UTC)
    plan = await _plan(db, search, now)
    where = list(plan.where)
    if search.cursor:
        where.append(keyset.after(KEYS, keyset.cursor_values(KEYS, search.cursor), descending=True))
    if plan.text is not None:
        boundary = await _window_end(db, scope, where) if windowed else None
        where.append(plan.text)
        if boundary is not None:
            where.append(keyset.up_to(KEYS, boundary, descending=True))
    total = 0
    async with db.session() as session:
        for branch in _branches(scope):  # disjoint: located in a street, or without a location
            # In the pages' order, so that the count reads the same index range as the page and stops.
            limited = (select(models.Event.event_id).where(*branch, *where)
                       .order_by(*keyset.order_by(KEYS, descending=True)).limit(cap + 1 - total).subquery())
            total += int((await session.exec(select(func.count()).select_from(limited))).one())
            if total > cap:
                break
    return total


class TooManyRows(qp.QueryError):
    """An export larger than :data:`EXPORT_CAP` rows."""


async def check_export(db: Database, scope: SearchScope, search: EventSearch, *, cap: int | None = None,
                       now: datetime | None = None) -> None:
    """Refuse (:class:`TooManyRows`) an export of more than ``cap`` rows (:data:`EXPORT_CAP`), before
    anything is sent."""
    cap = EXPORT_CAP if cap is None else cap
    if await count(db, scope, dataclasses.replace(search, cursor=None), cap=cap, now=now, windowed=False) > cap:
        raise TooManyRows(f"the result has more than {cap} rows: narrow the search", "search.err.too_many",
                          cap=cap)


async def export_rows(db: Database, scope: SearchScope, search: EventSearch, *, batch: int = EXPORT_BATCH,
                      now: datetime | None = None) -> AsyncIterator[Hit]:
    """Every event ``search`` finds within ``scope`` (all pages, ignoring its cursor), newest first,
    read ``batch`` at a time so that memory stays bounded (:func:`check_export` first)."""
    now = now or datetime.now(UTC)
    plan = await _plan(db, search, now)
    cursor: str | None = None
    while True:
        page = await _page(db, scope, plan, cursor, batch, now, windowed=False)
        for hit in page.rows:
            yield hit
        if page.next_cursor is None:
            return
        cursor = page.next_cursor
