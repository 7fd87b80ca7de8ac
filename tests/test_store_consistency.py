"""What the store holds when the workflow says so (issue 9, finding 13), with a worker whose
projections are slow: a 201 from ``POST /api/events`` means the task is in the store, and a notice
is delivered only once its row is there (its attempts counted, its status delivered)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlmodel import select
from temporalio import activity
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.lifecycle import LifecycleActivities
from store import models, notices
from store.db import Database
from store.projection import apply_snapshot
from tests.platform import Platform, running_platform
from worker import workflow_runner
from workflows.event_lifecycle import EventLifecycle
from workflows.types import (
    ACTIVITY_DELIVER,
    ACTIVITY_PROJECT,
    ACTIVITY_ROUTE,
    Decision,
    EventReport,
    EventSnapshot,
    Location,
    Notice,
    Reporter,
    RoutingRequest,
)

#: A workflow task waiting for a local activity is heartbeated after 80% of its timeout (10 s by
#: default, as the web starts events): the commands so far (an update's answer, an activity to
#: schedule) then reach the server while the projection still runs. Slower than that, then.
SLOW = 9.0


@asynccontextmanager
async def slow_platform(env: WorkflowEnvironment, tmp_path: Path, slow: Callable[[EventSnapshot], bool],
                        seconds: float = SLOW) -> AsyncIterator[tuple[Platform, dict[str, bool]]]:
    """A platform whose worker takes ``seconds`` to project the snapshots ``slow`` picks; the dict
    tells, for each notice whose delivery started, whether its row was in the store then."""
    async with running_platform(env.client, tmp_path, with_worker=False) as p:
        acts = LifecycleActivities(p.db)
        row_there: dict[str, bool] = {}

        @activity.defn(name=ACTIVITY_PROJECT)
        async def project_slowly(snapshot: EventSnapshot) -> bool:
            if slow(snapshot):
                await asyncio.sleep(seconds)
            return await acts.project_event(snapshot)

        @activity.defn(name=ACTIVITY_DELIVER)
        async def deliver_watched(notice: Notice) -> None:
            async with p.db.session() as session:
                row_there.setdefault(notice.notice_id, await session.get(models.Notice, notice.notice_id) is not None)
            await acts.deliver_notice(notice)

        activities = [acts.route_event, acts.compute_due, acts.supervision_marks, acts.issue_receipt, deliver_watched,
                      project_slowly]
        async with Worker(env.client, task_queue=p.task_queue, workflows=[EventLifecycle], activities=activities,
                          workflow_runner=workflow_runner()):
            yield p, row_there


async def test_201_means_the_task_is_in_the_store(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The routed snapshot's projection is slow: the API answers 201 only once it is in the store."""
    async with slow_platform(dev_env, tmp_path, lambda snap: snap.state != "intake") as (p, _):
        created = await p.report()  # asserts 201
        async with p.db.session() as session:
            tasks = (await session.exec(select(models.Task).where(models.Task.event_id == created["event_id"]))).all()
        assert [t.kind for t in tasks] == ["handle"], "a 201 before the task was in the store"
        assert created["unit"] == tasks[0].unit == "HS01-G1"


async def test_a_notice_is_delivered_once_its_row_is_in_the_store(dev_env: WorkflowEnvironment,
                                                                 tmp_path: Path) -> None:
    """The first snapshot holding the "dispatched" notice is slow to project: the delivery waits for
    it, so its attempt is counted on the row and the row ends delivered (not pending, 0 attempts).

    Started with a 2 s workflow task timeout (heartbeat after 1.6 s), so 3 s are slow enough."""
    async with slow_platform(dev_env, tmp_path, lambda snap: len(snap.notices) == 1
                             and snap.notices[0].status == "pending", seconds=3.0) as (p, row_there):
        event_id = f"EV-T-{uuid.uuid4().hex[:10]}"
        report = EventReport(category="SR-01", description="小区门口垃圾堆积", location=Location(grid="HS01-G1"),
                             reporter=Reporter(name="张三", phone="13800000000"), source="portal")
        handle = await p.client.start_workflow(EventLifecycle.run, report, id=event_id, task_queue=p.task_queue,
                                               task_timeout=timedelta(seconds=2))
        notice_id = f"{event_id}.N1"
        row = None
        for _ in range(100):
            try:
                snap = await handle.query(EventLifecycle.snapshot, rpc_timeout=timedelta(seconds=5))
            except (RPCError, WorkflowQueryFailedError):  # not started yet, or its task is in the slow projection
                await asyncio.sleep(0.2)
                continue
            async with p.db.session() as session:
                row = await session.get(models.Notice, notice_id)
            if snap.notices and snap.notices[0].status == "delivered" and row is not None and row.status == "delivered":
                break
            await asyncio.sleep(0.2)
        assert row_there == {notice_id: True}, "the delivery started before the notice's row was in the store"
        assert row is not None, "the notice has no row"
        assert row.status == "delivered" and row.attempts == 1 and row.delivered_at is not None, (
            f"{row.status}, {row.attempts} attempt(s): delivered before its row existed")


