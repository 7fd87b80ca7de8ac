"""Schema migrations of the store (Alembic, revisions in ``store/migrations/versions``).

:func:`upgrade` brings any database to the head revision:

- an empty database is built from nothing by the revisions;
- a database with the store's tables but no ``alembic_version`` was made by ``create_all`` (every
  checkout before migrations, and the test fixtures): if it already matches the models it is
  stamped at head, otherwise it is taken for the baseline (0001, the schema before migrations) and
  stamped there, then upgraded;
- otherwise the pending revisions run.

Everything runs in one transaction on one connection (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an
advisory lock per schema), so a failed revision changes nothing and processes starting together
(launcher, worker, web) migrate once, one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from store import models  # noqa: F401  (registers the tables)

if TYPE_CHECKING:
    from store.db import Database

MIGRATIONS = Path(__file__).parent / "migrations"
#: The schema as it was before migrations (commit 20e37f0); un-versioned databases start here.
BASELINE = "0001"
#: Tables every version of the store has had; any of them means "not an empty database".
_STORE_TABLES = {"unit", "user", "event", "task"}


@dataclass(frozen=True)
class SchemaChange:
    """What :func:`upgrade` did: the revision before (``None``: none), a stamp if any, the revision after."""

    before: str | None
    stamped: str | None
    after: str | None

    def describe(self) -> str:
        """One line for people (the CLI and the launcher)."""
        before = self.before or "none"
        if self.stamped:
            before += f" (tables without a version: stamped {self.stamped})"
        return f"schema revision before: {before}; after: {self.after or 'none'}"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the migrations of this checkout (no alembic.ini)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest revision of this checkout."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision_sync(conn: Connection) -> str | None:
    """The revision recorded in the database (``None`` without a version table)."""
    return MigrationContext.configure(conn).get_current_revision()


def schema_diff_sync(conn: Connection) -> list[Any]:
    """The differences between the database and the models (Alembic autogenerate's view)."""
    ctx = MigrationContext.configure(conn, opts={"compare_type": True, "target_metadata": SQLModel.metadata})
    return list(compare_metadata(ctx, SQLModel.metadata))


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        # pysqlite begins transactions lazily and runs DDL outside them: take the write lock now so
        # the whole upgrade is one transaction and a second process waits for the first.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('wulian.schema:' || current_schema()))"))


def upgrade_sync(conn: Connection, target: str = "head") -> SchemaChange:
    """Bring the database on ``conn`` (in a transaction the caller commits) to ``target``."""
    _lock(conn)
    before = current_revision_sync(conn)
    cfg = alembic_config(conn)
    stamped = None
    if before is None and _STORE_TABLES & set(inspect(conn).get_table_names()):
        stamped = head_revision() if not schema_diff_sync(conn) else BASELINE
        command.stamp(cfg, stamped)
    command.upgrade(cfg, target)
    after = current_revision_sync(conn)
    if before is not None and after != before and conn.dialect.name == "sqlite":
        # Revisions may rebuild tables (SQLite batch mode), leaving the planner's statistics stale
        # or gone; without them SQLite picked a whole-unit range over a unique lookup and the
        # inbox's receipt search went from 3 to 70 ms over a million tasks. (PostgreSQL: below.)
        conn.exec_driver_sql("ANALYZE")
    return SchemaChange(before=before, stamped=stamped, after=after)


async def upgrade(db: Database, target: str = "head") -> SchemaChange:
    """Bring ``db`` to ``target`` (default: the head revision); see the module docstring."""
    async with db.engine.begin() as conn:
        change = await conn.run_sync(upgrade_sync, target)
    if change.before is not None and change.after != change.before and db.engine.dialect.name == "postgresql":
        # A revision that rewrites rows (a backfill) leaves a dead copy of each and stale statistics:
        # over a million tasks the inbox's widest search went from 56 to 250 ms until a vacuum.
        # VACUUM cannot run in a transaction, and it does not block readers or writers.
        async with db.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            tables = (await conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))).scalars().all()
            for table in tables:  # this store's schema only, not every schema of the database
                await conn.exec_driver_sql(f'VACUUM ANALYZE "{table}"')
    return change


async def current_revision(db: Database) -> str | None:
    """The revision recorded in ``db``."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(current_revision_sync)


async def schema_diff(db: Database) -> list[Any]:
    """The differences between ``db`` and the models; empty when the migrations are complete."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(schema_diff_sync)


def new_revision_sync(conn: Connection, message: str) -> Path:
    """Write the next revision (``NNNN_slug.py``) with what the models have and the migrations lack.

    ``conn`` must be a database at head; autogenerate compares it with the models. Review the file:
    autogenerate cannot know about renames or data to backfill.
    """
    head = head_revision()
    script = command.revision(
        alembic_config(conn), message=message, autogenerate=True, rev_id=f"{int(head) + 1:04d}", head=head,
    )
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


async def new_revision(message: str, scratch: Path) -> Path:
    """Autogenerate the next revision against a scratch SQLite store in ``scratch`` brought to head."""
    from store.db import Database

    db = Database(f"sqlite+aiosqlite:///{scratch / 'scratch.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(upgrade_sync)
            return await conn.run_sync(new_revision_sync, message)
    finally:
        await db.dispose()
