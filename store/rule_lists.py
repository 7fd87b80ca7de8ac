"""Stored versions of the responsibility list, and which one is active (kept by store/versions.py,
like the assessment schemes: a version stored once, one active, uploads and activations audited)."""

from __future__ import annotations

from store import models
from store.db import Database
from store.timeutil import utcnow
from store.versions import Versions

LISTS: Versions[models.RuleListVersion] = Versions(
    models.RuleListVersion, noun="list", action="rules", detail=lambda row: f"{row.categories} categories")


async def active_version(db: Database) -> models.RuleListVersion | None:
    """The active list version, if any."""
    return await LISTS.active(db)


async def get_version(db: Database, version: str) -> models.RuleListVersion | None:
    """One stored version."""
    return await LISTS.get(db, version)


async def list_versions(db: Database) -> list[models.RuleListVersion]:
    """All versions, newest first."""
    return await LISTS.all(db)


async def save_and_activate(
    db: Database, version: str, content: str, categories: int, actor: str, *, activate: bool = True
) -> models.RuleListVersion:
    """Store a validated list (a version number can be stored once) and make it the active one."""
    new = models.RuleListVersion(version=version, content=content, categories=categories, uploaded_by=actor,
                                 uploaded_at=utcnow())
    return await LISTS.save(db, new, actor, activate=activate)


async def activate_stored(db: Database, version: str, actor: str) -> models.RuleListVersion:
    """Make an already stored version the active one (an upload first, or a rollback)."""
    return await LISTS.activate(db, version, actor)
