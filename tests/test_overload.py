"""Overload (issue 9, finding 12): cancelled store writes give their connections back, the worker
takes on no more store work than its pool serves, timeouts fit the store, and after a burst far
above capacity the store catches up with every event, task and notice.

The full measurement (twice the capacity for two minutes, then five minutes to catch up) is
``bench/overload_bench.py``; this is its bounded form.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import event, func, text
from sqlmodel import col, select
from temporalio.testing import WorkflowEnvironment

from store import models
from store.db import SQLITE_BUSY_TIMEOUT, Database
from store.projection import apply_snapshot
from store.seed import load_organisation
from store.timeutil import utcnow
from tests.platform import running_platform
from worker import build_worker, store_limits
from workflows.event_lifecycle import PROJECT_TIMEOUT
from workflows.types import EventReport, EventSnapshot, Location, Reporter, Task

#: Seconds the store stays locked by another process in the burst test: longer than the 15 s a
#: projection was given before (and than the workflow task's 8 s heartbeat).
STALL = 17.0


def store_fds(path: Path) -> int:
    """This process's open file descriptors on the SQLite file ``path`` (and its -wal, -shm)."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd).startswith(str(path))
        except OSError:
            continue
    return count


def snapshot(n: int, version: int) -> EventSnapshot:
    """Version ``version`` of a routed event number ``n`` with its handling task."""
    report = EventReport(category="SR-01", description="垃圾", location=Location(grid="HS01-G1"),
                         reporter=Reporter(name="张三", phone="13800000000"), source="api")
    snap = EventSnapshot(event_id=f"EV-O-{n:04d}", receipt_code=f"O{n:09d}", report=report, state="dispatched",
                         stage="dispatch", created_at="2026-12-01T08:00:00+00:00", version=version)
    snap.tasks.append(Task(task_id=f"EV-O-{n:04d}.T1", kind="handle", unit="HS01-G1",
                           created_at="2026-12-01T08:00:00+00:00"))
    return snap


class PoolWatch:
    """Counts the connections an engine opens and discards."""

    def __init__(self, db: Database) -> None:
        self.opened = self.discarded = 0
        event.listen(db.engine.sync_engine, "connect", self._opened)
        event.listen(db.engine.sync_engine, "invalidate", self._discarded)

    def _opened(self, *_: object) -> None:
        self.opened += 1

    def _discarded(self, *_: object) -> None:
        self.discarded += 1


async def test_cancelled_store_writes_give_their_connections_back(tmp_path: Path) -> None:
    """800 projections cancelled at random moments (as a timed-out activity is): no connection is
    discarded or opened beyond the pool, none stays checked out, the descriptors on the store are
    back at their idle count, and every event ends at its newest version."""
    path = tmp_path / "store.db"
    db = Database(f"sqlite+aiosqlite:///{path}", connections=3)
    await db.create_all()
    await load_organisation(db)
    await apply_snapshot(db, snapshot(9999, 1))
    async with db.engine.connect() as a, db.engine.connect() as b, db.engine.connect() as c:
        for conn in (a, b, c):  # every connection of the pool open: its idle count
            await conn.execute(text("SELECT count(*) FROM event"))
    idle = store_fds(path)
    watch = PoolWatch(db)
    rnd = random.Random(9)
    outcomes = {"written": 0, "cancelled": 0}

    async def projections(n: int) -> None:
        for version in range(1, 9):
            try:
                async with asyncio.timeout(rnd.uniform(0.0005, 0.03)):
                    await apply_snapshot(db, snapshot(n, version))
                outcomes["written"] += 1
            except TimeoutError:
                outcomes["cancelled"] += 1

    await asyncio.gather(*(projections(n) for n in range(100)))
    assert outcomes["cancelled"] > 100, outcomes  # the cancellations did happen
    assert db.checked_out() == 0
    assert (watch.opened, watch.discarded) == (0, 0), "cancelled writes cost connections"
    assert store_fds(path) <= idle
    for n in range(100):  # what the workflow's retries would do: the newest version lands
        await apply_snapshot(db, snapshot(n, 9))
    async with db.session() as session:
        versions = (await session.exec(select(models.Event.version).where(col(models.Event.event_id) != "EV-O-9999")))
        assert set(versions.all()) == {9}
        tasks = await session.exec(select(func.count()).select_from(models.Task))
        assert tasks.one() == 101
    assert store_fds(path) <= idle and db.checked_out() == 0
    await db.dispose()


