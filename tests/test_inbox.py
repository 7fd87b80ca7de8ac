"""The inbox: views, filters, search, sorts, keyset pages, saved filters, bad parameters (no Temporal)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from store import inbox_queries, models
from store.db import Database
from store.inbox_queries import InboxQueryError, parse_query
from store.seed import load_organisation
from web.app import create_app
from web.auth import SESSION_COOKIE, issue_token
from web.context import AppContext
from wulian.settings import Settings

ME, UNIT = "wg_hs01_g1", "HS01-G1"
OTHER = "wg_hs01_g2"  # another unit
NOW = datetime.now(UTC)
CATS = ("SR-01", "SR-02", "RD-01")
SOURCES = ("portal", "hotline", "camera")
TIERS = ("grid", "community", "street")


def _task_spec(i: int) -> dict[str, Any]:
    status = ("open", "claimed", "done", "open", "cancelled")[i % 5]
    return {
        "status": status,
        "claimed_by": ME if status == "claimed" and i % 2 else ("someone" if status in ("claimed", "done") else None),
        "due_at": None if i % 17 == 0 else NOW + timedelta(hours=(i % 13) - 4, minutes=i),
        "completed_at": NOW - timedelta(hours=i) if status == "done" else None,
        "created_at": NOW - timedelta(days=i % 10, minutes=i),
    }


async def _seed(db: Database) -> None:
    async with db.session() as session:
        for i in range(60):
            spec = _task_spec(i)
            unit = UNIT if i % 20 != 19 else "HS01-G2"  # a few tasks of another unit
            event_id = f"ev-{i:03d}"
            event = models.Event(
                event_id=event_id, receipt_code=f"R{i:09d}", source=SOURCES[i % 3], category=CATS[i % 3],
                description=f"描述 {'垃圾' if i % 4 == 0 else '路灯'} 50%_off #{i:03d}", state="dispatched",
                stage="handling", tier=TIERS[i % 3], unit=unit, priority=1 + i % 5,
                address="北苑小区 3 号楼" if i % 6 == 0 else None,
                created_at=spec["created_at"], updated_at=spec["created_at"],
            )
            session.add(event)
            await session.flush()
            session.add(models.Task(task_id=f"{event_id}.T1", event_id=event_id, kind="handle", unit=unit, **spec,
                                    **models.inbox_fields(spec["status"], spec["due_at"], event)))
        # Assigned to another person of the unit: never shown to me; assigned to me: shown.
        for n, assignee in ((90, "someone_else"), (91, ME)):
            event_id = f"ev-{n}"
            event = models.Event(event_id=event_id, receipt_code=f"R{n:09d}", source="api", category="SR-01",
                                 description="指派", state="dispatched", stage="handling", unit=UNIT,
                                 created_at=NOW, updated_at=NOW)
            session.add(event)
            await session.flush()
            due = NOW + timedelta(hours=1)
            session.add(models.Task(task_id=f"{event_id}.T1", event_id=event_id, kind="handle", unit=UNIT,
                                    status="open", assignee=assignee, due_at=due, created_at=NOW,
                                    **models.inbox_fields("open", due, event)))
        await session.commit()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inbox.db'}")
    await db.create_all()
    await load_organisation(db)
    await _seed(db)
    yield db
    await db.dispose()


@pytest.fixture
async def app_ctx(db: Database, tmp_path: Path) -> AppContext:
    return AppContext(settings=Settings(data_dir=tmp_path, secret_key="test-secret-inbox-0123456789abcdef0123"), db=db)


@pytest.fixture
async def http(app_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(app_ctx.settings, app_ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _as(http: httpx.AsyncClient, ctx: AppContext, username: str) -> dict[str, str]:
    token = await issue_token(ctx, username)
    http.cookies.set(SESSION_COOKIE, token)
    return {"Authorization": f"Bearer {token}"}


async def _all(db: Database, params: dict[str, str], username: str = ME, page_size: int = 7) -> list[str]:
    """Every task id of a query, following the keyset cursors."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        query = parse_query({**params, **({"cursor": cursor} if cursor else {})})
        page = await inbox_queries.inbox_page(db, UNIT, username, query, now=NOW, page_size=page_size)
        ids += [t.task_id for t, _ in page.rows]
        cursor = page.next_cursor
        if not cursor:
            return ids
    raise AssertionError("the pages never end")


