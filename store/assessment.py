"""The assessment's facts and rollups in the store: written by the projection in the event's own
transaction (``record``), rebuilt from the events (``rebuild``), and read by pages, API, dashboard
and reports (``indicator_values``, ``monthly_values``, ``child_values``, ``category_counts``,
``drill``).

A unit's indicators over a period are one range of ``IndicatorRollup``'s primary key per unit, never
a scan of events; the one moment-dependent counter (tasks open past their deadline at the end of the
period) reads the few late-task facts. Drill-down lists read the facts themselves, so the list behind
a number is the set of rows that made it.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from typing import cast as type_cast

from sqlalchemy import String, and_, cast, delete, false, func, or_, true, tuple_
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from assessment import facts as F
from assessment.indicators import USED_COUNTERS, Total, Value, counters_for, evaluate
from rules.worktime import CITY_TZ
from store import models
from store.db import Database
from store.org import OrgTree
from store.timeutil import utcnow

#: Rows of a drill-down page at most.
MAX_DRILL_LIMIT = 200


class _Units:
    """The organisation as the facts need it, read in the projection's session and kept per store
    (units are never deleted or moved; one that is new is read again)."""

    def __init__(self) -> None:
        self.trees: weakref.WeakKeyDictionary[Database, OrgTree] = weakref.WeakKeyDictionary()

    async def lookup(self, session: AsyncSession, db: Database, codes: Iterable[str | None]) -> tuple[F.Lookup, str]:
        """A lookup knowing every unit of ``codes``, and the city's code."""
        tree = self.trees.get(db)
        if tree is None or any(c and c not in tree.units for c in codes):
            tree = self.trees[db] = OrgTree(list((await session.exec(select(models.Unit))).all()))
        return lookup_of(tree), city_of(tree)


_UNITS = _Units()


def lookup_of(tree: OrgTree) -> F.Lookup:
    """``assessment.facts``'s view of the organisation tree."""

    def lookup(code: str) -> F.UnitInfo | None:
        unit = tree.units.get(code)
        if unit is None:
            return None
        return F.UnitInfo(kind=unit.kind, tier=unit.tier, ancestors=tuple(tree.ancestors(code)))

    return lookup


def city_of(tree: OrgTree) -> str:
    """The code of the city (the root of the tree)."""
    roots = sorted(code for code, unit in tree.units.items() if unit.parent is None)
    return next((c for c in roots if tree.units[c].kind == "city"), roots[0] if roots else "")


# ------------------------------------------------------------------------------------------- writes
async def record(session: AsyncSession, db: Database, event: models.Event, tasks: Sequence[models.Task],
                 warnings: Sequence[models.SupervisionWarning]) -> None:
    """Bring the event's facts and their rollups in line with its rows (in the caller's transaction)."""
    lookup, city = await _UNITS.lookup(session, db, [event.unit, event.grid, *(t.unit for t in tasks),
                                                 *(w.unit for w in warnings)])
    new = {f.subject: f for f in F.facts_of(event, tasks, warnings, lookup)}
    old = {f.subject: f for f in (await session.exec(
        select(models.AssessmentFact).where(models.AssessmentFact.event_id == event.event_id))).all()}
    rollup: dict[F.Key, list[float]] = defaultdict(lambda: [0, 0.0])
    categories: dict[tuple[str, date, str], int] = defaultdict(int)
    for subject in old.keys() | new.keys():
        before, after = old.get(subject), new.get(subject)
        if before is not None and after is not None and _same(before, after):
            continue
        _add(rollup, categories, before, city, -1)
        _add(rollup, categories, after, city, +1)
        if before is not None and after is None:
            await session.delete(before)
        elif after is not None:
            if before is None:
                session.add(after)
            else:
                for name in _FACT_FIELDS:
                    setattr(before, name, getattr(after, name))
                session.add(before)
    await _apply_rollups(session, db, rollup, categories)


_FACT_FIELDS = ("kind", "day", "category", "grid", "community", "street", "department", "centre", "flags",
                "amounts", "due_at", "ended_at")


def _same(a: models.AssessmentFact, b: models.AssessmentFact) -> bool:
    def norm(v: Any) -> Any:
        return v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v
    return all(norm(getattr(a, n)) == norm(getattr(b, n)) for n in _FACT_FIELDS)


def _add(rollup: dict[F.Key, list[float]], categories: dict[tuple[str, date, str], int],
         fact: models.AssessmentFact | None, city: str, sign: int) -> None:
    if fact is None:
        return
    for key, (n, amount) in F.contributions(fact, city).items():
        rollup[key][0] += sign * n
        rollup[key][1] += sign * amount
    for cat_key, n in F.category_contributions(fact, city).items():
        categories[cat_key] += sign * n


