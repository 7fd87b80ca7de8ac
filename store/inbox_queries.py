"""The inbox: views (tabs), filters, search, sorts and keyset pagination, plus saved filters.

Every query is scoped to one unit (and the tasks assigned to the user) and pages by keyset — the
sort key values of the last row of a page, never OFFSET — so the first and the hundredth page cost
the same with a million tasks (see the composite indexes on ``Task``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, true
from sqlmodel import col, func, select

from rules.worktime import CITY_TZ  # noqa: F401  (re-exported: tests read the city's zone here)
from store import keyset, models
from store import query_params as qp
from store.db import Database
from store.keyset import CURSOR_TEXT_MAX, Key, decode_cursor, encode_cursor  # noqa: F401  (re-exported)
from store.query_params import DATE_MAX, DATE_MIN, INT_MAX, INT_MIN, receipt_code_of  # noqa: F401

VIEWS = ("all", "mine", "unit", "due_soon", "overdue", "done")
SORTS = ("due", "priority")
TASK_STATUSES = ("open", "claimed", "done", "cancelled")
DUE_SOON_HOURS = 8
PAGE_SIZE = 25
MAX_Q = 100
FILTER_KEYS = ("view", "category", "tier", "status", "source", "created_from", "created_to", "q", "sort")

#: A bad inbox parameter (the shared :class:`store.query_params.QueryError`).
InboxQueryError = qp.QueryError


@dataclass
class InboxQuery:
    """Validated inbox parameters."""

    view: str = "all"
    category: str | None = None
    tier: str | None = None
    status: str | None = None
    source: str | None = None
    created_from: date | None = None
    created_to: date | None = None
    q: str | None = None
    sort: str = "due"
    cursor: str | None = None

    def params(self) -> dict[str, str]:
        """The non-default parameters, as query-string values (no cursor)."""
        out: dict[str, str] = {}
        for key in FILTER_KEYS:
            value = getattr(self, key)
            if value is None or (key == "view" and value == "all") or (key == "sort" and value == "due"):
                continue
            out[key] = value.isoformat() if isinstance(value, date) else str(value)
        return out

    def query_string(self, **overrides: str | None) -> str:
        """The query string of these filters, with ``overrides`` (``None`` removes a key)."""
        return qp.query_string(self.params(), **overrides)


@dataclass
class InboxPage:
    """One page of the inbox."""

    rows: list[tuple[models.Task, models.Event]] = field(default_factory=list)
    next_cursor: str | None = None


def parse_query(params: Any) -> InboxQuery:
    """Validate the GET parameters (a mapping; multi-dicts give their first value)."""
    flat = qp.flat(params, (*FILTER_KEYS, "cursor"))
    query = InboxQuery(
        view=qp.choice(flat, "view", VIEWS) or "all", sort=qp.choice(flat, "sort", SORTS) or "due",
        status=qp.choice(flat, "status", TASK_STATUSES), category=qp.code(flat, "category"),
        tier=qp.code(flat, "tier"), source=qp.code(flat, "source"), created_from=qp.day(flat, "created_from"),
        created_to=qp.day(flat, "created_to"), q=qp.text(flat, "q", MAX_Q), cursor=qp.text(flat, "cursor", 500),
    )
    qp.day_range(query.created_from, query.created_to, "created_from", "created_to")
    if query.cursor is not None:
        cursor_values(query)  # every value of the cursor binds, or the query is refused here
    return query


# --- keyset -------------------------------------------------------------------------------------

def _keys(query: InboxQuery) -> list[Key]:
    """The sort keys, ending with the task id so the order is total. No key is ever NULL (``due_key``
    stands for a missing deadline; the done view keeps only rows with ``completed_at``), so the ORDER
    BY matches the indexes' order on SQLite and PostgreSQL alike, and every key runs the same way
    (all ascending, or all descending for "done") so one row-value comparison is the keyset."""
    task_id = Key(models.Task.task_id, "str")
    if query.view == "done":
        return [Key(models.Task.completed_at, "dt"), task_id]
    due = Key(models.Task.due_key, "dt")
    if query.sort == "priority":
        return [Key(models.Task.priority, "int"), due, task_id]
    return [due, task_id]


def _descending(query: InboxQuery) -> bool:
    return query.view == "done"  # most recently completed first


def cursor_values(query: InboxQuery) -> list[Any]:
    """The sort key values of ``query``'s cursor, typed as their columns (``InboxQueryError`` when
    the cursor is not one of ours or holds a value the databases could not bind)."""
    return keyset.cursor_values(_keys(query), query.cursor or "")


# --- the query ----------------------------------------------------------------------------------

def _branches(query: InboxQuery, unit: str, username: str, now: datetime) -> list[list[Any]]:
    """The view as one or more conjunctions whose union it is; each is one index range, read in
    order (an OR across two indexes would make the database read both whole and sort)."""
    task = models.Task
    active = col(task.active) == true()
    for_me = or_(col(task.assignee).is_(None), col(task.assignee) == username)
    if query.view == "mine":
        return [
            [col(task.claimed_by) == username, active, task.status == "claimed"],
            [col(task.assignee) == username, active],
        ]
    if query.view == "unit":
        return [[task.unit == unit, active, task.status == "open", col(task.claimed_by).is_(None), for_me]]
    if query.view == "due_soon":
        return [[task.unit == unit, active, for_me, col(task.due_key) >= now,
                 col(task.due_key) <= now + timedelta(hours=DUE_SOON_HOURS)]]
    if query.view == "overdue":
        return [[task.unit == unit, active, for_me, col(task.due_key) < now]]
    if query.view == "done":
        return [[task.unit == unit, task.status == "done", col(task.completed_at).is_not(None)]]
    return [[task.unit == unit, active, for_me]]


def _filters(query: InboxQuery, receipt_event: str | None) -> list[Any]:
    """The filters, all on the task row (its denormalised event fields): no join before the LIMIT."""
    task = models.Task
    where: list[Any] = []
    if query.status:
        where.append(task.status == query.status)
    if query.category:
        where.append(task.category == query.category)
    if query.tier:
        where.append(task.tier == query.tier)
    if query.source:
        where.append(task.source == query.source)
    if query.created_from:
        where.append(col(task.created_at) >= qp.day_start(query.created_from))
    if query.created_to:
        where.append(col(task.created_at) < qp.day_start(query.created_to + timedelta(days=1)))
    if query.q:
        if receipt_event is not None:
            where.append(task.event_id == receipt_event)
        else:
            where.append(col(task.search_text).like(qp.contains_pattern(query.q), escape="\\"))
    return where


async def inbox_page(
    db: Database, unit: str, username: str, query: InboxQuery, *, now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the inbox of ``username`` in ``unit`` for ``query``."""
    now = now or datetime.now(UTC)
    keys = _keys(query)
    descending = _descending(query)
    filters = _filters(query, await qp.receipt_event(db, query.q))
    if query.cursor:
        filters.append(keyset.after(keys, cursor_values(query), descending))
    order = keyset.order_by(keys, descending)
    rows: dict[str, tuple[models.Task, models.Event]] = {}
    async with db.session() as session:
        for branch in _branches(query, unit, username, now):
            statement = (
                select(models.Task, models.Event)
                .join(models.Event, col(models.Event.event_id) == col(models.Task.event_id))
                .where(*branch, *filters)
                .order_by(*order)
                .limit(page_size + 1)
            )
            for task, event in (await session.exec(statement)).all():
                rows[task.task_id] = (task, event)
    # The union of the branches, in the page's order (each branch is sorted and limited already).
    merged = sorted(rows.values(), key=lambda r: keyset.values_of(keys, r[0]), reverse=descending)
    page = InboxPage(rows=merged[:page_size])
    if len(merged) > page_size:
        page.next_cursor = encode_cursor(keyset.values_of(keys, page.rows[-1][0]))
    return page


