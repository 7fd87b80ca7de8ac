"""The default scheme's scores over the week of tests/test_assessment_indicators.py, driven through
the real workflow (time skipping): every number computed by hand from that module's table of
indicators and the events' handlers, through the store (``assessment.scores.period_scores``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from assessment.schemes import load
from assessment.scores import period_scores
from store import schemes as scheme_store
from store.db import Database
from store.org import OrgTree
from tests.test_assessment_indicators import drive_the_week, week_env  # noqa: F401  (the fixture)


async def test_the_weeks_scores_equal_the_hand_computed_values(week_env: WorkflowEnvironment,  # noqa: F811
                                                               org_db: Database) -> None:
    monday, _ = await drive_the_week(week_env, org_db)
    org = await OrgTree.load(org_db)
    thursday = monday + timedelta(days=3, minutes=30)
    week = (monday.date(), monday.date() + timedelta(days=3))
    for side, score in (("street", 90.0), ("department", 80.0)):
        await scheme_store.rate_cadre(org_db, username="pz_zf_hs", year=week[0].year, side=side,
                                      unit="HS" if side == "street" else "D-ZF", score=score, comment="",
                                      actor="zx_hs" if side == "street" else "bm_zf")
    sheet = await period_scores(org_db, org, load(), *week, annual=True, now=thursday)

    # D-ZF handled E8 on time, closed, satisfied, no rework, no extension: 30 + 20 + 20 + 20 + 10 = 100, A.
    zf = sheet.row("departments", "D-ZF")
    assert zf is not None and (zf.score, zf.grade) == (100.0, "A")
    # HS01 (and HS, the same figures): handled 6/10 × 30 = 18, on time 5/10 × 20 = 10, (1 − 1/5) × 20 = 16,
    # (1 − 2/10) × 20 = 16, (1 − 1/10) × 10 = 9: 69, C.
    hs = sheet.row("streets", "HS")
    assert hs is not None and (hs.score, hs.grade) == (69.0, "C")
    # Service index: 69 × 40% + satisfied 4/5 → 80 × 30% + grassroots 4/5 of the target 97.3% → 82.22 × 20%
    #              + on time closed 5/7 → 71.43 × 10% = 27.6 + 24 + 16.444 + 7.143 = 75.19.
    assert next(p.value for p in hs.parts if p.code == "service_index") == 75.19

    # Grid HS01-G1: no patrol report (the events came from the portal), D02 5/6 not returned, D03 not
    # inspected: S01 = 15 × (0 + 5/6 + 1) / 3 = 9.1667; S02 10; S03 = 15 × (4/8 + 5/8 + 7/8) / 3 = 10;
    # S04 = 10 × (5/7 + 4/5 + 1) / 3 = 8.3810; S05 = 10 × (4/5 + 4/5 + 1) / 3 = 8.6667;
    # S06 = 10 × (1 + (4/5) / 0.973 + 1) / 3 = 9.4073; S07 = 10 × (1 + 0 + 0) / 3 = 3.3333 (one red
    # and three yellow warnings in four days are beyond the month's limits pro rata); S08–S10 8 + 7 + 5:
    # 78.9549. Rules: R01 −2 (one red), R02 −1.5 (three yellow), R06 −5 (rework 1/5 > 10%): 70.45, pass.
    g1 = sheet.row("grids", "HS01-G1")
    assert g1 is not None and (g1.score, g1.grade, g1.flags) == (70.45, "pass", ["rework_high"])
    # The community's other grids had no event: no patrol report (S01 loses a third), the rest met: 95.
    assert {sheet.row("grids", f"HS01-G{i}").score for i in (2, 3, 4)} == {95.0}  # type: ignore[union-attr]

    # Fortress HS01: grids (70.45 + 3 × 95) / 4 = 88.8625 × 45% + composite 69 × 25% + satisfied 80 × 20%
    #              + no volunteer hours (0 of 20 a month) × 10% = 39.988 + 17.25 + 16 + 0 = 73.24 → three stars.
    community = sheet.row("communities", "HS01")
    assert community is not None and (community.score, community.grade) == (73.24, "3")

    # Pioneer wg_hs01_g1 (a party member): claimed E1, E2 (twice), E4 and E5 (E3's was returned, so it
    # is not theirs to count): 5 done, 4 on time (E5 late) → own 60 × 4/5 + 40 × 5/5 = 88;
    # 70.45 × 50% + 88 × 30% + no pioneer points (0 of 2 a month) × 20% = 35.225 + 26.4 + 0 = 61.63
    # → qualified, with the grid's rework flag.
    p1 = sheet.row("party_members", "wg_hs01_g1")
    assert p1 is not None and (p1.score, p1.grade, p1.flags) == (61.63, "qualified", ["rework_high"])

    # The cadre pz_zf_hs handled E8 on time: own 100. Street part 90 × 60% + 100 × 40% = 94, department
    # part 80 × 70% + 100 × 30% = 86; annual 94 × 70% + 86 × 30% = 91.6. The other eleven cadres have no
    # rating: no annual score. One cadre scored: the quota floor(1 × 20%) = 0, nobody is excellent.
    cadres = {r.subject: r for r in sheet.tables["cadres"]}
    assert cadres["pz_zf_hs"].score == 91.6 and "excellent" not in cadres["pz_zf_hs"].flags
    assert len(cadres) == 12 and sum(r.score is None for r in cadres.values()) == 11

    # On the page every indicator-based number links to the events or tasks behind it (the
    # numerator's list of the core's drill-down); parts that are no indicator have no link.
    from web.assessment_pages import shown_table
    from web.stats import drill_url

    shown = shown_table("zh-CN", load(), sheet, "departments", [zf])[0]
    assert [(p.name, p.value, p.href) for p in shown.parts][:2] == [
        ("处置率", "100.0%", drill_url("D-ZF", *week, "tasks_done")),
        ("按期处置率", "100.0%", drill_url("D-ZF", *week, "tasks_on_time"))]
    grid = shown_table("en", load(), sheet, "grids", [g1])[0]
    hrefs = {p.name: p.href for p in grid.parts}
    assert hrefs["Reports accurate: dispatches not returned"] == drill_url("HS01-G1", *week, "dispatches_kept")
    assert hrefs["Patrol the grid twice a day, patrol log complete"] is None  # an inspection duty
