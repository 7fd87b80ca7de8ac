"""Database engine and sessions (async SQLAlchemy; SQLite via aiosqlite, PostgreSQL via asyncpg).

Writes that must not be lost halfway (the projection, the outbox) go through :meth:`Database.write`:
once it has its connection, the work runs to its commit or rollback and the connection goes back to
the pool even when the caller is cancelled (a Temporal activity past its timeout); the cancellation
is raised afterwards. Cancelling SQLAlchemy in the middle of a statement instead makes it discard
the connection (it cannot know what state the driver is in): under overload every cancelled
projection cost a connection, opened again at once, and SQLite keeps the files of a connection
closed while another holds a lock open until no lock is held; the worker's descriptors on the store
grew without bound (issue 9, finding 12; measured in ``bench/overload_bench.py``).

On SQLite there is one writer at a time anyway: :meth:`Database.write` queues this process's
writers on an asyncio lock (fair, and cancellable while waiting, before any connection is taken)
and begins with ``BEGIN IMMEDIATE``, so a write never waits for the file lock inside a driver thread
that nobody can interrupt, and its reads see what it then writes (the projection's version check).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models  # noqa: F401  (registers the tables)

if TYPE_CHECKING:
    from store.schema import SchemaChange

T = TypeVar("T")
P = ParamSpec("P")

#: Seconds a SQLite connection waits for another process's write lock (the web's audit rows, the
#: CLI) before "database is locked". It must stay below the projection's start-to-close timeout
#: (``workflows.event_lifecycle.PROJECT_TIMEOUT``), so that a wait ends in an error the retry handles rather
#: than in a cancellation (tests/test_overload.py checks the two).
SQLITE_BUSY_TIMEOUT = 30.0
#: SQLAlchemy's default pool: 5 connections kept, 10 more opened when needed and closed after use.
DEFAULT_POOL = (5, 10)


async def run_to_completion(coro: Awaitable[T]) -> T:
    """Await ``coro`` in a task of its own; if the caller is cancelled meanwhile, let it finish first.

    The cancellation is re-raised once ``coro`` is done, so the caller never returns before the
    work it started has committed or rolled back and released its connection.
    """
    task = asyncio.ensure_future(coro)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


class Database:
    """One engine and its session factory.

    ``connections``: a fixed pool of that many connections, kept open and never exceeded (no
    overflow), for a process whose concurrency is matched to it (the worker: ``worker.store_limits``).
    Without it, SQLAlchemy's default pool.
    """

    def __init__(self, url: str, *, connections: int | None = None, **engine_args: Any) -> None:
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine_args.setdefault("connect_args", {"timeout": SQLITE_BUSY_TIMEOUT})
        if connections is not None:
            engine_args.update(pool_size=connections, max_overflow=0)
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url, **engine_args)
        pool_size = engine_args.get("pool_size", DEFAULT_POOL[0])
        #: How many connections the pool can hand out at once.
        self.connections: int = pool_size + engine_args.get("max_overflow", DEFAULT_POOL[1])
        self._writers = asyncio.Lock()
        if self.is_sqlite:
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

    async def write(self, work: Callable[Concatenate[Database, P], Awaitable[T]], *args: P.args,
                    **kwargs: P.kwargs) -> T:
        """Run ``work(self, *args, **kwargs)``, a write in :meth:`transaction`, to its end even if the
        caller is cancelled meanwhile (the cancellation is raised afterwards).

        On SQLite the writers of this process take turns: waiting for one's turn is cancellable and
        holds no connection.
        """
        if not self.is_sqlite:
            return await run_to_completion(work(self, *args, **kwargs))
        async with self._writers:
            return await run_to_completion(work(self, *args, **kwargs))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session for a write; commit explicitly. On SQLite it begins with ``BEGIN IMMEDIATE``
        (the write lock at once: its reads see what it then writes, and it waits for the lock
        before doing anything rather than failing halfway)."""
        async with self._sessions() as session:
            if self.is_sqlite:
                conn = await session.connection()
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield session

    def checked_out(self) -> int:
        """Connections handed out by the pool right now (0 when the process is idle)."""
        checkedout = getattr(self.engine.pool, "checkedout", None)
        return int(checkedout()) if callable(checkedout) else 0

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
