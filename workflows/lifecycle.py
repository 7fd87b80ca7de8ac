"""The event lifecycle state machine, declared once as data with ``transitions``.

The workflow builds a :class:`Lifecycle` and asks it before every move; the web asks the same
definition (:func:`triggers_from`) which actions to offer. States map onto the six stages of the
closed loop (intake, dispatch, handling, verification, feedback, close).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from transitions import Machine, MachineError


class State(StrEnum):
    """Where an event is in its lifecycle."""

    INTAKE = "intake"  # reported, not yet routed
    TRIAGE = "triage"  # no rule could place it: waits in the street command centre's triage inbox
    DISPATCHED = "dispatched"  # a handling task waits unclaimed in the unit's inbox
    HANDLING = "handling"  # a worker claimed the handling task
    VERIFICATION = "verification"  # handled; a verification task waits for the grid worker
    VERIFYING = "verifying"  # the grid worker claimed the verification task
    FEEDBACK = "feedback"  # verified; waiting for the reporter's rating
    CLOSED = "closed"  # closed (办结)


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
    State.TRIAGE: Stage.DISPATCH,
    State.DISPATCHED: Stage.DISPATCH,
    State.HANDLING: Stage.HANDLING,
    State.VERIFICATION: Stage.VERIFICATION,
    State.VERIFYING: Stage.VERIFICATION,
    State.FEEDBACK: Stage.FEEDBACK,
    State.CLOSED: Stage.CLOSE,
}

#: Every legal move: trigger, from-state(s), to-state. Anything not listed here is illegal.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "route", "source": State.INTAKE, "dest": State.DISPATCHED},
    {"trigger": "route_to_triage", "source": State.INTAKE, "dest": State.TRIAGE},
    {"trigger": "triage", "source": State.TRIAGE, "dest": State.DISPATCHED},
    {"trigger": "claim", "source": State.DISPATCHED, "dest": State.HANDLING},
    {"trigger": "claim", "source": State.VERIFICATION, "dest": State.VERIFYING},
    {"trigger": "complete", "source": State.HANDLING, "dest": State.VERIFICATION},
    {"trigger": "verify_pass", "source": State.VERIFYING, "dest": State.FEEDBACK},
    {"trigger": "verify_fail", "source": State.VERIFYING, "dest": State.DISPATCHED},
    {"trigger": "rate", "source": State.FEEDBACK, "dest": State.CLOSED},
    {"trigger": "accept_by_default", "source": State.FEEDBACK, "dest": State.CLOSED},
]

#: Which task kind a worker action applies to, by state: the task a claim or complete targets.
TASK_KIND_OF_STATE: dict[State, str] = {
    State.TRIAGE: "triage",
    State.DISPATCHED: "handle",
    State.HANDLING: "handle",
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
    """One event's state machine. Plain ``Machine`` (no locks), so it runs in the workflow sandbox."""

    state: str
    trigger: Callable[..., bool]  # added by transitions.Machine

    def __init__(self, initial: State = State.INTAKE) -> None:
        self._machine = Machine(
            model=self,
            states=[s.value for s in State],
            transitions=[_as_values(t) for t in TRANSITIONS],
            initial=initial.value,
            auto_transitions=False,
        )

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
        return trigger in self._machine.get_triggers(self.state)

    def fire(self, trigger: str) -> tuple[State, State]:
        """Apply ``trigger``; returns (from, to). Raises :class:`IllegalTransition`, never MachineError."""
        before = self.current
        if not self.may(trigger):
            raise IllegalTransition(trigger, before)
        try:
            self.trigger(trigger)
        except MachineError as exc:  # pragma: no cover - may() guards this; kept for safety
            raise IllegalTransition(trigger, before) from exc
        return before, self.current


def _as_values(transition: dict[str, Any]) -> dict[str, Any]:
    return {
        "trigger": transition["trigger"],
        "source": State(transition["source"]).value,
        "dest": State(transition["dest"]).value,
    }


def triggers_from(state: State | str) -> list[str]:
    """The triggers legal from ``state``, in declaration order (for the UI and the API)."""
    value = State(state)
    return [t["trigger"] for t in TRANSITIONS if t["source"] == value]
