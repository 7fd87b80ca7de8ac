"""The processes' figures of the dashboard (``store.process_queries.dashboard_figures``), on each back
end: counted within the unit asked (a grid, its community, its street, the city; a department has
none) and the period; a proxy service on time only when done with no task late; volunteer hours
by team as credited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from store import models
from store.db import Database
from store.process_queries import dashboard_figures

NOV = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
DAY = datetime(2026, 11, 10, 2, tzinfo=UTC)


def _instance(instance_id: str, kind: str, state: str, grid: str, values: dict[str, Any],
              created: datetime = DAY) -> models.ProcessInstanceRow:
    community, street = grid.split("-")[0], grid[:2]
    return models.ProcessInstanceRow(
        instance_id=instance_id, kind=kind, version="1", state=state, grid=grid, community=community, street=street,
        created_at=created, ended_at=created + timedelta(days=1) if state in ("done", "rejected") else None,
        data={"values": values})


def _task(instance_id: str, n: int, *, late: bool = False, completed_late: bool = False) -> models.ProcessTaskRow:
    due = DAY + timedelta(days=2)
    return models.ProcessTaskRow(
        task_id=f"{instance_id}.T{n}", instance_id=instance_id, kind="proxy_service", task_kind="accept",
        state="requested", unit="HS01-G1", status="done", created_at=DAY, due_at=due, late=late,
        completed_at=due + (timedelta(hours=1) if completed_late else -timedelta(hours=1)))


async def _world(db: Database) -> None:
    async with db.transaction() as session:
        for row in (
            _instance("P1", "proxy_service", "done", "HS01-G1", {"item": "PS-03"}),  # on time
            _instance("P2", "proxy_service", "done", "HS01-G1", {"item": "PS-03"}),  # a task marked late
            _instance("P3", "proxy_service", "done", "HS01-G2", {"item": "PS-03"}),  # completed after its deadline
            _instance("P4", "proxy_service", "handling", "HS01-G1", {"item": "PS-05"}),  # under way
            _instance("P5", "proxy_service", "done", "HS02-G1", {"item": "PS-05"}),  # another community
            _instance("P0", "proxy_service", "done", "HS01-G1", {"item": "PS-05"},
                      created=datetime(2026, 10, 20, tzinfo=UTC)),  # October
            _instance("W1", "micro_wish", "done", "HS01-G3", {"wish": "老花镜"}),
            _instance("W2", "micro_wish", "adopted", "HS01-G3", {"wish": "轮椅"}),
            _instance("W3", "micro_wish", "posted", "HS01-G3", {"wish": "台灯"}),
            _instance("V1", "volunteer_activity", "done", "HS01-G1", {"team": "HS01"}),
            _instance("V2", "volunteer_activity", "open", "HS01-G1", {"team": "HS01"}),
        ):
            session.add(row)
        await session.flush()
        for task in (_task("P1", 1), _task("P2", 1), _task("P2", 2, late=True), _task("P3", 1, completed_late=True)):
            session.add(task)
        for subject, amount, when in (("wg_hs01_g1", 3.0, DAY), ("wg_hs01_g2", 3.0, DAY),
                                      ("wg_hs01_g1", 2.0, datetime(2026, 10, 31, tzinfo=UTC))):
            session.add(models.ProcessCredit(task_id=f"V1.T2.{when.month}", subject=subject, credit="volunteer_hours",
                                             instance_id="V1", kind="volunteer_activity", amount=amount, team="HS01",
                                             community="HS01", street="HS", credited_at=when))
        await session.commit()


async def test_the_dashboard_counts_each_process_within_its_unit_and_period(any_db: Database) -> None:
    await _world(any_db)
    street = await dashboard_figures(any_db, "HS", "street", *NOV)
    assert street["kinds"] == [{"kind": "micro_wish", "started": 3, "ended": 1},
                               {"kind": "proxy_service", "started": 5, "ended": 4},
                               {"kind": "volunteer_activity", "started": 2, "ended": 1}]
    # PS-03: three done, one of them on time (P2 had a late task, P3 was completed after its deadline).
    assert street["proxy"] == [
        {"code": "PS-03", "requested": 3, "done": 3, "on_time": 1, "on_time_rate": 1 / 3},
        {"code": "PS-05", "requested": 2, "done": 1, "on_time": 1, "on_time_rate": 1.0}]
    assert street["wishes"] == {"posted": 3, "adopted": 2, "fulfilled": 1}
    # Hours credited in November only (October's 2 h are another period's); two volunteers.
    assert street["teams"] == [{"team": "HS01", "activities": 2, "hours": 6.0, "volunteers": 2}]

    community = await dashboard_figures(any_db, "HS01", "community", *NOV)
    assert [(p["code"], p["requested"]) for p in community["proxy"]] == [("PS-03", 3), ("PS-05", 1)]  # not HS02's
    grid = await dashboard_figures(any_db, "HS01-G2", "grid", *NOV)
    assert [(p["code"], p["requested"]) for p in grid["proxy"]] == [("PS-03", 1)]
    assert grid["teams"] == []  # the activity was HS01-G1's
    city = await dashboard_figures(any_db, "JS", "city", *NOV)
    assert sum(p["requested"] for p in city["proxy"]) == 5 and city["teams"][0]["hours"] == 6.0
    department = await dashboard_figures(any_db, "D-ZF", "department", *NOV)
    assert department["kinds"] == [] and department["proxy"] == [] and department["teams"] == []
