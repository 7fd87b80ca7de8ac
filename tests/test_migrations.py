"""Schema migrations (store/migrations, store/schema.py) on SQLite and, when configured, PostgreSQL.

``test_upgrade_from_nothing_matches_the_models`` is the guard for model changes: a change to
store/models.py without a revision in store/migrations/versions makes its diff non-empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, func, select
from typer.testing import CliRunner

from store import models
from store.db import Database
from store.inbox_queries import InboxQuery, inbox_page
from store.schema import BASELINE, SchemaChange, current_revision, head_revision, schema_diff
from tests.conftest import drop_db, make_db, store_urls

DUE = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
CREATED = datetime(2026, 3, 3, 18, 0, tzinfo=UTC)


@pytest.fixture(params=store_urls())
async def bare_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A store without any table, once per configured back end."""
    db = await make_db(request.param, tmp_path, create=False)
    yield db
    await drop_db(db)


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


async def test_upgrade_from_nothing_matches_the_models(bare_db: Database) -> None:
    change = await bare_db.upgrade()
    assert change == SchemaChange(before=None, stamped=None, after=head_revision())
    # Every model change needs a revision: otherwise this lists what the migrations miss.
    assert await schema_diff(bare_db) == []
    schema = getattr(bare_db, "schema", None)
    if schema:  # PostgreSQL: everything, the version table too, in the connection's schema
        async with bare_db.engine.connect() as conn:
            where = (await conn.execute(sa.text(
                "SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'"
                " AND table_schema = current_schema()"
            ))).scalars().all()
        assert where == [schema]


async def test_the_diff_sees_a_missing_revision(bare_db: Database) -> None:
    # The guard above is not vacuous: the baseline alone lacks 067d6d9's task columns and indexes.
    await bare_db.upgrade(BASELINE)
    diff = await schema_diff(bare_db)
    added = {d[3].name for d in diff if d[0] == "add_column"}  # (op, schema, table, column)
    assert added >= {"active", "due_key", "priority", "category", "tier", "source"}
    assert {d[1].name for d in diff if d[0] == "add_index"} >= {"ix_task_inbox_due", "ix_task_inbox_priority"}
    assert {d[1].name for d in diff if d[0] == "remove_index"} >= {"ix_task_unit_status_due"}


# Tables as they were at the baseline, for writing old-style rows.
_old = sa.MetaData()
OLD_EVENT = sa.Table(
    "event", _old, *(sa.Column(n, sa.String()) for n in (
        "event_id", "receipt_code", "source", "category", "category_name", "description", "reporter_name",
        "reporter_phone", "state", "stage", "tier", "unit", "rating_comment")),
    *(sa.Column(n, sa.Integer()) for n in ("version", "priority", "rework_count", "returned_count", "escalated_count")),
    sa.Column("paused", sa.Boolean()),
    sa.Column("created_at", sa.DateTime(timezone=True)), sa.Column("updated_at", sa.DateTime(timezone=True)),
)
OLD_TASK = sa.Table(
    "task", _old, *(sa.Column(n, sa.String()) for n in ("task_id", "event_id", "kind", "unit", "status", "reason")),
    sa.Column("version", sa.Integer()), sa.Column("extension_hours", sa.Integer()), sa.Column("photos", sa.JSON()),
    sa.Column("due_at", sa.DateTime(timezone=True)), sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
)


def old_event(event_id: str, **values: Any) -> dict[str, Any]:
    row = {
        "event_id": event_id, "receipt_code": event_id[-6:], "source": "portal", "category": "SR-01",
        "category_name": "", "description": "垃圾", "reporter_name": "", "reporter_phone": "", "state": "handling",
        "stage": "handling", "tier": "grid", "unit": "G-1", "rating_comment": "", "version": 1, "priority": 2,
        "rework_count": 0, "returned_count": 0, "escalated_count": 0, "paused": False,
        "created_at": CREATED, "updated_at": CREATED,
    }
    return row | values


def old_task(task_id: str, event_id: str, status: str, due_at: datetime | None) -> dict[str, Any]:
    return {
        "task_id": task_id, "event_id": event_id, "kind": "handle", "unit": "G-1", "status": status, "reason": "",
        "version": 1, "extension_hours": 0, "photos": [], "due_at": due_at, "created_at": CREATED,
        "completed_at": CREATED + timedelta(hours=1) if status == "done" else None,
    }