async def _rows(db: Database, params: dict[str, str]) -> list[tuple[models.Task, models.Event]]:
    page = await inbox_queries.inbox_page(db, UNIT, ME, parse_query(params), now=NOW, page_size=500)
    return page.rows


async def test_views(db: Database) -> None:
    default = await _rows(db, {})
    assert default and all(t.unit == UNIT and t.status in ("open", "claimed") for t, _ in default)
    ids = {t.task_id for t, _ in default}
    assert "ev-091.T1" not in ids and "ev-91.T1" in ids and "ev-90.T1" not in ids
    mine = await _rows(db, {"view": "mine"})
    assert mine and all(t.claimed_by == ME or t.assignee == ME for t, _ in mine)
    unit = await _rows(db, {"view": "unit"})
    assert unit and all(t.status == "open" and t.claimed_by is None for t, _ in unit)
    soon = await _rows(db, {"view": "due_soon"})
    assert soon and all(t.due_at and NOW <= t.due_at <= NOW + timedelta(hours=8) for t, _ in soon)
    overdue = await _rows(db, {"view": "overdue"})
    assert overdue and all(t.due_at and t.due_at < NOW and t.status in ("open", "claimed") for t, _ in overdue)
    done = await _rows(db, {"view": "done"})
    assert done and all(t.status == "done" and t.unit == UNIT for t, _ in done)
    stamps = [t.completed_at for t, _ in done]
    assert stamps == sorted(stamps, reverse=True)  # type: ignore[type-var]


async def test_filters_and_search(db: Database) -> None:
    for key, values, attr in (("category", CATS, "category"), ("tier", TIERS, "tier"), ("source", SOURCES, "source")):
        for value in values:
            rows = await _rows(db, {key: value})
            assert rows and all(getattr(ev, attr) == value for _, ev in rows), (key, value)
    claimed = await _rows(db, {"status": "claimed"})
    assert claimed and all(t.status == "claimed" for t, _ in claimed)
    day = (NOW - timedelta(days=3)).astimezone(inbox_queries.CITY_TZ).date()
    ranged = await _rows(db, {"created_from": day.isoformat(), "created_to": day.isoformat()})
    assert ranged and all(t.created_at.astimezone(inbox_queries.CITY_TZ).date() == day for t, _ in ranged)
    everything = await _rows(db, {"view": "done"}) + await _rows(db, {})
    by_code = await _rows(db, {"q": "r000000003"})  # receipt code, case-insensitive
    assert [ev.receipt_code for _, ev in by_code] == ["R000000003"]
    by_text = await _rows(db, {"q": "垃圾"})
    assert by_text and all("垃圾" in ev.description for _, ev in by_text)
    assert len(by_text) < len(everything)
    wild = await _rows(db, {"q": "50%_OFF"})  # LIKE wildcards are escaped, case-insensitive
    assert len(wild) == len([1 for _, ev in await _rows(db, {}) if "50%_off" in ev.description]) > 0
    assert await _rows(db, {"q": "垃%圾"}) == [] and await _rows(db, {"q": "路_"}) == []
    by_address = await _rows(db, {"q": "北苑"})  # the address is searched too
    assert by_address and all(ev.address and "北苑" in ev.address for _, ev in by_address)
    combined = await _rows(db, {"category": "SR-01", "q": "路灯"})
    assert combined and all(ev.category == "SR-01" and "路灯" in ev.description for _, ev in combined)


@pytest.mark.parametrize("params", [{}, {"sort": "priority"}, {"view": "done"}, {"category": "SR-02"},
                                    {"view": "unit", "sort": "priority"}])
async def test_keyset_pages_have_no_duplicates_or_gaps(db: Database, params: dict[str, str]) -> None:
    expected = [t.task_id for t, _ in await _rows(db, params)]
    assert len(expected) > 7
    paged = await _all(db, params)
    assert paged == expected  # same order, nothing twice, nothing missing


