"""The store: SQLModel tables (the read model of events, plus organisation, users and outbox).

SQLite by default, PostgreSQL in production; nothing dialect-specific. May import workflows.types
(the snapshot it projects) but never activities/, rules/ or web/.
"""
