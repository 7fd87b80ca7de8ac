"""What Open311 GeoReport v2 reads from the store (web/open311.py): an integration's own events by
time, events by receipt code, their handling deadlines, and the tokens of reports not yet routed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select

from store import models
from store.db import Database
from store.timeutil import utcnow

#: The event states Open311 calls ``closed`` (every other state is ``open``).
CLOSED_STATES = ("closed", "voided", "merged")  # merged: a duplicate, handled as its primary


async def integration_events(db: Database, integration: str, start: datetime, end: datetime, *,
                             categories: Sequence[str] = (), status: Sequence[str] = (), limit: int = 50,
                             offset: int = 0) -> list[models.Event]:
    """The events ``integration`` reported between ``start`` and ``end``, newest first: one range of
    the ``(integration, created_at, event_id)`` index, filtered by category and status."""
    query = select(models.Event).where(
        models.Event.integration == integration, col(models.Event.created_at) >= start,
        col(models.Event.created_at) <= end)
    if categories:
        query = query.where(col(models.Event.category).in_(list(categories)))
    if status and not ("open" in status and "closed" in status):
        closed = col(models.Event.state).in_(CLOSED_STATES)
        query = query.where(closed if "closed" in status else ~closed)
    query = query.order_by(col(models.Event.created_at).desc(), col(models.Event.event_id).desc())
    async with db.session() as session:
        return list((await session.exec(query.offset(offset).limit(limit))).all())


async def events_by_receipt(db: Database, codes: Sequence[str]) -> list[models.Event]:
    """The events of these receipt codes (unique index), in the order asked; unknown codes are left out."""
    if not codes:
        return []
    async with db.session() as session:
        rows = (await session.exec(select(models.Event).where(col(models.Event.receipt_code).in_(list(codes))))).all()
    by_code = {row.receipt_code: row for row in rows}
    return [by_code[c] for c in codes if c in by_code]


async def handling_deadlines(db: Database, event_ids: Sequence[str]) -> dict[str, datetime]:
    """The deadline of each event's latest handling task (what Open311 calls ``expected_datetime``)."""
    if not event_ids:
        return {}
    async with db.session() as session:
        tasks = (await session.exec(
            select(models.Task).where(col(models.Task.event_id).in_(list(event_ids)), models.Task.kind == "handle")
            .order_by(col(models.Task.created_at)))).all()
    return {t.event_id: t.due_at for t in tasks if t.due_at is not None}


async def new_token(db: Database, event_id: str, integration: str) -> str:
    """A token for the report ``event_id`` of ``integration`` (random; resolved by :func:`token_event`)."""
    token = secrets.token_urlsafe(18)
    async with db.session() as session:
        session.add(models.Open311Token(token=token, event_id=event_id, integration=integration,
                                        created_at=utcnow()))
        await session.commit()
    return token


async def token_event(db: Database, token: str) -> tuple[models.Open311Token | None, models.Event | None]:
    """The token's row and its event once the event is in the store (None while it is not)."""
    async with db.session() as session:
        row = await session.get(models.Open311Token, token)
        event = await session.get(models.Event, row.event_id) if row is not None else None
    return row, event
