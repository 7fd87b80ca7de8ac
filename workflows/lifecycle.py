"""The event lifecycle state machine, declared once as data with ``transitions``.

The workflow builds a :class:`Lifecycle` and asks it before every move; the web asks the same
definition (:func:`triggers_from`) which actions to offer. States map onto the six stages of the
closed loop (intake, dispatch, handling, verification, feedback, close).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from transitions import Machine


class State(StrEnum):
    """Where an event is in its lifecycle."""

    INTAKE = "intake"  # reported, not yet routed
    REROUTING = "rerouting"  # returned or escalated: the responsibility list decides again
    TRIAGE = "triage"  # no rule could place it: waits in a command centre's triage inbox
    DISPATCHED = "dispatched"  # a handling task waits unclaimed in the unit's inbox
    HANDLING = "handling"  # a worker claimed the handling task
    RETURN_REQUESTED = "return_requested"  # the worker says it is not theirs; a supervisor decides
    VERIFICATION = "verification"  # handled; a verification task waits for the verifying unit
    VERIFYING = "verifying"  # someone of the verifying unit claimed the verification task
    FEEDBACK = "feedback"  # verified; waiting for the reporter's rating
    REVIEW = "review"  # dissatisfied after the last allowed rework: a supervisor reviews it
    CLOSED = "closed"  # closed (结案)
    VOIDED = "voided"  # voided (作废) by a supervisor
    MERGED = "merged"  # merged into another event (a duplicate, 合并) by a supervisor; undone within its window


class Stage(StrEnum):
    """The six stages of the closed loop, as shown on the timeline."""

    INTAKE = "intake"
    DISPATCH = "dispatch"
    HANDLING = "handling"
    VERIFICATION = "verification"
    FEEDBACK = "feedback"
    CLOSE = "close"


STAGE_OF_STATE: dict[State, Stage] = {
    State.INTAKE: Stage.INTAKE,
    State.REROUTING: Stage.DISPATCH,
    State.TRIAGE: Stage.DISPATCH,
    State.DISPATCHED: Stage.DISPATCH,
    State.HANDLING: Stage.HANDLING,
    State.RETURN_REQUESTED: Stage.HANDLING,
    State.VERIFICATION: Stage.VERIFICATION,
    State.VERIFYING: Stage.VERIFICATION,
    State.FEEDBACK: Stage.FEEDBACK,
    State.REVIEW: Stage.FEEDBACK,
    State.CLOSED: Stage.CLOSE,
    State.VOIDED: Stage.CLOSE,
    State.MERGED: Stage.CLOSE,
}

TERMINAL = (State.CLOSED, State.VOIDED, State.MERGED)
_OPEN = [s for s in State if s not in TERMINAL]
#: The states a duplicate may be merged from: placed and settled (not while the list decides, which an
#: activity does, nor in the feedback stage, which waits for its reporter's rating).
MERGEABLE = [State.TRIAGE, State.DISPATCHED, State.HANDLING, State.RETURN_REQUESTED, State.VERIFICATION,
             State.VERIFYING, State.REVIEW]
#: A destination meaning "the state the event was in before the move that this one undoes" (``unmerge``
#: returns a merged duplicate to where it was; :meth:`Lifecycle.fire` takes that state as ``back_to``).
PREVIOUS = "previous"
ASSIGNED = [State.DISPATCHED, State.HANDLING]  # a handling task is in some inbox

#: Every legal move: trigger, from-state(s), to-state (``None``: stays, but the move is recorded).
#: Anything not listed here is illegal. Who may fire a trigger is in ``ACTORS``.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "route", "source": [State.INTAKE, State.REROUTING], "dest": State.DISPATCHED},
    {"trigger": "route_to_triage", "source": [State.INTAKE, State.REROUTING], "dest": State.TRIAGE},
    {"trigger": "triage", "source": State.TRIAGE, "dest": State.DISPATCHED},
    {"trigger": "claim", "source": State.DISPATCHED, "dest": State.HANDLING},
    {"trigger": "claim", "source": State.VERIFICATION, "dest": State.VERIFYING},
    {"trigger": "release", "source": State.HANDLING, "dest": State.DISPATCHED},
    {"trigger": "release", "source": State.VERIFYING, "dest": State.VERIFICATION},
    {"trigger": "complete", "source": State.HANDLING, "dest": State.VERIFICATION},
    {"trigger": "request_return", "source": State.HANDLING, "dest": State.RETURN_REQUESTED},
    {"trigger": "approve_return", "source": State.RETURN_REQUESTED, "dest": State.REROUTING},
    {"trigger": "deny_return", "source": State.RETURN_REQUESTED, "dest": State.HANDLING},
    {"trigger": "escalate", "source": State.HANDLING, "dest": State.REROUTING},
    {"trigger": "request_extension", "source": State.HANDLING, "dest": None},
    {"trigger": "approve_extension", "source": [State.HANDLING, State.DISPATCHED], "dest": None},
    {"trigger": "deny_extension", "source": [State.HANDLING, State.DISPATCHED], "dest": None},
    {"trigger": "request_cohandling", "source": State.HANDLING, "dest": None},
    {"trigger": "cohandle", "source": [State.HANDLING, State.RETURN_REQUESTED], "dest": None},
    {"trigger": "remind", "source": ASSIGNED, "dest": None},
    {"trigger": "urge", "source": ASSIGNED, "dest": None},
    {"trigger": "escalate_overdue", "source": ASSIGNED, "dest": State.DISPATCHED},
    {"trigger": "force_escalate", "source": ASSIGNED, "dest": State.DISPATCHED},
    {"trigger": "reassign", "source": ASSIGNED, "dest": State.DISPATCHED},
    {"trigger": "change_deadline", "source": ASSIGNED, "dest": None},
    {"trigger": "verify_pass", "source": State.VERIFYING, "dest": State.FEEDBACK},
    {"trigger": "verify_fail", "source": State.VERIFYING, "dest": State.DISPATCHED},
    {"trigger": "rate", "source": State.FEEDBACK, "dest": State.CLOSED},
    {"trigger": "rework", "source": State.FEEDBACK, "dest": State.DISPATCHED},
    {"trigger": "to_review", "source": State.FEEDBACK, "dest": State.REVIEW},
    {"trigger": "review_rework", "source": State.REVIEW, "dest": State.DISPATCHED},
    {"trigger": "accept_by_default", "source": State.FEEDBACK, "dest": State.CLOSED},
    {"trigger": "pause", "source": _OPEN, "dest": None},
    {"trigger": "resume", "source": _OPEN, "dest": None},
    {"trigger": "void", "source": _OPEN, "dest": State.VOIDED},
    {"trigger": "close", "source": [s for s in _OPEN if s != State.INTAKE], "dest": State.CLOSED},
    {"trigger": "reopen", "source": [State.CLOSED, State.VOIDED], "dest": State.DISPATCHED},
    {"trigger": "merge", "source": MERGEABLE, "dest": State.MERGED},
    {"trigger": "unmerge", "source": State.MERGED, "dest": PREVIOUS},
]
#: For each trigger whose destination is :data:`PREVIOUS`: the trigger that left that state, whose
#: sources are the states it may return to.
UNDOES = {"unmerge": "merge"}

#: Who fires each trigger (for the UI and the validators): worker, supervisor, reporter, rule, timer.
ACTORS: dict[str, str] = {
    "route": "rule", "route_to_triage": "rule", "triage": "supervisor",
    "claim": "worker", "release": "worker", "complete": "worker", "request_return": "worker",
    "approve_return": "supervisor", "deny_return": "supervisor", "escalate": "worker",
    "request_extension": "worker", "approve_extension": "supervisor", "deny_extension": "supervisor",
    "request_cohandling": "worker", "cohandle": "worker", "remind": "timer", "urge": "timer",
    "escalate_overdue": "timer", "force_escalate": "supervisor", "reassign": "supervisor",
    "change_deadline": "supervisor", "verify_pass": "worker", "verify_fail": "worker", "rate": "reporter",
    "rework": "reporter", "to_review": "reporter", "review_rework": "supervisor", "accept_by_default": "timer",
    "pause": "supervisor", "resume": "supervisor", "void": "supervisor", "close": "supervisor",
    "reopen": "supervisor", "merge": "supervisor", "unmerge": "supervisor",
}

#: Which task kind a worker action applies to, by state: the task a claim or complete targets.
TASK_KIND_OF_STATE: dict[State, str] = {
    State.TRIAGE: "triage",
    State.DISPATCHED: "handle",
    State.HANDLING: "handle",
    State.RETURN_REQUESTED: "handle",
    State.VERIFICATION: "verify",
    State.VERIFYING: "verify",
}


class IllegalTransition(Exception):
    """A trigger that the state machine does not allow from the current state."""

    def __init__(self, trigger: str, state: State) -> None:
        super().__init__(f"action '{trigger}' is not allowed in state '{state.value}'")
        self.trigger = trigger
        self.state = state


class Lifecycle:
    """One event's state machine: its current state, moved by the process's one compiled
    ``transitions.Machine`` (:data:`MACHINE`).

    Why not a Machine per event: building one per workflow instance cost a few per cent of the
    worker's time and memory per cached workflow (issue 13), and a Machine shared through
    ``add_model`` would keep every event it ever saw. The Machine holds no model; ``fire`` asks it
    for the move of the trigger from the current state, which is all the data it has (no callbacks,
    no conditions)."""

    def __init__(self, initial: State = State.INTAKE) -> None:
        self.state = initial.value

    @property
    def current(self) -> State:
        """The current state as an enum."""
        return State(self.state)

    @property
    def stage(self) -> Stage:
        """The stage of the closed loop the event is in."""
        return STAGE_OF_STATE[self.current]

    def may(self, trigger: str) -> bool:
        """Whether ``trigger`` is legal now."""
        return trigger in _TRIGGERS[self.state]

    def fire(self, trigger: str, back_to: State | str | None = None) -> tuple[State, State]:
        """Apply ``trigger``; returns (from, to). Raises :class:`IllegalTransition`, never MachineError.

        A trigger that undoes another (:data:`UNDOES`, e.g. ``unmerge``) returns to ``back_to``, the
        state the undone move left, which must be one of that move's sources."""
        before = self.current
        if not self.may(trigger):
            raise IllegalTransition(trigger, before)
        back: State | None = None
        if trigger in UNDOES:
            back = State(back_to) if back_to is not None else None
            if back is None or back not in returns_to(trigger):
                raise IllegalTransition(trigger, before)
        dest = MACHINE.events[trigger].transitions[self.state][0].dest
        if back is not None:
            self.state = back.value
        elif dest is not None:  # None: an internal transition, the state stays
            self.state = dest
        return before, self.current


