"""The moves of a process instance (``processes.instance``), pure: who may take a task, one taker or many
with a waiting list, outcomes and forms, credits, deadlines that move, and a pinned definition."""

from __future__ import annotations

from pathlib import Path

import pytest

from processes.definition import ProcessDefinition, catalogue, load, shipped
from processes.instance import (
    Person,
    Refused,
    begin,
    cancel,
    check_in,
    claim,
    complete,
    expire,
    withdraw,
)
from tests.process_scenarios import COMMUNITY, GRID_WORKER, HOME

NOW = "2026-12-07T01:00:00+00:00"
LATER = "2026-12-07T05:00:00+00:00"
OTHER_GRID = Person("wg_hs01_g2", "HS01-G2", "grid_worker", units_above=("HS01-G2", "HS01", "HS", "JS"))
RESIDENT = Person("resident", role="requester")


def _def(kind: str) -> ProcessDefinition:
    return next(d for d in shipped() if d.kind == kind)


def _member(name: str, party: bool = True) -> Person:
    return Person(name, "HS02-G1", "grid_worker", party_member=party, units_above=("HS02-G1", "HS02", "HS", "JS"))


def test_a_micro_wish_is_adopted_by_the_first_party_member_of_the_street_and_credited_when_verified() -> None:
    d = _def("micro_wish")
    wish = begin(d, "PW-1", HOME, {"wish": "想要一台收音机", "value": 120}, NOW, "resident")
    [approve] = wish.tasks
    assert approve.unit == "HS01" and approve.kind == "approve"
    with pytest.raises(Refused) as refused:  # a grid worker is not the community's staff
        claim(d, wish, approve.task_id, GRID_WORKER, NOW)
    assert refused.value.code == "not_taker"
    claim(d, wish, approve.task_id, COMMUNITY, NOW)
    complete(d, wish, approve.task_id, COMMUNITY, "publish", {}, NOW)
    adopt = wish.tasks[-1]
    assert wish.state == "published" and adopt.unit == "HS"  # any party member of the street
    with pytest.raises(Refused) as refused:
        claim(d, wish, adopt.task_id, _member("not_party", party=False), NOW)
    assert refused.value.code == "not_taker"
    first, second = _member("dy_1"), _member("dy_2")
    claim(d, wish, adopt.task_id, first, NOW)
    with pytest.raises(Refused) as refused:  # first come, one adopter
        claim(d, wish, adopt.task_id, second, NOW)
    assert refused.value.code == "claimed"
    complete(d, wish, adopt.task_id, first, "adopt", {}, NOW)
    fulfil = wish.tasks[-1]
    assert fulfil.person == "dy_1"  # the adopter fulfils it, nobody else
    with pytest.raises(Refused):
        claim(d, wish, fulfil.task_id, second, NOW)
    claim(d, wish, fulfil.task_id, first, NOW)
    with pytest.raises(Refused) as refused:  # the photo is required
        complete(d, wish, fulfil.task_id, first, "fulfilled", {"note": "已送到"}, NOW)
    assert refused.value.code == "invalid_form" and refused.value.problems[0].field == "photo"
    complete(d, wish, fulfil.task_id, first, "fulfilled", {"photo": "a1b2c3.jpg"}, LATER)
    assert [(c.subject, c.kind, c.amount) for c in wish.credits] == [("dy_1", "wish_fulfilled", 1.0),
                                                                    ("dy_1", "pioneer_points", 2.0)]
    verify = wish.tasks[-1]
    claim(d, wish, verify.task_id, COMMUNITY, LATER)
    complete(d, wish, verify.task_id, COMMUNITY, "verified", {}, LATER)
    assert wish.state == "done" and wish.ended_at == LATER
    assert [s.action for s in wish.timeline] == ["start", "claim", "publish", "claim", "adopt", "claim",
                                                 "fulfilled", "claim", "verified"]


