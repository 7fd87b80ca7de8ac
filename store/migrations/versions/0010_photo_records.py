"""The photo table: a record of each stored photo (uploader or anonymous client address, time, size,
the event and task it is attached to), so photos are served within the event's scope, ``complete``
takes only the user's own uploads, and anonymous uploads are counted, capped and expire (web/photos.py).

Photos stored before this revision are recorded from what refers to them: report photos
(``reportphoto``) attached to their event, completion photos (``task.photos``) to their event and
task, as uploaded by nobody known (their size is not known to a migration: 0). An id referred to
twice (the same bytes, formerly named by their hash) keeps its first reference.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: The shape of a photo id when this revision was written (32 hex digits and the extension).
PHOTO_ID = re.compile(r"^[0-9a-f]{32}\.(jpg|png|webp)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
BATCH = 500


def _backfill() -> None:
    bind = op.get_bind()
    dt = sa.DateTime(timezone=True)
    photo = sa.table(
        "photo", sa.column("photo_id", sa.String()), sa.column("uploaded_by", sa.String()),
        sa.column("client_ip", sa.String()), sa.column("uploaded_at", dt), sa.column("size", sa.Integer()),
        sa.column("media_type", sa.String()), sa.column("event_id", sa.String()), sa.column("task_id", sa.String()),
        sa.column("attached_at", dt),
    )
    reportphoto = sa.table("reportphoto", sa.column("id", sa.Integer()), sa.column("event_id", sa.String()),
                           sa.column("photo_id", sa.String()))
    event = sa.table("event", sa.column("event_id", sa.String()), sa.column("created_at", dt))
    task = sa.table("task", sa.column("task_id", sa.String()), sa.column("event_id", sa.String()),
                    sa.column("photos", sa.JSON()), sa.column("completed_at", dt), sa.column("created_at", dt))
    now = datetime.now(UTC)
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []

    def keep(photo_id: object, event_id: str, task_id: str | None, at: datetime | None) -> None:
        if not isinstance(photo_id, str) or not PHOTO_ID.match(photo_id) or photo_id in seen:
            return
        seen.add(photo_id)
        rows.append({"photo_id": photo_id, "uploaded_by": None, "client_ip": "", "uploaded_at": at or now,
                     "size": 0, "media_type": MEDIA_TYPES[photo_id.rsplit(".", 1)[1]], "event_id": event_id,
                     "task_id": task_id, "attached_at": at or now})
        if len(rows) >= BATCH:
            bind.execute(photo.insert(), rows)
            rows.clear()

    created = sa.select(event.c.created_at).where(event.c.event_id == reportphoto.c.event_id).scalar_subquery()
    for photo_id, event_id, at in bind.execute(
            sa.select(reportphoto.c.photo_id, reportphoto.c.event_id, created).order_by(reportphoto.c.id)):
        keep(photo_id, event_id, None, at)
    # Only tasks with photos ('[]' is what the projection writes for none).
    with_photos = sa.cast(task.c.photos, sa.Text()) != "[]"
    for task_id, event_id, photos, completed_at, created_at in bind.execute(
            sa.select(task.c.task_id, task.c.event_id, task.c.photos, task.c.completed_at, task.c.created_at)
            .where(with_photos).order_by(task.c.created_at, task.c.task_id)):
        if isinstance(photos, str):
            photos = json.loads(photos)
        for photo_id in photos or []:
            keep(photo_id, event_id, task_id, completed_at or created_at)
    if rows:
        bind.execute(photo.insert(), rows)


def upgrade() -> None:
    op.create_table(
        "photo",
        sa.Column("photo_id", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=True),
        sa.Column("client_ip", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=True),
        sa.Column("task_id", sa.String(length=220), nullable=True),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("photo_id"),
    )
    op.create_index("ix_photo_client_ip_uploaded_at", "photo", ["client_ip", "uploaded_at"])
    op.create_index("ix_photo_event_id_uploaded_at", "photo", ["event_id", "uploaded_at"])
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_photo_event_id_uploaded_at", table_name="photo")
    op.drop_index("ix_photo_client_ip_uploaded_at", table_name="photo")
    op.drop_table("photo")
