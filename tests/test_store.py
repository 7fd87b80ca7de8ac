"""The store: snapshot projection, the demo organisation, locating events, users and passwords.

Runs on every configured back end (SQLite; PostgreSQL when WULIAN_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, func, select

from store import models
from store.db import Database
from store.org import OrgTree, Placement
from store.projection import apply_snapshot
from store.seed import DEMO_ADMIN_PASSWORD, DEMO_ORGANISATION, DEMO_PASSWORD, load_organisation
from store.users import authenticate, hash_password, users_with_password
from workflows.types import (
    Decision,
    EventReport,
    EventSnapshot,
    Location,
    Notice,
    Reporter,
    Task,
    TimelineEntry,
    receipt_code_for,
)

EVENT_ID = "event-2026-0001"
DEMO = json.loads(DEMO_ORGANISATION.read_text(encoding="utf-8"))
GRIDS = {u["code"]: u for u in DEMO["units"] if u["kind"] == "grid"}


# ------------------------------------------------------------------ helpers


def as_utc(value: datetime | None) -> datetime | None:
    """A stored datetime as aware UTC (a back end may hand back naive UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def decision() -> Decision:
    return Decision(
        placed=True,
        tier="grid",
        unit="HS01-G1",
        department="ZF",
        rule="category:SR-01",
        list_version="2026.1",
        reason="SR-01 暴露垃圾: responsibility of the grid",
        grid="HS01-G1",
        community="HS01",
        street="HS",
        category_name="暴露垃圾",
        priority=2,
        deadline_hours={"dispatch": 1, "handling": 8, "verification": 4, "rating_window": 24},
        handling_due="2026-03-04T09:30:00+00:00",
        facts={"category": "SR-01", "grid": "HS01-G1"},
    )


def entry(seq: int, action: str, from_state: str | None, to_state: str, stage: str) -> TimelineEntry:
    return TimelineEntry(
        seq=seq,
        stage=stage,
        action=action,
        actor="wg_hs01_g1" if action == "claim" else "system",
        actor_kind="user" if action == "claim" else "system",
        at=f"2026-03-04T0{seq}:00:00+08:00",
        from_state=from_state,
        to_state=to_state,
        note=f"step {seq}",
    )


TIMELINE = [
    entry(1, "report", None, "intake", "intake"),
    entry(2, "route", "intake", "dispatched", "dispatch"),
    entry(3, "claim", "dispatched", "handling", "handling"),
    entry(4, "complete", "handling", "verification", "verification"),
]


def snapshot(version: int) -> EventSnapshot:
    """The event after ``version`` steps (1: dispatched, 2: handling, 3: verification)."""
    handle = Task(
        task_id=f"{EVENT_ID}/handle/1",
        kind="handle",
        unit="HS01-G1",
        status="open",
        created_at="2026-03-04T02:00:00+08:00",
        due_at="2026-03-04T09:30:00+00:00",
    )
    notices = [
        Notice(
            notice_id=f"{EVENT_ID}/notice/dispatched",
            kind="dispatched",
            recipient="13800000000",
            body="您反映的问题已派遣",
            created_at="2026-03-04T02:00:00+08:00",
        )
    ]
    state, stage = "dispatched", "dispatch"
    tasks = [handle]
    if version >= 2:
        handle.status, handle.claimed_by = "claimed", "wg_hs01_g1"
        handle.claimed_at = "2026-03-04T03:00:00+08:00"
        state, stage = "handling", "handling"
    if version >= 3:
        handle.status, handle.result, handle.completed_at = (
            "done",
            "已清运",
            "2026-03-04T04:00:00+08:00",
        )
        tasks.append(
            Task(
                task_id=f"{EVENT_ID}/verify/1",
                kind="verify",
                unit="HS01-G1",
                created_at="2026-03-04T04:00:00+08:00",
            )
        )
        notices.append(
            Notice(
                notice_id=f"{EVENT_ID}/notice/completed",
                kind="completed",
                recipient="13800000000",
                body="您反映的问题已处置",
                created_at="2026-03-04T04:00:00+08:00",
            )
        )
        state, stage = "verification", "verification"
    return EventSnapshot(
        event_id=EVENT_ID,
        receipt_code=receipt_code_for(EVENT_ID),
        report=EventReport(
            category="SR-01",
            description="北苑小区门口垃圾堆积",
            location=Location(address="城北路北苑小区门口", lat=28.7552, lon=118.629),
            reporter=Reporter(name="张三", phone="13800000000"),
            source="portal",
            external_id="ext-1",
        ),
        state=state,
        stage=stage,
        created_at="2026-03-04T01:00:00+08:00",
        version=version,
        decision=decision(),
        tasks=tasks,
        timeline=TIMELINE[: version + 1],
        notices=notices,
    )


async def rows(db: Database, model: type[Any]) -> list[Any]:
    async with db.session() as session:
        return list((await session.exec(select(model))).all())


async def count(db: Database, model: type[Any]) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


async def event_row(db: Database) -> models.Event:
    async with db.session() as session:
        row = await session.get(models.Event, EVENT_ID)
    assert row is not None
    return row


async def timeline_rows(db: Database) -> list[models.TimelineEntry]:
    async with db.session() as session:
        return list(
            (
                await session.exec(
                    select(models.TimelineEntry)
                    .where(models.TimelineEntry.event_id == EVENT_ID)
                    .order_by(col(models.TimelineEntry.seq))
                )
            ).all()
        )


async def task_rows(db: Database) -> dict[str, models.Task]:
    return {t.task_id: t for t in await rows(db, models.Task)}


async def whole_store(db: Database) -> list[list[dict[str, Any]]]:
    """Every projected row, as plain dicts (to compare the store before and after)."""
    tables = (models.Event, models.Task, models.TimelineEntry, models.Notice)
    return [sorted((r.model_dump() for r in await rows(db, t)), key=repr) for t in tables]


# ------------------------------------------------------------------ projection


async def test_apply_snapshot_creates_event_tasks_timeline_and_notices(any_db: Database) -> None:
    snap = snapshot(1)
    assert await apply_snapshot(any_db, snap) is True

    event = await event_row(any_db)
    assert event.receipt_code == receipt_code_for(EVENT_ID)
    assert event.version == 1
    assert (event.state, event.stage) == ("dispatched", "dispatch")
    assert (event.tier, event.unit, event.department) == ("grid", "HS01-G1", "ZF")
    assert (event.grid, event.community, event.street) == ("HS01-G1", "HS01", "HS")
    assert event.category == "SR-01" and event.category_name == "暴露垃圾"
    assert event.description == "北苑小区门口垃圾堆积"
    assert (event.reporter_name, event.reporter_phone) == ("张三", "13800000000")
    assert (event.source, event.external_id) == ("portal", "ext-1")
    assert event.priority == 2
    assert event.decision == dataclasses.asdict(decision())
    assert as_utc(event.created_at) == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)
    assert event.closed_at is None

    tasks = await task_rows(any_db)
    assert list(tasks) == [f"{EVENT_ID}/handle/1"]
    handle = tasks[f"{EVENT_ID}/handle/1"]
    assert (handle.event_id, handle.kind, handle.unit, handle.status) == (
        EVENT_ID,
        "handle",
        "HS01-G1",
        "open",
    )
    assert as_utc(handle.due_at) == datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
    assert as_utc(handle.created_at) == datetime(2026, 3, 3, 18, 0, tzinfo=UTC)
    # The inbox's denormalised columns: the deadline as sort key and the event's filter fields.
    assert handle.active is True and as_utc(handle.due_key) == as_utc(handle.due_at)
    assert (handle.priority, handle.category, handle.tier, handle.source) == (2, "SR-01", "grid", "portal")

    timeline = await timeline_rows(any_db)
    assert [(t.seq, t.action, t.from_state, t.to_state) for t in timeline] == [
        (1, "report", None, "intake"),
        (2, "route", "intake", "dispatched"),
    ]
    assert timeline[1].note == "step 2" and timeline[1].stage == "dispatch"
    assert as_utc(timeline[0].at) == datetime(2026, 3, 3, 17, 0, tzinfo=UTC)

    notices = await rows(any_db, models.Notice)
    assert [(n.notice_id, n.kind, n.recipient, n.status) for n in notices] == [
        (f"{EVENT_ID}/notice/dispatched", "dispatched", "13800000000", "pending")
    ]


