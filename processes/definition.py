"""Process definitions as data (issue 14): a process beyond problem events — a proxy service (代办), a
micro-wish (微心愿), a volunteer activity (志愿活动), a community deliberation (居民说事) — declared in a
JSON file, validated with every problem and its place, and compiled with ``transitions`` (the library of
the event lifecycle, :mod:`workflows.lifecycle`).

A definition names its **states** and the **transitions** between them. A state may open one **task**:
what kind it is, who takes it (:class:`Taker`: the requester's grid, community or street, a named unit,
the team the instance names; a role, party members only), how it is claimed (one person, or several up
to a capacity with a waiting list after), its deadline in working hours with a reminder and an
escalation, the form its taker fills in, the **outcomes** its completion may fire (each a trigger of a
transition out of that state), and what it **credits** to assessment (hours, pioneer points). A final
state ends the instance.

This module is pure but for the file reads of :func:`load`, :func:`shipped` and :func:`catalogue`,
which the workflow never calls (the definition and the catalogues come in its input), and it reads no
clock: the workflow that runs a definition imports it.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import deque
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from transitions import Machine

from rules.responsibility_list import Problem
from workflows.policy import STAFF_ROLES

# A definition's machine is compiled for each move (processes.instance): the library's line per state
# entered and left would flood the logs.
logging.getLogger("transitions").setLevel(logging.WARNING)

#: The definitions shipped with the platform (``processes/data/*.json``).
DATA_DIR = Path(__file__).parent / "data"
#: Names of states, triggers, task kinds and form fields: what a workflow, a URL and a form may carry.
NAME = r"^[a-z][a-z0-9_]{0,39}$"
#: Catalogues a choice field may offer (``processes/data/_catalogue_<name>.json``).
CATALOGUES = ("proxy_items",)
NUMERIC = ("integer", "number")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormField(_Strict):
    """One field of a start form or of a task's form; validated wherever it enters (pages, API, workflow)."""

    name: str = Field(pattern=NAME)
    label_zh: str = Field(min_length=1, max_length=60)
    label_en: str = Field(default="", max_length=80)
    type: Literal["text", "integer", "number", "boolean", "date", "datetime", "choice", "checklist", "photo",
                  "phone"]
    required: bool = False
    #: For ``choice`` and ``checklist``: the values offered (a checklist's items must all be ticked).
    choices: list[str] = Field(default_factory=list, max_length=200)
    #: For numbers: the bounds; for text: ``max`` is the length.
    min: float | None = None
    max: float | None = None
    #: For ``choice``: the values are the codes of this catalogue's items (:data:`CATALOGUES`).
    catalogue: str | None = None
    #: For ``checklist``: the items are the materials of the catalogue item chosen in this start field.
    materials_of: str | None = Field(default=None, pattern=NAME)


class Taker(_Strict):
    """Who takes a task: the people of a unit (``place``; ``below``: also of the units below it), with
    one of ``roles`` when given, party members only when ``party_members``; or ``requester`` (the
    resident, through the portal with the instance's tracking key); or ``taker_of`` (whoever completed
    the instance's task of kind ``task``: the adopter of a wish fulfils it)."""

    place: Literal["requester_grid", "requester_community", "requester_street", "team", "unit", "requester",
                   "taker_of"]
    #: With ``place == "unit"``: the unit's code.
    unit: str | None = Field(default=None, max_length=40)
    #: With ``place == "taker_of"``: the kind of the task whose taker takes this one.
    task: str | None = Field(default=None, pattern=NAME)
    below: bool = False
    roles: list[str] = Field(default_factory=list)
    party_members: bool = False


class Deadline(_Strict):
    """A task's deadline in working hours, with a reminder (a mark of the timer in the timeline) at
    ``remind_at`` of them and, once it has passed, a warning that escalates when ``escalate``: a mark
    in the timeline and the task marked late, which puts it in the console of the units above."""

    hours: int = Field(gt=0, le=2000)
    remind_at: float = Field(default=0.75, gt=0, lt=1)
    escalate: bool = True


