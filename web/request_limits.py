"""Rate limits of the public endpoints (tracking, "follow / me too"), counted in the store.

Each request adds one to the counter of its key (e.g. ``track:<client address>``) in the current fixed
window with one upsert (``ratewindow``), so every web process counts the same requests and a restart
forgets nothing. Over the limit: :class:`Limited`, answered 429 with ``Retry-After`` (the seconds until
the window ends). Old windows are deleted now and then by the request that opens a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col

from store import models
from store.db import Database
from wulian.settings import Settings


class Limited(Exception):
    """Too many requests for a key in its window; ``retry_after`` seconds until it may try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many requests; try again in {retry_after} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limit:
    """At most ``requests`` per ``window_seconds`` for one key."""

    name: str
    requests: int
    window_seconds: int

    def window_of(self, now: datetime) -> datetime:
        """The start of the fixed window ``now`` falls in."""
        epoch = int(now.timestamp())
        return datetime.fromtimestamp(epoch - epoch % self.window_seconds, UTC)


def track_limit(settings: Settings) -> Limit:
    """Tracking by receipt code (``/track``, ``/api/track``): reads and ratings, per client address."""
    return Limit("track", settings.track_requests_per_window, settings.track_window_seconds)


def follow_limit(settings: Settings) -> Limit:
    """"Follow / me too" from the nearby list, per client address and hour."""
    return Limit("follow", settings.follows_per_hour, 3600)


def follow_phone_limit(settings: Settings) -> Limit:
    """Follows that send text messages to one phone number, per day (the number is not verified:
    nobody may use the platform to flood a stranger's phone)."""
    return Limit("follow-phone", settings.follows_per_phone_per_day, 86400)


def process_start_limit(settings: Settings) -> Limit:
    """Processes requested on the portal without a login (``/p/new/<kind>``), per client address and hour."""
    return Limit("process-start", settings.process_starts_per_hour, 3600)


async def hit(db: Database, limit: Limit, key: str, now: datetime | None = None) -> int:
    """Count one request of ``key``; raises :class:`Limited` when it is over the limit. Returns the count."""
    now = now or datetime.now(UTC)
    start = limit.window_of(now)
    full_key = f"{limit.name}:{key}"[:120]
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    count_column = col(models.RateWindow.count)
    statement = (
        insert(models.RateWindow)
        .values(key=full_key, window_start=start, count=1)
        .on_conflict_do_update(index_elements=["key", "window_start"], set_={"count": count_column + 1})
        .returning(count_column)
    )
    async with db.session() as session:
        count = int((await session.execute(statement)).scalar_one())
        if count == 1:  # the first request of a new window clears this limit's windows that have ended
            await session.execute(delete(models.RateWindow).where(
                col(models.RateWindow.key).startswith(f"{limit.name}:"), col(models.RateWindow.window_start) < start))
        await session.commit()
    if count > limit.requests:
        raise Limited(max(1, int((start + timedelta(seconds=limit.window_seconds) - now).total_seconds()) + 1))
    return count