async def test_old_rows_are_backfilled_and_found_by_the_inbox(bare_db: Database) -> None:
    db = bare_db
    assert (await db.upgrade(BASELINE)).after == BASELINE
    async with db.engine.begin() as conn:
        await conn.execute(OLD_EVENT.insert(), [
            old_event("EV-OLD-000001"),
            old_event("EV-OLD-000002", source="hotline", category="SR-02", tier="community", priority=1),
        ])
        await conn.execute(OLD_TASK.insert(), [
            old_task("EV-OLD-000001/handle/1", "EV-OLD-000001", "open", DUE),
            old_task("EV-OLD-000001/done/1", "EV-OLD-000001", "done", DUE),
            old_task("EV-OLD-000002/handle/1", "EV-OLD-000002", "claimed", None),
        ])

    change = await db.upgrade()
    assert change == SchemaChange(before=BASELINE, stamped=None, after=head_revision())
    assert await schema_diff(db) == []

    async with db.session() as session:
        tasks = {t.task_id: t for t in (await session.exec(select(models.Task))).all()}
    due, done, nodue = (tasks[f"EV-OLD-00000{n}/{k}/1"] for n, k in ((1, "handle"), (1, "done"), (2, "handle")))
    assert (due.active, done.active, nodue.active) == (True, False, True)
    assert due.due_key == DUE and done.due_key == DUE and nodue.due_key == models.NO_DUE
    assert (due.priority, due.category, due.tier, due.source) == (2, "SR-01", "grid", "portal")
    assert (nodue.priority, nodue.category, nodue.tier, nodue.source) == (1, "SR-02", "community", "hotline")

    # A task the app writes now stores NO_DUE exactly as the backfill did: equal keys, one order.
    async with db.session() as session:
        session.add(models.Task(
            task_id="EV-OLD-000002/verify/1", event_id="EV-OLD-000002", kind="verify", unit="G-1", status="open",
            created_at=CREATED, **models.inbox_fields("open", None, old_event_fields()),
        ))
        await session.commit()
        same = (await session.exec(
            select(func.count()).select_from(models.Task).where(col(models.Task.due_key) == models.NO_DUE)
        )).one()
    assert same == 2

    page = await inbox_page(db, "G-1", "someone", InboxQuery(), now=DUE - timedelta(days=1))
    assert [t.task_id for t, _ in page.rows] == [
        "EV-OLD-000001/handle/1", "EV-OLD-000002/handle/1", "EV-OLD-000002/verify/1",
    ]
    overdue = await inbox_page(db, "G-1", "someone", InboxQuery(view="overdue"), now=DUE + timedelta(hours=1))
    assert [t.task_id for t, _ in overdue.rows] == ["EV-OLD-000001/handle/1"]
    by_category = await inbox_page(db, "G-1", "someone", InboxQuery(category="SR-01"), now=DUE)
    assert [t.task_id for t, _ in by_category.rows] == ["EV-OLD-000001/handle/1"]


def old_event_fields() -> models.Event:
    return models.Event(
        event_id="x", receipt_code="x", source="hotline", category="SR-02", description="", state="s", stage="s",
        tier="community", priority=1, created_at=CREATED, updated_at=CREATED,
    )


async def test_a_database_made_by_an_old_create_all_is_stamped_and_upgraded(bare_db: Database) -> None:
    db = bare_db
    await db.upgrade(BASELINE)
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("DROP TABLE alembic_version"))
    assert await current_revision(db) is None

    change = await db.upgrade()
    assert change == SchemaChange(before=None, stamped=BASELINE, after=head_revision())
    assert await schema_diff(db) == []


async def test_a_database_made_by_this_create_all_is_stamped_at_head(tmp_path: Path) -> None:
    db = await make_db("sqlite", tmp_path)  # what the test fixtures and older `make run`s at head leave
    try:
        change = await db.upgrade()
        assert change == SchemaChange(before=None, stamped=head_revision(), after=head_revision())
        assert await schema_diff(db) == []
    finally:
        await drop_db(db)


async def test_upgrading_twice_changes_nothing(bare_db: Database) -> None:
    db = bare_db
    await db.upgrade()
    tables = await table_names(db)
    change = await db.upgrade()
    assert change == SchemaChange(before=head_revision(), stamped=None, after=head_revision())
    assert await table_names(db) == tables
    assert await schema_diff(db) == []


async def test_a_failed_revision_changes_nothing(tmp_path: Path) -> None:
    # One transaction, also on SQLite (where DDL would otherwise run outside it): a backfill that
    # fails leaves the baseline schema and version as they were.
    db = await make_db("sqlite", tmp_path, create=False)
    try:
        await db.upgrade(BASELINE)
        async with db.engine.begin() as conn:
            await conn.execute(OLD_EVENT.insert(), [old_event("EV-OLD-000001")])
            await conn.execute(OLD_TASK.insert(), [old_task("EV-OLD-000001/handle/1", "EV-OLD-000001", "open", DUE)])
            # Something the backfill cannot satisfy: a NOT NULL category the event cannot give.
            await conn.execute(sa.text(
                "CREATE TRIGGER no_backfill BEFORE UPDATE ON task BEGIN SELECT RAISE(ABORT, 'refused'); END"
            ))
        with pytest.raises(sa.exc.DatabaseError, match="refused"):
            await db.upgrade()
        assert await current_revision(db) == BASELINE
        async with db.engine.connect() as conn:
            columns = await conn.run_sync(lambda c: {x["name"] for x in sa.inspect(c).get_columns("task")})
        assert "due_key" not in columns
    finally:
        await drop_db(db)


