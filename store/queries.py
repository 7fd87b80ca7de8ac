"""Read queries of the store used by the web: inbox, event detail, tracking, users."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import col, func, select

from store import models, photos
from store.db import Database
from workflows.policy import department_of


async def get_task(db: Database, task_id: str) -> models.Task | None:
    """One task by id."""
    async with db.session() as session:
        return await session.get(models.Task, task_id)


async def get_event(db: Database, event_id: str) -> models.Event | None:
    """One event by id."""
    async with db.session() as session:
        return await session.get(models.Event, event_id)


async def event_by_receipt(db: Database, receipt_code: str) -> models.Event | None:
    """The event with this receipt code (case-insensitive, dashes and spaces ignored)."""
    code = receipt_code.replace("-", "").replace(" ", "").upper()
    async with db.session() as session:
        return (
            await session.exec(select(models.Event).where(models.Event.receipt_code == code))
        ).first()


async def tasks_of_events(db: Database, event_ids: list[str]) -> dict[str, list[models.Task]]:
    """The tasks of each of ``event_ids`` (one query, by the index on ``task.event_id``), oldest first."""
    found: dict[str, list[models.Task]] = {event_id: [] for event_id in event_ids}
    if not event_ids:
        return found
    async with db.session() as session:
        rows = await session.exec(
            select(models.Task)
            .where(col(models.Task.event_id).in_(event_ids))
            .order_by(col(models.Task.created_at), col(models.Task.task_id))
        )
        for row in rows.all():
            found.setdefault(row.event_id, []).append(row)
    return found


async def event_tasks(db: Database, event_id: str) -> list[models.Task]:
    """The tasks of an event, oldest first."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.Task)
            .where(models.Task.event_id == event_id)
            .order_by(col(models.Task.created_at), col(models.Task.task_id))
        )
        return list(rows.all())


async def timeline(db: Database, event_id: str) -> list[models.TimelineEntry]:
    """The timeline of an event in order."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.TimelineEntry)
            .where(models.TimelineEntry.event_id == event_id)
            .order_by(col(models.TimelineEntry.seq))
        )
        return list(rows.all())


async def users(db: Database, unit: str | None = None) -> list[models.User]:
    """Users, optionally of one unit."""
    async with db.session() as session:
        query = select(models.User).order_by(col(models.User.username))
        if unit:
            query = query.where(models.User.unit == unit)
        return list((await session.exec(query)).all())


async def cadres_at(db: Database, street: str) -> dict[str, str]:
    """The "1+X" cadres stationed at ``street``: department code → username."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.User).where(
                models.User.role == "dispatched_cadre",
                models.User.stationed_street == street,
                models.User.active == True,  # noqa: E712
            )
        )
        return {department_of(u.unit) or u.unit: u.username for u in rows.all()}