async def test_applying_the_same_snapshot_twice_changes_nothing(any_db: Database) -> None:
    assert await apply_snapshot(any_db, snapshot(1)) is True
    before = await whole_store(any_db)
    assert await apply_snapshot(any_db, snapshot(1)) is False
    assert await whole_store(any_db) == before  # updated_at included: not even touched
    assert await count(any_db, models.TimelineEntry) == 2
    assert await count(any_db, models.Task) == 1
    assert await count(any_db, models.Notice) == 1


async def test_an_older_snapshot_after_a_newer_one_is_ignored(any_db: Database) -> None:
    assert await apply_snapshot(any_db, snapshot(3)) is True
    before = await whole_store(any_db)
    assert await apply_snapshot(any_db, snapshot(2)) is False
    assert await apply_snapshot(any_db, snapshot(1)) is False
    assert await whole_store(any_db) == before
    event = await event_row(any_db)
    assert (event.version, event.state, event.stage) == (3, "verification", "verification")
    tasks = await task_rows(any_db)
    assert tasks[f"{EVENT_ID}/handle/1"].status == "done"


async def test_a_newer_snapshot_adds_only_new_entries_and_updates_tasks(any_db: Database) -> None:
    assert await apply_snapshot(any_db, snapshot(1)) is True
    first_ids = {t.seq: t.id for t in await timeline_rows(any_db)}

    assert await apply_snapshot(any_db, snapshot(2)) is True
    event = await event_row(any_db)
    assert (event.version, event.state, event.stage) == (2, "handling", "handling")
    tasks = await task_rows(any_db)
    assert len(tasks) == 1
    handle = tasks[f"{EVENT_ID}/handle/1"]
    assert (handle.status, handle.claimed_by, handle.version) == ("claimed", "wg_hs01_g1", 2)
    assert as_utc(handle.claimed_at) == datetime(2026, 3, 3, 19, 0, tzinfo=UTC)
    timeline = await timeline_rows(any_db)
    assert [t.seq for t in timeline] == [1, 2, 3]
    assert {t.seq: t.id for t in timeline if t.seq <= 2} == first_ids  # old rows kept as they were

    assert await apply_snapshot(any_db, snapshot(3)) is True
    event = await event_row(any_db)
    assert (event.version, event.state) == (3, "verification")
    tasks = await task_rows(any_db)
    assert sorted(tasks) == [f"{EVENT_ID}/handle/1", f"{EVENT_ID}/verify/1"]
    assert tasks[f"{EVENT_ID}/handle/1"].status == "done"
    assert tasks[f"{EVENT_ID}/handle/1"].active is False  # out of the inbox once done
    assert tasks[f"{EVENT_ID}/handle/1"].result == "已清运"
    assert tasks[f"{EVENT_ID}/verify/1"].status == "open"
    assert as_utc(tasks[f"{EVENT_ID}/verify/1"].due_key) == models.NO_DUE  # no deadline: sorts last
    assert [t.seq for t in await timeline_rows(any_db)] == [1, 2, 3, 4]
    assert sorted(n.kind for n in await rows(any_db, models.Notice)) == ["completed", "dispatched"]


