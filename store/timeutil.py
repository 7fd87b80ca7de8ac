"""Time conversions for the store: datetimes are timezone-aware and stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_utc(value: str | None) -> datetime | None:
    """An ISO timestamp as an aware UTC datetime (``None`` stays ``None``; naive means UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def parse_required(value: str) -> datetime:
    """An ISO timestamp that must be present, as an aware UTC datetime."""
    parsed = parse_utc(value)
    if parsed is None:
        raise ValueError("a timestamp is required")
    return parsed


def as_utc(value: datetime) -> datetime:
    """A datetime read from the store as aware UTC (SQLite hands back naive values, meaning UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
