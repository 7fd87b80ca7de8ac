"""A typed client for the Temporal contract of Wulian's events (for integrations written in Python).

An integration that speaks Temporal starts one ``EventLifecycle`` workflow per report; this client
does it the way every other entrance does:

- the report is checked by the one definition of a valid report (:mod:`workflows.inputs`) *before*
  anything is started: an invalid report raises :class:`InvalidReport`, which lists every problem;
- the workflow id is derived from ``source`` + ``external_id`` by the web's own function
  (:func:`web.commands.event_id_for`), with the same id-reuse policy as the API, so starting the
  same external id again is the same event (``duplicate=True``), never an error or a second event;
- the receipt code and tracking key are left empty: the workflow draws them (activity
  ``issue_receipt``); they never travel through an integration.

Example (the README runs it in a test)::

    client = await WulianClient.connect("127.0.0.1:7233", task_queue="wulian-events")
    started = await client.start_report(
        EventReport(category="SR-01", description="小区门口垃圾堆积", source="hotline",
                    location=Location(address="城北路12号")),
        external_id="12345-20261202-0001")
    snapshot = await client.wait_dispatched(started.event_id, timeout=30)
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from processes.instance import Requester
from store.db import Database
from web.commands import event_id_for
from workflows.event_lifecycle import EventLifecycle
from workflows.inputs import InvalidInput, Problem, camera_of, checked_report
from workflows.types import EventReport, EventSnapshot
from wulian import temporal_connect
from wulian.process_starts import InvalidProcessStart, StartedProcess

__all__ = ["EventNotFound", "InvalidProcessStart", "InvalidReport", "StartedProcess", "StartedReport",
           "WulianClient"]


class InvalidReport(InvalidInput):
    """A report refused before anything was started; ``problems`` lists every reason (field, code,
    limit) and the message says them all in English."""


class EventNotFound(LookupError):
    """No event (workflow) with this id."""


@dataclass(frozen=True)
class StartedReport:
    """The event a report started, or the existing event with the same source and external id."""

    event_id: str
    #: True when an event with this source and external id existed already (nothing was started).
    duplicate: bool = False


class WulianClient:
    """Start reports and read events over a Temporal client (see the module's docstring)."""

    def __init__(self, client: Client, *, task_queue: str = "wulian-events") -> None:
        self.temporal = client
        self.task_queue = task_queue

    @classmethod
    async def connect(cls, address: str | None = None, *, namespace: str | None = None,
                      task_queue: str | None = None) -> WulianClient:
        """Connect to Temporal; what is not given comes from the platform's settings (``WULIAN_*``)."""
        from wulian.settings import get_settings

        settings = get_settings()
        client = await temporal_connect.connect(settings, address=address, namespace=namespace)
        return cls(client, task_queue=task_queue or settings.temporal_task_queue)

    @staticmethod
    def checked(report: EventReport, *, external_id: str | None = None) -> EventReport:
        """A normalised copy of ``report`` with ``external_id`` set, or :class:`InvalidReport` with every
        problem. Nothing is started; :meth:`start_report` calls it first."""
        # A copy (the check normalises in place): the caller's report stays as it was.
        report = copy.copy(report)
        report.location, report.reporter = copy.copy(report.location), copy.copy(report.reporter)
        if external_id is not None:
            if report.external_id not in (None, external_id):
                raise InvalidReport([Problem("external_id", "choice", f"{external_id!r} (given twice, differently)")])
            report.external_id = external_id
        try:
            return checked_report(report)
        except InvalidInput as exc:
            raise InvalidReport(exc.problems) from None

    async def start_report(self, report: EventReport, *, external_id: str | None = None) -> StartedReport:
        """Start the event of ``report`` (checked first: :class:`InvalidReport`, nothing started).

        With an external id (argument or ``report.external_id``) the event id is derived from source and
        external id: the same again is the same event, ``duplicate=True``, also after its loop has ended.
        Without one, every call starts a new event."""
        report = self.checked(report, external_id=external_id)
        if camera_of(report) is not None:
            # A camera's alarms join its open event of the category (an occurrence, never a new event),
            # which needs the platform's store to decide: they come in through the API or Open311.
            raise InvalidReport([Problem("camera_id", "choice", "camera alarms: POST /api/events or Open311")])
        event_id = event_id_for(report)
        try:
            await self.temporal.start_workflow(
                EventLifecycle.run, report, id=event_id, task_queue=self.task_queue,
                # As the API: only a run that failed or was terminated may be started again.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            )
        except WorkflowAlreadyStartedError:
            return StartedReport(event_id, duplicate=True)
        return StartedReport(event_id)

    async def start_process(self, kind: str, values: dict[str, Any], *, requester: Requester,
                            external_id: str | None = None, actor: str = "integration",
                            db: Database | None = None) -> StartedProcess:
        """Start an instance of the process ``kind`` (代办, 微心愿, ... or one an administrator added) on
        its active definition, read from the platform's store (``db``, else the configured one), with
        the start form ``values`` for ``requester``. Checked first (:class:`InvalidProcessStart`, every
        problem; an unknown kind is a problem of ``kind``); the same ``external_id`` again is the same
        instance (``duplicate=True``)."""
        from store import process_versions
        from wulian.process_starts import start_process
        from wulian.settings import get_settings

        store = db or Database(get_settings().db_url)
        try:
            definition = await process_versions.active_definition(store, kind)
        finally:
            if db is None:
                await store.dispose()
        if definition is None:
            raise InvalidProcessStart([Problem("kind", "choice", "an active process kind")])
        return await start_process(self.temporal, self.task_queue, definition, requester, values, actor,
                                   external_id=external_id)

    async def snapshot(self, event_id: str) -> EventSnapshot:
        """The event's whole live state (the workflow's query; a closed event's last state)."""
        handle = self.temporal.get_workflow_handle_for(EventLifecycle.run, event_id)
        try:
            return await handle.query(EventLifecycle.snapshot)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise EventNotFound(event_id) from None
            raise

    async def wait_dispatched(self, event_id: str, timeout: float = 30.0) -> EventSnapshot:  # noqa: ASYNC109
        """The snapshot once the event is routed and its task is in the store (the API's 201), or
        ``TimeoutError`` after ``timeout`` seconds (the event goes on)."""
        handle = self.temporal.get_workflow_handle_for(EventLifecycle.run, event_id)
        try:
            return await asyncio.wait_for(handle.execute_update(EventLifecycle.wait_dispatched), timeout)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise EventNotFound(event_id) from None
            raise
