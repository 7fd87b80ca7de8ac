"""Inbox latency with a million tasks, through the query functions the web uses and through the
web app itself.

    .venv/bin/python -m bench.seed_tasks                      # once: 1,000,000 tasks into SQLite
    .venv/bin/python -m bench.inbox_bench [--url URL] [--schema NAME] [-n 200] [--only search]

Measures, for the busiest unit: the first page of the default view, the second page (keyset
cursor), filtered pages (category, category + search, receipt code, a search with no hit, which
reads all the unit's open tasks), the overdue view by priority and the done view (with and without
a search); the supervisors' console for a street and for the whole city; then the inbox page and
API as whole HTTP answers of the web app (in process: auth, query, template); the supervisors' event
search (store/event_search.py: city and street, receipt code, text, filters, a deep page, CSV and
XLSX exports of about 10,000 rows). A baseline
(``SELECT 1`` and a primary-key lookup) is measured in the same run.
Prints p50/p95 in ms and PASS/FAIL against the p95 targets (inbox 200 ms, console 500 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from bench.seed_tasks import DEFAULT_URL, open_db
from store import inbox_queries, models
from store.inbox_queries import parse_query

#: p95 targets: 200 ms for the inbox (the issue's); 500 ms for the supervisors' console, a wider
#: overview (its counts read every open task of the scope from an index: 250,000 for the city here).
BUDGET_MS = 200.0
CONSOLE_BUDGET_MS = 500.0


async def _measure(n: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await call()  # warm
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


async def run(url: str, schema: str | None, n: int, only: str = "") -> bool:
    """Run the bench; True when every judged case is within its p95 target."""
    db = open_db(url, schema)
    async with db.engine.connect() as conn:
        tasks = (await conn.execute(text("SELECT count(*) FROM task"))).scalar_one()
        events = (await conn.execute(text("SELECT count(*) FROM event"))).scalar_one()
        unit, busy = (await conn.execute(text(
            "SELECT unit, count(*) AS c FROM task GROUP BY unit ORDER BY c DESC LIMIT 1"))).one()
        user = (await conn.execute(text("SELECT username FROM \"user\" WHERE unit = :u LIMIT 1"),
                                   {"u": unit})).scalar() or "bench-user"
        category = (await conn.execute(text(
            "SELECT e.category FROM task t JOIN event e ON e.event_id = t.event_id "
            "WHERE t.unit = :u AND t.status = 'open' LIMIT 1"), {"u": unit})).scalar_one()
    print(f"{url.split('://')[0]}: {tasks:,} tasks, {events:,} events; busiest unit {unit} "
          f"({busy:,} tasks), user {user}")
    first = await inbox_queries.inbox_page(db, unit, user, parse_query({}))
    cursor = first.next_cursor or ""
    some_id = first.rows[0][0].task_id if first.rows else "none"

    async def select_one() -> None:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def pk_lookup() -> None:
        async with db.session() as session:
            await session.get(models.Task, some_id)

    def page(params: dict[str, str]) -> Callable[[], Awaitable[Any]]:
        query = parse_query(params)
        return lambda: inbox_queries.inbox_page(db, unit, user, query)

    cases: list[tuple[str, Callable[[], Awaitable[Any]], float | None]] = [
        ("baseline SELECT 1", select_one, None),
        ("baseline task by primary key", pk_lookup, None),
        ("inbox first page (open+claimed, by due)", page({}), BUDGET_MS),
        ("inbox page 2 (keyset cursor)", page({"cursor": cursor}), BUDGET_MS),
        (f"inbox filtered (category={category} + q=垃圾)", page({"category": category, "q": "垃圾"}), BUDGET_MS),
        ("inbox search by receipt code", page({"q": "b000000042"}), BUDGET_MS),
        ("inbox search, no hit (reads the unit's open tasks)", page({"q": "北苑"}), BUDGET_MS),
        ("inbox category only", page({"category": category}), BUDGET_MS),
        ("inbox overdue view, by priority", page({"view": "overdue", "sort": "priority"}), BUDGET_MS),
        ("inbox done view (most recent first)", page({"view": "done"}), BUDGET_MS),
        ("inbox done view + search", page({"view": "done", "q": "路灯"}), BUDGET_MS),
    ]
    cases += await _console_cases(db)
    cases += await _page_cases(db, unit, user, category)
    cases += await _search_cases(db, category, events)
    ok = True
    for name, call, budget in cases:
        if only and only not in name:
            continue
        runs = max(3, n // 40) if name.startswith(SLOW) else n
        p50, p95 = await _measure(runs, call)
        verdict = "    " if budget is None else "PASS" if p95 <= budget else "FAIL"
        ok &= budget is None or p95 <= budget
        print(f"  {verdict} {name:<50} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  (n={runs})")
    await db.dispose()
    return ok


#: Cases measured fewer times (n/40, at least 3): exports and text searches that read a whole scope.
SLOW = ("search export",)
#: p95 target of a page of the event search (queries) and of a 10,000-row export.
SEARCH_BUDGET_MS = 200.0
EXPORT_BUDGET_MS = 10_000.0  # xlsxwriter's constant-memory mode writes about 40,000 cells a second here
#: A text search without a hit reads a whole window (store.event_search.TEXT_WINDOW): judged against the
#: issue's ~1 s.
SCAN_BUDGET_MS = 1000.0


async def _search_cases(db: Any, category: str, events: int) -> list[tuple[str, Any, float | None]]:
    """The supervisors' event search (store/event_search.py) over the million events: the city and a
    street, by receipt code, text, category + unit, state + overdue, a deep keyset page, and exports of
    10,000 rows as CSV and XLSX through the web app."""
    import tempfile
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import httpx

    from store import event_search
    from store.event_search import SearchScope, parse_search
    from store.keyset import encode_cursor
    from store.org import OrgTree
    from web.app import create_app
    from web.auth import issue_token
    from web.context import AppContext
    from wulian.settings import Settings

    org = await OrgTree.load(db)
    city = SearchScope.of(set(org.units), org)
    street = SearchScope.of(org.descendants("HS"), org)  # zx_hs (web.auth.scope_of)
    async with db.engine.connect() as conn:
        unit = (await conn.execute(text(
            "SELECT unit FROM event WHERE street = 'HS' GROUP BY unit ORDER BY count(*) DESC LIMIT 1"))).scalar_one()
        deep_at, deep_id = (await conn.execute(text(
            "SELECT created_at, event_id FROM event ORDER BY created_at DESC, event_id DESC LIMIT 1 OFFSET :n"
        ), {"n": events // 2})).one()
    if isinstance(deep_at, str):  # SQLite hands the text back
        deep_at = datetime.fromisoformat(deep_at)
    deep = encode_cursor([deep_at if deep_at.tzinfo else deep_at.replace(tzinfo=UTC), deep_id])

    def page(scope: SearchScope, params: dict[str, str]) -> Callable[[], Awaitable[Any]]:
        search = parse_search(params)

        async def call() -> None:
            found = await event_search.search_page(db, scope, search)
            if search.cursor is None and found.next_cursor and found.searched_to is None:
                await event_search.count(db, scope, search)  # the page's bounded count, as web/event_search.py
        return call

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="wulian-bench-")), secret_key="bench-" + "x" * 40)
    ctx = AppContext(settings=settings, db=db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, ctx)), base_url="http://b",
                               timeout=120)
    headers = {"Authorization": f"Bearer {await issue_token(ctx, 'zx_city', via='api')}"}
    # About 10,000 rows: one category's closed events of the last 150 days in the city.
    since = (datetime.now(UTC) - timedelta(days=150)).date()
    export = {"category": category, "state": "closed", "created_from": since.isoformat()}
    rows = await event_search.count(db, city, parse_search(export), cap=100_000)

    def get(path: str, params: dict[str, str]) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            r = await client.get(path, params=params, headers=headers)
            if r.status_code != 200:
                raise SystemExit(f"{path} {params}: HTTP {r.status_code} {r.text[:200]}")
        return call

    return [
        ("search, city: first page (+ count to 200)", page(city, {}), SEARCH_BUDGET_MS),
        ("search, street HS: first page", page(street, {}), SEARCH_BUDGET_MS),
        ("search by receipt code", page(city, {"q": "B000000042"}), SEARCH_BUDGET_MS),
        ("search text 垃圾, city", page(city, {"q": "垃圾"}), SEARCH_BUDGET_MS),
        ("search text 北苑 (no hit) + reported in the last 30 days, city",
         page(city, {"q": "北苑", "created_from": (datetime.now(UTC) - timedelta(days=30)).date().isoformat()}),
         SCAN_BUDGET_MS),
        ("search text, no hit, street HS (a window per branch)", page(street, {"q": "北苑"}), SCAN_BUDGET_MS),
        ("search text, no hit, city (one window of 20,000)", page(city, {"q": "北苑"}), SCAN_BUDGET_MS),
        (f"search category={category} + unit={unit}", page(city, {"category": category, "unit": unit}),
         SEARCH_BUDGET_MS),
        ("search state=dispatched + overdue=1", page(city, {"state": "dispatched", "overdue": "1"}),
         SEARCH_BUDGET_MS),
        ("search state=handling + overdue=1, street HS", page(street, {"state": "handling", "overdue": "1"}),
         SEARCH_BUDGET_MS),
        ("search closed in one week", page(city, {"closed_from": (since + timedelta(days=7)).isoformat(),
                                                  "closed_to": (since + timedelta(days=13)).isoformat()}),
         SEARCH_BUDGET_MS),
        (f"search deep keyset page ({events // 2:,} rows in)", page(city, {"cursor": deep}), SEARCH_BUDGET_MS),
        ("search rework=1, street HS", page(street, {"rework": "1"}), SEARCH_BUDGET_MS),
        ("search API /api/events?state=handling (JSON)", get("/api/events", {"state": "handling"}), SEARCH_BUDGET_MS),
        (f"search export CSV, {rows:,} rows", get("/api/events/export.csv", export), EXPORT_BUDGET_MS),
        (f"search export XLSX, {rows:,} rows", get("/api/events/export.xlsx", export), EXPORT_BUDGET_MS),
    ]


async def _console_cases(db: Any) -> list[tuple[str, Any, float | None]]:
    """The supervisors' console (queues and counts per unit) for a street and for the whole city."""
    from datetime import UTC, datetime

    from store import queries
    from store.org import OrgTree

    org = await OrgTree.load(db)
    street = org.descendants("HS") | {"CC-HS"}  # what a street supervisor sees (web.auth.scope_of)
    city = set(org.units)

    def console(scope: set[str]) -> Callable[[], Awaitable[Any]]:
        return lambda: queries.console(db, scope, datetime.now(UTC))

    return [
        (f"console, street HS ({len(street)} units)", console(street), CONSOLE_BUDGET_MS),
        (f"console, whole city ({len(city)} units)", console(city), CONSOLE_BUDGET_MS),
    ]


