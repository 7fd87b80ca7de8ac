"""The dashboard's read of the rollups that ``store.assessment`` has no function for: the totals of
some counters of one unit (the satisfaction pie's four kinds of rating, which no indicator reads one
by one). It reads the daily rollups the projection keeps (``IndicatorRollup``: one range of its
primary key), never the events. Days are Asia/Shanghai, both ends inclusive.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlalchemy import func
from sqlmodel import col, select

from store import models
from store.db import Database


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
