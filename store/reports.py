"""The report snapshots (``models.ReportSnapshot``): written once per revision, read by the report pages.

Nothing here updates or deletes a snapshot. :func:`store_snapshot` is the only writer, and it is
idempotent the way the PeriodReport workflow needs it:

- a run that is no recompute stores revision 1 of a period that has no snapshot, and nothing when it
  has one (a second trigger of the Schedule for the same period, a retried activity);
- a recompute stores the next revision, with an audit entry (who, why) in the same transaction, once
  per run: its ``request_id`` (the run's workflow id) is unique, so a retried activity finds the
  revision it stored before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from store import models
from store.db import Database
from store.timeutil import utcnow


@dataclass(frozen=True)
class NewSnapshot:
    """What a run asks to store."""

    period: str
    kind: str
    day_from: date
    day_to: date
    request_id: str
    recompute: bool
    actor: str
    reason: str
    trigger: str


@dataclass(frozen=True)
class PeriodSummary:
    """A period with a report: its newest revision (without the data) and how many there are."""

    period: str
    kind: str
    revision: int
    computed_at: Any
    computed_by: str
    trigger: str
    scheme_version: str | None
    revisions: int


async def already_stored(db: Database, job: NewSnapshot) -> models.ReportSnapshot | None:
    """The snapshot that makes ``job`` a no-op: the one its own run stored before, or (not a recompute)
    the period's newest revision. None: there is something to store."""
    async with db.session() as session:
        own = (await session.exec(
            select(models.ReportSnapshot).where(models.ReportSnapshot.request_id == job.request_id)
        )).first()
        if own is not None or job.recompute:
            return own
        return await _latest(session, job.period)


async def _latest(session: Any, period: str) -> models.ReportSnapshot | None:
    query = (select(models.ReportSnapshot).where(models.ReportSnapshot.period == period)
             .order_by(col(models.ReportSnapshot.revision).desc()).limit(1))
    return (await session.exec(query)).first()  # type: ignore[no-any-return]


async def store_snapshot(db: Database, job: NewSnapshot, data: dict[str, Any],
                         scheme_version: str | None) -> tuple[models.ReportSnapshot, bool]:
    """Store ``data`` as the period's next revision unless :func:`already_stored` finds one (checked
    again inside the write, so two runs at once store one revision 1); the snapshot and whether it
    was stored now."""
    for _ in range(3):  # a concurrent writer took the revision number: read again, once or twice
        try:
            return await db.write(_store, job, data, scheme_version)
        except IntegrityError:
            found = await already_stored(db, job)
            if found is not None:
                return found, False
    raise RuntimeError(f"could not store a revision of {job.period}")


async def _store(db: Database, job: NewSnapshot, data: dict[str, Any],
                 scheme_version: str | None) -> tuple[models.ReportSnapshot, bool]:
    async with db.transaction() as session:
        own = (await session.exec(
            select(models.ReportSnapshot).where(models.ReportSnapshot.request_id == job.request_id)
        )).first()
        if own is not None:
            return own, False
        latest = await _latest(session, job.period)
        if latest is not None and not job.recompute:
            return latest, False
        now = utcnow()
        row = models.ReportSnapshot(
            period=job.period, kind=job.kind, revision=(latest.revision + 1) if latest else 1,
            day_from=job.day_from, day_to=job.day_to, scheme_version=scheme_version, computed_at=now,
            computed_by=job.actor[:64], trigger=job.trigger, reason=job.reason[:500], request_id=job.request_id,
            data=data,
        )
        session.add(row)
        action = "report_recompute" if job.recompute else "report_publish"
        detail = f"revision {row.revision}; scheme {scheme_version or '-'}" + (f"; {job.reason}" if job.reason else "")
        session.add(models.AuditEntry(at=now, actor=job.actor[:64], action=action, target=job.period,
                                      detail=detail))
        await session.commit()
        return row, True


async def snapshot(db: Database, period: str, revision: int | None = None) -> models.ReportSnapshot | None:
    """A period's snapshot: the given revision, else the newest."""
    async with db.session() as session:
        if revision is None:
            return await _latest(session, period)
        query = select(models.ReportSnapshot).where(models.ReportSnapshot.period == period,
                                                    models.ReportSnapshot.revision == revision)
        return (await session.exec(query)).first()


async def revisions(db: Database, period: str) -> list[models.ReportSnapshot]:
    """Every revision of a period, newest first (their data too: a period has a few)."""
    async with db.session() as session:
        query = (select(models.ReportSnapshot).where(models.ReportSnapshot.period == period)
                 .order_by(col(models.ReportSnapshot.revision).desc()))
        return list((await session.exec(query)).all())


async def periods(db: Database) -> list[PeriodSummary]:
    """Every period with a report, newest period first (a year after its December), each with its
    newest revision; the data is not read."""
    snap = models.ReportSnapshot
    async with db.session() as session:
        newest = (sa_select(col(snap.period), func.max(snap.revision).label("top"), func.count().label("n"))
                  .group_by(col(snap.period)).subquery())
        columns = [col(c) for c in (snap.period, snap.kind, snap.revision, snap.computed_at, snap.computed_by,
                                    snap.trigger, snap.scheme_version)]
        query = (sa_select(*columns, newest.c.n)
                 .join(newest, (col(snap.period) == newest.c.period) & (col(snap.revision) == newest.c.top))
                 .order_by(col(snap.day_to).desc(), col(snap.kind)))
        rows = (await session.execute(query)).all()
    return [PeriodSummary(period=p, kind=k, revision=r, computed_at=at, computed_by=by, trigger=t,
                          scheme_version=v, revisions=int(n)) for p, k, r, at, by, t, v, n in rows]