def _snapshot_with(notice: Notice, version: int) -> EventSnapshot:
    report = EventReport(category="SR-01", description="垃圾", location=Location(grid="HS01-G1"),
                         reporter=Reporter(name="张三", phone="13800000000"), source="portal")
    return EventSnapshot(event_id="EV-N-1", receipt_code="N000000001", report=report, state="intake", stage="intake",
                         created_at="2026-12-01T08:00:00+00:00", version=version, notices=[notice])


async def test_a_delivery_before_the_projection_makes_the_row_and_the_projection_keeps_it(any_db: Database) -> None:
    """What an older worker's delivery (started before the row existed) now leaves in the store."""
    notice = Notice(notice_id="EV-N-1.N1", kind="dispatched", recipient="13800000000", body="[N000000001] 受理",
                    created_at="2026-12-01T08:00:01+00:00")
    await notices.record_attempt(any_db, notice, 1)
    await notices.mark_delivered(any_db, notice, "sms-log")
    await apply_snapshot(any_db, _snapshot_with(notice, 1))  # the projection arrives after, notice "pending"
    async with any_db.session() as session:
        rows = (await session.exec(select(models.Notice))).all()
    assert [(r.notice_id, r.event_id, r.status, r.attempts, r.channel) for r in rows] == [
        ("EV-N-1.N1", "EV-N-1", "delivered", 1, "sms-log")]


async def test_a_row_left_pending_is_set_delivered_by_the_workflows_snapshot(any_db: Database) -> None:
    """Rows stuck "pending" by the old order are put right by the next projection (or a repair)."""
    notice = Notice(notice_id="EV-N-1.N1", kind="dispatched", recipient="13800000000", body="[N000000001] 受理",
                    created_at="2026-12-01T08:00:01+00:00")
    await apply_snapshot(any_db, _snapshot_with(notice, 1))
    delivered = Notice(**{**notice.__dict__, "status": "delivered"})
    await apply_snapshot(any_db, _snapshot_with(delivered, 2))
    async with any_db.session() as session:
        row = await session.get(models.Notice, "EV-N-1.N1")
    assert row is not None and row.status == "delivered" and row.delivered_at is not None


async def test_a_routing_that_keeps_failing_shows_the_report_and_routes_it_later(dev_env: WorkflowEnvironment,
                                                                              tmp_path: Path) -> None:
    """Routing runs as a local activity in the event's first workflow task (patch ``local-route``).
    When it keeps failing there (the store or the list not answering), the report is projected as it
    is (in intake: visible in the console, not lost) and the regular routing activity takes over,
    retrying until it succeeds: the event ends dispatched with its task."""
    async with running_platform(dev_env.client, tmp_path, with_worker=False) as p:
        acts = LifecycleActivities(p.db)
        calls: list[bool] = []  # is_local of each routing attempt
        seen_in_intake: list[str] = []

        @activity.defn(name=ACTIVITY_ROUTE)
        async def flaky_route(request: RoutingRequest) -> Decision:
            calls.append(activity.info().is_local)
            async with p.db.session() as session:
                row = await session.get(models.Event, request.event_id)
                if row is not None:
                    seen_in_intake.append(row.state)
            if len(calls) <= 4:  # the three local attempts and the first regular one
                raise RuntimeError("the store is not answering")
            return await acts.route_event(request)

        activities = [flaky_route, acts.compute_due, acts.supervision_marks, acts.issue_receipt, acts.deliver_notice,
                      acts.project_event]
        async with Worker(dev_env.client, task_queue=p.task_queue, workflows=[EventLifecycle], activities=activities,
                          workflow_runner=workflow_runner()):
            event_id = f"EV-T-{uuid.uuid4().hex[:10]}"
            report = EventReport(category="SR-01", description="小区门口垃圾堆积", location=Location(grid="HS01-G1"),
                                 reporter=Reporter(name="张三", phone="13800000000"), source="portal")
            handle = await p.client.start_workflow(EventLifecycle.run, report, id=event_id, task_queue=p.task_queue)
            snap = await asyncio.wait_for(handle.execute_update(EventLifecycle.wait_dispatched), timeout=60)
        assert snap.state == "dispatched" and snap.tasks[0].unit == "HS01-G1"
        assert calls[:3] == [True, True, True] and calls[3:] == [False, False], calls
        # From the fourth attempt on, the report was in the store, in intake.
        assert seen_in_intake == ["intake", "intake"], seen_in_intake
        async with p.db.session() as session:
            row = await session.get(models.Event, event_id)
            tasks = (await session.exec(select(models.Task).where(models.Task.event_id == event_id))).all()
        assert row is not None and row.state == "dispatched" and [t.kind for t in tasks] == ["handle"]
