"""Assessment schemes (issue 11, item 3): ``schemeversion`` (stored schemes, one active),
``inspectionentry`` (督查记录: a supervisor's check of a grid duty, its finding, score and evidence
photo), ``cadrerating`` (a street's or home department's yearly rating of a dispatched cadre), and
``user.party_member`` (party members get the pioneer index; existing users are not members).

Revision ID: 0016
Revises: 0015 (the assessment core)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schemeversion",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "inspectionentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grid", sa.String(length=32), nullable=False),
        sa.Column("duty", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("finding", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("photo_id", sa.String(length=64), nullable=True),
        sa.Column("scheme_version", sa.String(length=40), nullable=False),
        sa.Column("inspector", sa.String(length=64), nullable=False),
        sa.Column("inspector_unit", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["grid"], ["unit.code"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inspection_day", "inspectionentry", ["day", "grid"])
    op.create_index("ix_inspection_grid_day", "inspectionentry", ["grid", "day"])
    op.create_table(
        "cadrerating",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=12), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(length=500), nullable=False),
        sa.Column("rated_by", sa.String(length=64), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["user.username"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username", "year", "side"),
    )
    # A plain ADD COLUMN, not a batch: on SQLite a batch with this default (an expression) copies
    # the table, and dropping the old ``user`` fails while login sessions refer to it.
    op.add_column("user", sa.Column("party_member", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("user", "party_member")  # DROP COLUMN (SQLite 3.35 and later), for the same reason
    op.drop_table("cadrerating")
    op.drop_index("ix_inspection_grid_day", table_name="inspectionentry")
    op.drop_index("ix_inspection_day", table_name="inspectionentry")
    op.drop_table("inspectionentry")
    op.drop_table("schemeversion")
