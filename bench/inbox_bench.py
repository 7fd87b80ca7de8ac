"""Inbox latency with a million tasks, through the query functions the web uses and through the
web app itself.

    .venv/bin/python -m bench.seed_tasks                      # once: 1,000,000 tasks into SQLite
    .venv/bin/python -m bench.inbox_bench [--url URL] [--schema NAME] [-n 200]

Measures, for the busiest unit: the first page of the default view, the second page (keyset
cursor), filtered pages (category, category + search, receipt code, a search with no hit, which
reads all the unit's open tasks), the overdue view by priority and the done view (with and without
a search); the supervisors' console for a street and for the whole city; then the inbox page and
API as whole HTTP answers of the web app (in process: auth, query, template). A baseline
(``SELECT 1`` and a primary-key lookup) is measured in the same run.
Prints p50/p95 in ms and PASS/FAIL against 200 ms p95.
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

BUDGET_MS = 200.0


async def _measure(n: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    await call()  # warm
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


async def run(url: str, schema: str | None, n: int) -> bool:
    """Run the bench; True when every inbox query is within budget."""
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

    cases: list[tuple[str, Callable[[], Awaitable[Any]], bool]] = [
        ("baseline SELECT 1", select_one, False),
        ("baseline task by primary key", pk_lookup, False),
        ("inbox first page (open+claimed, by due)", page({}), True),
        ("inbox page 2 (keyset cursor)", page({"cursor": cursor}), True),
        (f"inbox filtered (category={category} + q=垃圾)", page({"category": category, "q": "垃圾"}), True),
        ("inbox search by receipt code", page({"q": "b000000042"}), True),
        ("inbox search, no hit (reads the unit's open tasks)", page({"q": "北苑"}), True),
        ("inbox category only", page({"category": category}), True),
        ("inbox overdue view, by priority", page({"view": "overdue", "sort": "priority"}), True),
        ("inbox done view (most recent first)", page({"view": "done"}), True),
        ("inbox done view + search", page({"view": "done", "q": "路灯"}), True),
    ]
    cases += await _console_cases(db)
    cases += await _page_cases(db, unit, user, category)
    ok = True
    for name, call, judged in cases:
        p50, p95 = await _measure(n, call)
        verdict = ("PASS" if p95 <= BUDGET_MS else "FAIL") if judged else "    "
        ok &= p95 <= BUDGET_MS or not judged
        print(f"  {verdict} {name:<50} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  (n={n})")
    await db.dispose()
    return ok


async def _console_cases(db: Any) -> list[tuple[str, Any, bool]]:
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
        (f"console, street HS ({len(street)} units)", console(street), True),
        (f"console, whole city ({len(city)} units)", console(city), True),
    ]


async def _page_cases(db: Any, unit: str, user: str, category: str) -> list[tuple[str, Any, bool]]:
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
    client.cookies.set(SESSION_COOKIE, issue_token(ctx, user))
    headers = {"Authorization": f"Bearer {issue_token(ctx, user)}"}

    def get(path: str, params: dict[str, str], **kw: Any) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            r = await client.get(path, params=params, **kw)
            if r.status_code != 200:
                raise SystemExit(f"{path} {params}: HTTP {r.status_code} {r.text[:200]}")
        return call

    return [
        ("page /inbox (first page, HTML)", get("/inbox", {}), True),
        (f"page /inbox?category={category}&q=垃圾 (HTML)", get("/inbox", {"category": category, "q": "垃圾"}), True),
        ("API /api/inbox (first page, JSON)", get("/api/inbox", {}, headers=headers), True),
    ]


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default=None, help="PostgreSQL schema seeded by bench.seed_tasks")
    parser.add_argument("-n", "--requests", type=int, default=200)
    args = parser.parse_args()
    ok = asyncio.run(run(args.url, args.schema, args.requests))
    print("PASS" if ok else "FAIL", f"(p95 budget {BUDGET_MS:.0f} ms)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
