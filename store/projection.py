"""Projection of a workflow snapshot into the store: idempotent, version-guarded upserts.

Called by the projection activity after every change of an event. Safe to retry and safe to
run out of order: a snapshot older than the stored version changes nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import assessment, models, webhooks
from store.db import Database
from store.timeutil import parse_required, parse_utc, utcnow
from workflows.types import EventSnapshot


async def apply_snapshot(db: Database, snap: EventSnapshot, woken: set[int] | None = None) -> bool:
    """Write ``snap``; returns False when the store already holds this version or a newer one.

    One write (``Database.write``): it runs to its end even when the projection activity is
    cancelled, and on SQLite it holds the write lock from its first read, so two projections of one
    event cannot both pass the version check. The webhook subscriptions that got new deliveries
    (``store.webhooks.enqueue``, same transaction) are added to ``woken`` once it has committed.
    """
    return await db.write(_apply, snap, woken)


async def _apply(db: Database, snap: EventSnapshot, woken: set[int] | None = None) -> bool:
    async with db.transaction() as session:
        row = (
            await session.exec(
                select(models.Event).where(models.Event.event_id == snap.event_id).with_for_update()
            )
        ).first()
        if row is not None and row.version >= snap.version:
            return False
        decision = snap.decision
        report = snap.report
        fields: dict[str, Any] = dict(
            receipt_code=snap.receipt_code,
            version=snap.version,
            external_id=report.external_id,
            source=report.source,
            category=report.category,
            category_name=decision.category_name if decision else "",
            description=report.description,
            address=report.location.address,
            lat=report.location.lat,
            lon=report.location.lon,
            grid=(decision.grid if decision else None) or report.location.grid,
            community=decision.community if decision else None,
            street=decision.street if decision else None,
            reporter_name=report.reporter.name,
            reporter_phone=report.reporter.phone,
            state=snap.state,
            stage=snap.stage,
            tier=decision.tier if decision else None,
            unit=decision.unit if decision else None,
            department=decision.department if decision else None,
            priority=decision.priority if decision else 3,
            decision=dataclasses.asdict(decision) if decision else None,
            paused=snap.paused,
            pending=snap.pending,
            rework_count=snap.rework_count,
            returned_count=snap.returned_count,
            escalated_count=snap.escalated_count,
            rating=snap.rating,
            rating_comment=snap.rating_comment,
            created_at=parse_utc(snap.created_at),
            updated_at=utcnow(),
            closed_at=parse_utc(snap.closed_at),
            tracking_key_hash=report.tracking_key_hash,
            # Reports from before API keys have no such fields in their history (getattr: defaults).
            integration=getattr(report, "integration", "") or None,
            media_url=getattr(report, "media_url", "") or None,
            follower_count=len(snap.followers),
            search_text=models.search_text(report.description, report.location.address),
            close_action=_close_action(snap),
            occurrences=snap.occurrences,
            merged_into=snap.merge.primary if snap.merge else None,
            merge_undo_by=parse_utc(snap.merge.undo_by) if snap.merge else None,
            merged_count=len(snap.merged),
        )
        if row is None:
            row = models.Event(event_id=snap.event_id, **fields)
        else:
            for key, value in fields.items():
                setattr(row, key, value)
        session.add(row)
        await session.flush()

        existing_tasks = {
            t.task_id: t
            for t in (
                await session.exec(select(models.Task).where(models.Task.event_id == snap.event_id))
            ).all()
        }
        for task in snap.tasks:
            values: dict[str, Any] = dict(
                event_id=snap.event_id,
                version=snap.version,
                kind=task.kind,
                unit=task.unit,
                assignee=task.assignee,
                status=task.status,
                claimed_by=task.claimed_by,
                claimed_at=parse_utc(task.claimed_at),
                completed_at=parse_utc(task.completed_at),
                result=task.result,
                passed=task.passed,
                due_at=parse_utc(task.due_at),
                return_by=parse_utc(task.marks.get("return_by")),
                created_at=parse_utc(task.created_at),
                reason=task.reason,
                extension_hours=task.extension_hours,
                photos=list(task.photos),
                parent=task.parent,
                overdue_level="red" if "escalate" in task.fired else "yellow" if "due" in task.fired else None,
                origin=task.origin,
                ended_at=parse_utc(task.ended_at),
                ended_by=task.ended_by,
                extended_hours=task.extended_hours,
                **models.inbox_fields(task.status, parse_utc(task.due_at), row),
            )
            stored = existing_tasks.get(task.task_id)
            if stored is None:
                stored = existing_tasks[task.task_id] = models.Task(task_id=task.task_id, **values)
            else:
                for key, value in values.items():
                    setattr(stored, key, value)
            session.add(stored)

        last_seq = (
            await session.exec(
                select(models.TimelineEntry.seq)
                .where(models.TimelineEntry.event_id == snap.event_id)
                .order_by(col(models.TimelineEntry.seq).desc())
                .limit(1)
            )
        ).first() or 0
        new_entries = [entry for entry in snap.timeline if entry.seq > last_seq]
        for entry in new_entries:
            session.add(
                models.TimelineEntry(
                    event_id=snap.event_id,
                    seq=entry.seq,
                    stage=entry.stage,
                    action=entry.action,
                    actor=entry.actor,
                    actor_kind=entry.actor_kind,
                    actor_name=entry.actor_name,
                    from_state=entry.from_state,
                    to_state=entry.to_state,
                    note=entry.note,
                    at=parse_required(entry.at),
                )
            )

        await _notices(session, snap)
        warnings = list((await session.exec(select(models.SupervisionWarning).where(
            models.SupervisionWarning.event_id == snap.event_id))).all())
        known_warnings = len(warnings)
        for seq, warning in enumerate(snap.warnings[known_warnings:], start=known_warnings + 1):
            stored_warning = models.SupervisionWarning(
                event_id=snap.event_id, seq=seq, kind=warning.kind, task_id=warning.task_id, unit=warning.unit,
                at=parse_required(warning.at), note=warning.note[:300],
            )
            session.add(stored_warning)
            warnings.append(stored_warning)
        await assessment.record(session, db, row, list(existing_tasks.values()), warnings)
        # The outbound webhooks' outbox: one row per (subscription, change) of the entries added here.
        queued = await webhooks.enqueue(session, snap, new_entries)
        await session.commit()
        if woken is not None:
            woken.update(queued)
        return True


def _close_action(snap: EventSnapshot) -> str:
    """The move that closed the event (rate, accept_by_default, close); empty while it is not closed."""
    if snap.state != "closed":
        return ""
    return next((e.action for e in reversed(snap.timeline) if e.to_state == "closed"), "")


async def _notices(session: AsyncSession, snap: EventSnapshot) -> int:
    """Insert the snapshot's new notices; set rows the workflow has delivered or skipped. Returns the
    number of rows written."""
    known = set(
        (
            await session.exec(
                select(models.Notice.notice_id).where(models.Notice.event_id == snap.event_id)
            )
        ).all()
    )
    changed = 0
    for notice in snap.notices:
        if notice.notice_id in known and notice.status in ("skipped", "delivered"):
            # A delivery that ran before its row existed left it pending (issue 9, finding 13):
            # the workflow knows better.
            stored_notice = await session.get(models.Notice, notice.notice_id)
            if stored_notice is not None and stored_notice.status == "pending":
                stored_notice.status = notice.status
                if notice.status == "delivered":
                    stored_notice.delivered_at = stored_notice.delivered_at or utcnow()
                session.add(stored_notice)
                changed += 1
        if notice.notice_id not in known:
            session.add(
                models.Notice(
                    notice_id=notice.notice_id,
                    event_id=snap.event_id,
                    kind=notice.kind,
                    recipient=notice.recipient,
                    body=notice.body,
                    created_at=parse_required(notice.created_at),
                    status=notice.status,
                    delivered_at=utcnow() if notice.status == "delivered" else None,
                )
            )
            changed += 1
    return changed


async def settle_notices(db: Database, snap: EventSnapshot) -> int:
    """Bring the notice rows of ``snap``'s event in line with it, whatever the stored version (rows
    left pending by deliveries that ran before their row existed; ``wulian store repair``)."""
    return await db.write(_settle_notices, snap)


async def _settle_notices(db: Database, snap: EventSnapshot) -> int:
    async with db.transaction() as session:
        changed = await _notices(session, snap)
        await session.commit()
        return changed
