"""Login sessions: the id (``jti``) of every login token issued, kept in the store so that tokens can
be revoked on the server.

A token is honoured only while its row exists and has not expired. Logout deletes the row of its
token; a password reset or a deactivation deletes every row of the user (``end_user_sessions``, in
the administrator's transaction), so re-activating a user brings none of their old tokens back.
Rows past their expiry are deleted whenever a new token is issued: no cron is needed, and the
table holds about one row per login of the last ``token_ttl_hours``.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.db import Database
from store.timeutil import as_utc, utcnow

#: How a session was opened (recorded with it and in the audit of its logout).
VIA = ("web", "api")


async def open_session(
    db: Database, username: str, ttl: timedelta, *, via: str = "web", now: datetime | None = None
) -> models.LoginSession:
    """A new session for ``username`` valid for ``ttl`` (whole seconds, as tokens carry them), with a
    fresh random id; expired sessions of anybody are pruned in the same transaction."""
    now = (now or utcnow()).replace(microsecond=0)
    row = models.LoginSession(jti=secrets.token_urlsafe(24), username=username, issued_at=now,
                              expires_at=now + ttl, via=via if via in VIA else "web")
    async with db.session() as session:
        await session.exec(delete(models.LoginSession).where(  # type: ignore[call-overload]
            col(models.LoginSession.expires_at) <= now))
        session.add(row)
        await session.commit()
    return row


async def session_user(db: Database, jti: str) -> tuple[models.LoginSession, models.User] | None:
    """The session ``jti`` and its user, read together by their primary keys (one query per request),
    or None when the session does not exist."""
    async with db.session() as session:
        found = (await session.exec(
            select(models.LoginSession, models.User)
            .join(models.User, col(models.User.username) == col(models.LoginSession.username))
            .where(models.LoginSession.jti == jti)
        )).first()
    return (found[0], found[1]) if found else None


def is_live(row: models.LoginSession, now: datetime | None = None) -> bool:
    """Whether the session has not yet expired."""
    return as_utc(row.expires_at) > (now or utcnow())


async def end_session(db: Database, jti: str) -> models.LoginSession | None:
    """Revoke one session (logout), audited as ``logout`` by its user with how it was opened (``web``
    or ``api``) in the same transaction; returns it, or None when it did not exist (any more)."""
    async with db.session() as session:
        row = await session.get(models.LoginSession, jti)
        if row is None:
            return None
        await session.delete(row)
        session.add(models.AuditEntry(at=utcnow(), actor=row.username, action="logout", detail=row.via))
        await session.commit()
        return row


async def end_user_sessions(session: AsyncSession, username: str) -> None:
    """Revoke every session of ``username`` within the caller's transaction (password reset,
    deactivation); the caller commits."""
    await session.exec(delete(models.LoginSession).where(  # type: ignore[call-overload]
        col(models.LoginSession.username) == username))


async def user_sessions(db: Database, username: str) -> list[models.LoginSession]:
    """The sessions ``username`` has open (expired ones not yet pruned included), oldest first."""
    async with db.session() as session:
        rows = await session.exec(select(models.LoginSession).where(models.LoginSession.username == username)
                                  .order_by(col(models.LoginSession.issued_at)))
        return list(rows.all())