def test_a_volunteer_activity_fills_keeps_a_waiting_list_and_credits_the_hours_of_those_who_came() -> None:
    d = _def("volunteer_activity")
    values = {"team": "HS-VT1", "title": "清理河道", "starts_at": "2026-12-12T09:00:00+08:00", "place": "须江",
              "capacity": 2}
    activity = begin(d, "VA-1", HOME, values, NOW, "organiser")
    sign_up = activity.tasks[0]
    organiser = Person("vt_lead", "HS-VT1", "street_staff", units_above=("HS-VT1", "HS", "JS"))
    a, b, c = _member("v_a", party=False), _member("v_b", party=False), _member("v_c", party=False)
    assert [claim(d, activity, sign_up.task_id, p, NOW).waiting for p in (a, b, c)] == [False, False, True]
    with pytest.raises(Refused) as refused:
        claim(d, activity, sign_up.task_id, a, NOW)
    assert refused.value.code == "signed_up"
    withdraw(d, activity, sign_up.task_id, b, NOW)  # b drops out: c moves up from the waiting list
    assert [(s.username, s.waiting) for s in sign_up.sign_ups] == [("v_a", False), ("v_c", False)]
    with pytest.raises(Refused):  # a volunteer does not close the sign-up; the organiser does
        complete(d, activity, sign_up.task_id, a, "close_sign_up", {}, NOW)
    complete(d, activity, sign_up.task_id, organiser, "close_sign_up", {}, NOW)
    attendance = activity.tasks[-1]
    assert attendance.unit == "HS-VT1"
    check_in(d, activity, sign_up.task_id, organiser, "v_a", False, NOW)
    check_in(d, activity, sign_up.task_id, organiser, "v_a", True, LATER)
    check_in(d, activity, sign_up.task_id, organiser, "v_c", False, NOW)  # c never checked out
    with pytest.raises(Refused) as refused:
        check_in(d, activity, sign_up.task_id, organiser, "v_b", False, NOW)  # withdrew
    assert refused.value.code == "not_signed_up"
    claim(d, activity, attendance.task_id, organiser, LATER)
    complete(d, activity, attendance.task_id, organiser, "confirm_hours", {"hours": 3.5}, LATER)
    assert [(c.subject, c.kind, c.amount) for c in activity.credits] == [("v_a", "volunteer_hours", 3.5)]
    # Each check-in and -out names the volunteer it was about beside the organiser who made it.
    assert [(s.action, s.actor, s.subject) for s in activity.timeline if s.action.startswith("check")] == [
        ("check_in", "vt_lead", "v_a"), ("check_out", "vt_lead", "v_a"), ("check_in", "vt_lead", "v_c")]
    assert activity.state == "done"


def test_a_deliberation_decision_asks_for_a_problem_event_and_an_unanswered_rating_accepts_by_default() -> None:
    d = _def("deliberation")
    matter = begin(d, "DL-1", HOME, {"matter": "小区东门路灯不亮"}, NOW, "resident")
    steps = [("schedule", {"meeting_date": "2026-12-09", "participants": "居民代表5人"}),
             ("decide", {"minutes": "议定报修", "decision": "东门路灯报修", "create_event": True, "category": "SR-01"}),
             ("handled", {"result": "已报修并修复"})]
    for outcome, form in steps:
        task = matter.tasks[-1]
        claim(d, matter, task.task_id, COMMUNITY, NOW)
        complete(d, matter, task.task_id, COMMUNITY, outcome, form, NOW)
    assert matter.events == [(matter.tasks[1].task_id, "SR-01", "东门路灯报修")]
    rate = matter.tasks[-1]
    assert matter.state == "rating" and rate.kind == "rate"
    with pytest.raises(Refused):  # staff do not rate for the residents
        complete(d, matter, rate.task_id, COMMUNITY, "rate", {"rating": "satisfied"}, NOW)
    assert expire(d, matter, rate.task_id, LATER) is True
    assert matter.state == "closed" and matter.timeline[-1].action == "accept_by_default"


def test_a_proxy_service_is_confirmed_by_its_resident_and_a_deadline_without_a_move_only_warns() -> None:
    d = _def("proxy_service")
    items = {"proxy_items": catalogue("proxy_items")}
    with pytest.raises(Refused):  # not an item of the catalogue
        begin(d, "PX-1", HOME, {"item": "PS-99", "phone": "13800000000"}, NOW, "wg_hs01_g1", catalogues=items)
    errand = begin(d, "PX-1", HOME, {"item": "PS-03", "phone": "13800000000"}, NOW, "wg_hs01_g1", catalogues=items)
    accept = errand.tasks[0]
    assert expire(d, errand, accept.task_id, LATER) is False and errand.state == "requested"
    with pytest.raises(Refused):  # another grid's runner
        claim(d, errand, accept.task_id, OTHER_GRID, NOW)
    claim(d, errand, accept.task_id, GRID_WORKER, NOW)
    complete(d, errand, accept.task_id, GRID_WORKER, "accept", {}, NOW)
    for outcome, form in (("collected", {"materials": ["身份证", "户口簿", "一寸照片"]}),
                          ("handled", {"receipt_no": "MZ-2026-0412"}), ("delivered", {})):
        task = errand.tasks[-1]
        claim(d, errand, task.task_id, GRID_WORKER, NOW)
        complete(d, errand, task.task_id, GRID_WORKER, outcome, form, NOW, catalogues=items)
    confirm = errand.tasks[-1]
    with pytest.raises(Refused) as refused:
        complete(d, errand, confirm.task_id, RESIDENT, "confirm", {"rating": "great"}, NOW)
    assert refused.value.code == "invalid_form"
    complete(d, errand, confirm.task_id, RESIDENT, "confirm", {"rating": "satisfied"}, LATER)
    assert errand.state == "done"
    assert {(c.subject, c.kind) for c in errand.credits} == {("wg_hs01_g1", "proxy_service"),
                                                            ("wg_hs01_g1", "pioneer_points")}
    with pytest.raises(Refused) as refused:
        cancel(d, errand, COMMUNITY, LATER)
    assert refused.value.code == "not_now"