#: What a task may credit (the assessment schemes' ``credits`` parts name these).
CreditKind = Literal["volunteer_hours", "pioneer_points", "proxy_service", "wish_fulfilled", "visit"]
CREDIT_KINDS: tuple[str, ...] = get_args(CreditKind)


class Credit(_Strict):
    """What a completed task adds to its taker's assessment: ``kind`` counted ``amount`` times, or the
    value of the form's numeric field ``field`` (e.g. the hours a volunteer served)."""

    kind: CreditKind
    amount: float | None = Field(default=None, ge=0, le=1000)
    field: str | None = Field(default=None, pattern=NAME)
    #: ``taker``: whoever completed the task; ``signed_up``: each person who had a place on the
    #: instance's tasks claimed by ``many`` (not the waiting list) and was checked in and out.
    to: Literal["taker", "signed_up"] = "taker"


class EventEffect(_Strict):
    """A completed task that starts a problem event (routed by the responsibility list) when its boolean
    form field ``when`` is ticked: the category and the description from its form fields."""

    when: str = Field(pattern=NAME)
    category_field: str = Field(pattern=NAME)
    description_field: str = Field(pattern=NAME)


class TaskSpec(_Strict):
    """The task a state opens."""

    kind: str = Field(pattern=NAME)
    title_zh: str = Field(min_length=1, max_length=60)
    title_en: str = Field(default="", max_length=80)
    taker: Taker | None = None
    #: ``one``: the first to claim it takes it; ``many``: several sign up, up to the instance's start
    #: field ``capacity_field``, with a waiting list after.
    claim: Literal["one", "many"] = "one"
    capacity_field: str | None = Field(default=None, pattern=NAME)
    #: For ``many``: who completes it (the organiser closes the sign-up).
    closed_by: Taker | None = None
    deadline: Deadline | None = None
    form: list[FormField] = Field(default_factory=list, max_length=40)
    #: The triggers its completion may fire (the taker chooses one); each leaves this state.
    outcomes: list[str] = Field(default_factory=lambda: ["done"], min_length=1)
    #: The move fired when the deadline passes unanswered (a rating window accepts by default); without
    #: it, a passed deadline warns and escalates as an event's task does.
    on_deadline: str | None = Field(default=None, pattern=NAME)
    credits: list[Credit] = Field(default_factory=list)
    event: EventEffect | None = None


class NoticeSpec(_Strict):
    """What the requester is told (through the notices' outbox and delivery, like a reporter) when the
    instance enters the state: a fixed text (no placeholders: a definition's text is never formatted
    with anyone's input); sent only to a requester who gave a phone number."""

    text_zh: str = Field(min_length=4, max_length=200, pattern=r"\S")
    text_en: str = Field(default="", max_length=300)


class StateSpec(_Strict):
    """One state: a task it opens, or final; and the notice its entry sends."""

    name: str = Field(pattern=NAME)
    label_zh: str = Field(min_length=1, max_length=40)
    label_en: str = Field(default="", max_length=60)
    task: TaskSpec | None = None
    final: bool = False
    notice: NoticeSpec | None = None


class TransitionSpec(_Strict):
    """A legal move: ``trigger`` from ``source`` (one state or several) to ``dest``."""

    trigger: str = Field(pattern=NAME)
    source: str | list[str]
    dest: str

    @property
    def sources(self) -> list[str]:
        """``source`` as a list."""
        return [self.source] if isinstance(self.source, str) else list(self.source)


