"""Stored assessment schemes and which one is active; inspection entries (督查记录); cadre ratings.

Schemes are kept like the responsibility list, by store/versions.py: a version is stored once with
its content, one is active, every upload and activation is audited (``AuditEntry``) in the same
transaction. The shipped scheme becomes version one when none is stored (:func:`ensure_default`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from sqlmodel import col, select

from assessment.schemes import DEFAULT_SCHEME_PATH, InvalidScheme, Scheme, parse_text
from store import models
from store.admin_common import audit
from store.db import Database
from store.timeutil import utcnow
from store.versions import Versions

#: Parsed schemes by version (stored versions never change, so a version parses once per process).
_PARSED: dict[str, Scheme] = {}


def parsed(row: models.SchemeVersion) -> Scheme:
    """The stored scheme as a model (it was checked when stored)."""
    if row.version not in _PARSED:
        scheme, problems = parse_text(row.content)
        if scheme is None:
            raise InvalidScheme(problems)
        _PARSED[row.version] = scheme
    return _PARSED[row.version]


SCHEMES: Versions[models.SchemeVersion] = Versions(
    models.SchemeVersion, noun="scheme", action="scheme", detail=lambda row: row.title)


async def active_version(db: Database) -> models.SchemeVersion | None:
    """The active scheme version, if any."""
    return await SCHEMES.active(db)


async def get_version(db: Database, version: str) -> models.SchemeVersion | None:
    """One stored version."""
    return await SCHEMES.get(db, version)


async def list_versions(db: Database) -> list[models.SchemeVersion]:
    """All versions, newest first."""
    return await SCHEMES.all(db)


async def save(db: Database, scheme: Scheme, content: str, actor: str, *, activate: bool) -> models.SchemeVersion:
    """Store a checked scheme (a version is stored once: other content under it is refused with
    ValueError) and, when ``activate``, make it the active one. Audited."""
    new = models.SchemeVersion(version=scheme.version, content=content, title=scheme.title_zh[:100],
                               uploaded_by=actor, uploaded_at=utcnow())
    return await SCHEMES.save(db, new, actor, activate=activate)


async def activate_stored(db: Database, version: str, actor: str) -> models.SchemeVersion:
    """Make a stored version the active one (after an upload, or a rollback). Audited."""
    return await SCHEMES.activate(db, version, actor)


async def ensure_default(db: Database) -> models.SchemeVersion:
    """The active version; the shipped scheme is stored and activated (by ``system``) when no
    version is active yet."""
    row = await active_version(db)
    if row is not None:
        return row
    content = DEFAULT_SCHEME_PATH.read_text(encoding="utf-8")
    scheme, problems = parse_text(content)
    if scheme is None:
        raise InvalidScheme(problems)
    stored = await get_version(db, scheme.version)
    if stored is not None:
        return await activate_stored(db, stored.version, "system")
    return await save(db, scheme, content, "system", activate=True)


async def active_scheme(db: Database) -> Scheme:
    """The active scheme (the shipped one when none was activated)."""
    return parsed(await ensure_default(db))


# ------------------------------------------------------------------ inspection entries


async def add_inspection(db: Database, entry: models.InspectionEntry) -> models.InspectionEntry:
    """Keep an inspection entry (checked by the caller: web/assessment_pages.py), attach its evidence
    photo to it, and audit it."""
    from store import photos

    async with db.session() as session:
        session.add(entry)
        await session.flush()
        if entry.photo_id:
            await photos.attach_in(session, [entry.photo_id], inspection_photo_owner(entry.id or 0))
        audit(session, entry.inspector, "inspection_add", f"{entry.grid}/{entry.duty}",
              f"day={entry.day.isoformat()}, score={entry.score:g}")
        await session.commit()
        await session.refresh(entry)
        return entry


def inspection_photo_owner(entry_id: int) -> str:
    """What an inspection's evidence photo is attached to (``Photo.event_id``: no event has this id)."""
    return f"inspection:{entry_id}"


def inspection_of_photo(owner: str | None) -> int | None:
    """The inspection entry a photo is attached to, from :func:`inspection_photo_owner`."""
    if owner and owner.startswith("inspection:") and owner[11:].isdigit():
        return int(owner[11:])
    return None


async def get_inspection(db: Database, entry_id: int) -> models.InspectionEntry | None:
    """One inspection entry."""
    async with db.session() as session:
        return await session.get(models.InspectionEntry, entry_id)


async def inspections(db: Database, grids: Collection[str] | None, day_from: date, day_to: date,
                      limit: int = 500) -> list[models.InspectionEntry]:
    """Inspection entries of ``grids`` (None: every grid) within the days, newest first."""
    query = select(models.InspectionEntry).where(col(models.InspectionEntry.day) >= day_from,
                                                 col(models.InspectionEntry.day) <= day_to)
    if grids is not None:
        query = query.where(col(models.InspectionEntry.grid).in_(list(grids)))
    query = query.order_by(col(models.InspectionEntry.day).desc(), col(models.InspectionEntry.id).desc()).limit(limit)
    async with db.session() as session:
        return list((await session.exec(query)).all())


# ------------------------------------------------------------------ cadre ratings


async def rate_cadre(db: Database, *, username: str, year: int, side: str, unit: str, score: float, comment: str,
                     actor: str) -> models.CadreRating:
    """Set the rating a street or department gives a cadre for a year (a second rating replaces the
    first; audited with both scores)."""
    now = utcnow()
    async with db.session() as session:
        row = (await session.exec(select(models.CadreRating).where(
            models.CadreRating.username == username, models.CadreRating.year == year,
            models.CadreRating.side == side))).first()
        before = None if row is None else row.score
        if row is None:
            row = models.CadreRating(username=username, year=year, side=side, unit=unit, score=score, comment=comment,
                                     rated_by=actor, rated_at=now)
        else:
            row.unit, row.score, row.comment, row.rated_by, row.rated_at = unit, score, comment, actor, now
        session.add(row)
        audit(session, actor, "cadre_rating", f"{username}/{year}/{side}",
              f"score: {before!r} → {score:g}" if before is not None else f"score={score:g}")
        await session.commit()
        await session.refresh(row)
        return row


async def cadre_ratings(db: Database, year: int) -> list[models.CadreRating]:
    """Every cadre rating of a year."""
    async with db.session() as session:
        rows = await session.exec(select(models.CadreRating).where(models.CadreRating.year == year))
        return list(rows.all())
