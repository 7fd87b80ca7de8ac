"""The Temporal worker: runs EventLifecycle workflows, the PeriodReport reports, the WebhookDelivery
senders and their activities on the task queue.

Usage: ``python worker.py`` (settings from ``WULIAN_*`` environment variables).
"""

from __future__ import annotations

import asyncio
import compileall
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.delivery import Adapter, adapter_for
from activities.lifecycle import LifecycleActivities
from activities.processes import ProcessActivities
from activities.reports import ReportActivities
from activities.webhooks import WebhookActivities, wake_active_retrying, waker
from store.db import Database
from workflows.event_lifecycle import EventLifecycle
from workflows.period_report import PeriodReport
from workflows.process_instance import ProcessInstanceWorkflow
from workflows.webhook_delivery import WebhookDelivery
from wulian import temporal_connect
from wulian.logs import configure_logging
from wulian.report_schedules import ensure_report_schedules
from wulian.settings import Settings, get_settings
from wulian.telemetry import interceptors, worker_runtime

log = logging.getLogger("wulian.worker")


#: Modules the sandbox shares with the worker instead of importing them again for every workflow
#: instance: libraries without state, and every pure module of ``workflows/`` (the data types, the
#: input rules, the state machine and the action policy), which hold constants, dataclasses and
#: functions only. Re-importing them per instance cost a third of the worker's time and most of its
#: memory per cached workflow (issue 13). They go through together: a class the workflow checks with
#: ``isinstance`` (``EventReport``) must be the same object in the workflow, in ``workflows.inputs``
#: and in the data converter, which is true when all of them are the worker's own modules. Only the
#: workflow modules themselves are loaded per instance, as the sandbox requires, which is why
#: ``workflows.event_lifecycle`` holds only the class and its body is ``workflows.event_core``.
PASSTHROUGH = ("transitions", "six", "phonenumbers", "workflows.types", "workflows.inputs",
               "workflows.lifecycle", "workflows.policy", "workflows.event_core", "processes")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, with the modules of :data:`PASSTHROUGH` passed through, and the workflow modules
    compiled to bytecode (:func:`compile_workflows`)."""
    compile_workflows()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def compile_workflows() -> None:
    """Write the bytecode of ``workflows/*.py`` (``__pycache__``) unless it is current.

    The sandbox loads each workflow module again for every new (or evicted) workflow instance; with
    no bytecode on disk, as under ``PYTHONDONTWRITEBYTECODE=1`` (set on the development machines
    here), that meant compiling ``event_lifecycle.py`` from source each time: 29% of the worker's
    time at 8 concurrent reports (py-spy, bench/README.md "Throughput"). Python reads bytecode that
    is there whatever that variable says; it only stops Python from writing it, which ``compileall``
    does regardless. A folder that cannot be written leaves things as they were (slower, not wrong).
    """
    compileall.compile_dir(str(Path(workflows.__file__).parent), quiet=2, maxlevels=0)


@dataclass(frozen=True)
class StoreLimits:
    """How much store work a worker takes on at once: each running store operation holds one
    connection, so together they never need more than the pool has."""

    local_activities: int  # projections, first routings (reads) and the store-free deadline computations
    activities: int  # deliveries (outbox writes), reports, fallback routings


def store_limits(connections: int) -> StoreLimits:
    """The worker's concurrency for a store pool of ``connections``: three quarters to local
    activities (projections, and the routing of new events, which runs in their first workflow
    task), the rest (at least one) to activities (deliveries, reports, re-routing that fell back).

    Beyond it, the Temporal worker leaves the work queued (local activities in the worker, activities
    on the server) instead of letting it wait for a connection with its timeout running: under
    overload, 100 concurrent projections on a pool of 15 timed out waiting and were retried for good,
    and nothing reached the store (issue 9, finding 12).
    """
    local = max(1, min(connections - 1, (connections * 3) // 4))
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
        workflows=[EventLifecycle, PeriodReport, WebhookDelivery, ProcessInstanceWorkflow],
        activities=[*acts.all(), *ReportActivities(db).all(), *hooks.all(),  # type: ignore[list-item]
                    *ProcessActivities(db, client, task_queue, engines=acts.engines).all()],  # type: ignore[list-item]
        workflow_runner=workflow_runner(),
        max_concurrent_activities=limits.activities,
        max_concurrent_local_activities=limits.local_activities,
        interceptors=interceptors(),  # activity metrics and log scope (wulian/telemetry.py)
        max_cached_workflows=settings.worker_cached_workflows,
        max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
        max_concurrent_activity_task_polls=settings.worker_activity_pollers,
    )


async def run(settings: Settings) -> None:
    """Connect, serve until SIGINT/SIGTERM, then shut down gracefully."""
    db = open_store(settings)
    await db.upgrade()  # normally a no-op: the launcher or `wulian db upgrade` ran first
    # The runtime serves the worker's Prometheus endpoint (wulian/telemetry.py).
    client = await temporal_connect.connect(settings, runtime=worker_runtime(settings))
    await ensure_report_schedules(client, settings.temporal_task_queue)  # normally there: the launcher made them
    worker = build_worker(client, db, settings.temporal_task_queue, settings=settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on task queue %s", settings.temporal_task_queue)
    async with worker:
        # Changes queued while no worker ran (or whose wake-up was lost) are sent now, or once the
        # store answers again: a store outage at this moment once ended the worker for good.
        waking = asyncio.create_task(wake_active_retrying(client, db, settings.temporal_task_queue))
        await stop.wait()
        waking.cancel()
    await db.dispose()


if __name__ == "__main__":
    configure_logging(get_settings(), "worker")
    asyncio.run(run(get_settings()))
