"""The Temporal worker: runs EventLifecycle workflows and their activities on the task queue.

Usage: ``python worker.py`` (settings from ``WULIAN_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.delivery import Adapter, adapter_for
from activities.lifecycle import LifecycleActivities
from store.db import Database
from workflows.event_lifecycle import EventLifecycle
from wulian.settings import Settings, get_settings

log = logging.getLogger("wulian.worker")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with ``transitions`` and ``six`` passed through (re-importing them halves throughput)."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules("transitions", "six")
    return SandboxedWorkflowRunner(restrictions=restrictions)


def build_worker(client: Client, db: Database, task_queue: str, delivery: Adapter | None = None,
                 settings: Settings | None = None) -> Worker:
    """A worker for the lifecycle workflow and activities (used by tests too, with their settings)."""
    settings = settings or get_settings()
    acts = LifecycleActivities(db, delivery=delivery or adapter_for(settings.notify_webhook_url),
                               secret=settings.secret(), public_url=settings.public_base_url)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EventLifecycle],
        activities=acts.all(),  # type: ignore[arg-type]
        workflow_runner=workflow_runner(),
    )


async def run(settings: Settings) -> None:
    """Connect, serve until SIGINT/SIGTERM, then shut down gracefully."""
    db = Database(settings.db_url)
    await db.upgrade()  # normally a no-op: the launcher or `wulian db upgrade` ran first
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    worker = build_worker(client, db, settings.temporal_task_queue, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on task queue %s", settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    await db.dispose()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run(get_settings()))