async def _apply_rollups(session: AsyncSession, db: Database, rollup: dict[F.Key, list[float]],
                         categories: dict[tuple[str, date, str], int]) -> None:
    """The projection's and the rebuild's deltas into the rollups (``add_rollups``)."""
    await add_rollups(session, db, rollup, categories)


#: Rollup rows per executemany batch.
ROLLUP_CHUNK = 10_000


async def add_rollups(session: AsyncSession, db: Database, rollup: dict[F.Key, list[float]],
                      categories: dict[tuple[str, date, str], int]) -> None:
    """Add the deltas to the rollups (``n = n + excluded.n``): one upsert statement per table, compiled
    once and executed for many rows (a multi-row VALUES of every row a rebuild sums would pass the
    drivers' limit of 32,767 parameters a statement, and compiling such statements is slow).

    Rows go in key order, the tables always in this order, so that two projections adding to the same
    rows (the city's of today) lock them in the same order and wait for each other, never deadlock.
    """
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    rows = [{"unit": u, "counter": c, "day": d, "n": int(n), "total": round(t, 4)}
            for (u, c, d), (n, t) in sorted(rollup.items()) if n or abs(t) > 1e-9]
    table = models.IndicatorRollup
    stmt = insert(table)
    upsert = stmt.on_conflict_do_update(
        index_elements=["unit", "counter", "day"],
        set_={"n": table.n + stmt.excluded.n, "total": table.total + stmt.excluded.total})
    conn = await session.connection()
    for start in range(0, len(rows), ROLLUP_CHUNK):
        await conn.execute(upsert, rows[start:start + ROLLUP_CHUNK])
    cat_rows = [{"unit": u, "day": d, "category": c, "n": n} for (u, d, c), n in sorted(categories.items()) if n]
    ctable = models.CategoryRollup
    cstmt = insert(ctable)
    cupsert = cstmt.on_conflict_do_update(index_elements=["unit", "day", "category"],
                                          set_={"n": ctable.n + cstmt.excluded.n})
    for start in range(0, len(cat_rows), ROLLUP_CHUNK):
        await conn.execute(cupsert, cat_rows[start:start + ROLLUP_CHUNK])


@dataclass
class RebuildReport:
    """What a rebuild did."""

    events: int = 0
    facts: int = 0
    rollup_rows: int = 0


#: What ``facts_of`` reads of each row (the rebuild reads only these columns).
_EVENT_COLUMNS = ("event_id", "category", "state", "rework_count", "rating", "close_action", "created_at", "closed_at",
                  "unit", "grid", "community", "street")
_TASK_COLUMNS = ("task_id", "event_id", "kind", "unit", "status", "claimed_at", "completed_at", "passed", "due_at",
                 "created_at", "overdue_level", "origin", "ended_at", "ended_by", "extended_hours")
_WARNING_COLUMNS = ("event_id", "seq", "kind", "unit", "at")
_FACT_DEFAULTS: dict[str, Any] = {"category": "", "grid": None, "community": None, "street": None,
                                  "department": None, "centre": None, "flags": 0, "due_at": None, "ended_at": None}


def fact_row(**fields: Any) -> models.AssessmentFact:
    """A fact with the attributes of ``AssessmentFact`` (``facts_of``'s ``make`` for bulk writers): far
    cheaper to make than the ORM object; its ``vars`` are the row a core insert writes."""
    return type_cast(models.AssessmentFact, SimpleNamespace(**{**_FACT_DEFAULTS, "amounts": {}, **fields}))


def _columns(model: Any, names: Sequence[str]) -> list[Any]:
    return [getattr(model.__table__.c, name) for name in names]


