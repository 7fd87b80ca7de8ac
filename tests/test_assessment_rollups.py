"""The rollups are what a recount gives: after a generated past (``store.demo_history``, the seeder
that sums facts and rollups in memory) they equal a rebuild from the events, and ``indicator_values``
equals a brute-force recount over the Event, Task and SupervisionWarning rows, written here from the
indicators' definitions without ``assessment.facts``, for random units and periods of random
lifecycle mixes (returns, extensions, late work, escalations, reworks, every rating, open work cut
off at the end). And the generated past looks like a county city's year.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from rules.worktime import CITY_TZ, is_working_day, working_hours_between
from store import assessment, demo_history, models
from store.db import Database
from store.org import OrgTree
from store.seed import load_organisation
from tests.conftest import drop_db, make_db, store_urls

END = date(2026, 11, 30)
#: The store stands at 15:00 on the last day: the last days' work is still open.
NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)


@pytest.fixture(params=store_urls())
async def city_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty store with the demo organisation, once per configured back end."""
    db = await make_db(request.param, tmp_path)
    await load_organisation(db)
    yield db
    await drop_db(db)


async def _rollups(db: Database) -> dict[tuple[str, str, date], tuple[int, float]]:
    async with db.session() as session:
        rows = (await session.exec(select(models.IndicatorRollup))).all()
    return {(r.unit, r.counter, r.day): (r.n, round(r.total, 4)) for r in rows if r.n or r.total}


async def _categories(db: Database) -> dict[tuple[str, date, str], int]:
    async with db.session() as session:
        rows = (await session.exec(select(models.CategoryRollup))).all()
    return {(r.unit, r.day, r.category): r.n for r in rows if r.n}


async def _facts(db: Database) -> dict[str, tuple[Any, ...]]:
    async with db.session() as session:
        rows = (await session.exec(select(models.AssessmentFact))).all()
    return {f.subject: (f.kind, f.day, f.category, f.grid, f.community, f.street, f.department, f.centre, f.flags,
                        {k: round(v, 4) for k, v in f.amounts.items()},
                        f.due_at.replace(tzinfo=UTC) if f.due_at and f.due_at.tzinfo is None else f.due_at,
                        f.ended_at.replace(tzinfo=UTC) if f.ended_at and f.ended_at.tzinfo is None else f.ended_at)
            for f in rows}


async def test_seeded_rollups_equal_a_rebuild(city_db: Database) -> None:
    org = await OrgTree.load(city_db)
    written = await demo_history.seed_history(city_db, org, events=1200, months=6, end=END, seed=3, now=NOW)
    assert written == 1200
    facts, rollups, categories = await _facts(city_db), await _rollups(city_db), await _categories(city_db)
    assert len(facts) > 2400 and len(rollups) > 10_000
    report = await assessment.rebuild(city_db, batch=170)  # batches that end anywhere
    assert report.events == 1200 and report.facts == len(facts)
    assert await _facts(city_db) == facts
    assert await _rollups(city_db) == rollups
    assert await _categories(city_db) == categories
    # A second history on top adds to the rollups (new ids, new receipt codes), and still equals a rebuild.
    await demo_history.seed_history(city_db, org, events=300, months=2, end=END, seed=4, now=NOW)
    after = await _rollups(city_db)
    await assessment.rebuild(city_db)
    assert await _rollups(city_db) == after
    async with city_db.session() as session:
        ids = (await session.exec(select(models.Event.event_id))).all()
    assert len(ids) == 1500 and all(i.startswith("EV-H") for i in ids)


# ------------------------------------------------------------------------------ the brute-force recount
def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _day(moment: datetime) -> date:
    return _aware(moment).astimezone(CITY_TZ).date()  # type: ignore[union-attr]


