"""Seed N events with one task each (default 1,000,000) over the 89 demo units, for the inbox bench.

    .venv/bin/python -m bench.seed_tasks [-n 1000000] [--url sqlite+aiosqlite:////tmp/wulian-bench.db]
                                         [--schema NAME]   # PostgreSQL: a schema of its own

Brings the schema to the newest revision, loads the demo organisation
(``store.seed.load_organisation``), then inserts rows through SQLAlchemy core in batches of 10,000
(progress on stderr). Receipt codes are ``B`` + 9 digits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, text

from store import models
from store.db import Database
from store.seed import DEMO_ORGANISATION, load_organisation

DEFAULT_URL = "sqlite+aiosqlite:////tmp/wulian-bench/inbox.db"
BATCH = 10_000
SOURCES = ("portal", "hotline", "camera", "grid_patrol", "wechat", "api", "cli")
CATEGORIES = [f"{p}-0{i}" for p in ("AQ", "FW", "GG", "GH", "GY") for i in range(1, 6)]
TIERS = ("grid", "community", "street", "department", "city")
WORDS = ("垃圾堆积", "路灯不亮", "井盖缺失", "占道经营", "噪音扰民", "违章停车", "污水外溢", "树木倒伏",
         "garbage", "streetlight", "manhole", "noise", "parking", "sewage")
STATUSES = (("done", 70), ("open", 15), ("claimed", 10), ("cancelled", 5))


#: The event's state for its one task's status.
EVENT_STATE = {"done": "closed", "open": "dispatched", "claimed": "handling", "cancelled": "voided"}
STREETS = ("中山路", "解放路", "江滨路", "鹿溪路", "城南大道")


def _location(unit: str, kinds: dict[str, str], parents: dict[str, str | None], grids: list[str],
              rng: random.Random) -> dict[str, str | None]:
    """Where an event handled by ``unit`` lies: in the unit's grid, community or street; a
    department's or the city's anywhere in a grid; 3% without any location."""
    if rng.random() < 0.03:
        return {"grid": None, "community": None, "street": None}
    kind = kinds.get(unit)
    if kind not in ("grid", "community", "street", "command_centre") or parents.get(unit) is None:
        unit, kind = rng.choice(grids), "grid"
    if kind == "command_centre":
        unit, kind = parents[unit] or unit, "street"
    grid = unit if kind == "grid" else None
    community = parents[unit] if kind == "grid" else unit if kind == "community" else None
    street = unit if kind == "street" else parents.get(community or "")
    if kinds.get(street or "") != "street":  # the city's command centre: anywhere
        return _location(rng.choice(grids), kinds, parents, grids, rng)
    return {"grid": grid, "community": community, "street": street}


def open_db(url: str, schema: str | None) -> Database:
    """The store at ``url`` (PostgreSQL: with ``schema`` as its search path)."""
    if schema and url.startswith("postgresql"):
        return Database(url, connect_args={"server_settings": {"search_path": schema}})
    return Database(url)


async def ensure_schema(url: str, schema: str | None) -> None:
    """Create the PostgreSQL schema when asked to."""
    if not (schema and url.startswith("postgresql")):
        return
    admin = Database(url)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    await admin.dispose()


def _template(model: type[Any], **required: Any) -> dict[str, Any]:
    """All columns of ``model`` with their defaults (so core inserts fill every NOT NULL column)."""
    return dict(model(**required).model_dump())


async def seed(url: str, count: int, schema: str | None = None, seed_value: int = 7) -> int:
    """Insert ``count`` events and tasks; returns the number of tasks in the store afterwards."""
    await ensure_schema(url, schema)
    db = open_db(url, schema)
    await db.upgrade()
    await load_organisation(db)
    org = json.loads(DEMO_ORGANISATION.read_text(encoding="utf-8"))
    units = [u["code"] for u in org["units"]]
    users: dict[str, list[str]] = {}
    for u in org["users"]:
        users.setdefault(u["unit"], []).append(u["username"])
    kinds = {u["code"]: u["kind"] for u in org["units"]}
    parents = {u["code"]: u.get("parent") for u in org["units"]}
    grids = [c for c, k in kinds.items() if k == "grid"]
    rng = random.Random(seed_value)
    now = datetime.now(UTC)
    ev_tpl = _template(models.Event, event_id="x", receipt_code="x", source="api", category="x",
                       description="x", state="dispatched", stage="handling", created_at=now, updated_at=now)
    task_tpl = _template(models.Task, task_id="x", event_id="x", kind="handle", unit="x", status="open",
                         created_at=now)
    async with db.engine.connect() as conn:
        start_at = (await conn.execute(text("SELECT count(*) FROM event"))).scalar_one()
    started = time.monotonic()
    weights = [w for _, w in STATUSES]
    names = [s for s, _ in STATUSES]
    for first in range(0, count, BATCH):
        events: list[dict[str, Any]] = []
        tasks: list[dict[str, Any]] = []
        for i in range(first, min(first + BATCH, count)):
            n = start_at + i
            # A skewed spread: a few busy units get most of the work.
            unit = units[min(int(rng.expovariate(1 / 12)), len(units) - 1)]
            created = now - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
            status = rng.choices(names, weights)[0]
            due = created + timedelta(hours=rng.choice((4, 8, 24, 72, 120)))
            if status in ("open", "claimed"):
                due = now + timedelta(minutes=rng.randint(-3 * 24 * 60, 5 * 24 * 60))
            event_id = f"bench-{n:09d}"
            claimer = rng.choice(users[unit]) if status in ("claimed", "done") and unit in users else None
            completed = created + timedelta(hours=rng.randint(1, 100)) if status == "done" else None
            description = f"{rng.choice(WORDS)} {rng.choice(WORDS)} #{n}"
            address = f"{rng.choice(STREETS)}{n % 500}号" if rng.random() < 0.7 else None
            event = {**ev_tpl, "event_id": event_id, "receipt_code": f"B{n:09d}",
                     "source": rng.choice(SOURCES), "category": rng.choice(CATEGORIES),
                     "description": description, "address": address,
                     "search_text": models.search_text(description, address),
                     "state": EVENT_STATE[status], "closed_at": completed if status == "done" else None,
                     "rework_count": 1 if rng.random() < 0.04 else 0,
                     "tier": rng.choice(TIERS), "unit": unit, "priority": rng.randint(1, 5),
                     "created_at": created, "updated_at": created,
                     **_location(unit, kinds, parents, grids, rng)}
            events.append(event)
            tasks.append({**task_tpl, **models.inbox_fields(status, due, SimpleNamespace(**event)),
                          "task_id": f"{event_id}.T1", "event_id": event_id, "unit": unit,
                          "status": status, "claimed_by": claimer, "due_at": due, "created_at": created,
                          "claimed_at": created if claimer else None,
                          "completed_at": completed})
        async with db.engine.begin() as conn:
            await conn.execute(insert(models.Event.__table__), events)  # type: ignore[attr-defined]
            await conn.execute(insert(models.Task.__table__), tasks)  # type: ignore[attr-defined]
        done = min(first + BATCH, count)
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\rseeded {done:,}/{count:,} ({rate:,.0f} rows/s)", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    async with db.engine.begin() as conn:
        if url.startswith("postgresql"):
            await conn.execute(text("ANALYZE"))
        else:
            await conn.execute(text("ANALYZE"))
        total = (await conn.execute(text("SELECT count(*) FROM task"))).scalar_one()
    await db.dispose()
    return int(total)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--count", type=int, default=1_000_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--schema", default=None, help="PostgreSQL schema to create and use")
    args = parser.parse_args()
    started = time.monotonic()
    total = asyncio.run(seed(args.url, args.count, args.schema))
    print(f"{total:,} tasks in the store ({time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