async def rebuild(db: Database, *, batch: int = 2_000, progress: Any = None) -> RebuildReport:
    """Recompute every fact and rollup from the events, tasks and warnings in the store (``wulian
    assessment rebuild``): the rollups are emptied and summed again, in one transaction per batch of
    events after the first, which empties them. Run it with the workers stopped (a projection running
    meanwhile could be counted twice).

    Rows are read and facts written with core statements (``facts_of`` reads attributes, which core
    rows have; ORM objects for a million events cost most of the time)."""
    report = RebuildReport()
    async with db.session() as session:
        tree = OrgTree(list((await session.exec(select(models.Unit))).all()))
    lookup, city = lookup_of(tree), city_of(tree)
    async with db.transaction() as session:
        for table in (models.AssessmentFact, models.IndicatorRollup, models.CategoryRollup):
            await session.exec(delete(table))  # type: ignore[call-overload]
        await session.commit()
    rollup: dict[F.Key, list[float]] = defaultdict(lambda: [0, 0.0])
    categories: dict[tuple[str, date, str], int] = defaultdict(int)
    event_id = models.Event.__table__.c.event_id  # type: ignore[attr-defined]
    after = ""
    while True:
        async with db.transaction() as session:
            conn = await session.connection()
            events: Sequence[Any] = (await conn.execute(sa_select(*_columns(models.Event, _EVENT_COLUMNS))
                                         .where(event_id > after).order_by(event_id).limit(batch))).all()
            if not events:
                break
            ids = [e.event_id for e in events]
            tasks: dict[str, list[Any]] = defaultdict(list)
            task_table = models.Task.__table__  # type: ignore[attr-defined]
            for t in (await conn.execute(sa_select(*_columns(models.Task, _TASK_COLUMNS))
                                         .where(task_table.c.event_id.in_(ids)))).all():
                tasks[t.event_id].append(t)
            warnings: dict[str, list[Any]] = defaultdict(list)
            warning_table = models.SupervisionWarning.__table__  # type: ignore[attr-defined]
            for w in (await conn.execute(sa_select(*_columns(models.SupervisionWarning, _WARNING_COLUMNS))
                                         .where(warning_table.c.event_id.in_(ids))
                                         .order_by(warning_table.c.event_id, warning_table.c.seq))).all():
                warnings[w.event_id].append(w)
            rows = []
            for event in events:
                for fact in F.facts_of(event, tasks[event.event_id], warnings[event.event_id], lookup, make=fact_row):
                    rows.append(vars(fact))
                    _add(rollup, categories, fact, city, +1)
            if rows:
                await conn.execute(sa_insert(models.AssessmentFact), rows)
            report.facts += len(rows)
            report.events += len(events)
            after = ids[-1]
            await session.commit()
        if progress is not None:
            progress(report)
    async with db.transaction() as session:
        await _apply_rollups(session, db, rollup, categories)
        await session.commit()
    report.rollup_rows = len(rollup)
    return report


# -------------------------------------------------------------------------------------------- reads
def day_bounds(day_from: date, day_to: date) -> tuple[datetime, datetime]:
    """The period's first and last moment (exclusive) in UTC: local midnight to local midnight."""
    start = datetime.combine(day_from, time(0), CITY_TZ).astimezone(UTC)
    end = datetime.combine(day_to + timedelta(days=1), time(0), CITY_TZ).astimezone(UTC)
    return start, end


def period_end(day_to: date, now: datetime | None = None) -> datetime:
    """The moment "the end of the period" means: the end of ``day_to``, or now while it lasts."""
    end = day_bounds(day_to, day_to)[1]
    return min(end, now or utcnow())


async def _totals(db: Database, units: Sequence[str], day_from: date, day_to: date,
                  counters: Sequence[str] | None = None) -> dict[str, dict[str, Total]]:
    table = models.IndicatorRollup
    out: dict[str, dict[str, Total]] = {u: {} for u in units}
    query = (select(table.unit, table.counter, func.sum(table.n), func.sum(table.total))
             .where(col(table.unit).in_(list(units)), table.day >= day_from, table.day <= day_to))
    if counters is not None:
        query = query.where(col(table.counter).in_(list(counters)))
    async with db.session() as session:
        rows = (await session.exec(query.group_by(table.unit, table.counter))).all()
    for unit, counter, n, total in rows:
        out[unit][counter] = Total(n=int(n or 0), amount=float(total or 0.0))
    return out


def _unit_filter(org: OrgTree, unit: str) -> Any:
    """The condition on ``AssessmentFact`` for the facts that count for ``unit`` (True: the city)."""
    info = org.units.get(unit)
    if info is None:
        return false()
    if info.parent is None:
        return true()
    column = F.COLUMN_OF_KIND.get(info.kind)
    if column is None:
        return false()
    return col(getattr(models.AssessmentFact, column)) == unit


def _overdue_open_filter(day_from: date, day_to: date, end: datetime) -> Any:
    fact = models.AssessmentFact
    return and_(col(fact.kind) == "late", col(fact.day) >= day_from, col(fact.day) <= day_to, col(fact.due_at) < end,
                or_(col(fact.ended_at).is_(None), col(fact.ended_at) > end))


async def _overdue_open(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date,
                        now: datetime | None) -> int:
    end = period_end(day_to, now)
    async with db.session() as session:
        found = (await session.exec(select(func.count()).select_from(models.AssessmentFact).where(
            _unit_filter(org, unit), _overdue_open_filter(day_from, day_to, end)))).one()
    return int(found or 0)


