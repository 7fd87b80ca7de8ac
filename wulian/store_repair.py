"""Catching the store up from the workflows (``wulian store repair``).

Temporal is the source of truth; the store is its projection. When the store fell behind (an
overload that outlasted the retries, a restored backup, a bug), every event workflow still holds
its snapshot: the live one for a running workflow (query ``snapshot``), the final one for a
completed workflow (its result). :func:`find_behind` compares each snapshot's version with the
store's, and yields those the store lacks or holds in an older version (or with notice rows left
pending that the workflow has delivered); :func:`repair` lists the event workflows and projects
those again with the projection's own upsert, which is idempotent
and guarded by the version, so a repair may run while the workers run, twice, or be interrupted.
The invariant checker of the next issue reuses :func:`find_behind`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from store import models
from store.db import Database
from store.projection import apply_snapshot, settle_notices
from workflows.event_lifecycle import EventLifecycle
from workflows.types import INVALID, EventSnapshot

WORKFLOW_TYPE = "EventLifecycle"
#: Seconds to wait for one workflow's snapshot (a closed workflow that is not completed is queried,
#: which needs a worker to replay it).
READ_TIMEOUT = 30.0
_DURATION = re.compile(r"^(\d+)\s*([mhd])$")


@dataclass(frozen=True)
class Execution:
    """The newest run of one event workflow, as the visibility store lists it."""

    event_id: str
    run_id: str
    status: WorkflowExecutionStatus | None
    started: datetime | None


@dataclass(frozen=True)
class Lag:
    """An event the store lacks (``stored`` None), holds in an older version, or holds with notice
    rows the workflow has since delivered or skipped (``notices``: rows left pending by a delivery
    that ran before its row existed, issue 9, finding 13)."""

    event_id: str
    version: int
    stored: int | None
    notices: bool = False

    @property
    def why(self) -> str:
        """For people."""
        if self.stored is None:
            return "missing"
        return "notices pending" if self.notices else f"version {self.stored}"


@dataclass
class RepairReport:
    """What a repair found and did."""

    listed: int = 0
    checked: int = 0
    behind: list[Lag] = field(default_factory=list)
    repaired: int = 0
    overtaken: int = 0  # behind when read, but a worker's own projection got there first
    unreadable: dict[str, str] = field(default_factory=dict)  # event id → why no snapshot was read

    @property
    def missing(self) -> int:
        """Events absent from the store."""
        return sum(lag.stored is None for lag in self.behind)

    @property
    def stale_notices(self) -> int:
        """Events whose only lag is notice rows left pending."""
        return sum(lag.notices for lag in self.behind)

    def describe(self) -> str:
        """One line for people."""
        older = len(self.behind) - self.missing - self.stale_notices
        return (f"{self.checked} of {self.listed} event workflows checked: {len(self.behind)} behind in the store "
                f"({self.missing} missing, {older} older, {self.stale_notices} with notices left pending), "
                f"{self.repaired} re-projected, {len(self.unreadable)} unreadable")


def parse_since(text: str) -> datetime:
    """A moment from ``2026-12-01``, an ISO date and time, or a duration back from now (``30m``, ``24h``, ``7d``)."""
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        delta = {"m": timedelta(minutes=amount), "h": timedelta(hours=amount), "d": timedelta(days=amount)}[unit]
        return datetime.now(UTC) - delta
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is neither a date, a date and time, nor a duration like 24h or 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def visibility_query(since: datetime | None = None) -> str:
    """The list filter of the event workflows (started since ``since``)."""
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    if since is not None:
        query += f" AND StartTime >= '{since.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'"
    return query


async def list_executions(client: Client, since: datetime | None = None) -> list[Execution]:
    """The newest run of every event workflow (a continued-as-new run is followed by its successor)."""
    newest: dict[str, Execution] = {}
    async for item in client.list_workflows(visibility_query(since)):
        if item.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue
        seen = newest.get(item.id)
        if seen is None or (item.start_time and seen.started and item.start_time > seen.started):
            newest[item.id] = Execution(item.id, item.run_id, item.status, item.start_time)
    return sorted(newest.values(), key=lambda e: (e.started or datetime.min.replace(tzinfo=UTC), e.event_id))


async def read_snapshot(client: Client, execution: Execution) -> EventSnapshot | None:
    """The workflow's snapshot: its live state when running, its result when completed, else (failed,
    terminated, timed out) what a query replays from its history. None for a run that refused its
    input (failed ``Invalid`` before anything was stored: there is nothing to project)."""
    handle = client.get_workflow_handle_for(EventLifecycle.run, execution.event_id, run_id=execution.run_id)
    if execution.status == WorkflowExecutionStatus.COMPLETED:
        return await asyncio.wait_for(handle.result(follow_runs=False), READ_TIMEOUT)
    if execution.status == WorkflowExecutionStatus.FAILED:
        try:
            await asyncio.wait_for(handle.result(follow_runs=False), READ_TIMEOUT)
        except WorkflowFailureError as exc:
            if isinstance(exc.cause, ApplicationError) and exc.cause.type == INVALID:
                return None
    return await asyncio.wait_for(handle.query(EventLifecycle.snapshot), READ_TIMEOUT)


async def stored_versions(db: Database, event_ids: list[str]) -> dict[str, int]:
    """The store's version of each of ``event_ids`` it holds."""
    versions: dict[str, int] = {}
    async with db.session() as session:
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            rows = await session.exec(
                select(models.Event.event_id, models.Event.version).where(col(models.Event.event_id).in_(chunk))
            )
            versions.update({event_id: version for event_id, version in rows.all()})
    return versions


