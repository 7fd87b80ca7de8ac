"""Alembic environment of the store.

Migrations always run on a connection handed over by :mod:`store.schema` in
``config.attributes["connection"]`` (from ``async with engine.begin(): run_sync(...)``), so they
work for aiosqlite and asyncpg alike, inside the caller's transaction, and in the caller's schema
(PostgreSQL: the connection's ``search_path``; the version table is not schema-qualified).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from store import models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render SQLModel's column types as the plain SQLAlchemy types they store (autogenerate)."""
    if kind == "type" and isinstance(obj, AutoString):
        length = getattr(obj, "length", None)  # of the String it wraps
        return f"sa.String(length={length})" if length is not None else "sa.String()"
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through store.schema (`wulian db upgrade`), which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
