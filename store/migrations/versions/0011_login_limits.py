"""loginfailure by kind, username and address: the login limits lock a (username, address) pair and
an address, and slow a username down across addresses (web/ratelimit.py), each reset or lifted on its
own.

The old rows (keys ``user:<name>`` / ``ip:<address>``) are dropped with the old table: they are
counters of the last ten minutes, not records (failed logins stay in the audit trail).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_loginfailure_key_at", table_name="loginfailure")
    op.drop_table("loginfailure")
    op.create_table(
        "loginfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loginfailure_kind_username", "loginfailure", ["kind", "username", "address", "at"])
    op.create_index("ix_loginfailure_kind_address", "loginfailure", ["kind", "address", "at"])
    op.create_index("ix_loginfailure_at", "loginfailure", ["at"])


def downgrade() -> None:
    op.drop_index("ix_loginfailure_at", table_name="loginfailure")
    op.drop_index("ix_loginfailure_kind_address", table_name="loginfailure")
    op.drop_index("ix_loginfailure_kind_username", table_name="loginfailure")
    op.drop_table("loginfailure")
    op.create_table(
        "loginfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loginfailure_key_at", "loginfailure", ["key", "at"])
