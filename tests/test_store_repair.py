"""``wulian store repair``: a store that fell behind is caught up from the workflows' snapshots
(issue 9, finding 12), idempotently, and ``--dry-run`` only reports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from store import models
from store.db import Database
from tests.platform import Platform
from tests.scenarios import happy_path
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from wulian.store_repair import Execution, list_executions, parse_since, read_snapshot, repair

ROOT = Path(__file__).resolve().parent.parent


async def reported(p: Platform) -> str:
    """A new event, once its workflow is quiet (routed, notice delivered, all of it projected)."""
    event_id = (await p.report())["event_id"]
    handle = p.client.get_workflow_handle(event_id)
    for _ in range(100):
        snap = await handle.query(EventLifecycle.snapshot)
        async with p.db.session() as session:
            event = await session.get(models.Event, event_id)
        if snap.notices[0].status == "delivered" and event is not None and event.version == snap.version:
            return event_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_id} did not settle")


async def forget(db: Database, event_id: str) -> None:
    """Take an event out of the store, as if none of its projections had landed."""
    async with db.session() as session:
        for table in (models.TimelineEntry, models.Task, models.Notice, models.SupervisionWarning):
            await session.exec(delete(table).where(table.event_id == event_id))  # type: ignore[call-overload]
        await session.exec(delete(models.Event).where(models.Event.event_id == event_id))  # type: ignore[call-overload]
        await session.commit()


async def roll_back(db: Database, event_id: str) -> None:
    """Leave the event in the store as a projection older than the workflow's left it: in intake,
    without its task (version 0: since issue 13 the first projection already holds the routing)."""
    async with db.session() as session:
        await session.exec(delete(models.Task).where(models.Task.event_id == event_id))  # type: ignore[call-overload]
        await session.exec(update(models.Event).where(models.Event.event_id == event_id)  # type: ignore[call-overload]
                           .values(version=0, state="intake", stage="intake"))
        await session.commit()


async def unsettle_notices(db: Database, event_id: str) -> None:
    """Leave the event's notice rows as a delivery that ran before its row existed did: pending, 0 attempts."""
    async with db.session() as session:
        await session.exec(update(models.Notice).where(models.Notice.event_id == event_id)  # type: ignore[call-overload]
                           .values(status="pending", attempts=0, delivered_at=None))
        await session.commit()