class ProcessDefinition(_Strict):
    """A validated process definition (one version of one ``kind``)."""

    kind: str = Field(pattern=NAME)
    version: str = Field(pattern=r"^[0-9A-Za-z._-]{1,40}$")
    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(default="", max_length=60)
    #: Residents may request it themselves on the portal (``/p/new/<kind>``), not only staff for them.
    portal: bool = False
    start: str
    input: list[FormField] = Field(default_factory=list, max_length=40)
    states: list[StateSpec] = Field(min_length=2, max_length=60)
    transitions: list[TransitionSpec] = Field(min_length=1, max_length=200)

    def state(self, name: str) -> StateSpec:
        """The state called ``name`` (KeyError when there is none)."""
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    def final_states(self) -> list[str]:
        """The states that end an instance."""
        return [s.name for s in self.states if s.final]


class InvalidDefinition(Exception):
    """A definition that failed validation; carries every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]))
        self.problems = problems


def _problem(where: str, message: str, code: str, **params: Any) -> Problem:
    """A problem at the dotted path ``where`` in the file; ``code`` is its catalogue key
    (``processcheck.<code>``), ``params`` its values."""
    return Problem(f"definition, field {where or '(root)'}", message, code,
                   {k: str(v) for k, v in params.items()}, None, where or None)


def check(raw: Any) -> tuple[ProcessDefinition | None, list[Problem]]:
    """Validate a decoded definition; returns it (or None) and every problem found, each with its place
    (the dotted path in the file: ``states.2.task.taker``, ``transitions.4.dest``)."""
    try:
        parsed = ProcessDefinition.model_validate(raw)
    except ValidationError as exc:
        return None, [_problem(".".join(str(p) for p in err["loc"]), err["msg"], err["type"],
                               **{k: v for k, v in (err.get("ctx") or {}).items() if k != "error"})
                      for err in exc.errors()]
    problems = _graph_problems(parsed) + _task_problems(parsed)
    return (parsed if not problems else None), problems


def _graph_problems(d: ProcessDefinition) -> list[Problem]:
    """Names, the start, the transitions' ends, reachability, and a way out of every state that is not final."""
    problems: list[Problem] = []
    names: set[str] = set()
    for i, state in enumerate(d.states):
        if state.name in names:
            problems.append(_problem(f"states.{i}.name", f"duplicate state '{state.name}'", "duplicate_state",
                                     state=state.name))
        names.add(state.name)
    if d.start not in names:
        problems.append(_problem("start", f"unknown state '{d.start}'", "unknown_state", state=d.start))
    outgoing: dict[str, set[str]] = {name: set() for name in names}
    for i, move in enumerate(d.transitions):
        for j, source in enumerate(move.sources):
            place = f"transitions.{i}.source" + (f".{j}" if isinstance(move.source, list) else "")
            if source not in names:
                problems.append(_problem(place, f"unknown state '{source}'", "unknown_state", state=source))
        if move.dest not in names:
            problems.append(_problem(f"transitions.{i}.dest", f"unknown state '{move.dest}'", "unknown_state",
                                     state=move.dest))
        for source in move.sources:
            if source in names and move.dest in names:
                outgoing[source].add(move.dest)
    if not d.final_states():
        problems.append(_problem("states", "no final state: an instance could never end", "no_final_state"))
    reached = _reachable(d.start, outgoing) if d.start in names else set()
    for i, state in enumerate(d.states):
        if d.start in names and state.name not in reached:
            problems.append(_problem(f"states.{i}", f"state '{state.name}' cannot be reached from '{d.start}'",
                                     "unreachable_state", state=state.name))
        if state.final and any(state.name in m.sources for m in d.transitions):
            problems.append(_problem(f"states.{i}.final", f"final state '{state.name}' has moves out of it",
                                     "final_with_moves", state=state.name))
        if not state.final and not outgoing.get(state.name):
            problems.append(_problem(f"states.{i}", f"state '{state.name}' is not final and has no move out",
                                     "dead_end", state=state.name))
    return problems


