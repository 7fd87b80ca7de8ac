"""The inbox: views (tabs), filters, search, sorts and keyset pagination, plus saved filters.

Every query is scoped to one unit (and the tasks assigned to the user) and pages by keyset — the
sort key values of the last row of a page, never OFFSET — so the first and the hundredth page cost
the same with a million tasks (see the composite indexes on ``Task``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, literal, or_, true, tuple_
from sqlmodel import col, func, select

from rules.worktime import CITY_TZ
from store import models
from store.db import Database

VIEWS = ("all", "mine", "unit", "due_soon", "overdue", "done")
SORTS = ("due", "priority")
TASK_STATUSES = ("open", "claimed", "done", "cancelled")
DUE_SOON_HOURS = 8
PAGE_SIZE = 25
MAX_Q = 100
FILTER_KEYS = ("view", "category", "tier", "status", "source", "created_from", "created_to", "q", "sort")


#: The dates a filter may name: every day in this range has a start and an end the databases can
#: compare (0001-01-01 or 9999-12-31 would overflow a datetime once shifted to UTC or to the next day).
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2999, 12, 31)
#: A priority in a cursor must fit the column (INTEGER: 32 bits on PostgreSQL).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: Longest task id a cursor may carry (``models.Task.task_id``).
CURSOR_TEXT_MAX = 220


class InboxQueryError(ValueError):
    """A bad inbox parameter; the message names it (shown on the page, 400 in the API). ``key`` and
    ``values``, when set, are a message-catalogue key the web shows in the visitor's language."""

    def __init__(self, message: str, key: str | None = None, **values: Any) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


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
        params: dict[str, str] = self.params()
        for key, value in overrides.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = value
        return urlencode(params)


@dataclass
class InboxPage:
    """One page of the inbox."""

    rows: list[tuple[models.Task, models.Event]] = field(default_factory=list)
    next_cursor: str | None = None


def _one(params: Any, key: str, limit: int = 64) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InboxQueryError(f"{key}: expected one value")
    value = value.strip()
    if len(value) > limit:
        raise InboxQueryError(f"{key}: at most {limit} characters")
    return value or None


def _date(params: Any, key: str) -> date | None:
    value = _one(params, key, 10)
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InboxQueryError(f"{key}: expected a date YYYY-MM-DD, got '{value}'") from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise InboxQueryError(f"{key}: the date must lie between {DATE_MIN} and {DATE_MAX}",
                              "inbox.err.date_range", name=key, low=DATE_MIN.isoformat(), high=DATE_MAX.isoformat())
    return day


def _code(params: Any, key: str) -> str | None:
    value = _one(params, key, 32)
    if value is not None and not all(c.isalnum() or c in "-_" for c in value):
        raise InboxQueryError(f"{key}: '{value}' is not a valid code")
    return value


def parse_query(params: Any) -> InboxQuery:
    """Validate the GET parameters (a mapping; multi-dicts give their first value)."""
    get = params.get if hasattr(params, "get") else dict(params).get
    flat = {k: get(k) for k in (*FILTER_KEYS, "cursor")}
    view = _one(flat, "view") or "all"
    if view not in VIEWS:
        raise InboxQueryError(f"view: must be one of {', '.join(VIEWS)}")
    sort = _one(flat, "sort") or "due"
    if sort not in SORTS:
        raise InboxQueryError(f"sort: must be one of {', '.join(SORTS)}")
    status = _one(flat, "status")
    if status is not None and status not in TASK_STATUSES:
        raise InboxQueryError(f"status: must be one of {', '.join(TASK_STATUSES)}")
    query = InboxQuery(
        view=view, sort=sort, status=status, category=_code(flat, "category"), tier=_code(flat, "tier"),
        source=_code(flat, "source"), created_from=_date(flat, "created_from"),
        created_to=_date(flat, "created_to"), q=_one(flat, "q", MAX_Q), cursor=_one(flat, "cursor", 500),
    )
    if query.created_from and query.created_to and query.created_from > query.created_to:
        raise InboxQueryError("created_from: must not be after created_to")
    if query.cursor is not None:
        cursor_values(query)  # every value of the cursor binds, or the query is refused here
    return query


# --- keyset -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    column: Any
    kind: str  # dt | int | str


def _keys(query: InboxQuery) -> list[_Key]:
    """The sort keys, ending with the task id so the order is total. No key is ever NULL (``due_key``
    stands for a missing deadline; the done view keeps only rows with ``completed_at``), so the ORDER
    BY matches the indexes' order on SQLite and PostgreSQL alike, and every key runs the same way
    (all ascending, or all descending for "done") so one row-value comparison is the keyset."""
    task_id = _Key(models.Task.task_id, "str")
    if query.view == "done":
        return [_Key(models.Task.completed_at, "dt"), task_id]
    due = _Key(models.Task.due_key, "dt")
    if query.sort == "priority":
        return [_Key(models.Task.priority, "int"), due, task_id]
    return [due, task_id]


