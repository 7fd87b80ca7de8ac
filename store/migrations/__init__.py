"""Alembic migrations of the store (run through :mod:`store.schema`, never with an alembic.ini)."""
