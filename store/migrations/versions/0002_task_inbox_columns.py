"""Task inbox columns: active, due_key, priority, category, tier, source, and the inbox indexes.

Commit 067d6d9 denormalised these onto the task so each inbox view is one in-order index range.
Existing rows are backfilled: active = status is open or claimed; due_key = due_at, or
9999-12-31 00:00 UTC for a task without a deadline (bound through the same DateTime type the app
writes with, so SQLite gets the same text format and PostgreSQL a timestamptz); priority, category,
tier and source from the task's event.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: ``store.models.NO_DUE`` when this revision was written (a revision must not follow later changes).
NO_DUE = datetime(9999, 12, 31, tzinfo=UTC)
ACTIVE_TASK_STATUSES = ("open", "claimed")

OLD_INDEXES = {
    "ix_task_unit_status_due": ["unit", "status", "due_at", "task_id"],
    "ix_task_unit_status_created": ["unit", "status", "created_at", "task_id"],
    "ix_task_claimed_by_status_due": ["claimed_by", "status", "due_at"],
    "ix_task_assignee_status_due": ["assignee", "status", "due_at"],
}
NEW_INDEXES = {
    "ix_task_inbox_due": ["unit", "active", "due_key", "task_id"],
    "ix_task_inbox_priority": ["unit", "active", "priority", "due_key", "task_id"],
    "ix_task_claimed_by_active_due": ["claimed_by", "active", "due_key", "task_id"],
    "ix_task_assignee_active_due": ["assignee", "active", "due_key", "task_id"],
}
#: The new columns and their types; added NULL-able, backfilled, then NOT NULL (all but ``tier``).
NEW_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "active": sa.Boolean(),
    "due_key": sa.DateTime(timezone=True),
    "priority": sa.Integer(),
    "category": sa.String(length=32),
    "tier": sa.String(length=20),
    "source": sa.String(length=32),
}
NULLABLE = {"tier"}


def _backfill() -> None:
    task = sa.table(
        "task",
        sa.column("event_id", sa.String()),
        sa.column("status", sa.String()),
        sa.column("due_at", sa.DateTime(timezone=True)),
        sa.column("active", sa.Boolean()),
        sa.column("due_key", sa.DateTime(timezone=True)),
        sa.column("priority", sa.Integer()),
        sa.column("category", sa.String()),
        sa.column("tier", sa.String()),
        sa.column("source", sa.String()),
    )
    event = sa.table(
        "event",
        sa.column("event_id", sa.String()),
        sa.column("priority", sa.Integer()),
        sa.column("category", sa.String()),
        sa.column("tier", sa.String()),
        sa.column("source", sa.String()),
    )

    def of_event(name: str) -> sa.ScalarSelect[object]:
        return sa.select(event.c[name]).where(event.c.event_id == task.c.event_id).scalar_subquery()

    no_due = sa.bindparam("no_due", NO_DUE, type_=sa.DateTime(timezone=True))
    op.execute(
        task.update().values(
            active=task.c.status.in_(ACTIVE_TASK_STATUSES),
            due_key=sa.func.coalesce(task.c.due_at, no_due),
            # The model's defaults where a task has no event row (foreign keys are off in old SQLite files).
            priority=sa.func.coalesce(of_event("priority"), 3),
            category=sa.func.coalesce(of_event("category"), ""),
            tier=of_event("tier"),
            source=sa.func.coalesce(of_event("source"), ""),
        )
    )


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        for name in OLD_INDEXES:
            batch.drop_index(name)
        for name, type_ in NEW_COLUMNS.items():
            batch.add_column(sa.Column(name, type_, nullable=True))
    _backfill()
    with op.batch_alter_table("task") as batch:
        for name, type_ in NEW_COLUMNS.items():
            if name not in NULLABLE:
                batch.alter_column(name, existing_type=type_, nullable=False)
        for name, columns in NEW_INDEXES.items():
            batch.create_index(name, columns)


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        for name in NEW_INDEXES:
            batch.drop_index(name)
        for name in reversed(NEW_COLUMNS):
            batch.drop_column(name)
        for name, columns in OLD_INDEXES.items():
            batch.create_index(name, columns)
