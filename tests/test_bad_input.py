"""Hostile input ends in a 400 with a reason, never in a 500: inbox dates and cursors that overflow
(SQLite and PostgreSQL), deeply nested JSON on any JSON route, NUL characters in URLs, forms and
JSON, saved-filter ids beyond the column (no Temporal)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from store import inbox_queries, models
from store.db import Database
from store.inbox_queries import InboxQueryError, parse_query
from store.seed import load_organisation
from tests import webapp
from tests.platform import csrf
from tests.webapp import Browser
from web.auth import SESSION_COOKIE
from web.context import AppContext
from web.guards import MAX_JSON_DEPTH, json_depth, json_problem


@pytest.fixture
async def app_ctx(any_db: Database, tmp_path: Path) -> AppContext:
    """The app on each configured store: several of these were 500s on PostgreSQL only."""
    await load_organisation(any_db)
    return webapp.context(any_db, tmp_path)


@pytest.fixture
def browser(app_ctx: AppContext) -> Browser:
    return webapp.browsers(app_ctx)


def cursor(*values: Any) -> str:
    """A cursor as the inbox makes them (base64 of the JSON list of sort key values)."""
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


DUE = "2026-11-28T08:00:00+00:00"
DATES = [  # (parameters, a part of the reason)
    ({"created_to": "9999-12-31"}, "created_to"),
    ({"created_from": "0001-01-01"}, "created_from"),
]
CURSORS = [
    {"sort": "priority", "cursor": cursor(10**30, DUE, "EV-1.T1")},
    {"sort": "priority", "cursor": cursor(2**63, DUE, "EV-1.T1")},  # SQLite's INTEGER is 64 bits
    {"sort": "priority", "cursor": cursor(2**31, DUE, "EV-1.T1")},  # PostgreSQL's INTEGER is 32 bits
    {"cursor": cursor("0001-01-01T00:00:00+14:00", "EV-1.T1")},  # before year 1 once in UTC
    {"cursor": cursor("9999-12-31T23:00:00-14:00", "EV-1.T1")},  # after year 9999 once in UTC
    {"view": "done", "cursor": cursor("0001-01-01T00:00:00+14:00", "EV-1.T1")},
    {"cursor": cursor(DUE, "EV-1.T1\u0000")},  # PostgreSQL: no NUL in text
    {"cursor": cursor(DUE, "\ud800")},  # a lone surrogate: no database encodes it
    {"cursor": cursor(DUE, "x" * 300)},  # longer than any task id
]


async def test_inbox_dates_out_of_range_are_refused_in_api_and_page(browser: Browser) -> None:
    async with browser() as http:
        bearer = await webapp.api_login(http, "wg_hs01_g1")
        await webapp.page_login(http, "wg_hs01_g1")
        for params, name in DATES:
            r = await http.get("/api/inbox", params=params, headers=bearer)
            assert r.status_code == 400, r.text
            assert r.json()["detail"] == f"{name}: the date must lie between 1970-01-01 and 2999-12-31"
            page = await http.get("/inbox", params=params)
            label = {"created_from": "创建自", "created_to": "创建至"}[name]  # the form's label, not the parameter
            assert page.status_code == 400 and f"{label}：日期须在 1970-01-01 到 2999-12-31 之间" in page.text
        r = await http.get("/api/inbox", params={"created_from": "2999-12-31", "created_to": "2999-12-31"},
                           headers=bearer)
        assert r.status_code == 200  # the last day allowed still works


async def test_inbox_cursors_that_overflow_are_refused_in_api_and_page(browser: Browser) -> None:
    async with browser() as http:
        bearer = await webapp.api_login(http, "wg_hs01_g1")
        http.cookies.set(SESSION_COOKIE, await webapp.page_login(http, "wg_hs01_g1"))
        for params in CURSORS:
            r = await http.get("/api/inbox", params=params, headers=bearer)
            assert r.status_code == 400, (params, r.text)
            assert r.json()["detail"] == "cursor: not a valid cursor; start again from the first page"
            page = await http.get("/inbox", params=params)
            assert page.status_code == 400 and "不是有效的翻页标记" in page.text, params


async def test_cursors_bind_on_every_store_or_are_refused(any_db: Database) -> None:
    """What overflows is refused by ``parse_query``; the extreme values that are legal bind (SQLite
    and PostgreSQL), and a cursor with an offset compares in UTC."""
    for params in CURSORS:
        with pytest.raises(InboxQueryError):
            parse_query(params)
    now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    async with any_db.session() as session:
        session.add(models.Unit(code="G", kind="grid", tier="grid", name_zh="格", name_en="G"))
        event = models.Event(event_id="E1", receipt_code="R1", source="api", category="SR-01", description="d",
                             state="dispatched", stage="handling", unit="G", created_at=now, updated_at=now)
        session.add(event)
        await session.flush()
        session.add(models.Task(task_id="E1.T1", event_id="E1", kind="handle", unit="G", status="open",
                                due_at=now, created_at=now, **models.inbox_fields("open", now, event)))
        await session.commit()
    legal = [
        {"sort": "priority", "cursor": cursor(2**31 - 1, DUE, "E1.T1")},
        {"sort": "priority", "cursor": cursor(-(2**31), DUE, "E1.T1")},
        {"cursor": cursor("0001-01-01T00:00:00+00:00", "")},
        {"cursor": cursor("9999-12-31T23:59:59.999999+00:00", "E1.T1")},
        {"view": "done", "cursor": cursor("9999-12-31T00:00:00+00:00", "E1.T1")},
        {"created_from": "1970-01-01", "created_to": "2999-12-31"},
    ]
    for params in legal:
        await inbox_queries.inbox_page(any_db, "G", "u", parse_query(params), now=now)
    # 17:00 at +08:00 is 09:00 UTC: the row at 09:00 UTC is not after it; a minute earlier it is.
    assert (await inbox_queries.inbox_page(any_db, "G", "u", parse_query(
        {"cursor": cursor("2026-11-28T17:00:00+08:00", "E1.T1")}), now=now)).rows == []
    page = await inbox_queries.inbox_page(any_db, "G", "u", parse_query(
        {"cursor": cursor("2026-11-28T16:59:00+08:00", "E1.T1")}), now=now)
    assert [t.task_id for t, _ in page.rows] == ["E1.T1"]


def deep(levels: int, inner: str = "1") -> str:
    return '{"a":' * levels + inner + "}" * levels


async def test_deeply_nested_json_is_refused_on_every_json_route(browser: Browser) -> None:
    async with browser() as http:
        bearer = await webapp.api_login(http, "zx_hs")
        for body in ("[" * 10_000 + "]" * 10_000, deep(10_000), "[" * 10_000,
                     '{"category":"SR-01","description":"x","location":' + deep(10_000) + "}"):
            r = await http.post("/api/events", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text[:200]
            assert r.json()["detail"] == (
                f"JSON nested too deeply: arrays and objects may nest at most {MAX_JSON_DEPTH} levels")
        for path in ("/api/auth/login", "/api/events/EV-1/supervise", "/api/console/bulk",
                     "/api/tasks/EV-1.T1/complete", "/api/tasks/EV-1.T1/return", "/api/track/ABC/rating"):
            r = await http.post(path, content=deep(10_000), headers={"content-type": "application/json", **bearer})
            assert r.status_code == 400 and "nested too deeply" in r.json()["detail"], path
        # Even when the client does not say it sends JSON.
        r = await http.post("/api/auth/login", content=deep(5_000), headers={"content-type": "text/plain"})
        assert r.status_code == 400
        # Ordinary bodies pass, with brackets inside strings not counted.
        r = await http.post("/api/auth/login", json={"username": "[[[[" * 16, "password": "{{{{" * 40})
        assert r.status_code == 401


def test_json_depth_counts_without_recursing() -> None:
    assert json_depth(b"1") == 0 and json_depth(b"[]") == 1 and json_depth(b'{"a":[{"b":[]}]}') == 4
    assert json_depth(b'{"a":"[[[[\\"[[[[","b":["]]]"]}') == 2  # brackets and escaped quotes in strings
    assert json_depth(b"[" * 100_000) == 100_000
    assert json_problem(deep(MAX_JSON_DEPTH).encode()) is None
    assert json_problem(deep(MAX_JSON_DEPTH + 1).encode()) == "guard.json_depth"
    assert json_problem(b'{"a":"x\\u0000"}') == "guard.nul"
    assert json_problem(b'{"a":"x\\\\u0000"}') is None  # an escaped backslash, then the text u0000
    assert json_problem(b'{"a":"x\\\\\\u0000"}') == "guard.nul"


async def test_nul_characters_are_refused_in_urls_forms_and_json(browser: Browser) -> None:
    """PostgreSQL cannot compare text holding NUL: these were 500s there."""
    async with browser() as http:
        bearer = await webapp.api_login(http, "wg_hs01_g1")
        admin = await webapp.api_login(http, "admin", "admin12345")
        for path, token in (("/api/events/EV%00", bearer), ("/api/track/A%00B", bearer),
                            ("/api/inbox?q=a%00b", bearer), ("/api/users?unit=%00", admin)):  # /api/users: admins'
            r = await http.get(path, headers=token)
            assert r.status_code == 400 and "NUL" in r.json()["detail"], path
        r = await http.post("/api/auth/login", json={"username": "wg\u0000", "password": "x"})
        assert r.status_code == 400 and "NUL" in r.json()["detail"]
        page = await http.get("/track/A%00B")
        assert page.status_code == 400 and "空字符" in page.text
        html = (await http.get("/login")).text
        r = await http.post("/login", data={"username": "wg\u0000", "password": "x", "_csrf_token": csrf(html)})
        assert r.status_code == 400 and "空字符" in r.text
        await webapp.page_login(http, "wg_hs01_g1")
        html = (await http.get("/inbox")).text
        files = {"note": (None, "a\u0000b")}
        r = await http.post("/report", files=files, data={"_csrf_token": csrf(html), "description": "x"})
        assert r.status_code == 400 and "空字符" in r.text


async def test_saved_filter_ids_beyond_the_column_are_not_found(browser: Browser) -> None:
    async with browser() as http:
        await webapp.page_login(http, "wg_hs01_g1")
        for filter_id in (10**30, 2**63, 2**31):
            html = (await http.get("/inbox")).text
            r = await http.post(f"/inbox/filters/{filter_id}/delete", data={"_csrf_token": csrf(html)})
            assert r.status_code == 404, (filter_id, r.text[:200])


async def test_a_multipart_text_field_that_is_not_utf8_is_a_400(browser: Browser) -> None:
    """Found by schemathesis: Litestar's multipart parser decodes text fields and raised on non-UTF-8."""
    body = (b"--b\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n\x89PNG\xff\xfe\r\n--b--\r\n")
    headers = {"content-type": "multipart/form-data; boundary=b"}
    async with browser() as http:
        bearer = await webapp.api_login(http, "wg_hs01_g1")  # without a token: 401 before the body is read
        r = await http.post("/api/photos", content=body, headers={**headers, **bearer})
        assert r.status_code == 400 and "UTF-8" in r.json()["detail"]
        html = (await http.get("/report")).text
        page_body = body.replace(b"--b--", b"--b\r\nContent-Disposition: form-data; name=\"_csrf_token\"\r\n\r\n"
                                 + csrf(html).encode() + b"\r\n--b--")
        r = await http.post("/report", content=page_body, headers=headers)
        assert r.status_code == 400 and "UTF-8" in r.text
