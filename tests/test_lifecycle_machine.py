"""The event lifecycle state machine (workflows.lifecycle): what the table means, not the table again.

The rules of who may do what in each state, and what the pages offer, are scenario tests in
``tests/test_policy.py``; here: stages, paths through the closed loop, reachability, and that nothing
but a declared trigger moves an event."""

from __future__ import annotations

from collections import deque

import pytest

from workflows.lifecycle import (
    STAGE_OF_STATE,
    TASK_KIND_OF_STATE,
    TRANSITIONS,
    IllegalTransition,
    Lifecycle,
    Stage,
    State,
    legal_moves,
    returns_to,
    triggers_from,
)

TRIGGERS: list[str] = sorted({t["trigger"] for t in TRANSITIONS})
MOVES: list[tuple[State, str, State]] = legal_moves()  # TRANSITIONS with one row per source state
INTERNAL = {t["trigger"] for t in TRANSITIONS if t["dest"] is None}  # recorded, but the state stays
HANDOVER = {"escalate_overdue", "force_escalate", "reassign"}  # the task moves to another unit: dispatched again

HAPPY_PATH: list[tuple[str, State]] = [
    ("route", State.DISPATCHED),
    ("claim", State.HANDLING),
    ("complete", State.VERIFICATION),
    ("claim", State.VERIFYING),
    ("verify_pass", State.FEEDBACK),
    ("rate", State.CLOSED),
]


# ------------------------------------------------------------------ the table itself


def test_transition_table_is_deterministic() -> None:
    """No (source, trigger) pair is declared twice: transitions would silently take the first. (An undo,
    ``unmerge``, has one move per state it may return to: which one is the event's own history.)"""
    pairs = [(source, trigger) for t in TRANSITIONS for source in
             ([t["source"]] if not isinstance(t["source"], list) else t["source"]) for trigger in [t["trigger"]]]
    assert len(pairs) == len(set(pairs))


def test_unmerge_returns_exactly_to_the_state_the_merge_left() -> None:
    for state in returns_to("unmerge"):
        machine = Lifecycle(initial=state)
        machine.fire("merge")
        assert machine.current is State.MERGED
        assert machine.fire("unmerge", back_to=state) == (State.MERGED, state)
    machine = Lifecycle(initial=State.MERGED)
    for wrong in (None, State.CLOSED, State.INTAKE, State.FEEDBACK):
        with pytest.raises(IllegalTransition):
            machine.fire("unmerge", back_to=wrong)
        assert machine.current is State.MERGED
    assert triggers_from(State.MERGED) == ["unmerge"]


def test_transition_table_uses_only_known_states() -> None:
    for source, trigger, dest in MOVES:
        assert isinstance(source, State) and isinstance(dest, State)
        if trigger not in INTERNAL and not (trigger in HANDOVER and dest is State.DISPATCHED):
            assert source != dest, f"a self-loop would not move the event: {trigger} from {source}"


@pytest.mark.parametrize("state", list(State))
def test_every_state_has_a_stage(state: State) -> None:
    assert isinstance(STAGE_OF_STATE[state], Stage)
    assert Lifecycle(initial=state).stage is STAGE_OF_STATE[state]


def test_every_stage_is_used_by_some_state() -> None:
    assert set(STAGE_OF_STATE.values()) == set(Stage)


def test_default_initial_state_is_intake() -> None:
    machine = Lifecycle()
    assert machine.current is State.INTAKE
    assert machine.stage is Stage.INTAKE


# ------------------------------------------------------------------ illegal moves


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("trigger", ["bogus", "to_closed", "to_intake", ""])
def test_unknown_and_auto_triggers_are_illegal(state: State, trigger: str) -> None:
    """Auto transitions (``to_<state>``) are off: nothing can jump straight to another state."""
    machine = Lifecycle(initial=state)
    with pytest.raises(IllegalTransition):
        machine.fire(trigger)
    assert machine.current is state


@pytest.mark.parametrize("state", [State.CLOSED, State.VOIDED])
def test_closed_and_voided_can_only_be_reopened(state: State) -> None:
    assert triggers_from(state) == ["reopen"]
    machine = Lifecycle(initial=state)
    for trigger in TRIGGERS:
        if trigger == "reopen":
            continue
        with pytest.raises(IllegalTransition):
            machine.fire(trigger)
        assert machine.current is state


# ------------------------------------------------------------------ triggers_from


def test_triggers_from_rejects_an_unknown_state() -> None:
    with pytest.raises(ValueError):
        triggers_from("nowhere")


def test_claim_applies_to_a_task_kind_in_every_state_it_is_legal() -> None:
    for state in State:
        if "claim" in triggers_from(state):
            assert state in TASK_KIND_OF_STATE


# ------------------------------------------------------------------ paths


def test_happy_path_passes_all_six_stages_in_order() -> None:
    machine = Lifecycle()
    stages = [machine.stage]
    for trigger, expected in HAPPY_PATH:
        before = machine.current
        assert machine.fire(trigger) == (before, expected)
        if machine.stage != stages[-1]:
            stages.append(machine.stage)
    assert machine.current is State.CLOSED
    assert stages == list(Stage)
    assert stages == [
        Stage.INTAKE,
        Stage.DISPATCH,
        Stage.HANDLING,
        Stage.VERIFICATION,
        Stage.FEEDBACK,
        Stage.CLOSE,
    ]


def test_triage_and_failed_verification_paths_reach_closed() -> None:
    machine = Lifecycle()
    for trigger in [
        "route_to_triage",
        "triage",
        "claim",
        "complete",
        "claim",
        "verify_fail",  # back to the handling unit
        "claim",
        "complete",
        "claim",
        "verify_pass",
        "accept_by_default",
    ]:
        machine.fire(trigger)
    assert machine.current is State.CLOSED


def test_every_state_is_reachable_and_can_reach_closed() -> None:
    forward: dict[State, set[State]] = {s: set() for s in State}
    backward: dict[State, set[State]] = {s: set() for s in State}
    for source, _, dest in MOVES:
        forward[source].add(dest)
        backward[dest].add(source)

    def reach(start: State, edges: dict[State, set[State]]) -> set[State]:
        seen, queue = {start}, deque([start])
        while queue:
            for nxt in edges[queue.popleft()]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    assert reach(State.INTAKE, forward) == set(State)
    assert reach(State.CLOSED, backward) == set(State)
