"""Lifecycle scenarios driven straight through the workflow's updates (shared by the supervision
tests and by the recorder of the histories that the replay test replays)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from rules.worktime import CITY_TZ, is_working_day
from store.receipts import key_hash, random_code
from workflows.event_lifecycle import EventLifecycle
from workflows.types import (
    Actor,
    ClaimCommand,
    CompleteCommand,
    EventReport,
    EventSnapshot,
    FollowCommand,
    Location,
    RateCommand,
    Reporter,
    SupervisorCommand,
    TaskRequest,
)

GW = Actor("wg_hs01_g1", "毛建国", unit="HS01-G1", role="grid_worker")
COMMUNITY = Actor("sq_hs01", "社区", unit="HS01", role="community_staff")
ZX = Actor("zx_hs", "街道监督员", unit="CC-HS", role="street_supervisor")
#: The reporter's tracking key in these scenarios (the web draws one per report and shows it once).
KEY = "TESTKEY0TESTKEY0"


def rating(value: str, comment: str = "") -> RateCommand:
    """The reporter's rating, with the scenario's tracking key."""
    return RateCommand(value, comment, tracking_key_hash=key_hash(KEY))


async def start(env: WorkflowEnvironment, task_queue: str, **report: object) -> WorkflowHandle:
    """Start an event (SR-01 in grid HS01-G1 unless overridden) and wait until it is dispatched."""
    base: dict[str, object] = dict(category="SR-01", description="垃圾", location=Location(grid="HS01-G1"),
                                   reporter=Reporter("张三", "13800000000"), source="portal",
                                   receipt_code=random_code(), tracking_key_hash=key_hash(KEY))
    base.update(report)
    handle = await env.client.start_workflow(
        EventLifecycle.run, EventReport(**base), id=f"EV-T-{uuid.uuid4().hex[:10]}", task_queue=task_queue  # type: ignore[arg-type]
    )
    await handle.execute_update(EventLifecycle.wait_dispatched)
    return handle


async def snapshot(handle: WorkflowHandle) -> EventSnapshot:
    """The live state."""
    return await handle.query(EventLifecycle.snapshot)


async def wait_state(handle: WorkflowHandle, state: str, tries: int = 100) -> EventSnapshot:
    """Poll the live state until it is ``state`` (the main loop routes asynchronously)."""
    for _ in range(tries):
        snap = await snapshot(handle)
        if snap.state == state:
            return snap
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {snap.state}, not {state}")


async def handle_task(handle: WorkflowHandle, actor: Actor = GW) -> None:
    """Claim and complete the current handling task."""
    task = (await snapshot(handle)).tasks[-1].task_id
    await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, actor))
    await handle.execute_update(EventLifecycle.complete, CompleteCommand(task, actor, result="处理完毕"))


def verifier_of(unit: str) -> Actor:
    """Someone of ``unit``, which verifies (the community HS01 verifies its grid's work)."""
    return COMMUNITY if unit == COMMUNITY.unit else Actor(f"verifier_{unit}", unit=unit, role="community_staff")


async def verify(handle: WorkflowHandle, passed: bool = True) -> EventSnapshot:
    """Claim and record the verification, by someone of the verifying unit."""
    task = (await snapshot(handle)).tasks[-1]
    assert task.kind == "verify"
    actor = verifier_of(task.unit)
    await handle.execute_update(EventLifecycle.claim, ClaimCommand(task.task_id, actor))
    await handle.execute_update(EventLifecycle.complete,
                                CompleteCommand(task.task_id, actor, result="核查", passed=passed))
    return await snapshot(handle)


async def happy_path(env: WorkflowEnvironment, tq: str) -> WorkflowHandle:
    """Report, handle, verify, rate satisfied."""
    handle = await start(env, tq)
    await handle_task(handle)
    await verify(handle)
    await handle.execute_update(EventLifecycle.rate, rating("satisfied", "好"))
    return handle


async def return_and_rework(env: WorkflowEnvironment, tq: str) -> WorkflowHandle:
    """Return approved by the supervisor, who gives it to the community; handled, dissatisfied once,
    reworked, satisfied."""
    handle = await start(env, tq)
    task = (await snapshot(handle)).tasks[-1].task_id
    await handle.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
    await handle.execute_update(EventLifecycle.request,
                                TaskRequest(task, GW, action="request_return", reason="不属于本网格"))
    # The supervisor gives it to the community (never back to the grid that returned it).
    await handle.execute_update(EventLifecycle.supervise, SupervisorCommand(
        ZX, "approve_return", reason="同意", unit=COMMUNITY.unit, tier="community",
        ladder=[COMMUNITY.unit, "HS", "CC-JS"]))
    snap = await wait_state(handle, "dispatched")
    assert snap.returned_count == 1 and snap.tasks[-1].unit == COMMUNITY.unit
    await handle_task(handle, COMMUNITY)
    await verify(handle)
    await handle.execute_update(EventLifecycle.rate, rating("dissatisfied", "没处理干净"))
    await handle_task(handle, COMMUNITY)
    await verify(handle)
    await handle.execute_update(EventLifecycle.rate, rating("satisfied"))
    return handle


async def integration_followed(env: WorkflowEnvironment, tq: str) -> WorkflowHandle:
    """A report started through the Temporal client without a receipt code (the workflow draws one and
    a tracking key), followed by a neighbour ("me too"), handled and verified: waits for the rating."""
    report = EventReport(category="SR-01", description="热线:垃圾", location=Location(grid="HS01-G1"),
                         reporter=Reporter("李四", "13900000000"), source="hotline", external_id="rec-1")
    handle = await env.client.start_workflow(EventLifecycle.run, report, id=f"EV-T-{uuid.uuid4().hex[:10]}",
                                             task_queue=tq)
    await handle.execute_update(EventLifecycle.wait_dispatched)
    await handle.execute_update(EventLifecycle.follow, FollowCommand("a" * 64, "13911112222"))
    unit = (await snapshot(handle)).tasks[-1].unit  # the grid's, or higher when it is a repeat
    await handle_task(handle, Actor(f"worker_{unit}", unit=unit, role="grid_worker"))
    await verify(handle)
    return handle


def next_friday_morning(now: datetime) -> datetime:
    """10:00 (city time) on the next Friday that is a working day followed by working Mon–Wed."""
    day = now.astimezone(CITY_TZ).date() + timedelta(days=1)
    while True:
        if day.weekday() == 4 and is_working_day(day) and all(
            is_working_day(day + timedelta(days=d)) for d in (3, 4, 5)
        ) and not any(is_working_day(day + timedelta(days=d)) for d in (1, 2)):
            return datetime(day.year, day.month, day.day, 10, 0, tzinfo=CITY_TZ)
        day += timedelta(days=1)


async def overdue_over_a_weekend(env: WorkflowEnvironment, tq: str) -> tuple[WorkflowHandle, datetime]:
    """A community task of 2 working days dispatched on a Friday and never handled."""
    start_at = next_friday_morning(await env.get_current_time())
    await env.sleep(start_at - await env.get_current_time())
    handle = await start(env, tq, category="SR-05", description="垃圾分类不规范")
    return handle, start_at
