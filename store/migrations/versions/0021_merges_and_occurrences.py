"""Duplicates (issue 12, item 4): ``event.occurrences`` (camera alarms an event stands for),
``event.merged_into`` and ``event.merge_undo_by`` (a duplicate merged into a primary, until when the
merge may be undone), ``event.merged_count`` (duplicates merged into a primary), and ``cameraclaim``
(the open event of each camera and category).

Revision ID: 0021
Revises: 0020 (photo.public)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (tasks and notices refer to ``event``: a SQLite batch would copy the table).
    op.add_column("event", sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1"))
    op.add_column("event", sa.Column("merged_into", sa.String(length=200), nullable=True))
    op.add_column("event", sa.Column("merge_undo_by", sa.DateTime(timezone=True), nullable=True))
    op.add_column("event", sa.Column("merged_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "cameraclaim",
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("camera", "category"),
    )


def downgrade() -> None:
    op.drop_table("cameraclaim")
    for column in ("merged_count", "merge_undo_by", "merged_into", "occurrences"):
        op.drop_column("event", column)
