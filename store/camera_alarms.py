"""The open event of each camera and category (``cameraclaim``): camera alarms of one camera and
category within the window are one event with an occurrence count, never a new event (issue 12).

:func:`claim` answers the event an alarm belongs to, in one write: the row is inserted with
``INSERT ... ON CONFLICT DO NOTHING`` (of two alarms arriving together, one inserts and the other
finds its row), then read under the write lock (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's ``FOR
UPDATE``), so two concurrent alarms never both start an event. An alarm joins the row's event while
that event is open (not closed, voided or merged; an event not projected yet counts as open: it was
just started) and the previous alarm was at most ``window`` ago (a sliding window: a camera that
keeps firing at a standing problem keeps one event); otherwise the row moves on to a new event.
The web then starts or signals that event's workflow with signal-with-start (``web/camera_alarms.py``),
so the alarm counts even when the first alarm's start has not reached Temporal yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select

from store import models
from store.db import Database
from store.timeutil import as_utc

#: States in which an event takes no more alarms: a new alarm then starts a new event.
ENDED_STATES = ("closed", "voided", "merged")


@dataclass(frozen=True)
class Claim:
    """The event an alarm belongs to; ``new``: this alarm moved the row to it (it should start it)."""

    event_id: str
    new: bool


async def claim(db: Database, camera: str, category: str, now: datetime, window: timedelta,
                fresh_event_id: str) -> Claim:
    """The event of the alarm of ``camera`` and ``category`` at ``now``: the open one when its last
    alarm lies within ``window``, else ``fresh_event_id`` (now the row's)."""
    return await db.write(_claim, camera, category, now, window, fresh_event_id)


async def _claim(db: Database, camera: str, category: str, now: datetime, window: timedelta,
                 fresh_event_id: str) -> Claim:
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    statement = (insert(models.CameraClaim)
                 .values(camera=camera, category=category, generation=0, event_id=fresh_event_id,
                         first_at=now, last_at=now)
                 .on_conflict_do_nothing(index_elements=["camera", "category"])
                 .returning(col(models.CameraClaim.event_id)))
    async with db.transaction() as session:
        if (await session.execute(statement)).scalar_one_or_none() is not None:
            await session.commit()
            return Claim(fresh_event_id, new=True)
        row = (await session.exec(
            select(models.CameraClaim)
            .where(models.CameraClaim.camera == camera, models.CameraClaim.category == category)
            .with_for_update().execution_options(populate_existing=True))).one()
        event = await session.get(models.Event, row.event_id)
        last = as_utc(row.last_at)
        if (event is None or event.state not in ENDED_STATES) and now - last <= window:
            row.last_at = max(last, now)
            session.add(row)
            await session.commit()
            return Claim(row.event_id, new=False)
        row.generation += 1
        row.event_id, row.first_at, row.last_at = fresh_event_id, now, now
        session.add(row)
        await session.commit()
        return Claim(fresh_event_id, new=True)
