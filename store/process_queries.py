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


async def late_tasks(db: Database, scope: set[str], limit: int = 200) -> dict[str, list[Any]]:
    """The process tasks of the units of ``scope`` whose deadline passed and escalated (``late``, set
    by the workflow's timer: a deadline the definition does not escalate, like a wish's adoption,
    stays off this list; ``process_overdue``, soonest due first) and those of them nobody has claimed
    (``process_stuck``)."""
    table = models.ProcessTaskRow
    late = [col(table.unit).in_(list(scope)), col(table.status).in_(ACTIVE), col(table.late)]
    async with db.session() as session:
        overdue = list((await session.exec(select(table).where(*late).order_by(col(table.due_at).asc())
                                           .limit(limit))).all())
    return {"process_overdue": overdue, "process_stuck": [t for t in overdue if t.status == "open"]}


def _in_unit(table: Any, unit: str, kind: str) -> Any:
    """The rows of ``table`` (with grid, community and street columns) within ``unit`` of ``kind``;
    None for the whole city, False (nothing) for a unit no process instance is placed in."""
    if kind == "city":
        return None
    column = getattr(table, kind, None) if kind in ("grid", "community", "street") else None
    return col(column) == unit if column is not None else False


async def dashboard_figures(db: Database, unit: str, unit_kind: str, start: datetime, end: datetime
                            ) -> dict[str, Any]:
    """The processes' figures of the dashboard for ``unit`` over [start, end): instances started and
    ended per kind; proxy services by item (requested, done, done with no task late); micro-wishes
    posted, adopted and fulfilled; volunteer activities and hours by team (hours as credited)."""
    inst, task, credit = models.ProcessInstanceRow, models.ProcessTaskRow, models.ProcessCredit
    figures: dict[str, Any] = {"kinds": [], "proxy": [], "wishes": {"posted": 0, "adopted": 0, "fulfilled": 0},
                               "teams": []}
    where = _in_unit(inst, unit, unit_kind)
    if where is False:
        return figures
    started: list[Any] = [col(inst.created_at) >= start, col(inst.created_at) < end]
    if where is not None:
        started.append(where)
    async with db.session() as session:
        per_kind = (await session.exec(select(inst.kind, func.count(), func.count(col(inst.ended_at)))
                                       .where(*started).group_by(inst.kind))).all()
        figures["kinds"] = [{"kind": str(k), "started": int(n), "ended": int(e)} for k, n, e in sorted(per_kind)]
        proxies = (await session.exec(select(inst.instance_id, inst.state, inst.data).where(
            *started, inst.kind == "proxy_service"))).all()
        late_ids = set((await session.exec(select(task.instance_id).where(
            col(task.instance_id).in_([p[0] for p in proxies]),
            or_(col(task.late), col(task.completed_at) > col(task.due_at))))).all()) if proxies else set()
        wishes = (await session.exec(select(inst.state, func.count()).where(*started, inst.kind == "micro_wish")
                                     .group_by(inst.state))).all()
        activities = (await session.exec(select(inst.data).where(*started, inst.kind == "volunteer_activity"))).all()
        credited: list[Any] = [col(credit.credited_at) >= start, col(credit.credited_at) < end,
                    credit.credit == "volunteer_hours"]
        if where is not None:  # a credit has its instance's community and street; a grid's, through its instance
            credited.append(col(credit.instance_id).in_(select(inst.instance_id).where(where))
                            if unit_kind == "grid" else _in_unit(credit, unit, unit_kind))
        hours = (await session.exec(select(credit.team, func.sum(credit.amount), func.count(func.distinct(
            credit.subject))).where(*credited).group_by(credit.team))).all()
    items: dict[str, dict[str, int]] = {}
    for instance_id, state, data in proxies:
        item = str((data.get("values") or {}).get("item") or "")
        row = items.setdefault(item, {"requested": 0, "done": 0, "on_time": 0})
        row["requested"] += 1
        if state == "done":
            row["done"] += 1
            row["on_time"] += instance_id not in late_ids
    figures["proxy"] = [{"code": code, **row, "on_time_rate": row["on_time"] / row["done"] if row["done"] else None}
                        for code, row in sorted(items.items(), key=lambda kv: (-kv[1]["requested"], kv[0]))]
    by_state = {str(s): int(n) for s, n in wishes}
    figures["wishes"] = {"posted": sum(by_state.values()),
                         "adopted": sum(n for s, n in by_state.items() if s in ("adopted", "fulfilled", "done")),
                         "fulfilled": by_state.get("done", 0)}
    per_team: dict[str, dict[str, float]] = {}
    for data in activities:
        team = str((data.get("values") or {}).get("team") or "")
        per_team.setdefault(team, {"activities": 0.0, "hours": 0.0, "volunteers": 0.0})["activities"] += 1
    for team, total, people in hours:
        team_row = per_team.setdefault(str(team or ""), {"activities": 0.0, "hours": 0.0, "volunteers": 0.0})
        team_row["hours"], team_row["volunteers"] = float(total or 0), float(people or 0)
    figures["teams"] = [{"team": team, "activities": int(row["activities"]), "hours": row["hours"],
                         "volunteers": int(row["volunteers"])}
                        for team, row in sorted(per_team.items(), key=lambda kv: (-kv[1]["hours"], kv[0]))]
    return figures


async def failing_notices(db: Database, scope: set[str], limit: int = 200
                          ) -> list[tuple[models.Notice, models.ProcessInstanceRow]]:
    """The process notices of ``scope``'s instances still undelivered after three attempts or more
    (each with its instance), for the console: the delivery retries them itself for about two hours
    (``workflows.process_instance``), then gives up and leaves the row with its last error."""
    notice, inst = models.Notice, models.ProcessInstanceRow
    units = list(scope)
    async with db.session() as session:
        rows = (await session.exec(
            select(notice, inst).join(inst, col(inst.instance_id) == col(notice.event_id))
            .where(notice.kind == "process", notice.status == "pending", col(notice.attempts) >= 3,
                   or_(col(inst.grid).in_(units), col(inst.community).in_(units), col(inst.street).in_(units)))
            .order_by(col(notice.created_at)).limit(limit))).all()
    return [(n, i) for n, i in rows]
