"""idempotencykey: reports submitted with a one-time key (the report form's hidden key, the API's
``Idempotency-Key`` header), claimed before their workflow starts, so that a repeated submission within
24 hours gets the first answer and never a second event (store/idempotency.py). A new table: nothing to
backfill.

Revision ID: 0013
Revises: 0012 (re-chained after the event search's 0012, written in parallel)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotencykey",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("receipt_code", sa.String(length=16), nullable=False),
        sa.Column("tracking_nonce", sa.String(length=64), nullable=False),
        sa.Column("tracking_key_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_idempotencykey_created_at", "idempotencykey", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotencykey_created_at", table_name="idempotencykey")
    op.drop_table("idempotencykey")
