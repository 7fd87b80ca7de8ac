"""The default scheme's scores for hand-computed inputs (assessment.scores.score_sheet, pure).

Every expected number below is worked out by hand in the comments, from the default scheme
(assessment/data/scheme_default.json, version 2026.1), so a change of the formulas or of the scheme
shows here.
"""

from __future__ import annotations

from datetime import date

import pytest

from assessment.indicators import Value
from assessment.schemes import load
from assessment.scores import Inputs, Person, Subject, months_in, score_sheet

NOV = (date(2026, 11, 1), date(2026, 11, 30))  # one whole month: monthly targets as they are


def v(x: float | None) -> Value:
    return Value(x, 0 if x is None else x, None if x is None else 1)


def values(**kw: float | None) -> dict[str, Value]:
    return {k: v(x) for k, x in kw.items()}


UNIT = values(handled_rate=0.9, on_time_handled_rate=0.8, rework_rate=0.1, overdue_open_rate=0.05,
              extension_rate=0.2, satisfaction_rate=0.9)
GRID = values(dispatch_accuracy=0.9, on_time_handled_rate=0.8, handled_rate=0.9, overdue_open_rate=0.05,
              on_time_closed_rate=0.75, rework_rate=0.1, satisfaction_rate=0.96, default_rating_rate=0.2,
              grassroots_share=0.973, red_warnings=1, yellow_warnings=4)


def cadre(name: str) -> Person:
    return Person(name, name, "D-ZF", "dispatched_cadre", stationed_street="HS")


def inputs(**over: object) -> Inputs:
    base = dict(
        departments=[Subject("D-ZF", "综合行政执法局", "Law enforcement"), Subject("D-GT", "国土", "Land"),
                     Subject("D-NO", "无", "None")],
        streets=[Subject("HS", "虎山街道", "Hushan")],
        communities=[Subject("HS01", "社区", "Community")],
        grids=[Subject("G1", "网格一", "Grid 1"), Subject("G2", "网格二", "Grid 2")],
        grids_under={"HS": ["G1", "G2"], "HS01": ["G1", "G2"]},
        values={"D-ZF": UNIT, "D-GT": values(handled_rate=1.0, on_time_handled_rate=1.0, rework_rate=None),
                "HS": {**UNIT, **values(grassroots_share=0.95, on_time_closed_rate=0.75)}, "HS01": UNIT, "G1": GRID},
        people=[Person("p1", "党员一", "G1", "grid_worker", party_member=True),
                Person("p2", "党员二", "HS01", "community_staff", party_member=True),
                Person("n1", "群众", "G1", "grid_worker")],
        personal={"p1": values(handled_rate=0.9, on_time_handled_rate=0.75),
                  "c01": values(handled_rate=1.0, on_time_handled_rate=1.0)},
        reports={("G1", "grid_patrol"): 15},
        inspections={"G1": {"D03": [80, 100], "D12": [50]}},
    )
    base.update(over)
    return Inputs(**base)  # type: ignore[arg-type]


def test_the_default_scheme_is_the_seeds() -> None:
    scheme = load()
    assert scheme.version == "2026.1"
    assert (len(scheme.grid.duties), len(scheme.grid.standards), len(scheme.grid.rules)) == (30, 10, 6)
    assert {(t.indicator, t.weight, t.invert) for t in scheme.composite.terms} == {
        ("handled_rate", 30, False), ("on_time_handled_rate", 20, False), ("rework_rate", 20, True),
        ("overdue_open_rate", 20, True), ("extension_rate", 10, True)}
    assert [(b.grade, b.min) for b in scheme.composite.bands] == [("A", 90), ("B", 75), ("C", 60), ("D", 40),
                                                                  ("E", 0)]
    cadres = scheme.cadres
    assert (cadres.street_weight, cadres.department_weight, cadres.excellent_share) == (70, 30, 0.2)
    kinds = {d.measure.kind for d in scheme.grid.duties}
    assert kinds == {"indicator", "reports", "inspection"}


def test_composite_and_grades() -> None:
    sheet = score_sheet(load(), inputs(), *NOV)
    zf = sheet.row("departments", "D-ZF")
    # 0.9×30 + 0.8×20 + (1−0.1)×20 + (1−0.05)×20 + (1−0.2)×10 = 27 + 16 + 18 + 19 + 8 = 88 → B (75–90)
    assert zf is not None and (zf.score, zf.grade, zf.flags) == (88.0, "B", [])
    assert {p.code: p.points for p in zf.parts} == pytest.approx(
        {"handled_rate": 27, "on_time_handled_rate": 16, "rework_rate": 18, "overdue_open_rate": 19,
         "extension_rate": 8})
    # Only handled and on time measured (50 of the 100 weights): (30 + 20) re-weighed to 100 → A, partial.
    gt = sheet.row("departments", "D-GT")
    assert gt is not None and (gt.score, gt.grade, gt.flags) == (100.0, "A", ["partial"])
    # Nothing measured: no score, no grade (never 0).
    none = sheet.row("departments", "D-NO")
    assert none is not None and (none.score, none.grade) == (None, None)


