"""Record the histories that tests/test_replay.py replays (run by hand when adding a scenario):

    .venv/bin/python -m tests.record_histories              (every scenario)
    .venv/bin/python -m tests.record_histories processes    (only the process workflow's)

Saved histories are the contract for events in flight: after a change of the workflow code, the
replay test fails unless the change is safe for them (use ``workflow.patched`` for such changes).
Each recording is kept under its own tag (``RECORDING``): older files are never overwritten, since
events started by older code are still in flight somewhere. Set a new tag before recording again.

Scenarios driven by updates are recorded on the real dev server; the weekend scenario needs time
skipping. Each file keeps the workflow id with the history: the workflow derives the event id,
receipt code and task ids from it, so a replay under another id is (rightly) nondeterministic.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from processes.definition import catalogue
from store.db import Database
from store.seed import load_organisation
from tests.conftest import binary, make_db
from tests.process_scenarios import GRID_WORKER, deliberation_to_rating, shipped_definition, until
from tests.process_scenarios import act as process_act
from tests.process_scenarios import start as process_start
from tests.scenarios import happy_path, integration_followed, overdue_over_a_weekend, return_and_rework
from worker import build_worker
from wulian.temporal_setup import ensure_search_attributes

OUT = Path(__file__).parent / "histories"
#: The tag of this recording (files ``<scenario>-<tag>.json``); the first recording has none.
RECORDING = "2026-12h"


async def save(name: str, handle: WorkflowHandle, *, running: bool = True) -> None:
    """Stop the workflow where it is (when ``running``) and save its history."""
    if running:
        await handle.terminate("recorded")
    history = await handle.fetch_history()
    # The workflow id is part of the workflow's input (event id, receipt code, task ids): keep it.
    document = {"workflow_id": history.workflow_id, "history": json.loads(history.to_json())}
    path = OUT / f"{name}-{RECORDING}.json"
    if path.exists():
        raise SystemExit(f"{path} exists: set a new RECORDING tag (never overwrite a saved history)")
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    print(f"recorded {name}: {len(history.events)} events")


async def record_on_dev_server(db: Database) -> None:
    env = await WorkflowEnvironment.start_local(dev_server_existing_path=binary("temporal"), ui=False)
    await ensure_search_attributes(env.client, "default")
    tq = f"record-{uuid.uuid4().hex[:6]}"
    async with build_worker(env.client, db, tq):
        for name, scenario in (("happy_path", happy_path), ("return_and_rework", return_and_rework),
                               ("integration_followed", integration_followed)):
            handle = await scenario(env, tq)
            await asyncio.sleep(1)  # let the closing notices be delivered
            await save(name, handle)
    await env.shutdown()


async def record_with_time_skipping(db: Database) -> None:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    await ensure_search_attributes(env.client, "default")
    tq = f"record-{uuid.uuid4().hex[:6]}"
    async with build_worker(env.client, db, tq):
        handle, _ = await overdue_over_a_weekend(env, tq)
        await env.sleep(timedelta(days=6))
        await save("overdue_over_a_weekend", handle)
    await env.shutdown()


async def record_processes(db: Database) -> None:
    """The generic process workflow: a deliberation through its loop, closed by its rating window's end
    (time skipping), and a proxy service whose first deadline passed with a warning."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    await ensure_search_attributes(env.client, "default")  # the deliberation's decision starts an event
    tq = f"record-{uuid.uuid4().hex[:6]}"
    async with build_worker(env.client, db, tq):
        handle, _ = await deliberation_to_rating(env, tq)
        for _ in range(16):  # in half days: one long skip over the started event's timers times out
            await env.sleep(timedelta(hours=12))
        await handle.result()
        await save("process_deliberation", handle, running=False)
        handle = await process_start(env, tq, shipped_definition("proxy_service"),
                                     {"item": "PS-03", "phone": "13800000000"},
                                     catalogues={"proxy_items": catalogue("proxy_items")})
        await until(handle, lambda s: s.instance.tasks[0].due_at is not None)
        await env.sleep(timedelta(days=3))
        await process_act(handle, GRID_WORKER, "claim")
        await process_act(handle, GRID_WORKER, "complete", "accept")
        await save("process_proxy_service", handle)
    await env.shutdown()


async def main(which: str = "all") -> None:
    """Record every scenario, or (``processes``) only the process workflow's."""
    db = await make_db("sqlite", Path(tempfile.mkdtemp()))
    await load_organisation(db)
    if which == "all":
        await record_on_dev_server(db)
        await record_with_time_skipping(db)
    await record_processes(db)
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:2]))
