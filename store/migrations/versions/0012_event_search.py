"""The supervisors' event search: event search_text and indexes read newest first.

``event.search_text`` (description and address, lower-cased as ``store.models.search_text``) is
what the search's text filter looks in; existing rows are backfilled in Python in keyset batches
(SQL's lower() folds only ASCII on SQLite), as 0003 did for tasks. The single-column indexes on
category, street, state and unit give way to composites that end with (created_at, event_id), the
search's order: each serves its equality filter as before and also the newest-first order.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 5000
#: (name, columns) of the indexes this revision adds.
INDEXES = (
    ("ix_event_created", ["created_at", "event_id"]),
    ("ix_event_street_created", ["street", "created_at", "event_id"]),
    ("ix_event_unit_created", ["unit", "created_at", "event_id"]),
    ("ix_event_category_created", ["category", "created_at", "event_id"]),
    ("ix_event_state_created", ["state", "created_at", "event_id"]),
)
#: The single-column indexes they replace.
REPLACED = (("ix_event_category", "category"), ("ix_event_street", "street"), ("ix_event_state", "state"),
            ("ix_event_unit", "unit"))


def search_text(description: str, address: str | None) -> str:
    """``store.models.search_text`` when this revision was written."""
    return f"{description}\n{address or ''}".lower()


def _backfill() -> None:
    event = sa.table("event", sa.column("event_id", sa.String()), sa.column("description", sa.Text()),
                     sa.column("address", sa.String()), sa.column("search_text", sa.Text()))
    conn = op.get_bind()
    update = event.update().where(event.c.event_id == sa.bindparam("key")).values(search_text=sa.bindparam("text"))
    last = ""
    while True:
        rows = conn.execute(
            sa.select(event.c.event_id, event.c.description, event.c.address)
            .where(event.c.event_id > last).order_by(event.c.event_id).limit(BATCH)
        ).all()
        if not rows:
            break
        conn.execute(update, [{"key": key, "text": search_text(d or "", a)} for key, d, a in rows])
        last = rows[-1][0]


def upgrade() -> None:
    # NOT NULL with a server default, like 0008: SQLite adds such a column in place (a batch copy of
    # the table would trip over the tasks' foreign keys to it).
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    _backfill()
    for name, _ in REPLACED:
        op.drop_index(name, table_name="event")
    for name, columns in INDEXES:
        op.create_index(name, "event", columns)


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name="event")
    for name, column in REPLACED:
        op.create_index(name, "event", [column])
    with op.batch_alter_table("event") as batch:
        batch.drop_column("search_text")
