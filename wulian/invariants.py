"""The invariant checker behind ``wulian check``: what the platform promises, checked on a running one.

Temporal is the source of truth and the store its projection (``store/projection.py``). After any
fault (a worker, the dev server or the web killed, the store unavailable) these must hold:

1. **nothing lost**: every report answered 201 or 202 (the receipts a load generator kept, one JSON
   object a line: ``{"event_id", "receipt_code", "status", "key"}``) exists, in Temporal (a workflow
   with its event id) and in the store (an event row), with the receipt code it was given; and no
   event's newest run has failed or timed out (nobody can act on it any more), except a run that
   refused its input before anything was stored;
2. **nothing duplicated**: no receipt code is held by two events (store or Temporal); one
   ``Idempotency-Key`` of the receipts never names two events; with ``exclusive`` (a platform only the
   load generator used), no event exists that no receipt names (a retry that became a second event);
3. **store = workflow**: each workflow's snapshot equals the store's event row (version, state,
   stage, routing, counters), its tasks (status, claimer, unit) and its timeline (the same entries
   in the same order); a store behind the workflow is the lag ``wulian store repair`` would fix
   (:func:`wulian.store_repair.read_snapshot`, :func:`~wulian.store_repair.notices_behind`, reused);
4. **every notice delivered or visibly failing**: each notice row is delivered or skipped, or still
   pending with its delivery's failure kept (attempts and last error, the supervisors' stuck list,
   :func:`store.notices.failing`) — except notices younger than ``grace`` (a delivery in flight);
5. **no task claimable by two people**: no task is claimed again without a release between (the
   timeline), a claimed task names its claimer, and no event holds two live handling tasks.

A platform that is still busy moves on between the read of a snapshot and the read of the store:
an event that differs is read again, up to ``settle_rounds`` times ``settle_seconds`` apart, before it
counts as inconsistent.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus

from store import models
from store.db import Database
from store.demo_history import PREFIX as DEMO_HISTORY
from store.timeutil import as_utc, utcnow
from workflows.types import EventSnapshot
from wulian.store_repair import Execution, list_executions, notices_behind, read_snapshot

#: Tasks that are still somebody's work.
LIVE_TASK = ("open", "claimed")
#: Event fields compared with the snapshot: (column, how the snapshot gives it).
_EVENT_FIELDS: dict[str, Callable[[EventSnapshot], Any]] = {
    "receipt_code": lambda s: s.receipt_code,
    "version": lambda s: s.version,
    "state": lambda s: s.state,
    "stage": lambda s: s.stage,
    "unit": lambda s: s.decision.unit if s.decision else None,
    "tier": lambda s: s.decision.tier if s.decision else None,
    "paused": lambda s: s.paused,
    "pending": lambda s: s.pending,
    "rework_count": lambda s: s.rework_count,
    "returned_count": lambda s: s.returned_count,
    "escalated_count": lambda s: s.escalated_count,
    "rating": lambda s: s.rating,
}


@dataclass(frozen=True)
class Receipt:
    """One accepted report as its client kept it."""

    event_id: str
    receipt_code: str
    status: int
    key: str = ""


def read_receipts(path: Path) -> list[Receipt]:
    """The receipts of a JSON-lines file; lines without an event id, or not answered 201/202, are skipped."""
    found: list[Receipt] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        status = int(item.get("status") or 0)
        if item.get("event_id") and status in (201, 202):
            found.append(Receipt(str(item["event_id"]), str(item.get("receipt_code") or ""), status,
                                 str(item.get("key") or "")))
    return found


@dataclass
class CheckReport:
    """What the checker found; each list holds ``(event or notice id, why)``."""

    listed: int = 0  # event workflows in Temporal
    checked: int = 0  # of them, snapshots compared with the store
    accepted: int = 0  # receipts given
    lost: list[tuple[str, str]] = field(default_factory=list)
    duplicated: list[tuple[str, str]] = field(default_factory=list)
    inconsistent: list[tuple[str, str]] = field(default_factory=list)
    undelivered: list[tuple[str, str]] = field(default_factory=list)
    double_claims: list[tuple[str, str]] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # event id → why its snapshot was not read
    failing_notices: int = 0  # pending with their failure visible (allowed)

    @property
    def ok(self) -> bool:
        """Whether every invariant holds (and every snapshot could be read)."""
        return not (self.lost or self.duplicated or self.inconsistent or self.undelivered or self.double_claims
                    or self.unreadable)

    def counts(self) -> dict[str, int]:
        """The figures, by name."""
        return {"listed": self.listed, "checked": self.checked, "accepted": self.accepted, "lost": len(self.lost),
                "duplicated": len(self.duplicated), "inconsistent": len(self.inconsistent),
                "undelivered": len(self.undelivered), "double_claims": len(self.double_claims),
                "unreadable": len(self.unreadable), "failing_notices": self.failing_notices}

    def describe(self) -> str:
        """One line for people."""
        return ", ".join(f"{name} {value}" for name, value in self.counts().items())

    def problems(self, limit: int = 20) -> list[str]:
        """The first ``limit`` problems of each kind, one line each."""
        lines: list[str] = []
        for kind, items in (("lost", self.lost), ("duplicated", self.duplicated),
                            ("inconsistent", self.inconsistent), ("undelivered", self.undelivered),
                            ("double claim", self.double_claims), ("unreadable", list(self.unreadable.items()))):
            lines += [f"{kind}: {what}: {why}" for what, why in items[:limit]]
            if len(items) > limit:
                lines.append(f"{kind}: ... {len(items) - limit} more")
        return lines


@dataclass
class Stored:
    """The store's rows of some events."""

    events: dict[str, models.Event] = field(default_factory=dict)
    tasks: dict[str, list[models.Task]] = field(default_factory=lambda: defaultdict(list))
    timeline: dict[str, list[models.TimelineEntry]] = field(default_factory=lambda: defaultdict(list))
    notices: dict[str, list[models.Notice]] = field(default_factory=lambda: defaultdict(list))


