"""Login rate limiting: after too many failed logins for a username or from a client address within a
window, further attempts are refused (429) until the window has passed.

The failures are rows in the store (``LoginFailure``), so every web process counts the same
attempts and a restart forgets nothing: several processes behind a load balancer cannot be used to
multiply the guesses. Rows older than the window are deleted as new failures come in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, delete, select

from store import models
from store.db import Database
from store.timeutil import as_utc

#: Failed attempts allowed per username and per client address within :data:`WINDOW_SECONDS`.
MAX_FAILURES = 5
#: The counting window, and how long a lockout lasts after the last counted failure leaves it.
WINDOW_SECONDS = 10 * 60


def _keys(username: str, ip: str) -> tuple[str, str]:
    return f"user:{username.lower()[:64]}", f"ip:{ip[:64]}"


class LoginLimiter:
    """Failed-login counters per username and per client address (sliding window), in the store."""

    def __init__(self, db: Database, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS) -> None:
        self.db = db
        self.max_failures = max_failures
        self.window = timedelta(seconds=window)

    async def _recent(self, key: str, now: datetime) -> list[datetime]:
        """The failures of ``key`` within the window, newest first (at most the limit's worth)."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(models.LoginFailure.at)
                .where(models.LoginFailure.key == key, col(models.LoginFailure.at) > now - self.window)
                .order_by(col(models.LoginFailure.at).desc())
                .limit(self.max_failures)
            )
            return [as_utc(at) for at in rows.all()]

    async def retry_after(self, username: str, ip: str, now: datetime | None = None) -> int:
        """Seconds until an attempt may be made again; 0 when not locked."""
        now = now or datetime.now(UTC)
        wait = 0.0
        for key in _keys(username, ip):
            stamps = await self._recent(key, now)
            if len(stamps) >= self.max_failures:
                wait = max(wait, (stamps[self.max_failures - 1] + self.window - now).total_seconds())
        return max(1, int(wait) + 1) if wait > 0 else 0

    async def failed(self, username: str, ip: str, now: datetime | None = None) -> bool:
        """Count a failed attempt; True when it starts a lockout (the limit is reached now)."""
        now = now or datetime.now(UTC)
        keys = _keys(username, ip)
        async with self.db.session() as session:
            await session.exec(delete(models.LoginFailure).where(  # type: ignore[call-overload]
                col(models.LoginFailure.key).in_(keys), col(models.LoginFailure.at) <= now - self.window))
            for key in keys:
                session.add(models.LoginFailure(key=key, at=now))
            await session.commit()
        started = False
        for key in keys:
            started = started or len(await self._recent(key, now)) == self.max_failures
        return started

    async def succeeded(self, username: str) -> None:
        """A successful login resets the username's counter (not the address's)."""
        async with self.db.session() as session:
            await session.exec(delete(models.LoginFailure).where(  # type: ignore[call-overload]
                col(models.LoginFailure.key) == _keys(username, "")[0]))
            await session.commit()


def client_ip(request: Any) -> str:
    """The client address of a request (the direct peer; a proxy must pass the real one through)."""
    client = request.client
    return client.host if client is not None and client.host else "unknown"
