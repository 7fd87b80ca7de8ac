"""One running instance of a process definition, as plain data and pure moves (issue 14, item 2).

:class:`Instance` is what the generic workflow will keep and project: where the instance stands, its
tasks (one per state entered that opens one), the sign-ups of a task claimed by many (a waiting list
once full), the credits its completed tasks earned, and its timeline. The moves (:func:`begin`,
:func:`claim`, :func:`withdraw`, :func:`complete`, :func:`expire`, :func:`cancel`) check what the
definition allows — the machine compiled by ``transitions``, the task's taker, outcomes and form — and
refuse anything else with :class:`Refused` (a code, as the event's refusals have). Time comes in as an
argument (the workflow's clock) and deadlines as timestamps (the workflow computes working time in an
activity), so the module is deterministic and runs in the workflow sandbox.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from processes.definition import ProcessDefinition, StateSpec, Taker, TaskSpec, machine
from processes.forms import form_problems, offered_values
from workflows.inputs import Problem
from workflows.policy import SUPERVISOR_ROLES


class Refused(Exception):
    """A move the definition does not allow: ``code`` says why (``not_now``, ``not_taker``, ``full``, ...)."""

    def __init__(self, code: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(code + ("".join(f"; {p.message}" for p in problems)))
        self.code = code
        self.problems = list(problems)


@dataclass
class Person:
    """Who acts: a user of a unit (or the requester, through the portal: ``role == "requester"``)."""

    username: str
    unit: str = ""
    role: str = ""
    party_member: bool = False
    #: The unit and the units above it (grid, community, street, ...): a taker ``below`` a unit matches
    #: anyone whose chain holds it.
    units_above: tuple[str, ...] = ()


@dataclass
class Requester:
    """Who the instance is for, and where they live (the requester's grid, community and street)."""

    name: str
    phone: str = ""
    grid: str = ""
    community: str = ""
    street: str = ""


@dataclass
class SignUp:
    """One person signed up to a task claimed by many; ``waiting`` when the places were taken."""

    username: str
    waiting: bool = False
    checked_in: bool = False
    checked_out: bool = False


@dataclass
class ProcessTask:
    """A task an entered state opened."""

    task_id: str
    kind: str
    state: str
    #: The unit whose people take it (empty for the requester or a named person).
    unit: str = ""
    #: The one person who takes it (``taker_of``), when the definition names one.
    person: str = ""
    status: str = "open"  # open | claimed | done | cancelled
    claimed_by: str | None = None
    created_at: str = ""
    due_at: str | None = None
    completed_at: str | None = None
    outcome: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    sign_ups: list[SignUp] = field(default_factory=list)
    capacity: int | None = None


@dataclass
class CreditEntry:
    """What one completed task earned one person."""

    subject: str
    kind: str
    amount: float
    task_id: str


@dataclass
class Step:
    """One line of the instance's timeline."""

    seq: int
    action: str
    actor: str
    from_state: str
    to_state: str
    at: str
    task_id: str | None = None
    #: Whom the step was about when that is not its actor: the volunteer an organiser checked in or out.
    subject: str = ""


@dataclass
class Instance:
    """A process instance: definition kind and version it is pinned to, state, tasks, credits, timeline."""

    instance_id: str
    kind: str
    version: str
    state: str
    requester: Requester
    values: dict[str, Any]
    created_at: str
    tasks: list[ProcessTask] = field(default_factory=list)
    credits: list[CreditEntry] = field(default_factory=list)
    timeline: list[Step] = field(default_factory=list)
    #: Problem events the instance asked to start (a deliberation's decision): (task id, category,
    #: description), started by the workflow through the event lifecycle's own entrance.
    events: list[tuple[str, str, str]] = field(default_factory=list)
    ended_at: str | None = None

    def task(self, task_id: str) -> ProcessTask:
        """The task ``task_id``; :class:`Refused` ``no_task`` when there is none."""
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise Refused("no_task")

    def open_task(self) -> ProcessTask | None:
        """The task of the current state, while it is not done."""
        return next((t for t in reversed(self.tasks) if t.state == self.state and t.status in ("open", "claimed")),
                    None)


def _step(inst: Instance, action: str, actor: str, before: str, now: str, task_id: str | None = None,
          subject: str = "") -> None:
    inst.timeline.append(Step(len(inst.timeline) + 1, action, actor, before, inst.state, now, task_id, subject))


def resolve_taker(taker: Taker, inst: Instance) -> tuple[str, str]:
    """(unit, person) that ``taker`` names in ``inst``: a unit's people, or one person (``taker_of``)."""
    if taker.place == "taker_of":
        done = [t for t in inst.tasks if t.kind == taker.task and t.status == "done"]
        return "", (done[-1].claimed_by or "") if done else ""
    if taker.place == "requester":
        return "", ""
    unit = {"requester_grid": inst.requester.grid, "requester_community": inst.requester.community,
            "requester_street": inst.requester.street, "team": str(inst.values.get("team") or ""),
            "unit": taker.unit or ""}[taker.place]
    return unit, ""


def _matches(taker: Taker, unit: str, person: str, who: Person) -> bool:
    if taker.place == "requester":
        return who.role == "requester"
    if who.role == "requester":
        return False
    if taker.place == "taker_of":
        return bool(person) and who.username == person
    in_unit = who.unit == unit or (taker.below and unit in who.units_above)
    return (bool(unit) and in_unit and (not taker.roles or who.role in taker.roles)
            and (not taker.party_members or who.party_member))


def _enter(inst: Instance, d: ProcessDefinition, state: StateSpec, now: str, due_at: str | None) -> None:
    if state.final:
        inst.ended_at = now
        return
    spec = state.task
    if spec is None:
        return
    assert spec.taker is not None  # a definition without one is refused by processes.definition.check
    unit, person = resolve_taker(spec.taker, inst)
    capacity = None
    if spec.claim == "many" and spec.capacity_field:
        capacity = int(inst.values.get(spec.capacity_field) or 0)
    task_id = f"{inst.instance_id}.T{len(inst.tasks) + 1}"
    inst.tasks.append(ProcessTask(task_id, spec.kind, state.name, unit=unit, person=person, created_at=now,
                                  due_at=due_at if spec.deadline else None, capacity=capacity))


#: The catalogues' items by catalogue name (``processes.definition.catalogue``), carried with the
#: definition so that the workflow reads no file.
Catalogues = Mapping[str, Sequence[Mapping[str, Any]]]


def begin(d: ProcessDefinition, instance_id: str, requester: Requester, values: Mapping[str, Any], now: str,
          actor: str, due_at: str | None = None, catalogues: Catalogues | None = None) -> Instance:
    """A new instance of ``d`` at its start, its first task opened (due ``due_at``); :class:`Refused`
    ``invalid_input`` with the start form's problems."""
    problems = form_problems(d.input, values, offered_values(d.input, d.input, values, catalogues or {}))
    if problems:
        raise Refused("invalid_input", problems)
    inst = Instance(instance_id, d.kind, d.version, d.start, requester, dict(values), now)
    _step(inst, "start", actor, "", now)
    _enter(inst, d, d.state(d.start), now, due_at)
    return inst


def may_take(d: ProcessDefinition, inst: Instance, task: ProcessTask, who: Person) -> bool:
    """Whether ``who`` is one of the task's takers: the named person; the requester; or someone of its
    unit (or below it, when the definition says so) with one of its roles, a party member when asked."""
    spec = d.state(task.state).task
    assert spec is not None and spec.taker is not None
    return _matches(spec.taker, task.unit, task.person, who)


def may_close(d: ProcessDefinition, inst: Instance, task: ProcessTask, who: Person) -> bool:
    """Whether ``who`` may complete ``task``: for a task claimed by many, one of its ``closed_by`` (the
    organiser closes the sign-up); otherwise one of its takers."""
    spec = d.state(task.state).task
    assert spec is not None
    if spec.claim == "many" and spec.closed_by is not None:
        unit, person = resolve_taker(spec.closed_by, inst)
        return _matches(spec.closed_by, unit, person, who)
    return may_take(d, inst, task, who)


def _current(d: ProcessDefinition, inst: Instance, task_id: str) -> tuple[ProcessTask, TaskSpec]:
    task = inst.task(task_id)
    if task.state != inst.state or task.status not in ("open", "claimed") or inst.ended_at:
        raise Refused("not_now")
    spec = d.state(task.state).task
    assert spec is not None
    return task, spec


def claim(d: ProcessDefinition, inst: Instance, task_id: str, who: Person, now: str) -> SignUp | None:
    """``who`` takes the task (one taker) or signs up to it (many: a waiting place once it is full, and
    the sign-up returned). Refused: ``not_now``, ``not_taker``, ``claimed`` (someone else has it),
    ``signed_up`` (already)."""
    task, spec = _current(d, inst, task_id)
    if not may_take(d, inst, task, who):
        raise Refused("not_taker")
    if spec.claim == "many":
        if any(s.username == who.username for s in task.sign_ups):
            raise Refused("signed_up")
        taken = sum(1 for s in task.sign_ups if not s.waiting)
        entry = SignUp(who.username, waiting=task.capacity is not None and taken >= task.capacity)
        task.sign_ups.append(entry)
        _step(inst, "wait_list" if entry.waiting else "sign_up", who.username, inst.state, now, task_id)
        return entry
    if task.status == "claimed":
        raise Refused("claimed")
    task.status, task.claimed_by = "claimed", who.username
    _step(inst, "claim", who.username, inst.state, now, task_id)
    return None


def withdraw(d: ProcessDefinition, inst: Instance, task_id: str, who: Person, now: str) -> None:
    """``who`` withdraws a sign-up; the first on the waiting list takes the place."""
    task, spec = _current(d, inst, task_id)
    mine = next((s for s in task.sign_ups if s.username == who.username), None)
    if spec.claim != "many" or mine is None:
        raise Refused("not_signed_up")
    task.sign_ups.remove(mine)
    if not mine.waiting:
        moved_up = next((s for s in task.sign_ups if s.waiting), None)
        if moved_up is not None:
            moved_up.waiting = False
    _step(inst, "withdraw", who.username, inst.state, now, task_id)


def check_in(d: ProcessDefinition, inst: Instance, task_id: str, organiser: Person, username: str,
             out: bool, now: str) -> None:
    """The organiser (a taker of the current task) checks a volunteer who signed up (not waiting) in or out
    of the task ``task_id`` (the sign-up task, done or not)."""
    current = inst.open_task()
    if current is None or not may_take(d, inst, current, organiser):
        raise Refused("not_taker")
    task = inst.task(task_id)
    entry = next((s for s in task.sign_ups if s.username == username and not s.waiting), None)
    if entry is None:
        raise Refused("not_signed_up")
    if out and not entry.checked_in:
        raise Refused("not_checked_in")
    if out:
        entry.checked_out = True
    else:
        entry.checked_in = True
    _step(inst, "check_out" if out else "check_in", organiser.username, inst.state, now, task_id, username)


def complete(d: ProcessDefinition, inst: Instance, task_id: str, who: Person, outcome: str,
             values: Mapping[str, Any], now: str, next_due_at: str | None = None,
             catalogues: Catalogues | None = None) -> None:
    """``who`` completes the task with ``outcome`` (one of its outcomes) and its form ``values``; the
    instance moves, credits are earned, and the next state's task opens (due ``next_due_at``).
    Refused: ``not_now``, ``not_taker``, ``not_claimed`` (a one-taker task is claimed first, except by
    the requester, and except by the person it is already for: the taker an earlier task named, whose
    claim is then recorded with it), ``no_outcome``, ``invalid_form`` with the form's problems."""
    task, spec = _current(d, inst, task_id)
    if not may_close(d, inst, task, who):
        raise Refused("not_taker")
    needs_claim = spec.claim == "one" and spec.taker is not None and spec.taker.place != "requester"
    own = task.status == "open" and bool(task.person) and task.person == who.username
    if needs_claim and task.claimed_by != who.username and not own:
        raise Refused("not_claimed")
    if outcome not in spec.outcomes:
        raise Refused("no_outcome")
    problems = form_problems(spec.form, values, offered_values(spec.form, d.input, inst.values, catalogues or {}))
    if problems:
        raise Refused("invalid_form", problems)
    if needs_claim and task.claimed_by != who.username:  # their own task: the claim goes with it
        claim(d, inst, task_id, who, now)
    task.status, task.completed_at, task.outcome, task.values = "done", now, outcome, dict(values)
    if spec.claim == "one":
        task.claimed_by = task.claimed_by or who.username
    _credit(inst, spec, task)
    if spec.event is not None and values.get(spec.event.when) is True:
        inst.events.append((task_id, str(values.get(spec.event.category_field) or ""),
                            str(values.get(spec.event.description_field) or "")))
    _move(d, inst, outcome, who.username, now, task_id, next_due_at)


def _credit(inst: Instance, spec: TaskSpec, task: ProcessTask) -> None:
    for credit in spec.credits:
        amount = float(credit.amount if credit.amount is not None else task.values.get(credit.field or "", 0) or 0)
        if credit.to == "taker":
            subjects = [task.claimed_by or ""]
        else:  # everyone who had a place on the instance's sign-up tasks and was checked in and out
            subjects = [s.username for t in inst.tasks for s in t.sign_ups
                        if not s.waiting and s.checked_in and s.checked_out]
        inst.credits.extend(CreditEntry(subject, credit.kind, amount, task.task_id) for subject in subjects if subject)


def _move(d: ProcessDefinition, inst: Instance, trigger: str, actor: str, now: str, task_id: str | None,
          due_at: str | None) -> None:
    model, _ = machine(d, inst.state)
    before = inst.state
    cast(Any, model).trigger(trigger)  # legal by construction: outcomes are moves out of the state (check)
    inst.state = model.state
    _step(inst, trigger, actor, before, now, task_id)
    _enter(inst, d, d.state(inst.state), now, due_at)


def expire(d: ProcessDefinition, inst: Instance, task_id: str, now: str, next_due_at: str | None = None) -> bool:
    """The task's deadline passed: when the definition names a move for it (``on_deadline``), the task is
    closed and the instance moves (True); otherwise nothing moves here (False: the workflow warns and
    escalates)."""
    task, spec = _current(d, inst, task_id)
    if spec.on_deadline is None:
        return False
    task.status, task.completed_at, task.outcome = "done", now, spec.on_deadline
    _move(d, inst, spec.on_deadline, "timer", now, task_id, next_due_at)
    return True


def supervise(inst: Instance, task_id: str, mark: str, now: str) -> None:
    """A supervision mark of the timers on the open task, in the timeline (and so in the audit):
    ``remind`` once the reminder share of its deadline has passed, ``escalate`` once its deadline
    has passed and the definition says it escalates (the unit above sees it in the console)."""
    if mark not in ("remind", "escalate"):
        raise Refused("unknown_action")
    _step(inst, mark, "timer", inst.state, now, task_id)


#: Who may cancel an instance: the supervisors, and the community's staff (who look after its residents).
CANCELLERS = (*SUPERVISOR_ROLES, "community_staff")


def cancel(d: ProcessDefinition, inst: Instance, who: Person, now: str) -> None:
    """``who`` cancels the instance by its ``cancel`` move. Refused: ``not_taker`` (not one of
    :data:`CANCELLERS`), ``not_now`` (ended, or the definition has no such move here)."""
    if who.role not in CANCELLERS:
        raise Refused("not_taker")
    if inst.ended_at or "cancel" not in {m.trigger for m in d.transitions if inst.state in m.sources}:
        raise Refused("not_now")
    for task in inst.tasks:
        if task.status in ("open", "claimed"):
            task.status = "cancelled"
    _move(d, inst, "cancel", who.username, now, None, None)