async def _page_cases(db: Any, unit: str, user: str, category: str) -> list[tuple[str, Any, float | None]]:
    """The same inbox as whole HTTP answers of the web app (auth, query, template), in process."""
    import tempfile
    from pathlib import Path

    import httpx

    from web.app import create_app
    from web.auth import SESSION_COOKIE, issue_token
    from web.context import AppContext
    from wulian.settings import Settings

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="wulian-bench-")), secret_key="bench-" + "x" * 40)
    ctx = AppContext(settings=settings, db=db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, ctx)),
                               base_url="http://bench")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # no line per request in the figures
    client.cookies.set(SESSION_COOKIE, await issue_token(ctx, user))
    headers = {"Authorization": f"Bearer {await issue_token(ctx, user, via='api')}"}

    def get(path: str, params: dict[str, str], **kw: Any) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            r = await client.get(path, params=params, **kw)
            if r.status_code != 200:
                raise SystemExit(f"{path} {params}: HTTP {r.status_code} {r.text[:200]}")
        return call

    return [
        ("page /inbox (first page, HTML)", get("/inbox", {}), BUDGET_MS),
        (f"page /inbox?category={category}&q=垃圾 (HTML)",
         get("/inbox", {"category": category, "q": "垃圾"}), BUDGET_MS),
        ("API /api/inbox (first page, JSON)", get("/api/inbox", {}, headers=headers), BUDGET_MS),
    ]


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default=None, help="PostgreSQL schema seeded by bench.seed_tasks")
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this")
    args = parser.parse_args()
    ok = asyncio.run(run(args.url, args.schema, args.requests, args.only))
    print("PASS" if ok else "FAIL", f"(p95 budgets: inbox {BUDGET_MS:.0f} ms, console {CONSOLE_BUDGET_MS:.0f} ms, "
          f"search {SEARCH_BUDGET_MS:.0f} ms, a scan {SCAN_BUDGET_MS:.0f} ms, export {EXPORT_BUDGET_MS:.0f} ms)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
