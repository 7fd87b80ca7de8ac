"""The supervisors' console queries: queues and counts stay within the scope and are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store import models, queries
from store.db import Database
from store.seed import load_organisation

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
HS_SCOPE = {"HS", "HS01", "HS01-G1", "HS01-G2", "CC-HS"}


async def _task(db: Database, n: int, unit: str, *, status: str = "open", kind: str = "handle",
                due_hours: float | None = 4, pending: str | None = None) -> str:
    event_id = f"c-{n:03d}"
    due = NOW + timedelta(hours=due_hours) if due_hours is not None else None
    async with db.session() as session:
        event = models.Event(event_id=event_id, receipt_code=f"C{n:09d}", source="api", category="SR-01",
                             description=f"console {n}", state="dispatched", stage="handling", unit=unit,
                             pending=pending, created_at=NOW, updated_at=NOW + timedelta(minutes=n))
        session.add(event)
        await session.flush()
        session.add(models.Task(task_id=f"{event_id}.T1", event_id=event_id, kind=kind, unit=unit, status=status,
                                claimed_by="someone" if status == "claimed" else None, due_at=due,
                                created_at=NOW, **models.inbox_fields(status, due, event)))
        await session.commit()
    return event_id


async def test_console_queues_and_counts_are_exact_and_scoped(any_db: Database) -> None:
    await load_organisation(any_db)
    late_open = await _task(any_db, 1, "HS01-G1", due_hours=-5)
    late_claimed = await _task(any_db, 2, "HS01-G1", status="claimed", due_hours=-1)
    await _task(any_db, 3, "HS01-G1", due_hours=3)  # open, not late
    await _task(any_db, 4, "HS01-G2", due_hours=None)  # no deadline: never late
    await _task(any_db, 5, "HS01-G2", status="done", due_hours=-9)  # done: not in the console
    triage = await _task(any_db, 6, "CC-HS", kind="triage", due_hours=-2)  # late, but triage is no handling task
    awaiting = await _task(any_db, 7, "HS01-G2", pending="extension")
    outside = [await _task(any_db, 8, "ST01-G1", due_hours=-3),  # another street, late
               await _task(any_db, 9, "ST01-G1", pending="return")]

    data = await queries.console(any_db, HS_SCOPE, NOW)

    assert [e.event_id for _, e in data["overdue"]] == [late_open, late_claimed]  # by deadline
    assert [e.event_id for _, e in data["stuck"]] == [late_open]  # overdue and unclaimed
    assert [e.event_id for _, e in data["triage"]] == [triage]
    assert [e.event_id for e in data["awaiting"]] == [awaiting]
    assert dict(data["counts"]) == {
        "HS01-G1": {"open": 3, "overdue": 2},
        "HS01-G2": {"open": 2, "overdue": 0},
        "CC-HS": {"open": 1, "overdue": 0},
    }
    every = {e.event_id for key in ("overdue", "stuck", "triage") for _, e in data[key]}
    assert not every & set(outside) and outside[1] not in {e.event_id for e in data["awaiting"]}


async def test_console_queues_are_limited_to_the_most_urgent(any_db: Database) -> None:
    await load_organisation(any_db)
    ids = [await _task(any_db, n, "HS01-G1", due_hours=-n) for n in range(1, 8)]
    data = await queries.console(any_db, HS_SCOPE, NOW, limit=3)
    assert [e.event_id for _, e in data["overdue"]] == list(reversed(ids))[:3]  # the longest overdue first
    assert dict(data["counts"])["HS01-G1"] == {"open": 7, "overdue": 7}  # counts are not limited
