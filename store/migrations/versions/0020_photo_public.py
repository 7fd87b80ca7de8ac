"""``photo.public``: a photo of a handling result that its handler marked for the tracking page
(issue 12, item 7). Existing photos are not public.

Revision ID: 0020
Revises: 0019 (outbound webhooks)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (no batch copy of the table on SQLite).
    op.add_column("photo", sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("photo", "public")
