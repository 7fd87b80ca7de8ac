"""Process instances driven through the generic workflow, shared by its tests and the recorder of the
replayed histories (``tests/record_histories.py``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from processes.definition import DATA_DIR
from processes.instance import Person, Requester
from workflows.process_instance import ProcessAction, ProcessInstanceWorkflow, ProcessSnapshot, ProcessStart

HOME = Requester("王阿姨", "13800000000", grid="HS01-G1", community="HS01", street="HS")
COMMUNITY = Person("sq_hs01", "HS01", "community_staff", units_above=("HS01", "HS", "JS"))
GRID_WORKER = Person("wg_hs01_g1", "HS01-G1", "grid_worker", units_above=("HS01-G1", "HS01", "HS", "JS"))
#: A deliberation's steps up to the residents' rating: (outcome, form) of each community task.
DELIBERATION_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("schedule", {"meeting_date": "2026-12-09", "participants": "居民代表"}),
    ("decide", {"minutes": "议定报修", "decision": "东门路灯报修", "create_event": True, "category": "SR-01"}),
    ("handled", {"result": "已修复"}),
]


def shipped_definition(kind: str) -> dict[str, Any]:
    """The content of a shipped definition file."""
    raw: dict[str, Any] = json.loads((DATA_DIR / f"{kind}.json").read_text(encoding="utf-8"))
    return raw


async def start(env: WorkflowEnvironment, queue: str, definition: dict[str, Any], values: dict[str, Any],
                **extra: Any) -> WorkflowHandle[Any, Any]:
    """Start an instance of ``definition`` for :data:`HOME`."""
    begin = ProcessStart(f"PI-{uuid.uuid4().hex[:8]}", definition, HOME, values, "sq_hs01", **extra)
    return await env.client.start_workflow(ProcessInstanceWorkflow.run, begin, id=begin.instance_id,
                                           task_queue=queue)


async def act(handle: WorkflowHandle[Any, Any], person: Person, action: str, outcome: str = "",
              values: dict[str, Any] | None = None) -> ProcessSnapshot:
    """``person``'s ``action`` on the instance's newest task."""
    snap: ProcessSnapshot = await handle.query(ProcessInstanceWorkflow.snapshot)
    task = snap.instance.tasks[-1].task_id
    result: ProcessSnapshot = await handle.execute_update(
        ProcessInstanceWorkflow.act, ProcessAction(action, person, task, outcome, values or {}))
    return result


async def until(handle: WorkflowHandle[Any, Any], ready: Callable[[ProcessSnapshot], bool]) -> ProcessSnapshot:
    """The snapshot once ``ready`` holds (a new task's deadline comes from an activity, a moment later)."""
    for _ in range(100):
        snap: ProcessSnapshot = await handle.query(ProcessInstanceWorkflow.snapshot)
        if ready(snap):
            return snap
        await asyncio.sleep(0.05)
    raise AssertionError(f"never ready: {snap}")


async def deliberation_to_rating(env: WorkflowEnvironment, queue: str) -> tuple[WorkflowHandle[Any, Any],
                                                                                  ProcessSnapshot]:
    """A deliberation raised, scheduled, decided (asking for a problem event) and handled: it waits
    for the residents' rating."""
    handle = await start(env, queue, shipped_definition("deliberation"), {"matter": "东门路灯不亮"})
    for outcome, form in DELIBERATION_STEPS:
        await act(handle, COMMUNITY, "claim")
        snap = await act(handle, COMMUNITY, "complete", outcome, form)
    return handle, snap
