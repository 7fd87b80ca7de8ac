"""ProcessInstanceWorkflow: one durable workflow per instance of any process definition (issue 14).

The definition travels in the start input (:class:`ProcessStart`), so an instance is pinned to the
version it started with by construction: activating version 2 changes what new instances get, never
this one's history. The moves are :mod:`processes.instance`'s (pure, passed through the sandbox);
this module adds what only a workflow has: people acting through an update (:meth:`act`, whose
validator runs the move on a copy, so a refused move leaves no trace in history), deadlines in working
time (the event lifecycle's ``compute_due`` activity, holidays included), and timers that fire on them:
a reminder at ``remind_at`` of the working hours, then a move named ``on_deadline``, or one warning per
task otherwise, escalated unless the deadline says not (``SUPERVISION_PATCH``); a state's notice is
delivered to the requester (``NOTICE_PATCH``).

After every change the instance is projected into the store (activity ``project_process``: the
instance, its tasks for the inbox, its credits, an audit entry per step), and the problem events a
task asked for (a deliberation's decision, ``Instance.events``) are started through the event
lifecycle's own workflow (activity ``start_process_event``, idempotent by the task). Histories from
before these (``PROJECTION_PATCH``) replay as they ran: nothing was projected then.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from processes.definition import ProcessDefinition, parse
from processes.instance import (
    Instance,
    Person,
    Refused,
    Requester,
    begin,
    cancel,
    check_in,
    claim,
    complete,
    expire,
    supervise,
    withdraw,
)
from processes.messages import ACTIVITY_PROCESS_EVENT, ACTIVITY_PROJECT_PROCESS, ProcessEventRequest, ProcessProjection
from workflows.types import ACTIVITY_DELIVER, ACTIVITY_DUE, DueRequest, Notice

#: The instance is projected into the store, and its events started, from this patch on.
PROJECTION_PATCH = "process-projection"
#: A state's notice (``StateSpec.notice``) is delivered to the requester from this patch on (the
#: definitions of earlier histories had none, so none of them reaches it).
NOTICE_PATCH = "process-notices"
#: A task's reminder (at ``Deadline.remind_at`` of its working hours) and its escalation (a deadline
#: passed that ``escalate``s: the task marked late, for the unit above) from this patch on; before
#: it every passed deadline was a late warning, and there were no reminders.
SUPERVISION_PATCH = "process-reminders"
#: A notice's delivery is retried for about two hours (the console lists the failing ones), then given up.
_DELIVER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5),
                             maximum_attempts=30)
_PROJECT_TIMEOUT = timedelta(seconds=60)
_PROJECT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_EVENT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))

#: The actions :meth:`ProcessInstanceWorkflow.act` takes.
ACTIONS = ("claim", "withdraw", "complete", "check_in", "check_out", "cancel")


@dataclass
class ProcessStart:
    """What starts an instance: its id, the definition's content (pinned), who it is for, the start
    form's values, who started it, and the catalogues its forms offer."""

    instance_id: str
    definition: dict[str, Any]
    requester: Requester
    values: dict[str, Any]
    actor: str
    catalogues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    external_id: str | None = None
    #: The hash of the requester's access key (the web keeps the key's holder, the resident, able to
    #: confirm and rate through the portal); projected, never shown.
    access_hash: str = ""


@dataclass
class ProcessAction:
    """One person's action on an instance: ``action`` (:data:`ACTIONS`) on ``task_id``; for
    ``complete`` the ``outcome`` and the form's ``values``; for a check-in or -out, the volunteer."""

    action: str
    person: Person
    task_id: str = ""
    outcome: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    volunteer: str = ""


@dataclass
class DeadlineWarning:
    """A deadline passed with no move for it: the task, when, and whether it escalated (the task is
    then marked late for the unit above; a deadline the definition does not escalate only warns)."""

    task_id: str
    at: str
    escalated: bool = True


@dataclass
class ProcessSnapshot:
    """What the workflow shows: the instance and the warnings its deadlines raised."""

    instance: Instance
    warnings: list[DeadlineWarning] = field(default_factory=list)
    #: The problem events the instance's tasks started, by task id (empty: refused as a report).
    event_ids: dict[str, str] = field(default_factory=dict)


