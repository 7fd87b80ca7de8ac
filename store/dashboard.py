"""The dashboard's reads of the rollups that ``store.assessment`` has no function for: the totals of
some counters of one unit (the satisfaction pie's four kinds of rating, which no indicator reads one
by one) and of one counter for many units (the events of every grid on the hotspot map: one row a
grid and day, where the category rollups have one per category). Both read the daily rollups the
projection keeps (``IndicatorRollup``: one range of its primary key per unit), never the events.
Days are Asia/Shanghai, both ends inclusive.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date

from sqlalchemy import func
from sqlmodel import col, select

from store import models
from store.db import Database

#: Units per ``IN (...)`` list (well below the databases' limits on bound parameters).
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


async def counter_of_units(db: Database, units: Sequence[str], counter: str, day_from: date,
                           day_to: date) -> dict[str, int]:
    """How many subjects count in ``counter`` for each of ``units`` over the period (0 when none)."""
    rollup = models.IndicatorRollup
    found: dict[str, int] = {}
    async with db.session() as session:
        for start in range(0, len(units), _CHUNK):
            query = (select(rollup.unit, func.sum(rollup.n))
                     .where(col(rollup.unit).in_(list(units[start:start + _CHUNK])), rollup.counter == counter,
                            col(rollup.day) >= day_from, col(rollup.day) <= day_to)
                     .group_by(rollup.unit))
            found.update({unit: int(n or 0) for unit, n in (await session.exec(query)).all()})
    return {unit: found.get(unit, 0) for unit in units}
