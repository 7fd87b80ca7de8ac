"""The rules of every action (``workflows.policy``) as scenarios: what each actor is offered in a
situation is exactly what the workflow's validators accept, and the situations that matter behave
as a case worker expects (a paused case, open co-handling, a pending request, another unit, an
assignee, the limits, the unit codes and the ladder). Pure: no Temporal, no store."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows import policy
from workflows.lifecycle import TERMINAL, Lifecycle, State
from workflows.policy import Case, Refused
from workflows.types import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND


@dataclass
class T:
    """A task as the rules read it."""

    task_id: str
    kind: str = "handle"
    unit: str = "HS01-G1"
    status: str = "open"
    assignee: str | None = None
    claimed_by: str | None = None
    parent: str | None = None


@dataclass
class W:
    """Someone who acts."""

    username: str = "wg_hs01_g1"
    unit: str = "HS01-G1"
    role: str = "grid_worker"


WORKER = W()
COLLEAGUE = W(username="wg_hs01_g1b")
OTHER_GRID = W(username="wg_hs01_g2", unit="HS01-G2")
DEPARTMENT = W(username="bm_zf", unit="D-ZF", role="department_staff")
STREET_SUPERVISOR = W(username="zx_hs", unit="CC-HS", role="street_supervisor")
CITY_SUPERVISOR = W(username="zx_js", unit="CC-JS", role="city_supervisor")

MAIN = T("E.T1", status="claimed", claimed_by=WORKER.username)
HELPER = T("E.T2", kind="cohandle", unit="D-ZF", parent="E.T1")
HANDLING = Case(state="handling", tasks=[MAIN])
COHANDLING = Case(state="handling", tasks=[MAIN, HELPER])


def refusal(check: object, *args: object) -> Refused:
    with pytest.raises(Refused) as info:
        check(*args)  # type: ignore[operator]
    return info.value


# ------------------------------------------------------------------ co-handling (issue 10, item 5)


def test_during_cohandling_the_handling_task_cannot_be_completed() -> None:
    assert "complete" not in policy.task_actions(COHANDLING, MAIN, WORKER)
    refused = refusal(policy.check_complete, COHANDLING, MAIN.task_id, WORKER)
    assert (refused.kind, refused.code, refused.params) == (CONFLICT, "cohandling_open", {"units": "D-ZF"})
    assert refused.message == "co-handling by D-ZF is not finished yet"  # the API's and the logs' English
    # What else the worker may do stays offered; the helper's unit may claim its task.
    assert "release" in policy.task_actions(COHANDLING, MAIN, WORKER)
    assert policy.task_actions(COHANDLING, HELPER, DEPARTMENT) == ["claim"]


def test_once_the_helpers_are_done_the_handling_task_completes() -> None:
    claimed = replace(HELPER, status="claimed", claimed_by=DEPARTMENT.username)
    case = Case(state="handling", tasks=[MAIN, claimed])
    assert policy.task_actions(case, claimed, DEPARTMENT) == ["complete"]  # finished with 办结, never released
    assert refusal(policy.check_release, case, claimed.task_id, DEPARTMENT).code == "cohandle_no_release"
    done = Case(state="handling", tasks=[MAIN, replace(claimed, status="done")])
    assert "complete" in policy.task_actions(done, MAIN, WORKER)
    cancelled = Case(state="handling", tasks=[MAIN, replace(HELPER, status="cancelled")])
    assert "complete" in policy.task_actions(cancelled, MAIN, WORKER)


def test_cohandling_goes_on_while_a_return_waits_for_the_supervisor() -> None:
    case = Case(state="return_requested", pending="return", tasks=[MAIN, HELPER])
    assert policy.task_actions(case, HELPER, DEPARTMENT) == ["claim"]
    assert policy.task_actions(case, MAIN, WORKER) == []  # the handling task waits for the decision


# ------------------------------------------------------------------ paused


@pytest.mark.parametrize("state", [s for s in State if s not in TERMINAL and s != State.INTAKE])
def test_a_paused_case_can_only_be_resumed_voided_or_closed(state: State) -> None:
    tasks = [T("E.T1"), MAIN, T("E.T3", kind="verify"), T("E.T4", kind="triage", unit="CC-HS")]
    case = Case(state=state.value, paused=True, tasks=tasks)
    assert set(policy.supervisor_actions(case, STREET_SUPERVISOR)) == {"resume", "void", "close"}
    for who in (WORKER, STREET_SUPERVISOR):
        for task in tasks:
            assert policy.task_actions(case, task, who) == [], (state, task.kind)
    assert refusal(policy.check_supervise, case, STREET_SUPERVISOR, "reassign").code in ("paused", "not_now")


def test_pause_and_resume_toggle() -> None:
    case = Case(state="handling", tasks=[MAIN])
    offered = policy.supervisor_actions(case, STREET_SUPERVISOR)
    assert "pause" in offered and "resume" not in offered
    assert refusal(policy.check_supervise, case, STREET_SUPERVISOR, "resume").code == "not_paused"
    paused = replace(case, paused=True)
    assert refusal(policy.check_supervise, paused, STREET_SUPERVISOR, "pause").code == "paused"


# ------------------------------------------------------------------ requests and decisions


def test_a_pending_request_blocks_other_requests_but_not_the_work() -> None:
    case = Case(state="handling", pending="extension", tasks=[MAIN])
    assert policy.task_actions(case, MAIN, WORKER) == ["complete", "release"]
    refused = refusal(policy.check_request, case, MAIN.task_id, WORKER, "request_return")
    assert (refused.code, refused.params) == ("request_pending", {"pending": "extension"})
    assert {"approve_extension", "deny_extension"} <= set(policy.supervisor_actions(case, STREET_SUPERVISOR))


def test_an_extension_is_decided_only_when_one_was_asked() -> None:
    offered = policy.supervisor_actions(HANDLING, STREET_SUPERVISOR)
    assert "approve_extension" not in offered and "deny_extension" not in offered
    assert refusal(policy.check_supervise, HANDLING, STREET_SUPERVISOR, "approve_extension").code == "no_extension"


def test_the_claimer_is_offered_every_request_on_a_handling_task() -> None:
    assert policy.task_actions(HANDLING, MAIN, WORKER) == [
        "complete", "release", "return", "escalate", "extension", "cohandling"]


def test_a_return_is_decided_by_a_supervisor_only() -> None:
    case = Case(state="return_requested", pending="return", tasks=[MAIN])
    assert {"approve_return", "deny_return"} <= set(policy.supervisor_actions(case, STREET_SUPERVISOR))
    assert policy.supervisor_actions(case, WORKER) == []
    refused = refusal(policy.check_supervise, case, WORKER, "approve_return")
    assert (refused.kind, refused.code) == (FORBIDDEN, "supervisors_only")


def test_a_review_is_only_offered_when_the_case_waits_for_one() -> None:
    review = Case(state="review", pending="review", tasks=[])
    assert "review_rework" in policy.supervisor_actions(review, CITY_SUPERVISOR)
    assert "review_rework" not in policy.supervisor_actions(HANDLING, CITY_SUPERVISOR)
    # Paused in review: the review waits for resume, like every other override (the workflow took it before).
    assert "review_rework" not in policy.supervisor_actions(replace(review, paused=True), CITY_SUPERVISOR)


@pytest.mark.parametrize("state", [State.CLOSED, State.VOIDED])
def test_a_closed_or_voided_case_can_only_be_reopened(state: State) -> None:
    case = Case(state=state.value, tasks=[replace(MAIN, status="cancelled")])
    assert policy.supervisor_actions(case, CITY_SUPERVISOR) == ["reopen"]
    assert policy.task_actions(case, case.tasks[0], WORKER) == []


def test_a_merged_case_offers_no_override_and_only_its_undo_within_the_window() -> None:
    case = Case(state="merged", tasks=[replace(MAIN, status="cancelled")])
    assert policy.supervisor_actions(case, CITY_SUPERVISOR) == []
    assert policy.task_actions(case, case.tasks[0], WORKER) == []
    now = datetime(2026, 12, 2, 8, tzinfo=UTC)
    policy.check_unmerge(case, CITY_SUPERVISOR, (now + timedelta(hours=1)).isoformat(), now)
    for who, until, code in ((WORKER, now + timedelta(hours=1), "supervisors_only"),
                             (CITY_SUPERVISOR, now - timedelta(seconds=1), "merge_undo_late")):
        with pytest.raises(Refused) as refused:
            policy.check_unmerge(case, who, until.isoformat(), now)
        assert refused.value.code == code
    with pytest.raises(Refused) as refused:
        policy.check_unmerge(HANDLING, CITY_SUPERVISOR, None, now)
    assert refused.value.code == "not_merged"


@pytest.mark.parametrize("state", list(State))
def test_a_duplicate_is_merged_only_from_a_placed_settled_state_into_an_open_event(state: State) -> None:
    case = Case(state=state.value, tasks=[MAIN])
    mergeable = state in (State.TRIAGE, State.DISPATCHED, State.HANDLING, State.RETURN_REQUESTED,
                          State.VERIFICATION, State.VERIFYING, State.REVIEW)
    try:
        policy.check_merge(case, CITY_SUPERVISOR, "EV-1", "EV-2", "dispatched")
        allowed = True
    except Refused as exc:
        assert exc.code == "merge_not_now"
        allowed = False
    assert allowed == mergeable
    if mergeable:
        for primary, primary_state, code in (("EV-1", "dispatched", "merge_self"), ("EV-2", "closed",
                                             "merge_primary_closed"), ("EV-2", "merged", "merge_primary_closed")):
            with pytest.raises(Refused) as refused:
                policy.check_merge(case, CITY_SUPERVISOR, "EV-1", primary, primary_state)
            assert refused.value.code == code


# ------------------------------------------------------------------ who


def test_workers_act_only_on_tasks_of_their_unit() -> None:
    case = Case(state="dispatched", tasks=[T("E.T1")])
    assert policy.task_actions(case, case.tasks[0], WORKER) == ["claim"]
    assert policy.task_actions(case, case.tasks[0], OTHER_GRID) == []
    refused = refusal(policy.check_claim, case, "E.T1", OTHER_GRID)
    assert (refused.kind, refused.code) == (FORBIDDEN, "task_other_unit")
    assert refused.params == {"task": "E.T1", "unit": "HS01-G1", "mine": "HS01-G2"}


def test_an_assigned_task_is_claimed_by_its_assignee_only() -> None:
    case = Case(state="dispatched", tasks=[T("E.T1", assignee=WORKER.username)])
    assert policy.task_actions(case, case.tasks[0], WORKER) == ["claim"]
    assert policy.task_actions(case, case.tasks[0], COLLEAGUE) == []
    assert refusal(policy.check_claim, case, "E.T1", COLLEAGUE).code == "task_assigned"


def test_only_the_claimer_completes_releases_or_asks() -> None:
    assert policy.task_actions(HANDLING, MAIN, COLLEAGUE) == []
    assert refusal(policy.check_complete, HANDLING, MAIN.task_id, COLLEAGUE).code == "task_claimed_by_other"
    assert refusal(policy.check_claim, HANDLING, MAIN.task_id, COLLEAGUE).code == "task_taken"


def test_a_verification_is_claimed_then_recorded_and_takes_no_requests() -> None:
    verify = T("E.T2", kind="verify")
    case = Case(state="verification", tasks=[replace(MAIN, status="done"), verify])
    assert policy.task_actions(case, verify, COLLEAGUE) == ["claim"]
    # Never by the one who handled it (issue 10, item 2).
    assert policy.task_actions(case, verify, WORKER) == []
    assert refusal(policy.check_claim, case, verify.task_id, WORKER).code == "verify_own_work"
    claimed = replace(verify, status="claimed", claimed_by=COLLEAGUE.username)
    case = Case(state="verifying", tasks=[replace(MAIN, status="done"), claimed])
    assert policy.task_actions(case, claimed, COLLEAGUE) == ["verify", "release"]
    assert refusal(policy.check_request, case, claimed.task_id, COLLEAGUE, "escalate").code == "request_needs_handling"
    # A verification claimed by the handler (before this rule) is not his to record either.
    own = replace(verify, status="claimed", claimed_by=WORKER.username)
    mine = Case(state="verifying", tasks=[replace(MAIN, status="done"), own])
    assert refusal(policy.check_complete, mine, own.task_id, WORKER, True).code == "verify_own_work"
    # The finished handling task is nobody's to act on any more.
    assert refusal(policy.check_complete, case, MAIN.task_id, WORKER).code == "task_finished"


def test_triage_is_offered_to_the_supervisors_of_the_centre_holding_it() -> None:
    case = Case(state="triage", tasks=[T("E.T1", kind="triage", unit="CC-HS")])
    assert policy.task_actions(case, case.tasks[0], STREET_SUPERVISOR) == ["triage"]
    assert policy.task_actions(case, case.tasks[0], CITY_SUPERVISOR) == []  # another centre's task
    staff = W(username="cc_staff", unit="CC-HS", role="street_staff")
    assert refusal(policy.check_triage, case, "E.T1", staff).code == "supervisors_only"


def test_an_unknown_task_is_not_found() -> None:
    refused = refusal(policy.check_claim, HANDLING, "E.T9", WORKER)
    assert (refused.kind, refused.code, refused.params) == (NOT_FOUND, "task_unknown", {"task": "E.T9"})


def test_roles() -> None:
    assert policy.actor_kinds("grid_worker") == {policy.WORKER}
    assert policy.actor_kinds("street_supervisor") == {policy.WORKER, policy.SUPERVISOR}
    assert policy.actor_kinds("admin") == {policy.WORKER, policy.SUPERVISOR, policy.ADMIN}
    assert not policy.is_supervisor("dispatched_cadre") and policy.is_admin("admin")
    assert set(policy.SUPERVISOR_ROLES) < set(policy.STAFF_ROLES)


# ------------------------------------------------------------------ offered is accepted


_STATES = [s.value for s in State]
_TASK = st.builds(
    T, task_id=st.sampled_from(["E.T1", "E.T2", "E.T3"]),
    kind=st.sampled_from(["handle", "verify", "triage", "cohandle"]),
    unit=st.sampled_from(["HS01-G1", "D-ZF", "CC-HS"]),
    status=st.sampled_from(["open", "claimed", "done", "cancelled"]),
    assignee=st.sampled_from([None, WORKER.username]), claimed_by=st.sampled_from([None, WORKER.username, "x"]),
    parent=st.sampled_from([None, "E.T1"]),
)
_WHO = st.sampled_from([WORKER, OTHER_GRID, DEPARTMENT, STREET_SUPERVISOR, CITY_SUPERVISOR])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_STATES), st.sampled_from([None, "extension", "return", "review"]), st.booleans(),
       st.lists(_TASK, max_size=4, unique_by=lambda t: t.task_id), _WHO)
def test_what_is_offered_is_legal_in_the_state_machine(state: str, pending: str | None, paused: bool,
                                                       tasks: list[T], who: W) -> None:
    """Nothing offered is refused by the state machine the workflow fires (its triggers)."""
    case = Case(state=state, pending=pending, paused=paused, tasks=tasks)
    machine = Lifecycle(State(state))
    for action in policy.supervisor_actions(case, who):
        assert machine.may(action), (state, action)
    triggers = {"claim": ("claim", "cohandle"), "complete": ("complete", "cohandle"), "verify": ("verify_pass",),
                "release": ("release",), "triage": ("triage",), **{k: (v,) for k, v in policy.REQUESTS.items()}}
    for task in tasks:
        for action in policy.task_actions(case, task, who):
            assert any(machine.may(t) for t in triggers[action]), (state, task, action)
            assert not paused


# ------------------------------------------------------------------ limits


def test_extension_hours() -> None:
    for hours in (policy.MIN_EXTENSION_HOURS, policy.MAX_EXTENSION_HOURS):
        policy.check_request_input(MAIN, "request_extension", "等待配件", hours, [])
    for hours in (0, policy.MAX_EXTENSION_HOURS + 1):
        refused = refusal(policy.check_request_input, MAIN, "request_extension", "等待配件", hours, [])
        assert (refused.kind, refused.code, refused.params) == (INVALID, "extension_hours", {"low": "1", "high": "240"})


def test_cohandling_units() -> None:
    assert policy.check_request_input(MAIN, "request_cohandling", "需配合", 0, ["HS01-G1", "D-ZF"]) == ["D-ZF"]
    for units in ([], ["HS01-G1"], ["D-ZF", "D-ZF"], [f"D-{i}" for i in range(policy.MAX_COHANDLING_UNITS + 1)]):
        assert refusal(policy.check_request_input, MAIN, "request_cohandling", "需配合", 0, units).code == \
            "cohandling_units"


def test_a_request_needs_a_reason_that_a_store_can_keep() -> None:
    assert refusal(policy.check_request_input, MAIN, "escalate", "  ", 0, []).code == "reason_required"
    refused = refusal(policy.check_request_input, MAIN, "escalate", "x" * (policy.MAX_REASON + 1), 0, [])
    assert (refused.code, refused.params) == ("input.too_long", {"field": "reason", "limit": "500"})
    assert refusal(policy.check_request_input, MAIN, "escalate", "a\x00b", 0, []).code == "input.forbidden_char"


def test_deadlines_reasons_and_units_of_overrides() -> None:
    for hours in (None, 0, policy.MAX_DEADLINE_HOURS + 1):
        assert refusal(policy.check_supervise_input, "change_deadline", "", None, hours).code == "deadline_hours"
    policy.check_supervise_input("change_deadline", "", None, policy.MAX_DEADLINE_HOURS)
    for action in policy.NEEDS_REASON:
        assert refusal(policy.check_supervise_input, action, " ", None, None).params == {"action": action}
    assert refusal(policy.check_supervise_input, "reassign", "", None, None).code == "reassign_needs_unit"


def test_photos_and_results_of_a_completion() -> None:
    policy.check_complete_input(MAIN, "已清理", None, policy.MAX_COMPLETE_PHOTOS)
    assert refusal(policy.check_complete_input, MAIN, "已清理", None, policy.MAX_COMPLETE_PHOTOS + 1).code == \
        "too_many_photos"
    assert refusal(policy.check_complete_input, MAIN, " ", None, 0).code == "result_required"
    verify = T("E.T2", kind="verify")
    policy.check_complete_input(verify, "", True, 0)  # a verification may say nothing but passed
    assert refusal(policy.check_complete_input, verify, "", None, 0).code == "verify_needs_passed"


def test_return_window_and_extension_before_the_deadline() -> None:
    now = datetime(2026, 12, 2, 10, tzinfo=UTC)
    marks = {"return_by": (now - timedelta(minutes=1)).isoformat(), "due": now.isoformat()}
    refused = refusal(policy.check_request_timing, "request_return", marks, now)
    assert (refused.code, refused.params) == ("return_window", {"hours": str(policy.RETURN_WINDOW_HOURS)})
    assert refusal(policy.check_request_timing, "request_extension", marks, now).code == "extension_late"
    policy.check_request_timing("request_return", marks, now - timedelta(hours=1))
    policy.check_request_timing("escalate", marks, now)


# ------------------------------------------------------------------ unit codes and the ladder


def test_unit_codes() -> None:
    assert policy.department_unit("ZF") == "D-ZF" and policy.department_of("D-ZF") == "ZF"
    assert policy.department_of("HS01") is None and policy.department_of("D-") is None
    assert policy.street_centre("HS") == "CC-HS"
    assert policy.is_city_centre("command_centre", "city") and not policy.is_city_centre("command_centre", "street")


def test_the_ladder_climbs_to_the_city_centre_of_the_organisation() -> None:
    chain = [("HS01-G1", "grid"), ("HS01", "community"), ("HS", "street"), ("XC", "city")]
    ladder = policy.ladder(chain, "CC-XC")  # any city: nothing assumes the demo's CC-JS
    assert ladder == ["HS01-G1", "HS01", "HS", "CC-XC"]
    assert [policy.ladder_up(ladder, u) for u in ladder] == ["HS01", "HS", "CC-XC", "CC-XC"]
    assert policy.ladder_up(ladder, "D-ZF") == "CC-XC"  # off the ladder: to its top
    assert policy.ladder([("D-ZF", "department"), ("XC", "city")], None) == ["D-ZF"]
    assert policy.TIER_UP["street"] == "department" and policy.TIER_UP["city"] == "city"


# ------------------------------------------------------------------ request windows on the pages
def test_return_and_extension_are_offered_only_in_their_windows() -> None:
    """The validator refuses a return after the return window and an extension at or after the
    deadline (check_request_timing); given the task's marks, the offers leave them out too."""
    now = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    inside = {"return_by": (now + timedelta(hours=1)).isoformat(), "due": (now + timedelta(hours=5)).isoformat()}
    assert {"return", "extension"} <= set(policy.task_actions(HANDLING, MAIN, WORKER, marks=inside, now=now))
    late_return = {**inside, "return_by": (now - timedelta(minutes=1)).isoformat()}
    offered = policy.task_actions(HANDLING, MAIN, WORKER, marks=late_return, now=now)
    assert "return" not in offered and "extension" in offered and "escalate" in offered
    assert refusal(policy.check_request_timing, "request_return", late_return, now).code == "return_window"
    overdue = {**inside, "due": now.isoformat()}
    offered = policy.task_actions(HANDLING, MAIN, WORKER, marks=overdue, now=now)
    assert "extension" not in offered and "return" in offered
    assert refusal(policy.check_request_timing, "request_extension", overdue, now).code == "extension_late"
