"""The outbox of reporter notices: delivery attempts, failures and deliveries, as the activity sees them.

The workflow starts a delivery only once a projection holding the notice is in the store, but a
delivery started by an older worker may come first (issue 9, finding 13): each write here then
inserts the row from the notice itself, and the projection, finding the row, leaves it alone.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.db import Database
from store.timeutil import parse_required, utcnow
from workflows.types import Notice


def event_of(notice_id: str) -> str:
    """The event of a notice: its id is ``<event id>.N<number>`` (``EventLifecycle._notify``)."""
    return notice_id.rsplit(".N", 1)[0]


async def _row(session: AsyncSession, notice: Notice) -> models.Notice:
    row = await session.get(models.Notice, notice.notice_id)
    if row is None:
        row = models.Notice(
            notice_id=notice.notice_id, event_id=event_of(notice.notice_id), kind=notice.kind,
            recipient=notice.recipient, body=notice.body, created_at=parse_required(notice.created_at),
        )
    return row


async def _record_attempt(db: Database, notice: Notice, attempt: int) -> None:
    async with db.transaction() as session:
        row = await _row(session, notice)
        row.attempts = max(row.attempts, attempt)
        session.add(row)
        await session.commit()


async def record_attempt(db: Database, notice: Notice, attempt: int) -> None:
    """Note that delivery attempt ``attempt`` starts."""
    await db.write(_record_attempt, notice, attempt)


async def _record_failure(db: Database, notice: Notice, error: str) -> None:
    async with db.transaction() as session:
        row = await _row(session, notice)
        row.last_error = error[:500]
        session.add(row)
        await session.commit()


async def record_failure(db: Database, notice: Notice, error: str) -> None:
    """Keep the last delivery error, for the supervisors' stuck list."""
    await db.write(_record_failure, notice, error)


async def _mark_delivered(db: Database, notice: Notice, channel: str) -> None:
    async with db.transaction() as session:
        row = await _row(session, notice)
        row.status, row.channel, row.delivered_at, row.last_error = "delivered", channel, utcnow(), None
        session.add(row)
        await session.commit()


async def mark_delivered(db: Database, notice: Notice, channel: str) -> None:
    """The notice reached its channel."""
    await db.write(_mark_delivered, notice, channel)


async def failing(db: Database, min_attempts: int = 3) -> list[models.Notice]:
    """Undelivered notices whose delivery has failed at least ``min_attempts`` times."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.Notice)
            .where(models.Notice.status == "pending", col(models.Notice.attempts) >= min_attempts)
            .order_by(col(models.Notice.created_at))
        )
        return list(rows.all())
