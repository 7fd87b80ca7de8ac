"""Stored versions of the responsibility list, and which one is active."""

from __future__ import annotations

from sqlmodel import col, select, update

from store import models
from store.db import Database
from store.timeutil import utcnow


async def active_version(db: Database) -> models.RuleListVersion | None:
    """The active list version, if any."""
    async with db.session() as session:
        return (
            await session.exec(select(models.RuleListVersion).where(models.RuleListVersion.active == True))  # noqa: E712
        ).first()


async def get_version(db: Database, version: str) -> models.RuleListVersion | None:
    """One stored version."""
    async with db.session() as session:
        return await session.get(models.RuleListVersion, version)


async def list_versions(db: Database) -> list[models.RuleListVersion]:
    """All versions, newest first."""
    async with db.session() as session:
        query = select(models.RuleListVersion).order_by(col(models.RuleListVersion.uploaded_at).desc())
        rows = await session.exec(query)
        return list(rows.all())


async def save_and_activate(
    db: Database, version: str, content: str, categories: int, actor: str, *, activate: bool = True
) -> models.RuleListVersion:
    """Store a validated list (a version number can be stored once) and make it the active one."""
    now = utcnow()
    async with db.session() as session:
        row = await session.get(models.RuleListVersion, version)
        if row is None:
            row = models.RuleListVersion(
                version=version, content=content, categories=categories, uploaded_by=actor, uploaded_at=now
            )
        elif row.content != content:
            raise ValueError(f"version {version} already exists with other content; give the list a new version")
        if activate:
            await session.exec(update(models.RuleListVersion).values(active=False))  # type: ignore[call-overload]
            row.active = True
            row.activated_at = now
            row.activated_by = actor
        session.add(row)
        session.add(models.AuditEntry(at=now, actor=actor, action="rules_activate" if activate else "rules_upload",
                                      target=version, detail=f"{categories} categories"))
        await session.commit()
        return row


async def activate_stored(db: Database, version: str, actor: str) -> models.RuleListVersion:
    """Make an already stored version the active one (an upload first, or a rollback)."""
    async with db.session() as session:
        row = await session.get(models.RuleListVersion, version)
        if row is None:
            raise LookupError(f"list version {version} is not stored")
        now = utcnow()
        await session.exec(update(models.RuleListVersion).values(active=False))  # type: ignore[call-overload]
        row.active, row.activated_at, row.activated_by = True, now, actor
        session.add(row)
        session.add(models.AuditEntry(at=now, actor=actor, action="rules_activate", target=version,
                                      detail=f"{row.categories} categories"))
        await session.commit()
        return row