def _sources(transition: dict[str, Any]) -> list[State]:
    source = transition["source"]
    return [State(s) for s in source] if isinstance(source, list) else [State(source)]


def _as_values(transition: dict[str, Any]) -> dict[str, Any]:
    dest = transition["dest"]
    return {
        "trigger": transition["trigger"],
        "source": [s.value for s in _sources(transition)],
        # None: an internal transition (a PREVIOUS destination is set by ``Lifecycle.fire`` after it)
        "dest": State(dest).value if dest not in (None, PREVIOUS) else None,
    }


#: The state machine, compiled once per process by ``transitions`` from :data:`TRANSITIONS`. It keeps
#: no model: each event's :class:`Lifecycle` holds its own state and asks it for the moves.
MACHINE = Machine(
    model=None,
    states=[s.value for s in State],
    transitions=[_as_values(t) for t in TRANSITIONS],
    initial=State.INTAKE.value,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)
#: The triggers legal from each state, as the Machine has them.
_TRIGGERS: dict[str, frozenset[str]] = {s.value: frozenset(MACHINE.get_triggers(s.value)) for s in State}


def returns_to(trigger: str) -> list[State]:
    """The states a trigger with the destination :data:`PREVIOUS` may return to: the sources of the
    move it undoes (``unmerge``: the states a duplicate may be merged from)."""
    undone = UNDOES[trigger]
    return [s for t in TRANSITIONS if t["trigger"] == undone for s in _sources(t)]


def triggers_from(state: State | str) -> list[str]:
    """The triggers legal from ``state``, in declaration order, each once (for the UI and the API)."""
    value = State(state)
    found: list[str] = []
    for t in TRANSITIONS:
        if value in _sources(t) and t["trigger"] not in found:
            found.append(t["trigger"])
    return found


def legal_moves() -> list[tuple[State, str, State]]:
    """Every (from-state, trigger, to-state) the machine allows; an internal move stays in its state."""
    moves: list[tuple[State, str, State]] = []
    for t in TRANSITIONS:
        for source in _sources(t):
            if t["dest"] == PREVIOUS:
                moves += [(source, t["trigger"], back) for back in returns_to(t["trigger"])]
            else:
                moves.append((source, t["trigger"], State(t["dest"]) if t["dest"] is not None else source))
    return moves