def test_grid_assessment() -> None:
    sheet = score_sheet(load(), inputs(), *NOV)
    g1 = sheet.row("grids", "G1")
    assert g1 is not None
    standards = {p.code: p.points for p in g1.parts if p.note == "standard"}
    assert standards == pytest.approx({
        "S01": 15 * (0.75 + 0.9 + 0.9) / 3,  # 15 of 20 patrol reports, dispatch accuracy, inspections 80 & 100
        "S02": 10,  # three inspection duties nobody inspected: unmeasured counts as met (1.0)
        "S03": 15 * (0.8 + 0.9 + 0.95) / 3,  # on time, handled, 1 − overdue open
        "S04": 10 * (0.75 + 0.9 + 0.5) / 3,  # on time closed, 1 − rework, an inspection scored 50
        "S05": 10 * (0.96 + 0.8 + 1) / 3,  # satisfaction, 1 − default ratings, not inspected
        "S06": 10,  # grassroots share at its target 97.3%
        "S07": 10 * (1 + (1 - 1 / 3) + (1 - 4 / 10)) / 3,  # 1 red warning of a limit of 3, 4 yellow of 10
        "S08": 8, "S09": 7, "S10": 5})
    rules = {p.code: p.points for p in g1.parts if p.note == "rule"}
    # R01 −2 × 1 red; R02 −0.5 × 4 yellow; R03 +3 (96% ≥ 95%); R04 +2 (97.3% ≥ 97.3%);
    # R05 −3 × 1 inspection below 60; R06 rework 10% is not above 10%: 0.
    assert rules == {"R01": -2, "R02": -2, "R03": 3, "R04": 2, "R05": -3, "R06": 0}
    # 89.9222… − 2 − 2 + 3 + 2 − 3 = 87.92 → good (80–90); the failed inspection flags the grid.
    assert (g1.score, g1.grade, g1.flags) == (87.92, "good", ["inspection_failed"])
    # A grid with no indicator, no inspection and no patrol report: S01 loses its report duty (0 of
    # 20) and the rest counts as met: 100 − 15/3 = 95 → excellent.
    g2 = sheet.row("grids", "G2")
    assert g2 is not None and (g2.score, g2.grade) == (95.0, "excellent")


def test_fortress_service_and_pioneer() -> None:
    sheet = score_sheet(load(), inputs(), *NOV)
    # Fortress: grids (87.92 + 95) / 2 = 91.46 × 45% + composite 88 × 25% + satisfaction 90 × 20%
    #         + no volunteer hours at all (0 of 20 a month) × 10% = 41.157 + 22 + 18 + 0 = 81.16 → four stars.
    community = sheet.row("communities", "HS01")
    assert community is not None and (community.score, community.grade) == (81.16, "4")
    # Streets: the composite (88, B) and the service index: 88 × 40% + 90 × 30%
    #        + min(1, 95% / 97.3%) × 100 × 20% + 75 × 10% = 35.2 + 27 + 19.527… + 7.5 = 89.23.
    street = sheet.row("streets", "HS")
    assert street is not None and (street.score, street.grade) == (88.0, "B")
    service = next(p for p in street.parts if p.code == "service_index")
    assert service.value == 89.23
    # Pioneer: p1's grid 87.92 × 50% + own (75% on time × 60 + 90% handled × 40 = 81) × 30%
    # + no pioneer points (0 of 2 a month) × 20% = 43.96 + 24.3 + 0 = 68.26 → qualified; the grid's
    # flag follows the party member.
    p1 = sheet.row("party_members", "p1")
    assert p1 is not None and (p1.score, p1.grade, p1.flags) == (68.26, "qualified", ["inspection_failed"])
    # p2 works in the community (no grid of their own): the mean of its grids (91.46), and no
    # handling task of their own: that part is left out → (91.46 × 50 + 0 × 20) / 70 = 65.33, partial.
    p2 = sheet.row("party_members", "p2")
    assert p2 is not None and (p2.score, p2.grade, p2.flags) == (65.33, "qualified", ["partial"])
    assert sheet.row("party_members", "n1") is None  # not a party member
    assert sheet.tables["cadres"] == []  # cadres only in an annual sheet


def _cadre_inputs(c03: tuple[float, float]) -> Inputs:
    people = [cadre(f"c{i:02d}") for i in range(1, 12)]
    ratings = {("c01", "street"): 95.0, ("c01", "department"): 90.0,
               ("c02", "street"): 90.0, ("c02", "department"): 90.0,
               ("c03", "street"): c03[0], ("c03", "department"): c03[1]}
    for i in range(4, 11):
        ratings[(f"c{i:02d}", "street")], ratings[(f"c{i:02d}", "department")] = 80.0, 70.0
    ratings[("c11", "street")] = 99.0  # no department rating: no annual score
    return inputs(people=people, ratings=ratings)


