"""A whole platform for end-to-end tests: store with the demo organisation, a worker on its own
task queue against the dev server, and the web app with a test client."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.delivery import Adapter
from store.db import Database
from store.seed import load_organisation
from web.app import create_app
from web.context import AppContext
from worker import build_worker
from wulian.settings import Settings


@dataclass
class Platform:
    """Handles on a running test platform."""

    db: Database
    client: Client
    task_queue: str
    http: httpx.AsyncClient
    settings: Settings
    worker: Worker | None = None

    async def login(self, username: str, password: str = "demo12345") -> dict[str, str]:  # noqa: S107
        """Bearer headers for an API user."""
        response = await self.http.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    async def report(self, **overrides: Any) -> dict[str, Any]:
        """Report an event through the API; returns the 201 body."""
        body: dict[str, Any] = {
            "category": "SR-01",
            "description": "小区门口垃圾堆积",
            "location": {"grid": "HS01-G1"},
            "reporter": {"name": "张三", "phone": "13800000000"},
            "source": "portal",
        }
        body.update(overrides)
        response = await self.http.post("/api/events", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def start_worker(self, delivery: Adapter | None = None) -> Worker:
        """A worker for this platform's task queue (not yet running), delivering notices through
        ``delivery`` (default: the logging stand-in)."""
        self.worker = build_worker(self.client, self.db, self.task_queue, delivery, settings=self.settings)
        return self.worker


@asynccontextmanager
async def running_platform(client: Client, tmp_path: Path, *, with_worker: bool = True) -> AsyncIterator[Platform]:
    """Start a platform; the worker runs for the duration unless ``with_worker`` is False."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'platform.db'}")
    await db.create_all()
    await load_organisation(db)
    task_queue = f"wulian-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        data_dir=tmp_path, temporal_task_queue=task_queue, secret_key="test-secret-" + uuid.uuid4().hex,
        intake_wait_seconds=15,
    )
    ctx = AppContext(settings=settings, db=db)
    ctx.set_client(client)
    app = create_app(settings, ctx)
    # httpx's ASGI transport runs the app in this event loop, next to the worker (Litestar's
    # AsyncTestClient runs it through a blocking portal, which would starve the worker).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        platform = Platform(db=db, client=client, task_queue=task_queue, http=http, settings=settings)
        if with_worker:
            async with platform.start_worker():
                yield platform
        else:
            yield platform
    await db.dispose()


def csrf(html: str) -> str:
    """The CSRF token of the first form in ``html`` (what a browser would post back)."""
    match = re.search(r'name="_csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
