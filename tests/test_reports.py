"""The monthly and annual reports (issue 11, item 4): periods, immutable snapshots with revisions, the
Temporal Schedule (a trigger stores a snapshot, a second trigger for the same period none), the
recompute (revision 2, audited), the pages in both languages within each supervisor's scope, and the
exports (XLSX read back with openpyxl, CSV with its byte order mark)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from sqlmodel import select
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities.reports import publish
from store import models, reports
from store.db import Database
from store.reports import NewSnapshot
from tests.platform import Platform, csrf, running_platform
from web.auth import CurrentUser
from web.reports import build_view, levels_of, red_and_black, shown
from workflows.period_report import (
    BadPeriod,
    PeriodReport,
    ReportJob,
    city_day,
    has_ended,
    job_of,
    parse_period,
    period_before,
    previous_period,
)
from wulian.report_schedules import SCHEDULES, TIME_ZONE, ensure_report_schedules, schedule_id

SH = "+08:00"


# ------------------------------------------------------------------ periods


def test_periods_are_months_or_years() -> None:
    nov = parse_period("2026-11")
    assert (nov.kind, nov.first, nov.last) == ("month", date(2026, 11, 1), date(2026, 11, 30))
    feb = parse_period("2028-02")
    assert feb.last == date(2028, 2, 29)  # a leap year
    year = parse_period(" 2026 ")
    assert (year.code, year.kind, year.first, year.last) == ("2026", "year", date(2026, 1, 1), date(2026, 12, 31))
    for bad, code in [("2026-13", "month"), ("2026-00", "month"), ("1999", "year"), ("26-11", "format"),
                      ("2026-1", "format"), ("2026/11", "format"), ("", "format"), ("2026-11-01", "format")]:
        with pytest.raises(BadPeriod) as caught:
            parse_period(bad)
        assert caught.value.code == code, bad


def test_the_period_before_is_counted_in_asia_shanghai() -> None:
    # 1 December 02:00 in Shanghai is 30 November 18:00 UTC: the month before is November, not October.
    at = datetime.fromisoformat(f"2026-12-01T02:00:00{SH}")
    assert at.astimezone(UTC).day == 30
    assert period_before(at, "month").code == "2026-11"
    assert period_before(datetime(2026, 11, 30, 15, 59, tzinfo=UTC), "month").code == "2026-10"  # 23:59 local
    assert period_before(datetime.fromisoformat(f"2027-01-01T02:30:00{SH}"), "year").code == "2026"
    assert period_before(datetime.fromisoformat(f"2027-01-01T02:00:00{SH}"), "month").code == "2026-12"
    assert previous_period(parse_period("2026-01")).code == "2025-12"
    assert previous_period(parse_period("2026")).code == "2025"
    assert not has_ended(parse_period("2026-11"), datetime.fromisoformat(f"2026-11-30T23:59:00{SH}"))
    assert has_ended(parse_period("2026-11"), datetime.fromisoformat(f"2026-12-01T00:00:00{SH}"))


# ------------------------------------------------------------------ the snapshots


def _job(period: str = "2026-11", *, request_id: str | None = None, recompute: bool = False,
         actor: str = "schedule", reason: str = "") -> ReportJob:
    return job_of(parse_period(period), request_id or f"run-{uuid.uuid4().hex}", recompute=recompute, actor=actor,
                  reason=reason)


def _new(job: ReportJob) -> NewSnapshot:
    return NewSnapshot(period=job.period, kind=job.kind, day_from=date.fromisoformat(job.day_from),
                       day_to=date.fromisoformat(job.day_to), request_id=job.request_id, recompute=job.recompute,
                       actor=job.actor, reason=job.reason, trigger=job.trigger)


async def _audit(db: Database, action: str) -> list[models.AuditEntry]:
    async with db.session() as session:
        return list((await session.exec(select(models.AuditEntry).where(models.AuditEntry.action == action))).all())


async def test_a_period_is_stored_once_and_a_recompute_adds_an_audited_revision(org_db: Database) -> None:
    first, created = await reports.store_snapshot(org_db, _new(_job()), {"units": [1]}, None)
    assert created and first.revision == 1
    again, created = await reports.store_snapshot(org_db, _new(_job()), {"units": [2]}, None)
    assert not created and again.id == first.id and again.data == {"units": [1]}  # nothing new, nothing changed
    job = _job(recompute=True, actor="zx_city", reason="数据补录")
    second, created = await reports.store_snapshot(org_db, _new(job), {"units": [3]}, "2026.1")
    assert created and second.revision == 2 and second.scheme_version == "2026.1"
    retried, created = await reports.store_snapshot(org_db, _new(job), {"units": [4]}, "2026.1")
    assert not created and retried.revision == 2  # the same run retried: its own revision, no third
    assert [r.revision for r in await reports.revisions(org_db, "2026-11")] == [2, 1]
    assert (await reports.snapshot(org_db, "2026-11", 1)).data == {"units": [1]}  # type: ignore[union-attr]
    [recomputed] = await _audit(org_db, "report_recompute")
    assert (recomputed.actor, recomputed.target) == ("zx_city", "2026-11")
    assert "revision 2" in recomputed.detail and "数据补录" in recomputed.detail
    assert len(await _audit(org_db, "report_publish")) == 1
    [summary] = await reports.periods(org_db)
    assert (summary.period, summary.revision, summary.revisions, summary.computed_by) == ("2026-11", 2, 2, "zx_city")


async def test_two_runs_at_once_store_one_revision(org_db: Database) -> None:
    results = await asyncio.gather(*(reports.store_snapshot(org_db, _new(_job("2026-10")), {"n": i}, None)
                                     for i in range(4)))
    assert sum(created for _, created in results) == 1
    assert [r.revision for r in await reports.revisions(org_db, "2026-10")] == [1]


async def test_publish_computes_every_unit_once(org_db: Database) -> None:
    from assessment.indicators import INDICATORS

    result = await publish(org_db, _job())
    assert result.created and result.revision == 1
    snap = await reports.snapshot(org_db, "2026-11")
    assert snap is not None
    units = {u["code"]: u for u in snap.data["units"]}
    assert {"JS", "HS", "HS01", "HS01-G1", "D-ZF"} <= set(units)
    assert result.units == len(units)
    assert snap.data["indicators"] == [d.code for d in INDICATORS]
    assert set(units["HS"]["values"]) == {d.code for d in INDICATORS}
    assert units["HS01-G1"]["street"] == "HS"
    again = await publish(org_db, _job())
    assert not again.created and again.revision == 1
    assert len(await reports.revisions(org_db, "2026-11")) == 1


async def test_a_snapshot_holds_the_indicators_of_every_unit(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """Events reported this month through the real workflow: the snapshot of the month (computed
    directly: the workflow refuses a period that has not ended) holds what the store counts."""
    from store.assessment import indicator_values
    from store.org import OrgTree

    async with running_platform(dev_env.client, tmp_path) as p:
        for grid in ("HS01-G1", "HS01-G2", "ST01-G1"):
            await p.report(location={"grid": grid}, description=f"报告测试:{grid}")
        month = parse_period(city_day(datetime.now(UTC)).strftime("%Y-%m"))
        result = await publish(p.db, job_of(month, "this-month"))
        snap = await reports.snapshot(p.db, month.code)
        assert snap is not None and result.created
        units = {u["code"]: u["values"] for u in snap.data["units"]}
        assert (units["JS"]["events"]["value"], units["HS"]["events"]["value"], units["ST"]["events"]["value"],
                units["QH"]["events"]["value"], units["HS01-G2"]["events"]["value"]) == (3, 2, 1, 0, 1)
        org = await OrgTree.load(p.db)
        assert set(units) == set(org.units)
        for code in org.units:  # read a parent's children at a time, the same as unit by unit
            live = await indicator_values(p.db, org, code, month.first, month.last)
            assert units[code] == {c: {"value": v.value, "numerator": v.numerator, "denominator": v.denominator}
                                   for c, v in live.items()}, code
        view = build_view(snap, None, _user("city_supervisor", "CC-JS", set(units)), "zh-CN", "streets", "events")
        assert [(r.code, r.value) for r in view.ranking] == [("HS", 2), ("ST", 1), ("QH", 0)]


# ------------------------------------------------------------------ what a report shows


def _unit(code: str, kind: str, parent: str | None, **values: float | None) -> dict[str, Any]:
    return {"code": code, "name_zh": f"单位{code}", "name_en": f"Unit {code}", "kind": kind, "tier": kind,
            "parent": parent, "street": code[:2] if kind != "city" else None,
            "values": {k: {"value": v, "numerator": None if v is None else v * 10, "denominator": 10}
                       for k, v in values.items()}}


def _snapshot(period: str, units: list[dict[str, Any]], revision: int = 1) -> models.ReportSnapshot:
    p = parse_period(period)
    return models.ReportSnapshot(period=p.code, kind=p.kind, revision=revision, day_from=p.first, day_to=p.last,
                                 computed_at=datetime(2026, 12, 1, 18, tzinfo=UTC), computed_by="schedule",
                                 trigger="schedule", request_id="x",
                                 data={"indicators": ["handled_rate", "rework_rate"], "units": units, "scores": {}})


def _user(role: str, unit: str, scope: set[str]) -> CurrentUser:
    return CurrentUser(username="u", display_name="u", unit=unit, role=role, scope=scope)


def test_ranking_lists_and_changes_follow_the_indicator_and_the_scope() -> None:
    streets = [_unit(f"S{i}", "street", "JS", handled_rate=v, rework_rate=r)
               for i, (v, r) in enumerate([(0.9, 0.1), (0.5, 0.3), (None, None), (0.7, 0.05), (0.7, 0.2)])]
    grids = [_unit("S0-G1", "grid", "S0", handled_rate=0.2), _unit("S0-G2", "grid", "S0", handled_rate=0.4),
             _unit("S1-G1", "grid", "S1", handled_rate=1.0)]
    now = _snapshot("2026-11", [_unit("JS", "city", None, handled_rate=0.8), *streets, *grids])
    before = _snapshot("2026-10", [_unit("JS", "city", None, handled_rate=0.75),
                                   _unit("S0", "street", "JS", handled_rate=0.95),
                                   _unit("S1", "street", "JS", handled_rate=0.4)])
    city = _user("city_supervisor", "CC-JS", {u["code"] for u in now.data["units"]})
    view = build_view(now, before, city, "zh-CN", None, None)
    assert view.level == "streets" and view.measure.code == "handled_rate"
    assert [(r.code, r.rank) for r in view.ranking] == [("S0", 1), ("S3", 2), ("S4", 2), ("S1", 4), ("S2", None)]
    assert [r.code for r in view.red] == ["S0", "S3"] and [r.code for r in view.black] == ["S1", "S4"]
    s0 = view.ranking[0]
    assert s0.previous == 0.95 and s0.change == pytest.approx(-0.05) and s0.improved is False
    assert view.ranking[3].improved is True  # S1: 0.4 → 0.5
    assert view.top is not None and view.top["code"] == "JS"
    overview = {m.code: delta for m, _, _, delta in view.overview}
    assert overview["handled_rate"] == pytest.approx(0.05)
    # Lower is better for the rework rate: the best is the lowest.
    by_rework = build_view(now, before, city, "en", "streets", "rework_rate")
    assert [r.code for r in by_rework.ranking][:2] == ["S3", "S0"]
    # A street supervisor ranks their street's grids among themselves, and sees no other street's.
    street = _user("street_supervisor", "CC-S0", {"S0", "S0-G1", "S0-G2", "CC-S0"})
    mine = build_view(now, before, street, "zh-CN", None, None)
    assert mine.levels == ["streets", "grids"] and mine.level == "grids"
    assert [r.code for r in mine.ranking] == ["S0-G2", "S0-G1"]
    assert mine.top is not None and mine.top["code"] == "S0"
    with pytest.raises(Exception, match="no such level"):
        build_view(now, before, street, "zh-CN", "departments", None)
    with pytest.raises(Exception, match="no such indicator"):
        build_view(now, before, city, "zh-CN", "streets", "nope")


def test_scores_rank_units_and_people() -> None:
    """With a scheme, the snapshot holds its tables: units ranked by their score (with the grade), and
    the tables of people, which only the city-wide roles see."""
    units = [_unit("JS", "city", None, handled_rate=0.8), _unit("S0", "street", "JS", handled_rate=0.9),
             _unit("S1", "street", "JS", handled_rate=0.5), _unit("S2", "street", "JS", handled_rate=0.6)]
    now = _snapshot("2026", units)
    now.data["scores"] = {
        "streets": [{"subject": "S0", "score": 71.0, "grade": "C"}, {"subject": "S1", "score": 93.5, "grade": "A"},
                    {"subject": "S2", "score": None, "grade": None}, {"subject": "X9", "score": 99.0, "grade": "A"}],
        "party_members": [{"subject": "wg_a", "name_zh": "甲", "name_en": "A", "score": 80.0},
                          {"subject": "wg_b", "name_zh": "乙", "name_en": "B", "score": 90.0}],
        "cadres": []}
    before = _snapshot("2025", units)
    before.data["scores"] = {"streets": [{"subject": "S1", "score": 90.0, "grade": "A"}]}
    city = _user("city_supervisor", "CC-JS", {u["code"] for u in units})
    view = build_view(now, before, city, "zh-CN", "streets", "score")
    assert view.has_scores and view.measure.code == "score"
    assert [(r.code, r.value, r.grade, r.rank) for r in view.ranking] == [
        ("S1", 93.5, "A", 1), ("S0", 71.0, "C", 2), ("S2", None, None, None)]  # X9 is no unit of the report
    assert view.ranking[0].change == pytest.approx(3.5) and view.ranking[0].improved is True
    assert view.levels == ["streets", "party_members"]  # no cadre rows: no cadre table
    people = build_view(now, before, city, "en", "party_members", "handled_rate")  # an indicator: the score
    assert [(r.code, r.name) for r in people.ranking] == [("wg_b", "B"), ("wg_a", "A")]
    street = _user("street_supervisor", "CC-S0", {"S0", "CC-S0"})
    assert "party_members" not in levels_of(now.data, street)
    with pytest.raises(Exception, match="no such level"):
        build_view(now, before, street, "zh-CN", "party_members", None)
    assert not build_view(_snapshot("2026-11", units), None, city, "zh-CN", "streets", None).has_scores
    with pytest.raises(Exception, match="no such indicator or score"):
        build_view(_snapshot("2026-11", units), None, city, "zh-CN", "streets", "score")


def test_red_and_black_lists_never_share_a_unit() -> None:
    from web.reports import Ranked

    def ranked(n: int) -> list[Ranked]:
        return [Ranked(f"U{i}", "", 1.0 - i / 100, rank=i + 1) for i in range(n)]

    for n, size in [(0, 0), (1, 0), (3, 1), (9, 4), (10, 5), (45, 5)]:
        red, black = red_and_black(ranked(n))
        assert len(red) == len(black) == size
        assert not {r.code for r in red} & {r.code for r in black}
        if size:
            assert red[0].code == "U0" and black[0].code == f"U{n - 1}"  # the best first, the worst first
    assert shown(None, "rate") == "—" and shown(0.973, "rate") == "97.3%" and shown(12, "count") == "12"


# ------------------------------------------------------------------ the Schedule


WAIT = 60.0


async def _wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {WAIT:.0f} s"
        await asyncio.sleep(0.3)


async def _run_ids(client: Client, sid: str, n: int) -> list[str]:
    async def found() -> list[str] | None:
        actions = (await client.get_schedule_handle(sid).describe()).info.recent_actions
        ids = [a.action.workflow_id for a in actions if isinstance(a.action, ScheduleActionExecutionStartWorkflow)]
        return ids if len(ids) >= n else None

    return await _wait(found, f"{n} run(s) of {sid}")  # type: ignore[no-any-return]


async def test_the_schedule_stores_a_snapshot_once_per_period(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    client = dev_env.client
    prefix = f"test-report-{uuid.uuid4().hex[:8]}"
    async with running_platform(client, tmp_path) as p:
        queue = p.task_queue
        assert sorted(await ensure_report_schedules(client, queue, prefix)) == sorted(
            schedule_id(s, prefix) for s in SCHEDULES)
        assert await ensure_report_schedules(client, queue, prefix) == []  # it exists: nothing created twice
        monthly = schedule_id(SCHEDULES[0], prefix)
        try:
            described = await client.get_schedule_handle(monthly).describe()
            spec = described.schedule.spec
            assert spec.time_zone_name == TIME_ZONE
            [calendar] = spec.calendars
            assert [(r.start, r.end) for r in calendar.day_of_month] in ([(1, 1)], [(1, 0)])
            assert [r.start for r in calendar.hour] == [2] and [r.start for r in calendar.minute] == [0]
            annual = (await client.get_schedule_handle(schedule_id(SCHEDULES[1], prefix)).describe()).schedule.spec
            assert [r.start for r in annual.calendars[0].month] == [1] and annual.time_zone_name == TIME_ZONE
            assert [r.start for r in annual.calendars[0].minute] == [30]

            expected = period_before(datetime.now(UTC), "month").code
            await client.get_schedule_handle(monthly).trigger()
            [first] = await _run_ids(client, monthly, 1)
            result = await client.get_workflow_handle_for(PeriodReport.run, first).result()
            assert (result.period, result.revision, result.created) == (expected, 1, True)
            snap = await reports.snapshot(p.db, expected)
            assert snap is not None and snap.trigger == "schedule" and snap.computed_by == "schedule"
            assert snap.request_id == first and len(snap.data["units"]) == result.units > 50

            await client.get_schedule_handle(monthly).trigger()  # the same period again
            ids = await _run_ids(client, monthly, 2)
            again = await client.get_workflow_handle_for(PeriodReport.run, ids[-1]).result()
            assert (again.period, again.revision, again.created) == (expected, 1, False)
            assert [r.revision for r in await reports.revisions(p.db, expected)] == [1]
            assert len(await _audit(p.db, "report_publish")) == 1

            # A run caught up late reports the period of its nominal time (1 March 2026, 02:00 in Shanghai
            # is 28 February 18:00 UTC): February, not the month before today.
            await client.get_schedule_handle(monthly).backfill(ScheduleBackfill(
                start_at=datetime(2026, 2, 28, 17, 59, tzinfo=UTC), end_at=datetime(2026, 2, 28, 18, 1, tzinfo=UTC),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL))
            ids = await _run_ids(client, monthly, 3)
            late = await client.get_workflow_handle_for(PeriodReport.run, ids[-1]).result()
            assert (late.period, late.revision, late.created) == ("2026-02", 1, True)
            # The annual schedule's run of 1 January 2026, 02:30 in Shanghai, reports the year 2025.
            annual_id = schedule_id(SCHEDULES[1], prefix)
            await client.get_schedule_handle(annual_id).backfill(ScheduleBackfill(
                start_at=datetime(2025, 12, 31, 18, 29, tzinfo=UTC), end_at=datetime(2025, 12, 31, 18, 31, tzinfo=UTC),
                overlap=ScheduleOverlapPolicy.ALLOW_ALL))
            [year_run] = await _run_ids(client, annual_id, 1)
            year = await client.get_workflow_handle_for(PeriodReport.run, year_run).result()
            assert (year.period, year.revision, year.created) == ("2025", 1, True)
            snap_2025 = await reports.snapshot(p.db, "2025")
            assert snap_2025 is not None and snap_2025.kind == "year"
            assert (snap_2025.day_from, snap_2025.day_to) == (date(2025, 1, 1), date(2025, 12, 31))
        finally:
            for item in SCHEDULES:
                await client.get_schedule_handle(schedule_id(item, prefix)).delete()


# ------------------------------------------------------------------ pages, exports, recompute


@pytest.fixture
async def reported(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Platform]:
    """A platform with the reports of October and November 2026 (computed from an empty store)."""
    async with running_platform(dev_env.client, tmp_path) as p:
        for period in ("2026-10", "2026-11"):
            await publish(p.db, _job(period))
        yield p


async def _page_session(p: Platform, username: str, lang: str = "zh-CN") -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=p.http._transport, base_url="http://testserver")  # noqa: SLF001
    await http.get(f"/lang/{lang}")
    password = "admin12345" if username == "admin" else "demo12345"  # noqa: S105
    page = (await http.get("/login")).text
    r = await http.post("/login", data={"username": username, "password": password, "_csrf_token": csrf(page)})
    assert r.status_code == 303, r.text[:300]
    return http


async def test_report_pages_in_both_languages_and_within_the_scope(reported: Platform) -> None:
    p = reported
    for lang, words in [("zh-CN", ("考核报告", "红榜", "黑榜", "2026年11月", "与2026年10月")),
                        ("en", ("Assessment reports", "Red list", "Black list", "2026-11", "Compared with 2026-10"))]:
        http = await _page_session(p, "zx_city", lang)
        try:
            index = await http.get("/reports")
            assert index.status_code == 200 and 'href="/reports/2026-11"' in index.text
            assert words[0] in index.text
            page = await http.get("/reports/2026-11")
            assert page.status_code == 200, page.text[:500]
            for word in words[1:]:
                assert word in page.text, (lang, word)
            for street in ("HS", "ST", "QH"):
                assert f'data-unit="{street}"' in page.text
            scored = await http.get("/reports/2026-11?level=streets&by=score")  # the shipped scheme's scores
            assert scored.status_code == 200 and 'value="score" selected' in scored.text
            assert ("2026.1" in scored.text) and ('value="party_members"' in scored.text)
            people = await http.get("/reports/2026-11?level=party_members")
            assert people.status_code == 200 and people.text.count("<tr data-unit=") >= 1
            grids = await http.get("/reports/2026-11?level=grids&by=rework_rate")
            assert grids.status_code == 200 and 'data-unit="QH01-G1"' in grids.text
            assert (await http.get("/reports/2026-11?level=planets")).status_code == 400
            assert (await http.get("/reports/2026-11?by=nope")).status_code == 400
            assert (await http.get("/reports/2026-09")).status_code == 404
            assert (await http.get("/reports/nonsense")).status_code == 404
            assert (await http.get("/reports/2026-11?revision=7")).status_code == 404
        finally:
            await http.aclose()
    http = await _page_session(p, "zx_hs")
    try:
        page = await http.get("/reports/2026-11")
        assert page.status_code == 200
        units = set(re.findall(r'data-unit="([^"]+)"', page.text))
        assert units and all(u.startswith("HS") for u in units), units  # the street's communities only
        assert 'data-unit="HS01"' in page.text
        assert 'action="/reports/recompute"' not in page.text  # the city's report: not a street's to redo
        assert (await http.get("/reports/2026-11?level=departments")).status_code == 400
        assert (await http.get("/reports/2026-11?level=party_members")).status_code == 400  # the city's people
    finally:
        await http.aclose()


def _rows(sheet: Any) -> list[list[Any]]:
    """A sheet's rows without the empty cells openpyxl pads them with."""
    rows = []
    for row in sheet.iter_rows(values_only=True):
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        rows.append(values)
    return rows


