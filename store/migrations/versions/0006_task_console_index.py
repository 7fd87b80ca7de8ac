"""An index on task (active, kind, due_key, unit) for the supervisors' console: the overdue, stuck
and triage queues read open tasks of a kind by deadline across many units, and the overdue count
per unit is read from this index alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_task_console", "task", ["active", "kind", "due_key", "unit"])


def downgrade() -> None:
    op.drop_index("ix_task_console", table_name="task")
