"""The outbox of reporter notices: delivery attempts, failures and deliveries, as the activity sees them."""

from __future__ import annotations

from sqlmodel import col, select

from store import models
from store.db import Database
from store.timeutil import utcnow


async def record_attempt(db: Database, notice_id: str, attempt: int) -> None:
    """Note that delivery attempt ``attempt`` starts (the row may not be projected yet: then skip)."""
    async with db.session() as session:
        row = await session.get(models.Notice, notice_id)
        if row is not None:
            row.attempts = max(row.attempts, attempt)
            session.add(row)
            await session.commit()


async def record_failure(db: Database, notice_id: str, error: str) -> None:
    """Keep the last delivery error, for the supervisors' stuck list."""
    async with db.session() as session:
        row = await session.get(models.Notice, notice_id)
        if row is not None:
            row.last_error = error[:500]
            session.add(row)
            await session.commit()


async def mark_delivered(db: Database, notice_id: str, channel: str) -> None:
    """The notice reached its channel."""
    async with db.session() as session:
        row = await session.get(models.Notice, notice_id)
        if row is not None:
            row.status, row.channel, row.delivered_at, row.last_error = "delivered", channel, utcnow(), None
            session.add(row)
            await session.commit()


async def failing(db: Database, min_attempts: int = 3) -> list[models.Notice]:
    """Undelivered notices whose delivery has failed at least ``min_attempts`` times."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.Notice)
            .where(models.Notice.status == "pending", col(models.Notice.attempts) >= min_attempts)
            .order_by(col(models.Notice.created_at))
        )
        return list(rows.all())