async def test_exports_read_back(reported: Platform) -> None:
    http = await _page_session(reported, "zx_city")
    try:
        r = await http.get("/reports/2026-11/export.xlsx?level=streets&by=handled_rate")
        assert r.status_code == 200, r.text[:300]
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        assert len(book.sheetnames) == 4  # overview, ranking, red list, black list
        ranking = book[book.sheetnames[1]]
        rows = _rows(ranking)
        assert rows[0] == ["报告期", "2026-11"] and rows[1] == ["版本", 1]
        assert re.fullmatch(r"2\d{3}-\d\d-\d\d \d\d:\d\d:\d\d", rows[2][1])  # local time, to the second
        header = rows[5]
        assert header[:3] == ["排名", "单位代码", "单位"] and "处置率" in header[3]
        assert {row[1] for row in rows[6:]} == {"HS", "ST", "QH"}
        overview = _rows(book[book.sheetnames[0]])
        assert "handled_rate" in {row[0] for row in overview if row}

        r = await http.get("/reports/2026-11/export.csv?level=communities&table=ranking")
        assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
        lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert lines[0] == ["报告期", "2026-11"]
        assert len([line for line in lines[6:] if line]) == 13  # every community
        assert (await http.get("/reports/2026-11/export.csv?table=nope")).status_code == 400
    finally:
        await http.aclose()


