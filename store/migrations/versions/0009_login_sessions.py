"""The loginsession table: every issued login token by its id (jti), so that logout, a password reset
and a deactivation revoke tokens on the server (web/auth.py, store/sessions.py).

Tokens issued before this revision carry no jti and are refused from now on: everybody logs in once
more after the upgrade.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loginsession",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["username"], ["user.username"]),
        sa.PrimaryKeyConstraint("jti"),
    )
    op.create_index("ix_loginsession_username", "loginsession", ["username"])
    op.create_index("ix_loginsession_expires_at", "loginsession", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_loginsession_expires_at", table_name="loginsession")
    op.drop_index("ix_loginsession_username", table_name="loginsession")
    op.drop_table("loginsession")
