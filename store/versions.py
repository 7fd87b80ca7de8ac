"""Stored versions of a document that administrators upload, check and activate: the
responsibility list (``RuleListVersion``, store/rule_lists.py) and the assessment schemes
(``SchemeVersion``, store/schemes.py).

One way for both: a version is stored once with its content (other content under a stored version
is refused: a document is changed by giving it a new version), exactly one is active, and every
upload and every activation is audited (``AuditEntry``) in the transaction that makes it. What a
document is and how it is checked stays with its own module; this one only keeps the versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from sqlmodel import col, select, update

from store.admin_common import audit
from store.db import Database
from store.timeutil import utcnow


class VersionRow(Protocol):
    """The columns every stored version has."""

    version: str
    content: str
    active: bool
    uploaded_by: str
    uploaded_at: datetime
    activated_by: str | None
    activated_at: datetime | None


Row = TypeVar("Row", bound=VersionRow)


@dataclass(frozen=True)
class Versions(Generic[Row]):
    """The stored versions of one kind of document.

    ``model`` is its table; ``noun`` names it in refusals ("list", "scheme"); ``action`` prefixes its
    audit actions (``<action>_upload``, ``<action>_activate``); ``detail`` gives an audit entry's
    detail for a row (e.g. "165 categories", the scheme's title)."""

    model: type[Row]
    noun: str
    action: str
    detail: Callable[[Row], str]

    async def active(self, db: Database) -> Row | None:
        """The active version, if any."""
        table: Any = self.model
        async with db.session() as session:
            return (await session.exec(select(table).where(table.active == True))).first()  # noqa: E712

    async def get(self, db: Database, version: str) -> Row | None:
        """One stored version."""
        async with db.session() as session:
            return await session.get(self.model, version)

    async def all(self, db: Database) -> list[Row]:
        """Every stored version, newest first."""
        table: Any = self.model
        async with db.session() as session:
            return list((await session.exec(select(table).order_by(col(table.uploaded_at).desc()))).all())

    async def save(self, db: Database, new: Row, actor: str, *, activate: bool) -> Row:
        """Store ``new`` (a checked document; its version stored once: other content under it is
        refused with ValueError) and, when ``activate``, make it the active one. An upload of stored
        content changes nothing; activating the active version records nothing."""
        async with db.session() as session:
            row = await session.get(self.model, new.version)
            if row is None:
                row = new
                row.uploaded_by, row.uploaded_at = actor, utcnow()
                audit(session, actor, f"{self.action}_upload", row.version, self.detail(row))
            elif row.content != new.content:
                raise ValueError(f"version {new.version} already exists with other content; give the "
                                 f"{self.noun} a new version")
            if activate and not row.active:
                await self._activate(session, row, actor)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def activate(self, db: Database, version: str, actor: str) -> Row:
        """Make a stored version the active one (after an upload, or a rollback)."""
        async with db.session() as session:
            row = await session.get(self.model, version)
            if row is None:
                raise LookupError(f"{self.noun} version {version} is not stored")
            await self._activate(session, row, actor)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def _activate(self, session: Any, row: Row, actor: str) -> None:
        await session.exec(update(self.model).values(active=False))
        row.active, row.activated_at, row.activated_by = True, utcnow(), actor
        audit(session, actor, f"{self.action}_activate", row.version, self.detail(row))
