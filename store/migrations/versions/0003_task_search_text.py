"""Task search_text (the event's description and address, lower-cased) and ix_task_inbox_category.

The inbox's text search looks in the task row instead of joining every candidate event. Existing
rows are backfilled in Python with the same lower-casing as ``store.models.search_text`` (SQL's
lower() folds only ASCII on SQLite), in keyset batches so a million tasks never sit in memory.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BATCH = 5000


def search_text(description: str, address: str | None) -> str:
    """``store.models.search_text`` when this revision was written."""
    return f"{description}\n{address or ''}".lower()


def _backfill() -> None:
    task = sa.table("task", sa.column("task_id", sa.String()), sa.column("event_id", sa.String()),
                    sa.column("search_text", sa.Text()))
    event = sa.table("event", sa.column("event_id", sa.String()), sa.column("description", sa.Text()),
                     sa.column("address", sa.String()))
    conn = op.get_bind()
    update = task.update().where(task.c.task_id == sa.bindparam("key")).values(search_text=sa.bindparam("text"))
    last = ""
    while True:
        rows = conn.execute(
            sa.select(task.c.task_id, event.c.description, event.c.address)
            .select_from(task.join(event, event.c.event_id == task.c.event_id))
            .where(task.c.task_id > last)
            .order_by(task.c.task_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(update, [{"key": key, "text": search_text(d, a)} for key, d, a in rows])
        last = rows[-1][0]
    # A task without an event row (foreign keys were off in old SQLite files): nothing to search.
    conn.execute(task.update().where(task.c.search_text.is_(None)).values(search_text=""))


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    _backfill()
    with op.batch_alter_table("task") as batch:
        batch.alter_column("search_text", existing_type=sa.Text(), nullable=False)
        batch.create_index("ix_task_inbox_category", ["unit", "active", "category", "due_key", "task_id"])


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_index("ix_task_inbox_category")
        batch.drop_column("search_text")
