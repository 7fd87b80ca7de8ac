"""The Temporal worker: runs EventLifecycle workflows, the PeriodReport reports, the WebhookDelivery
senders and their activities on the task queue.

Usage: ``python worker.py`` (settings from ``WULIAN_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.delivery import Adapter, adapter_for
from activities.lifecycle import LifecycleActivities
from activities.reports import ReportActivities
from activities.webhooks import WebhookActivities, wake_active, waker
from store.db import Database
from workflows.event_lifecycle import EventLifecycle
from workflows.period_report import PeriodReport
from workflows.webhook_delivery import WebhookDelivery
from wulian.logs import configure_logging
from wulian.report_schedules import ensure_report_schedules
from wulian.settings import Settings, get_settings
from wulian.telemetry import interceptors, worker_runtime

log = logging.getLogger("wulian.worker")


#: Modules the sandbox shares with the worker instead of importing them again for every workflow run
#: (re-importing ``transitions`` halved throughput): libraries without state, and the pure modules of
#: the rules (``workflows.policy`` and the state machine it asks), which hold constants and functions only
#: and hand out no classes a workflow checks with ``isinstance`` (``workflows.inputs`` does: it must not be
#: passed through, or the sandbox's ``EventReport`` would not be the one it checks against).
PASSTHROUGH = ("transitions", "six", "phonenumbers", "workflows.lifecycle", "workflows.policy")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with the modules of :data:`PASSTHROUGH` passed through."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


@dataclass(frozen=True)
class StoreLimits:
    """How much store work a worker takes on at once: each running store operation holds one
    connection, so together they never need more than the pool has."""

    local_activities: int  # projections (and the store-free deadline computations)
    activities: int  # routing (reads) and deliveries (outbox writes)


def store_limits(connections: int) -> StoreLimits:
    """The worker's concurrency for a store pool of ``connections``: half of it each way.

    Beyond it, the Temporal worker leaves the work queued (local activities in the worker, activities
    on the server) instead of letting it wait for a connection with its timeout running: under
    overload, 100 concurrent projections on a pool of 15 timed out waiting and were retried for good,
    and nothing reached the store (issue 9, finding 12).
    """
    local = max(1, connections // 2)
    return StoreLimits(local_activities=local, activities=max(1, connections - local))


def open_store(settings: Settings) -> Database:
    """The worker's store: a fixed pool of ``settings.worker_store_connections``."""
    return Database(settings.db_url, connections=settings.worker_store_connections)


def build_worker(client: Client, db: Database, task_queue: str, delivery: Adapter | None = None,
                 settings: Settings | None = None) -> Worker:
    """A worker for the lifecycle and report workflows and their activities (used by tests too, with
    their settings), its store work limited to what ``db``'s pool serves."""
    settings = settings or get_settings()
    acts = LifecycleActivities(db, delivery=delivery or adapter_for(settings.notify_webhook_url),
                               secret=settings.secret(), public_url=settings.public_base_url,
                               on_changes=waker(client, task_queue))
    hooks = WebhookActivities(db, settings, secret=settings.secret())
    limits = store_limits(db.connections)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EventLifecycle, PeriodReport, WebhookDelivery],
        activities=[*acts.all(), *ReportActivities(db).all(), *hooks.all()],  # type: ignore[list-item]
        workflow_runner=workflow_runner(),
        max_concurrent_activities=limits.activities,
        max_concurrent_local_activities=limits.local_activities,
        interceptors=interceptors(),  # activity metrics and log scope (wulian/telemetry.py)
    )


async def run(settings: Settings) -> None:
    """Connect, serve until SIGINT/SIGTERM, then shut down gracefully."""
    db = open_store(settings)
    await db.upgrade()  # normally a no-op: the launcher or `wulian db upgrade` ran first
    # The runtime serves the worker's Prometheus endpoint (wulian/telemetry.py).
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace,
                                  runtime=worker_runtime(settings))
    await ensure_report_schedules(client, settings.temporal_task_queue)  # normally there: the launcher made them
    worker = build_worker(client, db, settings.temporal_task_queue, settings=settings)
    # Changes queued while no worker ran (or whose wake-up was lost) are sent now.
    await wake_active(client, db, settings.temporal_task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on task queue %s", settings.temporal_task_queue)
    async with worker:
        await stop.wait()
    await db.dispose()


if __name__ == "__main__":
    configure_logging(get_settings(), "worker")
    asyncio.run(run(get_settings()))
