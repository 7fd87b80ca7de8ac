"""Supervision, overrides and repairs in the workflow, with time skipping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.testing import WorkflowEnvironment

from rules.worktime import CITY_TZ, add_working_hours
from store import queries
from store.db import Database
from store.timeutil import utcnow
from tests.scenarios import (
    GW,
    ZX,
    handle_task,
    overdue_over_a_weekend,
    rating,
    snapshot,
    start,
    verify,
)
from worker import build_worker
from workflows.event_lifecycle import GRACE_HOURS, EventLifecycle
from workflows.types import (
    Actor,
    ClaimCommand,
    CompleteCommand,
    Notice,
    SupervisorCommand,
    TaskRequest,
)


def tq() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"






async def test_missed_deadline_over_a_weekend_warns_then_escalates_to_the_street(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle, start_at = await overdue_over_a_weekend(time_env, queue)
        snap = await snapshot(handle)
        task = snap.tasks[0]
        assert (task.unit, task.hours) == ("HS01", 16)  # community tier, 2 working days
        created = datetime.fromisoformat(task.created_at)
        expected = {
            "remind_50": add_working_hours(created, 8),
            "remind_80": add_working_hours(created, 12.8),
            "due": add_working_hours(created, 16),
            "escalate": add_working_hours(created, 16 + GRACE_HOURS),
        }
        local_due = expected["due"].astimezone(CITY_TZ)
        assert start_at.weekday() == 4 and local_due.weekday() == 1  # Friday → Tuesday, over the weekend
        await time_env.sleep(expected["escalate"] + timedelta(minutes=30) - await time_env.get_current_time())
        snap = await snapshot(handle)
    fired = [(w.kind, datetime.fromisoformat(w.at)) for w in snap.warnings[:4]]
    wanted = [("reminder", expected["remind_50"]), ("reminder", expected["remind_80"]),
              ("yellow", expected["due"]), ("red", expected["escalate"])]
    assert [kind for kind, _ in fired] == [kind for kind, _ in wanted]
    for (_, at), (_, when) in zip(fired, wanted, strict=True):  # at the simulated moment, to the second
        assert abs(at - when) < timedelta(seconds=1), (at, when)
    actions = [(e.action, e.actor_kind) for e in snap.timeline]
    assert ("urge", "timer") in actions and ("escalate_overdue", "timer") in actions
    current = [t for t in snap.tasks if t.status == "open"]
    assert [t.unit for t in current] == ["HS"]  # the street now holds it
    assert snap.tasks[0].status == "cancelled" and snap.escalated_count == 1
    stored = await queries.event_tasks(org_db, snap.event_id)
    assert [(t.unit, t.status) for t in stored] == [("HS01", "cancelled"), ("HS", "open")]
    assert stored[0].overdue_level == "red"
    await handle.terminate("test over")


async def test_claim_racing_reassign_leaves_one_consistent_outcome(
    own_time_env: WorkflowEnvironment, org_db: Database
) -> None:
    time_env = own_time_env
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        task = (await snapshot(handle)).tasks[0].task_id
        claim = handle.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        reassign = handle.execute_update(EventLifecycle.supervise,
                                         SupervisorCommand(ZX, "reassign", reason="改派", unit="HS01-G2"))
        results = await asyncio.gather(claim, reassign, return_exceptions=True)
        assert not isinstance(results[1], BaseException)  # reassigning is legal either way
        snap = await snapshot(handle)
        open_tasks = [t for t in snap.tasks if t.status in ("open", "claimed")]
        assert [(t.unit, t.status) for t in open_tasks] == [("HS01-G2", "open")]
        if isinstance(results[0], BaseException):
            assert isinstance(results[0], WorkflowUpdateFailedError)
            assert "cancelled" in str(results[0].cause)
        stored = {t.task_id: t.status for t in await queries.event_tasks(org_db, snap.event_id)}
        assert stored == {t.task_id: t.status for t in snap.tasks}
        await handle.terminate("test over")


async def test_complete_racing_void_leaves_one_consistent_outcome(
    own_time_env: WorkflowEnvironment, org_db: Database
) -> None:
    time_env = own_time_env
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        task = (await snapshot(handle)).tasks[0].task_id
        await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        complete = handle.execute_update(EventLifecycle.complete, CompleteCommand(task, GW, result="done"))
        void = handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "void", reason="重复上报"))
        results = await asyncio.gather(complete, void, return_exceptions=True)
        assert not isinstance(results[1], BaseException)
        snap = await snapshot(handle)
        assert snap.state == "voided"
        assert not [t for t in snap.tasks if t.status in ("open", "claimed")]
        event = await queries.get_event(org_db, snap.event_id)
        assert event is not None and event.state == "voided"
        stored = {t.task_id: t.status for t in await queries.event_tasks(org_db, snap.event_id)}
        assert stored == {t.task_id: t.status for t in snap.tasks}
        await handle.terminate("test over")


async def test_cohandling_request_racing_reassign_leaves_no_orphan_helper(
    own_time_env: WorkflowEnvironment, org_db: Database
) -> None:
    """The co-handling request creates its helper tasks one deadline computation apart; a reassignment
    accepted in between used to cancel the handling task and the first helper, then the request went
    on and opened the second helper for the cancelled task (an orphan in D-GT's inbox). Update handlers
    now take turns (patch ``serial-updates``), and the one that waited checks its rules again."""
    time_env = own_time_env
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        task = (await snapshot(handle)).tasks[0].task_id
        await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        ask = handle.execute_update(EventLifecycle.request, TaskRequest(
            task, GW, action="request_cohandling", reason="需配合", units=["D-ZF", "D-GT", "D-GH"]))
        reassign = handle.execute_update(EventLifecycle.supervise,
                                         SupervisorCommand(ZX, "reassign", reason="改派", unit="HS01-G2"))
        results = await asyncio.gather(ask, reassign, return_exceptions=True)
        assert not isinstance(results[1], BaseException)  # reassigning is legal either way
        snap = await snapshot(handle)
        live = {t.task_id for t in snap.tasks if t.status in ("open", "claimed")}
        assert [(t.unit, t.kind) for t in snap.tasks if t.task_id in live] == [("HS01-G2", "handle")]
        if isinstance(results[0], BaseException):  # the reassignment came first: the request was too late
            assert isinstance(results[0], WorkflowUpdateFailedError)
            assert "cancelled" in str(results[0].cause)
        stored = {t.task_id: t.status for t in await queries.event_tasks(org_db, snap.event_id)}
        assert stored == {t.task_id: t.status for t in snap.tasks}
        await handle.terminate("test over")


class FlakyGateway:
    """An SMS gateway that fails until it is repaired."""

    channel = "sms-test"

    def __init__(self) -> None:
        self.working = False
        self.sent: list[str] = []

    async def send(self, notice: Notice) -> None:
        if not self.working and notice.kind == "rate_request":
            raise ConnectionError("gateway down")
        self.sent.append(notice.notice_id)


@pytest.mark.parametrize("repair", ["skip_notice", "retry_notice"])
async def test_supervisor_repairs_a_failing_notification_and_the_event_goes_on(
    own_time_env: WorkflowEnvironment, org_db: Database, repair: str
) -> None:
    time_env = own_time_env
    gateway = FlakyGateway()
    queue = tq()
    async with build_worker(time_env.client, org_db, queue, delivery=gateway):
        handle = await start(time_env, queue)
        await handle_task(handle)
        await verify(handle)
        # Retries of a running activity are not time-skipped: wait (really) for three failed attempts.
        for _ in range(300):
            failing = await queries.console(org_db, {"HS01-G1"}, utcnow())
            if failing["failing_notices"]:
                break
            await asyncio.sleep(0.1)
        snap = await snapshot(handle)
        assert snap.state == "feedback" and snap.rating_due is None  # the reporter has not been told yet
        [(notice, _)] = failing["failing_notices"]
        assert notice.kind == "rate_request" and notice.attempts >= 3 and "gateway down" in (notice.last_error or "")
        if repair == "retry_notice":
            gateway.working = True
        await handle.execute_update(EventLifecycle.supervise,
                                    SupervisorCommand(ZX, repair, notice_id=notice.notice_id))
        for _ in range(100):
            snap = await snapshot(handle)
            if snap.rating_due is not None:
                break
            await asyncio.sleep(0.1)
        assert snap.rating_due is not None  # the rating window runs now
        await handle.execute_update(EventLifecycle.rate, rating("satisfied"))
        snap = await snapshot(handle)
        assert snap.state == "closed"
        status = next(n.status for n in snap.notices if n.notice_id == notice.notice_id)
        assert status == ("skipped" if repair == "skip_notice" else "delivered")
        assert (repair, "user") in [(e.action, e.actor_kind) for e in snap.timeline]
        await handle.terminate("test over")


async def test_extension_cohandling_and_review_paths(time_env: WorkflowEnvironment, org_db: Database) -> None:
    queue = tq()
    zf = Actor("bm_zf", "执法局", unit="D-ZF", role="department_staff")
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        task = (await snapshot(handle)).tasks[0]
        await handle.execute_update(EventLifecycle.claim, ClaimCommand(task.task_id, GW))
        await handle.execute_update(EventLifecycle.request, TaskRequest(task.task_id, GW, "request_extension",
                                                                        "需要等物业", hours=8))
        with pytest.raises(WorkflowUpdateFailedError, match="update failed"):
            await handle.execute_update(EventLifecycle.request, TaskRequest(task.task_id, GW, "request_extension",
                                                                            "again", hours=8))
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "approve_extension"))
        snap = await snapshot(handle)
        assert snap.tasks[0].hours == task.hours + 8 and snap.tasks[0].due_at > (task.due_at or "")
        assert snap.pending is None

        await handle.execute_update(EventLifecycle.request, TaskRequest(task.task_id, GW, "request_cohandling",
                                                                        "需执法配合", units=["D-ZF"]))
        helper = (await snapshot(handle)).tasks[-1]
        assert (helper.kind, helper.unit, helper.parent) == ("cohandle", "D-ZF", task.task_id)
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(EventLifecycle.complete, CompleteCommand(task.task_id, GW, result="x"))
        assert "co-handling by D-ZF" in str(info.value.cause)
        await handle.execute_update(EventLifecycle.claim, ClaimCommand(helper.task_id, zf))
        await handle.execute_update(EventLifecycle.complete, CompleteCommand(helper.task_id, zf, result="已配合"))
        await handle.execute_update(EventLifecycle.complete, CompleteCommand(task.task_id, GW, result="完成"))
        await verify(handle)
        for _ in range(2):  # two reworks are allowed after dissatisfied ratings
            await handle.execute_update(EventLifecycle.rate, rating("dissatisfied", "不满意"))
            assert (await snapshot(handle)).state == "dispatched"
            await handle_task(handle)
            await verify(handle)
        await handle.execute_update(EventLifecycle.rate, rating("dissatisfied", "还是不满意"))
        snap = await snapshot(handle)
        assert (snap.state, snap.pending, snap.rework_count) == ("review", "review", 2)
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "close", reason="已尽责"))
        assert (await snapshot(handle)).state == "closed"
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "reopen", reason="复查"))
        snap = await snapshot(handle)
        assert snap.state == "dispatched" and snap.tasks[-1].status == "open"
        await handle.terminate("test over")


async def test_pause_stops_the_clock_and_blocks_workers(time_env: WorkflowEnvironment, org_db: Database) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        due_before = datetime.fromisoformat((await snapshot(handle)).tasks[0].marks["due"])
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "pause", reason="等待鉴定"))
        task = (await snapshot(handle)).tasks[0].task_id
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        assert "paused" in str(info.value.cause)
        await time_env.sleep(timedelta(days=3))
        snap = await snapshot(handle)
        assert snap.warnings == []  # no reminder while paused
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "resume"))
        due_after = datetime.fromisoformat((await snapshot(handle)).tasks[0].marks["due"])
        assert due_after - due_before >= timedelta(days=3)
        worker = Actor("wg_hs01_g1", unit="HS01-G1", role="grid_worker")
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(worker, "void", reason="x"))
        assert info.value.cause.type == "Forbidden"  # type: ignore[union-attr]
        await handle.terminate("test over")


async def test_a_continued_run_resumes_from_the_snapshot(own_time_env: WorkflowEnvironment, org_db: Database) -> None:
    """Continue-as-new hands the snapshot to the next run in the memo; that run carries on from it."""
    time_env = own_time_env
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        first = await start(time_env, queue)
        task = (await snapshot(first)).tasks[0].task_id
        await first.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        before = await snapshot(first)
        await first.terminate("replaced by the continued run below")
        # What workflow.continue_as_new does: the same input, the snapshot in the memo.
        resumed = await time_env.client.start_workflow(
            EventLifecycle.run, before.report, id=before.event_id, task_queue=queue,
            memo={"resume": before}, id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
        snap = await snapshot(resumed)
        assert (snap.state, snap.receipt_code, len(snap.timeline)) == ("handling", before.receipt_code,
                                                                       len(before.timeline))
        await resumed.execute_update(EventLifecycle.complete, CompleteCommand(task, GW, result="续跑后办结"))
        snap = await snapshot(resumed)
        assert snap.state == "verification" and snap.timeline[-1].action == "complete"
        await resumed.terminate("test over")