async def stored_notices(db: Database, event_ids: list[str]) -> dict[str, str]:
    """The status of each notice row of ``event_ids`` (notice id → pending, delivered or skipped)."""
    statuses: dict[str, str] = {}
    async with db.session() as session:
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start:start + 500]
            rows = await session.exec(
                select(models.Notice.notice_id, models.Notice.status).where(col(models.Notice.event_id).in_(chunk))
            )
            statuses.update({notice_id: status for notice_id, status in rows.all()})
    return statuses


def notices_behind(snap: EventSnapshot, statuses: dict[str, str]) -> bool:
    """Whether a notice of ``snap`` has no row, or a row still pending that the workflow has settled."""
    return any(notice.notice_id not in statuses
               or (statuses[notice.notice_id] == "pending" and notice.status != "pending")
               for notice in snap.notices)


async def find_behind(
    client: Client, db: Database, executions: list[Execution], *, concurrency: int = 8,
    unreadable: dict[str, str] | None = None,
) -> AsyncIterator[tuple[EventSnapshot, Lag]]:
    """Each snapshot the store lacks, holds in an older version or with notices left behind.

    Snapshots are read ``concurrency`` at a time, in batches; a workflow whose snapshot cannot be
    read is noted in ``unreadable`` (event id → reason) and skipped.
    """
    gate = asyncio.Semaphore(concurrency)

    async def read(execution: Execution) -> EventSnapshot | None:
        async with gate:
            try:
                return await read_snapshot(client, execution)
            except Exception as exc:  # noqa: BLE001 - reported per workflow, the others go on
                if unreadable is not None:
                    unreadable[execution.event_id] = f"{type(exc).__name__}: {exc}"[:300]
                return None

    batch = max(concurrency * 8, 50)
    for start in range(0, len(executions), batch):
        chunk = executions[start:start + batch]
        snapshots = await asyncio.gather(*(read(e) for e in chunk))
        versions = await stored_versions(db, [e.event_id for e in chunk])
        statuses = await stored_notices(db, [e.event_id for e in chunk])
        for snap in snapshots:
            if snap is None:
                continue
            stored = versions.get(snap.event_id)
            if stored is None or stored < snap.version:
                yield snap, Lag(snap.event_id, snap.version, stored)
            elif notices_behind(snap, statuses):
                yield snap, Lag(snap.event_id, snap.version, stored, notices=True)


async def repair(
    client: Client, db: Database, *, since: datetime | None = None, dry_run: bool = False, concurrency: int = 8,
    progress: Callable[[RepairReport], None] | None = None,
) -> RepairReport:
    """Re-project every event whose snapshot is missing from or newer than the store (see module doc).

    ``progress`` is called after each batch of workflows read and at the end.
    """
    report = RepairReport()
    executions = await list_executions(client, since)
    report.listed = len(executions)

    async def catch_up(chunk: list[Execution]) -> None:
        async for snap, lag in find_behind(client, db, chunk, concurrency=concurrency,
                                           unreadable=report.unreadable):
            report.behind.append(lag)
            if dry_run:
                continue
            if lag.notices:
                await settle_notices(db, snap)
                report.repaired += 1
            elif await apply_snapshot(db, snap):
                report.repaired += 1
            else:  # the store holds this version or a newer one by now
                report.overtaken += 1

    batch = max(concurrency * 8, 50)
    for start in range(0, len(executions), batch):
        chunk = executions[start:start + batch]
        await catch_up(chunk)
        report.checked += len(chunk)
        if progress is not None:
            progress(report)
    if report.unreadable:  # once more: a worker busy replaying may have let a query time out
        again = [e for e in executions if e.event_id in report.unreadable]
        report.unreadable.clear()
        await catch_up(again)
        if progress is not None:
            progress(report)
    if progress is not None and not executions:
        progress(report)
    return report
