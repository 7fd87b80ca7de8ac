"""Every cell of the authorization matrix (tests/authz_matrix.py), and every route has a row."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.reports import publish
from store import inbox_queries, models, queries
from store.inbox_queries import InboxQuery
from tests.authz_matrix import EXEMPT, EXEMPT_PREFIXES, MATRIX, PNG, ROLES, USERS, Row
from tests.platform import Platform, csrf, running_platform
from workflows.period_report import job_of, parse_period


@dataclass
class World:
    """The platform, one client per role, and the ids the matrix's URLs name."""

    platform: Platform
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # the API's bearer token of each role
    csrf: dict[str, str] = field(default_factory=dict)  # the page forms' CSRF token of each role
    ids: dict[str, str] = field(default_factory=dict)
    saved: tuple[Any, Any, Any] | None = None  # the shared session of a role while a cell uses a fresh one

    async def login(self, role: str) -> None:
        """Log ``role`` in: a session for the pages (and its CSRF token) and a token for the API."""
        http = _client(self.platform)
        self.clients[role] = http
        self.csrf[role] = csrf((await http.get("/login")).text)
        if role == "anon":
            return
        password = "admin12345" if role == "admin" else "demo12345"  # noqa: S105
        r = await http.post("/login", data={"username": USERS[role], "password": password,
                                            "_csrf_token": self.csrf[role]})
        assert r.status_code == 303, (role, r.text)
        r = await http.post("/api/auth/login", json={"username": USERS[role], "password": password})
        self.tokens[role] = r.json()["token"]

    async def fresh_login(self, role: str) -> None:
        """A new session and token for ``role`` for this cell only (a logging-out cell ends them, not
        the shared ones): the shared ones come back after the cell."""
        self.saved = (self.clients.get(role), self.tokens.get(role), self.csrf.get(role))
        await self.login(role)

    async def new_filter(self, role: str) -> None:
        """A fresh saved filter of the grid worker (a deleting cell consumes it)."""
        row = await inbox_queries.save_filter(self.platform.db, USERS["grid"], "matrix", InboxQuery(view="mine"))
        self.ids["filter"] = str(row.id)