async def test_skipping_versions_still_gives_the_full_timeline(any_db: Database) -> None:
    """A lost projection (version 2) is repaired by the next one: snapshots carry everything."""
    assert await apply_snapshot(any_db, snapshot(1)) is True
    assert await apply_snapshot(any_db, snapshot(3)) is True
    assert [t.seq for t in await timeline_rows(any_db)] == [1, 2, 3, 4]
    assert (await event_row(any_db)).state == "verification"


async def test_closing_records_rating_and_closed_at(any_db: Database) -> None:
    assert await apply_snapshot(any_db, snapshot(3)) is True
    closed = snapshot(3)
    closed.version, closed.state, closed.stage = 7, "closed", "close"
    closed.rating, closed.rating_comment = "satisfied", "很快"
    closed.closed_at = "2026-03-05T10:00:00+08:00"
    assert await apply_snapshot(any_db, closed) is True
    event = await event_row(any_db)
    assert (event.state, event.rating, event.rating_comment) == ("closed", "satisfied", "很快")
    assert as_utc(event.closed_at) == datetime(2026, 3, 5, 2, 0, tzinfo=UTC)


async def test_snapshot_without_decision_is_stored(any_db: Database) -> None:
    snap = snapshot(1)
    snap.decision, snap.tasks, snap.notices = None, [], []
    snap.state, snap.stage, snap.timeline = "intake", "intake", TIMELINE[:1]
    snap.report.location.grid = "HS01-G2"
    assert await apply_snapshot(any_db, snap) is True
    event = await event_row(any_db)
    assert (event.state, event.unit, event.tier, event.decision) == ("intake", None, None, None)
    assert event.grid == "HS01-G2"  # the reported grid is kept until a decision places it


