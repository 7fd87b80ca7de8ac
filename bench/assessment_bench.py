"""The assessment at city scale (issue 11, item 6): a million past events, then the indicators.

    .venv/bin/python -m bench.assessment_bench                     # 1,000,000 events, SQLite and PostgreSQL
    .venv/bin/python -m bench.assessment_bench --events 100000 --only sqlite
    .venv/bin/python -m bench.assessment_bench --pg-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

For each database (SQLite: a file in a temporary directory; PostgreSQL when it answers: a schema of
its own, dropped afterwards): the schema by the migrations, the demo organisation, ``--events``
past events over ``--months`` months by ``store.demo_history.seed_history`` (its time), then, through
the real Litestar app in process (httpx ASGITransport, a city supervisor logged in):

- ``GET /api/indicators`` for the city and for a street over 12 months (p50/p95 of ``-n`` requests),
  next to a baseline measured in the same run: the same kind of numbers counted by direct queries
  over the event, task and warning tables without the rollups;
- the page ``/stats`` (city and street, with the rows of their child units);
- ``/dashboard`` and ``/api/dashboard`` when the app has them (issue 11, item 5);
- a monthly snapshot of the whole city: the reports' function when it exists (item 4), and the
  indicators of every assessed unit for last month (what a snapshot reads) in any case;
- ``store.assessment.rebuild`` of every fact and rollup (last: it takes longest).

Targets: indicators p95 < 300 ms, dashboard < 500 ms, a monthly snapshot of the city < 60 s. The exit
code is 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from rules.worktime import CITY_TZ
from store import assessment
from store.db import Database
from store.demo_history import has_events, seed_history
from store.org import OrgTree
from store.seed import load_organisation

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
INDICATORS_MS = 300.0
DASHBOARD_MS = 500.0
SNAPSHOT_S = 60.0
STREET = "HS"
def say(line: str = "") -> None:
    print(line, flush=True)


async def measure(n: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """p50 and p95 in ms of ``n`` calls after one warm-up."""
    await call()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


async def open_store(kind: str, pg_url: str, folder: Path, sqlite_file: str | None = None) -> Database:
    if kind == "sqlite":
        return Database(f"sqlite+aiosqlite:///{sqlite_file or folder / 'assessment-bench.db'}")
    schema = f"assess_bench_{uuid.uuid4().hex[:8]}"
    admin = Database(pg_url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    await admin.dispose()
    db = Database(pg_url, connect_args={"server_settings": {"search_path": schema}})
    db.schema = schema  # type: ignore[attr-defined]
    return db


async def close_store(db: Database, keep: bool) -> None:
    schema = getattr(db, "schema", None)
    if schema and not keep:
        async with db.engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    await db.dispose()


async def pg_reachable(url: str) -> bool:
    db = Database(url)
    try:
        return await asyncio.wait_for(db.ping(), 10)
    except (TimeoutError, OSError):
        return False
    finally:
        await db.dispose()


def baseline(db: Database, org: OrgTree, unit: str, day_from: date, day_to: date) -> Callable[[], Awaitable[None]]:
    """The indicators' main counts straight from the event, task and warning tables (no rollups):
    events reported and closed, closed without warnings, reworked, rated; handling tasks created,
    done, done on time, extended, dispatched, returned; yellow and red warnings, for ``unit``'s
    places (events) and units (tasks, warnings) over the period."""
    start, end = assessment.day_bounds(day_from, day_to)
    units = sorted(org.descendants(unit))
    city = org.units[unit].parent is None
    where_event = "" if city else "AND e.street = :unit"
    where_unit = "" if city else f"AND t.unit IN ({', '.join(f':u{i}' for i in range(len(units)))})"
    where_warn = "" if city else f"AND w.unit IN ({', '.join(f':u{i}' for i in range(len(units)))})"
    params: dict[str, Any] = {"start": start, "end": end, "unit": unit, **{f"u{i}": u for i, u in enumerate(units)}}
    events_sql = text(f"""
        SELECT count(*), sum(CASE WHEN e.state = 'closed' THEN 1 ELSE 0 END),
               sum(CASE WHEN e.state = 'closed' AND e.rework_count > 0 THEN 1 ELSE 0 END),
               sum(CASE WHEN e.rating IN ('satisfied', 'basically_satisfied') THEN 1 ELSE 0 END),
               sum(CASE WHEN e.rating IS NOT NULL THEN 1 ELSE 0 END),
               sum(CASE WHEN e.state = 'closed' AND e.close_action = 'accept_by_default' THEN 1 ELSE 0 END)
        FROM event e WHERE e.created_at >= :start AND e.created_at < :end {where_event}""")
    on_time_sql = text(f"""
        SELECT count(*) FROM event e WHERE e.created_at >= :start AND e.created_at < :end {where_event}
          AND e.state = 'closed' AND NOT EXISTS (SELECT 1 FROM supervisionwarning w
              WHERE w.event_id = e.event_id AND w.kind IN ('yellow', 'red'))""")
    tasks_sql = text(f"""
        SELECT count(*), sum(CASE WHEN t.status = 'done' THEN 1 ELSE 0 END),
               sum(CASE WHEN t.status = 'done' AND t.completed_at <= t.due_at THEN 1 ELSE 0 END),
               sum(CASE WHEN t.extended_hours > 0 THEN 1 ELSE 0 END),
               sum(CASE WHEN t.origin = 'dispatch' THEN 1 ELSE 0 END),
               sum(CASE WHEN t.origin = 'dispatch' AND t.ended_by = 'returned' THEN 1 ELSE 0 END),
               sum(CASE WHEN t.status IN ('open', 'claimed') AND t.due_at < :end THEN 1 ELSE 0 END)
        FROM task t WHERE t.kind = 'handle' AND t.created_at >= :start AND t.created_at < :end {where_unit}""")
    warnings_sql = text(f"""
        SELECT w.kind, count(*) FROM supervisionwarning w WHERE w.at >= :start AND w.at < :end
          AND w.kind IN ('yellow', 'red') {where_warn} GROUP BY w.kind""")

    async def call() -> None:
        async with db.engine.connect() as conn:
            for sql in (events_sql, on_time_sql, tasks_sql, warnings_sql):
                (await conn.execute(sql, params)).all()
    return call


def _snapshot_hook(period: str, day_from: date, day_to: date) -> Callable[[Database], Awaitable[Any]] | None:
    """The reports' computation of a monthly snapshot (issue 11, item 4: ``activities.reports.compute``,
    everything a snapshot holds, without storing it), when this build has it."""
    try:
        reports = importlib.import_module("activities.reports")
        period_report = importlib.import_module("workflows.period_report")
    except ImportError:
        return None
    compute, job_type = getattr(reports, "compute", None), getattr(period_report, "ReportJob", None)
    if compute is None or job_type is None:
        return None
    job = job_type(period=period, kind=getattr(period_report, "MONTH", "month"), day_from=day_from.isoformat(),
                   day_to=day_to.isoformat(), request_id="bench", recompute=False, actor="bench", reason="bench",
                   trigger="schedule")

    async def run(db: Database) -> Any:
        return await compute(db, job)
    return run


async def run_one(kind: str, args: argparse.Namespace, folder: Path) -> list[tuple[str, str, bool | None]]:
    """Seed, measure and print one database; returns (case, figure, within target or None)."""
    import httpx

    from web.app import create_app
    from web.auth import SESSION_COOKIE, issue_token
    from web.context import AppContext
    from wulian.rule_registry import ensure_active
    from wulian.settings import Settings

    out: list[tuple[str, str, bool | None]] = []

    def row(case: str, figure: str, ok: bool | None = None) -> None:
        out.append((case, figure, ok))
        mark = "" if ok is None else ("  ok" if ok else "  MISSED")
        say(f"  {kind:10} {case:58} {figure}{mark}")

    db = await open_store(kind, args.pg_url, folder, args.sqlite_file)
    try:
        await db.upgrade()
        await ensure_active(db)
        await load_organisation(db)
        org = await OrgTree.load(db)
        end = datetime.now(CITY_TZ).date()
        reused = kind == "sqlite" and args.sqlite_file and await has_events(db)
        last_shown = [0.0]

        def progress(done: int, total: int) -> None:
            if time.monotonic() - last_shown[0] > 30 or done == total:
                last_shown[0] = time.monotonic()
                print(f"  {kind}: {done:,}/{total:,} events seeded ({time.monotonic() - started:.0f} s)",
                      file=sys.stderr, flush=True)

        started = time.monotonic()
        if not reused:
            written = await seed_history(db, org, events=args.events, months=args.months, end=end, seed=1,
                                         progress=progress)
            seeded = time.monotonic() - started
        if kind == "postgresql":
            # What autovacuum does to a table after many inserts: statistics and the visibility map
            # (index-only scans skip the heap only for pages marked all-visible).
            async with db.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.execute(text("VACUUM ANALYZE"))
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
            counts = {t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()
                      for t in ("event", "task", "supervisionwarning", "timelineentry", "assessmentfact",
                                "indicatorrollup", "categoryrollup")}
        if reused:
            row("seed", f"reused {args.sqlite_file} ({counts['event']:,} events)")
        else:
            row(f"seed {written:,} events ({args.months} months)",
                f"{seeded:,.0f} s ({written / seeded:,.0f} events/s)")
        say("             rows: " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))

        settings = Settings(data_dir=folder / f"web-{kind}", secret_key="bench-" + "x" * 40)
        ctx = AppContext(settings=settings, db=db)
        logging.getLogger("httpx").setLevel(logging.WARNING)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, ctx)),
                                   base_url="http://bench", timeout=300)
        client.cookies.set(SESSION_COOKIE, await issue_token(ctx, "zx_city"))
        headers = {"Authorization": f"Bearer {await issue_token(ctx, 'zx_city', via='api')}"}
        day_from = end - timedelta(days=364)
        period = {"from": day_from.isoformat(), "to": end.isoformat()}

        def get(path: str, params: dict[str, str], api: bool = True) -> Callable[[], Awaitable[None]]:
            async def call() -> None:
                r = await client.get(path, params=params, headers=headers if api else None)
                if r.status_code != 200:
                    raise SystemExit(f"{path} {params}: HTTP {r.status_code} {r.text[:300]}")
            return call

        for unit, label in (("JS", "city"), (STREET, f"street {STREET}")):
            p50, p95 = await measure(args.n, get("/api/indicators", {"unit": unit, **period}))
            row(f"GET /api/indicators, {label}, 12 months", f"p50 {p50:,.0f} / p95 {p95:,.0f} ms", p95 < INDICATORS_MS)
            b50, b95 = await measure(max(3, args.n // 10), baseline(db, org, unit, day_from, end))
            row(f"baseline: direct counts over event/task, {label}",
                f"p50 {b50:,.0f} / p95 {b95:,.0f} ms ({b50 / max(p50, 0.001):,.0f}x the rollups' p50)")
        for unit, label in (("JS", "city"), (STREET, f"street {STREET}")):
            p50, p95 = await measure(max(5, args.n // 5), get("/stats", {"unit": unit, **period}, api=False))
            row(f"page /stats, {label}, 12 months (with child units)", f"p50 {p50:,.0f} / p95 {p95:,.0f} ms")
        probe = await client.get("/dashboard", params={"unit": "JS", **period})
        if probe.status_code == 404:
            row("page /dashboard", "not in this build (issue 11, item 5)")
        else:
            for path, api in (("/dashboard", False), ("/api/dashboard", True)):
                p50, p95 = await measure(max(5, args.n // 5), get(path, {"unit": "JS", **period}, api=api))
                row(f"{path}, city, 12 months", f"p50 {p50:,.0f} / p95 {p95:,.0f} ms", p95 < DASHBOARD_MS)

        first = end.replace(day=1)
        last_month = (first - timedelta(days=1)).replace(day=1)
        month_end = first - timedelta(days=1)
        units = [c for c, u in org.units.items() if u.parent is None or u.kind in ("grid", "community", "street",
                                                                                  "department", "command_centre")]
        started = time.monotonic()
        for unit in units:
            await assessment.indicator_values(db, org, unit, last_month, month_end)
        took = time.monotonic() - started
        row(f"indicators of all {len(units)} units for {last_month:%Y-%m}", f"{took:,.1f} s", took < SNAPSHOT_S)
        hook = _snapshot_hook(f"{last_month:%Y-%m}", last_month, month_end)
        if hook is None:
            row("monthly snapshot (reports)", "no snapshot computation in this build (issue 11, item 4)")
        else:
            started = time.monotonic()
            await hook(db)
            took = time.monotonic() - started
            row(f"monthly snapshot of the city {last_month:%Y-%m} (activities.reports.compute)", f"{took:,.1f} s",
                took < SNAPSHOT_S)
        await client.aclose()

        if not args.no_rebuild:
            started = time.monotonic()
            report = await assessment.rebuild(db)
            took = time.monotonic() - started
            row(f"rebuild: {report.events:,} events, {report.facts:,} facts, {report.rollup_rows:,} rollups",
                f"{took:,.0f} s")
    finally:
        await close_store(db, args.keep)
    return out


async def main_async(args: argparse.Namespace) -> bool:
    say(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {os.getloadavg()[0]:.1f}")
    say(f"started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {args.events:,} events over {args.months} months; "
        f"n={args.n}")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    kinds = [args.only] if args.only else ["sqlite", "postgresql"]
    folder = Path(tempfile.mkdtemp(prefix="wulian-assessment-bench-"))
    ok = True
    for kind in kinds:
        if kind == "postgresql" and not await pg_reachable(args.pg_url):
            say(f"  postgresql: {args.pg_url} does not answer; skipped")
            continue
        results = await run_one(kind, args, folder)
        ok = ok and all(r[2] is not False for r in results)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("-n", type=int, default=50, help="requests per measured case")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--no-rebuild", action="store_true", help="skip the rebuild (the longest step)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    parser.add_argument("--sqlite-file", help="SQLite: this store (seeded only when it has no events)")
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(main_async(args)) else 1)


if __name__ == "__main__":
    main()
