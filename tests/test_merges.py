"""Duplicates merged (合并) and undone in the workflow (issue 12, item 4): the duplicate ends as
merged with a link to its primary, its tasks close, its reporter follows the primary; an undo within
the window puts it back where it was; after the window the undo is refused. Time skipping."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlmodel import select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from assessment.facts import counters_of
from store import models, queries
from store.db import Database
from tests.scenarios import GW, ZX, handle_task, snapshot, start
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from workflows.types import Actor, ClaimCommand, MergeCommand, Reporter, SupervisorCommand, UnmergeCommand

WORKER = Actor("wg_hs01_g1", "毛建国", unit="HS01-G1", role="grid_worker")


def tq() -> str:
    return f"merge-{uuid.uuid4().hex[:8]}"


def merge(primary: str, *, state: str = "dispatched", hours: int = 72, actor: Actor = ZX,
          reason: str = "同一处垃圾堆积") -> MergeCommand:
    return MergeCommand(actor, primary, state, reason=reason, undo_hours=hours, primary_receipt="")


def refusal_code(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    details = getattr(cause, "details", None) or [{}]
    return str(details[0].get("code", ""))


async def _facts(db: Database, event_id: str) -> list[models.AssessmentFact]:
    async with db.session() as session:
        return list((await session.exec(select(models.AssessmentFact).where(
            models.AssessmentFact.event_id == event_id))).all())


async def test_merge_closes_the_duplicate_links_it_and_its_reporter_follows_the_primary_then_undo(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        primary = await start(time_env, queue)
        dup = await start(time_env, queue, reporter=Reporter("李四", "13900000001"))
        task = (await snapshot(dup)).tasks[0]
        await dup.execute_update(EventLifecycle.claim, ClaimCommand(task.task_id, GW))
        before = await snapshot(dup)
        due_before = before.tasks[0].due_at
        assert before.state == "handling"

        # Refused: by a worker, into itself, into a closed primary, without a reason.
        for cmd, code in ((merge(primary.id, actor=WORKER), "supervisors_only"), (merge(dup.id), "merge_self"),
                          (merge(primary.id, state="closed"), "merge_primary_closed"),
                          (merge(primary.id, reason=" "), "reason_needed")):
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await dup.execute_update(EventLifecycle.merge, cmd)
            assert refusal_code(refused.value) == code
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await dup.execute_update(EventLifecycle.unmerge, UnmergeCommand(ZX))
        assert refusal_code(refused.value) == "not_merged"

        merged = await dup.execute_update(EventLifecycle.merge, merge(primary.id))
        assert merged.state == "merged" and merged.stage == "close"
        assert merged.merge is not None and merged.merge.primary == primary.id
        assert merged.merge.from_state == "handling" and merged.merge.tasks == {task.task_id: "claimed"}
        assert [(t.status, t.ended_by) for t in merged.tasks] == [("cancelled", "merged")]
        assert [n.kind for n in merged.notices][-1] == "merged"  # the duplicate's reporter is told
        # Nothing else may happen to a merged event but the undo.
        with pytest.raises(WorkflowUpdateFailedError):
            await dup.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "reopen", reason="x"))

        await time_env.sleep(timedelta(seconds=5))
        prim = await snapshot(primary)
        assert prim.merged == [dup.id]
        assert [(f.phone, f.via) for f in prim.followers] == [("13900000001", dup.id)]
        assert any(e.action == "absorb" and e.note == dup.id for e in prim.timeline)

        row = await queries.get_event(org_db, dup.id)
        assert row is not None and row.state == "merged" and row.merged_into == primary.id
        assert row.merge_undo_by is not None
        # Counted as merged only: no new event, nothing closed, its task counts for nothing.
        facts = await _facts(org_db, dup.id)
        assert [(f.kind, counters_of(f.flags)) for f in facts] == [("event", ["merged"])]
        prim_row = await queries.get_event(org_db, primary.id)
        assert prim_row is not None and prim_row.merged_count == 1
        # The duplicate's reporter gets the primary's notices, as its followers do.
        await handle_task(primary)
        prim = await snapshot(primary)
        assert [n.kind for n in prim.notices if n.recipient == "13900000001"] == ["completed"]

        await time_env.sleep(timedelta(hours=1))
        undone = await dup.execute_update(EventLifecycle.unmerge, UnmergeCommand(ZX, reason="并非同一问题"))
        assert undone.state == "handling" and undone.merge is None and undone.closed_at is None
        back = undone.tasks[0]
        assert (back.status, back.claimed_by, back.ended_by) == ("claimed", GW.username, "")
        assert back.due_at is not None and due_before is not None and back.due_at > due_before  # moved on
        await time_env.sleep(timedelta(seconds=5))
        prim = await snapshot(primary)
        assert prim.merged == [] and prim.followers == []
        facts = await _facts(org_db, dup.id)
        assert "events" in counters_of(next(f for f in facts if f.kind == "event").flags)
        await dup.terminate("test over")
        await primary.terminate("test over")


async def test_an_undo_after_its_window_is_refused(time_env: WorkflowEnvironment, org_db: Database) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        primary = await start(time_env, queue)
        dup = await start(time_env, queue)
        await dup.execute_update(EventLifecycle.merge, merge(primary.id, hours=2))
        await time_env.sleep(timedelta(hours=3))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await dup.execute_update(EventLifecycle.unmerge, UnmergeCommand(ZX))
        assert refusal_code(refused.value) == "merge_undo_late"
        snap = await snapshot(dup)
        assert snap.state == "merged"
        await dup.terminate("test over")
        await primary.terminate("test over")


async def test_merge_undo_and_occurrences_replay_from_history(dev_env: WorkflowEnvironment, org_db: Database) -> None:
    """With no workflow cache every task is replayed from the full history: the new handlers (signals
    before the run, the external signals of a merge, the undo's return) are deterministic."""
    from temporalio.worker import Worker

    from activities.lifecycle import LifecycleActivities
    from worker import workflow_runner
    from workflows.types import EventReport, Location, Occurrence

    queue = tq()
    acts = LifecycleActivities(org_db)
    async with Worker(dev_env.client, task_queue=queue, workflows=[EventLifecycle], activities=acts.all(),
                      workflow_runner=workflow_runner(), max_cached_workflows=0):
        primary = await start(dev_env, queue)
        alarm = EventReport(category="SR-01", description="告警", location=Location(grid="HS01-G1"),
                            source="camera", external_id="CAM-9:1", camera_id="CAM-9")
        camera = await dev_env.client.start_workflow(
            EventLifecycle.run, alarm, id=f"EV-T-{uuid.uuid4().hex[:10]}", task_queue=queue,
            start_signal="add_occurrence", start_signal_args=[Occurrence("CAM-9:1")])
        for n in (2, 3, 3):
            await camera.signal(EventLifecycle.add_occurrence, Occurrence(f"CAM-9:{n}"))
        snap = await camera.execute_update(EventLifecycle.wait_dispatched)
        for _ in range(50):
            snap = await snapshot(camera)
            if snap.occurrences == 3:
                break
            await asyncio.sleep(0.1)
        assert snap.occurrences == 3
        await camera.execute_update(EventLifecycle.merge, merge(primary.id))
        undone = await camera.execute_update(EventLifecycle.unmerge, UnmergeCommand(ZX))
        assert undone.state == "dispatched" and undone.occurrences == 3
        for _ in range(50):
            prim = await snapshot(primary)
            if not prim.merged:
                break
            await asyncio.sleep(0.1)
        assert prim.merged == [] and any(e.action == "release_merged" for e in prim.timeline)
        await camera.terminate("test over")
        await primary.terminate("test over")
