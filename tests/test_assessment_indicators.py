"""The indicators of the assessment against hand-computed values, over events driven through the
real workflow with time skipping (on time, late, a rework, a return, an extension, each kind of
rating, a rating accepted by default, an escalation), and the drill-down lists behind every number
over the API equal to the numbers.

The week (city time): everything is reported on a Monday at 09:00; the grid's deadline for SR-01 is
8 working hours (Tuesday 09:00), the grace 8 more (Wednesday 09:00), the rating window 24 (Thursday
09:00); the indicators are read on Thursday at 09:30.

- E1: handled, verified, satisfied. Task: G1, dispatch, done.
- E2: the verification fails, reworked, basically satisfied. Tasks: G1 dispatch done; G1 rework done.
- E3: returned by the grid, the supervisor gives it to the community, satisfied. Tasks: G1 dispatch
  returned; HS01 dispatch done.
- E4: an 8 hours' extension approved, handled; nobody rates: accepted by default on Thursday. Task: G1
  dispatch done, extended.
- E5: completed late on Tuesday 10:00 (yellow), dissatisfied; the rework is never done (yellow on
  Wednesday). Tasks: G1 dispatch done late; G1 rework open past its deadline.
- E6: never handled: yellow on Tuesday, red on Wednesday (to the community), yellow again on
  Thursday. Tasks: G1 dispatch escalated; HS01 escalation open past its deadline.
- E8: SR-10 (law enforcement) to the department ZF's cadre stationed at the street, satisfied. Task:
  D-ZF dispatch done.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from assessment.indicators import BY_CODE, INDICATORS, Value
from rules.worktime import CITY_TZ, is_working_day
from store import assessment
from store.db import Database
from store.org import OrgTree
from tests import webapp
from tests.conftest import binary
from tests.scenarios import COMMUNITY, GW, ZX, handle_task, rating, snapshot, start, verify, wait_state
from worker import build_worker
from workflows.event_lifecycle import EventLifecycle
from workflows.types import Actor, ClaimCommand, CompleteCommand, SupervisorCommand, TaskRequest
from wulian.temporal_setup import ensure_search_attributes

CADRE = Actor("pz_zf_hs", "杨芳芳", unit="D-ZF", role="dispatched_cadre")


@pytest.fixture
async def week_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own (this test sleeps through most of a week)."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


def next_working_monday(now: datetime) -> datetime:
    """09:00 city time on the next Monday of a week whose five days are all working days."""
    day = now.astimezone(CITY_TZ).date() + timedelta(days=1)
    while not (day.weekday() == 0 and all(is_working_day(day + timedelta(days=d)) for d in range(5))):
        day += timedelta(days=1)
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=CITY_TZ)


async def sleep_until(env: WorkflowEnvironment, moment: datetime) -> None:
    await env.sleep(moment - await env.get_current_time())


def frac(numerator: float, denominator: float) -> tuple[float | None, float, float]:
    return (numerator / denominator if denominator else None, float(numerator), float(denominator))


def count(n: int) -> tuple[float, float, None]:
    return (float(n), float(n), None)


#: What every unit's indicators must be on Thursday 09:30, computed by hand from the table above.
#: Tasks: G1 has 8 (E1.1, E2.1, E2.rework, E3.1, E4.1, E5.1, E5.rework, E6.1); the community and the
#: street add E3's and E6's community tasks (10); the department has E8's; the city all 11.
#: Events are all located in grid G1 (7); the department counts E8, which it handled.
EXPECTED: dict[str, dict[str, tuple[float | None, float, float | None]]] = {
    "HS01-G1": {
        "handled_rate": frac(5, 8), "on_time_handled_rate": frac(4, 8), "closed_rate": frac(5, 7),
        "on_time_closed_rate": frac(5, 7), "rework_rate": frac(1, 5), "extension_rate": frac(1, 8),
        "overdue_open_rate": frac(1, 8), "dispatch_accuracy": frac(5, 6), "satisfaction_rate": frac(4, 5),
        "default_rating_rate": frac(1, 5), "grassroots_share": frac(4, 5), "yellow_warnings": count(3),
        "red_warnings": count(1), "events": count(7),
    },
    "HS01": {
        "handled_rate": frac(6, 10), "on_time_handled_rate": frac(5, 10), "closed_rate": frac(5, 7),
        "on_time_closed_rate": frac(5, 7), "rework_rate": frac(1, 5), "extension_rate": frac(1, 10),
        "overdue_open_rate": frac(2, 10), "dispatch_accuracy": frac(6, 7), "satisfaction_rate": frac(4, 5),
        "default_rating_rate": frac(1, 5), "grassroots_share": frac(4, 5), "yellow_warnings": count(4),
        "red_warnings": count(1), "events": count(7),
    },
    "D-ZF": {
        "handled_rate": frac(1, 1), "on_time_handled_rate": frac(1, 1), "closed_rate": frac(1, 1),
        "on_time_closed_rate": frac(1, 1), "rework_rate": frac(0, 1), "extension_rate": frac(0, 1),
        "overdue_open_rate": frac(0, 1), "dispatch_accuracy": frac(1, 1), "satisfaction_rate": frac(1, 1),
        "default_rating_rate": frac(0, 1), "grassroots_share": frac(0, 1), "yellow_warnings": count(0),
        "red_warnings": count(0), "events": count(1),
    },
    "JS": {
        "handled_rate": frac(7, 11), "on_time_handled_rate": frac(6, 11), "closed_rate": frac(5, 7),
        "on_time_closed_rate": frac(5, 7), "rework_rate": frac(1, 5), "extension_rate": frac(1, 11),
        "overdue_open_rate": frac(2, 11), "dispatch_accuracy": frac(7, 8), "satisfaction_rate": frac(4, 5),
        "default_rating_rate": frac(1, 5), "grassroots_share": frac(4, 5), "yellow_warnings": count(4),
        "red_warnings": count(1), "events": count(7),
    },
}
EXPECTED["HS"] = EXPECTED["HS01"]  # nothing of the street's own: its community's figures


async def drive_the_week(env: WorkflowEnvironment, db: Database) -> tuple[datetime, dict[str, str]]:
    """The events of the module's table; returns Monday 09:00 and the event ids by name."""
    queue = f"tq-{uuid.uuid4().hex[:8]}"
    monday = next_working_monday(await env.get_current_time())
    ids: dict[str, str] = {}
    async with build_worker(env.client, db, queue):
        await sleep_until(env, monday)
        e1 = await start(env, queue)
        await handle_task(e1)
        await verify(e1)
        await e1.execute_update(EventLifecycle.rate, rating("satisfied"))

        e2 = await start(env, queue)
        await handle_task(e2)
        await verify(e2, passed=False)
        await wait_state(e2, "dispatched")
        await handle_task(e2)
        await verify(e2)
        await e2.execute_update(EventLifecycle.rate, rating("basically_satisfied"))

        e3 = await start(env, queue)
        task = (await snapshot(e3)).tasks[-1].task_id
        await e3.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        await e3.execute_update(EventLifecycle.request,
                                TaskRequest(task, GW, action="request_return", reason="不属于本网格"))
        await e3.execute_update(EventLifecycle.supervise, SupervisorCommand(
            ZX, "approve_return", reason="同意", unit=COMMUNITY.unit, tier="community",
            ladder=[COMMUNITY.unit, "HS", "CC-JS"]))
        await wait_state(e3, "dispatched")
        await handle_task(e3, COMMUNITY)
        await verify(e3)
        await e3.execute_update(EventLifecycle.rate, rating("satisfied"))

        e4 = await start(env, queue)
        task = (await snapshot(e4)).tasks[-1].task_id
        await e4.execute_update(EventLifecycle.claim, ClaimCommand(task, GW))
        await e4.execute_update(EventLifecycle.request,
                                TaskRequest(task, GW, action="request_extension", reason="需协调", hours=8))
        await e4.execute_update(EventLifecycle.supervise, SupervisorCommand(ZX, "approve_extension", reason="同意"))
        await e4.execute_update(EventLifecycle.complete, CompleteCommand(task, GW, result="处理完毕"))
        await verify(e4)  # and nobody rates it

        e5 = await start(env, queue)
        task5 = (await snapshot(e5)).tasks[-1].task_id
        await e5.execute_update(EventLifecycle.claim, ClaimCommand(task5, GW))

        e6 = await start(env, queue)  # never handled

        e8 = await start(env, queue, category="SR-10", description="废弃车辆占用车位", needs_enforcement=True)
        assert (await snapshot(e8)).tasks[-1].unit == "D-ZF"
        await handle_task(e8, CADRE)
        await verify(e8)
        await e8.execute_update(EventLifecycle.rate, rating("satisfied"))

        await sleep_until(env, monday + timedelta(days=1, hours=1))  # Tuesday 10:00: past E5's deadline
        await e5.execute_update(EventLifecycle.complete, CompleteCommand(task5, GW, result="迟办"))
        await verify(e5)
        await e5.execute_update(EventLifecycle.rate, rating("dissatisfied"))
        await wait_state(e5, "dispatched")

        await sleep_until(env, monday + timedelta(days=3, minutes=30))  # Thursday 09:30
        snaps = {name: await snapshot(h) for name, h in
                 (("E1", e1), ("E2", e2), ("E3", e3), ("E4", e4), ("E5", e5), ("E6", e6), ("E8", e8))}
        # The workflow did what the table says (else the expectations below mean nothing).
        assert snaps["E4"].state == "closed" and snaps["E4"].rating is None
        assert [(t.unit, t.origin, t.status, t.ended_by) for t in snaps["E6"].tasks] == [
            ("HS01-G1", "dispatch", "cancelled", "escalated"), ("HS01", "escalation", "open", "")]
        assert [w.kind for w in snaps["E6"].warnings if w.kind != "reminder"] == ["yellow", "red", "yellow"]
        assert snaps["E5"].state == "dispatched" and snaps["E5"].rating == "dissatisfied"
        assert [t.extended_hours for t in snaps["E4"].tasks if t.kind == "handle"] == [8]
        ids = {name: s.event_id for name, s in snaps.items()}
        for handle in (e5, e6):
            await handle.terminate("test over")
    return monday, ids


