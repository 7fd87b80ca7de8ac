"""The assessment's facts and rollups on both databases (SQLite, and PostgreSQL when
``WULIAN_TEST_DATABASE_URL`` is set): kept by the projection, never counted twice by a repeated or
older snapshot, read back as indicators and drill-down lists, and equal to a rebuild."""

from __future__ import annotations

import dataclasses
from datetime import date

from sqlmodel import select

from store import assessment, models
from store.db import Database
from store.org import OrgTree
from store.projection import apply_snapshot
from store.seed import load_organisation
from tests.test_store import snapshot
from workflows.types import EventSnapshot, Warning

DAY = date(2026, 3, 4)  # the snapshots' day (city time)


def closed(version: int = 7) -> EventSnapshot:
    snap = snapshot(3)
    snap.version, snap.state, snap.stage = version, "closed", "close"
    snap.rating, snap.closed_at = "satisfied", "2026-03-04T10:00:00+08:00"
    verify = snap.tasks[1]
    verify.status, verify.passed, verify.completed_at = "done", True, "2026-03-04T05:00:00+08:00"
    snap.tasks[0].origin = "dispatch"
    return snap


async def rollups(db: Database) -> dict[tuple[str, str, date], tuple[int, float]]:
    async with db.session() as session:
        rows = (await session.exec(select(models.IndicatorRollup))).all()
    return {(r.unit, r.counter, r.day): (r.n, round(r.total, 3)) for r in rows if r.n or r.total}


async def test_projection_keeps_facts_and_rollups_on_both_databases(any_db: Database) -> None:
    await load_organisation(any_db)
    org = await OrgTree.load(any_db)
    assert await apply_snapshot(any_db, snapshot(1)) is True
    first = await assessment.indicator_values(any_db, org, "HS01-G1", DAY, DAY)
    assert (first["events"].value, first["handled_rate"].value, first["handled_rate"].denominator) == (1, 0, 1)
    assert first["closed_rate"].value == 0 and first["rework_rate"].value is None  # nothing closed: "—"

    snap = closed()
    assert await apply_snapshot(any_db, snap) is True
    assert await apply_snapshot(any_db, snap) is False  # a repeat changes nothing
    assert await apply_snapshot(any_db, snapshot(2)) is False  # nor does an older one
    for unit in ("HS01-G1", "HS01", "HS", "JS"):
        values = await assessment.indicator_values(any_db, org, unit, DAY, DAY)
        assert values["handled_rate"].value == 1.0 and values["closed_rate"].value == 1.0, unit
        assert values["satisfaction_rate"].value == 1.0 and values["grassroots_share"].value == 1.0, unit
        # 02:00 to 04:00 city time is before working hours: no working time passed
        assert values["avg_hours_handling"].value == 0.0, unit
    assert (await assessment.indicator_values(any_db, org, "D-ZF", DAY, DAY))["events"].value == 0
    assert (await assessment.indicator_values(any_db, org, "HS01-G2", DAY, DAY))["events"].value == 0

    # A warning later: counted for the grid on its own day, listed by the drill-down.
    warned = dataclasses.replace(closed(8), warnings=[
        Warning("yellow", snap.tasks[0].task_id, "HS01-G1", "2026-03-05T09:00:00+08:00")])
    assert await apply_snapshot(any_db, warned) is True
    values = await assessment.indicator_values(any_db, org, "HS01-G1", DAY, date(2026, 3, 5))
    assert values["yellow_warnings"].value == 1
    assert values["on_time_closed_rate"].value == 0  # a closed event that was warned is not on time
    page = await assessment.drill(any_db, org, "HS", DAY, date(2026, 3, 5), "warnings_yellow")
    assert (page.total, [r.event.event_id for r in page.rows]) == (1, [snap.event_id])
    hours = await assessment.drill(any_db, org, "JS", DAY, DAY, "hours_handling")
    assert hours.total == 1 and hours.rows[0].amount == 0.0  # the JSON amount is found on both databases
    months = await assessment.monthly_values(any_db, org, "JS", date(2026, 2, 1), date(2026, 3, 31))
    assert [(m, v["events"].value) for m, v in months] == [("2026-02", 0), ("2026-03", 1)]
    # Asking for some indicators gives those alone, with the values of the full answer.
    some = await assessment.monthly_values(any_db, org, "JS", date(2026, 2, 1), date(2026, 3, 31),
                                           codes=("events", "on_time_closed_rate", "overdue_open_rate"))
    assert [(m, sorted(v)) for m, v in some] == [
        (m, ["events", "on_time_closed_rate", "overdue_open_rate"]) for m, _ in months]
    assert [{c: v[c] for c in s} for (_, v), (_, s) in zip(months, some, strict=True)] == [s for _, s in some]

    before = await rollups(any_db)
    await assessment.rebuild(any_db)
    assert await rollups(any_db) == before
