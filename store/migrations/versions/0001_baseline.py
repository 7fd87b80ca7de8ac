"""Baseline: the schema before migrations (as of commit 20e37f0, made by ``create_all``).

A database made by ``create_all`` of an older checkout has no version table; ``store.schema.upgrade``
stamps it at this revision and upgrades it from here.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auditentry_at", "auditentry", ["at"])

    op.create_table(
        "event",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("receipt_code", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("category_name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("grid", sa.String(length=32), nullable=True),
        sa.Column("community", sa.String(length=32), nullable=True),
        sa.Column("street", sa.String(length=32), nullable=True),
        sa.Column("reporter_name", sa.String(length=100), nullable=False),
        sa.Column("reporter_phone", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("department", sa.String(length=32), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("pending", sa.String(length=16), nullable=True),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("returned_count", sa.Integer(), nullable=False),
        sa.Column("escalated_count", sa.Integer(), nullable=False),
        sa.Column("rating", sa.String(length=32), nullable=True),
        sa.Column("rating_comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
        sa.UniqueConstraint("receipt_code"),
    )
    op.create_index("ix_event_category", "event", ["category"])
    op.create_index("ix_event_grid", "event", ["grid"])
    op.create_index("ix_event_pending", "event", ["pending"])
    op.create_index("ix_event_state", "event", ["state"])
    op.create_index("ix_event_street", "event", ["street"])
    op.create_index("ix_event_unit", "event", ["unit"])

    op.create_table(
        "notice",
        sa.Column("notice_id", sa.String(length=220), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("recipient", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("notice_id"),
    )
    op.create_index("ix_notice_event_id", "notice", ["event_id"])
    op.create_index("ix_notice_status", "notice", ["status"])

    op.create_table(
        "reportphoto",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("photo_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_reportphoto_event_id", "reportphoto", ["event_id"])

    op.create_table(
        "rulelistversion",
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("categories", sa.Integer(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_index("ix_rulelistversion_active", "rulelistversion", ["active"])

    op.create_table(
        "savedfilter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("query", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_savedfilter_username_created", "savedfilter", ["username", "created_at"])

    op.create_table(
        "supervisionwarning",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.String(length=220), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "seq"),
    )
    op.create_index("ix_supervisionwarning_event_id", "supervisionwarning", ["event_id"])
    op.create_index("ix_supervisionwarning_kind", "supervisionwarning", ["kind"])
    op.create_index("ix_supervisionwarning_unit", "supervisionwarning", ["unit"])

    op.create_table(
        "unit",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("parent", sa.String(length=32), nullable=True),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("address_keywords", sa.JSON(), nullable=False),
        sa.Column("stationed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("code"),
    )
    op.create_index("ix_unit_kind", "unit", ["kind"])
    op.create_index("ix_unit_parent", "unit", ["parent"])

    op.create_table(
        "task",
        sa.Column("task_id", sa.String(length=220), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("assignee", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("extension_hours", sa.Integer(), nullable=False),
        sa.Column("photos", sa.JSON(), nullable=False),
        sa.Column("parent", sa.String(length=220), nullable=True),
        sa.Column("overdue_level", sa.String(length=8), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["event.event_id"]),
        sa.PrimaryKeyConstraint("task_id"),
    )
    op.create_index("ix_task_assignee_status_due", "task", ["assignee", "status", "due_at"])
    op.create_index("ix_task_claimed_by_status_due", "task", ["claimed_by", "status", "due_at"])
    op.create_index("ix_task_event_id", "task", ["event_id"])
    op.create_index("ix_task_unit_status_completed", "task", ["unit", "status", "completed_at", "task_id"])
    op.create_index("ix_task_unit_status_created", "task", ["unit", "status", "created_at", "task_id"])
    op.create_index("ix_task_unit_status_due", "task", ["unit", "status", "due_at", "task_id"])

    op.create_table(
        "timelineentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor_name", sa.String(length=100), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.event_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "seq"),
    )
    op.create_index("ix_timelineentry_event_id", "timelineentry", ["event_id"])

    op.create_table(
        "user",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("stationed_street", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["unit"], ["unit.code"]),
        sa.PrimaryKeyConstraint("username"),
    )
    op.create_index("ix_user_unit", "user", ["unit"])


def downgrade() -> None:
    op.drop_table("user")
    op.drop_table("timelineentry")
    op.drop_table("task")
    op.drop_table("unit")
    op.drop_table("supervisionwarning")
    op.drop_table("savedfilter")
    op.drop_table("rulelistversion")
    op.drop_table("reportphoto")
    op.drop_table("notice")
    op.drop_table("event")
    op.drop_table("auditentry")