async def test_concurrent_projections_converge_after_retry(any_db: Database) -> None:
    """Overlapping attempts (a timed-out local activity and its retry) may fail, never corrupt.

    The activity is retried until it succeeds, so a failure is acceptable if it is a database
    error and a retry applies or ignores the snapshot.
    """
    versions = (1, 2, 3)
    results = await asyncio.gather(*(apply_snapshot(any_db, snapshot(v)) for v in versions), return_exceptions=True)
    assert any(r is True for r in results)
    for version, result in zip(versions, results, strict=True):
        if isinstance(result, BaseException):
            assert isinstance(result, DBAPIError), repr(result)
            assert await apply_snapshot(any_db, snapshot(version)) in (True, False)
    event = await event_row(any_db)
    assert (event.version, event.state) == (3, "verification")
    assert [t.seq for t in await timeline_rows(any_db)] == [1, 2, 3, 4]
    assert await count(any_db, models.Task) == 2
    assert await count(any_db, models.Notice) == 2


# ------------------------------------------------------------------ the demo organisation


async def test_load_organisation_twice_does_not_duplicate(any_db: Database) -> None:
    first = await load_organisation(any_db)
    assert first == {"units": len(DEMO["units"]), "users": len(DEMO["users"])}
    assert await count(any_db, models.Unit) == len(DEMO["units"])
    assert await count(any_db, models.User) == len(DEMO["users"])

    again = await load_organisation(any_db)
    assert again == {"units": 0, "users": 0}
    assert await count(any_db, models.Unit) == len(DEMO["units"])
    assert await count(any_db, models.User) == len(DEMO["users"])


async def test_demo_organisation_tree_is_consistent(any_db: Database) -> None:
    await load_organisation(any_db)
    tree = await OrgTree.load(any_db)
    assert len(tree.units) == len(DEMO["units"])
    for code, unit in tree.units.items():
        if unit.parent is not None:
            assert unit.parent in tree.units, code
    for code in GRIDS:
        placed = tree.place_grid(code)
        assert tree.units[placed.community].kind == "community"
        assert tree.units[placed.street].kind == "street"
        assert tree.street_of(code) == placed.street
    assert tree.street_of("CC-HS") == "HS"
    assert "HS01-G1" in tree.descendants("HS")
    assert tree.ancestors("HS01-G1") == ["HS01-G1", "HS01", "HS", "JS"]


# ------------------------------------------------------------------ locating events


@pytest.fixture
async def tree(any_db: Database) -> OrgTree:
    await load_organisation(any_db)
    return await OrgTree.load(any_db)


@pytest.mark.parametrize("given", ["HS01-G1", "hs01-g1", " Hs01-G1 "])
async def test_locate_by_grid_code_ignores_case(tree: OrgTree, given: str) -> None:
    assert tree.locate(given, None, None, None) == Placement(grid="HS01-G1", community="HS01", street="HS", how="grid")


async def test_locate_by_an_unknown_grid_falls_back_to_coordinates(tree: OrgTree) -> None:
    g = GRIDS["ST01-G2"]
    placed = tree.locate("NO-SUCH-GRID", g["lat"], g["lon"], None)
    assert (placed.grid, placed.how) == (g["code"], "coordinates")
    # a community code is not a grid
    assert tree.locate("HS01", None, None, None) == Placement()


async def test_locate_by_the_coordinates_of_every_grid_centre(tree: OrgTree) -> None:
    for code, grid in GRIDS.items():
        placed = tree.locate(None, grid["lat"], grid["lon"], None)
        assert placed.grid == code
        assert placed.how == "coordinates"
        assert placed.community == grid["parent"]
        assert placed.street == tree.units[grid["parent"]].parent


async def test_locate_near_a_grid_centre_picks_the_nearest_grid(tree: OrgTree) -> None:
    g = GRIDS["HS01-G1"]
    placed = tree.locate(None, g["lat"] + 0.0005, g["lon"] - 0.0005, None)  # about 70 m away
    assert placed.grid == "HS01-G1"