async def test_indicators_of_a_week_equal_the_hand_computed_values(week_env: WorkflowEnvironment,
                                                                  org_db: Database) -> None:
    monday, _ = await drive_the_week(week_env, org_db)
    org = await OrgTree.load(org_db)
    thursday = monday + timedelta(days=3, minutes=30)
    week = (monday.date(), monday.date() + timedelta(days=3))
    for unit, expected in EXPECTED.items():
        values = await assessment.indicator_values(org_db, org, unit, *week, now=thursday)
        got = {code: _rounded((v.value, v.numerator, v.denominator)) for code, v in values.items() if code in expected}
        assert got == {code: _rounded(e) for code, e in expected.items()}, unit
        assert set(values) == set(BY_CODE)
    # Working hours per stage (the stage lasted seconds, except E5's handling: Monday 09:00 to
    # Tuesday 10:00 is 7.5 + 1.5 = 9 working hours).
    city = await assessment.indicator_values(org_db, org, "JS", *week, now=thursday)
    assert city["avg_hours_handling"].denominator == 6  # the events with a completed handling task
    assert city["avg_hours_handling"].numerator == pytest.approx(9.0, abs=0.05)
    assert city["avg_hours_dispatch"].value == pytest.approx(0.0, abs=0.02)
    # A period without events has no denominators: "—", never 0 or 100%.
    empty = await assessment.indicator_values(org_db, org, "JS", date(2020, 1, 1), date(2020, 1, 31))
    assert empty["handled_rate"].value is None and empty["events"].value == 0
    # Before the end of Wednesday (E5's rework and E6's second task not yet past due, E6's first
    # task was): the rate depends on the end of the period.
    tuesday_end = await assessment.indicator_values(org_db, org, "HS01-G1", monday.date(),
                                                    monday.date() + timedelta(days=1), now=thursday)
    assert tuesday_end["overdue_open_rate"].numerator == 1  # E6's first task, escalated only on Wednesday

    # The units below, all at once: the same figures, and the same when fewer indicators are asked for.
    children = dict(await assessment.child_values(org_db, org, "HS01", *week, now=thursday))
    g1 = EXPECTED["HS01-G1"]["overdue_open_rate"]
    assert _rounded(_triple(children["HS01-G1"]["overdue_open_rate"])) == _rounded(g1)
    some = dict(await assessment.child_values(org_db, org, "JS", *week, now=thursday,
                                              codes=("overdue_open_rate", "grassroots_share")))
    everything = dict(await assessment.child_values(org_db, org, "JS", *week, now=thursday))
    assert set(some["HS"]) == {"overdue_open_rate", "grassroots_share"}
    assert all(some[u][c] == everything[u][c] for u in some for c in some[u])
    assert _triple(everything["HS"]["handled_rate"]) == EXPECTED["HS"]["handled_rate"]

    # The rollups equal a rebuild from the events.
    before = await _rollups(org_db)
    report = await assessment.rebuild(org_db)
    assert report.events == 7 and await _rollups(org_db) == before


