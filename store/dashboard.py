"""The dashboard's reads of the rollups that ``store.assessment`` has no function for: the counters of
one unit (the satisfaction pie's four kinds of rating) and the events per category of many units at
once (the heat table and the hotspot map over every grid of a street or the city in one query).

Both read the daily rollups the projection keeps (``IndicatorRollup``, ``CategoryRollup``: one range
of their primary keys per unit), never the events. Days are Asia/Shanghai, both ends inclusive.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date

from sqlalchemy import func
from sqlmodel import col, select

from store import models
from store.db import Database

#: Units per ``IN (...)`` list (SQLite allows 32,766 parameters, PostgreSQL 65,535; kept small).
_CHUNK = 500


async def counter_sums(db: Database, unit: str, day_from: date, day_to: date,
                       counters: Collection[str]) -> dict[str, int]:
    """How many subjects count in each of ``counters`` for ``unit`` over the period (0 when none)."""
    rollup = models.IndicatorRollup
    query = (select(rollup.counter, func.sum(rollup.n))
             .where(rollup.unit == unit, col(rollup.counter).in_(sorted(counters)),
                    col(rollup.day) >= day_from, col(rollup.day) <= day_to)
             .group_by(rollup.counter))
    async with db.session() as session:
        found = {counter: int(n or 0) for counter, n in (await session.exec(query)).all()}
    return {counter: found.get(counter, 0) for counter in counters}


async def category_counts_of(db: Database, units: Iterable[str], day_from: date,
                             day_to: date) -> dict[str, dict[str, int]]:
    """Events reported in the period per unit and category, for each of ``units`` (a unit without
    events is absent)."""
    rollup = models.CategoryRollup
    wanted = sorted(set(units))
    found: dict[str, dict[str, int]] = {}
    async with db.session() as session:
        for start in range(0, len(wanted), _CHUNK):
            query = (select(rollup.unit, rollup.category, func.sum(rollup.n))
                     .where(col(rollup.unit).in_(wanted[start:start + _CHUNK]),
                            col(rollup.day) >= day_from, col(rollup.day) <= day_to)
                     .group_by(rollup.unit, rollup.category))
            for unit, category, n in (await session.exec(query)).all():
                if n:
                    found.setdefault(unit, {})[category] = int(n)
    return found
