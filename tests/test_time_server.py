"""The shared time-skipping server stays usable whatever a test leaves behind (tests/conftest.py):
a workflow task nobody serves stops the server skipping time for every later test, so the
``time_env`` fixture terminates what each test started and replaces a server that no longer skips."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.client import WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.conftest import _start_time_server, _TimeServer, clean_after_test, skips_time


@workflow.defn(name="TimeServerTestSleeper", sandboxed=False)
class Sleeper:
    def __init__(self) -> None:
        self.pokes = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=30))

    @workflow.update
    def poke(self) -> int:
        self.pokes += 1
        return self.pokes


async def test_a_task_nobody_serves_stops_time_and_the_server_is_replaced() -> None:
    server = _TimeServer(await _start_time_server())
    try:
        assert await skips_time(server.env)
        # A workflow on a queue no worker polls: its first workflow task stays outstanding.
        orphan = await server.env.client.start_workflow(Sleeper.run, id=uuid.uuid4().hex, task_queue="nobody")
        assert not await skips_time(server.env, within=3)
        await orphan.terminate()
        assert not await skips_time(server.env, within=3), "terminating releases nothing (the reason to replace)"
        await server.replace()
        assert server.replaced == 1
        assert await skips_time(server.env)
    finally:
        await server.env.shutdown()


async def test_the_test_client_records_every_start(time_env: WorkflowEnvironment) -> None:
    queue = f"q-{uuid.uuid4().hex}"
    async with Worker(time_env.client, task_queue=queue, workflows=[Sleeper]):
        plain = await time_env.client.start_workflow(Sleeper.run, id=f"plain-{queue}", task_queue=queue)
        op = WithStartWorkflowOperation(Sleeper.run, id=f"uws-{queue}", task_queue=queue,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        assert await time_env.client.execute_update_with_start_workflow(Sleeper.poke, start_workflow_operation=op) == 1
        started = time_env.started  # type: ignore[attr-defined]
        assert started == {plain.id, f"uws-{queue}"}
        assert (await plain.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_what_a_test_leaves_running_is_terminated_when_it_ends(time_env: WorkflowEnvironment) -> None:
    server = _TimeServer(time_env._env)  # type: ignore[attr-defined]
    queue = f"q-{uuid.uuid4().hex}"
    async with Worker(time_env.client, task_queue=queue, workflows=[Sleeper]):
        left = await time_env.client.start_workflow(Sleeper.run, id=f"left-{queue}", task_queue=queue)
        await left.execute_update(Sleeper.poke)  # its first task is done: it now waits on its timer
    await clean_after_test(server, time_env.client, {left.id})
    assert (await left.describe()).status == WorkflowExecutionStatus.TERMINATED
    assert server.replaced == 0  # a timer nobody waits for does not stop time
