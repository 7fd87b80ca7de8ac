"""The process tasks' queries (issue 14): a person's open tasks and their count per process kind (the
inbox and /processes), and the late ones of a supervisor's scope (the console's overdue and stuck
queues, as for events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import and_, col, func, or_, select

from processes.instance import Person
from store import models
from store.db import Database

#: A process task still to be done.
ACTIVE = ("open", "claimed")


def _task_filter(person: Person) -> Any:
    """The open process tasks ``person`` may take or that are theirs: their own, their unit's, and
    those of units above them (a task ``below`` a street reaches its grids: the moves decide)."""
    table = models.ProcessTaskRow
    return and_(col(table.status).in_(ACTIVE), or_(
        col(table.person) == person.username, col(table.unit).in_(list(person.units_above) or [person.unit]),
        col(table.claimed_by) == person.username))


async def task_rows(db: Database, person: Person, kind: str | None, limit: int = 100) -> list[models.ProcessTaskRow]:
    """The open process tasks of ``person`` (:func:`_task_filter`), of ``kind`` when given, soonest due first."""
    table = models.ProcessTaskRow
    query = select(table).where(_task_filter(person))
    if kind:
        query = query.where(table.kind == kind)
    async with db.session() as session:
        rows = list((await session.exec(query.order_by(col(table.due_at).asc(), col(table.created_at).desc())
                                        .limit(limit))).all())
    return rows


async def task_counts(db: Database, person: Person) -> dict[str, int]:
    """How many open process tasks of ``person`` each process kind has (the inbox's process filter)."""
    table = models.ProcessTaskRow
    async with db.session() as session:
        counted = (await session.exec(select(table.kind, func.count()).where(_task_filter(person))
                                      .group_by(table.kind))).all()
    return {kind: int(n) for kind, n in counted}


async def late_tasks(db: Database, scope: set[str], now: datetime, limit: int = 200) -> dict[str, list[Any]]:
    """The process tasks of the units of ``scope`` past their deadline (``process_overdue``, soonest
    first) and those of them nobody has claimed (``process_stuck``)."""
    table = models.ProcessTaskRow
    late = [col(table.unit).in_(list(scope)), col(table.status).in_(ACTIVE), col(table.due_at).is_not(None),
            col(table.due_at) < now]
    async with db.session() as session:
        overdue = list((await session.exec(select(table).where(*late).order_by(col(table.due_at).asc())
                                           .limit(limit))).all())
    return {"process_overdue": overdue, "process_stuck": [t for t in overdue if t.status == "open"]}