async def test_a_write_runs_to_its_end_when_its_caller_is_cancelled(tmp_path: Path) -> None:
    """A projection cancelled while it writes commits, then the cancellation reaches the caller."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", connections=1)
    await db.create_all()
    await load_organisation(db)
    started = asyncio.Event()

    async def slow_write(database: Database) -> None:
        async with database.transaction() as session:
            session.add(models.AuditEntry(at=utcnow(), actor="t", action="write"))
            await session.flush()
            started.set()
            await asyncio.sleep(0.2)
            await session.commit()

    task = asyncio.create_task(db.write(slow_write))
    await started.wait()
    task.cancel()
    try:
        await task
        raise AssertionError("the cancellation was swallowed")
    except asyncio.CancelledError:
        pass
    async with db.session() as session:
        assert len((await session.exec(select(models.AuditEntry).where(models.AuditEntry.actor == "t"))).all()) == 1
    assert db.checked_out() == 0
    await db.dispose()


def test_timeouts_fit_the_store() -> None:
    """A projection waiting for SQLite's lock gets "database is locked" (and is retried) before its
    activity's timeout would cancel it."""
    assert SQLITE_BUSY_TIMEOUT < PROJECT_TIMEOUT.total_seconds()


async def test_the_worker_takes_on_no_more_store_work_than_its_pool_serves(
        dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}", connections=6)
    worker = build_worker(dev_env.client, db, "never-polled")
    config = worker.config()
    limits = store_limits(6)
    assert (config["max_concurrent_local_activities"], config["max_concurrent_activities"]) == (4, 2)
    assert limits.local_activities + limits.activities == db.connections == 6
    await db.dispose()


async def test_the_store_catches_up_after_it_stalled_under_a_burst(dev_env: WorkflowEnvironment,
                                                                   tmp_path: Path) -> None:
    """40 reports at once on a worker with a pool of 2 connections (one projection and one other
    store operation at a time), while another process holds the store's write lock for longer than
    a projection used to be given (a backup, a long administrative write). Once the lock is gone,
    every accepted report is soon in the store with its task and its notice, delivered with its
    attempt counted; the worker's pool is back at idle and never discarded a connection."""
    db_path = tmp_path / "platform.db"
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        p.settings.intake_wait_seconds = 1.0  # the burst gets its 202s at once, as a crowd would
        wdb = Database(f"sqlite+aiosqlite:///{db_path}", connections=2)
        watch = PoolWatch(wdb)
        body = {"category": "SR-01", "description": "小区门口垃圾堆积", "location": {"grid": "HS01-G1"},
                "reporter": {"name": "张三", "phone": "13800000000"}, "source": "portal"}
        locked = threading.Event()

        def hold_the_write_lock() -> None:
            other = sqlite3.connect(db_path, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            locked.set()
            time.sleep(STALL)
            other.execute("COMMIT")
            other.close()

        async with build_worker(p.client, wdb, p.task_queue):
            first = await p.report()  # the web has its routing engine (read from the store) from now on
            holder = asyncio.create_task(asyncio.to_thread(hold_the_write_lock))
            await asyncio.to_thread(locked.wait)
            answers = await asyncio.gather(*(p.http.post("/api/events", json={**body, "external_id": f"b-{n}"})
                                             for n in range(40)))
            assert {a.status_code for a in answers} <= {201, 202}
            accepted = {a.json()["event_id"] for a in answers} | {first["event_id"]}
            assert not holder.done(), "the burst came after the stall"
            await holder
            released = time.monotonic()
            state: tuple[int, int, int] = (-1, -1, -1)
            while time.monotonic() - released < 60:
                async with p.db.session() as session:
                    with_task = set((await session.exec(select(models.Task.event_id))).all())
                    notices = (await session.exec(select(models.Notice))).all()
                delivered = {n.event_id for n in notices if n.status == "delivered" and n.attempts >= 1}
                pending = sum(n.status == "pending" for n in notices)
                state = (len(accepted - with_task), len(accepted - delivered), pending)
                if state == (0, 0, 0) and wdb.checked_out() == 0:
                    break
                await asyncio.sleep(0.5)
            assert state == (0, 0, 0), f"reports without task, without delivered notice; pending notices: {state}"
            assert wdb.checked_out() == 0
            assert watch.opened <= 2 and watch.discarded == 0, (watch.opened, watch.discarded)
        await wdb.dispose()
