"""The EventLifecycle workflow with time skipping: timers, rework and refused actions."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from store import queries
from store.db import Database
from tests.scenarios import GW, handle_task, rating, snapshot, start, verify
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from workflows.types import (
    Actor,
    ClaimCommand,
    CompleteCommand,
    EventSnapshot,
    Location,
    RateCommand,
)


async def handle_and_verify(handle: WorkflowHandle, passed: bool) -> EventSnapshot:
    await handle_task(handle)
    assert (await snapshot(handle)).tasks[-1].unit == "HS01"  # the grid handled it: its community verifies
    return await verify(handle, passed)


async def rejection(handle: WorkflowHandle, update: str, arg: object) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, arg)
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause


async def test_no_rating_within_the_window_counts_as_accepted(time_env: WorkflowEnvironment, org_db: Database) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        handle = await start(time_env, tq)
        snap = await handle_and_verify(handle, passed=True)
        assert snap.state == "feedback"
        await time_env.sleep(timedelta(days=10))  # the rating window (24 working hours) passes
        final: EventSnapshot = await handle.result()
    assert final.state == "closed" and final.rating is None
    assert [e.action for e in final.timeline][-2:] == ["accept_by_default", "close"]
    assert final.timeline[-2].actor_kind == "timer"
    event = await queries.get_event(org_db, final.event_id)
    assert event is not None and event.state == "closed" and event.closed_at is not None


async def test_failed_verification_sends_the_event_back_for_rework(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        handle = await start(time_env, tq)
        snap = await handle_and_verify(handle, passed=False)
        assert snap.state == "dispatched"
        rework = snap.tasks[-1]
        assert rework.kind == "handle" and rework.unit == "HS01-G1" and rework.status == "open" and rework.due_at
        snap = await handle_and_verify(handle, passed=True)
        assert snap.state == "feedback"
        await handle.execute_update(EventLifecycle.rate, rating("basically_satisfied"))
        final: EventSnapshot = await handle.result()
    assert final.rating == "basically_satisfied"
    assert [e.action for e in final.timeline].count("verify_fail") == 1


async def test_illegal_actions_are_refused_with_a_reason_and_change_nothing(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        handle = await start(time_env, tq)
        before = await snapshot(handle)
        task = before.tasks[0].task_id
        err = await rejection(handle, "rate", RateCommand("satisfied"))
        assert err.type == "Conflict" and "not allowed" in err.message
        err = await rejection(handle, "complete", CompleteCommand(task, GW, result="x"))
        assert err.type == "Conflict" and "claim it first" in err.message
        other = Actor("wg_st01_g1", unit="ST01-G1")
        err = await rejection(handle, "claim", ClaimCommand(task, other))
        assert err.type == "Forbidden"
        err = await rejection(handle, "claim", ClaimCommand("EV-none.T9", GW))
        assert err.type == "NotFound"
        err = await rejection(handle, "rate", RateCommand("great"))
        assert err.type == "Invalid"
        after = await snapshot(handle)
        assert after.state == before.state and after.timeline == before.timeline and after.tasks == before.tasks
        await handle.terminate("test over")


async def test_unknown_category_without_location_goes_to_the_city_triage(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    tq = f"tq-{uuid.uuid4().hex[:8]}"
    async with build_worker(time_env.client, org_db, tq):
        handle = await start(time_env, tq, category="NOPE-1", location=Location())
        snap = await snapshot(handle)
        assert snap.state == "triage" and snap.tasks[0].kind == "triage" and snap.tasks[0].unit == "CC-JS"
        assert snap.decision is not None and not snap.decision.placed and "NOPE-1" in snap.decision.reason
        await handle.terminate("test over")