# --- saved filters ------------------------------------------------------------------------------

MAX_SAVED = 50


async def saved_filters(db: Database, username: str) -> list[models.SavedFilter]:
    """The saved filters of ``username``, oldest first."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.SavedFilter).where(models.SavedFilter.username == username)
            .order_by(col(models.SavedFilter.created_at), col(models.SavedFilter.id))
        )
        return list(rows.all())


async def save_filter(db: Database, username: str, name: str, query: InboxQuery) -> models.SavedFilter:
    """Keep ``query`` under ``name`` for ``username``."""
    name = name.strip()
    if not name or len(name) > 60:
        raise InboxQueryError("name: 1 to 60 characters")
    async with db.session() as session:
        count = (await session.exec(
            select(func.count()).select_from(models.SavedFilter).where(models.SavedFilter.username == username)
        )).one()
        if count >= MAX_SAVED:
            raise InboxQueryError(f"name: at most {MAX_SAVED} saved filters")
        row = models.SavedFilter(username=username, name=name, query=query.query_string(),
                                 created_at=datetime.now(UTC))
        session.add(row)
        await session.commit()
        await session.refresh(row)
        return row


async def get_filter(db: Database, filter_id: int) -> models.SavedFilter | None:
    """One saved filter by id (None for an id no row can have: the id column has 32 bits on PostgreSQL,
    64 on SQLite, and a larger number would fail the query)."""
    if not 1 <= filter_id <= INT_MAX:
        return None
    async with db.session() as session:
        return await session.get(models.SavedFilter, filter_id)


async def delete_filter(db: Database, filter_id: int) -> None:
    """Remove a saved filter."""
    if not 1 <= filter_id <= INT_MAX:
        return
    async with db.session() as session:
        row = await session.get(models.SavedFilter, filter_id)
        if row is not None:
            await session.delete(row)
            await session.commit()
