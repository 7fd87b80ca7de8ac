"""API keys per integration and Open311 (issue 12, items 1 and 2): ``apikey`` (named, scoped keys stored
as their sha256), ``open311token`` (tokens answered while an event was not yet routed), and on ``event``
the ``integration`` whose key made it and the report's ``media_url`` (both empty for existing events),
with the index an integration reads its own reports by.

Revision ID: 0018
Revises: 0017 (report snapshots)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apikey",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("prefix"),
    )
    op.create_table(
        "open311token",
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    # Plain ADD COLUMN (nullable, no default): ``event`` is referenced by other tables, and a SQLite
    # batch copy of it would fail on their foreign keys.
    op.add_column("event", sa.Column("integration", sa.String(length=64), nullable=True))
    op.add_column("event", sa.Column("media_url", sa.String(length=500), nullable=True))
    op.create_index("ix_event_integration_created", "event", ["integration", "created_at", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_event_integration_created", table_name="event")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("media_url")
        batch.drop_column("integration")
    op.drop_table("open311token")
    op.drop_table("apikey")
