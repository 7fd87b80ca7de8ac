"""The activities the ProcessInstance workflow calls (issue 14): its projection into the store, and
the problem events a deliberation's decision asks for (started through the event lifecycle's own
workflow, so they are routed by the responsibility list like any report)."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from processes.messages import (
    ACTIVITY_PROCESS_EVENT,
    ACTIVITY_PROJECT_PROCESS,
    ProcessEventRequest,
    ProcessProjection,
)
from store.db import Database
from store.process_projection import apply_process
from workflows.event_lifecycle import EventLifecycle
from workflows.inputs import report_problems
from workflows.types import EventReport, Location, Reporter
from wulian.rule_registry import EngineRegistry

log = logging.getLogger("wulian.activities")


class ProcessActivities:
    """Activities bound to one store and one Temporal client (to start events)."""

    def __init__(self, db: Database, client: Client, task_queue: str, engines: EngineRegistry | None = None) -> None:
        self.db = db
        self.client = client
        self.task_queue = task_queue
        self.engines = engines or EngineRegistry(db)

    @activity.defn(name=ACTIVITY_PROJECT_PROCESS)
    async def project_process(self, projection: ProcessProjection) -> bool:
        """Upsert the instance's read model; a stale or repeated projection changes nothing."""
        return await apply_process(self.db, projection)

    @activity.defn(name=ACTIVITY_PROCESS_EVENT)
    async def start_process_event(self, request: ProcessEventRequest) -> str:
        """Start the problem event (idempotent: its external id is the instance's task); its id."""
        from web.commands import event_id_for  # the one derivation of an event's id from its external id

        category = request.category.strip()
        if category and (await self.engines.active()).category(category) is None:
            category = ""  # not on the active list: the event goes to triage rather than nowhere
        report = EventReport(
            category=category, description=request.description[:2000], source="deliberation",
            external_id=request.task_id,  # "<instance>.T<n>": one event per task, however often asked
            location=Location(grid=request.requester.grid or None, address=None),
            reporter=Reporter(name=request.requester.name[:50], phone=request.requester.phone))
        problems = report_problems(report)
        if problems:  # e.g. a description too short to be a report: said in the instance's history
            raise ApplicationError("; ".join(f"{p.field}: {p.code}" for p in problems), type="invalid_input",
                                   non_retryable=True)
        event_id = event_id_for(report)
        try:
            await self.client.start_workflow(EventLifecycle.run, report, id=event_id, task_queue=self.task_queue,
                                             id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        except WorkflowAlreadyStartedError:
            log.info("process %s: event %s was started before", request.instance_id, event_id)
        return event_id

    def all(self) -> list[object]:
        """The activity callables, for a Worker."""
        return [self.project_process, self.start_process_event]