class Recount:
    """The indicators' numerators and denominators counted from the rows, as the issue defines them."""

    def __init__(self, org: OrgTree, events: list[models.Event], tasks: list[models.Task],
                 warnings: list[models.SupervisionWarning]) -> None:
        self.org = org
        self.events = events
        self.handling: dict[str, list[models.Task]] = {}
        for t in sorted(tasks, key=lambda t: (_aware(t.created_at), t.task_id)):
            if t.kind == "handle":
                self.handling.setdefault(t.event_id, []).append(t)
        self.verifying = [t for t in tasks if t.kind == "verify"]
        self.warnings = warnings
        self.warned = {w.event_id for w in warnings if w.kind in ("yellow", "red")}

    def under(self, unit: str, code: str | None) -> bool:
        """Whether ``code`` lies in the subtree of ``unit``."""
        return code is not None and unit in self.org.ancestors(code)

    def last_handler(self, event: models.Event) -> str | None:
        tasks = self.handling.get(event.event_id, [])
        done = [t for t in tasks if t.status == "done"]
        return (done or tasks or [None])[-1].unit if (done or tasks) else None  # type: ignore[union-attr]

    def event_counts_for(self, unit: str, event: models.Event) -> bool:
        if self.org.units[unit].parent is None:
            return True
        if unit in (event.grid, event.community, event.street):
            return True
        handler = self.last_handler(event) or event.unit
        kind = self.org.units[unit].kind
        return kind in ("department", "command_centre") and self.under(unit, handler)

    def count(self, unit: str, day_from: date, day_to: date, now: datetime) -> dict[str, tuple[float, float | None]]:
        end = min(datetime.combine(day_to + timedelta(days=1), time(0), CITY_TZ).astimezone(UTC), now)
        events = [e for e in self.events if day_from <= _day(e.created_at) <= day_to and self.event_counts_for(unit, e)]
        closed = [e for e in events if e.state == "closed"]
        rated = [e for e in events if e.rating in ("satisfied", "basically_satisfied", "dissatisfied")]
        tasks = [t for ts in self.handling.values() for t in ts
                 if day_from <= _day(t.created_at) <= day_to and self.under(unit, t.unit)]
        done = [t for t in tasks if t.status == "done"]
        dispatches = [t for t in tasks if t.origin == "dispatch"]

        def open_at_end(t: models.Task) -> bool:
            due = _aware(t.due_at)
            ended = _aware(t.completed_at) or _aware(t.ended_at)
            return due is not None and due < end and (ended is None or ended > end)

        def grassroots(e: models.Event) -> bool:
            handler = self.last_handler(e)
            return handler is not None and self.org.units[handler].tier in ("grid", "community", "street")

        warnings = [w for w in self.warnings if day_from <= _day(w.at) <= day_to and self.under(unit, w.unit)]
        handling_hours = []
        for e in events:
            spans = [working_hours_between(_aware(t.claimed_at), _aware(t.completed_at))  # type: ignore[arg-type]
                     for t in self.handling.get(e.event_id, []) if t.status == "done" and t.claimed_at]
            if spans:
                handling_hours.append(sum(round(s, 4) for s in spans))

        def rate(num: int, den: int) -> tuple[float, float | None]:
            return float(num), float(den)

        return {
            "events": (float(len(events)), None),
            "handled_rate": rate(len(done), len(tasks)),
            "on_time_handled_rate": rate(sum(1 for t in done if not t.due_at or
                                             _aware(t.completed_at) <= _aware(t.due_at)), len(tasks)),  # type: ignore[operator]
            "closed_rate": rate(len(closed), len(events)),
            "on_time_closed_rate": rate(sum(1 for e in closed if e.event_id not in self.warned), len(events)),
            "rework_rate": rate(sum(1 for e in closed if e.rework_count > 0), len(closed)),
            "extension_rate": rate(sum(1 for t in tasks if t.extended_hours > 0), len(tasks)),
            "overdue_open_rate": rate(sum(1 for t in tasks if open_at_end(t)), len(tasks)),
            "dispatch_accuracy": rate(sum(1 for t in dispatches if t.ended_by != "returned"), len(dispatches)),
            "satisfaction_rate": rate(sum(1 for e in rated if e.rating != "dissatisfied"), len(rated)),
            "default_rating_rate": rate(sum(1 for e in closed if e.rating is None
                                            and e.close_action == "accept_by_default"), len(closed)),
            "grassroots_share": rate(sum(1 for e in closed if grassroots(e)), len(closed)),
            "yellow_warnings": (float(sum(1 for w in warnings if w.kind == "yellow")), None),
            "red_warnings": (float(sum(1 for w in warnings if w.kind == "red")), None),
            "avg_hours_handling": (round(sum(handling_hours), 2), float(len(handling_hours))),
        }


