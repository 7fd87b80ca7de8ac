"""Every rule of an action, in one place: who may do what, when, within which limits.

Pure (no I/O, clock or randomness; it runs in the workflow sandbox, passed through like
``transitions``). The workflow's validators, the activities and the web all ask this module, so the
page offers exactly what the workflow accepts:

- **roles** and what each may do (worker, supervisor, reporter, admin);
- **limits** (photos, co-handling units, extension and deadline hours, return window, grace, reworks,
  reasons) — what a valid *report* is stays in ``workflows.inputs``;
- **the actions offered** in each state to each actor (:func:`task_actions`,
  :func:`supervisor_actions`), computed with the very checks the validators raise
  (:func:`check_claim`, :func:`check_complete`, ... raise :class:`Refused`);
- **unit-code conventions** (a department's unit, a street's command centre; the city's centre comes
  from the organisation tree, never a demo default) and **the escalation ladder**.

A refusal carries a kind (``Conflict``, ``Forbidden``, ``NotFound``, ``Invalid``: the HTTP status),
a stable ``code`` with ``params`` (the web shows catalogue message ``refusal.<code>`` in the page's
language) and an English message for the API and logs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from workflows.inputs import MAX_COMMENT, text_problem
from workflows.lifecycle import ACTORS, MERGEABLE, TASK_KIND_OF_STATE, TERMINAL, State, triggers_from
from workflows.types import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND

# ------------------------------------------------------------------ roles

#: Who acts, as the lifecycle's ``ACTORS`` names them (plus the administrator).
WORKER, SUPERVISOR, REPORTER, ADMIN = "worker", "supervisor", "reporter", "admin"
#: Staff roles, from the most local to the widest scope. Every staff user is a worker of their unit
#: (claims and handles its tasks); supervisors also override; the admin also administers.
STAFF_ROLES = ("grid_worker", "community_staff", "street_staff", "department_staff", "dispatched_cadre",
               "street_supervisor", "city_supervisor", "admin")
SUPERVISOR_ROLES = ("street_supervisor", "city_supervisor", "admin")
#: Roles that see every unit (the others see their unit and what lies below it).
CITY_WIDE_ROLES = ("city_supervisor", "admin")


def actor_kinds(role: str) -> set[str]:
    """What a user of ``role`` may act as: ``worker`` always, ``supervisor`` and ``admin`` by role."""
    kinds = {WORKER}
    if role in SUPERVISOR_ROLES:
        kinds.add(SUPERVISOR)
    if role == "admin":
        kinds.add(ADMIN)
    return kinds


def is_supervisor(role: str) -> bool:
    """Whether ``role`` may override events (street or city supervisor, or admin)."""
    return SUPERVISOR in actor_kinds(role)


def is_admin(role: str) -> bool:
    """Whether ``role`` administers the organisation, users and the responsibility list."""
    return ADMIN in actor_kinds(role)


# ------------------------------------------------------------------ limits

#: Photos one completion (办结 or 核查) may carry; photos one resident's report may carry.
MAX_COMPLETE_PHOTOS = 10
MAX_REPORT_PHOTOS = 3
#: Other units one co-handling (协办) request may ask.
MAX_COHANDLING_UNITS = 5
#: Working hours one extension (延期) may ask.
MIN_EXTENSION_HOURS, MAX_EXTENSION_HOURS = 1, 240
#: Working hours a supervisor may set as a task's deadline (from the task's start).
MIN_DEADLINE_HOURS, MAX_DEADLINE_HOURS = 1, 24 * 30
#: Working hours after dispatch within which a worker may return (退回) a task.
RETURN_WINDOW_HOURS = 16
#: Working hours after a deadline before an overdue task climbs the ladder (red warning).
GRACE_HOURS = 8
#: Reworks (返工) after a dissatisfied rating before a supervisor reviews the case.
MAX_REWORKS = 2
#: Days a closed or voided event can still be reopened before its workflow completes.
REOPEN_DAYS = 30
#: Followers ("me too") an event counts and notifies at most.
MAX_FOLLOWERS = 500
#: Characters of a reason or note (requests, overrides, triage); of a task's result; of a rating comment.
MAX_REASON = 500
MAX_RESULT = MAX_COMMENT
MAX_RATING_COMMENT = 1000
#: A worker's requests on a claimed handling task, by the name the pages and the API use.
REQUESTS = {"return": "request_return", "escalate": "escalate", "extension": "request_extension",
            "cohandling": "request_cohandling"}
#: Every override a supervisor may send (``supervise``); the notice repairs are offered by the console.
SUPERVISOR_ACTIONS = (
    "approve_extension", "deny_extension", "approve_return", "deny_return", "force_escalate", "reassign",
    "change_deadline", "pause", "resume", "void", "close", "reopen", "review_rework", "retry_notice", "skip_notice",
)
#: Overrides still allowed while a case is paused (everything else waits for ``resume``).
WHILE_PAUSED = ("resume", "void", "close")
#: Overrides that need a reason.
NEEDS_REASON = ("void", "close", "reopen")

# ------------------------------------------------------------------ refusals


class Refused(Exception):
    """An action the rules refuse: ``kind`` (the HTTP status family), ``code`` and ``params`` (the
    web's catalogue message ``refusal.<code>``), and the English ``message`` (API, logs)."""

    def __init__(self, kind: str, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.params = {k: str(v) for k, v in params.items()}

    def details(self) -> dict[str, object]:
        """What travels with the workflow's ``ApplicationError``: ``{"code": ..., "params": {...}}``."""
        return {"code": self.code, "params": dict(self.params)}


def refusal_of_text(name: str, value: object, max_len: int, *, required: bool = False) -> Refused | None:
    """The refusal of a command's free text that no store could keep (NUL, lone surrogates), too long,
    or (``required``) empty; ``None`` when it is fine. Code ``input.<problem>``."""
    problem = text_problem(name, value, max_len=max_len, required=required)
    if problem is None:
        return None
    return Refused(INVALID, f"input.{problem.code}", problem.message, field=name, limit=problem.limit)


def check_text(name: str, value: object, max_len: int, *, required: bool = False) -> None:
    """Raise :class:`Refused` for a bad free text (see :func:`refusal_of_text`)."""
    found = refusal_of_text(name, value, max_len, required=required)
    if found is not None:
        raise found


# ------------------------------------------------------------------ the case, as both sides see it


class TaskFacts(Protocol):
    """What the rules read of a task (the workflow's ``Task`` and the store's row both have it)."""

    task_id: str
    kind: str
    unit: str
    status: str
    assignee: str | None
    claimed_by: str | None
    parent: str | None


class Who(Protocol):
    """Who acts: the workflow's ``Actor`` and the web's ``CurrentUser`` both have it."""

    username: str
    unit: str
    role: str


@dataclass
class Case:
    """What the rules read of an event: its state, the request waiting for a supervisor, whether it
    is paused, and its tasks (who claimed which, the open co-handling tasks)."""

    state: str
    pending: str | None = None
    paused: bool = False
    tasks: Sequence[TaskFacts] = field(default_factory=list)
    rated: bool = False


OPEN_STATUSES = ("open", "claimed")


def _legal(case: Case, trigger: str, *, allow_paused: bool = False) -> None:
    if trigger not in triggers_from(case.state):
        raise Refused(CONFLICT, "not_now", f"action '{trigger}' is not allowed while the event is '{case.state}'",
                      action=trigger, state=case.state)
    if case.paused and not allow_paused and ACTORS.get(trigger) != "timer":
        raise Refused(CONFLICT, "paused", "the case is paused by a supervisor")


def _supervisor(who: Who) -> None:
    if not is_supervisor(who.role):
        raise Refused(FORBIDDEN, "supervisors_only", "only supervisors can do this")


def find_task(case: Case, task_id: str) -> TaskFacts:
    """The event's task ``task_id``, or :class:`Refused` (``task_unknown``)."""
    for task in case.tasks:
        if task.task_id == task_id:
            return task
    raise Refused(NOT_FOUND, "task_unknown", f"task {task_id} does not belong to this event", task=task_id)


def check_own_unit(task: TaskFacts, who: Who) -> None:
    """Users act only on tasks of their own unit."""
    if who.unit != task.unit:
        raise Refused(FORBIDDEN, "task_other_unit", f"task {task.task_id} belongs to unit {task.unit}, not {who.unit}",
                      task=task.task_id, unit=task.unit, mine=who.unit)


def _current(case: Case, task_id: str, who: Who) -> TaskFacts:
    """An unfinished task of the actor's unit that the event's state acts on."""
    task = find_task(case, task_id)
    if task.status not in OPEN_STATUSES:
        raise Refused(CONFLICT, "task_finished", f"task {task.task_id} is already {task.status}",
                      task=task.task_id, status=task.status)
    check_own_unit(task, who)
    expected = TASK_KIND_OF_STATE.get(State(case.state))
    if task.kind != expected and not (task.kind == "cohandle" and expected == "handle"):
        raise Refused(CONFLICT, "task_not_current", f"task {task.task_id} is not the event's current task",
                      task=task.task_id)
    return task


def _claimed_by(case: Case, task_id: str, who: Who) -> TaskFacts:
    task = _current(case, task_id, who)
    if task.status != "claimed":
        raise Refused(CONFLICT, "task_not_claimed", f"task {task.task_id} is {task.status}; claim it first",
                      task=task.task_id)
    if task.claimed_by != who.username:
        raise Refused(CONFLICT, "task_claimed_by_other", f"task {task.task_id} was claimed by {task.claimed_by}",
                      task=task.task_id, user=task.claimed_by or "?")
    return task


def open_helpers(case: Case, task_id: str) -> list[str]:
    """The units whose co-handling (协办) of handling task ``task_id`` is not finished."""
    return [t.unit for t in case.tasks if t.kind == "cohandle" and t.parent == task_id and t.status in OPEN_STATUSES]


# ------------------------------------------------------------------ workers' actions


def handled_by(case: Case) -> str | None:
    """Who completed the handling task that the current verification checks (the latest one done)."""
    for task in reversed(list(case.tasks)):
        if task.kind == "handle" and task.status == "done":
            return task.claimed_by
    return None


def _not_own_work(case: Case, task: TaskFacts, who: Who) -> None:
    """核查 is never done by the person who completed the handling task (issue 10, item 2)."""
    if task.kind == "verify" and who.username == handled_by(case):
        raise Refused(CONFLICT, "verify_own_work",
                      f"{who.username} completed the handling of this event; someone else verifies it",
                      user=who.username)


def check_claim(case: Case, task_id: str, who: Who) -> TaskFacts:
    """签收: an open task of the actor's unit that the event's state acts on, assigned to nobody else;
    a verification never by the person who handled the event."""
    task = _current(case, task_id, who)
    if task.status != "open":
        who_has = task.claimed_by or "?"
        raise Refused(CONFLICT, "task_taken", f"task {task.task_id} is already {task.status} (by {who_has})",
                      task=task.task_id, user=who_has)
    if task.assignee and task.assignee != who.username:
        raise Refused(FORBIDDEN, "task_assigned", f"task {task.task_id} is assigned to {task.assignee}",
                      task=task.task_id, user=task.assignee)
    _not_own_work(case, task, who)
    _legal(case, "cohandle" if task.kind == "cohandle" else "claim")
    return task


def check_release(case: Case, task_id: str, who: Who) -> TaskFacts:
    """Give a claimed task back: the claimer's handling or verification task (not a co-handling task)."""
    task = _claimed_by(case, task_id, who)
    if task.kind == "cohandle":
        raise Refused(CONFLICT, "cohandle_no_release", "a co-handling task cannot be released; complete it")
    _legal(case, "release")
    return task


def check_complete(case: Case, task_id: str, who: Who, passed: bool | None = None) -> TaskFacts:
    """办结 a handling task (not while co-handling is open), finish a co-handling task, or record a
    verification (``passed`` decides which trigger; ``None`` is checked by :func:`check_complete_input`)."""
    task = _claimed_by(case, task_id, who)
    if task.kind == "verify":
        _not_own_work(case, task, who)
        _legal(case, "verify_fail" if passed is False else "verify_pass")
        return task
    if task.kind == "cohandle":
        _legal(case, "cohandle")
        return task
    _legal(case, "complete")
    waiting = open_helpers(case, task.task_id)
    if waiting:
        units = ", ".join(waiting)
        raise Refused(CONFLICT, "cohandling_open", f"co-handling by {units} is not finished yet", units=units)
    return task


def check_complete_input(task: TaskFacts, result: str, passed: bool | None, photos: int) -> None:
    """The parameters of a completion: a result text (a verification may leave it empty but must say
    ``passed``), at most :data:`MAX_COMPLETE_PHOTOS` photos."""
    check_text("result", result, MAX_RESULT)
    if photos > MAX_COMPLETE_PHOTOS:
        raise Refused(INVALID, "too_many_photos", f"at most {MAX_COMPLETE_PHOTOS} photos", limit=MAX_COMPLETE_PHOTOS)
    if task.kind == "verify":
        if passed is None:
            raise Refused(INVALID, "verify_needs_passed", "a verification needs 'passed' (true or false)")
        return
    if not result.strip():
        raise Refused(INVALID, "result_required", "a result text is required to complete a task")


def check_request(case: Case, task_id: str, who: Who, action: str) -> TaskFacts:
    """A worker's request on their claimed handling task: return, escalate, extension, co-handling;
    one request waits for a supervisor at a time."""
    if action not in REQUESTS.values():
        raise Refused(INVALID, "unknown_request", f"unknown request '{action}'", action=action)
    task = _claimed_by(case, task_id, who)
    if task.kind != "handle":
        raise Refused(CONFLICT, "request_needs_handling",
                      f"'{action}' applies to a handling task, not a {task.kind} task", action=action)
    _legal(case, action)
    if case.pending:
        raise Refused(CONFLICT, "request_pending", f"a {case.pending} request already waits for a supervisor",
                      pending=case.pending)
    return task


def check_request_input(task: TaskFacts, action: str, reason: str, hours: int, units: Sequence[str]) -> list[str]:
    """The parameters of a request: a reason; an extension of 1 to 240 working hours; co-handling by
    1 to 5 other, distinct units. Returns the co-handling units (without the task's own)."""
    check_text("reason", reason, MAX_REASON)
    if not reason.strip():
        raise Refused(INVALID, "reason_required", "a reason is required")
    if action == "request_extension" and not MIN_EXTENSION_HOURS <= hours <= MAX_EXTENSION_HOURS:
        raise Refused(INVALID, "extension_hours", f"an extension is {MIN_EXTENSION_HOURS} to {MAX_EXTENSION_HOURS} "
                      "working hours", low=MIN_EXTENSION_HOURS, high=MAX_EXTENSION_HOURS)
    others = [u for u in units if u and u != task.unit]
    if action == "request_cohandling" and (not others or len(others) != len(set(others))
                                           or len(others) > MAX_COHANDLING_UNITS):
        raise Refused(INVALID, "cohandling_units",
                      f"co-handling needs 1 to {MAX_COHANDLING_UNITS} other, distinct units",
                      limit=MAX_COHANDLING_UNITS)
    return others


def check_request_timing(action: str, marks: dict[str, str], now: datetime) -> None:
    """A return only within the return window (mark ``return_by``), an extension only before the
    deadline (mark ``due``)."""
    if action == "request_return":
        window = marks.get("return_by")
        if window and now > datetime.fromisoformat(window):
            raise Refused(CONFLICT, "return_window",
                          "the return window has passed; escalate or ask a supervisor instead",
                          hours=RETURN_WINDOW_HOURS)
    if action == "request_extension":
        due = marks.get("due")
        if due and now >= datetime.fromisoformat(due):
            raise Refused(CONFLICT, "extension_late", "an extension must be asked before the deadline")


# ------------------------------------------------------------------ supervisors' actions


def check_triage(case: Case, task_id: str, who: Who) -> TaskFacts:
    """A supervisor of the triage task's command centre places an event no rule could place."""
    task = find_task(case, task_id)
    if task.kind != "triage" or task.status != "open":
        raise Refused(CONFLICT, "not_triage", f"task {task.task_id} is not an open triage task", task=task.task_id)
    check_own_unit(task, who)
    _supervisor(who)
    _legal(case, "triage")
    return task


def check_triage_input(category: str, unit: str, note: str) -> None:
    """A triage names a category and a unit; its note is a reason's length."""
    if not unit or not category:
        raise Refused(INVALID, "triage_needs", "triage needs a category and a unit")
    check_text("note", note, MAX_REASON)


def check_supervise(case: Case, who: Who, action: str) -> None:
    """A supervisor's override, legal in the event's state: an extension decision needs a pending
    request, a review needs the review state, pause and resume toggle, a paused case only resumes,
    is voided or closed. (The notice repairs are checked by the workflow, which knows its deliveries.)"""
    _supervisor(who)
    if action not in SUPERVISOR_ACTIONS or action in ("retry_notice", "skip_notice"):
        if action in ("retry_notice", "skip_notice"):
            return
        raise Refused(INVALID, "unknown_action", f"unknown supervisor action '{action}'", action=action)
    if action == "review_rework" and case.state != State.REVIEW:
        raise Refused(CONFLICT, "not_review", "the event is not waiting for a review")
    _legal(case, action, allow_paused=action in WHILE_PAUSED)
    if action in ("approve_extension", "deny_extension") and case.pending != "extension":
        raise Refused(CONFLICT, "no_extension", "no extension request waits for a decision")
    if action == "pause" and case.paused:
        raise Refused(CONFLICT, "already_paused", "the case is already paused")
    if action == "resume" and not case.paused:
        raise Refused(CONFLICT, "not_paused", "the case is not paused")


def check_supervise_input(action: str, reason: str, unit: str | None, hours: int | None) -> None:
    """The parameters of an override: a reason for void, close and reopen; a unit for a reassignment;
    a deadline of 1 to 720 working hours."""
    check_text("reason", reason, MAX_REASON)
    if action in NEEDS_REASON and not reason.strip():
        raise Refused(INVALID, "reason_needed", f"'{action}' needs a reason", action=action)
    if action == "reassign" and not unit:
        raise Refused(INVALID, "reassign_needs_unit", "reassign needs a unit")
    if action == "change_deadline" and not (hours and MIN_DEADLINE_HOURS <= hours <= MAX_DEADLINE_HOURS):
        raise Refused(INVALID, "deadline_hours", f"a deadline is {MIN_DEADLINE_HOURS} to {MAX_DEADLINE_HOURS} "
                      "working hours", low=MIN_DEADLINE_HOURS, high=MAX_DEADLINE_HOURS)


def returning_units(returned: Iterable[str], pending: str | None, current_unit: str | None) -> list[str]:
    """The units that returned the event: those whose return was approved (``returned``), and the unit
    of the current handling task while its return waits for a supervisor."""
    units = list(dict.fromkeys(returned))
    if pending == "return" and current_unit and current_unit not in units:
        units.append(current_unit)
    return units


def check_return_target(unit: str | None, returning: Collection[str]) -> None:
    """An approved return (退回: "not ours") never goes back to a unit that returned the event
    (issue 10, item 1); without a unit the list decides again with them excluded."""
    if unit and unit in returning:
        raise Refused(INVALID, "return_to_returner", f"unit {unit} returned this event; choose another", unit=unit)


# ------------------------------------------------------------------ the reporter


def check_rate(case: Case) -> None:
    """评价 once, in the feedback stage (the tracking key is checked by the workflow and the web)."""
    if case.rated:
        raise Refused(CONFLICT, "already_rated", "this event has already been rated")
    _legal(case, "rate")


def check_follow(case: Case, followers: int, known: bool) -> None:
    """Follow ("me too") an open event, while it notifies fewer than :data:`MAX_FOLLOWERS`."""
    if State(case.state) in TERMINAL:
        raise Refused(CONFLICT, "event_closed", "this event is already closed")
    if followers >= MAX_FOLLOWERS and not known:
        raise Refused(CONFLICT, "followers_full", "this event has as many followers as it can notify")


# ------------------------------------------------------------------ duplicates (合并)

#: Hours after a merge within which a supervisor may undo it (the default of the setting
#: ``WULIAN_MERGE_UNDO_HOURS``), and the bounds that setting must keep.
MERGE_UNDO_HOURS = 72
MIN_MERGE_UNDO_HOURS, MAX_MERGE_UNDO_HOURS = 1, 24 * 30
#: Duplicates one primary may absorb (each brings its reporter and followers).
MAX_MERGED = 50
#: Metres within which a report is offered as a duplicate of an open one (both with coordinates).
DUPLICATE_METRES = 100


def check_merge(case: Case, who: Who, event_id: str, primary: str, primary_state: str) -> None:
    """A supervisor merges a duplicate into a primary: both open and placed (the duplicate in a state
    it may be merged from, :data:`~workflows.lifecycle.MERGEABLE`; the primary not closed, voided or
    merged itself), two different events. Who is in scope is the web's check (``web/commands.py``)."""
    _supervisor(who)
    if not primary or primary == event_id:
        raise Refused(INVALID, "merge_self", "an event cannot be merged into itself")
    if State(case.state) not in MERGEABLE:
        raise Refused(CONFLICT, "merge_not_now", f"an event that is '{case.state}' cannot be merged",
                      state=case.state)
    _legal(case, "merge", allow_paused=True)
    try:
        target = State(primary_state)
    except ValueError:
        target = State.CLOSED
    if target in TERMINAL or target == State.INTAKE:
        raise Refused(CONFLICT, "merge_primary_closed", f"the primary event is '{primary_state}'; merge into an "
                      "open event", state=primary_state)


def check_merge_input(reason: str, undo_hours: int) -> None:
    """A merge's reason (required) and its undo window in hours."""
    check_text("reason", reason, MAX_REASON)
    if not reason.strip():
        raise Refused(INVALID, "reason_needed", "'merge' needs a reason", action="merge")
    if not MIN_MERGE_UNDO_HOURS <= undo_hours <= MAX_MERGE_UNDO_HOURS:
        raise Refused(INVALID, "merge_undo_hours", f"the undo window is {MIN_MERGE_UNDO_HOURS} to "
                      f"{MAX_MERGE_UNDO_HOURS} hours", low=MIN_MERGE_UNDO_HOURS, high=MAX_MERGE_UNDO_HOURS)


def check_unmerge(case: Case, who: Who, undo_by: str | None, now: datetime) -> None:
    """A supervisor undoes a merge, while the event is merged and before the end of its undo window."""
    _supervisor(who)
    if State(case.state) != State.MERGED or not undo_by:
        raise Refused(CONFLICT, "not_merged", "the event is not merged into another")
    if now > datetime.fromisoformat(undo_by):
        raise Refused(CONFLICT, "merge_undo_late", "the merge can no longer be undone (its window has passed)",
                      until=undo_by)


def check_absorb(merged: int) -> bool:
    """Whether a primary takes one more duplicate's followers (at most :data:`MAX_MERGED`)."""
    return merged < MAX_MERGED


# ------------------------------------------------------------------ what is offered


def _allowed(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except Refused:
        return False
    return True


#: Task actions in the order pages show them (the names of ``POST /tasks/{id}/{action}``).
TASK_ACTIONS = ("claim", "complete", "verify", "release", "return", "escalate", "extension", "cohandling", "triage")


def task_actions(case: Case, task: TaskFacts, who: Who, *, marks: dict[str, str] | None = None,
                 now: datetime | None = None) -> list[str]:
    """The actions ``who`` is offered on ``task`` now: exactly those the validators would accept
    (given valid parameters). ``verify`` is a completion of a verification task. With the task's
    ``marks`` (``due``, ``return_by``) and ``now``, a return and an extension are offered only in
    their windows (:func:`check_request_timing`)."""
    offered: list[str] = []
    if _allowed(check_claim, case, task.task_id, who):
        offered.append("claim")
    if task.kind == "verify":
        if _allowed(check_complete, case, task.task_id, who, True):
            offered.append("verify")
    elif _allowed(check_complete, case, task.task_id, who, None):
        offered.append("complete")
    if _allowed(check_release, case, task.task_id, who):
        offered.append("release")
    for name, trigger in REQUESTS.items():
        if _allowed(check_request, case, task.task_id, who, trigger) and (
                marks is None or now is None or _allowed(check_request_timing, trigger, marks, now)):
            offered.append(name)
    if _allowed(check_triage, case, task.task_id, who):
        offered.append("triage")
    return offered


def merge_offered(case: Case, who: Who) -> bool:
    """Whether ``who`` is offered to merge this event into another (:func:`check_merge`, for any open
    primary: which one is named in the form and checked when it is sent)."""
    return _allowed(check_merge, case, who, "", "?", State.DISPATCHED.value)


def unmerge_offered(case: Case, who: Who, undo_by: str | None, now: datetime) -> bool:
    """Whether ``who`` is offered to undo this event's merge now (:func:`check_unmerge`)."""
    return _allowed(check_unmerge, case, who, undo_by, now)


def supervisor_actions(case: Case, who: Who) -> list[str]:
    """The overrides ``who`` is offered on the event now (the notice repairs are the console's)."""
    return [a for a in SUPERVISOR_ACTIONS if a not in ("retry_notice", "skip_notice")
            and _allowed(check_supervise, case, who, a)]


# ------------------------------------------------------------------ units and the ladder

#: Unit codes: a department's unit is ``D-<department>`` (``D-ZF``), a street's command centre
#: ``CC-<street>`` (``CC-HS``). The city's centre is whatever unit the organisation tree has as the
#: city-tier command centre (:func:`is_city_centre`): never a code assumed here.
DEPARTMENT_PREFIX = "D-"
CENTRE_PREFIX = "CC-"


def department_unit(department: str) -> str:
    """The unit code of ``department`` (``ZF`` → ``D-ZF``)."""
    return f"{DEPARTMENT_PREFIX}{department}"


def department_of(unit: str) -> str | None:
    """The department a unit code stands for (``D-ZF`` → ``ZF``), or None for other units."""
    return unit[len(DEPARTMENT_PREFIX):] if unit.startswith(DEPARTMENT_PREFIX) and len(unit) > 2 else None


def street_centre(street: str) -> str:
    """The command centre of ``street`` (``HS`` → ``CC-HS``): where its triage and verification go."""
    return f"{CENTRE_PREFIX}{street}"


def is_city_centre(kind: str, tier: str) -> bool:
    """Whether a unit of ``kind`` and ``tier`` is the city's command centre (the top of every ladder)."""
    return kind == "command_centre" and tier == "city"


#: Tiers one step up, for an escalation (提级): a street's case goes to the category's department,
#: or to the city when the category has none.
TIER_UP = {"grid": "community", "community": "street", "street": "department", "department": "city", "city": "city"}
#: Kinds of unit an overdue task climbs through, lowest first, before the city's command centre.
LADDER_KINDS = ("grid", "community", "street", "department")


def ladder(chain: Iterable[tuple[str, str]], city_centre: str | None) -> list[str]:
    """The units an overdue task climbs (grid → community → street → city centre): the units of
    ``chain`` (code and kind, lowest first) that are on the ladder, then the city's command centre."""
    found = [code for code, kind in chain if code and kind in LADDER_KINDS]
    if city_centre:
        found.append(city_centre)
    return found


def ladder_up(steps: Sequence[str], unit: str) -> str:
    """The next unit above ``unit`` on the ladder ``steps`` (the top stays the top; a unit off the
    ladder goes to its top)."""
    if unit in steps:
        index = steps.index(unit)
        return steps[min(index + 1, len(steps) - 1)]
    return steps[-1] if steps else unit


def delivering_ok(notice_id: str | None, delivering: Collection[str]) -> None:
    """A notice repair (retry, skip) applies to a notice being delivered."""
    if notice_id not in delivering:
        raise Refused(CONFLICT, "notice_not_delivering", f"notice {notice_id} is not being delivered",
                      notice=notice_id or "")