def test_cadres_70_30_and_the_quota_with_a_tie() -> None:
    sheet = score_sheet(load(), _cadre_inputs((90.0, 90.0)), date(2026, 1, 1), date(2026, 12, 31), annual=True)
    rows = {r.subject: r for r in sheet.tables["cadres"]}
    # c01: street part 95 × 60% + own 100 × 40% = 97; department part 90 × 70% + 100 × 30% = 93;
    #      annual 97 × 70% + 93 × 30% = 95.8.
    assert rows["c01"].score == 95.8
    # c02, c03: no handling task of their own, so each part is its rating: 90 × 70% + 90 × 30% = 90.
    assert rows["c02"].score == rows["c03"].score == 90.0
    # c04..c10: 80 × 70% + 70 × 30% = 77.
    assert {rows[f"c{i:02d}"].score for i in range(4, 11)} == {77.0}
    assert rows["c11"].score is None and "incomplete" in rows["c11"].flags
    assert "department_rating_missing" in rows["c11"].flags
    # Ten cadres with a score: quota floor(10 × 20%) = 2. c01 is excellent; the second place is
    # tied (c02 and c03 at 90, the third at 90 too): both are left out and flagged quota_tie, the
    # quota is never exceeded.
    excellent = sorted(r.subject for r in rows.values() if "excellent" in r.flags)
    assert excellent == ["c01"]
    assert sorted(r.subject for r in rows.values() if "quota_tie" in r.flags) == ["c02", "c03"]
    assert [r.subject for r in sheet.tables["cadres"]][:3] == ["c01", "c02", "c03"]  # ranked by score


def test_cadres_quota_without_a_tie() -> None:
    sheet = score_sheet(load(), _cadre_inputs((85.0, 85.0)), date(2026, 1, 1), date(2026, 12, 31), annual=True)
    rows = {r.subject: r for r in sheet.tables["cadres"]}
    assert rows["c03"].score == 85.0
    assert sorted(r.subject for r in rows.values() if "excellent" in r.flags) == ["c01", "c02"]
    assert not any("quota_tie" in r.flags for r in rows.values())


def test_months_of_a_period() -> None:
    assert months_in(date(2026, 11, 1), date(2026, 11, 30)) == 1
    assert months_in(date(2026, 1, 1), date(2026, 12, 31)) == pytest.approx(12)
    assert months_in(date(2026, 2, 15), date(2026, 3, 31)) == pytest.approx(14 / 28 + 1)
    # A half month halves the patrol target: 10 reports from the 1st to the 15th meet it.
    sheet = score_sheet(load(), inputs(reports={("G1", "grid_patrol"): 10}), date(2026, 11, 1), date(2026, 11, 15))
    g1 = sheet.row("grids", "G1")
    assert g1 is not None and next(p for p in g1.parts if p.code == "D01").points == 1.0


def test_process_credits_count_in_the_pioneer_and_fortress_indices() -> None:
    credited = inputs(person_credits={"p1": {"pioneer_points": 1.0, "volunteer_hours": 6.0}},
                      unit_credits={"HS01": {"volunteer_hours": 30.0, "pioneer_points": 9.0}})
    sheet = score_sheet(load(), credited, *NOV)
    # p1: 1 pioneer point of 2 a month → 50 × 20% = 10 more than without: 68.26 + 10 = 78.26 (hours
    # are not this part's credit).
    p1 = sheet.row("party_members", "p1")
    assert p1 is not None and p1.score == 78.26
    assert next(p for p in p1.parts if p.code == "service").value == 1.0
    # HS01: 30 volunteer hours of 20 a month → full (capped at 100) × 10%: 81.16 + 10 = 91.16 → five stars.
    community = sheet.row("communities", "HS01")
    assert community is not None and (community.score, community.grade) == (91.16, "5")
    # Over two months the same 30 hours are 30 of 40: 75 × 10% = 7.5 (the grids' patrol target doubles too).
    two = score_sheet(load(), credited, date(2026, 10, 1), date(2026, 11, 30)).row("communities", "HS01")
    assert two is not None and next(p for p in two.parts if p.code == "volunteering").points == pytest.approx(7.5)


def test_an_index_of_nothing_but_an_empty_credits_part_is_no_index() -> None:
    # A party member in a department: no grid below their unit, no handling task of their own, no
    # pioneer point. Only the credits part has a value (0): that is no evidence, so no index (not 0).
    cadre_member = Person("dm", "党员", "D-ZF", "department_staff", party_member=True)
    sheet = score_sheet(load(), inputs(people=[cadre_member], grids_under={"D-ZF": []}), *NOV)
    row = sheet.row("party_members", "dm")
    assert row is not None and (row.score, row.grade) == (None, None)
    # One pioneer point is evidence: 1 of 2 a month → 50 (the only part measured).
    credited = score_sheet(load(), inputs(people=[cadre_member], grids_under={"D-ZF": []},
                                          person_credits={"dm": {"pioneer_points": 1.0}}), *NOV)
    row = credited.row("party_members", "dm")
    assert row is not None and row.score == 50.0 and "partial" in row.flags
