"""What a simulation run left in the store: events, closed, overdue, warnings, and the assessment's
indicators for the city over the simulated period (computed by ``store.assessment`` from the facts the
projection recorded, exactly as the assessment pages compute them)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel import col

from assessment.indicators import Value, load
from store import assessment, models
from store.db import Database
from store.org import OrgTree
from wulian.simulation.compare import Figures
from wulian.simulation.plan import GRASSROOTS


@dataclass
class StoreSummary:
    """The store's account of the run."""

    events: int = 0
    closed: int = 0
    by_state: dict[str, int] = field(default_factory=dict)
    tasks_overdue: int = 0  # handling tasks completed after their deadline, or open past it
    warnings: dict[str, int] = field(default_factory=dict)  # reminder | yellow | red
    indicators: dict[str, Value] = field(default_factory=dict)


async def summarise(db: Database, org: OrgTree, first: date, last: date, end: datetime) -> StoreSummary:
    """The summary of the store for the days ``first``..``last``, as of ``end`` (simulated time)."""
    out = StoreSummary()
    event, task, warning = models.Event, models.Task, models.SupervisionWarning
    async with db.engine.connect() as conn:
        for state, n in (await conn.execute(select(col(event.state), func.count()).group_by(col(event.state)))).all():
            out.by_state[state] = int(n)
        for kind, n in (await conn.execute(select(col(warning.kind), func.count()).group_by(col(warning.kind)))).all():
            out.warnings[kind] = int(n)
        late = (select(func.count()).select_from(task).where(
            col(task.kind) == "handle", col(task.due_at).is_not(None),
            ((col(task.completed_at).is_not(None)) & (col(task.completed_at) > col(task.due_at)))
            | ((col(task.completed_at).is_(None)) & (col(task.status).in_(("open", "claimed")))
               & (col(task.due_at) < end))))
        out.tasks_overdue = int((await conn.execute(late)).scalar_one())
    out.events = sum(out.by_state.values())
    out.closed = out.by_state.get("closed", 0)
    out.indicators = await assessment.indicator_values(db, org, assessment.city_of(org), first, last, now=end)
    return out


def indicator_lines(values: dict[str, Value], lang: str = "en") -> list[tuple[str, str, str]]:
    """(code, name, value) of each indicator, in the definitions' order."""
    rows = []
    for definition in load():
        value = values.get(definition.code)
        if value is None:
            continue
        if value.value is None:
            shown = "—"
        elif definition.kind == "rate":
            shown = f"{value.value * 100:.1f}%  ({value.numerator:g}/{value.denominator:g})"
        elif definition.kind == "average":
            shown = f"{value.value:.1f}"
        else:
            shown = f"{value.value:g}"
        rows.append((definition.code, definition.name(lang), shown))
    return rows


async def unit_figures(db: Database, org: OrgTree) -> Figures:
    """The per-unit figures of :mod:`wulian.simulation.compare` as a workflow run left them in the store:
    handling tasks per unit (on time when completed by their deadline), escalations away from each
    unit (tasks ended by an escalation or a red warning), and the events of each area with how many
    ended at the grassroots (the unit of their last handling task)."""
    out = Figures()
    task, event = models.Task, models.Event
    last_unit: dict[str, str] = {}
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(col(task.event_id), col(task.unit), col(task.status), col(task.completed_at),
                                          col(task.due_at), col(task.ended_by), col(task.created_at))
                                   .where(col(task.kind) == "handle").order_by(col(task.created_at)))).all()
        for event_id, unit, status, completed, due, ended_by, _ in rows:
            row = out.units[unit]
            row.tier = row.tier or (org.units[unit].tier if unit in org.units else "")
            row.workload += 1
            if completed is not None and (due is None or completed <= due):
                row.on_time += 1
            if ended_by == "escalated":
                row.escalations += 1
                out.escalations += 1
            if status != "cancelled":
                last_unit[event_id] = unit
        places = (await conn.execute(select(col(event.event_id), col(event.grid), col(event.community),
                                            col(event.street)))).all()
    areas: dict[str, list[bool]] = defaultdict(list)
    for event_id, grid, community, street in places:
        final = last_unit.get(event_id)
        grassroots = final is not None and final in org.units and org.units[final].tier in GRASSROOTS
        out.events += 1
        out.grassroots += grassroots
        for area in (grid, community, street):
            if area:
                areas[area].append(grassroots)
    for area, flags in areas.items():
        row = out.units[area]
        row.tier = row.tier or (org.units[area].tier if area in org.units else "")
        row.area_events, row.area_grassroots = len(flags), sum(flags)
    return out
