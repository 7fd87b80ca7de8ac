"""Query parameters shared by the inbox (``store/inbox_queries.py``) and the event search
(``store/event_search.py``): one definition of a valid value per kind (text, code, choice, date,
flag, whole number), each refusal a :class:`QueryError` with a catalogue key, and the pieces of SQL
both build from them (day bounds in the city's time, LIKE patterns, receipt-code lookups).

Everything here keeps a value the databases could not bind from reaching them: dates within
:data:`DATE_MIN`..:data:`DATE_MAX`, integers within 32 bits, texts of bounded length.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import urlencode

from sqlmodel import select

from rules.worktime import CITY_TZ
from store import models
from store.db import Database

#: The dates a filter may name: every day in this range has a start and an end the databases can
#: compare (0001-01-01 or 9999-12-31 would overflow a datetime once shifted to UTC or to the next day).
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2999, 12, 31)
#: An integer must fit an INTEGER column (32 bits on PostgreSQL).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
#: Values a yes/no parameter takes (``overdue=1``, a checkbox's ``on``), and their opposites.
YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")


class QueryError(ValueError):
    """A bad query parameter; the message names it (English, for logs and the API). ``key`` and
    ``values``, when set, are a message-catalogue key the web shows in the visitor's language."""

    def __init__(self, message: str, key: str | None = None, **values: Any) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


def flat(params: Any, keys: Iterable[str]) -> dict[str, Any]:
    """The values of ``keys`` in ``params`` (a mapping; multi-dicts give their first value)."""
    get = params.get if hasattr(params, "get") else dict(params).get
    return {k: get(k) for k in keys}


def text(params: Mapping[str, Any], key: str, limit: int = 64) -> str | None:
    """A text parameter, stripped; None when absent or blank."""
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryError(f"{key}: expected one value", "params.err.one", name=key)
    value = value.strip()
    if len(value) > limit:
        raise QueryError(f"{key}: at most {limit} characters", "params.err.long", name=key, limit=limit)
    return value or None


def code(params: Mapping[str, Any], key: str) -> str | None:
    """A code (category, unit, tier, source): letters, digits, ``-`` and ``_``, at most 32."""
    value = text(params, key, 32)
    if value is not None and not all(c.isalnum() or c in "-_" for c in value):
        raise QueryError(f"{key}: '{value}' is not a valid code", "params.err.code", name=key, value=value)
    return value


def choice(params: Mapping[str, Any], key: str, allowed: Iterable[str]) -> str | None:
    """One of ``allowed``, or None when absent."""
    options = tuple(allowed)
    value = text(params, key)
    if value is not None and value not in options:
        raise QueryError(f"{key}: must be one of {', '.join(options)}", "params.err.choice", name=key,
                         options=", ".join(options))
    return value


def day(params: Mapping[str, Any], key: str) -> date | None:
    """A date ``YYYY-MM-DD`` within :data:`DATE_MIN`..:data:`DATE_MAX`."""
    value = text(params, key, 10)
    if value is None:
        return None
    try:
        found = date.fromisoformat(value)
    except ValueError:
        raise QueryError(f"{key}: expected a date YYYY-MM-DD, got '{value}'", "params.err.date", name=key,
                         value=value) from None
    if not DATE_MIN <= found <= DATE_MAX:
        raise QueryError(f"{key}: the date must lie between {DATE_MIN} and {DATE_MAX}",
                         "inbox.err.date_range", name=key, low=DATE_MIN.isoformat(), high=DATE_MAX.isoformat())
    return found


def day_range(low: date | None, high: date | None, low_key: str, high_key: str) -> None:
    """Refuse a range whose start lies after its end."""
    if low and high and low > high:
        raise QueryError(f"{low_key}: must not be after {high_key}", "params.err.range", first=low_key, last=high_key)


def flag(params: Mapping[str, Any], key: str) -> bool | None:
    """A yes/no parameter (:data:`YES`, :data:`NO`); None when absent or empty."""
    value = text(params, key, 8)
    if value is None:
        return None
    if value.lower() in YES:
        return True
    if value.lower() in NO:
        return False
    raise QueryError(f"{key}: expected 1 or 0", "params.err.flag", name=key)


def number(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    """A whole number within ``low``..``high`` (``default`` when absent)."""
    value = text(params, key, 12)
    if value is None:
        return default
    if not value.isascii() or not value.lstrip("-").isdigit() or not low <= int(value) <= high:
        raise QueryError(f"{key}: a whole number from {low} to {high}", "params.err.number", name=key,
                         low=low, high=high)
    return int(value)


def query_string(values: Mapping[str, Any], **overrides: str | None) -> str:
    """``values`` (None left out, dates ISO) as a query string, with ``overrides`` (None removes a key)."""
    params = {k: v.isoformat() if isinstance(v, date) else str(v) for k, v in values.items() if v is not None}
    for key, value in overrides.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return urlencode(params)


def day_start(value: date) -> datetime:
    """The first moment of ``value`` in the city's time, in UTC (as the store compares)."""
    return datetime.combine(value, time.min, tzinfo=CITY_TZ).astimezone(UTC)


def like_escape(value: str) -> str:
    """``value`` with LIKE's wildcards escaped (escape character ``\\``)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(value: str) -> str:
    """The LIKE pattern of a lower-cased substring search for ``value`` (``search_text`` columns)."""
    return f"%{like_escape(value.lower())}%"


def receipt_code_of(value: str) -> str | None:
    """``value`` as a receipt code (spaces and dashes dropped, upper case), if it could be one."""
    found = value.replace("-", "").replace(" ", "").upper()
    return found if 6 <= len(found) <= 16 and found.isascii() and found.isalnum() else None


async def receipt_event(db: Database, q: str | None) -> str | None:
    """The event whose receipt code ``q`` is, if any: a search for a code is one unique-index lookup."""
    found = receipt_code_of(q) if q else None
    if found is None:
        return None
    async with db.session() as session:
        return (await session.exec(
            select(models.Event.event_id).where(models.Event.receipt_code == found)
        )).first()
