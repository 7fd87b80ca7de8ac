"""The invariant checker's comparisons (``wulian/invariants.py``; its whole run over a platform under
faults is tests/faults/): a store behind its workflow, a task held twice, a notice neither delivered
nor failing, receipts of a JSON-lines file."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from store import notices
from store.db import Database
from store.projection import apply_snapshot
from workflows.types import EventReport, EventSnapshot, Location, Notice, Reporter, Task, TimelineEntry
from wulian.invariants import (
    broken_runs,
    claim_problems,
    differences,
    notice_problems,
    read_receipts,
    read_stored,
)
from wulian.store_repair import Execution


def _snap(version: int, **changes: object) -> EventSnapshot:
    report = EventReport(category="SR-01", description="垃圾", location=Location(grid="HS01-G1"),
                         reporter=Reporter(name="张三", phone="13800000000"), source="api")
    snap = EventSnapshot(event_id="EV-I-1", receipt_code="I000000001", report=report, state="dispatched",
                         stage="dispatch", created_at="2026-12-01T08:00:00+00:00", version=version)
    snap.tasks.append(Task(task_id="EV-I-1.T1", kind="handle", unit="HS01-G1", created_at="2026-12-01T08:00:00+00:00"))
    snap.timeline.append(TimelineEntry(seq=1, stage="intake", action="report", actor="api", actor_kind="system",
                                       at="2026-12-01T08:00:00+00:00", to_state="dispatched"))
    return dataclasses.replace(snap, **changes)  # type: ignore[arg-type]


def _claimed(snap: EventSnapshot, seq: int, who: str) -> None:
    snap.tasks[0].status, snap.tasks[0].claimed_by = "claimed", who
    snap.timeline.append(TimelineEntry(seq=seq, stage="handling", action="claim", actor=who, actor_kind="user",
                                       at="2026-12-01T09:00:00+00:00", to_state="handling", note="EV-I-1.T1"))


async def test_the_store_equal_to_its_workflow_and_behind_it(any_db: Database) -> None:
    first = _snap(1)
    assert differences(first, await read_stored(any_db, ["EV-I-1"])) == ["not in the store"]
    await apply_snapshot(any_db, first)
    assert differences(first, await read_stored(any_db, ["EV-I-1"])) == []
    later = _snap(2, state="handling", stage="handling")
    _claimed(later, 2, "wg_hs01_g1")
    found = differences(later, await read_stored(any_db, ["EV-I-1"]))
    assert any(d.startswith("version: store 1, workflow 2") for d in found), found
    assert any(d.startswith("task EV-I-1.T1 status") for d in found), found
    assert any(d.startswith("timeline: store 1 entries, workflow 2") for d in found), found
    await apply_snapshot(any_db, later)
    assert differences(later, await read_stored(any_db, ["EV-I-1"])) == []


async def test_a_task_claimed_twice_and_two_live_handling_tasks(any_db: Database) -> None:
    snap = _snap(3)
    _claimed(snap, 2, "wg_hs01_g1")
    stored = await read_stored(any_db, ["EV-I-1"])
    assert claim_problems(snap, stored) == []
    _claimed(snap, 3, "someone_else")
    snap.tasks.append(Task(task_id="EV-I-1.T2", kind="handle", unit="HS01-G1", created_at="2026-12-01T08:00:00+00:00"))
    assert claim_problems(snap, stored) == [
        "task EV-I-1.T1 claimed by someone_else while wg_hs01_g1 held it",
        "2 live handling tasks: EV-I-1.T1, EV-I-1.T2"]


async def test_a_notice_pending_without_a_failure_is_undelivered(any_db: Database) -> None:
    notice = Notice(notice_id="EV-I-1.N1", kind="dispatched", recipient="13800000000", body="受理",
                    created_at="2026-12-01T08:00:01+00:00")
    await apply_snapshot(any_db, _snap(1, notices=[notice]))
    stored = await read_stored(any_db, ["EV-I-1"])
    assert notice_problems(stored, ["EV-I-1"], timedelta(days=365 * 100)) == ([], 0)  # young: in flight
    undelivered, failing = notice_problems(stored, ["EV-I-1"], timedelta(seconds=60))
    assert [n for n, _ in undelivered] == ["EV-I-1.N1"] and failing == 0
    await notices.record_attempt(any_db, notice, 3)
    await notices.record_failure(any_db, notice, "SMS gateway down")
    assert notice_problems(await read_stored(any_db, ["EV-I-1"]), ["EV-I-1"], timedelta(seconds=60)) == ([], 1)


def test_receipts_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "receipts.jsonl"
    path.write_text('{"event_id": "EV-1", "receipt_code": "A", "status": 201, "key": "k1"}\n\n'
                    '{"event_id": "EV-2", "receipt_code": "B", "status": 202}\n'
                    '{"event_id": "EV-3", "status": 500}\n', encoding="utf-8")
    assert [(r.event_id, r.status, r.key) for r in read_receipts(path)] == [("EV-1", 201, "k1"), ("EV-2", 202, "")]


def test_an_event_whose_workflow_failed_is_lost_but_a_refused_input_is_not() -> None:
    # A failed run (e.g. an illegal move in the workflow) leaves an event nobody can act on: lost, even
    # though the workflow and the store both still hold it. A run that refused its input has no
    # snapshot (nothing was stored) and is not an event; a running or completed one is fine.
    status = WorkflowExecutionStatus
    runs = [Execution("EV-A", "r1", status.FAILED, None), Execution("EV-B", "r2", status.FAILED, None),
            Execution("EV-C", "r3", status.RUNNING, None), Execution("EV-D", "r4", status.TIMED_OUT, None),
            Execution("EV-E", "r5", status.COMPLETED, None)]
    snaps = {e: dataclasses.replace(_snap(3), event_id=e, state="return_requested")
             for e in ("EV-A", "EV-C", "EV-D", "EV-E")}
    assert broken_runs(runs, snaps) == [("EV-A", "its workflow failed in state return_requested"),
                                        ("EV-D", "its workflow timed out in state return_requested")]