def apply_action(d: ProcessDefinition, inst: Instance, action: ProcessAction, now: str,
                 catalogues: dict[str, list[dict[str, Any]]]) -> None:
    """Run ``action`` on ``inst`` (raises :class:`Refused`)."""
    who = action.person
    if action.action == "claim":
        claim(d, inst, action.task_id, who, now)
    elif action.action == "withdraw":
        withdraw(d, inst, action.task_id, who, now)
    elif action.action == "complete":
        complete(d, inst, action.task_id, who, action.outcome, action.values, now, catalogues=catalogues)
    elif action.action in ("check_in", "check_out"):
        check_in(d, inst, action.task_id, who, action.volunteer, action.action == "check_out", now)
    elif action.action == "cancel":
        cancel(d, inst, who, now)
    else:
        raise Refused("unknown_action")


@workflow.defn(name="ProcessInstance")
class ProcessInstanceWorkflow:
    """One instance of a process definition; the workflow id is the instance id."""

    @workflow.init
    def __init__(self, start: ProcessStart) -> None:
        self._start = start
        self._d = parse(start.definition)
        self._inst: Instance | None = None
        self._warnings: list[DeadlineWarning] = []
        self._changed = False
        self._event_ids: dict[str, str] = {}
        self._events_asked = 0  # how many of ``Instance.events`` a start was sent for
        self._projected = 0  # the number of the last projection
        self._noticed = 0  # the timeline steps already looked at for notices
        self._remind_at: dict[str, str] = {}  # by task: when its reminder falls ("" once given)
        self._deliveries: list[workflow.ActivityHandle[None]] = []

    async def _project(self) -> None:
        """Write the instance to the store, then start the events its tasks asked for (each once)."""
        if not workflow.patched(PROJECTION_PATCH):
            return
        assert self._inst is not None
        titles = {s.task.kind: s.task.title_zh for s in self._d.states if s.task is not None}
        self._projected += 1
        projection = ProcessProjection(self._inst, self._projected, titles, self._start.actor,
                                       self._start.access_hash, self._start.external_id,
                                       [w.task_id for w in self._warnings if w.escalated])
        await workflow.execute_local_activity(ACTIVITY_PROJECT_PROCESS, projection, result_type=bool,
                                              start_to_close_timeout=_PROJECT_TIMEOUT, retry_policy=_PROJECT_RETRY)
        pending = self._inst.events[self._events_asked:]
        self._events_asked = len(self._inst.events)  # before awaiting: a concurrent update sends none twice
        for task_id, category, description in pending:
            request = ProcessEventRequest(self._inst.instance_id, task_id, category, description, self._inst.requester)
            try:
                self._event_ids[task_id] = await workflow.execute_activity(
                    ACTIVITY_PROCESS_EVENT, request, result_type=str, start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=_EVENT_RETRY)
            except ActivityError:  # refused as a report (e.g. too short): the decision stands, no event
                self._event_ids[task_id] = ""
        self._send_notices()

    def _send_notices(self) -> None:
        """Start the delivery of the notice of each state the instance entered since the last look
        (to a requester with a phone); the deliveries run on while the instance waits, and the
        workflow ends only once they have."""
        assert self._inst is not None
        steps = self._inst.timeline[self._noticed:]
        self._noticed = len(self._inst.timeline)
        phone = self._inst.requester.phone
        for step in steps:
            spec = self._d.state(step.to_state) if step.to_state != step.from_state else None
            if spec is None or spec.notice is None or not phone or not workflow.patched(NOTICE_PATCH):
                continue
            notice = Notice(notice_id=f"{self._inst.instance_id}.N{step.seq}", kind="process", recipient=phone,
                            body=f"【{self._d.name_zh}】{spec.notice.text_zh}", created_at=step.at)
            self._deliveries.append(workflow.start_activity(
                ACTIVITY_DELIVER, notice, start_to_close_timeout=timedelta(seconds=30), retry_policy=_DELIVER_RETRY))

    def _now(self) -> str:
        return workflow.now().isoformat()

    async def _due(self, hours: int, start: str) -> str:
        # Working time depends on holiday data: computed in an activity, kept in history.
        return await workflow.execute_local_activity(
            ACTIVITY_DUE, DueRequest(start=start, hours=hours), result_type=str,
            start_to_close_timeout=timedelta(seconds=10))

    async def _reminder(self, task_id: str, created_at: str) -> str:
        """When the open task's reminder falls ("" when given, or none: no deadline, or history from
        before :data:`SUPERVISION_PATCH`); in working time, computed once per task."""
        if task_id not in self._remind_at:
            assert self._inst is not None
            spec = self._d.state(self._inst.state).task
            deadline = spec.deadline if spec is not None else None
            if deadline is None or not workflow.patched(SUPERVISION_PATCH):
                self._remind_at[task_id] = ""
            else:
                self._remind_at[task_id] = await self._due(max(1, round(deadline.hours * deadline.remind_at)),
                                                           created_at)
        return self._remind_at[task_id]

    async def _set_deadline(self) -> None:
        """Give the task the instance's state just opened its deadline, if the definition sets one."""
        assert self._inst is not None
        task = self._inst.open_task()
        spec = self._d.state(self._inst.state).task
        if task is not None and task.due_at is None and spec is not None and spec.deadline is not None:
            task.due_at = await self._due(spec.deadline.hours, task.created_at)

    @workflow.run
    async def run(self, start: ProcessStart) -> ProcessSnapshot:
        """Begin the instance, then wait for people and deadlines until a final state."""
        try:
            self._inst = begin(self._d, start.instance_id, start.requester, start.values, self._now(),
                               start.actor, catalogues=start.catalogues)
        except Refused as exc:  # the start form was checked at the entrance; a direct start is checked here
            raise ApplicationError(str(exc), type="invalid_input", non_retryable=True) from exc
        await self._set_deadline()
        await self._project()
        while self._inst.ended_at is None:
            task = self._inst.open_task()
            due = task.due_at if task is not None and not any(w.task_id == task.task_id for w in self._warnings) \
                else None
            self._changed = False
            if due is None:
                await workflow.wait_condition(lambda: self._changed)
                continue
            assert task is not None
            remind = await self._reminder(task.task_id, task.created_at)
            if remind and datetime.fromisoformat(remind) < datetime.fromisoformat(due):
                try:  # first the reminder (a mark in the timeline), then the deadline itself
                    wait = datetime.fromisoformat(remind) - workflow.now()
                    await workflow.wait_condition(lambda: self._changed, timeout=max(wait, timedelta(seconds=1)))
                except TimeoutError:
                    if self._inst.open_task() is task:
                        self._remind_at[task.task_id] = ""
                        supervise(self._inst, task.task_id, "remind", self._now())
                        await self._project()
                continue
            wait = datetime.fromisoformat(due) - workflow.now()
            try:
                await workflow.wait_condition(lambda: self._changed, timeout=max(wait, timedelta(seconds=1)))
            except TimeoutError:
                if self._inst.open_task() is not task:  # acted on as the deadline fell: nothing is late
                    continue
                if not expire(self._d, self._inst, task.task_id, self._now()):
                    self._warnings.append(self._late(task.task_id))
                await self._set_deadline()
                await self._project()
        await workflow.wait_condition(workflow.all_handlers_finished)
        for delivery in self._deliveries:
            try:
                await delivery
            except ActivityError:  # given up after its retries: the outbox row keeps the last error
                workflow.logger.warning("a notice of %s was not delivered", self._inst.instance_id)
        return self.snapshot()

    def _late(self, task_id: str) -> DeadlineWarning:
        """The warning of a passed deadline: escalated (a mark in the timeline, the task late) unless
        the definition says the deadline does not escalate (before the patch: always, unmarked)."""
        assert self._inst is not None
        if not workflow.patched(SUPERVISION_PATCH):
            return DeadlineWarning(task_id, self._now())
        spec = self._d.state(self._inst.state).task
        escalates = spec is None or spec.deadline is None or spec.deadline.escalate
        if escalates:
            supervise(self._inst, task_id, "escalate", self._now())
        return DeadlineWarning(task_id, self._now(), escalated=escalates)

    @workflow.query
    def snapshot(self) -> ProcessSnapshot:
        """The instance as it stands."""
        assert self._inst is not None
        return ProcessSnapshot(self._inst, list(self._warnings), dict(self._event_ids))

    @workflow.update
    async def act(self, action: ProcessAction) -> ProcessSnapshot:
        """One person's action (validated first: a refused one is not recorded)."""
        await workflow.wait_condition(lambda: self._inst is not None)
        assert self._inst is not None
        apply_action(self._d, self._inst, action, self._now(), self._start.catalogues)
        await self._set_deadline()
        self._changed = True
        await self._project()
        return self.snapshot()

    @act.validator
    def _check(self, action: ProcessAction) -> None:
        if self._inst is None:
            raise ApplicationError("the instance is starting", type="not_now")
        try:  # on a copy: a validator must not change the workflow's state
            apply_action(self._d, copy.deepcopy(self._inst), action, self._now(), self._start.catalogues)
        except Refused as exc:
            raise ApplicationError(str(exc), type=exc.code) from exc
