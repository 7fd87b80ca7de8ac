"""EventLifecycle: one durable workflow per event, from intake to close.

Deterministic: no I/O, clocks or randomness here. Time comes from ``workflow.now()``, routing
and store writes are activities called by name, and every human action is an update whose
validator rejects illegal or conflicting actions before anything changes.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ApplicationError

from workflows.lifecycle import TASK_KIND_OF_STATE, IllegalTransition, Lifecycle, State
from workflows.types import (
    ACTIVITY_DUE,
    ACTIVITY_PROJECT,
    ACTIVITY_ROUTE,
    RATINGS,
    Actor,
    ClaimCommand,
    CompleteCommand,
    Decision,
    DueRequest,
    EventReport,
    EventSnapshot,
    Notice,
    RateCommand,
    RoutingRequest,
    Task,
    TaskView,
    TimelineEntry,
    TriageCommand,
    receipt_code_for,
)

# Error types carried to clients; web maps them to HTTP status codes in one place.
CONFLICT = "Conflict"
FORBIDDEN = "Forbidden"
NOT_FOUND = "NotFound"
INVALID = "Invalid"

STAGE_KEY = SearchAttributeKey.for_keyword("WulianStage")
UNIT_KEY = SearchAttributeKey.for_keyword("WulianUnit")
CATEGORY_KEY = SearchAttributeKey.for_keyword("WulianCategory")
RECEIPT_KEY = SearchAttributeKey.for_keyword("WulianReceipt")

# Store writes are short idempotent upserts: retried until the store is back, never given up.
_PROJECT_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10))
_ROUTE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30))

SYSTEM = Actor(username="system", display_name="系统", kind="system")
TIMER = Actor(username="timer", display_name="计时器", kind="timer")


def _reject(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="EventLifecycle")
class EventLifecycle:
    """The closed loop of one event: intake → dispatch → handling → verification → feedback → close."""

    def __init__(self) -> None:
        self._machine = Lifecycle()
        self._snap: EventSnapshot | None = None
        self._rated = False

    # ---------------------------------------------------------------- main line
    @workflow.run
    async def run(self, report: EventReport) -> EventSnapshot:
        """Drive the event through its lifecycle; the result is the final snapshot."""
        info = workflow.info()
        now = self._now()
        self._snap = EventSnapshot(
            event_id=info.workflow_id,
            receipt_code=receipt_code_for(info.workflow_id),
            report=report,
            state=self._machine.current.value,
            stage=self._machine.stage.value,
            created_at=now,
        )
        reporter = Actor(
            username=report.reporter.name or report.source,
            display_name=report.reporter.name,
            kind="reporter",
        )
        self._log("report", reporter, note=report.description[:200])
        await self._project()

        decision = await workflow.execute_activity(
            ACTIVITY_ROUTE,
            RoutingRequest(event_id=info.workflow_id, report=report),
            result_type=Decision,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_ROUTE_RETRY,
        )
        self._apply_decision(decision)
        await self._project()

        # Everything else is driven by updates; the main line only keeps the feedback timer.
        while self.snap.state != State.CLOSED:
            await workflow.wait_condition(lambda: self.snap.state in (State.FEEDBACK, State.CLOSED))
            if self.snap.state == State.FEEDBACK:
                await self._await_rating()
        # Let a running update (e.g. the rating that closed the event) finish its projection.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.snap

    async def _await_rating(self) -> None:
        """Wait for the reporter's rating; none within the window counts as accepted."""
        decision = self.snap.decision
        hours = (decision.deadline_hours.get("rating_window", 24) if decision else 24)
        due = await self._due(hours)
        timeout = max(timedelta(seconds=1), datetime.fromisoformat(due) - workflow.now())
        try:
            await workflow.wait_condition(lambda: self._rated, timeout=timeout)
        except TimeoutError:
            pass
        if not self._rated and self.snap.state == State.FEEDBACK:
            self._move("accept_by_default", TIMER, note="评价期满,默认满意")
            self._close()
            await self._project()

    # ---------------------------------------------------------------- queries
    @workflow.query
    def snapshot(self) -> EventSnapshot:
        """The live state of the event."""
        return self.snap

    # ---------------------------------------------------------------- updates
    @workflow.update
    async def wait_dispatched(self) -> EventSnapshot:
        """Return once the event has been routed and recorded (used by the API to answer 201)."""
        await workflow.wait_condition(
            lambda: self._snap is not None and self._snap.state != State.INTAKE and self._snap.version >= 2
        )
        return self.snap

    @workflow.update
    async def claim(self, cmd: ClaimCommand) -> TaskView:
        """签收: take an open task of the actor's unit."""
        task = self._task(cmd.task_id)
        task.status = "claimed"
        task.claimed_by = cmd.actor.username
        task.claimed_at = self._now()
        self._move("claim", cmd.actor, note=task.task_id)
        await self._project()
        return self._view(task)

    @claim.validator
    def _validate_claim(self, cmd: ClaimCommand) -> None:
        task = self._open_task_for(cmd.task_id, cmd.actor)
        if task.status != "open":
            who = task.claimed_by or "?"
            raise _reject(CONFLICT, f"task {task.task_id} is already {task.status} (by {who})")
        if task.assignee and task.assignee != cmd.actor.username:
            raise _reject(FORBIDDEN, f"task {task.task_id} is assigned to {task.assignee}")
        self._require("claim")

    @workflow.update
    async def complete(self, cmd: CompleteCommand) -> TaskView:
        """办结 a handling task, or record the verification (核查) result of a verification task."""
        task = self._task(cmd.task_id)
        now = self._now()
        task.status = "done"
        task.completed_at = now
        task.result = cmd.result
        if task.kind == "handle":
            self._move("complete", cmd.actor, note=cmd.result)
            verify = self._new_task("verify", self._verification_unit())
            self._notify("completed", "您反映的问题已处理完毕,正在核查。")
            await self._set_due(verify, "verification")
        else:
            task.passed = bool(cmd.passed)
            if task.passed:
                self._move("verify_pass", cmd.actor, note=cmd.result)
            else:
                # Failed verification: rework (返工) by the same unit.
                self._move("verify_fail", cmd.actor, note=cmd.result)
                rework = self._new_task("handle", self.snap.decision.unit if self.snap.decision else "")
                rework.assignee = self.snap.decision.assignee if self.snap.decision else None
                await self._set_due(rework, "handling")
        await self._project()
        return self._view(task)

    @complete.validator
    def _validate_complete(self, cmd: CompleteCommand) -> None:
        task = self._open_task_for(cmd.task_id, cmd.actor)
        if task.status != "claimed":
            raise _reject(CONFLICT, f"task {task.task_id} is {task.status}; claim it first")
        if task.claimed_by != cmd.actor.username:
            raise _reject(CONFLICT, f"task {task.task_id} was claimed by {task.claimed_by}")
        if task.kind == "verify":
            if cmd.passed is None:
                raise _reject(INVALID, "a verification needs 'passed' (true or false)")
            self._require("verify_pass" if cmd.passed else "verify_fail")
        else:
            if not cmd.result.strip():
                raise _reject(INVALID, "a result text is required to complete a task")
            self._require("complete")

    @workflow.update
    async def triage(self, cmd: TriageCommand) -> TaskView:
        """A supervisor places an unplaced event: the choice is recorded like a rule decision."""
        task = self._task(cmd.task_id)
        task.status = "done"
        task.claimed_by = cmd.actor.username
        task.completed_at = self._now()
        task.result = cmd.note
        old = self.snap.decision
        decision = dataclasses.replace(
            old,
            placed=True,
            tier=cmd.tier,
            unit=cmd.unit,
            department=cmd.department,
            rule="manual-triage",
            assignee=None,
            reason=cmd.note or "placed by a supervisor",
            actor=cmd.actor.username,
            facts={**old.facts, "category": cmd.category},
        ) if old else None
        self.snap.report.category = cmd.category
        self.snap.decision = decision
        self._move("triage", cmd.actor, note=f"{cmd.category} → {cmd.unit}")
        handle = self._new_task("handle", cmd.unit)
        await self._set_due(handle, "handling")
        await self._project()
        return self._view(task)

    @triage.validator
    def _validate_triage(self, cmd: TriageCommand) -> None:
        task = self._find(cmd.task_id)
        if task.kind != "triage" or task.status != "open":
            raise _reject(CONFLICT, f"task {task.task_id} is not an open triage task")
        if not cmd.unit or not cmd.category:
            raise _reject(INVALID, "triage needs a category and a unit")
        self._require("triage")

    @workflow.update
    async def rate(self, cmd: RateCommand) -> EventSnapshot:
        """评价 by the reporter; closes the event."""
        self.snap.rating = cmd.rating
        self.snap.rating_comment = cmd.comment
        self._rated = True
        reporter = Actor(username="reporter", display_name=self.snap.report.reporter.name, kind="reporter")
        self._move("rate", reporter, note=f"{cmd.rating} {cmd.comment}".strip())
        self._close()
        await self._project()
        return self.snap

    @rate.validator
    def _validate_rate(self, cmd: RateCommand) -> None:
        if cmd.rating not in RATINGS:
            raise _reject(INVALID, f"rating must be one of {', '.join(RATINGS)}")
        if len(cmd.comment) > 1000:
            raise _reject(INVALID, "comment is longer than 1000 characters")
        if self._rated:
            raise _reject(CONFLICT, "this event has already been rated")
        self._require("rate")

    # ---------------------------------------------------------------- helpers
    @property
    def snap(self) -> EventSnapshot:
        assert self._snap is not None, "the workflow has not started"
        return self._snap

    def _now(self) -> str:
        return workflow.now().isoformat()

    def _require(self, trigger: str) -> None:
        if self._snap is None or not self._machine.may(trigger):
            state = self._machine.current.value
            raise _reject(CONFLICT, f"action '{trigger}' is not allowed while the event is '{state}'")

    def _find(self, task_id: str) -> Task:
        for task in self.snap.tasks if self._snap else []:
            if task.task_id == task_id:
                return task
        raise _reject(NOT_FOUND, f"task {task_id} does not belong to this event")

    def _task(self, task_id: str) -> Task:
        return self._find(task_id)

    def _open_task_for(self, task_id: str, actor: Actor) -> Task:
        task = self._find(task_id)
        if task.status in ("done", "cancelled"):
            raise _reject(CONFLICT, f"task {task.task_id} is already {task.status}")
        if actor.unit != task.unit:
            raise _reject(FORBIDDEN, f"task {task.task_id} belongs to unit {task.unit}, not {actor.unit}")
        expected = TASK_KIND_OF_STATE.get(self._machine.current)
        if expected != task.kind:
            raise _reject(CONFLICT, f"task {task.task_id} is not the event's current task")
        return task

    def _view(self, task: Task) -> TaskView:
        return TaskView(task=task, event_state=self.snap.state, event_stage=self.snap.stage)

    def _log(
        self,
        action: str,
        actor: Actor,
        *,
        before: State | None = None,
        after: State | None = None,
        note: str = "",
    ) -> None:
        snap = self.snap
        snap.state = self._machine.current.value
        snap.stage = self._machine.stage.value
        snap.timeline.append(
            TimelineEntry(
                seq=len(snap.timeline) + 1,
                stage=snap.stage,
                action=action,
                actor=actor.username,
                actor_kind=actor.kind,
                actor_name=actor.display_name,
                at=self._now(),
                from_state=before.value if before else None,
                to_state=after.value if after else None,
                note=note,
            )
        )

    def _move(self, trigger: str, actor: Actor, note: str = "") -> None:
        try:
            before, after = self._machine.fire(trigger)
        except IllegalTransition as exc:  # never let a MachineError fail the workflow task
            raise ApplicationError(str(exc), type=CONFLICT, non_retryable=True) from exc
        self._log(trigger, actor, before=before, after=after, note=note)

    def _new_task(self, kind: str, unit: str) -> Task:
        task = Task(
            task_id=f"{self.snap.event_id}.T{len(self.snap.tasks) + 1}",
            kind=kind,
            unit=unit,
            created_at=self._now(),
        )
        self.snap.tasks.append(task)
        return task

    def _notify(self, kind: str, body: str) -> None:
        phone = self.snap.report.reporter.phone
        if not phone:
            return
        self.snap.notices.append(
            Notice(
                notice_id=f"{self.snap.event_id}.N{len(self.snap.notices) + 1}",
                kind=kind,
                recipient=phone,
                body=f"[{self.snap.receipt_code}] {body}",
                created_at=self._now(),
            )
        )

    def _apply_decision(self, decision: Decision) -> None:
        self.snap.decision = decision
        rule_actor = Actor(username=f"rule:{decision.rule}", display_name=decision.rule, kind="rule")
        if decision.placed:
            self._move("route", rule_actor, note=decision.reason)
            task = self._new_task("handle", decision.unit)
            task.due_at = decision.handling_due
            task.assignee = decision.assignee
            self._notify("dispatched", "您反映的问题已受理并交办处理。")
        else:
            self._move("route_to_triage", rule_actor, note=decision.reason)
            self._new_task("triage", decision.unit)
        self._upsert_search_attributes()

    def _verification_unit(self) -> str:
        """核查 by the grid worker of the event's grid; without a grid, the deciding command centre."""
        decision = self.snap.decision
        if decision and decision.grid:
            return decision.grid
        if decision and decision.street:
            return f"CC-{decision.street}"
        return decision.unit if decision else ""

    async def _due(self, hours: int) -> str:
        # Working time depends on holiday data: computed once in an activity, kept in history.
        return await workflow.execute_local_activity(
            ACTIVITY_DUE,
            DueRequest(start=self._now(), hours=hours),
            result_type=str,
            start_to_close_timeout=timedelta(seconds=10),
        )

    async def _set_due(self, task: Task, stage: str) -> None:
        decision = self.snap.decision
        hours = decision.deadline_hours.get(stage, 8) if decision else 8
        task.due_at = await self._due(hours)

    def _close(self) -> None:
        self.snap.closed_at = self._now()
        self._log("close", SYSTEM, note="办结")
        self._notify("closed", "您反映的问题已办结,感谢您的参与。")
        self._upsert_search_attributes()

    def _upsert_search_attributes(self) -> None:
        snap = self.snap
        workflow.upsert_search_attributes(
            [
                STAGE_KEY.value_set(snap.stage),
                UNIT_KEY.value_set(snap.decision.unit if snap.decision else ""),
                CATEGORY_KEY.value_set(snap.report.category or "-"),
                RECEIPT_KEY.value_set(snap.receipt_code),
            ]
        )

    async def _project(self) -> None:
        """Write the snapshot to the store (idempotent upsert keyed by ids, guarded by version)."""
        self.snap.version += 1
        await workflow.execute_local_activity(
            ACTIVITY_PROJECT,
            self.snap,
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=_PROJECT_RETRY,
        )