def _reachable(start: str, outgoing: dict[str, set[str]]) -> set[str]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in outgoing.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def _task_problems(d: ProcessDefinition) -> list[Problem]:
    """Each task: a taker that can be found, outcomes that are moves out of its state, credits from its
    own numeric fields, a capacity from the start form."""
    problems: list[Problem] = []
    inputs = {f.name: f for f in d.input}
    problems.extend(_field_problems(d.input, "input", inputs))
    for i, state in enumerate(d.states):
        task = state.task
        if task is None:
            continue
        at = f"states.{i}.task"
        if state.final:
            problems.append(_problem(at, f"final state '{state.name}' opens a task", "task_in_final_state",
                                     state=state.name))
        if task.taker is None:
            problems.append(_problem(f"{at}.taker", f"task '{task.kind}' has no taker", "task_without_taker",
                                     task=task.kind))
        else:
            if task.taker.place == "unit" and not task.taker.unit:
                problems.append(_problem(f"{at}.taker.unit", "a taker of place 'unit' names the unit",
                                         "taker_without_unit", task=task.kind))
            if task.taker.place == "team" and "team" not in inputs:
                problems.append(_problem(f"{at}.taker.place", "a team taker needs a start field 'team'",
                                         "team_without_field", task=task.kind))
            if task.taker.place == "taker_of" and task.taker.task not in {
                    s.task.kind for s in d.states if s.task is not None and s.task is not task}:
                problems.append(_problem(f"{at}.taker.task", f"no other task of kind '{task.taker.task}'",
                                         "taker_of_unknown_task", task=task.taker.task or ""))
            for k, role in enumerate(task.taker.roles):
                if role not in STAFF_ROLES:
                    problems.append(_problem(f"{at}.taker.roles.{k}", f"unknown role '{role}'", "unknown_role",
                                             role=role))
        triggers = {m.trigger for m in d.transitions if state.name in m.sources}
        for k, outcome in enumerate(task.outcomes):
            if outcome not in triggers:
                problems.append(_problem(f"{at}.outcomes.{k}", f"outcome '{outcome}' is no move out of "
                                         f"'{state.name}'", "outcome_without_move", outcome=outcome,
                                         state=state.name))
        if task.on_deadline is not None and task.on_deadline not in triggers:
            problems.append(_problem(f"{at}.on_deadline", f"'{task.on_deadline}' is no move out of "
                                     f"'{state.name}'", "outcome_without_move", outcome=task.on_deadline,
                                     state=state.name))
        if task.on_deadline is not None and task.deadline is None:
            problems.append(_problem(f"{at}.on_deadline", "a move on the deadline needs a deadline",
                                     "on_deadline_without_deadline"))
        fields = {f.name: f for f in task.form}
        problems.extend(_field_problems(task.form, f"{at}.form", inputs))
        if task.event is not None:
            wanted = {"when": ("boolean",), "category_field": ("choice", "text"), "description_field": ("text",)}
            for attr, types in wanted.items():
                name = getattr(task.event, attr)
                if name not in fields or fields[name].type not in types:
                    problems.append(_problem(f"{at}.event.{attr}", f"'{name}' is no {'/'.join(types)} field of "
                                             "the task's form", "event_field_unknown", field=name))
        for k, credit in enumerate(task.credits):
            if (credit.amount is None) == (credit.field is None):
                problems.append(_problem(f"{at}.credits.{k}", "a credit has either an amount or a field",
                                         "credit_amount_or_field"))
            elif credit.field is not None and (credit.field not in fields
                                               or fields[credit.field].type not in NUMERIC):
                problems.append(_problem(f"{at}.credits.{k}.field", f"'{credit.field}' is no numeric field of "
                                         f"the task's form", "credit_field_unknown", field=credit.field))
        if task.claim == "many":
            capacity = inputs.get(task.capacity_field or "")
            if capacity is None or capacity.type != "integer":
                problems.append(_problem(f"{at}.capacity_field", "a task claimed by many names an integer "
                                         "start field for its capacity", "capacity_field_unknown",
                                         field=task.capacity_field or ""))
            if task.closed_by is None:
                problems.append(_problem(f"{at}.closed_by", "a task claimed by many names who closes it",
                                         "many_without_closer"))
    return problems


