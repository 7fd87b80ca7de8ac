"""The body of EventLifecycle, one durable workflow per event, from intake to close.

The workflow class itself is in ``workflows/event_lifecycle.py``, a few lines: the sandbox loads the
workflow's module again for every workflow instance, and everything here is passed through
(``worker.PASSTHROUGH``), loaded once per process (issue 13). Nothing here may keep state at module
level: every instance of every event shares this module.

Deterministic: no I/O, clocks or randomness here. Time comes from ``workflow.now()``, routing,
deadlines, store writes and deliveries are activities called by name, and every human action is
an update whose validator rejects illegal or conflicting actions before anything changes.

Supervision is timers: each handling task carries its marks (reminders at 50% and 80% of its
working time, the deadline, and the end of the grace period); the main loop sleeps until the
next mark or until an update changes something.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import policy
from workflows.inputs import InvalidInput, checked_report, phone_problem
from workflows.lifecycle import ASSIGNED, TERMINAL, IllegalTransition, Lifecycle, State
from workflows.policy import GRACE_HOURS, MAX_FOLLOWERS, MAX_REWORKS, REOPEN_DAYS, RETURN_WINDOW_HOURS, Refused
from workflows.types import (
    ACTIVITY_DELIVER,
    ACTIVITY_DUE,
    ACTIVITY_MARKS,
    ACTIVITY_PROJECT,
    ACTIVITY_RECEIPT,
    ACTIVITY_ROUTE,
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    RATINGS,
    Absorbed,
    Actor,
    ClaimCommand,
    CompleteCommand,
    Decision,
    DueRequest,
    EventReport,
    EventSnapshot,
    FollowCommand,
    Follower,
    MarksRequest,
    MergeCommand,
    MergeRecord,
    Notice,
    Occurrence,
    RateCommand,
    ReceiptGrant,
    ReceiptRequest,
    RoutingRequest,
    SupervisorCommand,
    Task,
    TaskRequest,
    TaskView,
    TimelineEntry,
    TriageCommand,
    UnmergeCommand,
    Warning,
    receipt_code_for,
)

# The error kinds (``workflows.types``: CONFLICT, FORBIDDEN, NOT_FOUND, INVALID) and every rule of an
# action (``workflows.policy``) are imported; the web maps the kinds to HTTP codes in one place.

STAGE_KEY = SearchAttributeKey.for_keyword("WulianStage")
UNIT_KEY = SearchAttributeKey.for_keyword("WulianUnit")
CATEGORY_KEY = SearchAttributeKey.for_keyword("WulianCategory")
RECEIPT_KEY = SearchAttributeKey.for_keyword("WulianReceipt")

#: Patches (``workflow.patched``): ``wait_dispatched`` answers once the routed snapshot is in the store,
#: and a notice's delivery starts once a snapshot holding the notice is (issue 9, finding 13).
PATCH_DISPATCH_STORED = "wait-dispatched-projected"
PATCH_NOTICE_STORED = "deliver-after-projection"

# Store writes are short idempotent upserts: retried until the store is back, never given up.
# An attempt may wait its turn behind the worker's other writes and, on SQLite, for another process's
# lock (``store.db.SQLITE_BUSY_TIMEOUT``, which stays below this): under overload a tighter limit only
# cancelled attempts that were about to succeed, and retried them at once (issue 9, finding 12).
PROJECT_TIMEOUT = timedelta(seconds=60)
_PROJECT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))
_ROUTE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), maximum_interval=timedelta(seconds=30))
# The local routing tries a few times within the workflow task, then the regular activity takes over.
_LOCAL_ROUTE_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=2),
                                 maximum_attempts=3)
LOCAL_ROUTE_TIMEOUT = timedelta(seconds=10)
# Deliveries retry for as long as it takes; a supervisor can retry at once or skip (see repair).
_DELIVER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))

SYSTEM = Actor(username="system", display_name="系统", kind="system")
TIMER = Actor(username="timer", display_name="计时器", kind="timer")
MARK_ORDER = ("remind_50", "remind_80", "due", "escalate")
RESUME_MEMO = "resume"
#: Events in one run's history before it continues as new (Temporal's own suggestion comes later).
HISTORY_LIMIT = 5_000
FOLLOWER = Actor(username="follower", display_name="", kind="reporter")
#: Notices a follower gets (never the rating request: only the reporter rates).
FOLLOWER_NOTICES = {
    "completed": "您关注的问题已处理完毕,正在核查。",
    "closed": "您关注的问题已结案,感谢您的关注。",
    "voided": "您关注的问题已作废。",
}
#: Reporter notices that carry the tracking link with the key (added at delivery, never stored).
KEYED_NOTICES = ("dispatched", "rate_request")

# Patches (``workflow.patched``) for events started before a change; see tests/test_replay.py.
#: The workflow checks its own input with the rules of every other entrance (workflows/inputs.py).
PATCH_CHECKED_INPUT = "checked-input"
#: A report without a receipt code gets a random one from the ``issue_receipt`` activity (before:
#: derived from the event id).
PATCH_RANDOM_RECEIPT = "random-receipt"
#: Every new event's receipt code goes through ``issue_receipt``, the proposed one too: a code that
#: another event has (a Temporal client may propose any) would break the store's unique index and
#: stop the event's projection for good.
PATCH_CHECKED_RECEIPT = "checked-receipt"
#: An approved return (退回) excludes the returning unit from every later routing decision, and the
#: approving supervisor may name the unit it goes to (issue 10, item 1).
PATCH_RETURN_EXCLUDES = "return-excludes-returner"
#: The verification (核查) goes to the first of the decision's verification units that did not handle
#: the event (the list's policy, computed by the routing activity), never to the handling unit (item 2).
PATCH_VERIFIER_NOT_HANDLER = "verifier-not-handler"
#: Update handlers run one at a time (``EventLifecycle._serial``), each checking its rules again once
#: it has its turn (before: a handler awaiting an activity after its first changes let another
#: handler act on the half-changed state).
PATCH_SERIAL_UPDATES = "serial-updates"
#: Intake in one workflow task (issue 13): the responsibility list is asked in a local activity (it
#: reads the store and decides; nothing to undo when it runs twice), the first projection holds the
#: routed snapshot (before: one projection before routing and one after), and the API's 201 is
#: answered by the workflow task that started the event. A routing that keeps failing falls back to
#: the old way: the report is projected, then routed by a regular activity that retries for ever.
PATCH_LOCAL_ROUTE = "local-route"
#: A task's supervision marks and its return window come from one local activity (before: two).
PATCH_MARKS_WITH_RETURN = "marks-with-return-by"
#: A delivered notice is not projected again: the delivery activity marks its row delivered itself
#: (``store.notices.mark_delivered``), and its row existed before the delivery started.
PATCH_DELIVERED_NOT_PROJECTED = "delivered-not-projected"
#: A supervision mark that comes due while the event is not in an inbox (a return request waiting for
#: its supervisor) waits for the task to be back (before: the timer's illegal move failed the workflow,
#: and the event was lost; found by ``wulian simulate``).
PATCH_MARKS_WAIT_FOR_INBOX = "marks-wait-for-inbox"

#: The recent camera alarms' ids an event keeps, so that a repeated delivery of one is counted once.
OCCURRENCE_IDS = 100
CAMERA = Actor(username="camera", display_name="", kind="system")

_T = TypeVar("_T")


def _reject(kind: str, message: str, code: str = "", **params: object) -> ApplicationError:
    """A refusal for the client: the kind (HTTP status family) as ``type``, the English message, and
    as details ``{"code", "params"}`` so the web can show the reason in the page's language."""
    details = [{"code": code, "params": {k: str(v) for k, v in params.items()}}] if code else []
    return ApplicationError(message, *details, type=kind, non_retryable=True)


