"""Keyset pagination shared by the inbox and the event search: a page ends where the next begins,
named by the sort key values of its last row in an opaque cursor, compared as one row value (never
OFFSET), so the hundredth page costs what the first does.

A cursor comes from the client: every value is checked against its column's type before it is bound
(:func:`typed`), so a forged cursor is a 400, never a database error.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, literal, tuple_
from sqlmodel import col

from store.query_params import INT_MAX, INT_MIN, QueryError
from store.timeutil import as_utc

#: Longest text a cursor may carry (``models.Task.task_id``, ``models.Event.event_id``).
CURSOR_TEXT_MAX = 220


@dataclass(frozen=True)
class Key:
    """One sort key: its column and the kind of its values (``dt``, ``int`` or ``str``)."""

    column: Any
    kind: str


def encode_cursor(values: list[Any]) -> str:
    """An opaque cursor from the sort key values of the last row."""
    # as_utc: the store's naive datetimes are UTC (astimezone would read them as the host's local time).
    raw = [as_utc(v).isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def bad_cursor() -> QueryError:
    """The refusal of a cursor that is not one of ours."""
    return QueryError("cursor: not a valid cursor", "inbox.err.cursor")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """The values of a cursor (raises :class:`QueryError` when it is not one of ours)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, RecursionError):
        raise bad_cursor() from None
    if not isinstance(raw, list) or len(raw) != length:
        raise QueryError("cursor: does not match the sort", "inbox.err.cursor")
    return raw


def cursor_values(keys: list[Key], cursor: str) -> list[Any]:
    """The values of ``cursor`` typed as ``keys``' columns (:class:`QueryError` otherwise)."""
    return [typed(k, v) for k, v in zip(keys, decode_cursor(cursor, len(keys)), strict=True)]


def typed(key: Key, value: Any) -> Any:
    """A cursor value as the column's type, or :class:`QueryError` when the databases could not
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
        raise bad_cursor() from None


def after(keys: list[Key], values: list[Any], descending: bool) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``: one row-value comparison, which both
    databases turn into the start of an index range."""
    columns = tuple_(*(col(k.column) for k in keys))
    bound = tuple_(*(literal(v, k.column.property.columns[0].type) for k, v in zip(keys, values, strict=True)))
    return columns < bound if descending else columns > bound


def up_to(keys: list[Key], values: list[Any], descending: bool) -> ColumnElement[bool]:
    """Rows up to ``values`` in the order of ``keys``, ``values`` included (the end of a range)."""
    columns = tuple_(*(col(k.column) for k in keys))
    bound = tuple_(*(literal(v, k.column.property.columns[0].type) for k, v in zip(keys, values, strict=True)))
    return columns >= bound if descending else columns <= bound


def values_of(keys: list[Key], row: Any) -> list[Any]:
    """The sort key values of ``row``."""
    return [getattr(row, key.column.key) for key in keys]


def order_by(keys: list[Key], descending: bool) -> list[Any]:
    """The ORDER BY of ``keys``, all one way."""
    return [col(k.column).desc() if descending else col(k.column).asc() for k in keys]
