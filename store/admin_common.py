"""What keeping the organisation needs everywhere: the refusal (:class:`AdminError`, a catalogue key
with its values and field) and the audit entry written in the same transaction as its change."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.timeutil import utcnow


class AdminError(ValueError):
    """A refused change: ``key`` is a message-catalogue key, ``values`` fill its placeholders and
    ``field`` names the form field at fault (empty when the whole form is)."""

    def __init__(self, key: str, field: str = "", **values: Any) -> None:
        super().__init__(key)
        self.key = key
        self.field = field
        self.values = values


def audit(session: AsyncSession, actor: str, action: str, target: str, detail: str) -> None:
    """An audit entry in the same transaction as the change it records."""
    session.add(models.AuditEntry(at=utcnow(), actor=actor, action=action, target=target, detail=detail))


def changes(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``field: old → new`` for each field that changed."""
    return "; ".join(f"{k}: {before[k]!r} → {after[k]!r}" for k in after if before.get(k) != after[k])