async def test_locate_by_address_keyword_of_every_grid(tree: OrgTree) -> None:
    for code, grid in GRIDS.items():
        for keyword in grid["address_keywords"]:
            placed = tree.locate(None, None, None, f"江山市{keyword}东侧约50米")
            assert (placed.grid, placed.how) == (code, "address"), keyword
            assert placed.community == grid["parent"]


async def test_locate_by_community_or_street_name_in_the_address(tree: OrgTree) -> None:
    assert tree.locate(None, None, None, "城北社区某处") == Placement(community="HS01", street="HS", how="address")
    assert tree.locate(None, None, None, "双塔街道某处") == Placement(street="ST", how="address")


async def test_locate_far_away_gives_an_empty_placement(tree: OrgTree) -> None:
    assert tree.locate(None, 39.9042, 116.4074, None) == Placement()  # Beijing
    assert tree.locate(None, 39.9042, 116.4074, "北京市东城区") == Placement()
    assert tree.locate(None, None, None, None) == Placement()
    assert tree.locate("", None, None, "") == Placement()
    nowhere = tree.locate(None, 0.0, 0.0, None)
    assert (nowhere.grid, nowhere.community, nowhere.street) == (None, None, None)
    assert nowhere.how == "unknown"


async def test_coordinates_win_over_the_address(tree: OrgTree) -> None:
    g1, g2 = GRIDS["HS01-G1"], GRIDS["HS01-G2"]
    placed = tree.locate(None, g1["lat"], g1["lon"], g2["address_keywords"][0])
    assert (placed.grid, placed.how) == ("HS01-G1", "coordinates")


# ------------------------------------------------------------------ users and passwords


def demo_user(role: str) -> str:
    return next(u["username"] for u in DEMO["users"] if u["role"] == role)


async def test_authenticate_accepts_the_demo_password(any_db: Database) -> None:
    await load_organisation(any_db)
    username = demo_user("grid_worker")
    user = await authenticate(any_db, username, DEMO_PASSWORD)
    assert DEMO_PASSWORD == "demo12345"
    assert user is not None
    assert user.username == username
    assert user.password_hash != DEMO_PASSWORD  # stored hashed
    assert user.password_hash.startswith("$argon2")


async def test_authenticate_admin_uses_the_admin_password(any_db: Database) -> None:
    await load_organisation(any_db)
    admin = demo_user("admin")
    assert await authenticate(any_db, admin, DEMO_ADMIN_PASSWORD) is not None
    assert await authenticate(any_db, admin, DEMO_PASSWORD) is None


async def test_authenticate_rejects_a_wrong_password_and_an_unknown_user(any_db: Database) -> None:
    await load_organisation(any_db)
    username = demo_user("grid_worker")
    assert await authenticate(any_db, username, "demo12346") is None
    assert await authenticate(any_db, username, "") is None
    assert await authenticate(any_db, "nobody-here", DEMO_PASSWORD) is None


async def test_authenticate_rejects_an_inactive_user(any_db: Database) -> None:
    await load_organisation(any_db)
    username = demo_user("street_staff")
    async with any_db.session() as session:
        user = await session.get(models.User, username)
        assert user is not None
        user.active = False
        session.add(user)
        await session.commit()
    assert await authenticate(any_db, username, DEMO_PASSWORD) is None


async def test_users_with_password_finds_the_demo_users(any_db: Database) -> None:
    await load_organisation(any_db)
    # Each user costs an argon2 verification (~0.1 s): keep a handful of active users.
    grid_worker, cadre, admin, changed = (
        demo_user("grid_worker"),
        demo_user("dispatched_cadre"),
        demo_user("admin"),
        demo_user("community_staff"),
    )
    keep = {grid_worker, cadre, admin, changed}
    async with any_db.session() as session:
        for user in (await session.exec(select(models.User))).all():
            if user.username not in keep:
                user.active = False
            if user.username == changed:
                user.password_hash = hash_password("a-real-secret-0")
            session.add(user)
        await session.commit()

    found = await users_with_password(any_db, (DEMO_PASSWORD, DEMO_ADMIN_PASSWORD))
    assert sorted(found) == sorted([grid_worker, cadre, admin])
    assert sorted(await users_with_password(any_db, (DEMO_PASSWORD,))) == sorted([grid_worker, cadre])
    assert await users_with_password(any_db, ("not-a-demo-password",)) == []