async def test_recompute_makes_an_audited_revision_2(reported: Platform) -> None:
    p = reported
    http = await _page_session(p, "zx_city")
    try:
        page = await http.get("/reports/2026-11")
        token = csrf(page.text)
        r = await http.post("/reports/recompute", data={"period": "2026-11", "reason": "补录事件后重算",
                                                        "_csrf_token": token})
        assert r.status_code == 303, r.text[:300]
        assert r.headers["location"] == "/reports/2026-11?msg=reports.msg.recomputed&revision=2"
        shown_page = await http.get(r.headers["location"])
        assert "第 2 版" in shown_page.text and "补录事件后重算" in shown_page.text
        assert "已生成新版本的报告" in shown_page.text
        assert [s.revision for s in await reports.revisions(p.db, "2026-11")] == [2, 1]
        [entry] = await _audit(p.db, "report_recompute")
        assert (entry.actor, entry.target) == ("zx_city", "2026-11") and "补录事件后重算" in entry.detail
        old = await http.get("/reports/2026-11?revision=1")
        assert old.status_code == 200 and "第 1 版" in old.text  # the published revision stays readable
        for form, key in [({"period": "2026-11", "reason": " "}, "请填写重新计算的原因"),
                          ({"period": "2026-13", "reason": "x"}, "月份应为 01 至 12"),
                          ({"period": period_before(datetime(2100, 1, 1, tzinfo=UTC), "month").code,
                            "reason": "x"}, "尚未结束")]:
            r = await http.post("/reports/recompute", data={**form, "_csrf_token": token})
            assert r.status_code == 400 and key in r.text, (form, r.text[:300])
    finally:
        await http.aclose()
    http = await _page_session(p, "zx_hs")
    try:
        token = csrf((await http.get("/reports")).text)
        r = await http.post("/reports/recompute", data={"period": "2026-11", "reason": "x", "_csrf_token": token})
        assert r.status_code == 403
        assert len(await reports.revisions(p.db, "2026-11")) == 2
    finally:
        await http.aclose()


