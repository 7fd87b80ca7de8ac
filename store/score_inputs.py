"""What a period's scores are computed from, read from the store (``assessment.scores.Inputs``):
every unit's indicators (the core's rollups), the grids' own reports by source, the inspection
entries, the people scored and their own handling records, the cadres' ratings of the year, and
what the processes (volunteer activities, proxy services, micro-wishes) credited people and places."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import and_, case, or_
from sqlmodel import col, func, select

from assessment.indicators import Value
from assessment.schemes import Scheme
from assessment.scores import Inputs, Person, Subject
from store import models
from store.assessment import day_bounds, indicator_values
from store.db import Database
from store.org import OrgTree
from store.schemes import cadre_ratings, inspections


def _subject(unit: models.Unit) -> Subject:
    return Subject(unit.code, unit.name_zh, unit.name_en)


async def personal_records(db: Database, usernames: list[str], day_from: date,
                           day_to: date) -> dict[str, dict[str, Value]]:
    """Each person's own handling record: their handling tasks (claimed by them, created in the
    period, not cancelled) completed, and completed by the deadline (a task without one is on time)."""
    if not usernames:
        return {}
    start, end = day_bounds(day_from, day_to)
    task = models.Task
    done = case((col(task.status) == "done", 1), else_=0)
    on_time = case((and_(col(task.status) == "done",
                         or_(col(task.due_at).is_(None), col(task.completed_at) <= col(task.due_at))), 1), else_=0)
    query = (select(task.claimed_by, func.count(), func.sum(done), func.sum(on_time))
             .where(col(task.claimed_by).in_(usernames), task.kind == "handle", col(task.status) != "cancelled",
                    col(task.created_at) >= start, col(task.created_at) < end)
             .group_by(task.claimed_by))
    found: dict[str, dict[str, Value]] = {}
    async with db.session() as session:
        for username, n, n_done, n_on_time in (await session.exec(query)).all():
            n, n_done, n_on_time = int(n or 0), int(n_done or 0), int(n_on_time or 0)
            found[str(username)] = {
                "handled_rate": Value(n_done / n if n else None, n_done, n),
                "on_time_handled_rate": Value(n_on_time / n if n else None, n_on_time, n),
            }
    return found


async def grid_reports(db: Database, sources: set[str], day_from: date, day_to: date) -> dict[tuple[str, str], int]:
    """Events each grid reported from each of ``sources`` within the period (voided ones do not count)."""
    if not sources:
        return {}
    start, end = day_bounds(day_from, day_to)
    event = models.Event
    query = (select(event.grid, event.source, func.count())
             .where(col(event.source).in_(sorted(sources)), col(event.grid).is_not(None), event.state != "voided",
                    col(event.created_at) >= start, col(event.created_at) < end)
             .group_by(event.grid, event.source))
    async with db.session() as session:
        return {(str(grid), str(source)): int(n) for grid, source, n in (await session.exec(query)).all()}


async def process_credits(db: Database, day_from: date, day_to: date
                          ) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """What the processes credited within the period (by when it was credited): by person, and by
    the community and the street of the instance (each credit kind summed)."""
    start, end = day_bounds(day_from, day_to)
    credit = models.ProcessCredit
    in_period = (col(credit.credited_at) >= start, col(credit.credited_at) < end)
    people: dict[str, dict[str, float]] = defaultdict(dict)
    units: dict[str, dict[str, float]] = defaultdict(dict)
    async with db.session() as session:
        for subject, kind, total in (await session.exec(
                select(credit.subject, credit.credit, func.sum(credit.amount)).where(*in_period)
                .group_by(credit.subject, credit.credit))).all():
            people[str(subject)][str(kind)] = float(total or 0)
        for place in (credit.community, credit.street):
            for unit, kind, total in (await session.exec(
                    select(place, credit.credit, func.sum(credit.amount)).where(*in_period, place != "")
                    .group_by(place, credit.credit))).all():
                units[str(unit)][str(kind)] = float(total or 0)
    return dict(people), dict(units)


async def gather(db: Database, org: OrgTree, scheme: Scheme, day_from: date, day_to: date, *,
                 annual: bool = False, now: datetime | None = None) -> Inputs:
    """The inputs of :func:`assessment.scores.score_sheet` for the period."""
    units = sorted(org.units.values(), key=lambda u: u.code)
    kinds: dict[str, list[models.Unit]] = defaultdict(list)
    for unit in units:
        kinds[unit.kind].append(unit)
    grids_under: dict[str, list[str]] = {}
    for unit in units:
        if unit.kind in ("street", "community", "city"):
            grids_under[unit.code] = sorted(c for c in org.descendants(unit.code) if org.units[c].kind == "grid")
    values = {}
    for unit in kinds["department"] + kinds["street"] + kinds["community"] + kinds["grid"]:
        values[unit.code] = await indicator_values(db, org, unit.code, day_from, day_to, now=now)
    async with db.session() as session:
        users = (await session.exec(select(models.User).where(
            models.User.active == True,  # noqa: E712
            or_(col(models.User.party_member) == True, col(models.User.role) == "dispatched_cadre")))).all()  # noqa: E712
    people = [Person(u.username, u.display_name, u.unit, u.role, u.party_member, u.stationed_street)
              for u in sorted(users, key=lambda u: u.username)]
    for person in people:  # a person's unit that is no grid, street or community: the grids below it
        if person.unit not in grids_under:
            grids_under[person.unit] = sorted(c for c in org.descendants(person.unit) if org.units[c].kind == "grid")
    sources = {d.measure.source or "grid_patrol" for d in scheme.grid.duties if d.measure.kind == "reports"}
    entries: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for entry in await inspections(db, None, day_from, day_to, limit=1_000_000):
        entries[entry.grid][entry.duty].append(entry.score)
    person_credits, unit_credits = await process_credits(db, day_from, day_to)
    ratings = {}
    if annual:
        ratings = {(r.username, r.side): r.score for r in await cadre_ratings(db, day_from.year)}
    return Inputs(
        departments=[_subject(u) for u in kinds["department"]],
        streets=[_subject(u) for u in kinds["street"]],
        communities=[_subject(u) for u in kinds["community"]],
        grids=[_subject(u) for u in kinds["grid"]],
        grids_under=grids_under,
        values=values,
        people=people,
        personal=await personal_records(db, [p.username for p in people], day_from, day_to),
        reports=await grid_reports(db, sources, day_from, day_to),
        inspections={g: dict(d) for g, d in entries.items()},
        ratings=ratings,
        person_credits=person_credits,
        unit_credits=unit_credits,
    )
