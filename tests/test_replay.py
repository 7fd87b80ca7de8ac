"""Determinism: the current workflow code replays saved histories, and every workflow task of the
update-driven scenarios is replayed from the server's history by a worker without a cache."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.lifecycle import LifecycleActivities
from store.db import Database
from tests.scenarios import happy_path, return_and_rework
from worker import workflow_runner
from workflows.event_lifecycle import EventLifecycle
from workflows.process_instance import ProcessInstanceWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_at_least_three_histories() -> None:
    assert len(HISTORIES) >= 3
    # The generic process workflow's too (issue 14): a loop closed by its deadline, and a warning.
    assert {p.stem.split("-")[0] for p in HISTORIES} >= {"process_deliberation", "process_proxy_service"}


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    document = json.loads(path.read_bytes())  # noqa: ASYNC240 - a small local file
    history = WorkflowHistory.from_json(document["workflow_id"], document["history"])
    replayer = Replayer(workflows=[EventLifecycle, ProcessInstanceWorkflow], workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@pytest.mark.parametrize("scenario", [happy_path, return_and_rework], ids=["happy_path", "return_and_rework"])
async def test_every_workflow_task_replays_from_history(dev_env: WorkflowEnvironment, org_db: Database,
                                                        scenario) -> None:  # type: ignore[no-untyped-def]
    """With no workflow cache, the worker rebuilds each event from its full history on every task:
    any nondeterminism would fail the workflow task and the scenario would not reach its end."""
    tq = f"nocache-{uuid.uuid4().hex[:8]}"
    acts = LifecycleActivities(org_db)
    async with Worker(dev_env.client, task_queue=tq, workflows=[EventLifecycle], activities=acts.all(),
                      workflow_runner=workflow_runner(), max_cached_workflows=0):
        handle = await scenario(dev_env, tq)
        snap = await handle.query(EventLifecycle.snapshot)
        assert snap.state == "closed"
        await handle.terminate("test over")
