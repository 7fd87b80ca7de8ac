"""Loading the demo organisation and users from ``store/demo/organisation.json`` (data, not code)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlmodel import func, select

from store import models
from store.db import Database
from store.users import hash_password

DEMO_ORGANISATION = Path(__file__).parent / "demo" / "organisation.json"
DEMO_ADMIN_PASSWORD = "admin12345"  # noqa: S105 - published demo credentials, refused in production
DEMO_PASSWORD = "demo12345"  # noqa: S105 - idem


async def is_empty(db: Database) -> bool:
    """Whether the store has no units yet."""
    async with db.session() as session:
        count = (await session.exec(select(func.count()).select_from(models.Unit))).one()
    return count == 0


async def load_organisation(db: Database, path: Path = DEMO_ORGANISATION) -> dict[str, int]:
    """Insert the units and demo users of ``path`` (skips rows that exist); returns counts. A user's
    fields are the file's (``party_member`` marks the demo party members scored with the pioneer
    index; ``stationed_street`` a "1+X" cadre's street)."""
    data: dict[str, Any] = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    # Two hashes for all demo users: they share the published demo passwords anyway.
    admin_hash = hash_password(DEMO_ADMIN_PASSWORD)
    demo_hash = hash_password(DEMO_PASSWORD)
    added = {"units": 0, "users": 0}
    async with db.session() as session:
        for raw in data["units"]:
            if await session.get(models.Unit, raw["code"]) is None:
                session.add(models.Unit(**raw))
                added["units"] += 1
        await session.flush()
        for raw in data["users"]:
            if await session.get(models.User, raw["username"]) is None:
                pw = admin_hash if raw["role"] == "admin" else demo_hash
                session.add(models.User(**raw, password_hash=pw))
                added["users"] += 1
        await session.commit()
    return added
