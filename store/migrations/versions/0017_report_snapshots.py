"""reportsnapshot: the monthly and annual reports, one row per revision of a period, never changed once
written (store/reports.py; the PeriodReport workflow writes revision 1, a recompute the next). A new
table: nothing to backfill.

Revision ID: 0017
Revises: 0016 (the schemes' revision)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reportsnapshot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=5), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("day_from", sa.Date(), nullable=False),
        sa.Column("day_to", sa.Date(), nullable=False),
        sa.Column("scheme_version", sa.String(length=40), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computed_by", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("period", "revision"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index("ix_reportsnapshot_period", "reportsnapshot", ["period"])


def downgrade() -> None:
    op.drop_index("ix_reportsnapshot_period", table_name="reportsnapshot")
    op.drop_table("reportsnapshot")