async def test_mine_is_the_union_of_claimed_and_assigned_in_order(db: Database) -> None:
    rows = await _rows(db, {"view": "mine"})
    ids = [t.task_id for t, _ in rows]
    assert "ev-91.T1" in ids and any(t.claimed_by == ME for t, _ in rows)  # both branches
    keys = [t.due_key for t, _ in rows]
    assert keys == sorted(keys)
    assert await _all(db, {"view": "mine"}, page_size=2) == ids  # pages across the two branches


async def test_receipt_code_search_takes_the_code_or_falls_back_to_text(db: Database) -> None:
    assert inbox_queries.receipt_code_of("r-000 000-003") == "R000000003"
    assert inbox_queries.receipt_code_of("垃圾") is None and inbox_queries.receipt_code_of("ab") is None
    assert [ev.receipt_code for _, ev in await _rows(db, {"q": "R-000-000-003"})] == ["R000000003"]
    assert await _rows(db, {"q": "R999999999"}) == []  # a code that is no event's: a text search, no hit
    other_unit = await _rows(db, {"q": "R000000019"})  # an event of another unit: not in my inbox
    assert other_unit == []


async def test_sorts(db: Database) -> None:
    due = [t.due_at for t, _ in await _rows(db, {})]
    present = [d for d in due if d is not None]
    assert present == sorted(present) and due[len(present):] == [None] * (len(due) - len(present))
    prio = [(ev.priority, t.due_at) for t, ev in await _rows(db, {"sort": "priority"})]
    assert [p for p, _ in prio] == sorted(p for p, _ in prio)


@pytest.mark.parametrize("params", [{"view": "nope"}, {"sort": "x"}, {"status": "lost"}, {"created_from": "2026-13-01"},
                                    {"created_from": "2026-02-02", "created_to": "2026-02-01"},
                                    {"category": "<script>"}, {"q": "x" * 101}, {"cursor": "garbage!"}])
def test_bad_parameters_are_refused(params: dict[str, str]) -> None:
    with pytest.raises(InboxQueryError):
        parse_query(params)


async def test_page_tabs_filters_and_next_page(http: httpx.AsyncClient, app_ctx: AppContext) -> None:
    await _as(http, app_ctx, ME)
    html = (await http.get("/inbox")).text
    assert 'aria-current="page"' in html and "/inbox?view=overdue" in html
    first = re.findall(r'data-task="([^"]+)"', html)
    assert len(first) == inbox_queries.PAGE_SIZE
    nxt = re.search(r'rel="next" href="([^"]+)"', html)
    assert nxt
    second = re.findall(r'data-task="([^"]+)"', (await http.get(nxt.group(1).replace("&amp;", "&"))).text)
    assert second and not set(first) & set(second)
    r = await http.get("/inbox", params={"q": "R000000003"})
    assert re.findall(r'data-task="([^"]+)"', r.text) == ["ev-003.T1"]
    r = await http.get("/inbox", params={"view": "weird"})
    assert r.status_code == 400 and "视图：须为以下之一" in r.text  # the page's language (issue 10)
    r = await http.get("/inbox", params={"created_to": "yesterday"})
    assert r.status_code == 400 and "created_to" in r.text


async def test_api_inbox_cursor_and_errors(http: httpx.AsyncClient, app_ctx: AppContext) -> None:
    headers = await _as(http, app_ctx, ME)
    body = (await http.get("/api/inbox", headers=headers)).json()
    assert body["unit"] == UNIT and len(body["tasks"]) == 25 and body["next_cursor"]
    assert {"task_id", "event_id", "kind", "status", "description", "receipt_code"} <= set(body["tasks"][0])
    seen = [t["task_id"] for t in body["tasks"]]
    while body["next_cursor"]:
        body = (await http.get("/api/inbox", headers=headers, params={"cursor": body["next_cursor"]})).json()
        seen += [t["task_id"] for t in body["tasks"]]
    expected = [t.task_id for t, _ in await _rows(app_ctx.db, {})]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    r = await http.get("/api/inbox", headers=headers, params={"view": "done", "category": "SR-01", "sort": "priority"})
    assert r.status_code == 200 and all(t["status"] == "done" and t["category"] == "SR-01" for t in r.json()["tasks"])
    r = await http.get("/api/inbox", headers=headers, params={"sort": "sideways"})
    assert r.status_code == 400 and "sort" in r.json()["detail"]
    r = await http.get("/api/inbox", headers=headers, params={"cursor": "bm9wZQ"})
    assert r.status_code == 400 and "cursor" in r.json()["detail"]
    assert (await http.get("/api/inbox")).status_code == 401


