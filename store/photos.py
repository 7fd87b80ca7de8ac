"""Records of stored photos (``Photo``): recording an upload, attaching photos to an event and task,
counting anonymous uploads, and the unattached photos that expire. The files themselves are kept
by web/photos.py; this module only touches the table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import col, delete, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.admin_common import audit
from store.db import Database
from store.timeutil import utcnow

#: A photo id: 32 random hex digits and the extension of its format (the file name under data_dir/photos).
PHOTO_ID = re.compile(r"[0-9a-f]{32}\.(jpg|png|webp)")


def is_photo_id(value: object) -> bool:
    """Whether ``value`` has the shape of a photo id (nothing else is ever looked up or opened)."""
    return isinstance(value, str) and PHOTO_ID.fullmatch(value) is not None


async def record(db: Database, photo: models.Photo) -> None:
    """Keep the record of a newly stored photo."""
    async with db.session() as session:
        session.add(photo)
        await session.commit()


async def get(db: Database, photo_id: str) -> models.Photo | None:
    """The record of one photo."""
    async with db.session() as session:
        return await session.get(models.Photo, photo_id)


async def get_many(db: Database, photo_ids: Iterable[str]) -> dict[str, models.Photo]:
    """The records of ``photo_ids`` that exist, by id."""
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        return {}
    async with db.session() as session:
        rows = await session.exec(select(models.Photo).where(col(models.Photo.photo_id).in_(ids)))
        return {row.photo_id: row for row in rows.all()}


async def attach(db: Database, photo_ids: Iterable[str], event_id: str, task_id: str | None = None,
                 now: datetime | None = None) -> None:
    """Attach the still unattached photos among ``photo_ids`` to ``event_id`` (and ``task_id``); a photo
    already attached keeps its first attachment."""
    async with db.session() as session:
        await attach_in(session, photo_ids, event_id, task_id, now)
        await session.commit()


async def attach_in(session: AsyncSession, photo_ids: Iterable[str], event_id: str, task_id: str | None = None,
                    now: datetime | None = None) -> None:
    """:func:`attach` within ``session`` (the caller commits)."""
    ids = list(dict.fromkeys(photo_ids))
    if ids:
        await session.exec(update(models.Photo)  # type: ignore[call-overload]
                           .where(col(models.Photo.photo_id).in_(ids), col(models.Photo.event_id).is_(None))
                           .values(event_id=event_id, task_id=task_id, attached_at=now or utcnow()))


async def anonymous_uploads_since(db: Database, client_ip: str, since: datetime) -> tuple[int, datetime | None]:
    """How many photos were uploaded without a login from ``client_ip`` after ``since``, and the
    oldest of them (when the count goes down again)."""
    async with db.session() as session:
        count, oldest = (await session.exec(
            select(func.count(), func.min(models.Photo.uploaded_at))
            .where(models.Photo.client_ip == client_ip, col(models.Photo.uploaded_at) > since,
                   col(models.Photo.uploaded_by).is_(None)))).one()
        return int(count), oldest


async def unattached_anonymous_bytes(db: Database) -> int:
    """The total size of anonymous photos not attached to any event."""
    async with db.session() as session:
        total = await session.exec(
            select(func.coalesce(func.sum(models.Photo.size), 0))
            .where(col(models.Photo.event_id).is_(None), col(models.Photo.uploaded_by).is_(None)))
        return int(total.one())


async def remove_unattached_before(db: Database, before: datetime, limit: int = 500) -> list[str]:
    """Delete the records of photos uploaded before ``before`` and never attached (at most ``limit``
    of the oldest); returns their ids, so their files can be removed."""
    async with db.session() as session:
        ids = list((await session.exec(
            select(models.Photo.photo_id)
            .where(col(models.Photo.event_id).is_(None), col(models.Photo.uploaded_at) < before)
            .order_by(col(models.Photo.uploaded_at)).limit(limit))).all())
        if not ids:
            return []
        # The event_id condition again: a photo attached meanwhile is kept (and not returned).
        deleted = await session.exec(delete(models.Photo).where(  # type: ignore[call-overload]
            col(models.Photo.photo_id).in_(ids), col(models.Photo.event_id).is_(None))
            .returning(col(models.Photo.photo_id)))
        removed = [str(photo_id) for photo_id in deleted.scalars().all()]
        await session.commit()
        return removed


async def mark_public(db: Database, photo_ids: Iterable[str], event_id: str, task_id: str, actor: str = "") -> int:
    """Mark the photos among ``photo_ids`` attached to ``event_id``'s task ``task_id`` as public (the
    handler chose them for the tracking page when completing); returns how many were marked. Audited
    with ``actor`` (showing a photo to the public is a privacy decision)."""
    ids = list(dict.fromkeys(photo_ids))
    if not ids:
        return 0
    async with db.session() as session:
        result = await session.exec(update(models.Photo)  # type: ignore[call-overload]
                                    .where(col(models.Photo.photo_id).in_(ids), col(models.Photo.event_id) == event_id,
                                           col(models.Photo.task_id) == task_id)
                                    .values(public=True))
        if result.rowcount:
            audit(session, actor or "system", "photo_public", task_id, ",".join(ids))
        await session.commit()
        return int(result.rowcount or 0)


async def public_photos(db: Database, event_id: str) -> list[str]:
    """The ids of ``event_id``'s public photos, oldest first (the tracking page shows them)."""
    async with db.session() as session:
        rows = await session.exec(select(models.Photo.photo_id)
                                  .where(col(models.Photo.event_id) == event_id, col(models.Photo.public).is_(True))
                                  .order_by(col(models.Photo.attached_at), col(models.Photo.photo_id)))
        return list(rows.all())
