"""Users and passwords (argon2 hashes) and the audit trail of non-event actions."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import select

from store import models
from store.db import Database
from store.timeutil import utcnow
from workflows.policy import STAFF_ROLES
from workflows.policy import SUPERVISOR_ROLES as SUPERVISOR_ROLES

_hasher = PasswordHasher()

#: Roles, from the most local to the widest scope, and those that supervise: the rules' (``workflows.policy``).
ROLES = STAFF_ROLES


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def get_user(db: Database, username: str) -> models.User | None:
    """The user named ``username``, if any."""
    async with db.session() as session:
        return await session.get(models.User, username)


async def authenticate(db: Database, username: str, password: str) -> models.User | None:
    """The active user whose password matches, else None (the same answer for both failures)."""
    user = await get_user(db, username)
    if user is None or not user.active:
        verify_password(_DUMMY_HASH, password)  # same cost either way: no user enumeration by timing
        return None
    return user if verify_password(user.password_hash, password) else None


async def audit(db: Database, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """Record an action that is not part of an event's timeline."""
    async with db.session() as session:
        session.add(models.AuditEntry(at=utcnow(), actor=actor, action=action, target=target, detail=detail))
        await session.commit()


async def users_with_password(db: Database, passwords: tuple[str, ...]) -> list[str]:
    """Usernames of active users whose password is one of ``passwords`` (to refuse demo passwords)."""
    async with db.session() as session:
        users = (await session.exec(select(models.User).where(models.User.active == True))).all()  # noqa: E712
    # Verify each distinct hash once (demo users share theirs), off the event loop: argon2 is slow on purpose.
    verdict: dict[str, bool] = {}
    for user in users:
        if user.password_hash not in verdict:
            verdict[user.password_hash] = await asyncio.to_thread(_matches_any, user.password_hash, passwords)
    return [u.username for u in users if verdict[u.password_hash]]


def _matches_any(password_hash: str, passwords: tuple[str, ...]) -> bool:
    return any(verify_password(password_hash, p) for p in passwords)


_DUMMY_HASH = _hasher.hash("not-a-real-password")
