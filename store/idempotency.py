"""One-time keys of reports (the report form's hidden key, the API's ``Idempotency-Key``): the rows of
``idempotencykey``, each claimed before its report's workflow starts.

A claim is one ``INSERT ... ON CONFLICT DO NOTHING`` on the key's hash, so of any number of concurrent
submissions with the same key exactly one inserts the row and starts the event; the others read the
row and wait for its answer (``web/idempotency.py``). The row holds the event id and the receipt grant
drawn before the start, so a claim whose request died (a stale claim) is taken over and starts, or
finds, the same event. Rows live 24 hours; each claim deletes the expired ones (no cron).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from store import models
from store.db import Database
from store.timeutil import as_utc

#: How long a key gives the same answer.
TTL = timedelta(hours=24)
#: A released claim: older than any stale limit, so the next request with the key takes it over.
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)


async def claim(db: Database, row: models.IdempotencyKey, now: datetime) -> models.IdempotencyKey | None:
    """Claim ``row.key_hash`` with ``row``: None when this call inserted it (start the event), else the
    row that holds the key (whose request runs or has answered). Expired rows are deleted first."""
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    values = {name: getattr(row, name) for name in models.IdempotencyKey.model_fields}
    statement = (insert(models.IdempotencyKey).values(**values)
                 .on_conflict_do_nothing(index_elements=["key_hash"])
                 .returning(col(models.IdempotencyKey.key_hash)))
    async with db.session() as session:
        await session.execute(delete(models.IdempotencyKey).where(
            col(models.IdempotencyKey.created_at) < now - TTL))
        inserted = (await session.execute(statement)).scalar_one_or_none()
        await session.commit()
    return None if inserted is not None else await get(db, row.key_hash)


async def get(db: Database, key_hash: str) -> models.IdempotencyKey | None:
    """The row of a key, if any (a fresh read, never a cached object)."""
    async with db.session() as session:
        return await session.get(models.IdempotencyKey, key_hash, populate_existing=True)


def is_expired(row: models.IdempotencyKey, now: datetime) -> bool:
    """Whether the row is older than :data:`TTL` (deleted by the next claim; not an answer any more)."""
    return as_utc(row.created_at) < now - TTL


async def take_over(db: Database, row: models.IdempotencyKey, now: datetime) -> bool:
    """Take over the stale claim ``row`` (as read): True for the one request that did, which then starts
    the same event again (or finds it started)."""
    async with db.session() as session:
        result = await session.execute(
            update(models.IdempotencyKey)
            .where(col(models.IdempotencyKey.key_hash) == row.key_hash,
                   col(models.IdempotencyKey.claimed_at) == row.claimed_at,
                   col(models.IdempotencyKey.status).is_(None))
            .values(claimed_at=now))
        await session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


async def finish(db: Database, key_hash: str, status: int, body: dict[str, Any]) -> None:
    """Record the answer of the claim (without the reporter's tracking key)."""
    async with db.session() as session:
        await session.execute(update(models.IdempotencyKey)
                              .where(col(models.IdempotencyKey.key_hash) == key_hash)
                              .values(status=status, body=body))
        await session.commit()


async def release(db: Database, key_hash: str) -> None:
    """Give up a claim whose request failed: the next request with the key takes it over at once (with
    the same event id, so that a start that did happen is found, not repeated)."""
    async with db.session() as session:
        await session.execute(update(models.IdempotencyKey)
                              .where(col(models.IdempotencyKey.key_hash) == key_hash,
                                     col(models.IdempotencyKey.status).is_(None))
                              .values(claimed_at=RELEASED))
        await session.commit()
