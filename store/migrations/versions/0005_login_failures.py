"""The loginfailure table: failed logins counted in the store, so that every web process applies
the same login rate limit (web/ratelimit.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loginfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loginfailure_key_at", "loginfailure", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_loginfailure_key_at", table_name="loginfailure")
    op.drop_table("loginfailure")