async def indicator_values(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date,
                           now: datetime | None = None) -> dict[str, Value]:
    """Every indicator of ``unit`` (its subtree) over the days ``day_from``..``day_to`` (inclusive)."""
    totals = (await _totals(db, [unit], day_from, day_to))[unit]
    totals["tasks_overdue_open"] = Total(n=await _overdue_open(db, org, unit, day_from, day_to, now))
    return evaluate(totals)


async def child_values(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date,
                       now: datetime | None = None, codes: Sequence[str] | None = None,
                       ) -> list[tuple[str, dict[str, Value]]]:
    """The indicators (all, or those of ``codes``) of each unit below ``unit`` that is assessed
    (streets and departments of the city, communities and the command centre of a street, grids of a
    community), by code: one read of the rollups for them all, and one count of the late facts per
    kind of child (a rollup range per child and counter, so asking for fewer indicators reads less)."""
    children = sorted(u.code for u in org.children.get(unit, []) if u.kind in F.COLUMN_OF_KIND)
    counters = None if codes is None else [c for c in counters_for(codes) if c not in F.MOMENT_COUNTERS]
    totals = await _totals(db, children, day_from, day_to, counters)
    if codes is None or "tasks_overdue_open" in counters_for(codes):
        late = await _overdue_open_by_unit(db, org, children, day_from, day_to, now)
        for child in children:
            totals[child]["tasks_overdue_open"] = Total(n=late.get(child, 0))
    return [(child, evaluate(totals[child], codes)) for child in children]


async def _overdue_open_by_unit(db: Database, org: OrgTree, units: Sequence[str], day_from: date, day_to: date,
                                now: datetime | None) -> dict[str, int]:
    """Tasks open past their deadline at the period's end, for each of ``units`` (one grouped count per
    fact column the units are kept in)."""
    by_column: dict[str, list[str]] = defaultdict(list)
    for code in units:
        column = F.COLUMN_OF_KIND.get(org.units[code].kind) if code in org.units else None
        if column is not None:
            by_column[column].append(code)
    found: dict[str, int] = {}
    end = period_end(day_to, now)
    async with db.session() as session:
        for column, codes in sorted(by_column.items()):
            attr = col(getattr(models.AssessmentFact, column))
            rows = (await session.exec(select(attr, func.count()).where(
                attr.in_(codes), _overdue_open_filter(day_from, day_to, end)).group_by(attr))).all()
            found.update({code: int(n) for code, n in rows})
    return found


def _months(day_from: date, day_to: date) -> list[tuple[str, date, date]]:
    out = []
    first = day_from.replace(day=1)
    while first <= day_to:
        nxt = (first + timedelta(days=32)).replace(day=1)
        out.append((first.strftime("%Y-%m"), max(first, day_from), min(nxt - timedelta(days=1), day_to)))
        first = nxt
    return out


async def monthly_values(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date,
                         now: datetime | None = None, codes: Sequence[str] | None = None,
                         ) -> list[tuple[str, dict[str, Value]]]:
    """The indicators (all, or those of ``codes``) of ``unit`` month by month over the period
    (``"YYYY-MM"``, oldest first). Asking for fewer reads less: only their counters' rollups, and the
    count of tasks open past their deadline (one per month, over the late facts) only when one of them
    needs it."""
    table = models.IndicatorRollup
    months = _months(day_from, day_to)
    by_month: dict[str, dict[str, Total]] = {m: {} for m, _, _ in months}
    wanted = USED_COUNTERS if codes is None else counters_for(codes)
    query = (select(col(table.counter), col(table.day), col(table.n), col(table.total))
             .where(table.unit == unit, table.day >= day_from, table.day <= day_to))
    if codes is not None:
        query = query.where(col(table.counter).in_([c for c in wanted if c not in F.MOMENT_COUNTERS]))
    async with db.session() as session:
        rows = (await session.exec(query)).all()
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for counter, day, n, total in rows:
        key = (day.strftime("%Y-%m"), counter)
        sums[key][0] += n
        sums[key][1] += total
    for (month, counter), (count, amount) in sums.items():
        by_month[month][counter] = Total(n=int(count), amount=float(amount))
    out = []
    for month, first, last in months:
        if "tasks_overdue_open" in wanted:
            by_month[month]["tasks_overdue_open"] = Total(n=await _overdue_open(db, org, unit, first, last, now))
        out.append((month, evaluate(by_month[month], codes)))
    return out


