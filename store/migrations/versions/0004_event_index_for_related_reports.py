"""An index on event (grid, category, created_at): the repeat count of routing and the related
reports of the event page both look up the same grid and category by time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_event_grid_category_created", "event", ["grid", "category", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_event_grid_category_created", table_name="event")