async def console(db: Database, scope: set[str], now: datetime, limit: int = 200) -> dict[str, list[Any]]:
    """The supervisors' queues within ``scope``: overdue tasks, stuck ones (overdue and unclaimed),
    events awaiting approval, triage, failing notices, and open and overdue task counts per unit.

    Each queue is its own limited query and the counts are GROUP BYs, so they stay right (and
    quick) however many tasks are open in the scope (bench/inbox_bench.py measures a street and
    the whole city over a million tasks)."""
    units = list(scope)
    task = models.Task
    active = col(task.active) == True  # noqa: E712
    in_scope = [col(task.unit).in_(units), active]
    # The queues read ix_task_console (active, kind, due_key, unit) in deadline order and stop at
    # the limit, checking the unit in the index entry. Written as ``unit || ''`` the test on the unit
    # cannot pick an index by itself: with a plain ``unit IN (...)`` SQLite chose the per-unit
    # inbox index, joined every overdue task of a street to its event and sorted them (1.6 s over a
    # million tasks instead of milliseconds).
    by_deadline = [(col(task.unit) + "").in_(units), active]
    late: list[ColumnElement[bool]] = [col(task.kind) == "handle", col(task.due_key) < now]

    def tasks(*where: Any) -> Any:
        return (
            select(models.Task, models.Event)
            .join(models.Event, col(models.Event.event_id) == col(models.Task.event_id))
            .where(*by_deadline, *where)
            .order_by(col(task.due_key), col(task.task_id))
            .limit(limit)
        )

    # The counts per unit are two counts, each read from an index alone, never from the rows of a
    # whole city's open tasks: the open ones of the scope (ix_task_inbox_due), and the overdue ones
    # of the whole city (ix_task_console), kept for the scope here. Grouped by ``unit || ''`` for the
    # reason above: grouping by the bare column made SQLite walk the per-unit index for its order.
    open_per_unit = select(task.unit, func.count()).where(*in_scope).group_by(col(task.unit))
    unit_key = col(task.unit) + ""
    late_per_unit = select(unit_key, func.count()).where(active, *late).group_by(unit_key)

    async with db.session() as session:
        overdue = (await session.exec(tasks(*late))).all()
        stuck = (await session.exec(tasks(*late, task.status == "open"))).all()
        triage = (await session.exec(tasks(task.kind == "triage"))).all()
        open_counts = dict((await session.exec(open_per_unit)).all())
        late_counts = {u: n for u, n in (await session.exec(late_per_unit)).all() if u in scope}
        awaiting = (
            await session.exec(
                # Few events await approval: find them by the pending index, then keep the scope's.
                # ``pending > ''`` rather than IS NOT NULL: SQLite's statistics see one value (NULL)
                # in the column and would read every event of the scope's units instead.
                select(models.Event)
                .where(col(models.Event.pending) > "", (col(models.Event.unit) + "").in_(units))
                .order_by(col(models.Event.updated_at)).limit(limit)
            )
        ).all()
        failing = (
            await session.exec(
                select(models.Notice, models.Event)
                .join(models.Event, col(models.Event.event_id) == col(models.Notice.event_id))
                .where(models.Notice.status == "pending", col(models.Notice.attempts) >= 3,
                       col(models.Event.unit).in_(units))
                .limit(limit)
            )
        ).all()
    return {
        "overdue": list(overdue),
        "stuck": list(stuck),
        "awaiting": list(awaiting),
        "triage": list(triage),
        "failing_notices": list(failing),
        "counts": [(unit, {"open": n, "overdue": late_counts.get(unit, 0)}) for unit, n in sorted(open_counts.items())],
    }


async def warnings_of(db: Database, event_id: str) -> list[models.SupervisionWarning]:
    """The supervision warnings (reminder, yellow, red) of an event, oldest first."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.SupervisionWarning)
            .where(models.SupervisionWarning.event_id == event_id)
            .order_by(col(models.SupervisionWarning.seq))
        )
        return list(rows.all())


async def add_report_photos(db: Database, event_id: str, photo_ids: Iterable[str]) -> None:
    """Keep the photos a resident attached to the report of ``event_id``, and attach their records
    (``Photo``) to the event, in one transaction."""
    ids = list(photo_ids)
    async with db.session() as session:
        for photo_id in ids:
            session.add(models.ReportPhoto(event_id=event_id, photo_id=photo_id))
        await photos.attach_in(session, ids, event_id)
        await session.commit()


async def report_photos(db: Database, event_id: str) -> list[str]:
    """The ids of the photos attached to the report of ``event_id``, in upload order."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.ReportPhoto)
            .where(models.ReportPhoto.event_id == event_id)
            .order_by(col(models.ReportPhoto.id))
        )
        return [r.photo_id for r in rows.all()]


#: How far back the event page looks for related reports (same grid and category).
RELATED_DAYS = 90


async def related_events(db: Database, event: models.Event, limit: int = 30) -> list[models.Event]:
    """Other events of the same category in the same grid in the last ``RELATED_DAYS`` days before
    and after ``event``, newest first: repeats and duplicates a handler should know about."""
    if not event.grid:
        return []
    window = timedelta(days=RELATED_DAYS)
    async with db.session() as session:
        rows = await session.exec(
            select(models.Event)
            .where(
                models.Event.grid == event.grid,
                models.Event.category == event.category,
                col(models.Event.created_at) >= event.created_at - window,
                col(models.Event.created_at) <= event.created_at + window,
                models.Event.event_id != event.event_id,
            )
            .order_by(col(models.Event.created_at).desc())
            .limit(limit)
        )
        return list(rows.all())


#: States in which a report is still being worked on (not closed, not voided).
_DONE_STATES = ("closed", "voided", "merged")


async def open_events_nearby(db: Database, *, category: str, grid: str, limit: int = 10) -> list[models.Event]:
    """Open events of ``category`` in ``grid``, newest first (for residents to follow instead of re-reporting)."""
    async with db.session() as session:
        rows = await session.exec(
            select(models.Event)
            .where(
                models.Event.category == category,
                models.Event.grid == grid,
                col(models.Event.state).not_in(_DONE_STATES),
            )
            .order_by(col(models.Event.created_at).desc())
            .limit(limit)
        )
        return list(rows.all())