async def read_stored(db: Database, event_ids: list[str]) -> Stored:
    """The event, task, timeline and notice rows of ``event_ids``."""
    stored = Stored()
    async with db.session() as session:
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            for event in (await session.exec(select(models.Event).where(col(models.Event.event_id).in_(chunk)))):
                stored.events[event.event_id] = event
            for task in (await session.exec(select(models.Task).where(col(models.Task.event_id).in_(chunk))
                                            .order_by(col(models.Task.task_id)))):
                stored.tasks[task.event_id].append(task)
            for entry in (await session.exec(select(models.TimelineEntry)
                                             .where(col(models.TimelineEntry.event_id).in_(chunk))
                                             .order_by(col(models.TimelineEntry.seq)))):
                stored.timeline[entry.event_id].append(entry)
            for notice in (await session.exec(select(models.Notice).where(col(models.Notice.event_id).in_(chunk)))):
                stored.notices[notice.event_id].append(notice)
    return stored


def differences(snap: EventSnapshot, stored: Stored) -> list[str]:
    """How the store's rows of ``snap``'s event differ from it (empty: they agree)."""
    event = stored.events.get(snap.event_id)
    if event is None:
        return ["not in the store"]
    found = [f"{name}: store {getattr(event, name)!r}, workflow {get(snap)!r}"
             for name, get in _EVENT_FIELDS.items() if getattr(event, name) != get(snap)]
    tasks = {t.task_id: t for t in stored.tasks.get(snap.event_id, [])}
    if set(tasks) != {t.task_id for t in snap.tasks}:
        found.append(f"tasks: store {sorted(tasks)}, workflow {sorted(t.task_id for t in snap.tasks)}")
    for task in snap.tasks:
        row = tasks.get(task.task_id)
        if row is None:
            continue
        for name in ("kind", "unit", "status", "claimed_by", "assignee"):
            if getattr(row, name) != getattr(task, name):
                found.append(f"task {task.task_id} {name}: store {getattr(row, name)!r}, "
                             f"workflow {getattr(task, name)!r}")
    entries = [(e.seq, e.action, e.actor, e.to_state) for e in stored.timeline.get(snap.event_id, [])]
    expected = [(e.seq, e.action, e.actor, e.to_state) for e in snap.timeline]
    if entries != expected:
        found.append(f"timeline: store {len(entries)} entries, workflow {len(expected)} "
                     f"(first difference at {_first_difference(entries, expected)})")
    statuses = {n.notice_id: n.status for n in stored.notices.get(snap.event_id, [])}
    if notices_behind(snap, statuses):
        found.append("notices: the workflow settled some that the store holds pending or lacks")
    return found


