"""Projection of a process instance (issue 14) into the store: its row, its tasks, the credits it
earned, and an audit entry per new timeline step, in one transaction.

Called by the ``project_process`` activity after every change of an instance, like
:mod:`store.projection` for events: safe to retry and to run out of order (a projection whose
number is not above the stored one changes nothing).
"""

from __future__ import annotations

import dataclasses

from sqlmodel import select

from processes.instance import Instance
from processes.messages import ProcessProjection
from store import models
from store.db import Database
from store.timeutil import parse_required, parse_utc


def _title(inst: Instance) -> str:
    """A line naming the instance: the first short text of its start form, else its kind."""
    for value in inst.values.values():
        if isinstance(value, str) and value and len(value) <= 80 and not value[:4].isdigit():
            return value[:200]
    return inst.kind


async def apply_process(db: Database, projection: ProcessProjection) -> bool:
    """Write ``projection``; False when the store holds this projection of the instance or a newer one."""
    return await db.write(_apply, projection)


async def _apply(db: Database, p: ProcessProjection) -> bool:
    inst = p.instance
    seq = p.version
    async with db.transaction() as session:
        row = (await session.exec(select(models.ProcessInstanceRow).where(
            models.ProcessInstanceRow.instance_id == inst.instance_id).with_for_update())).first()
        before = 0 if row is None else len(row.data.get("timeline") or [])
        if row is not None and row.seq >= seq:
            return False
        if row is None:
            row = models.ProcessInstanceRow(instance_id=inst.instance_id, kind=inst.kind, version=inst.version,
                                            state=inst.state, created_at=parse_required(inst.created_at))
        row.state, row.seq, row.ended_at = inst.state, seq, parse_utc(inst.ended_at)
        row.title = _title(inst)
        row.requester, row.grid = inst.requester.name[:100], inst.requester.grid
        row.community, row.street = inst.requester.community, inst.requester.street
        row.started_by, row.access_hash, row.external_id = p.started_by[:64], p.access_hash, p.external_id
        row.data = dataclasses.asdict(inst)
        session.add(row)
        stored = {t.task_id: t for t in (await session.exec(select(models.ProcessTaskRow).where(
            models.ProcessTaskRow.instance_id == inst.instance_id))).all()}
        for task in inst.tasks:
            trow = stored.get(task.task_id) or models.ProcessTaskRow(
                task_id=task.task_id, instance_id=inst.instance_id, kind=inst.kind, task_kind=task.kind,
                state=task.state, status=task.status, created_at=parse_required(task.created_at))
            trow.title = p.titles.get(task.kind, task.kind)[:200]
            trow.unit, trow.person, trow.status, trow.claimed_by = task.unit, task.person, task.status, task.claimed_by
            trow.due_at, trow.completed_at = parse_utc(task.due_at), parse_utc(task.completed_at)
            trow.outcome, trow.capacity = task.outcome, task.capacity
            trow.signed_up = sum(1 for s in task.sign_ups if not s.waiting)
            trow.late = task.task_id in p.late or bool(task.due_at and task.completed_at
                                                       and task.completed_at > task.due_at)
            session.add(trow)
        credited = {(c.task_id, c.subject, c.credit) for c in (await session.exec(select(models.ProcessCredit).where(
            models.ProcessCredit.instance_id == inst.instance_id))).all()}
        team = str(inst.values.get("team") or "")[:40]
        for credit in inst.credits:
            if (credit.task_id, credit.subject, credit.kind) in credited:
                continue
            done = next((t.completed_at for t in inst.tasks if t.task_id == credit.task_id), None)
            session.add(models.ProcessCredit(
                task_id=credit.task_id, subject=credit.subject, credit=credit.kind, instance_id=inst.instance_id,
                kind=inst.kind, amount=credit.amount, team=team, community=inst.requester.community,
                street=inst.requester.street, credited_at=parse_required(done or inst.created_at)))
            credited.add((credit.task_id, credit.subject, credit.kind))
        for step in inst.timeline[before:]:  # every action audited with its actor, once
            session.add(models.AuditEntry(
                at=parse_required(step.at), actor=step.actor[:64], action=f"process_{step.action}"[:40],
                target=(step.task_id or inst.instance_id)[:200],
                detail=f"{inst.kind} v{inst.version}: {step.from_state or '—'} → {step.to_state}"))
        await session.commit()
        return True