def _descending(query: InboxQuery) -> bool:
    return query.view == "done"  # most recently completed first


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort key values of the last row."""
    raw = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The values of a cursor (raises :class:`InboxQueryError` when it is not one of ours)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise _bad_cursor() from None
    if not isinstance(raw, list) or len(raw) != length:
        raise InboxQueryError("cursor: does not match the sort")
    return raw


def _bad_cursor() -> InboxQueryError:
    return InboxQueryError("cursor: not a valid cursor", "inbox.err.cursor")


def cursor_values(query: InboxQuery) -> list[Any]:
    """The sort key values of ``query``'s cursor, typed as their columns (``InboxQueryError`` when
    the cursor is not one of ours or holds a value the databases could not bind)."""
    keys = _keys(query)
    return [_typed(k, v) for k, v in zip(keys, decode_cursor(query.cursor or "", len(keys)), strict=True)]


def _typed(key: _Key, value: Any) -> Any:
    """A cursor value as the column's type, or :class:`InboxQueryError` when the databases could not
    bind it: a datetime that overflows once moved to UTC (``0001-01-01T00:00:00+14:00``), an integer
    beyond 32 bits (``2**63``), a text with NUL or a lone surrogate (``json`` lets both through)."""
    try:
        if key.kind == "dt":
            if not isinstance(value, str):
                raise TypeError
            parsed = datetime.fromisoformat(value)
            # Stored and compared in UTC (SQLite keeps no offset: a +14:00 bound would compare wrongly).
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        if key.kind == "int":
            if isinstance(value, bool) or not isinstance(value, int) or not INT_MIN <= value <= INT_MAX:
                raise TypeError
            return value
        if not isinstance(value, str) or len(value) > CURSOR_TEXT_MAX or "\x00" in value:
            raise TypeError
        value.encode("utf-8")  # a lone surrogate cannot be sent to either database
        return value
    except (TypeError, ValueError, OverflowError):  # UnicodeEncodeError is a ValueError
        raise _bad_cursor() from None


def _after(keys: list[_Key], values: list[Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``: one row-value comparison, which both
    databases turn into the start of an index range."""
    columns = tuple_(*(col(k.column) for k in keys))
    bound = tuple_(*(literal(v, k.column.property.columns[0].type) for k, v in zip(keys, values, strict=True)))
    return columns < bound if descending else columns > bound


def _values(keys: list[_Key], task: models.Task) -> list[Any]:
    return [getattr(task, key.column.key) for key in keys]


# --- the query ----------------------------------------------------------------------------------

def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=CITY_TZ).astimezone(UTC)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
        where.append(col(task.created_at) >= _day_start(query.created_from))
    if query.created_to:
        where.append(col(task.created_at) < _day_start(query.created_to + timedelta(days=1)))
    if query.q:
        if receipt_event is not None:
            where.append(task.event_id == receipt_event)
        else:
            pattern = f"%{_like_escape(query.q.lower())}%"
            where.append(col(task.search_text).like(pattern, escape="\\"))
    return where


def receipt_code_of(text: str) -> str | None:
    """``text`` as a receipt code (spaces and dashes dropped, upper case), if it could be one."""
    code = text.replace("-", "").replace(" ", "").upper()
    return code if 6 <= len(code) <= 16 and code.isascii() and code.isalnum() else None


async def _receipt_event(db: Database, q: str | None) -> str | None:
    """The event whose receipt code ``q`` is, if any: a search for a code is one unique-index lookup."""
    code = receipt_code_of(q) if q else None
    if code is None:
        return None
    async with db.session() as session:
        return (await session.exec(
            select(models.Event.event_id).where(models.Event.receipt_code == code)
        )).first()


async def inbox_page(
    db: Database, unit: str, username: str, query: InboxQuery, *, now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> InboxPage:
    """One page of the inbox of ``username`` in ``unit`` for ``query``."""
    now = now or datetime.now(UTC)
    keys = _keys(query)
    descending = _descending(query)
    filters = _filters(query, await _receipt_event(db, query.q))
    if query.cursor:
        filters.append(_after(keys, cursor_values(query), descending))
    order = [col(k.column).desc() if descending else col(k.column).asc() for k in keys]
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
    merged = sorted(rows.values(), key=lambda r: _values(keys, r[0]), reverse=descending)
    page = InboxPage(rows=merged[:page_size])
    if len(merged) > page_size:
        page.next_cursor = encode_cursor(_values(keys, page.rows[-1][0]))
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