async def test_saved_filters_crud_and_ownership(http: httpx.AsyncClient, app_ctx: AppContext) -> None:
    await _as(http, app_ctx, ME)
    html = (await http.get("/inbox", params={"view": "overdue", "category": "SR-01"})).text
    token = re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    query = re.search(r'name="query" value="([^"]*)"', html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    r = await http.post("/inbox/filters", data={"_csrf_token": token, "name": "超期 SR-01", "query": query})
    assert r.status_code == 303 and "msg=inbox.filter.saved" in r.headers["location"]
    saved = await inbox_queries.saved_filters(app_ctx.db, ME)
    assert [(f.name, f.query) for f in saved] == [("超期 SR-01", "view=overdue&category=SR-01")]
    html = (await http.get("/inbox")).text
    assert "超期 SR-01" in html and 'href="/inbox?view=overdue&amp;category=SR-01"' in html
    r = await http.post("/inbox/filters", data={"_csrf_token": token, "name": "", "query": ""})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    r = await http.post("/inbox/filters", data={"name": "no csrf", "query": ""})
    assert r.status_code == 403

    # Someone else sees none of them and may not delete them.
    await _as(http, app_ctx, OTHER)
    html = (await http.get("/inbox")).text
    assert "超期 SR-01" not in html
    token_other = re.search(r'name="_csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = await http.post(f"/inbox/filters/{saved[0].id}/delete", data={"_csrf_token": token_other})
    assert r.status_code == 403
    r = await http.post("/inbox/filters/999999/delete", data={"_csrf_token": token_other})
    assert r.status_code == 404
    assert len(await inbox_queries.saved_filters(app_ctx.db, ME)) == 1

    await _as(http, app_ctx, ME)
    r = await http.post(f"/inbox/filters/{saved[0].id}/delete", data={"_csrf_token": token})
    assert r.status_code == 303
    assert await inbox_queries.saved_filters(app_ctx.db, ME) == []


async def test_event_page_lists_related_events_of_the_same_grid_and_category(
    http: httpx.AsyncClient, app_ctx: AppContext, db: Database
) -> None:
    specs = [  # (event id, grid, category, days before now)
        ("rel-main", "HS01-G1", "SR-01", 0), ("rel-same", "HS01-G1", "SR-01", 5),
        ("rel-older", "HS01-G1", "SR-01", 200), ("rel-other-cat", "HS01-G1", "SR-02", 1),
        ("rel-other-grid", "HS01-G2", "SR-01", 1),
    ]
    async with db.session() as session:
        for n, (event_id, grid, category, days) in enumerate(specs):
            at = NOW - timedelta(days=days)
            event = models.Event(event_id=event_id, receipt_code=f"Q{n:09d}", source="portal", category=category,
                                 description=f"<b>{event_id}</b>", state="dispatched", stage="handling",
                                 grid=grid, community="HS01", street="HS", unit=grid, created_at=at, updated_at=at)
            session.add(event)
            await session.flush()
            session.add(models.Task(task_id=f"{event_id}.T1", event_id=event_id, kind="handle", unit=grid,
                                    status="open", created_at=at, **models.inbox_fields("open", None, event)))
        await session.commit()
    await _as(http, app_ctx, ME)
    r = await http.get("/events/rel-main")
    assert r.status_code == 200
    related = r.text.split('id="related"', 1)[1].split("</section>", 1)[0]
    assert "Q000000001" in related  # same grid and category, 5 days before
    for absent in ("Q000000000", "Q000000002", "Q000000003", "Q000000004"):  # itself, too old, other category/grid
        assert absent not in related
    assert "&lt;b&gt;rel-same&lt;/b&gt;" in related  # descriptions are escaped
    # The location sketch: the street's grid centres, this event's grid highlighted.
    sketch = r.text.split('id="location-map"', 1)[1].split("</svg>", 1)[0]
    assert sketch.count('class="grid here"') == 1 and ">HS01-G1</text>" in sketch
    assert "<title>HS01-G2</title>" in sketch  # the other grids of the street, named on hover
