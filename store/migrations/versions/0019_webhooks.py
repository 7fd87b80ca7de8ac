"""webhooksubscription, webhookdelivery: outbound webhooks (issue 12, item 3). The subscriptions of
integrations and the outbox of their deliveries, one row per (subscription, change), written by the
projection in the event's transaction (store/webhooks.py). New tables: nothing to backfill.

Revision ID: 0019
Revises: 0018 (API keys)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhooksubscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("integration", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("secret_nonce", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhooksubscription_integration", "webhooksubscription", ["integration"])
    op.create_table(
        "webhookdelivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("change_id", sa.String(length=220), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replays", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["subscription_id"], ["webhooksubscription.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscription_id", "change_id"),
    )
    op.create_index("ix_webhookdelivery_event_id", "webhookdelivery", ["event_id"])
    op.create_index("ix_webhookdelivery_queue", "webhookdelivery", ["subscription_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_webhookdelivery_queue", table_name="webhookdelivery")
    op.drop_index("ix_webhookdelivery_event_id", table_name="webhookdelivery")
    op.drop_table("webhookdelivery")
    op.drop_index("ix_webhooksubscription_integration", table_name="webhooksubscription")
    op.drop_table("webhooksubscription")