def test_a_bad_start_form_starts_nothing_and_a_move_out_of_turn_is_refused() -> None:
    d = load(Path(__file__).parent / "data" / "elderly_visit.json")
    with pytest.raises(Refused) as refused:
        begin(d, "EV-1", HOME, {"person": "李大爷"}, NOW, "sq_hs01")
    assert refused.value.code == "invalid_input" and [p.field for p in refused.value.problems] == ["address"]
    visit = begin(d, "EV-1", HOME, {"person": "李大爷", "address": "鹿溪花园3幢"}, NOW, "sq_hs01")
    task = visit.tasks[0]
    with pytest.raises(Refused) as refused:  # not claimed yet
        complete(d, visit, task.task_id, GRID_WORKER, "visited", {"condition": "good"}, NOW)
    assert refused.value.code == "not_claimed"
    claim(d, visit, task.task_id, GRID_WORKER, NOW)
    with pytest.raises(Refused) as refused:
        complete(d, visit, task.task_id, GRID_WORKER, "helped", {"condition": "good"}, NOW)
    assert refused.value.code == "no_outcome"
    complete(d, visit, task.task_id, GRID_WORKER, "needs_help", {"condition": "needs_help"}, NOW)
    with pytest.raises(Refused) as refused:  # the visit is done: acting on it again is out of turn
        claim(d, visit, task.task_id, GRID_WORKER, NOW)
    assert refused.value.code == "not_now"
    assert visit.state == "follow_up" and visit.tasks[-1].unit == "HS01"
    assert [(c.subject, c.kind) for c in visit.credits] == [("wg_hs01_g1", "visit")]


def test_a_task_already_someones_own_is_completed_by_them_with_its_claim_and_by_nobody_else() -> None:
    d = _def("proxy_service")
    items = {"proxy_items": catalogue("proxy_items")}
    errand = begin(d, "PX-2", HOME, {"item": "PS-03", "phone": "13800000000"}, NOW, "wg_hs01_g1", catalogues=items)
    accept = errand.tasks[0]
    with pytest.raises(Refused) as refused:  # the grid's task is nobody's own yet: claimed first
        complete(d, errand, accept.task_id, GRID_WORKER, "accept", {}, NOW)
    assert refused.value.code == "not_claimed"
    claim(d, errand, accept.task_id, GRID_WORKER, NOW)
    complete(d, errand, accept.task_id, GRID_WORKER, "accept", {}, NOW)
    collect = errand.tasks[-1]
    assert collect.person == "wg_hs01_g1" and collect.status == "open"
    with pytest.raises(Refused) as refused:  # one material short: refused, and nothing recorded, not even a claim
        complete(d, errand, collect.task_id, GRID_WORKER, "collected", {"materials": ["身份证"]}, NOW, catalogues=items)
    assert refused.value.code == "invalid_form" and collect.status == "open" and len(errand.timeline) == 3
    with pytest.raises(Refused) as refused:  # not theirs
        complete(d, errand, collect.task_id, OTHER_GRID, "collected", {"materials": ["身份证", "户口簿", "一寸照片"]},
                 NOW, catalogues=items)
    assert refused.value.code == "not_taker"
    complete(d, errand, collect.task_id, GRID_WORKER, "collected", {"materials": ["身份证", "户口簿", "一寸照片"]},
             LATER, catalogues=items)
    assert [(s.action, s.actor) for s in errand.timeline[3:]] == [("claim", "wg_hs01_g1"), ("collected", "wg_hs01_g1")]
    assert collect.claimed_by == "wg_hs01_g1" and errand.state == "handling"
