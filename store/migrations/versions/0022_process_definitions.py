"""Processes beyond problem events (issue 14): ``processversion`` (stored process definitions, one
active version per kind), ``processinstance`` and ``processtask`` (instances and their tasks as their
workflows project them), ``processcredit`` (what completed tasks earned people: hours, adoptions,
services).

Revision ID: 0022
Revises: 0021 (merges and occurrences)
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "processversion",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", "version"),
    )
    op.create_table(
        "processinstance",
        sa.Column("instance_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("requester", sa.String(length=100), nullable=False),
        sa.Column("grid", sa.String(length=32), nullable=False),
        sa.Column("community", sa.String(length=32), nullable=False),
        sa.Column("street", sa.String(length=32), nullable=False),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("access_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.create_index("ix_processinstance_kind_created", "processinstance", ["kind", "created_at"])
    op.create_index("ix_processinstance_community", "processinstance", ["community"])
    op.create_table(
        "processtask",
        sa.Column("task_id", sa.String(length=220), nullable=False),
        sa.Column("instance_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("task_kind", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("person", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("signed_up", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_processtask_instance_id", "processtask", ["instance_id"])
    op.create_index("ix_processtask_person", "processtask", ["person"])
    op.create_index("ix_processtask_unit_status", "processtask", ["unit", "status"])
    op.create_index("ix_processtask_status_due", "processtask", ["status", "due_at"])
    op.create_table(
        "processcredit",
        sa.Column("task_id", sa.String(length=220), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("credit", sa.String(length=40), nullable=False),
        sa.Column("instance_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("team", sa.String(length=40), nullable=False),
        sa.Column("community", sa.String(length=32), nullable=False),
        sa.Column("street", sa.String(length=32), nullable=False),
        sa.Column("credited_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "subject", "credit"),
    )
    op.create_index("ix_processcredit_instance_id", "processcredit", ["instance_id"])


def downgrade() -> None:
    op.drop_index("ix_processcredit_instance_id", table_name="processcredit")
    op.drop_table("processcredit")
    for name in ("ix_processtask_status_due", "ix_processtask_unit_status", "ix_processtask_person",
                 "ix_processtask_instance_id"):
        op.drop_index(name, table_name="processtask")
    op.drop_table("processtask")
    op.drop_index("ix_processinstance_community", table_name="processinstance")
    op.drop_index("ix_processinstance_kind_created", table_name="processinstance")
    op.drop_table("processinstance")
    op.drop_table("processversion")
