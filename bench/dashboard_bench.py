"""The dashboard's latency over a year of rollups of the demo city, through ``dashboard_answer`` and
through the web app itself (``/dashboard`` as a whole HTML answer, ``GET /api/dashboard``).

    .venv/bin/python -m bench.dashboard_bench --seed          # once: a year of rollups into SQLite
    .venv/bin/python -m bench.dashboard_bench [--url URL] [--schema NAME] [-n 50]

``--seed`` writes, for every unit of the demo organisation and every day of the twelve months before
today, each counter's daily rollup (``IndicatorRollup``) and ten categories' event counts
(``CategoryRollup``): what the projection keeps for a city of about 1,500 events a day (the seed's
48,000 a year is ten times less; the figures are pessimistic there). The dashboard reads rollups
only, so no events are needed; the overdue counts read the facts table, which this seed leaves
empty (the core's bench, item 6, measures those over a million facts). A baseline (``SELECT 1``) is
measured in the same run. Prints p50/p95 in ms and PASS/FAIL against the issue's target for the
dashboard page (500 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from assessment.facts import AMOUNTS, COUNTERS
from bench.seed_tasks import ensure_schema, open_db
from store import models
from store.org import OrgTree
from store.seed import load_organisation

DEFAULT_URL = "sqlite+aiosqlite:////tmp/wulian-bench/dashboard.db"
#: The issue's target for the dashboard page (p95).
BUDGET_MS = 500.0
#: Categories with events per unit and day in the seed.
CATEGORIES_A_DAY = 10


async def seed(url: str, schema: str | None) -> tuple[int, int]:
    """A year of rollups for every unit; returns the numbers of indicator and category rows."""
    from web.stats import today

    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    await ensure_schema(url, schema)
    db = open_db(url, schema)
    await db.upgrade()
    await load_organisation(db)
    org = await OrgTree.load(db)
    rnd = random.Random(11)
    categories = [f"SR-{i:02d}" for i in range(1, 31)]
    last = today()
    days = [last - timedelta(days=i) for i in range(366)]
    counters = [*COUNTERS, *AMOUNTS]
    indicator_rows = category_rows = 0
    async with db.engine.begin() as conn:
        await conn.execute(text("DELETE FROM indicatorrollup"))
        await conn.execute(text("DELETE FROM categoryrollup"))
        for unit in org.units:
            rows = [{"unit": unit, "counter": c, "day": d, "n": rnd.randint(0, 30), "total": rnd.random() * 100}
                    for d in days for c in counters]
            cats = [{"unit": unit, "day": d, "category": c, "n": rnd.randint(1, 9)}
                    for d in days for c in rnd.sample(categories, CATEGORIES_A_DAY)]
            await conn.execute(insert(models.IndicatorRollup), rows)
            await conn.execute(insert(models.CategoryRollup), cats)
            indicator_rows, category_rows = indicator_rows + len(rows), category_rows + len(cats)
    await db.dispose()
    return indicator_rows, category_rows


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
    """Run the bench; True when every judged case is within its p95 target."""
    import httpx

    from web.app import create_app
    from web.auth import SESSION_COOKIE, issue_token
    from web.context import AppContext
    from web.dashboard import dashboard_answer, period_params
    from web.stats import Period, today
    from wulian.settings import Settings

    db = open_db(url, schema)
    org = await OrgTree.load(db)
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="wulian-bench-")), secret_key="bench-" + "x" * 40)
    ctx = AppContext(settings=settings, db=db)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, ctx)), base_url="http://bench")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    async def baseline() -> None:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def answer(unit: str) -> Callable[[], Awaitable[Any]]:
        period = Period(unit, date.fromisoformat(period_params({})["from"]), today())  # the page's default
        return lambda: dashboard_answer(ctx, org, period, 0.973)

    pages: dict[str, dict[str, str]] = {}
    for user in ("zx_city", "zx_hs"):
        pages[user] = {"page": await issue_token(ctx, user), "api": await issue_token(ctx, user, via="api")}

    def get(path: str, user: str) -> Callable[[], Awaitable[Any]]:
        async def call() -> None:
            if path.startswith("/api"):
                r = await client.get(path, headers={"Authorization": f"Bearer {pages[user]['api']}"})
            else:
                r = await client.get(path, cookies={SESSION_COOKIE: pages[user]["page"]})
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:200]}")
        return call

    cases: list[tuple[str, Callable[[], Awaitable[Any]], float | None]] = [
        ("baseline SELECT 1", baseline, None),
        ("dashboard_answer, city, 12 months", answer("JS"), BUDGET_MS),
        ("dashboard_answer, street HS", answer("HS"), BUDGET_MS),
        ("dashboard_answer, community HS01", answer("HS01"), BUDGET_MS),
        ("page /dashboard, city (whole HTML answer)", get("/dashboard", "zx_city"), BUDGET_MS),
        ("page /dashboard, street HS", get("/dashboard", "zx_hs"), BUDGET_MS),
        ("page /dashboard/screen, city", get("/dashboard/screen", "zx_city"), BUDGET_MS),
        ("API /api/dashboard, city (JSON)", get("/api/dashboard", "zx_city"), BUDGET_MS),
    ]
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT count(*) FROM indicatorrollup"))).scalar_one()
    print(f"{url} ({schema or 'default schema'}): {rows:,} indicator rollup rows, n={n}")
    ok = True
    for name, call, budget in cases:
        p50, p95 = await _measure(n, call)
        verdict = "" if budget is None else ("  ok" if p95 <= budget else f"  OVER {budget:.0f} ms")
        ok = ok and (budget is None or p95 <= budget)
        print(f"{name:48s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{verdict}")
    await client.aclose()
    await db.dispose()
    return ok


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default=None, help="PostgreSQL schema (created when seeding)")
    parser.add_argument("--seed", action="store_true", help="write a year of rollups first")
    parser.add_argument("-n", "--requests", type=int, default=50)
    args = parser.parse_args()
    if args.seed:
        indicator_rows, category_rows = asyncio.run(seed(args.url, args.schema))
        print(f"seeded {indicator_rows:,} indicator and {category_rows:,} category rollup rows")
    ok = asyncio.run(run(args.url, args.schema, args.requests))
    print("PASS" if ok else "FAIL", f"(p95 budget {BUDGET_MS:.0f} ms)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