async def test_drill_down_lists_hold_exactly_the_numbers_over_the_api(week_env: WorkflowEnvironment,
                                                                     org_db: Database, tmp_path: Path) -> None:
    monday, ids = await drive_the_week(week_env, org_db)
    period = f"from={monday.date()}&to={monday.date() + timedelta(days=3)}"
    async with webapp.browsers(webapp.context(org_db, tmp_path))() as http:
        asked = 0
        for username, unit in (("wg_hs01_g1", "HS01-G1"), ("zx_hs", "HS"), ("zx_hs", "HS01"), ("zx_city", "JS"),
                               ("zx_city", "D-ZF")):
            headers = await webapp.api_login(http, username)
            r = await http.get(f"/api/indicators?unit={unit}&{period}", headers=headers)
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["unit"], body["from"]) == (unit, monday.date().isoformat())
            for d in INDICATORS:
                value = body["indicators"][d.code]
                lists = [(d.numerator, value["numerator"])]
                if d.kind == "rate":
                    lists.append((d.denominator, value["denominator"]))
                if d.kind == "average":
                    lists = [(d.numerator, value["denominator"])]  # the subjects averaged over
                for counter, number in lists:
                    listed = await http.get(f"/api/indicators/drill?unit={unit}&{period}&counter={counter}&limit=200",
                                            headers=headers)
                    assert listed.status_code == 200, listed.text
                    drill = listed.json()
                    assert drill["total"] == number == len(drill["items"]), (unit, d.code, counter)
                    assert {i["event_id"] for i in drill["items"]} <= set(ids.values())
                    asked += 1
        assert asked > 100
        # The events behind E5's and E6's late work, by name: the city's yellow warnings.
        headers = await webapp.api_login(http, "zx_city")
        yellow = (await http.get(f"/api/indicators/drill?unit=JS&{period}&counter=warnings_yellow",
                                 headers=headers)).json()
        assert sorted(i["event_id"] for i in yellow["items"]) == sorted([ids["E5"], ids["E5"], ids["E6"], ids["E6"]])
        # Scope: another street's supervisor, a grid worker above their grid, a department for a street.
        for username, unit in (("zx_st", "HS"), ("wg_hs01_g1", "HS01"), ("bm_zf", "HS")):
            headers = await webapp.api_login(http, username)
            for url in (f"/api/indicators?unit={unit}", f"/api/indicators/drill?unit={unit}&counter=events"):
                assert (await http.get(url, headers=headers)).status_code == 403, (username, url)
        r = await http.get("/api/indicators?from=2026-13-01", headers=headers)
        assert r.status_code == 400 and "from" in r.json()["detail"]
        r = await http.get("/api/indicators/drill?counter=bogus", headers=headers)
        assert r.status_code == 400 and "counter" in r.json()["detail"]

        # The page: every number is a link to its list, and the list says how many.
        await webapp.page_login(http, "zx_hs")
        page = (await http.get(f"/stats?unit=HS&{period}")).text
        assert "街道社区两级办结率" in page and "80.0%" in page  # 4 of 5 closed events at the grassroots
        link = f"/stats/drill?unit=HS&amp;{period.replace('&', '&amp;')}&amp;counter=closed_grassroots"
        assert link in page
        listed = (await http.get(f"/stats/drill?unit=HS&{period}&counter=closed_grassroots")).text
        assert 'data-total="4"' in listed and listed.count("<tr data-event=") == 4
        refused = await http.get("/stats?from=2026-02-30")
        assert refused.status_code == 400 and "开始日期" in refused.text


def _triple(v: Value) -> tuple[float | None, float, float | None]:
    return (v.value, v.numerator, v.denominator)


def _rounded(value: tuple[float | None, float, float | None]) -> tuple[float | None, ...]:
    return tuple(None if x is None else round(x, 6) for x in value)


async def _rollups(db: Database) -> dict[tuple[str, str, date], tuple[int, float]]:
    from sqlmodel import select

    from store import models

    async with db.session() as session:
        rows = (await session.exec(select(models.IndicatorRollup))).all()
    return {(r.unit, r.counter, r.day): (r.n, round(r.total, 3)) for r in rows if r.n}
