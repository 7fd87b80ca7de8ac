"""Issue 10, items 1 and 2, in the workflow (time skipping) and the routing engine: an approved return
(退回) never goes back to a unit that returned the event, and nobody verifies (核查) their own work."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from rules.engine import RoutingEngine
from rules.responsibility_list import load
from store import queries
from store.db import Database
from tests.conftest import binary
from tests.scenarios import COMMUNITY, GW, ZX, handle_task, snapshot, start, verify, wait_state
from worker import build_worker
from workflows import policy
from workflows.event_lifecycle import EventLifecycle
from workflows.types import Actor, ClaimCommand, Decision, EventSnapshot, SupervisorCommand, TaskRequest
from wulian.temporal_setup import ensure_search_attributes

HS01_G1 = {"category": "SR-01", "grid": "HS01-G1", "community": "HS01", "street": "HS", "source": "portal",
           "severity": 1, "repeat": 0, "returned": 1, "escalated": 0, "needs_enforcement": False}


def tq() -> str:
    return f"tq-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of this test's own (as test_supervision's ``own_time_env``): after these
    tests' refused updates, the shared server stopped skipping time for the tests that followed."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


async def refusal(handle: WorkflowHandle, update: str, arg: object) -> ApplicationError:
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, arg)
    assert isinstance(info.value.cause, ApplicationError)
    return info.value.cause


def code_of(error: ApplicationError) -> str:
    """The refusal code the web translates (first detail)."""
    first = error.details[0] if error.details else None
    assert isinstance(first, dict), error.details
    return str(first["code"])


async def returned_by(handle: WorkflowHandle, actor: Actor) -> str:
    """``actor`` claims the current handling task and asks to return it; the task id."""
    task = (await snapshot(handle)).tasks[-1].task_id
    await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, actor))
    await handle.execute_update(EventLifecycle.request, TaskRequest(task, actor, action="request_return",
                                                                    reason="不属于我们"))
    return task


def handler_of(snap: EventSnapshot) -> Actor:
    task = snap.tasks[-1]
    return Actor(task.assignee or f"staff_{task.unit}", unit=task.unit, role="department_staff")


# ------------------------------------------------------------------------------------------ item 1: returns
async def test_an_approved_return_without_a_pick_never_goes_back_to_the_returning_grid(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)  # SR-01 in HS01-G1: the grid's responsibility
        await returned_by(handle, GW)
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "approve_return", reason="同意"))
        # The only unit the list names for SR-01 there returned it: a supervisor dispatches it.
        snap = await wait_state(handle, "triage")
        assert snap.decision is not None and snap.decision.excluded == ["HS01-G1"]
        assert "HS01-G1" in snap.decision.reason and snap.returned_units == ["HS01-G1"]
        assert [t.unit for t in snap.tasks if t.status == "open"] == ["CC-HS"]
        assert snap.decision.reason_code == "returned_everywhere" and snap.timeline[-1].note == snap.decision.reason
        stored = await queries.get_event(org_db, snap.event_id)
        assert stored is not None and stored.decision is not None and stored.decision["excluded"] == ["HS01-G1"]
        await handle.terminate("test over")



async def test_a_return_waiting_past_the_tasks_deadline_keeps_the_event_and_the_marks_fire_once_it_is_denied(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    # Found by ``wulian simulate``: a reminder coming due while the return waited for its supervisor was
    # an illegal move in that state, and it failed the workflow (the event was lost).
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        task = await returned_by(handle, GW)
        marks = (await snapshot(handle)).tasks[-1].marks
        assert {"remind_50", "due", "escalate"} <= set(marks)
        await time_env.sleep(timedelta(days=20))  # past every mark of the task, no supervisor yet
        snap = await wait_state(handle, "return_requested")
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        assert [w.kind for w in snap.warnings] == []  # nothing fired while the task was out of the inbox
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "deny_return", reason="属于你们"))
        # Back in the grid's inbox, long overdue: the reminders, the urging and the red escalation follow.
        for _ in range(100):
            snap = await snapshot(handle)
            if "red" in [w.kind for w in snap.warnings]:
                break
            await asyncio.sleep(0.05)
        assert [w.kind for w in snap.warnings] == ["reminder", "reminder", "yellow", "red"]
        assert all(w.task_id == task for w in snap.warnings)
        assert snap.state == "dispatched" and snap.tasks[-1].unit != "HS01-G1"
        await handle.terminate("test over")

async def test_the_list_decides_again_with_the_returning_unit_excluded(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        # Law-enforcement power asked for: the department ZF; it says "not ours".
        handle = await start(time_env, queue, needs_enforcement=True)
        snap = await snapshot(handle)
        assert snap.tasks[-1].unit == "D-ZF"
        await returned_by(handle, handler_of(snap))
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "approve_return"))
        snap = await wait_state(handle, "dispatched")
        # The next rule that matches decides: the category's own tier, the grid.
        assert snap.tasks[-1].unit == "HS01-G1" and snap.decision is not None
        assert snap.decision.rule == "category:SR-01" and snap.decision.excluded == ["D-ZF"]
        # The grid returns it too: both are excluded now, and nothing else is left but triage.
        await returned_by(handle, GW)
        await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "approve_return"))
        snap = await wait_state(handle, "triage")
        assert snap.decision is not None and snap.decision.excluded == ["D-ZF", "HS01-G1"]
        await handle.terminate("test over")


async def test_the_approving_supervisor_picks_the_unit_but_never_a_returning_one(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        await returned_by(handle, GW)
        back = SupervisorCommand(ZX, "approve_return", unit="HS01-G1", tier="grid")
        err = await refusal(handle, "supervise", back)
        assert err.type == "Invalid" and code_of(err) == "return_to_returner"
        assert (await snapshot(handle)).state == "return_requested"  # nothing changed
        pick = SupervisorCommand(ZX, "approve_return", reason="交社区", unit="HS01", tier="community",
                                 ladder=["HS01", "HS", "CC-JS"])
        await handle.execute_update(EventLifecycle.supervise, pick)
        snap = await snapshot(handle)
        assert snap.state == "dispatched" and snap.tasks[-1].unit == "HS01" and snap.tasks[-1].status == "open"
        assert snap.decision is not None
        assert (snap.decision.unit, snap.decision.rule, snap.decision.actor) == ("HS01", "manual-return", "zx_hs")
        assert snap.decision.excluded == ["HS01-G1"] and snap.decision.ladder == ["HS01", "HS", "CC-JS"]
        assert [e.action for e in snap.timeline[-2:]] == ["approve_return", "route"]
        assert snap.timeline[-1].actor == "zx_hs" and snap.timeline[-1].note == "→ HS01"
        stored = await queries.event_tasks(org_db, snap.event_id)
        assert [(t.unit, t.status) for t in stored][-1] == ("HS01", "open")
        await handle.terminate("test over")


def test_the_engine_skips_the_rules_that_name_an_excluded_unit() -> None:
    engine = RoutingEngine(load(), city_centre="CC-JS")
    try:
        assert engine.decide(HS01_G1)["unit"] == "HS01-G1"
        enforced = engine.decide({**HS01_G1, "needs_enforcement": True}, exclude=["D-ZF"])
        assert (enforced["rule"], enforced["unit"], enforced["excluded"]) == ("category:SR-01", "HS01-G1", ["D-ZF"])
        nowhere = engine.decide(HS01_G1, exclude=["HS01-G1"])
        assert not nowhere["placed"] and nowhere["unit"] == "CC-HS" and "HS01-G1" in nowhere["reason"]
        assert "excluded" not in engine.decide(HS01_G1)
    finally:
        engine.close()


# ------------------------------------------------------------------------------- item 2: verification
def test_the_list_names_who_verifies_and_nobody_verifies_their_own_unit() -> None:
    engine = RoutingEngine(load(), city_centre="CC-JS")
    try:
        assert engine.decide(HS01_G1)["verification"] == ["HS01-G1", "HS01", "CC-HS", "CC-JS"]
        # Fire hazards in the stairwell: the street's command centre verifies (a policy per category).
        assert engine.decide({**HS01_G1, "category": "XF-02"})["verification"] == ["CC-HS", "CC-JS"]
        assert engine.decide({"category": "SR-01"})["verification"] == ["CC-JS"]
    finally:
        engine.close()
    decision = Decision(placed=True, tier="grid", unit="HS01-G1", department=None, rule="r", list_version="v",
                        reason="", verification=["HS01-G1", "HS01", "CC-HS", "CC-JS"])
    assert decision.verifier("HS01-G1") == "HS01"  # the grid's own work: its community
    assert decision.verifier("HS") == "HS01-G1"  # the street's work: the grid worker on site
    assert Decision(placed=True, tier="city", unit="CC-JS", department=None, rule="r", list_version="v",
                    reason="", verification=["CC-JS"]).verifier("CC-JS") == "CC-JS"  # then the person check


async def test_the_grid_s_own_work_is_verified_by_its_community_never_by_the_worker(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue)
        await handle_task(handle, GW)
        snap = await snapshot(handle)
        check = snap.tasks[-1]
        assert (check.kind, check.unit) == ("verify", "HS01")
        # The worker who did it, moved to the community meanwhile, still may not verify it.
        moved = Actor(GW.username, GW.display_name, unit="HS01", role="community_staff")
        err = await refusal(handle, "claim", ClaimCommand(check.task_id, moved))
        assert err.type == "Conflict" and code_of(err) == "verify_own_work"
        assert (await snapshot(handle)).tasks[-1].status == "open"
        snap = await verify(handle)  # the community's staff verifies
        assert snap.state == "feedback" and snap.tasks[-1].claimed_by == COMMUNITY.username
        await handle.terminate("test over")


async def test_a_fire_hazard_handled_by_the_grid_is_verified_by_the_street_centre(
    time_env: WorkflowEnvironment, org_db: Database
) -> None:
    queue = tq()
    async with build_worker(time_env.client, org_db, queue):
        handle = await start(time_env, queue, category="XF-02", description="楼道里电动车充电")
        assert (await snapshot(handle)).tasks[-1].unit == "HS01-G1"
        await handle_task(handle, GW)
        assert (await snapshot(handle)).tasks[-1].unit == "CC-HS"
        await handle.terminate("test over")


def test_the_policy_never_sends_a_return_back_to_a_returning_unit() -> None:
    with pytest.raises(policy.Refused) as info:
        policy.check_return_target("HS01-G1", ["D-ZF", "HS01-G1"])
    assert (info.value.code, info.value.params) == ("return_to_returner", {"unit": "HS01-G1"})
    policy.check_return_target("HS01", ["HS01-G1"])  # another unit: fine
    policy.check_return_target(None, ["HS01-G1"])  # no pick: the list decides again
