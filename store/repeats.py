"""Repeated reports for the routing's repeat rule: how many *other people* reported the same problem.

The repeat rule tiers a category up when it was reported repeatedly in a grid (``rules/engine.py``).
It used to count events, so three quick clicks on the report form made the third copy climb to the
street. It now counts distinct reporters over distinct reports:

- a reporter is their phone number (normalised: ``+86 138 0000 0000`` is ``13800000000``), else their
  source and external id (an integration's ticket), else the report's own text (an anonymous report:
  the same words again in the same grid and category are a copy, not a second report);
- the event being routed never counts its own reporter: three reports by one person are one;
- voided events (作废, e.g. as a duplicate) are no reports; follows ("me too") are no reports either
  (they create no event).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

import phonenumbers
from sqlmodel import col, select

from store import models
from store.db import Database

#: Most earlier events read for one count (far above any repeat threshold; keeps the query bounded).
MAX_ROWS = 500


def _phone(phone: str) -> str:
    """A phone number in one spelling (national digits for a Chinese number), or '' when none."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, "CN")
    except phonenumbers.NumberParseException:
        return "".join(ch for ch in phone if ch.isdigit())
    return f"{number.country_code}:{number.national_number}"


def _text(description: str) -> str:
    """A description as a copy would repeat it: width-normalised, lower case, without any whitespace."""
    return "".join(unicodedata.normalize("NFKC", description or "").lower().split())


def reporter_key(phone: str, source: str, external_id: str | None, description: str) -> str:
    """Who made a report, as far as the report says: phone, else source and external id, else its text."""
    number = _phone(phone)
    if number:
        return f"phone:{number}"
    if external_id:
        return f"external:{source}:{external_id}"
    return f"text:{_text(description)}"


async def other_reporters(db: Database, *, category: str, grid: str, since: datetime, exclude: str,
                          reporter: str) -> int:
    """Distinct reporters other than ``reporter`` of events of ``category`` in ``grid`` since ``since``
    (the event ``exclude`` and voided events aside)."""
    event = models.Event
    async with db.session() as session:
        rows = (await session.exec(
            select(event.reporter_phone, event.source, event.external_id, event.description)
            .where(event.category == category, event.grid == grid, col(event.created_at) >= since,
                   event.event_id != exclude, event.state != "voided")
            .order_by(col(event.created_at).desc())
            .limit(MAX_ROWS)
        )).all()
    return len({reporter_key(*row) for row in rows} - {reporter})