async def _rows(db: Database) -> tuple[list[models.Event], list[models.Task], list[models.SupervisionWarning]]:
    async with db.session() as session:
        return (list((await session.exec(select(models.Event))).all()),
                list((await session.exec(select(models.Task))).all()),
                list((await session.exec(select(models.SupervisionWarning))).all()))


@pytest.mark.parametrize("seed", [11, 12, 13])
async def test_indicators_equal_a_direct_recount_after_a_random_lifecycle_mix(org_db: Database, seed: int) -> None:
    rng = random.Random(seed)
    org = await OrgTree.load(org_db)
    months = rng.choice((1, 2, 3))
    # Now: the end of the last day, or within it (the last days' work then still open).
    now = datetime.combine(END, time(rng.choice((10, 16, 23))), CITY_TZ).astimezone(UTC)
    await demo_history.seed_history(org_db, org, events=rng.randint(250, 600), months=months, end=END, seed=seed,
                                    now=now)
    recount = Recount(org, *await _rows(org_db))
    lifecycle = Counter(t.ended_by or t.status for ts in recount.handling.values() for t in ts)
    assert lifecycle["done"] and lifecycle["open"] + lifecycle["claimed"]  # a mix, open work included
    units = ["JS", *rng.sample(sorted(c for c, u in org.units.items() if u.kind == "street"), 1),
             *rng.sample(sorted(c for c, u in org.units.items() if u.kind == "community"), 2),
             *rng.sample(sorted(c for c, u in org.units.items() if u.kind == "grid"), 3), "HS01-G1", "CC-JS",
             "D-ZF"]
    first = END - timedelta(days=31 * months)
    checked = 0
    for unit in units:
        for _ in range(3):
            a, b = sorted(first + timedelta(days=rng.randint(0, 31 * months)) for _ in range(2))
            values = await assessment.indicator_values(org_db, org, unit, a, b, now=now)
            for code, (num, den) in recount.count(unit, a, b, now).items():
                got = values[code]
                if code.startswith("avg_hours"):
                    assert (round(got.numerator, 2), got.denominator) == (num, den), (unit, a, b, code)
                else:
                    assert (got.numerator, got.denominator) == (num, den), (unit, a, b, code)
                checked += 1
    assert checked == len(units) * 3 * 15