async def listed(p: Platform, since: datetime, count: int) -> None:
    """Wait until the visibility store lists ``count`` event workflows started since ``since``."""
    for _ in range(50):
        if len(await list_executions(p.client, since)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the workflows are not listed")


def wulian(p: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``wulian`` command line against the platform's store and Temporal server."""
    env = {**os.environ, "WULIAN_DATA_DIR": str(p.settings.data_dir),
           "WULIAN_DATABASE_URL": p.db.url,
           "WULIAN_TEMPORAL_ADDRESS": p.client.service_client.config.target_host}
    return subprocess.run([sys.executable, "-m", "wulian.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_repair_re_projects_missing_and_older_events(platform: Platform) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    ids = [await reported(platform) for _ in range(4)]
    gone, old, stuck, fine = ids
    await forget(platform.db, gone)
    await roll_back(platform.db, old)
    await unsettle_notices(platform.db, stuck)
    await listed(platform, since, 4)

    dry = await repair(platform.client, platform.db, since=since, dry_run=True)
    lags = {lag.event_id: lag for lag in dry.behind}
    assert set(lags) == {gone, old, stuck} and dry.repaired == 0 and not dry.unreadable
    assert lags[gone].stored is None and lags[old].stored == 0 and lags[old].version > lags[old].stored
    assert lags[stuck].notices and lags[stuck].stored == lags[stuck].version
    async with platform.db.session() as session:
        assert await session.get(models.Event, gone) is None  # a dry run changes nothing

    seen: list[int] = []
    done = await repair(platform.client, platform.db, since=since, progress=lambda r: seen.append(r.checked))
    assert (done.listed, done.checked, done.repaired, done.missing, done.stale_notices) == (4, 4, 3, 1, 1)
    assert seen[-1] == 4
    for event_id in ids:
        snap = await platform.client.get_workflow_handle(event_id).query(EventLifecycle.snapshot)
        async with platform.db.session() as session:
            event = await session.get(models.Event, event_id)
            tasks = (await session.exec(select(models.Task).where(models.Task.event_id == event_id))).all()
            notices = (await session.exec(select(models.Notice).where(models.Notice.event_id == event_id))).all()
        assert event is not None and event.version == snap.version and event.state == "dispatched"
        assert [t.kind for t in tasks] == ["handle"] and [n.status for n in notices] == ["delivered"]
    assert fine not in lags

    again = await repair(platform.client, platform.db, since=since)
    assert (again.checked, again.behind, again.repaired) == (4, [], 0)  # idempotent


async def test_the_command_reports_then_repairs(platform: Platform) -> None:
    # From now on, not a second before: the dev server is shared, and an event the previous test
    # started within that second (its worker gone, so unreadable) would be listed as well.
    since = datetime.now(UTC)
    event_id = await reported(platform)
    await forget(platform.db, event_id)
    await listed(platform, since, 1)
    window = since.isoformat()

    dry = await asyncio.to_thread(wulian, platform, "store", "repair", "--since", window, "--dry-run")
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert f"{event_id}: workflow at version" in dry.stdout and "store missing" in dry.stdout
    assert "1 behind in the store (1 missing, 0 older, 0 with notices left pending), 0 re-projected" in dry.stdout

    fixed = await asyncio.to_thread(wulian, platform, "store", "repair", "--since", window)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "1/1 checked: 1 behind, 1 re-projected" in fixed.stdout
    async with platform.db.session() as session:
        assert await session.get(models.Event, event_id) is not None

    bad = await asyncio.to_thread(wulian, platform, "store", "repair", "--since", "yesterday")
    assert bad.returncode == 2 and "duration like 24h" in bad.stderr


async def test_a_completed_workflow_is_read_from_its_result(time_env: WorkflowEnvironment, org_db: Database) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        handle = await happy_path(time_env, tq)
        await time_env.sleep(timedelta(days=31))  # closed, then no longer reopenable: the workflow completes
        final = await handle.result()
    assert handle.result_run_id
    execution = Execution(handle.id, handle.result_run_id, WorkflowExecutionStatus.COMPLETED, None)
    snap = await read_snapshot(time_env.client, execution)  # no worker needed: the result is in the history
    assert snap.state == "closed" and snap.version == final.version and snap.timeline == final.timeline


def test_since_takes_dates_moments_and_durations() -> None:
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T08:00:00+08:00") == datetime(2026, 12, 1, 0, tzinfo=UTC)
    assert abs(parse_since("24h") - (datetime.now(UTC) - timedelta(hours=24))) < timedelta(seconds=5)
    assert abs(parse_since("7d") - (datetime.now(UTC) - timedelta(days=7))) < timedelta(seconds=5)
    with pytest.raises(ValueError, match="duration"):
        parse_since("last week")


async def test_a_run_that_refused_its_input_is_nothing_to_repair(platform: Platform) -> None:
    """A report refused by the workflow's own input check failed before anything was stored: the
    repair (and anything built on it) must not count it as unreadable for ever."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    handle = await platform.client.start_workflow("EventLifecycle", {"description": " ", "source": "evil"},
                                                  id=f"EV-BAD-{uuid.uuid4().hex[:8]}", task_queue=platform.task_queue)
    with pytest.raises(Exception):  # noqa: B017 - the refusal itself is tested in test_report_input.py
        await handle.result()
    await listed(platform, since, 1)
    report = await repair(platform.client, platform.db, since=since)
    assert report.checked == 1 and report.behind == [] and report.unreadable == {}