async def test_the_cli_recomputes_a_period(reported: Platform, dev_env: WorkflowEnvironment,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``wulian reports recompute 2026-11 --reason ...``: a run on the platform's worker stores revision 2,
    audited with the CLI's actor; a period that has not ended is refused before anything starts."""
    from typer.testing import CliRunner

    from wulian.cli import app
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_TEMPORAL_ADDRESS", dev_env.client.service_client.config.target_host)
    monkeypatch.setenv("WULIAN_TEMPORAL_TASK_QUEUE", reported.task_queue)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        done = await asyncio.to_thread(runner.invoke, app, ["reports", "recompute", "2026-11", "--reason", "核对数据",
                                                            "--actor", "ops", "--wait", "60"])
        assert done.exit_code == 0, done.output
        assert "2026-11: revision 2 stored" in done.output
        [entry] = await _audit(reported.db, "report_recompute")
        assert (entry.actor, entry.target) == ("ops", "2026-11") and "核对数据" in entry.detail
        future = period_before(datetime(2100, 1, 1, tzinfo=UTC), "month").code
        refused = await asyncio.to_thread(runner.invoke, app, ["reports", "recompute", future, "--reason", "x"])
        assert refused.exit_code == 2 and "has not ended" in refused.output
        assert (await asyncio.to_thread(runner.invoke, app, ["reports", "recompute", "2026-13", "--reason", "x"])
                ).exit_code == 2
    finally:
        get_settings.cache_clear()


async def test_demo_history_comes_with_the_reports_of_its_months(tmp_path: Path) -> None:
    """A new demo store opens the reports page on a year of reports (the schedule would make each
    on the 1st), each the same as a computation of its month; a second start computes nothing."""
    from store.seed import load_organisation
    from wulian.launcher import publish_demo_reports, seed_demo_history

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}")
    try:
        await db.upgrade()
        await load_organisation(db)
        assert await seed_demo_history(db, 300) == 300
        listed = await reports.periods(db)
        today = city_day(datetime.now(UTC))
        expected, year, month = [], today.year, today.month
        for _ in range(11):
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
            expected.append(f"{year:04d}-{month:02d}")
        assert sorted(p.period for p in listed) == sorted(expected)
        newest = await reports.snapshot(db, expected[0])
        assert newest is not None and newest.revision == 1
        city = next(u for u in newest.data["units"] if u["code"] == "JS")
        assert city["values"]["events"]["value"] > 0  # the history's events are in it
        assert await publish_demo_reports(db, months=11) == 0  # each month has its report already
        assert await seed_demo_history(db, 300) == 0
    finally:
        await db.dispose()