def _refusal(exc: Refused) -> ApplicationError:
    return ApplicationError(exc.message, exc.details(), type=exc.kind, non_retryable=True)


def _ruled(check: Callable[..., _T], *args: Any) -> _T:
    """Ask ``workflows.policy``; its refusal becomes the update's ``ApplicationError``."""
    try:
        return check(*args)
    except Refused as exc:
        raise _refusal(exc) from None


def _in_turn(validator: str) -> Callable[[Callable[[Any, Any], Awaitable[_T]]], Callable[[Any, Any], Awaitable[_T]]]:
    """Run an update handler in its turn (``EventLifecycle._serial``), checked again by ``validator``
    (the name of its validator method) when it had to wait."""

    def decorate(handler: Callable[[Any, Any], Awaitable[_T]]) -> Callable[[Any, Any], Awaitable[_T]]:
        @functools.wraps(handler)
        async def in_turn(self: Any, cmd: Any) -> _T:
            async with self._serial(getattr(self, validator), cmd):
                return await handler(self, cmd)

        return in_turn

    return decorate


class EventLifecycleCore:
    """The closed loop of one event (its ``run`` is ``EventLifecycle.run``): intake → dispatch →
    handling → verification → feedback → close."""

    def __init__(self) -> None:
        self._machine = Lifecycle()
        self._snap: EventSnapshot | None = None
        self._changes = 0  # bumped by every update, so the main loop re-plans its timers
        self._rated = False
        self._reopened = False
        self._deliveries: dict[str, asyncio.Task[None]] = {}  # notice id → its running delivery
        self._delivery_runs: dict[str, int] = {}  # notice id → number of the delivery now in charge
        self._alarms: set[str] = set()  # moments a timer already rings for
        self._ringing: list[asyncio.Task[None]] = []
        self._stored = 0  # the newest snapshot version the projection has acknowledged
        self._routed_version: int | None = None  # the first snapshot version past intake
        self._notice_versions: dict[str, int] = {}  # notice id → the first snapshot version holding it
        # Held by an update handler from its first change to its end (patch ``serial-updates``).
        self._turn = asyncio.Lock()

    # ---------------------------------------------------------------- main line
    async def _run(self, report: EventReport | dict[str, Any]) -> EventSnapshot:
        """Drive the event through its lifecycle; the result is the final snapshot.

        The input is checked first with the rules of every entrance (``workflows.inputs``): a bad
        report fails the workflow at once with a non-retryable ``Invalid`` error naming each problem,
        before anything is stored. (A JSON object whose types do not fit :class:`EventReport` arrives
        as a plain mapping, so that it too fails readably instead of failing the task for ever.)

        After a continue-as-new (which keeps long-lived events' histories small) the state comes back
        from the memo ``resume``; the input stays the report, so integrations start it as documented.
        """
        resume = workflow.memo_value(RESUME_MEMO, None, type_hint=EventSnapshot)
        if resume is not None:
            self._snap = resume
            self._machine = Lifecycle(State(resume.state))
            # Everything in the memo was projected before the workflow continued as new.
            self._stored = self._routed_version = resume.version
            self._notice_versions = {notice.notice_id: resume.version for notice in resume.notices}
            self._rated = resume.rating is not None
            for notice in resume.notices:
                if notice.status == "pending":
                    self._start_delivery(notice)
        else:
            if workflow.patched(PATCH_CHECKED_INPUT) or not isinstance(report, EventReport):
                try:
                    report = checked_report(report)
                except InvalidInput as exc:
                    raise ApplicationError(str(exc), [p.message for p in exc.problems], type=INVALID,
                                           non_retryable=True) from None
            await self._intake(report)
        while True:
            state = self._machine.current
            if state != State.FEEDBACK:
                self.snap.rating_due = None
            if state in (State.INTAKE, State.REROUTING):
                await self._route()
            elif state == State.FEEDBACK:
                await self._await_rating()
            elif state in TERMINAL:
                if not await self._await_reopen():
                    break
            else:
                await self._supervise()
            info = workflow.info()
            long = info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_LIMIT
            if long and not self._deliveries:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(args=[self.snap.report], memo={RESUME_MEMO: self.snap})
        # Let a running update (e.g. the rating that closed the event) finish its projection.
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._deliveries)
        return self.snap

    async def _intake(self, report: EventReport) -> None:
        info = workflow.info()
        request: ReceiptRequest | None = None
        if workflow.patched(PATCH_CHECKED_RECEIPT):
            request = ReceiptRequest(info.workflow_id, report.receipt_code, report.tracking_key_hash,
                                     report.tracking_nonce)
        elif not report.receipt_code and workflow.patched(PATCH_RANDOM_RECEIPT):
            request = ReceiptRequest(info.workflow_id)
        if request is not None:
            grant = await workflow.execute_local_activity(
                ACTIVITY_RECEIPT, request, result_type=ReceiptGrant,
                start_to_close_timeout=timedelta(seconds=10), retry_policy=_PROJECT_RETRY,
            )
            report.receipt_code = grant.receipt_code
            report.tracking_key_hash, report.tracking_nonce = grant.tracking_key_hash, grant.tracking_nonce
        self._snap = EventSnapshot(
            event_id=info.workflow_id,
            receipt_code=report.receipt_code or receipt_code_for(info.workflow_id),
            report=report,
            state=self._machine.current.value,
            stage=self._machine.stage.value,
            created_at=self._now(),
            # The alarm that started a camera's event is its first occurrence (a repeat of it counts nothing).
            occurrence_ids=[report.external_id] if report.external_id else [],
            last_occurrence_at=self._now(),
        )
        reporter = Actor(username=report.reporter.name or report.source, display_name=report.reporter.name,
                         kind="reporter")
        self._log("report", reporter, note=report.description[:200])
        if not workflow.patched(PATCH_LOCAL_ROUTE):
            await self._project()

    async def _route(self) -> None:
        """Ask the responsibility list (again, after a return or an escalation, with its version)."""
        snap = self.snap
        first = snap.decision
        request = RoutingRequest(
            event_id=snap.event_id,
            report=snap.report,
            returned_count=snap.returned_count,
            escalated_count=snap.escalated_count,
            list_version=first.list_version if first else None,
            exclude=list(snap.returned_units),
        )
        decision: Decision | None = None
        if workflow.patched(PATCH_LOCAL_ROUTE):
            try:
                decision = await workflow.execute_local_activity(
                    ACTIVITY_ROUTE, request, result_type=Decision, start_to_close_timeout=LOCAL_ROUTE_TIMEOUT,
                    retry_policy=_LOCAL_ROUTE_RETRY,
                )
            except (ActivityError, ApplicationError):  # a local activity's failure comes unwrapped
                # The store or the list is not answering: show the report as it is, and keep trying.
                if snap.version == 0:
                    await self._project()
        if decision is None:
            decision = await workflow.execute_activity(
                ACTIVITY_ROUTE, request, result_type=Decision, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=_ROUTE_RETRY,
            )
        await self._apply_decision(decision)
        await self._project()

    async def _supervise(self) -> None:
        """Fire the current task's due supervision mark, or sleep until it or until something changes."""
        task = self._current_handle_task()
        mark = self._next_mark(task) if task and not self.snap.paused else None
        when = datetime.fromisoformat(mark[1]) if mark else None
        if task is not None and mark is not None and when is not None and workflow.now() >= when:
            if self._machine.current not in ASSIGNED and workflow.patched(PATCH_MARKS_WAIT_FOR_INBOX):
                # The timer's moves are legal only while the task is in an inbox: a mark that comes due
                # while a return waits for its supervisor fires once the task is back (denied), or never
                # (approved: the task is cancelled and the next unit's task has marks of its own).
                await self._sleep_until(None)
                return
            await self._fire_mark(task, mark[0])
            return
        await self._sleep_until(when)

    async def _sleep_until(self, when: datetime | None) -> None:
        """Wait until ``when`` or until an update changes something, whichever comes first.

        Each moment gets one timer that rings once and is never cancelled: when an update changes
        the plan (an extension, a reassignment), a stale ring only wakes the loop, which re-plans.
        """
        seen = self._changes
        if when is not None:
            key = when.isoformat()
            if key not in self._alarms:
                self._alarms.add(key)
                self._ringing.append(asyncio.create_task(self._ring(when)))
        await workflow.wait_condition(lambda: self._changes != seen)

    async def _ring(self, when: datetime) -> None:
        delay = when - workflow.now()
        if delay > timedelta(0):
            await workflow.sleep(delay)
        self._touch()

    def _next_mark(self, task: Task) -> tuple[str, str] | None:
        for name in MARK_ORDER:
            if name in task.marks and name not in task.fired:
                return name, task.marks[name]
        return None

    async def _fire_mark(self, task: Task, name: str) -> None:
        task.fired.append(name)
        if name.startswith("remind"):
            pct = name.split("_")[1]
            self._warn("reminder", task, f"{pct}% of the time used")
            self._move("remind", TIMER, note=f"{task.task_id}: {pct}%")
        elif name == "due":
            self._warn("yellow", task, "deadline passed: urging notice (督办)")
            self._move("urge", TIMER, note=f"{task.task_id} overdue (yellow)")
        else:
            target = self._ladder_up(task.unit)
            self._warn("red", task, f"escalated to {target} (red)")
            await self._hand_over(task, "escalate_overdue", TIMER, target, None, f"overdue: {task.unit} → {target}")
        await self._project()

    async def _await_rating(self) -> None:
        """Tell the reporter, then wait for the rating; none within the window counts as accepted."""
        snap = self.snap
        if snap.rating_due is None:  # entering the feedback stage
            notice = self._notify("rate_request", "您反映的问题已处理并核查,请凭上报时获得的评价码评价。")
            if notice is not None:
                await self._project()
                # The rating window starts once the reporter has been told (a supervisor may skip it).
                await workflow.wait_condition(
                    lambda: notice.notice_id not in self._deliveries or self._machine.current != State.FEEDBACK
                )
            decision = snap.decision
            snap.rating_due = await self._due(decision.deadline_hours.get("rating_window", 24) if decision else 24)
        due = datetime.fromisoformat(snap.rating_due)
        if self._machine.current == State.FEEDBACK and not self._rated and workflow.now() >= due:
            self._move("accept_by_default", TIMER, note="评价期满,默认满意")
            self._close()
            await self._project()
            return
        await self._sleep_until(due)

    async def _await_reopen(self) -> bool:
        """Stay reopenable for a while after close; returns True when a supervisor reopened it."""
        self._reopened = False
        closed = datetime.fromisoformat(self.snap.closed_at) if self.snap.closed_at else workflow.now()
        until = closed + timedelta(days=REOPEN_DAYS)
        while not self._reopened and workflow.now() < until:
            await self._sleep_until(until)
        return self._reopened

    # ---------------------------------------------------------------- queries
    @workflow.query
    def snapshot(self) -> EventSnapshot:
        """The live state of the event."""
        return self.snap

    # ---------------------------------------------------------------- updates: workers
    @workflow.update
    async def wait_dispatched(self) -> EventSnapshot:
        """Return once the event has been routed and the routed snapshot is in the store (the API's
        201: the task is in the inbox)."""
        if workflow.patched(PATCH_DISPATCH_STORED):
            await workflow.wait_condition(
                lambda: self._routed_version is not None and self._stored >= self._routed_version
            )
        else:  # histories from before: the version was raised before the projection finished
            await workflow.wait_condition(
                lambda: self._snap is not None and self._snap.state != State.INTAKE and self._snap.version >= 2
            )
        return self.snap

    @contextlib.asynccontextmanager
    async def _serial(self, validate: Callable[[Any], None], cmd: Any) -> AsyncIterator[None]:
        """One update handler at a time, from its first change to its end (patch ``serial-updates``).

        Why: handlers change state, then await activities (deadlines, marks, the projection) — e.g.
        ``complete`` creates the verification task and awaits its marks, ``supervise`` approves an
        extension and awaits the new marks, ``request`` creates co-handling tasks one await apart,
        ``triage`` and every hand-over await the new task's deadline. Another update's handler running
        in such a gap acted on half-changed state (a reassignment cancelled the handling task while a
        co-handling request was creating its helpers, and the request then opened helpers for the
        cancelled task: tests/test_supervision.py). Uncontended, taking the lock does not suspend, so a handler
        still changes state before its first ``await`` and a second validator sees the change (two
        claims cannot both pass). An update that had to wait checks its rules again when its turn
        comes: its validator ran against the state before the other handler finished.
        """
        if not workflow.patched(PATCH_SERIAL_UPDATES):
            yield
            return
        waited = self._turn.locked()
        async with self._turn:
            if waited:
                validate(cmd)
            yield

    def _case(self) -> policy.Case:
        """The event as the rules read it (``workflows.policy``)."""
        if self._snap is None:
            raise _reject(CONFLICT, "the event is not recorded yet", "not_recorded")
        snap = self._snap
        return policy.Case(state=self._machine.current.value, pending=snap.pending, paused=snap.paused,
                           tasks=snap.tasks, rated=self._rated)

    @workflow.update
    @_in_turn("_validate_claim")
    async def claim(self, cmd: ClaimCommand) -> TaskView:
        """签收: take an open task of the actor's unit."""
        task = self._find(cmd.task_id)
        task.status = "claimed"
        task.claimed_by = cmd.actor.username
        task.claimed_at = self._now()
        if task.kind == "cohandle":
            self._move("cohandle", cmd.actor, note=f"{task.task_id} claimed")
        else:
            self._move("claim", cmd.actor, note=task.task_id)
        await self._project()
        return self._view(task)

    @claim.validator
    def _validate_claim(self, cmd: ClaimCommand) -> None:
        _ruled(policy.check_claim, self._case(), cmd.task_id, cmd.actor)

    @workflow.update
    @_in_turn("_validate_release")
    async def release(self, cmd: ClaimCommand) -> TaskView:
        """Give a claimed task back to the unit's inbox."""
        task = self._find(cmd.task_id)
        task.status, task.claimed_by, task.claimed_at = "open", None, None
        self._move("release", cmd.actor, note=task.task_id)
        await self._project()
        return self._view(task)

    @release.validator
    def _validate_release(self, cmd: ClaimCommand) -> None:
        _ruled(policy.check_release, self._case(), cmd.task_id, cmd.actor)

    @workflow.update
    @_in_turn("_validate_complete")
    async def complete(self, cmd: CompleteCommand) -> TaskView:
        """办结 a handling task, record a verification (核查), or finish a co-handling task."""
        task = self._find(cmd.task_id)
        task.status = "done"
        task.completed_at = self._now()
        task.result = cmd.result
        task.photos = list(cmd.photos)
        if task.kind == "cohandle":
            self._move("cohandle", cmd.actor, note=f"{task.task_id} done: {cmd.result}")
        elif task.kind == "handle":
            self._move("complete", cmd.actor, note=cmd.result)
            self._notify("completed", "您反映的问题已处理完毕,正在核查。")
            verify = self._new_task("verify", self._verification_unit_for(task))
            await self._set_due(verify, "verification")
        else:
            task.passed = bool(cmd.passed)
            if task.passed:
                self._move("verify_pass", cmd.actor, note=cmd.result)
            else:
                # Failed verification: rework (返工) by the unit that handled it.
                self.snap.rework_count += 1
                self._move("verify_fail", cmd.actor, note=cmd.result)
                await self._rework_task()
        await self._project()
        return self._view(task)

    @complete.validator
    def _validate_complete(self, cmd: CompleteCommand) -> None:
        task = _ruled(policy.check_complete, self._case(), cmd.task_id, cmd.actor, cmd.passed)
        _ruled(policy.check_complete_input, task, cmd.result, cmd.passed, len(cmd.photos))

    @workflow.update
    @_in_turn("_validate_request")
    async def request(self, cmd: TaskRequest) -> TaskView:
        """A worker's request: return (退回), escalate (提级), extension (延期), co-handling (协办)."""
        task = self._find(cmd.task_id)
        task.reason = cmd.reason
        if cmd.action == "request_return":
            self.snap.pending = "return"
            self._move("request_return", cmd.actor, note=cmd.reason)
        elif cmd.action == "escalate":
            self.snap.escalated_count += 1
            self._cancel_with_helpers(task, "escalated")
            self._move("escalate", cmd.actor, note=cmd.reason)
        elif cmd.action == "request_extension":
            task.extension_hours = cmd.hours
            self.snap.pending = "extension"
            self._move("request_extension", cmd.actor, note=f"+{cmd.hours}h: {cmd.reason}")
        else:
            self._move("request_cohandling", cmd.actor, note=f"{', '.join(cmd.units)}: {cmd.reason}")
            for unit in [u for u in cmd.units if u and u != task.unit]:
                helper = self._new_task("cohandle", unit)
                helper.parent, helper.reason = task.task_id, cmd.reason
                await self._set_due(helper, "handling")
        await self._project()
        return self._view(task)

    @request.validator
    def _validate_request(self, cmd: TaskRequest) -> None:
        _ruled(policy.check_request, self._case(), cmd.task_id, cmd.actor, cmd.action)
        task = self._find(cmd.task_id)
        _ruled(policy.check_request_input, task, cmd.action, cmd.reason, cmd.hours, cmd.units)
        _ruled(policy.check_request_timing, cmd.action, task.marks, workflow.now())

    @workflow.update
    @_in_turn("_validate_triage")
    async def triage(self, cmd: TriageCommand) -> TaskView:
        """A supervisor places an unplaced event: the choice is recorded like a rule decision."""
        task = self._find(cmd.task_id)
        task.status = "done"
        task.claimed_by = cmd.actor.username
        task.completed_at = self._now()
        task.result = cmd.note
        old = self.snap.decision
        if old is not None:
            self.snap.decision = dataclasses.replace(
                old, placed=True, tier=cmd.tier, unit=cmd.unit, department=cmd.department, rule="manual-triage",
                reason=cmd.note or "placed by a supervisor", actor=cmd.actor.username, assignee=None,
                facts={**old.facts, "category": cmd.category},
            )
        self.snap.report.category = cmd.category
        self._move("triage", cmd.actor, note=f"{cmd.category} → {cmd.unit}")
        handle = self._new_task("handle", cmd.unit, origin="dispatch")
        await self._set_due(handle, "handling")
        await self._project()
        return self._view(task)

    @triage.validator
    def _validate_triage(self, cmd: TriageCommand) -> None:
        _ruled(policy.check_triage, self._case(), cmd.task_id, cmd.actor)
        _ruled(policy.check_triage_input, cmd.category, cmd.unit, cmd.note)

    # ---------------------------------------------------------------- updates: reporter
    @workflow.update
    @_in_turn("_validate_rate")
    async def rate(self, cmd: RateCommand) -> EventSnapshot:
        """评价 by the reporter: satisfied closes; dissatisfied sends it back for rework (返工)."""
        snap = self.snap
        snap.rating, snap.rating_comment = cmd.rating, cmd.comment
        reporter = Actor(username="reporter", display_name=snap.report.reporter.name, kind="reporter")
        note = f"{cmd.rating} {cmd.comment}".strip()
        if cmd.rating != "dissatisfied":
            self._rated = True
            self._move("rate", reporter, note=note)
            self._close()
        elif snap.rework_count < MAX_REWORKS:
            snap.rework_count += 1
            self._move("rework", reporter, note=note)
            await self._rework_task(comment=cmd.comment)
        else:
            snap.pending = "review"
            self._move("to_review", reporter, note=note)
        await self._project()
        return snap

    @rate.validator
    def _validate_rate(self, cmd: RateCommand) -> None:
        if cmd.rating not in RATINGS:
            raise _reject(INVALID, f"rating must be one of {', '.join(RATINGS)}", "rating_choice",
                          choices=", ".join(RATINGS))
        _ruled(policy.check_text, "comment", cmd.comment, policy.MAX_RATING_COMMENT)
        _ruled(policy.check_rate, self._case())
        expected = self.snap.report.tracking_key_hash
        if expected and not hmac.compare_digest(cmd.tracking_key_hash.encode(), expected.encode()):
            raise _reject(FORBIDDEN, "only the reporter may rate: the tracking key is missing or wrong", "not_reporter")

    @workflow.update
    @_in_turn("_validate_follow")
    async def follow(self, cmd: FollowCommand) -> EventSnapshot:
        """Follow an open event ("me too"): counted once per person, told of its progress.

        Following twice changes nothing (the same key); it never gives a right to act on the event."""
        snap = self.snap
        if any(f.key == cmd.key for f in snap.followers):
            return snap
        phone = "" if cmd.phone == snap.report.reporter.phone else cmd.phone
        snap.followers.append(Follower(key=cmd.key, phone=phone, at=self._now()))
        self._log("follow", FOLLOWER, note=f"{len(snap.followers)}")
        await self._project()
        return snap

    @follow.validator
    def _validate_follow(self, cmd: FollowCommand) -> None:
        case = self._case()
        if len(cmd.key) != 64 or any(c not in "0123456789abcdef" for c in cmd.key):
            raise _reject(INVALID, "a follower key is a sha256 in hex", "follower_key")
        problem = phone_problem("phone", cmd.phone)
        if problem is not None:
            raise _reject(INVALID, problem.message, f"input.{problem.code}", field="phone", limit=problem.limit)
        known = any(f.key == cmd.key for f in self.snap.followers)
        _ruled(policy.check_follow, case, len(self.snap.followers), known)

    # ---------------------------------------------------------------- updates: supervisors
    @workflow.update
    @_in_turn("_validate_supervise")
    async def supervise(self, cmd: SupervisorCommand) -> EventSnapshot:
        """A supervisor's override; each is recorded with the supervisor as actor."""
        snap, action, actor = self.snap, cmd.action, cmd.actor
        task = self._current_handle_task()
        if action in ("approve_extension", "deny_extension"):
            assert task is not None
            hours = task.extension_hours
            task.extension_hours, snap.pending = 0, None
            self._move(action, actor, note=f"+{hours}h {cmd.reason}".strip())
            if action == "approve_extension":
                task.extended_hours += hours
                await self._set_marks(task, task.hours + hours)
        elif action == "approve_return":
            assert task is not None
            self._cancel_with_helpers(task, "returned")
            snap.pending = None
            snap.returned_count += 1
            self._move(action, actor, note=cmd.reason or task.reason)
            if workflow.patched(PATCH_RETURN_EXCLUDES):
                if task.unit not in snap.returned_units:
                    snap.returned_units.append(task.unit)
                if cmd.unit:  # the supervisor named the unit; else the list decides again (``_route``)
                    await self._place_after_return(cmd)
        elif action == "deny_return":
            snap.pending = None
            self._move(action, actor, note=cmd.reason)
        elif action in ("force_escalate", "reassign"):
            assert task is not None
            target = cmd.unit if action == "reassign" and cmd.unit else self._ladder_up(task.unit)
            assignee = cmd.assignee if action == "reassign" else None
            if action == "reassign" and cmd.ladder and snap.decision is not None:
                snap.decision.ladder = list(cmd.ladder)  # the new unit climbs its own ladder when overdue
            if action == "force_escalate":
                self._warn("red", task, f"escalated to {target} by {actor.username}")
            await self._hand_over(task, action, actor, target, assignee, cmd.reason or f"{task.unit} → {target}")
        elif action == "change_deadline":
            assert task is not None and cmd.hours is not None
            self._move(action, actor, note=f"{task.hours}h → {cmd.hours}h {cmd.reason}".strip())
            await self._set_marks(task, cmd.hours)
        elif action in ("pause", "resume"):
            self._pause(action == "pause")
            self._move(action, actor, note=cmd.reason)
        elif action in ("void", "close"):
            for open_task in snap.tasks:
                if open_task.status in ("open", "claimed"):
                    self._end(open_task, "voided" if action == "void" else "closed")
            snap.pending, snap.paused = None, False
            self._move(action, actor, note=cmd.reason)
            if action == "close":
                self._close(actor)
            else:
                snap.closed_at = self._now()
                self._notify("voided", f"您反映的问题已作废:{cmd.reason}")
        elif action == "reopen":
            snap.closed_at, self._rated, snap.rating = None, False, None
            self._move(action, actor, note=cmd.reason)
            await self._rework_task()
            self._reopened = True
        elif action == "review_rework":
            snap.pending = None
            snap.rework_count += 1
            self._move(action, actor, note=cmd.reason)
            await self._rework_task(comment=cmd.reason)
        elif action in ("retry_notice", "skip_notice"):
            self._repair_notice(cmd.notice_id or "", skip=action == "skip_notice", actor=actor)
        await self._project()
        return snap

    @supervise.validator
    def _validate_supervise(self, cmd: SupervisorCommand) -> None:
        case = self._case()
        _ruled(policy.check_supervise, case, cmd.actor, cmd.action)
        _ruled(policy.check_supervise_input, cmd.action, cmd.reason, cmd.unit, cmd.hours)
        if cmd.action in ("retry_notice", "skip_notice"):
            _ruled(policy.delivering_ok, cmd.notice_id, self._deliveries)
        if cmd.action == "approve_return":
            _ruled(policy.check_return_target, cmd.unit, self._returning_units())

    # ---------------------------------------------------------------- duplicates (合并) and camera alarms
    # New handlers only: no history from before has them, and the code paths of every other command are
    # unchanged, so old histories replay as they are (tests/test_replay.py).
    @workflow.signal
    async def add_occurrence(self, occ: Occurrence) -> None:
        """One more alarm of the same camera and category within the window: counted on this event,
        never a new one. Sent with signal-with-start by the intake (``web/camera_alarms.py``), so it may
        arrive before the run has recorded the first alarm; a repeated alarm id counts nothing."""
        await workflow.wait_condition(lambda: self._snap is not None)
        snap = self.snap
        if occ.alarm_id and occ.alarm_id in snap.occurrence_ids:
            return
        snap.occurrences += 1
        if occ.alarm_id:
            snap.occurrence_ids = [*snap.occurrence_ids, occ.alarm_id][-OCCURRENCE_IDS:]
        snap.last_occurrence_at = self._now()
        self._touch()
        await self._project()

    @workflow.update
    @_in_turn("_validate_merge")
    async def merge(self, cmd: MergeCommand) -> EventSnapshot:
        """合并: a supervisor merges this event (a duplicate) into ``cmd.primary``. Its open tasks close,
        it ends as merged with a link to the primary, its reporter and followers follow the primary
        (signal ``absorb``), and it may be undone within ``cmd.undo_hours`` (:meth:`unmerge`)."""
        snap, now = self.snap, workflow.now()
        closed: dict[str, str] = {}
        for task in snap.tasks:
            if task.status in ("open", "claimed"):
                closed[task.task_id] = task.status
                self._end(task, "merged")
        snap.merge = MergeRecord(
            primary=cmd.primary, primary_receipt=cmd.primary_receipt, at=now.isoformat(), by=cmd.actor.username,
            reason=cmd.reason, undo_by=(now + timedelta(hours=cmd.undo_hours)).isoformat(),
            from_state=self._machine.current.value, tasks=closed,
        )
        snap.closed_at = now.isoformat()
        self._move("merge", cmd.actor, note=f"→ {cmd.primary}: {cmd.reason}")
        self._notify("merged", "您反映的问题与另一上报为同一问题,已合并办理,后续进展将继续通知您。")
        followers = [dataclasses.replace(f, via=snap.event_id) for f in snap.followers]
        phone = snap.report.reporter.phone
        if phone:
            key = hashlib.sha256(f"phone:{phone}".encode()).hexdigest()  # as web.commands.follower_key
            followers.insert(0, Follower(key=key, phone=phone, at=self._now(), via=snap.event_id))
        await self._signal_primary(cmd.primary, "absorb",
                                   Absorbed(snap.event_id, followers, actor=cmd.actor.username))
        self._upsert_search_attributes()
        await self._project()
        return snap

    @merge.validator
    def _validate_merge(self, cmd: MergeCommand) -> None:
        _ruled(policy.check_merge, self._case(), cmd.actor, self.snap.event_id, cmd.primary, cmd.primary_state)
        _ruled(policy.check_merge_input, cmd.reason, cmd.undo_hours)

    @workflow.update
    @_in_turn("_validate_unmerge")
    async def unmerge(self, cmd: UnmergeCommand) -> EventSnapshot:
        """Undo a merge within its window: the event returns to the state it was merged from, its tasks
        as they were (open or claimed, the deadlines moved by the time it was merged, as a pause moves
        them), and its reporter and followers stop following the primary (signal ``release_merged``)."""
        snap = self.snap
        record = snap.merge
        assert record is not None
        stopped = workflow.now() - datetime.fromisoformat(record.at)
        for task in snap.tasks:
            status = record.tasks.get(task.task_id)
            if status is None:
                continue
            task.status, task.ended_at, task.ended_by = status, None, ""
            for name, when in task.marks.items():
                if name not in task.fired:
                    task.marks[name] = (datetime.fromisoformat(when) + stopped).isoformat()
            if "due" in task.marks:
                task.due_at = task.marks["due"]
        try:
            before, after = self._machine.fire("unmerge", back_to=record.from_state)
        except IllegalTransition as exc:
            raise _reject(CONFLICT, str(exc), "not_now", action="unmerge", state=exc.state.value) from exc
        snap.merge, snap.closed_at = None, None
        self._log("unmerge", cmd.actor, before=before, after=after, note=f"← {record.primary}: {cmd.reason}".strip())
        self._reopened = True
        await self._signal_primary(record.primary, "release_merged", Absorbed(snap.event_id, actor=cmd.actor.username))
        self._upsert_search_attributes()
        await self._project()
        return snap

    @unmerge.validator
    def _validate_unmerge(self, cmd: UnmergeCommand) -> None:
        merge = self.snap.merge
        _ruled(policy.check_unmerge, self._case(), cmd.actor, merge.undo_by if merge else None, workflow.now())
        _ruled(policy.check_text, "reason", cmd.reason, policy.MAX_REASON)

    @workflow.signal
    async def absorb(self, msg: Absorbed) -> None:
        """This event is the primary of a merged duplicate: its reporter and followers follow this one
        (told of its progress like any follower, at most ``MAX_FOLLOWERS`` in all)."""
        await workflow.wait_condition(lambda: self._snap is not None)
        snap = self.snap
        if msg.duplicate in snap.merged or not policy.check_absorb(len(snap.merged)):
            return
        snap.merged.append(msg.duplicate)
        known = {f.key for f in snap.followers}
        for follower in msg.followers:
            if follower.key in known or len(snap.followers) >= MAX_FOLLOWERS:
                continue
            phone = "" if follower.phone == snap.report.reporter.phone else follower.phone
            snap.followers.append(dataclasses.replace(follower, phone=phone, via=msg.duplicate))
            known.add(follower.key)
        self._log("absorb", Actor(username=msg.actor, kind="user"), note=msg.duplicate)
        await self._project()

    @workflow.signal
    async def release_merged(self, msg: Absorbed) -> None:
        """A duplicate's merge into this event was undone: the followers it brought go again."""
        await workflow.wait_condition(lambda: self._snap is not None)
        snap = self.snap
        if msg.duplicate not in snap.merged:
            return
        snap.merged = [d for d in snap.merged if d != msg.duplicate]
        snap.followers = [f for f in snap.followers if f.via != msg.duplicate]
        self._log("release_merged", Actor(username=msg.actor, kind="user"), note=msg.duplicate)
        await self._project()

    async def _signal_primary(self, primary: str, signal: str, msg: Absorbed) -> None:
        """Signal the primary's workflow (a durable command of this one); a primary that is gone is
        noted on the timeline instead of failing the merge (the web checked it was running)."""
        try:
            await workflow.get_external_workflow_handle(primary).signal(signal, msg)
        except Exception as exc:  # noqa: BLE001 - e.g. the primary's workflow no longer exists
            self._log("primary_unreachable", SYSTEM, note=f"{primary}: {exc}"[:200])

    # ---------------------------------------------------------------- helpers
    @property
    def snap(self) -> EventSnapshot:
        assert self._snap is not None, "the workflow has not started"
        return self._snap

    def _now(self) -> str:
        return workflow.now().isoformat()

    def _touch(self) -> None:
        self._changes += 1

    def _find(self, task_id: str) -> Task:
        for task in self.snap.tasks if self._snap else []:
            if task.task_id == task_id:
                return task
        raise _reject(NOT_FOUND, f"task {task_id} does not belong to this event", "task_unknown", task=task_id)

    def _current_handle_task(self) -> Task | None:
        for task in reversed(self.snap.tasks):
            if task.kind == "handle" and task.status in ("open", "claimed"):
                return task
        return None

    def _last_handling_unit(self) -> tuple[str, str | None]:
        for task in reversed(self.snap.tasks):
            if task.kind == "handle":
                return task.unit, task.assignee
        decision = self.snap.decision
        return (decision.unit, decision.assignee) if decision else ("", None)

    def _view(self, task: Task) -> TaskView:
        return TaskView(task=task, event_state=self.snap.state, event_stage=self.snap.stage)

    def _log(self, action: str, actor: Actor, *, before: State | None = None, after: State | None = None,
             note: str = "") -> None:
        snap = self.snap
        snap.state = self._machine.current.value
        snap.stage = self._machine.stage.value
        snap.timeline.append(
            TimelineEntry(
                seq=len(snap.timeline) + 1, stage=snap.stage, action=action, actor=actor.username,
                actor_kind=actor.kind, actor_name=actor.display_name, at=self._now(),
                from_state=before.value if before else None, to_state=after.value if after else None, note=note,
            )
        )
        self._touch()

    def _move(self, trigger: str, actor: Actor, note: str = "") -> None:
        try:
            before, after = self._machine.fire(trigger)
        except IllegalTransition as exc:  # never let a MachineError fail the workflow task
            raise _reject(CONFLICT, str(exc), "not_now", action=trigger, state=exc.state.value) from exc
        self._log(trigger, actor, before=before, after=after, note=note)

    def _warn(self, kind: str, task: Task, note: str) -> None:
        self.snap.warnings.append(Warning(kind=kind, task_id=task.task_id, unit=task.unit, at=self._now(), note=note))

    def _new_task(self, kind: str, unit: str, assignee: str | None = None, origin: str = "") -> Task:
        task = Task(task_id=f"{self.snap.event_id}.T{len(self.snap.tasks) + 1}", kind=kind, unit=unit,
                    assignee=assignee, created_at=self._now(), origin=origin)
        self.snap.tasks.append(task)
        return task

    def _pause(self, paused: bool) -> None:
        snap = self.snap
        if paused:
            snap.paused, snap.paused_at = True, self._now()
            return
        # The clock stops while paused: unfired marks move by the paused time.
        stopped = workflow.now() - datetime.fromisoformat(snap.paused_at or self._now())
        for task in snap.tasks:
            if task.status in ("open", "claimed"):
                for name, when in task.marks.items():
                    if name not in task.fired:
                        task.marks[name] = (datetime.fromisoformat(when) + stopped).isoformat()
        snap.paused, snap.paused_at = False, None

    async def _hand_over(self, task: Task, trigger: str, actor: Actor, unit: str, assignee: str | None,
                         note: str) -> None:
        """Move the current handling task to another unit (escalation up the ladder or reassignment)."""
        reassigned = trigger == "reassign"
        self._cancel_with_helpers(task, "reassigned" if reassigned else "escalated")
        self.snap.pending = None
        if not reassigned:
            self.snap.escalated_count += 1
        self._move(trigger, actor, note=note)
        new = self._new_task("handle", unit, assignee, origin="reassign" if reassigned else "escalation")
        await self._set_due(new, "handling")

    def _cancel_with_helpers(self, task: Task, why: str) -> None:
        """Cancel a handling task and the co-handling tasks that were helping it, saying ``why``."""
        self._end(task, why)
        for helper in self.snap.tasks:
            if helper.parent == task.task_id and helper.status in ("open", "claimed"):
                self._end(helper, why)

    def _end(self, task: Task, why: str) -> None:
        """Cancel ``task``: when and why are kept for assessment (a return, an escalation, ...)."""
        task.status, task.ended_at, task.ended_by = "cancelled", self._now(), why

    async def _rework_task(self, comment: str = "") -> None:
        unit, assignee = self._last_handling_unit()
        task = self._new_task("handle", unit, assignee, origin="rework")
        task.reason = comment
        await self._set_due(task, "handling")

    def _ladder_up(self, unit: str) -> str:
        """The next unit up the supervision ladder (grid → community → street → city centre)."""
        return policy.ladder_up(self.snap.decision.ladder if self.snap.decision else [], unit)

    def _notify(self, kind: str, body: str) -> Notice | None:
        """Tell the reporter (returned: the notice, or None without a phone) and the followers."""
        snap = self.snap
        phone = snap.report.reporter.phone
        notice = None
        if phone:
            nonce = snap.report.tracking_nonce if kind in KEYED_NOTICES else ""
            notice = self._add_notice(kind, phone, f"[{snap.receipt_code}] {body}", nonce)
        follower_body = FOLLOWER_NOTICES.get(kind)
        if follower_body:
            # No receipt code: a follower reads and acts on nothing of the reporter's.
            name = snap.decision.category_name if snap.decision else ""
            for follower in snap.followers:
                if follower.phone:
                    self._add_notice(kind, follower.phone, f"[{name}] {follower_body}" if name else follower_body)
        return notice

    def _add_notice(self, kind: str, recipient: str, body: str, nonce: str = "") -> Notice:
        notice = Notice(notice_id=f"{self.snap.event_id}.N{len(self.snap.notices) + 1}", kind=kind,
                        recipient=recipient, body=body, created_at=self._now(), tracking_nonce=nonce,
                        receipt_code=self.snap.receipt_code if nonce else "",
                        tracking_key_hash=self.snap.report.tracking_key_hash if nonce else "")
        self.snap.notices.append(notice)
        self._start_delivery(notice)
        return notice

    def _start_delivery(self, notice: Notice) -> None:
        # The next projection holds the notice (every change that notifies is projected).
        self._notice_versions.setdefault(notice.notice_id, self.snap.version + 1)
        run = self._delivery_runs.get(notice.notice_id, 0) + 1
        self._delivery_runs[notice.notice_id] = run
        self._deliveries[notice.notice_id] = asyncio.create_task(self._deliver(notice, run))

    async def _deliver(self, notice: Notice, run: int) -> None:
        """Deliver in the background: a failing delivery retries without holding up the event.

        It starts once the notice's row is in the store, where the activity records its attempts.
        """
        try:
            if workflow.patched(PATCH_NOTICE_STORED):
                needed = self._notice_versions.get(notice.notice_id, 0)
                await workflow.wait_condition(lambda: self._stored >= needed)
            await workflow.execute_activity(
                ACTIVITY_DELIVER, notice, start_to_close_timeout=timedelta(seconds=30), retry_policy=_DELIVER_RETRY
            )
            notice.status = "delivered"
        except asyncio.CancelledError:
            if notice.status == "pending":  # cancelled for a retry: the new delivery takes over
                return
        if self._delivery_runs.get(notice.notice_id) == run:
            self._deliveries.pop(notice.notice_id, None)
            self._touch()
        if notice.status == "delivered" and workflow.patched(PATCH_DELIVERED_NOT_PROJECTED):
            return  # the activity marked the row delivered; the next projection carries the snapshot
        await self._project()

    def _repair_notice(self, notice_id: str, *, skip: bool, actor: Actor) -> None:
        notice = next(n for n in self.snap.notices if n.notice_id == notice_id)
        running = self._deliveries.pop(notice_id)
        if skip:
            notice.status = "skipped"
            running.cancel()
            self._log("skip_notice", actor, note=notice_id)
        else:
            running.cancel()
            self._log("retry_notice", actor, note=notice_id)
            self._start_delivery(notice)

    async def _apply_decision(self, decision: Decision) -> None:
        self.snap.decision = decision
        rule_actor = Actor(username=f"rule:{decision.rule}", display_name=decision.rule, kind="rule")
        if decision.placed:
            self._move("route", rule_actor, note=decision.reason)
            task = self._new_task("handle", decision.unit, decision.assignee, origin="dispatch")
            await self._set_due(task, "handling")
            if len(self.snap.tasks) == 1:
                self._notify("dispatched", "您反映的问题已受理并交办处理。")
        else:
            self._move("route_to_triage", rule_actor, note=decision.reason)
            self._new_task("triage", decision.unit)
        self._upsert_search_attributes()

    def _verification_unit_for(self, handled: Task) -> str:
        """Who verifies (核查) the work of ``handled``: the decision's first verification unit that is
        not the handling unit (the list's policy, computed by the routing activity)."""
        if not workflow.patched(PATCH_VERIFIER_NOT_HANDLER):
            return self._legacy_verification_unit()
        decision = self.snap.decision
        return (decision.verifier(handled.unit) if decision else None) or handled.unit

    def _returning_units(self) -> list[str]:
        """Units that returned the event: those whose return was approved, and the one asking now."""
        task = self._current_handle_task()
        return policy.returning_units(self.snap.returned_units, self.snap.pending, task.unit if task else None)

    async def _place_after_return(self, cmd: SupervisorCommand) -> None:
        """Place a returned event in the unit the approving supervisor chose, recorded like a decision."""
        snap, unit = self.snap, cmd.unit or ""
        excluded = list(snap.returned_units)
        old = snap.decision
        if old is not None:
            snap.decision = dataclasses.replace(
                old, placed=True, tier=cmd.tier or old.tier, unit=unit, department=cmd.department,
                rule="manual-return", reason=cmd.reason or "placed by a supervisor",
                reason_code="" if cmd.reason else "manual", reason_params={},
                actor=cmd.actor.username, assignee=None, ladder=list(cmd.ladder) or old.ladder, excluded=excluded,
            )
        self._move("route", cmd.actor, note=f"→ {unit}")
        handle = self._new_task("handle", unit, origin="dispatch")
        await self._set_due(handle, "handling")
        self._upsert_search_attributes()

    def _legacy_verification_unit(self) -> str:
        """核查 as before ``PATCH_VERIFIER_NOT_HANDLER`` (histories from before only): the grid worker
        of the event's grid; without a grid, the deciding command centre."""
        decision = self.snap.decision
        if decision and decision.grid:
            return decision.grid
        if decision and decision.street:
            return policy.street_centre(decision.street)
        return decision.unit if decision else ""

    async def _due(self, hours: int, start: str | None = None) -> str:
        # Working time depends on holiday data: computed once in an activity, kept in history.
        return await workflow.execute_local_activity(
            ACTIVITY_DUE, DueRequest(start=start or self._now(), hours=hours), result_type=str,
            start_to_close_timeout=timedelta(seconds=10),
        )

    async def _set_due(self, task: Task, stage: str) -> None:
        decision = self.snap.decision
        hours = decision.deadline_hours.get(stage, 8) if decision else 8
        await self._set_marks(task, hours)

    async def _set_marks(self, task: Task, hours: int) -> None:
        """Deadline and supervision marks of ``task`` for ``hours`` working hours from its start."""
        task.hours = hours
        one = workflow.patched(PATCH_MARKS_WITH_RETURN)
        request = MarksRequest(start=task.created_at, hours=hours, grace_hours=GRACE_HOURS,
                               return_hours=RETURN_WINDOW_HOURS if one and task.kind == "handle" else 0)
        marks = await workflow.execute_local_activity(
            ACTIVITY_MARKS, request, result_type=dict[str, str], start_to_close_timeout=timedelta(seconds=10),
        )
        if task.kind == "handle":
            if not one:
                marks["return_by"] = await self._due(RETURN_WINDOW_HOURS, start=task.created_at)
        else:  # only handling tasks are urged and escalated; others just show their deadline
            marks = {"due": marks["due"]}
        task.marks = marks
        task.due_at = marks["due"]
        now = workflow.now()
        task.fired = [name for name in task.fired if name in marks and datetime.fromisoformat(marks[name]) <= now]
        self._touch()

    def _close(self, actor: Actor = SYSTEM) -> None:
        self.snap.closed_at = self._now()
        if actor is SYSTEM:
            self._log("close", SYSTEM, note="结案")
        self._notify("closed", "您反映的问题已结案,感谢您的参与。")
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
        version = self.snap.version
        if self._routed_version is None and self.snap.state != State.INTAKE:
            self._routed_version = version
        await workflow.execute_local_activity(
            ACTIVITY_PROJECT, self.snap, start_to_close_timeout=PROJECT_TIMEOUT, retry_policy=_PROJECT_RETRY,
        )
        # The store holds this version or a newer one (a projection that finds a newer one does nothing).
        self._stored = max(self._stored, version)
