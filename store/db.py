"""Database engine and sessions (async SQLAlchemy; SQLite via aiosqlite, PostgreSQL via asyncpg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models  # noqa: F401  (registers the tables)

if TYPE_CHECKING:
    from store.schema import SchemaChange


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **engine_args: object) -> None:
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine_args.setdefault("connect_args", {"timeout": 30})
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **engine_args)  # type: ignore[arg-type]
        if url.startswith("sqlite"):
            # WAL lets the web read while the worker writes; foreign keys are off by default in SQLite.
            @event.listens_for(self.engine.sync_engine, "connect")
            def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    async def create_all(self) -> None:
        """Create missing tables, never changing existing ones (tests; programs use :meth:`upgrade`)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def upgrade(self, target: str = "head") -> SchemaChange:
        """Bring the schema to ``target`` with the migrations (``store.schema.upgrade``)."""
        from store.schema import upgrade

        return await upgrade(self, target)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; commit explicitly."""
        async with self._sessions() as session:
            yield session

    async def ping(self) -> bool:
        """Whether the database answers."""
        from sqlalchemy import text

        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health check: any failure means unhealthy
            return False

    async def dispose(self) -> None:
        """Close all connections."""
        await self.engine.dispose()