def _client(platform: Platform) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=platform.http._transport.app, client=("10.77.0.1", 40000))  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _until(check: Any, what: str) -> Any:
    for _ in range(100):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def _tasks(p: Platform, event_id: str) -> list[Any]:
    async def found() -> list[Any] | None:
        return await queries.event_tasks(p.db, event_id) or None
    return await _until(found, f"the tasks of {event_id}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
async def world(dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with running_platform(dev_env.client, Path(tmp_path_factory.mktemp("authz"))) as p:
        p.settings.track_requests_per_window = 10_000  # the matrix calls /track often from one address
        w = World(p)
        for role in ROLES:
            await w.login(role)
        # The event, reported through the page with a photo; its handling task claimed by the grid worker.
        resident = _client(p)
        html = (await resident.get("/report")).text
        r = await resident.post("/report", data={"category": "SR-01", "description": "矩阵:门口垃圾",
                                                 "grid": "HS01-G1", "_csrf_token": csrf(html)},
                                files={"photos": ("bin.png", PNG, "image/png")})
        assert r.status_code == 200, r.text
        receipt = re.search(r'id="receipt">([0-9A-Z]{10})<', r.text).group(1)  # type: ignore[union-attr]

        async def reported() -> Any:
            return await queries.event_by_receipt(p.db, receipt)
        event = await _until(reported, "the reported event")
        task = (await _tasks(p, event.event_id))[0]
        grid = {"Authorization": f"Bearer {w.tokens['grid']}"}
        assert (await p.http.post(f"/api/tasks/{task.task_id}/claim", headers=grid)).status_code == 200
        photo = (await queries.report_photos(p.db, event.event_id))[0]
        open_event = (await p.http.post("/api/events", json={
            "category": "SR-01", "description": "矩阵:未签收", "location": {"grid": "HS01-G1"}})).json()
        triage_event = (await p.http.post("/api/events", json={
            "description": "矩阵:无法分拨", "location": {"grid": "HS01-G1"}})).json()
        w.ids.update(event=event.event_id, task=task.task_id, receipt=receipt, photo=photo,
                     open_event=open_event["event_id"], open_task=(await _tasks(p, open_event["event_id"]))[0].task_id,
                     triage_event=triage_event["event_id"],
                     triage_task=(await _tasks(p, triage_event["event_id"]))[0].task_id)
        assert (await _tasks(p, triage_event["event_id"]))[0].unit == "CC-HS"
        await publish(p.db, job_of(parse_period("2026-11"), "authz-report"))
        # A proxy service a resident requested on the portal (its first task: the grid's workers').
        p.settings.process_starts_per_hour = 10_000  # the matrix posts the portal's form from one address
        form = (await resident.get("/p/new/proxy_service")).text
        r = await resident.post("/p/new/proxy_service", data={"name": "矩阵", "grid": "HS01-G1", "f_item": "PS-01",
                                                              "f_phone": "13800000000", "_csrf_token": csrf(form)})
        assert r.status_code == 303, r.text
        process, key = re.match(r"/p/([^?]+)\?key=([^&]+)", r.headers["location"]).groups()  # type: ignore[union-attr]
        w.ids.update(process=process, process_key=key)

        async def projected() -> Any:
            async with p.db.session() as session:
                return await session.get(models.ProcessInstanceRow, process)
        await _until(projected, "the proxy service")
        yield w
        await resident.aclose()


def _fill(text: str, ids: dict[str, str]) -> str:
    return text.format(**ids)


def _filled(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, ids)
    if isinstance(value, list):
        return [_filled(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, ids) for k, v in value.items()}
    return value


async def call(world: World, row: Row, role: str) -> httpx.Response:
    """Send ``row``'s request as ``role`` (the API with its bearer token, a page with its session)."""
    if row.prepare:
        await getattr(world, row.prepare)(role)
    try:
        return await _send(world, row, role)
    finally:
        if world.saved is not None:
            client, token, token_csrf = world.saved
            world.clients[role], world.tokens[role], world.csrf[role] = client, token, token_csrf
            world.saved = None


async def _send(world: World, row: Row, role: str) -> httpx.Response:
    http = world.clients[role]
    url = _fill(row.url, world.ids)
    headers = {}
    if not row.page and role != "anon":
        headers["Authorization"] = f"Bearer {world.tokens[role]}"
    if row.page:
        # The API never reads the cookie; a page never reads the bearer header.
        kwargs: dict[str, Any] = {}
        if row.method == "POST":
            kwargs["data"] = {**_filled(row.form or {}, world.ids), "_csrf_token": world.csrf[role]}
            if row.files:
                kwargs["files"] = row.files
        return await http.request(row.method, url, headers=headers, **kwargs)
    api = httpx.AsyncClient(transport=http._transport, base_url="http://testserver")  # no cookies
    async with api:
        kwargs = {}
        if row.json is not None:
            kwargs["json"] = _filled(row.json, world.ids)
        if row.files:
            kwargs["files"] = row.files
        return await api.request(row.method, url, headers=headers, **kwargs)


CELLS = [(row, role) for row in MATRIX for role in ROLES]


@pytest.mark.parametrize(("row", "role"), CELLS, ids=[f"{r.method} {r.url} as {role}" for r, role in CELLS])
async def test_cell(world: World, row: Row, role: str) -> None:
    response = await call(world, row, role)
    assert response.status_code == row.expected(role), (
        f"{row.method} {row.url} as {role} ({USERS.get(role, 'no token')}): "
        f"{response.status_code} instead of {row.expected(role)}: {response.text[:300]}")


def test_every_route_has_a_row_or_a_reason(tmp_path: Path) -> None:
    from web.app import create_app
    from wulian.settings import Settings

    app = create_app(Settings(data_dir=tmp_path, secret_key="matrix"))
    declared = {(m, r.path) for r in app.routes for m in getattr(r, "methods", ()) if m not in ("HEAD", "OPTIONS")}
    covered = {(row.method, row.route) for row in MATRIX}
    missing = sorted(route for route in declared - covered - set(EXEMPT)
                     if not route[1].startswith(EXEMPT_PREFIXES))
    assert not missing, f"routes without a row in tests/authz_matrix.py (or a reason in EXEMPT): {missing}"
    stale = sorted((covered | set(EXEMPT)) - declared)
    assert not stale, f"rows for routes the app does not have: {stale}"


def test_the_matrix_has_a_cell_per_role_and_row() -> None:
    assert len(CELLS) == len(MATRIX) * len(ROLES) and len(set(ROLES)) == 11