async def category_counts(db: Database, unit: str, day_from: date, day_to: date) -> dict[str, int]:
    """Events of ``unit`` reported in the period, by category."""
    table = models.CategoryRollup
    async with db.session() as session:
        rows = (await session.exec(
            select(table.category, func.sum(table.n)).where(table.unit == unit, table.day >= day_from,
                                                             table.day <= day_to).group_by(table.category))).all()
    return {category: int(n) for category, n in rows if n}


async def unit_category_counts(db: Database, units: Sequence[str], day_from: date, day_to: date,
                               categories: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Events per unit of ``units`` and category (all, or those of ``categories``: the dashboard's
    heat table of grids)."""
    table = models.CategoryRollup
    out: dict[str, dict[str, int]] = {u: {} for u in units}
    query = (select(table.unit, table.category, func.sum(table.n))
             .where(col(table.unit).in_(list(units)), table.day >= day_from, table.day <= day_to))
    if categories is not None:
        if not categories:
            return out
        query = query.where(col(table.category).in_(list(categories)))
    async with db.session() as session:
        rows = (await session.exec(query.group_by(table.unit, table.category))).all()
    for unit, category, n in rows:
        if n:
            out[unit][category] = int(n)
    return out


# ---------------------------------------------------------------------------------------- drill-down
@dataclass
class DrillRow:
    """One subject behind a number, with its event."""

    subject: str
    kind: str
    day: date
    event: models.Event
    task: models.Task | None = None
    amount: float | None = None


@dataclass
class DrillPage:
    """A page of the subjects behind a counter, the count of them all and the next page's cursor."""

    rows: list[DrillRow]
    total: int
    next_cursor: str | None


def drill_filter(org: OrgTree, unit: str, day_from: date, day_to: date, counter: str,
                 now: datetime | None = None, category: str | None = None) -> Any:
    """The condition on ``AssessmentFact`` for the subjects that counter counts for the unit and period
    (of one event category only, when ``category`` is given: the dashboard's bars and heat cells)."""
    fact = models.AssessmentFact
    where = [_unit_filter(org, unit)]
    if category is not None:
        where.append(col(fact.category) == category)
    if counter == "tasks_overdue_open":
        where.append(_overdue_open_filter(day_from, day_to, period_end(day_to, now)))
        return and_(*where)
    where += [col(fact.kind) == F.KIND_OF[counter], col(fact.day) >= day_from, col(fact.day) <= day_to]
    if counter in F.AMOUNTS:
        # Facts whose amounts hold the counter: the JSON text has the key (the same on both databases;
        # the counters' names hold no LIKE wildcards).
        where.append(cast(fact.amounts, String).like(f'%"{counter}"%'))
    else:
        where.append(col(fact.flags).op("&")(F.COUNTERS[counter]) != 0)
    return and_(*where)


async def drill(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date, counter: str,
                cursor: tuple[date, str] | None = None, limit: int = 50, now: datetime | None = None,
                category: str | None = None) -> DrillPage:
    """The events or tasks behind ``counter`` for ``unit`` over the period (of ``category`` only, when
    given): a page in (day, subject) order after ``cursor``, and how many there are."""
    fact = models.AssessmentFact
    where = drill_filter(org, unit, day_from, day_to, counter, now, category)
    limit = max(1, min(limit, MAX_DRILL_LIMIT))
    async with db.session() as session:
        total = int((await session.exec(select(func.count()).select_from(fact).where(where))).one() or 0)
        query = select(fact).where(where)
        if cursor is not None:
            query = query.where(tuple_(fact.day, fact.subject) > tuple_(cursor[0], cursor[1]))
        facts = list((await session.exec(query.order_by(col(fact.day), col(fact.subject)).limit(limit + 1))).all())
        more = len(facts) > limit
        facts = facts[:limit]
        events = {e.event_id: e for e in (await session.exec(select(models.Event).where(
            col(models.Event.event_id).in_({f.event_id for f in facts})))).all()}
        task_ids = {f.subject.split("#", 1)[0] for f in facts if f.kind in ("task", "late")}
        tasks = {t.task_id: t for t in (await session.exec(select(models.Task).where(
            col(models.Task.task_id).in_(task_ids)))).all()} if task_ids else {}
    rows = [DrillRow(subject=f.subject, kind=f.kind, day=f.day, event=events[f.event_id],
                     task=tasks.get(f.subject.split("#", 1)[0]), amount=f.amounts.get(counter))
            for f in facts if f.event_id in events]
    last = facts[-1] if facts and more else None
    return DrillPage(rows=rows, total=total, next_cursor=f"{last.day.isoformat()}|{last.subject}" if last else None)