# ------------------------------------------------------------------------------------ a realistic year
async def test_a_generated_year_looks_like_a_county_city(org_db: Database) -> None:
    org = await OrgTree.load(org_db)
    await demo_history.seed_history(org_db, org, events=3000, end=END, seed=1, now=NOW)
    city = await assessment.indicator_values(org_db, org, "JS", END - timedelta(days=364), END, now=NOW)
    value = {code: v.value for code, v in city.items()}
    assert value["events"] == 3000
    assert 0.9 <= value["grassroots_share"] <= 0.99  # type: ignore[operator]  # Jiangshan: 97.3%
    assert 0.95 <= value["closed_rate"] <= 0.995  # type: ignore[operator]  # the last days still open
    assert 0.93 <= value["dispatch_accuracy"] <= 0.99  # type: ignore[operator]
    assert 0.8 <= value["on_time_handled_rate"] <= 0.95  # type: ignore[operator]
    assert 0.02 <= value["rework_rate"] <= 0.1  # type: ignore[operator]
    assert 0.005 <= value["extension_rate"] <= 0.05  # type: ignore[operator]
    assert 0.9 <= value["satisfaction_rate"] <= 1.0  # type: ignore[operator]
    assert 0.05 <= value["default_rating_rate"] <= 0.25  # type: ignore[operator]
    assert 0 < value["overdue_open_rate"] <= 0.02  # type: ignore[operator]  # a few stuck ones
    assert value["yellow_warnings"] > value["red_warnings"] > 0  # type: ignore[operator]
    assert 0.1 <= value["avg_hours_dispatch"] <= 2 and 1 <= value["avg_hours_handling"] <= 16  # type: ignore[operator]
    events, tasks, warnings = await _rows(org_db)
    # Hotspots: a few categories and grids take a large share.
    by_category = Counter(e.category for e in events).most_common()
    assert sum(n for _, n in by_category[:5]) >= 0.3 * len(events)
    by_grid = sorted(Counter(e.grid for e in events).values())
    assert by_grid[-1] >= 3 * by_grid[len(by_grid) // 2]
    # Spread over working days and hours; each month has its events.
    local = [_aware(e.created_at).astimezone(CITY_TZ) for e in events]  # type: ignore[union-attr]
    assert sum(1 for m in local if is_working_day(m.date())) >= 0.75 * len(events)
    assert sum(1 for m in local if 8 <= m.hour < 18) >= 0.7 * len(events)
    assert len({(m.year, m.month) for m in local}) == 12
    # Ids and receipt codes; located events with the grid's coordinates; a timeline for each.
    assert len({e.receipt_code for e in events}) == len(events)
    assert all(e.event_id.startswith("EV-H") and len(e.receipt_code) == 10 for e in events)
    assert all(e.grid and e.lat and e.lon and abs(e.lat - (org.units[e.grid].lat or 0)) < 0.01 for e in events)
    assert {e.source for e in events} >= {"hotline", "portal", "grid_patrol", "camera"}
    assert {e.close_action for e in events if e.state == "closed"} == {"rate", "accept_by_default", "close"}
    assert {t.origin for t in tasks if t.kind == "handle"} == {"dispatch", "rework", "escalation"}
    assert {t.ended_by for t in tasks} >= {"", "returned", "escalated"}
    assert {w.kind for w in warnings} == {"reminder", "yellow", "red"}
    open_overdue = [t for t in tasks if t.status in ("open", "claimed") and t.due_at and _aware(t.due_at) < NOW]
    assert open_overdue and all(t.overdue_level for t in open_overdue)
    async with org_db.session() as session:
        trail = (await session.exec(select(models.TimelineEntry).where(
            models.TimelineEntry.event_id == events[0].event_id).order_by(models.TimelineEntry.seq))).all()
    assert [e.action for e in trail][:2] == ["report", "route"] and len(trail) >= 5
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1))
    assert all(_aware(a.at) <= _aware(b.at) for a, b in zip(trail, trail[1:], strict=False))  # type: ignore[operator]


# ------------------------------------------------------------------------------- CLI and launcher
def test_cli_writes_history_in_demo_mode_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from typer.testing import CliRunner

    from wulian.cli import app
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("WULIAN_MODE", "production")
    get_settings.cache_clear()
    try:
        refused = CliRunner().invoke(app, ["demo", "history", "--events", "50"])
        assert refused.exit_code == 2 and "demo mode" in refused.output
        assert not (tmp_path / "cli.db").exists()
        monkeypatch.setenv("WULIAN_MODE", "demo")
        get_settings.cache_clear()
        done = CliRunner().invoke(app, ["demo", "history", "--events", "120", "--months", "2"])
        assert done.exit_code == 0, done.output
        assert "wrote 120 past events over 2 months" in done.output
    finally:
        get_settings.cache_clear()

    async def count() -> int:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
        async with db.session() as session:
            n = len((await session.exec(select(models.Event.event_id))).all())
        await db.dispose()
        return n

    assert asyncio.run(count()) == 120


async def test_the_demo_launcher_writes_history_into_a_store_without_events(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wulian.launcher import prepare_store
    from wulian.settings import Settings

    settings = Settings(mode="demo", data_dir=tmp_path, database_url="", demo_history_events=150)
    await prepare_store(settings)
    assert "150 events" in capsys.readouterr().out
    await prepare_store(settings)  # a store with events gets no second history
    assert "demo history" not in capsys.readouterr().out
    db = Database(settings.db_url)
    org = await OrgTree.load(db)
    values = await assessment.indicator_values(db, org, "JS", date.today() - timedelta(days=400), date.today())
    await db.dispose()
    assert values["events"].value == 150
