"""task.return_by: the end of a handling task's return window (the workflow's mark ``return_by``), kept
so that the pages offer 退回 only while the workflow would accept it (workflows.policy.task_actions).
Tasks projected before have none: their return is offered as before and the workflow decides.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.add_column(sa.Column("return_by", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task") as batch:
        batch.drop_column("return_by")
