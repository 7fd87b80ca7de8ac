"""Stored versions of a document that administrators upload, check and activate: the
responsibility list (``RuleListVersion``, store/rule_lists.py) and the assessment schemes
(``SchemeVersion``, store/schemes.py), and the process definitions (``ProcessVersion``,
store/process_versions.py), which are kept per kind: one active version of each.

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
    detail for a row (e.g. "165 categories", the scheme's title). ``group`` names the column that
    divides the documents into kinds, each with its own versions and its own active one (the
    process definitions' ``kind``); without it there is one kind. Every method takes the kind as
    ``kind`` (ignored without a ``group``)."""

    model: type[Row]
    noun: str
    action: str
    detail: Callable[[Row], str]
    group: str | None = None

    def _where(self, query: Any, kind: str | None) -> Any:
        return query if self.group is None else query.where(getattr(self.model, self.group) == kind)

    def _target(self, row: Row) -> str:
        return row.version if self.group is None else f"{getattr(row, self.group)}/{row.version}"

    async def active(self, db: Database, kind: str | None = None) -> Row | None:
        """The active version, if any."""
        table: Any = self.model
        async with db.session() as session:
            query = self._where(select(table).where(table.active == True), kind)  # noqa: E712
            return (await session.exec(query)).first()

    async def get(self, db: Database, version: str, kind: str | None = None) -> Row | None:
        """One stored version."""
        async with db.session() as session:
            return await self._get(session, version, kind)

    async def _get(self, session: Any, version: str, kind: str | None) -> Row | None:
        table: Any = self.model
        row: Row | None = (await session.exec(self._where(select(table).where(table.version == version),
                                                          kind))).first()
        return row

    async def all(self, db: Database, kind: str | None = None) -> list[Row]:
        """Every stored version, newest first (of ``kind``; of every kind when it is None)."""
        table: Any = self.model
        query = select(table) if kind is None else self._where(select(table), kind)
        async with db.session() as session:
            return list((await session.exec(query.order_by(col(table.uploaded_at).desc()))).all())

    async def save(self, db: Database, new: Row, actor: str, *, activate: bool) -> Row:
        """Store ``new`` (a checked document; its version stored once: other content under it is
        refused with ValueError) and, when ``activate``, make it the active one. An upload of stored
        content changes nothing; activating the active version records nothing."""
        kind = None if self.group is None else getattr(new, self.group)
        async with db.session() as session:
            row = await self._get(session, new.version, kind)
            if row is None:
                row = new
                row.uploaded_by, row.uploaded_at = actor, utcnow()
                audit(session, actor, f"{self.action}_upload", self._target(row), self.detail(row))
            elif row.content != new.content:
                raise ValueError(f"version {new.version} already exists with other content; give the "
                                 f"{self.noun} a new version")
            if activate and not row.active:
                await self._activate(session, row, actor)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def activate(self, db: Database, version: str, actor: str, kind: str | None = None) -> Row:
        """Make a stored version the active one (after an upload, or a rollback)."""
        async with db.session() as session:
            row = await self._get(session, version, kind)
            if row is None:
                raise LookupError(f"{self.noun} version {version} is not stored")
            await self._activate(session, row, actor)
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def _activate(self, session: Any, row: Row, actor: str) -> None:
        others = update(self.model)
        if self.group is not None:
            others = others.where(getattr(self.model, self.group) == getattr(row, self.group))
        await session.exec(others.values(active=False))
        row.active, row.activated_at, row.activated_by = True, utcnow(), actor
        audit(session, actor, f"{self.action}_activate", self._target(row), self.detail(row))