def _first_difference(a: list[Any], b: list[Any]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def claim_problems(snap: EventSnapshot, stored: Stored) -> list[str]:
    """Ways in which a task of ``snap``'s event was, or is, held by two people."""
    found: list[str] = []
    held: dict[str, str] = {}  # task id → who holds it, from the timeline in order
    for entry in snap.timeline:
        task_id = entry.note.split(" ", 1)[0] if entry.note else ""
        claims = entry.action == "claim" or (entry.action == "cohandle" and entry.note.endswith(" claimed"))
        if claims and task_id:
            if task_id in held:
                found.append(f"task {task_id} claimed by {entry.actor} while {held[task_id]} held it")
            held[task_id] = entry.actor
        elif entry.action == "release" and task_id:
            held.pop(task_id, None)
    for task in stored.tasks.get(snap.event_id, []):
        if task.status == "claimed" and not task.claimed_by:
            found.append(f"task {task.task_id} claimed by nobody")
    live = [t.task_id for t in snap.tasks if t.kind == "handle" and t.status in LIVE_TASK]
    if len(live) > 1:
        found.append(f"{len(live)} live handling tasks: {', '.join(live)}")
    return found


def notice_problems(stored: Stored, event_ids: Iterable[str], grace: timedelta) -> tuple[list[tuple[str, str]], int]:
    """Notices neither delivered (nor skipped) nor visibly failing, older than ``grace``; and how many
    are visibly failing (pending, with attempts and the last error kept)."""
    undelivered: list[tuple[str, str]] = []
    failing = 0
    cutoff = utcnow() - grace
    for event_id in event_ids:
        for notice in stored.notices.get(event_id, []):
            if notice.status != "pending":
                continue
            if notice.attempts > 0 and notice.last_error:
                failing += 1
            elif as_utc(notice.created_at) < cutoff:
                undelivered.append((notice.notice_id, f"pending since {notice.created_at}, "
                                                      f"{notice.attempts} attempt(s), no error kept"))
    return undelivered, failing


async def _snapshots(client: Client, executions: list[Execution], concurrency: int,
                     unreadable: dict[str, str]) -> dict[str, EventSnapshot]:
    gate = asyncio.Semaphore(concurrency)
    found: dict[str, EventSnapshot] = {}

    async def read(execution: Execution) -> None:
        async with gate:
            try:
                snap = await read_snapshot(client, execution)
            except Exception as exc:  # noqa: BLE001 - reported per workflow, the others go on
                unreadable[execution.event_id] = f"{type(exc).__name__}: {exc}"[:300]
                return
            unreadable.pop(execution.event_id, None)
            if snap is not None:
                found[execution.event_id] = snap

    await asyncio.gather(*(read(e) for e in executions))
    return found


#: Run statuses that end an event nobody closed: its tasks can no longer be acted on.
_BROKEN = (WorkflowExecutionStatus.FAILED, WorkflowExecutionStatus.TIMED_OUT)


def broken_runs(executions: Iterable[Execution], snapshots: dict[str, EventSnapshot]) -> list[tuple[str, str]]:
    """The events whose newest run failed or timed out, with why. A failed run without a snapshot
    (:func:`~wulian.store_repair.read_snapshot` gives None: it refused its input before anything was
    stored) is not an event."""
    return [(e.event_id, f"its workflow {e.status.name.lower().replace('_', ' ')} in state "
                         f"{snapshots[e.event_id].state}")
            for e in executions if e.status in _BROKEN and e.event_id in snapshots]


async def check(
    client: Client, db: Database, receipts: list[Receipt] | None = None, *, exclusive: bool = False,
    concurrency: int = 8, settle_rounds: int = 5, settle_seconds: float = 2.0,
    grace: timedelta = timedelta(seconds=60), progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Check the invariants of the module doc over every event workflow and ``receipts``.

    ``progress(done, total)`` is called as snapshots are compared.
    """
    report = CheckReport(accepted=len(receipts or []))
    # Every run of every event workflow: the newest of each id is compared; two live or completed runs
    # of one id (a report started twice) would be a duplicate.
    runs: Counter[str] = Counter()
    async for item in client.list_workflows("WorkflowType = 'EventLifecycle'"):
        if item.status not in (WorkflowExecutionStatus.CONTINUED_AS_NEW, WorkflowExecutionStatus.FAILED,
                               WorkflowExecutionStatus.TERMINATED):
            runs[item.id] += 1
    report.duplicated += [(event_id, f"{n} runs") for event_id, n in runs.items() if n > 1]
    executions = await list_executions(client)
    report.listed = len(executions)
    in_temporal = {e.event_id for e in executions}

    snapshots: dict[str, EventSnapshot] = {}
    stored = Stored()
    batch = max(concurrency * 8, 50)
    for start in range(0, len(executions), batch):
        chunk = executions[start:start + batch]
        snapshots.update(await _snapshots(client, chunk, concurrency, report.unreadable))
        part = await read_stored(db, [e.event_id for e in chunk])
        stored.events.update(part.events)
        for name in ("tasks", "timeline", "notices"):
            getattr(stored, name).update(getattr(part, name))
        if progress is not None:
            progress(min(start + batch, len(executions)), len(executions))

    # Store = workflow, read again while they differ (a projection in flight).
    differing = {event_id: differences(snap, stored) for event_id, snap in snapshots.items()}
    differing = {k: v for k, v in differing.items() if v}
    for _ in range(settle_rounds):
        if not differing and not report.unreadable:
            break
        await asyncio.sleep(settle_seconds)
        again = [e for e in executions if e.event_id in differing or e.event_id in report.unreadable]
        fresh = await _snapshots(client, again, concurrency, report.unreadable)
        snapshots.update(fresh)
        part = await read_stored(db, [e.event_id for e in again])
        for event_id in [e.event_id for e in again]:
            for name in ("events", "tasks", "timeline", "notices"):
                table = getattr(stored, name)
                table.pop(event_id, None)
                if event_id in getattr(part, name):
                    table[event_id] = getattr(part, name)[event_id]
        differing = {k: d for k in differing if k in snapshots and (d := differences(snapshots[k], stored))}
    report.checked = len(snapshots)
    report.lost += broken_runs(executions, snapshots)
    report.inconsistent += [(event_id, "; ".join(why)[:500]) for event_id, why in sorted(differing.items())]

    # Receipt codes: one event each, in the store and in Temporal.
    by_code: dict[str, set[str]] = defaultdict(set)
    for snap in snapshots.values():
        by_code[snap.receipt_code].add(snap.event_id)
    async with db.session() as session:
        for event_id, code in (await session.exec(select(models.Event.event_id, models.Event.receipt_code))):
            by_code[code].add(event_id)  # a unique index forbids two; a changed schema might not
        # Demo history (store.demo_history) was written into the store, never run as workflows.
        store_ids = {event_id for event_id in (await session.exec(select(models.Event.event_id))).all()
                     if not event_id.startswith(DEMO_HISTORY)}
    report.duplicated += [(code, f"held by {', '.join(sorted(ids))}") for code, ids in by_code.items()
                          if code and len(ids) > 1]

    if receipts is not None:
        by_key: dict[str, set[str]] = defaultdict(set)
        for receipt in receipts:
            if receipt.key:
                by_key[receipt.key].add(receipt.event_id)
            missing = [where for where, ids in (("Temporal", in_temporal), ("the store", store_ids))
                       if receipt.event_id not in ids]
            if missing:
                report.lost.append((receipt.event_id, f"answered {receipt.status}, not in {' nor '.join(missing)}"))
                continue
            held = snapshots.get(receipt.event_id)
            if receipt.receipt_code and held is not None and held.receipt_code != receipt.receipt_code:
                report.inconsistent.append((receipt.event_id, f"receipt code {receipt.receipt_code} answered, "
                                                              f"{held.receipt_code} in the workflow"))
        report.duplicated += [(key, f"one Idempotency-Key, events {', '.join(sorted(ids))}")
                              for key, ids in by_key.items() if len(ids) > 1]
        if exclusive:
            named = {r.event_id for r in receipts}
            report.duplicated += [(event_id, "an event no accepted report names")
                                  for event_id in sorted((in_temporal | store_ids) - named)]
    else:
        report.lost += [(event_id, "in the store, not in Temporal") for event_id in sorted(store_ids - in_temporal)]

    for event_id, snap in snapshots.items():
        report.double_claims += [(event_id, why) for why in claim_problems(snap, stored)]
    report.undelivered, report.failing_notices = notice_problems(stored, snapshots, grace)
    return report
