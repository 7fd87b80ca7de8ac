"""Tracking keys and followers on events, and the rate-limit windows of public endpoints.

- event.tracking_key_hash: sha256 of the reporter's tracking key (only the reporter may rate);
  existing events have none (nobody can rate them; the rating window accepts by default).
- event.follower_count: people following the event ("me too").
- ratewindow: requests counted per key and fixed window (web/request_limits.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("tracking_key_hash", sa.String(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("follower_count", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "ratewindow",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", "window_start"),
    )


def downgrade() -> None:
    op.drop_table("ratewindow")
    with op.batch_alter_table("event") as batch:
        batch.drop_column("follower_count")
        batch.drop_column("tracking_key_hash")