def _field_problems(form: list[FormField], at: str, inputs: dict[str, FormField]) -> list[Problem]:
    """Unique names, choices where they are needed, known catalogues, materials of a catalogue field."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for k, f in enumerate(form):
        if f.name in seen:
            problems.append(_problem(f"{at}.{k}.name", f"duplicate field '{f.name}'", "duplicate_field",
                                     field=f.name))
        seen.add(f.name)
        if f.catalogue is not None and (f.type != "choice" or f.catalogue not in CATALOGUES):
            problems.append(_problem(f"{at}.{k}.catalogue", f"unknown catalogue '{f.catalogue}' (or not a "
                                     "choice)", "unknown_catalogue", catalogue=f.catalogue))
        if f.type in ("choice", "checklist") and not (f.choices or f.catalogue or f.materials_of):
            problems.append(_problem(f"{at}.{k}.choices", f"field '{f.name}' offers nothing to choose",
                                     "choice_without_choices", field=f.name))
        if f.materials_of is not None:
            source = inputs.get(f.materials_of)
            if f.type != "checklist" or source is None or source.catalogue is None:
                problems.append(_problem(f"{at}.{k}.materials_of", f"'{f.materials_of}' is no catalogue field "
                                         "of the start form", "materials_of_unknown", field=f.materials_of))
    return problems


def catalogue(name: str) -> list[dict[str, Any]]:
    """The items of a shipped catalogue (:data:`CATALOGUES`), each with its ``code``."""
    if name not in CATALOGUES:
        raise KeyError(name)
    items: list[dict[str, Any]] = json.loads(_catalogue_text(name))  # a fresh copy for each caller
    return items


@functools.cache
def _catalogue_text(name: str) -> str:
    """A shipped catalogue's file, read once per process (they change only with a release)."""
    return (DATA_DIR / f"_catalogue_{name}.json").read_text(encoding="utf-8")


def parse(raw: Any) -> ProcessDefinition:
    """A decoded definition, validated; raises :class:`InvalidDefinition` with every problem."""
    parsed, problems = check(raw)
    if parsed is None:
        raise InvalidDefinition(problems)
    return parsed


def load(path: Path | str) -> ProcessDefinition:
    """Read and validate a definition file; raises :class:`InvalidDefinition` with every problem."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidDefinition([Problem(str(path), f"cannot read: {exc}", "unreadable")]) from exc
    except json.JSONDecodeError as exc:
        raise InvalidDefinition([Problem(f"{path}:{exc.lineno}:{exc.colno}", exc.msg, "not_json",
                                         line=exc.lineno, column=exc.colno)]) from exc
    return parse(raw)


def shipped() -> list[ProcessDefinition]:
    """The definitions shipped with the platform, by kind."""
    return sorted((load(p) for p in DATA_DIR.glob("*.json") if not p.name.startswith("_")), key=lambda d: d.kind)


class MachineModel:
    """The model a compiled definition moves: ``state`` and ``trigger(name)`` are added by ``transitions``."""

    state: str


def machine(d: ProcessDefinition, state: str | None = None) -> tuple[MachineModel, Machine]:
    """``d`` compiled with ``transitions``: a model at ``state`` (default: the start) and its machine, in
    which only the definition's moves are legal (an illegal trigger raises ``MachineError``)."""
    model = MachineModel()
    compiled = Machine(model=model, states=[s.name for s in d.states],
                       transitions=[{"trigger": m.trigger, "source": m.sources, "dest": m.dest}
                                    for m in d.transitions],
                       initial=state or d.start, auto_transitions=False, ignore_invalid_triggers=False)
    return model, compiled


def triggers_at(d: ProcessDefinition, state: str) -> list[str]:
    """The moves out of ``state``, in the definition's order."""
    return list(dict.fromkeys(m.trigger for m in d.transitions if state in m.sources))