def test_cli_db_upgrade_prints_the_revisions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wulian.cli import app
    from wulian.settings import get_settings

    monkeypatch.setenv("WULIAN_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()
    try:
        first = CliRunner().invoke(app, ["db", "upgrade"])
        assert first.exit_code == 0, first.output
        assert f"before: none; after: {head_revision()}" in first.output
        second = CliRunner().invoke(app, ["db", "upgrade"])
        assert second.exit_code == 0, second.output
        assert f"before: {head_revision()}; after: {head_revision()}" in second.output
    finally:
        get_settings.cache_clear()


OLD_REPORTPHOTO = sa.Table("reportphoto", _old, sa.Column("id", sa.Integer(), primary_key=True),
                           sa.Column("event_id", sa.String()), sa.Column("photo_id", sa.String()))


async def test_photos_stored_before_0010_are_recorded_with_their_event(bare_db: Database) -> None:
    """Revision 0010 records the photos that report photos and completions refer to, attached to
    their event (and task), so they are still served within the event's scope."""
    db = bare_db
    report_photo, task_photo, shared = f"{'a' * 32}.jpg", f"{'b' * 32}.png", f"{'c' * 32}.webp"
    await db.upgrade(BASELINE)
    async with db.engine.begin() as conn:
        await conn.execute(OLD_EVENT.insert(), [old_event("EV-OLD-000001"), old_event("EV-OLD-000002")])
        done = old_task("EV-OLD-000001/handle/1", "EV-OLD-000001", "done", DUE)
        await conn.execute(OLD_TASK.insert(), [
            done | {"photos": [task_photo, shared, "../../../etc/passwd"]},
            old_task("EV-OLD-000002/handle/1", "EV-OLD-000002", "open", DUE),
        ])
        await conn.execute(OLD_REPORTPHOTO.insert(), [
            {"event_id": "EV-OLD-000002", "photo_id": report_photo},
            {"event_id": "EV-OLD-000002", "photo_id": shared},
        ])
    await db.upgrade()
    assert await schema_diff(db) == []
    async with db.session() as session:
        rows = {p.photo_id: p for p in (await session.exec(select(models.Photo))).all()}
    assert set(rows) == {report_photo, task_photo, shared}  # never the path
    assert (rows[report_photo].event_id, rows[report_photo].task_id) == ("EV-OLD-000002", None)
    assert (rows[task_photo].event_id, rows[task_photo].task_id) == ("EV-OLD-000001", "EV-OLD-000001/handle/1")
    assert rows[shared].event_id == "EV-OLD-000002"  # the first reference (report photos come first)
    assert rows[task_photo].media_type == "image/png" and rows[task_photo].uploaded_by is None
    assert rows[task_photo].attached_at is not None


async def test_users_with_login_sessions_upgrade_through_0016(bare_db: Database) -> None:
    """Revision 0016 adds ``user.party_member`` while users are logged in (their sessions refer to
    the user table): the users and their sessions stay, and nobody becomes a party member."""
    db = bare_db
    await db.upgrade("0015")
    async with db.engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO unit (code, kind, tier, name_zh, name_en, address_keywords, stationed)"
            " VALUES ('G-1', 'grid', 'grid', '网格', 'Grid', '[]', :no)"), {"no": False})
        await conn.execute(sa.text(
            "INSERT INTO \"user\" (username, display_name, unit, role, password_hash, active)"
            " VALUES ('wang', '王', 'G-1', 'grid_worker', 'x', :yes)"), {"yes": True})
        await conn.execute(sa.text(
            "INSERT INTO loginsession (jti, username, issued_at, expires_at, via)"
            " VALUES ('j1', 'wang', :at, :until, 'web')"), {"at": CREATED, "until": DUE})
    change = await db.upgrade()
    assert change.after == head_revision()
    assert await schema_diff(db) == []
    async with db.session() as session:
        user = await session.get(models.User, "wang")
        login = await session.get(models.LoginSession, "j1")
    assert user is not None and user.party_member is False and user.display_name == "王"
    assert login is not None and login.username == "wang"


def test_the_revisions_form_one_chain() -> None:
    """Branches merged from parallel work must be re-chained: one head, each revision after the one before."""
    from alembic.script import ScriptDirectory

    from store.schema import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    revisions = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in revisions] == [f"{n:04d}" for n in range(1, len(revisions) + 1)]
