"""The web app over a store with the demo organisation, without Temporal: for tests of what the web
answers before any workflow is involved (sessions, refused input, exports, reassignment checks).

A test module makes its fixtures from these (two lines each)::

    @pytest.fixture
    async def app_ctx(org_db: Database, tmp_path: Path) -> AppContext:
        return webapp.context(org_db, tmp_path)

    @pytest.fixture
    def browser(app_ctx: AppContext) -> webapp.Browser:
        return webapp.browsers(app_ctx)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx

from store.db import Database
from tests.platform import csrf
from web.app import create_app
from web.auth import SESSION_COOKIE
from web.context import AppContext
from wulian.settings import Settings

Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


def context(db: Database, tmp_path: Path) -> AppContext:
    """The app's context over ``db`` (no Temporal client: commands that reach a workflow fail)."""
    return AppContext(settings=Settings(data_dir=tmp_path, secret_key="test-secret-webapp-0123456789abcdef0"), db=db)


def browsers(ctx: AppContext) -> Browser:
    """A factory of browsers on one app: ``async with browser() as http`` (cookies of its own)."""
    app = create_app(ctx.settings, ctx)

    @asynccontextmanager
    async def open_browser() -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            yield http

    return open_browser


async def api_login(http: httpx.AsyncClient, username: str, password: str = "demo12345") -> dict[str, str]:  # noqa: S107
    """Bearer headers for ``username``."""
    r = await http.post("/api/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


async def page_login(http: httpx.AsyncClient, username: str, password: str = "demo12345") -> str:  # noqa: S107
    """Log a browser in through the login form; returns its session cookie."""
    html = (await http.get("/login")).text
    r = await http.post("/login", data={"username": username, "password": password, "_csrf_token": csrf(html)})
    assert r.status_code == 303, r.text
    cookie = http.cookies.get(SESSION_COOKIE)
    assert cookie
    return cookie
